"""Multi-view consistency: do the photos show the same person (the texture stage's coverage and
per-view de-lighting are in :mod:`backend.texture`).
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["SAME_PERSON_THRESHOLD", "identity_outliers"]

# dlib's face-recognition ResNet: descriptors of the same person are closer than this.
SAME_PERSON_THRESHOLD = 0.6


def identity_outliers(descriptors, names: list[str], threshold: float = SAME_PERSON_THRESHOLD) -> list[str]:
    """Warnings about photos that do not look like the same person as the others.

    descriptors: (V,128) face descriptors (:mod:`backend.identity`, Euclidean distance < 0.6 =
    same person), torch or numpy; names: V photo names used in the messages.
    - V ≥ 3: a photo whose *median* distance to the other photos exceeds ``threshold`` is an
      outlier (one warning each); when every photo is, a single warning says so.
    - V = 2: one warning naming both photos when their distance exceeds ``threshold``
      (which of the two is wrong cannot be told).
    - V ≤ 1: no warnings.
    Returns a list of human-readable warnings (empty when all photos agree).
    """
    d = torch.as_tensor(np.asarray(descriptors) if not isinstance(descriptors, torch.Tensor) else descriptors)
    d = d.detach().double().cpu()
    if d.dim() != 2:
        raise ValueError(f"descriptors must be (V,D), got {tuple(d.shape)}")
    V = d.shape[0]
    if len(names) != V:
        raise ValueError(f"{V} descriptors but {len(names)} names")
    if V < 2:
        return []
    dist = torch.cdist(d, d)
    if V == 2:
        if float(dist[0, 1]) > threshold:
            return [
                f"photos {names[0]!r} and {names[1]!r} may show different people (face descriptor distance "
                f"{float(dist[0, 1]):.2f} > {threshold:.2f}); check the photos or the face index"
            ]
        return []
    off = ~torch.eye(V, dtype=torch.bool)
    median = dist[off].view(V, V - 1).median(1).values  # lower median for an even count
    bad = (median > threshold).nonzero().flatten().tolist()
    if len(bad) == V:
        return [
            f"no two photos look like the same person (median face descriptor distances "
            f"{', '.join(f'{float(m):.2f}' for m in median)} > {threshold:.2f}); check the photos or the face index"
        ]
    return [
        f"photo {names[i]!r} may show a different person from the others (median face descriptor distance "
        f"{float(median[i]):.2f} > {threshold:.2f}); remove it or choose another face in it"
        for i in bad
    ]
