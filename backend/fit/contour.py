"""Sliding jaw contour: the 2-D jaw landmarks (iBUG 0–16) mark the face's *outline*, which
moves over the surface as the head turns; fixed vertices only match it in a frontal view.

For each jaw landmark we precompute a horizontal row of candidate vertices on the same side of
the face; at each step the candidate with the extreme screen x (the silhouette on that row) is
used. The chin (8) stays fixed.
"""
from __future__ import annotations

import torch

from ..device_constants import constant

JAW = tuple(range(17))
CHIN = 8


def contour_row(mean: torch.Tensor, vid: int, face_mask: torch.Tensor, band_mm: float = 3.0, k: int = 24) -> torch.Tensor:
    """The candidate row of a jaw landmark (not the chin) anchored at vertex ``vid``: face-region
    vertices on its side of the face within ``band_mm`` of its height, the k − 1 nearest to it
    after the anchor itself. mean (V,3) mm; face_mask (V,) bool. Returns (k,) long vertex ids
    (padded by repeating the anchor)."""
    return contour_rows(mean, [vid], face_mask, band_mm, k)[0]


def contour_rows(mean: torch.Tensor, vids: list[int], face_mask: torch.Tensor, band_mm: float = 3.0,
                 k: int = 24) -> torch.Tensor:
    """:func:`contour_row` of each anchor vertex in ``vids`` (R anchors), the vertex tests done for
    all rows at once. Returns (R,k) long vertex ids."""
    p = mean[vids]  # (R,3) the anchors
    side = torch.sign(p[:, :1])  # (R,1)
    sel = face_mask & ((mean[:, 1] - p[:, 1:2]).abs() < band_mm) & (torch.sign(mean[:, 0]) == side)  # (R,V)
    sel &= (mean[:, 0].abs() <= p[:, :1].abs() + 12.0) & (mean[:, 2] >= p[:, 2:3] - 35.0)
    sel &= mean[:, 0].abs() >= p[:, :1].abs() - 25.0
    rows = torch.tensor(vids, dtype=torch.long)[:, None].repeat(1, k)
    for r in range(len(vids)):  # a loop over anchors (17 at most), not vertices
        ids = torch.nonzero(sel[r]).flatten()
        # keep the k closest to the landmark (rows can be long on the forehead band)
        ids = ids[torch.argsort((mean[ids] - p[r]).norm(dim=-1))][: k - 1]
        rows[r, 1 : 1 + ids.numel()] = ids
    return rows


def contour_candidates(
    mean: torch.Tensor, landmarks68: torch.Tensor, face_mask: torch.Tensor, band_mm: float = 3.0, k: int = 24
) -> torch.Tensor:
    """Candidate vertex rows per jaw landmark (:func:`contour_row`; the chin's row is its vertex).

    mean (V,3) mm; landmarks68 (68,) vertex ids; face_mask (V,) bool (vertices allowed: the
    face region). Returns (17, k) long vertex ids (rows padded by repeating the landmark vertex).
    """
    jaw = [int(landmarks68[j]) for j in JAW]
    rows = torch.full((len(JAW), k), jaw[CHIN], dtype=torch.long)
    sides = [j for j in JAW if j != CHIN]
    rows[sides] = contour_rows(mean, [jaw[j] for j in sides], face_mask, band_mm, k)
    return rows


def select_contour(screen_xy: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Pick, per view, the silhouette vertex of each candidate row.

    screen_xy (B,V,2) pixels (x right); rows (17,k). Landmarks 0–7 take the minimum x
    (image left), 9–16 the maximum. Returns (B,17) vertex ids.
    """
    x = screen_xy[..., 0][:, rows]  # (B,17,k)
    sign = constant(tuple(-1.0 if j < CHIN else 0.0 if j == CHIN else 1.0 for j in range(rows.shape[0])), x.device,
                    torch.float32)
    best = (x * sign[None, :, None]).argmax(-1)  # (B,17)
    return rows[torch.arange(rows.shape[0], device=x.device)[None], best]
