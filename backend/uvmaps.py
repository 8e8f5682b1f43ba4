"""UV maps of the coarse mesh and the stage-2 network input.

The detail maps cover the **face tile** (u ∈ [0,1]) of the model's UV layout at full resolution
(256² default, 512² high quality); for single-tile models that is the whole layout. The albedo
covers every tile (see :mod:`backend.reconstruct`). UV images are stored top row = v 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as Fn

from .camera import Camera
from .cross import cross
from .facemodel import FaceModel
from .geometry import phong_points
from .lighting import vertex_normals
from .render import Fragments, interpolate, rasterize_uv, unwrap_image

FACE_TILE = (0.0, 1.0)
MM_PER_TEXEL_512 = 0.57  # ICT's face tile: millimetres a texel spans at 512 texels per tile


def texels_per_mm(height: int) -> float:
    """Texels per millimetre on ICT's face tile in a layout ``height`` texels tall (one tile)."""
    return height / 512 / MM_PER_TEXEL_512


@dataclass(frozen=True)
class UVLayout:
    """The face tile rasterised at ``size``²: per-texel face index/barycentrics (batch 1) and
    the valid-texel mask (1,size,size) bool."""

    size: int
    frags: Fragments
    valid: torch.Tensor


def face_tile_triangles(uv: torch.Tensor, faces_uv: torch.Tensor) -> torch.Tensor:
    """(F,) bool: the triangles whose UV centroid lies in the face tile (u < 1)."""
    return uv[faces_uv].mean(1)[:, 0] < FACE_TILE[1]


def face_tile_layout(model: FaceModel, size: int) -> UVLayout:
    """Rasterise the model's face tile at ``size``×``size`` texels."""
    frags = rasterize_uv(model.uv, model.faces_uv, size, size, FACE_TILE)
    return UVLayout(size=size, frags=frags, valid=frags.face_idx >= 0)


def uv_position_map(verts: torch.Tensor, faces: torch.Tensor, layout: UVLayout, curved: bool = True) -> torch.Tensor:
    """Coarse UV position map: the surface point (mm) under each texel. Returns (B,S,S,3), 0 off-mesh.

    verts (B,V,3) mm, faces (F,3). ``curved`` (default): Phong tessellation of each triangle
    (the linear point's projections onto the three vertex tangent planes, blended by the
    barycentrics, :func:`backend.geometry.phong_points`), a smooth surface that meets the vertex
    normals, as a renderer's smooth shading shows the coarse mesh. Flat (``curved=False``) triangles are
    up to ~1 cm across on ICT's neck: a dense mesh on them shows every coarse facet as a crease.
    """
    frags = layout.frags
    flat = interpolate(verts, frags.face_idx, frags.bary, faces)
    if not curved:
        return flat
    corners = faces.long()[frags.face_idx[0].clamp_min(0)]  # (S,S,3) vertex ids
    p, n = verts[:, corners], vertex_normals(verts, faces.long())[:, corners]  # (B,S,S,3 corners,3)
    return phong_points(flat, p, n, frags.bary.to(flat.dtype)) * layout.valid[..., None].to(flat.dtype)


def grid_normals(positions: torch.Tensor, valid: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """Per-texel unit normals of a position map by central differences over valid neighbours.

    positions (B,S,S,3); valid (1|B,S,S) bool. u runs along columns (right), v along rows
    (up = decreasing row), so n = ∂P/∂u × ∂P/∂v points out of a counter-clockwise UV layout.
    Where a neighbour is invalid the one-sided difference is used. ``reference`` (B,S,S,3):
    normals are flipped to agree with it (robust at folds). Returns (B,S,S,3), 0 off-mesh.
    """
    v = valid.to(positions.dtype)[..., None].expand(positions.shape[0], -1, -1, 1)

    def diff(axis: int) -> torch.Tensor:
        # forward and backward differences with validity, along rows (axis=1) or columns (axis=2)
        p_next = torch.roll(positions, -1, axis)
        p_prev = torch.roll(positions, 1, axis)
        v_next = torch.roll(v, -1, axis)
        v_prev = torch.roll(v, 1, axis)
        n = positions.shape[axis]
        idx = torch.arange(n, device=positions.device)
        edge_next = (idx == n - 1).view(*([1] * axis), n, *([1] * (3 - axis)))
        edge_prev = (idx == 0).view(*([1] * axis), n, *([1] * (3 - axis)))
        v_next = v_next * (~edge_next)
        v_prev = v_prev * (~edge_prev)
        fwd = (p_next - positions) * v_next
        bwd = (positions - p_prev) * v_prev
        count = (v_next + v_prev).clamp_min(1.0)
        return (fwd + bwd) / count

    d_u = diff(2)  # +u: next column
    d_v = -diff(1)  # +v: previous row
    n = Fn.normalize(cross(d_u, d_v), dim=-1, eps=1e-12)
    if reference is not None:
        n = torch.where((n * reference).sum(-1, keepdim=True) < 0, -n, n)
    return n * v


def tangent_frames(positions: torch.Tensor, valid: torch.Tensor, normals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-texel tangent (∂P/∂u) and bitangent (∂P/∂v) orthonormalised against ``normals``
    (Gram–Schmidt), for tangent-space normal maps. Returns two (B,S,S,3)."""
    v = valid.to(positions.dtype)[..., None]
    t = torch.roll(positions, -1, 2) - torch.roll(positions, 1, 2)
    t = Fn.normalize(t - (t * normals).sum(-1, keepdim=True) * normals, dim=-1, eps=1e-12)
    b = cross(normals, t)
    return t * v, b * v


def unwrap_pair(
    crop: torch.Tensor,
    coarse_render: torch.Tensor,
    verts: torch.Tensor,
    faces: torch.Tensor,
    pose: torch.Tensor,
    camera: Camera,
    layout: UVLayout,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The stage-2 network input, as in the paper: the input photo and the coarse texture (rendered
    coarse face) unwrapped into the face tile at the same resolution, concatenated, with
    invisible texels masked out using the estimated pose.

    crop, coarse_render: (B,H,W,3) in [0,1] (same camera); verts (B,V,3) mm; pose (B,7).
    Returns (input (B,6,S,S), visible (B,1,S,S) float).
    """
    photo = unwrap_image(crop, verts, faces, pose, camera, layout.frags)
    coarse = unwrap_image(coarse_render, verts, faces, pose, camera, layout.frags)
    vis = photo.visible.to(crop.dtype)[..., None]
    pair = torch.cat([photo.texture * vis, coarse.texture * vis], -1).permute(0, 3, 1, 2)
    return pair, vis.permute(0, 3, 1, 2)
