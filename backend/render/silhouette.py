"""A soft silhouette: hard coverage inside, a sigmoid fringe outside whose value depends on the
distance to the nearest covering triangle, so silhouette edges receive gradients."""
from __future__ import annotations

import torch
import torch.nn.functional as Fn

from .rasterize import Fragments

__all__ = ["soft_silhouette"]


def soft_silhouette(
    screen_verts: torch.Tensor,
    faces: torch.Tensor,
    fragments: Fragments,
    sigma: float = 0.5,
    radius: int = 1,
) -> torch.Tensor:
    """Soft coverage in [0,1] for a silhouette loss.

    screen_verts (B,V,3) pixels (as rasterised), faces (F,3), fragments from :func:`rasterize`.
    Covered pixels get 1. An uncovered pixel whose (2·radius+1)² window holds covered pixels
    gets ``2·sigmoid(−d/sigma)``, d ≥ 0 its distance in pixels to the nearest of those pixels'
    triangles (edge-line approximation near corners); other pixels get 0. Alpha → 1 as an edge
    approaches the pixel centre, so moving silhouette edges changes the fringe smoothly:
    differentiable w.r.t. ``screen_verts``. Returns (B,H,W) in their dtype.
    """
    if sigma <= 0 or radius < 1:
        raise ValueError(f"sigma must be > 0 and radius ≥ 1, got {sigma}, {radius}")
    face_idx = fragments.face_idx
    B, H, W = face_idx.shape
    k = 2 * radius + 1
    covered = face_idx >= 0
    alpha = covered.to(screen_verts.dtype)
    # Candidate faces: those covering any pixel of the k×k window (unfold on float ids + 1).
    ids = (face_idx + 1).to(torch.float64)[:, None]  # 0 = background; exact for < 2^53 faces
    win = Fn.unfold(Fn.pad(ids, (radius,) * 4), k).long() - 1  # (B,k²,H·W)
    win = win.transpose(1, 2).reshape(B * H * W, k * k)
    fringe = (~covered.reshape(-1)) & (win >= 0).any(1)
    pix = fringe.nonzero().squeeze(1)
    if pix.numel() == 0:
        return alpha
    cand = win.index_select(0, pix)  # (N,k²)
    valid = cand >= 0
    b = pix // (H * W)
    rem = pix % (H * W)
    p = torch.stack([(rem % W), (rem // W)], -1).to(screen_verts.dtype)  # (N,2) x, y
    vidx = faces.long().index_select(0, cand.clamp_min(0).reshape(-1)).view(-1, k * k, 3)
    vidx = vidx + (b * screen_verts.shape[1]).view(-1, 1, 1)
    tri = screen_verts[..., :2].reshape(-1, 2).index_select(0, vidx.reshape(-1)).view(-1, k * k, 3, 2)
    a = tri
    e = tri.roll(-1, dims=2) - tri  # edge i from vertex i to i+1, (N,k²,3,2)
    rel = p[:, None, None, :] - a
    cross = e[..., 0] * rel[..., 1] - e[..., 1] * rel[..., 0]  # (N,k²,3)
    area = (e[..., 0, 0] * (-e[..., 2, 1]) - e[..., 0, 1] * (-e[..., 2, 0]))  # signed 2·area
    sign = torch.where(area >= 0, 1.0, -1.0).to(cross.dtype)[..., None]
    dist_in = cross * sign / e.norm(dim=-1).clamp_min(1e-12)  # > 0 inside each edge's half-plane
    d = (-dist_in.amin(-1)).clamp_min(0.0)  # distance outside the triangle (≥ 0)
    d = torch.where(valid, d, torch.full_like(d, float("inf")))
    soft = 2.0 * torch.sigmoid(-d.amin(-1) / sigma)  # (N,)
    return alpha.reshape(-1).index_copy(0, pix, soft).view(B, H, W)
