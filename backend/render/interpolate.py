"""Attribute interpolation over fragments and UV texture sampling."""
from __future__ import annotations

import torch

from .sample import grid_sample_bilinear

__all__ = ["interpolate", "sample_texture", "uv_to_grid"]


def interpolate(
    vertex_attrs: torch.Tensor,
    face_idx: torch.Tensor,
    bary: torch.Tensor,
    faces: torch.Tensor | None = None,
) -> torch.Tensor:
    """Barycentric interpolation of attributes at each pixel.

    vertex_attrs: per-vertex (B,V,C) or (V,C) (shared by the batch) when ``faces`` is given;
      otherwise per face corner (B,F,3,C) or (F,3,C).
    faces: (F,3) int indices into ``vertex_attrs`` — the mesh's ``faces`` for vertex
      attributes, or a separate index buffer for face-varying ones (``uv`` with ``faces_uv``,
      so UV seams stay sharp).
    face_idx: (B,H,W) int64 (−1 background), bary: (B,H,W,3), as in :class:`Fragments`. A
      batch of 1 broadcasts against attributes of batch B (e.g. one UV rasterisation).
    Returns (B,H,W,C), zero on background; differentiable w.r.t. ``vertex_attrs`` and ``bary``.
    """
    if face_idx.dim() != 3 or bary.shape != face_idx.shape + (3,):
        raise ValueError(f"face_idx must be (B,H,W) and bary (B,H,W,3), got {tuple(face_idx.shape)}, {tuple(bary.shape)}")
    per_corner = faces is None
    batched = vertex_attrs.dim() == (4 if per_corner else 3)
    if vertex_attrs.dim() not in ((3, 4) if per_corner else (2, 3)):
        want = "(B,F,3,C) or (F,3,C)" if per_corner else "(B,V,C) or (V,C)"
        raise ValueError(f"vertex_attrs must be {want}, got {tuple(vertex_attrs.shape)}")
    B = max(face_idx.shape[0], vertex_attrs.shape[0] if batched else 1)
    _, H, W = face_idx.shape
    if face_idx.shape[0] not in (1, B) or (batched and vertex_attrs.shape[0] not in (1, B)):
        raise ValueError(f"batch sizes do not match: fragments {face_idx.shape[0]}, attributes {vertex_attrs.shape[0]}")
    C = vertex_attrs.shape[-1]
    if per_corner:
        corner = vertex_attrs.reshape(-1, 3, C) if batched else vertex_attrs  # (B·F,3,C) / (F,3,C)
        n_per_batch = vertex_attrs.shape[-3]
    else:
        corner = None
        n_per_batch = vertex_attrs.shape[-2]

    fi = face_idx.expand(B, H, W)
    br = bary.expand(B, H, W, 3)
    mask = fi >= 0
    f = fi.clamp_min(0)
    if batched and vertex_attrs.shape[0] == B and B > 1:
        offset = (torch.arange(B, device=f.device) * n_per_batch).view(B, 1, 1)
    else:
        offset = None
    if per_corner:
        idx = f if offset is None else f + offset
        flat = corner.reshape(-1, 3 * C).index_select(0, idx.reshape(-1))  # (B·H·W,3C)
        v0, v1, v2 = flat[:, :C], flat[:, C : 2 * C], flat[:, 2 * C :]
    else:
        vid = faces.long().index_select(0, f.reshape(-1))  # (B·H·W,3)
        if offset is not None:
            vid = vid + offset.reshape(B, 1).expand(B, H * W).reshape(-1, 1)
        table = vertex_attrs.reshape(-1, C)
        v0, v1, v2 = (table.index_select(0, vid[:, i].contiguous()) for i in range(3))
    b = br.reshape(-1, 3).to(v0.dtype)
    out = (v0 * b[:, 0:1] + v1 * b[:, 1:2] + v2 * b[:, 2:3]).view(B, H, W, C)
    return out * mask[..., None].to(out.dtype)


def uv_to_grid(uv: torch.Tensor, u_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """UV (…,2) (u right, v up) → ``grid_sample`` coordinates in [−1,1] (x right, y down) for an
    image stored top row = v 1 whose width spans ``u_range`` (ICT's two tiles: ``(0, 2)``)."""
    u0, u1 = u_range
    gx = (uv[..., 0] - u0) * (2.0 / (u1 - u0)) - 1.0
    gy = 1.0 - 2.0 * uv[..., 1]
    return torch.stack([gx, gy], -1)


def sample_texture(
    texture: torch.Tensor,
    uv: torch.Tensor,
    u_range: tuple[float, float] = (0.0, 1.0),
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bilinear texture lookup.

    texture: (B,Ht,Wt,C) or (Ht,Wt,C), top row = v 1, u right; its width spans ``u_range``
      (texel centres at u = u0 + (j+0.5)/Wt·(u1−u0)). Edges clamp.
    uv: (B,H,W,2). mask: optional (B,H,W) bool, output zeroed where False.
    Returns (B,H,W,C); differentiable w.r.t. texture and uv.
    """
    if texture.dim() == 3:
        texture = texture[None]
    if texture.dim() != 4 or uv.dim() != 4 or uv.shape[-1] != 2:
        raise ValueError(f"texture must be (B,Ht,Wt,C) and uv (B,H,W,2), got {tuple(texture.shape)}, {tuple(uv.shape)}")
    if u_range[1] <= u_range[0]:
        raise ValueError(f"u_range must be increasing, got {u_range}")
    B = uv.shape[0]
    tex = texture.permute(0, 3, 1, 2).to(uv.dtype)  # (B,C,Ht,Wt)
    if tex.shape[0] == 1 and B > 1:
        tex = tex.expand(B, -1, -1, -1)
    elif tex.shape[0] != B:
        raise ValueError(f"texture batch {tex.shape[0]} does not match uv batch {B}")
    out = grid_sample_bilinear(tex, uv_to_grid(uv, u_range), padding_mode="border", align_corners=False)
    out = out.permute(0, 2, 3, 1)
    if mask is not None:
        out = out * mask[..., None].to(out.dtype)
    return out
