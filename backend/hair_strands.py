"""Hair strands over the forehead and temples in a face crop, kept out of the detail stage's skin.

A fringe's strands are thin dark lines on the forehead; to the detail fit they look like the
shadows of creases, and it raises them as ridges and grooves. On a grey photo no colour test
tells them from skin (:func:`backend.skin.skin_mask` keeps them), and a brightness threshold alone
would take the forehead's real wrinkles too. What tells them apart is where they come from: a
strand hangs from the hair, a wrinkle lies in the skin. :func:`strand_mask` takes the pixels of
the hair zone (:func:`backend.hair_fill.hair_zone`, off the brows and eyes) darker than the
local skin (ratio below ``dark``, as :mod:`backend.hair_fill` judges texels) and keeps the
connected dark regions that reach the hair itself (pixels of the zone that are not skin), grown
by a pixel for their soft edges.

Letters: S×S crop pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .blend import linear_ramp
from .hair_fill import hair_zone
from .image_filters import LUMA, gaussian_blur, max_filter
from .occlusion import feature_mask

__all__ = ["StrandSettings", "strand_mask"]

_LUMA = np.array(LUMA)


@dataclass(frozen=True)
class StrandSettings:
    """- ``dark``: luminance ratio to the local skin at which a pixel starts to count as a strand,
      and the ratio at which it fully does (milder than :class:`backend.hair_fill.HairFillSettings`'
      de-lit texels': the photo's fine hairs around a strand only tint the skin, and the detail
      fit raises that tint as relief too);
    - ``local_px``: Gaussian σ (pixels at 224²) of the local skin brightness, over the skin mask;
    - ``hair_below``: skin weight under which a pixel of the zone is hair itself (a strand's root);
    - ``grow_px``: the strands grow by this many pixels (at 224²): the shadows and fine hairs
      beside them."""

    dark: tuple[float, float] = (0.88, 0.75)
    local_px: float = 12.0
    hair_below: float = 0.3
    grow_px: int = 4


def strand_mask(crop: np.ndarray, landmarks68: np.ndarray, skin: np.ndarray, face: np.ndarray,
                settings: StrandSettings = StrandSettings()) -> np.ndarray:
    """How much each pixel of a face crop is a hair strand over the face, (S,S) float32 in [0,1].

    crop (S,S,3) in [0,1]; landmarks68 (68,2) in its pixels; skin (S,S) in [0,1] its skin mask
    (:func:`backend.skin.skin_mask`); face (S,S) in [0,1] its landmark face mask
    (:func:`backend.align.face_mask`: the hair that counts lies over the face, not a dark
    background beside it). 0 outside the hair zone and on dark regions that do not reach the
    hair (wrinkles, moles, a crease's shadow)."""
    S = crop.shape[0]
    scale = S / 224.0
    zone = hair_zone(landmarks68, S) * (1.0 - feature_mask(landmarks68, S)) * (np.asarray(face) > 0.5)  # (S,S)
    if not (zone > 0.5).any():
        return np.zeros((S, S), np.float32)
    luma = torch.from_numpy(np.asarray(crop, np.float64) @ _LUMA).float()[None, None]  # (1,1,S,S)
    sure = torch.from_numpy((np.asarray(skin) > 0.5).astype(np.float32))[None, None]
    blurred = gaussian_blur(torch.cat([luma * sure, sure], 1), settings.local_px * scale, "constant")
    local = blurred[:, :1] / blurred[:, 1:].clamp_min(1e-3)
    ratio = ((luma + 1e-3) / (local + 1e-3))[0, 0].numpy()
    dark = linear_ramp(torch.from_numpy(ratio), settings.dark).numpy() * zone  # (S,S) in [0,1]
    labels, count = ndimage.label(dark > 0, structure=np.ones((3, 3)))
    if count == 0:
        return np.zeros((S, S), np.float32)
    roots = np.unique(labels[(dark > 0) & (zone > 0.5) & (np.asarray(skin) < settings.hair_below)])
    strands = dark * np.isin(labels, roots[roots > 0])
    g = max(0, round(settings.grow_px * scale))
    if g > 0:
        strands = max_filter(torch.from_numpy(strands.astype(np.float32))[None, None], g)[0, 0].numpy() * (zone > 0)
    return strands.astype(np.float32)
