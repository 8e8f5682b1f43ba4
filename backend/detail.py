"""The UV render layer (the paper's stage 2): coarse UV position map + displacement → dense mesh.

Displacement is applied **along the coarse surface normal** (mm), not along the camera's depth
as in the paper: the map then means the same thing in every view, which multi-view blending and
the exported displacement/normal maps need, and it is what Blender's displacement expects.

The dense mesh has one vertex per valid texel of the face tile and two triangles per 2×2 block
of valid texels, oriented like the UV layout (counter-clockwise = outward for ICT), skipping
blocks whose 3-D edges are much longer than the texel spacing (UV seams/island borders).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .image_filters import gaussian_blur
from .uvmaps import UVLayout, face_tile_layout, face_tile_triangles, grid_normals, tangent_frames, uv_position_map


@dataclass(frozen=True)
class DenseTopology:
    """Fixed connectivity of the dense mesh for one UV layout and coarse shape.

    - ``texel_index``: (S·S,) long, dense vertex id of each texel (−1 for invalid texels);
    - ``texels``: (N,) long, flat texel index of each dense vertex;
    - ``faces``: (M,3) long dense vertex ids; ``uv``: (N,2) texel-centre UVs in the face tile.
    """

    size: int
    texel_index: torch.Tensor
    texels: torch.Tensor
    faces: torch.Tensor
    uv: torch.Tensor


def dense_topology(layout: UVLayout, coarse_positions: torch.Tensor, seam_factor: float = 8.0) -> DenseTopology:
    """Connect neighbouring valid texels into triangles.

    coarse_positions (1,S,S,3) mm (cut edges are measured on it). A 2×2 block (i,j),(i,j+1),
    (i+1,j),(i+1,j+1) gives triangles (a, c, b) and (b, c, d) in UV counter-clockwise order
    (rows grow downwards = v decreasing), each only when its three texels are valid and its
    edges are shorter than ``seam_factor`` × the median texel spacing. 8: the ears' UVs are
    stretched, and at 4 a fitted head lost ≈ 300 ear triangles (holes that showed as dark
    specks); without any limit only 15 more triangles join, the true cuts between UV islands.
    """
    return dense_topology_batch(layout, coarse_positions[:1], seam_factor)[0]


def dense_topology_batch(
    layout: UVLayout, coarse_positions: torch.Tensor, seam_factor: float = 8.0
) -> tuple[DenseTopology, torch.Tensor]:
    """:func:`dense_topology` of B coarse shapes at once (batched independent fits).

    coarse_positions (B,S,S,3) mm. Returns the union of the B topologies (the triangles any of
    them has, in :func:`dense_topology`'s order) and face_mask (B,M) bool: the union's triangles
    each shape has, for :func:`backend.render.render`'s ``face_mask``. Shape b's own topology is
    the union's faces where face_mask[b] (:func:`topology_subset`).
    """
    S = layout.size
    valid = layout.valid[0].reshape(-1)
    dev = valid.device
    texel_index = torch.full((S * S,), -1, dtype=torch.long, device=dev)
    texels = torch.nonzero(valid).flatten()
    texel_index[texels] = torch.arange(texels.numel(), device=dev)
    ii, jj = torch.meshgrid(torch.arange(S - 1, device=dev), torch.arange(S - 1, device=dev), indexing="ij")
    a = (ii * S + jj).reshape(-1)
    b, c, d = a + 1, a + S, a + S + 1
    # (row, col) → (u right, v up): a=(i,j) top-left, c=(i+1,j) below it. CCW in UV: a → c → b.
    cand = torch.cat([torch.stack([a, c, b], -1), torch.stack([b, c, d], -1)], 0)  # (C,3) flat texels
    p, q, r = cand.unbind(-1)
    keep = []
    for P in coarse_positions.reshape(coarse_positions.shape[0], -1, 3):
        spacing = (P[texels[1:]] - P[texels[:-1]]).norm(dim=-1)
        step = spacing[spacing > 0].median() if (spacing > 0).any() else torch.tensor(1.0, device=dev)
        limit = seam_factor * step
        ok = valid[p] & valid[q] & valid[r]
        ok &= ((P[p] - P[q]).norm(dim=-1) < limit) & ((P[q] - P[r]).norm(dim=-1) < limit) & ((P[r] - P[p]).norm(dim=-1) < limit)
        keep.append(ok)
    ok = torch.stack(keep)  # (B,C)
    union = ok.any(0)
    faces = texel_index[cand[union]]
    rows, cols = texels // S, texels % S
    uv = torch.stack([(cols.float() + 0.5) / S, 1.0 - (rows.float() + 0.5) / S], -1)
    return DenseTopology(size=S, texel_index=texel_index, texels=texels, faces=faces, uv=uv), ok[:, union]


def topology_subset(topology: DenseTopology, face_mask: torch.Tensor) -> DenseTopology:
    """The topology with only the faces where ``face_mask`` (M,) bool (one row of
    :func:`dense_topology_batch`'s mask)."""
    return replace(topology, faces=topology.faces[face_mask])


@dataclass
class DetailedSurface:
    """Displaced surface in UV and as a dense mesh (B batch).

    positions (B,S,S,3) mm; normals (B,S,S,3) of the displaced surface; coarse_positions and
    coarse_normals (B,S,S,3); delta_normals (B,3,S,S) = normals − coarse_normals (the paper's Δn); dense_verts
    (B,N,3) mm.
    """

    positions: torch.Tensor
    normals: torch.Tensor
    coarse_positions: torch.Tensor
    coarse_normals: torch.Tensor
    delta_normals: torch.Tensor
    dense_verts: torch.Tensor


def displace(
    coarse_positions: torch.Tensor, displacement: torch.Tensor, layout: UVLayout, topology: DenseTopology,
    coarse_normals: torch.Tensor | None = None,
) -> DetailedSurface:
    """Apply a UV displacement along the coarse normals (differentiable).

    coarse_positions (B,S,S,3) mm; displacement (B,1,S,S) mm. Returns :class:`DetailedSurface`.
    """
    valid = layout.valid
    if coarse_normals is None:
        coarse_normals = grid_normals(coarse_positions, valid)
    disp = displacement.permute(0, 2, 3, 1)  # (B,S,S,1)
    positions = coarse_positions + disp * coarse_normals
    normals = grid_normals(positions, valid, reference=coarse_normals)
    delta = (normals - coarse_normals).permute(0, 3, 1, 2)
    dense = positions.reshape(positions.shape[0], -1, 3)[:, topology.texels]
    return DetailedSurface(positions, normals, coarse_positions, coarse_normals, delta, dense)


def displaced_mesh(
    model, verts: torch.Tensor, displacement: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A renderable head whose face tile carries a UV displacement finer than the model's mesh
    (synthetic ground truth): the face tile as the dense UV mesh of :func:`dense_topology`
    displaced by ``displacement`` (S,S) mm along the coarse normals, plus the model's triangles
    outside the face tile. verts (1,V,3) mm. Returns (verts (1,N',3), faces, uv, faces_uv)."""
    S = displacement.shape[0]
    faces, uv, faces_uv = model.faces.cpu(), model.uv.cpu(), model.faces_uv.cpu()
    layout = face_tile_layout(model.cpu() if model.mean.device.type != "cpu" else model, S)
    coarse = uv_position_map(verts, faces, layout)
    topo = dense_topology(layout, coarse)
    surface = displace(coarse, displacement[None, None], layout, topo)
    return with_dense_face_tile((surface.dense_verts, topo.faces, topo.uv), (verts, faces, uv, faces_uv))


def with_dense_face_tile(
    dense: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    coarse: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One mesh of a dense face tile and the coarse triangles of the other tiles (scalp, neck).

    dense: (verts (1,N,3), faces (M,3), uv (N,2)), one UV per vertex; coarse: (verts (1,V,3),
    faces (F,3), uv (T,2), faces_uv (F,3)). Returns (verts (1,N+V,3), faces, uv, faces_uv)."""
    d_verts, d_faces, d_uv = dense
    verts, faces, uv, faces_uv = coarse
    other = ~face_tile_triangles(uv, faces_uv)
    n, t = d_verts.shape[1], d_uv.shape[0]
    return (torch.cat([d_verts, verts], 1), torch.cat([d_faces, faces[other] + n], 0),
            torch.cat([d_uv, uv], 0), torch.cat([d_faces, faces_uv[other] + t], 0))


def border_fade(valid: torch.Tensor, width: int) -> torch.Tensor:
    """(B,1,S,S) ramp from 0 on a UV island's border texels to 1 at ``width`` texels inside
    (chessboard distance), so a displacement vanishes where the dense tile meets the rest of the
    head (no cracks at the seam, in the dense mesh or under Blender's displacement modifier).
    valid (B,1,S,S) float in {0,1}."""
    inside = valid
    total = torch.zeros_like(valid)
    for _ in range(max(1, width)):  # erosion steps (width is a few texels)
        inside = 1.0 - torch.nn.functional.max_pool2d(1.0 - inside, 3, stride=1, padding=1)
        total = total + inside
    return total / max(1, width)


# The displacement fades out over 3 texels at 256² (≈ 3.4 mm on ICT's face tile), scaled with the map.
SEAM_FADE_TEXELS_256 = 3


def seam_fade(valid: torch.Tensor) -> torch.Tensor:
    """:func:`border_fade` over the detail maps' standard width (``SEAM_FADE_TEXELS_256`` at 256²,
    scaled with S): where the fitted displacement vanishes, and where previews blend the dense
    tile's normals into the coarse mesh's. valid (B,1,S,S) float in {0,1}."""
    return border_fade(valid, max(1, round(SEAM_FADE_TEXELS_256 * valid.shape[-1] / 256)))


def lowpass_normaliser(valid: torch.Tensor, sigma: float) -> torch.Tensor:
    """:func:`masked_lowpass`'s denominator, the blurred mask: valid (B,1,S,S) → (B,1,S,S).
    A loop over a fixed mask computes it once and passes it in."""
    return gaussian_blur(valid, sigma, padding="constant")


def masked_lowpass(
    x: torch.Tensor, valid: torch.Tensor, sigma: float, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Gaussian low-pass of a map restricted to its valid texels (normalised convolution, so the
    border of the UV island does not pull values towards zero).

    x (B,C,S,S); valid (B|1,1,S,S) float in [0,1]; sigma in texels; ``weight``:
    :func:`lowpass_normaliser` of ``valid`` when the caller keeps it, else computed.
    Returns (B,C,S,S), 0 off ``valid``.
    """
    if weight is None:
        weight = lowpass_normaliser(valid.expand(x.shape[0], 1, -1, -1), sigma)
    return gaussian_blur(x * valid, sigma, padding="constant") / weight.clamp_min(1e-6) * valid


def tangent_normal_map(surface: DetailedSurface, valid: torch.Tensor) -> torch.Tensor:
    """Tangent-space normal map of the detail w.r.t. the coarse surface (OpenGL convention:
    +X along +u, +Y along +v, +Z out), encoded in [0,1]; flat (0.5, 0.5, 1) off-mesh.
    Returns (B,S,S,3)."""
    t, b = tangent_frames(surface.coarse_positions, valid, surface.coarse_normals)
    n = surface.normals
    local = torch.stack([(n * t).sum(-1), (n * b).sum(-1), (n * surface.coarse_normals).sum(-1)], -1)
    local = torch.nn.functional.normalize(local, dim=-1, eps=1e-12)
    flat = torch.tensor([0.0, 0.0, 1.0], dtype=n.dtype, device=n.device)
    local = torch.where(valid[..., None], local, flat)
    return local * 0.5 + 0.5


def texel_evidence(
    face_idx: torch.Tensor, bary: torch.Tensor, weight: torch.Tensor, topology: DenseTopology, sigma: float = 1.5,
) -> torch.Tensor:
    """How much of each texel the photometric loss sees, in [0,1]: the loss mask's pixel weight
    splatted onto the dense mesh's texels (barycentric shares of each pixel's triangle), blurred
    over ``sigma`` texels and divided by the same splat of every rendered pixel. 1 where every
    pixel that shows the texel is in the mask, 0 where none is or the texel is not seen; the best
    view counts (max over views). A texel seen only at a grazing angle still reads its share.

    face_idx (V,H,W) long into ``topology.faces`` (−1 background); bary (V,H,W,3); weight (V,H,W)
    the loss mask in [0,1]. Returns (1,1,S,S) float.
    """
    S = topology.size
    V = face_idx.shape[0]
    hit = face_idx >= 0
    texel = topology.texels[topology.faces[face_idx.clamp_min(0)]]  # (V,H,W,3) flat texel ids
    offsets = (torch.arange(V, device=texel.device) * S * S).view(V, 1, 1, 1)
    share = bary.clamp_min(0.0) * hit[..., None].to(bary.dtype)  # (V,H,W,3)
    seen = torch.zeros(2, V * S * S, device=bary.device, dtype=bary.dtype)
    index = (texel + offsets).reshape(-1)
    seen[0].index_add_(0, index, (share * weight[..., None].to(bary.dtype)).reshape(-1))
    seen[1].index_add_(0, index, share.reshape(-1))
    maps = gaussian_blur(seen.view(2 * V, 1, S, S), sigma, padding="constant").view(2, V, 1, S, S)
    ratio = maps[0] / maps[1].clamp_min(1e-3)
    ratio = torch.where(maps[1] > 1e-3, ratio, torch.zeros_like(ratio))
    valid = (topology.texel_index >= 0).to(ratio.dtype).view(1, 1, S, S)
    return ratio.clamp(0.0, 1.0).amax(0, keepdim=True) * valid
