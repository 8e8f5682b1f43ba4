"""Completing the albedo where no view sees the head: the face's hidden half from its mirror, and
everything else by a smooth continuation of the seen skin over the mesh.

:func:`backend.texture.delit_albedo` blends the views into one map and an opacity (the texture's
coverage, :func:`backend.texture.texture_opacity`). Then

- :func:`mirror_complete`: a face texel no view sees well takes the blended colour of its mirror
  texel on the other half (:func:`backend.occlusion.mirror_texels`; the same weighted mean as
  :func:`backend.occlusion.mirror_fill`), by the mirror's opacity times the texel's own
  transparency, fading out over a feather at the face region's edge (:func:`mirror_reach`);
- :func:`harmonic_fill`: the rest of the head takes a screened-Laplacian (harmonic) extension of
  the seen skin, solved on the mesh's vertex graph (so UV tiles and island seams cannot show) and
  interpolated back into the UV layout: equal to the skin next to the coverage edge, tending to
  the head's skin colour (:func:`skin_colour`) over ``FillSettings.decay_mm``.

Letters: H×W UV texels, N vertices, F faces, E edges.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as Fn
from scipy.ndimage import distance_transform_edt
from scipy.sparse.linalg import splu

from .blend import linear_ramp, smoothstep
from .detail import masked_lowpass
from .image_filters import luminance_ratio
from .occlusion import mirror_fill

__all__ = ["FillSettings", "FillLayout", "fill_layout", "mirror_reach", "mirror_donor", "mirror_complete", "skin_colour",
           "skin_tone", "harmonic_fill"]



@dataclass(frozen=True)
class FillSettings:
    """- ``mirror_feather_mm``: the mirror completion fades out over about twice this (Gaussian
      σ) inside the edge of the face region that has mirrors;
    - ``decay_mm``: far from the seen skin the fill tends to the head's skin colour over about
      this distance (the screening length of the harmonic extension);
    - ``source_strength``: how firmly a fully seen skin vertex holds its colour (mm⁻², against
      the graph Laplacian's 1/edge² weights: ≫ 1 is nearly a fixed value);
    - ``min_edge_mm``: edges shorter than this count as this long (the lids' and lips' tiny
      edges would otherwise dominate the Laplacian);
    - ``texels_per_tile``: the fill's grid (it is smooth; upsampled bilinearly to the albedo's);
    - ``donor_coverage``: a texel gives its colour to its mirror from the first summed view
      confidence, fully from the second (:func:`mirror_donor`);
    - ``tone_dark``, ``tone_bright``: luminance ratios to the skin colour between which a seen
      skin texel stops being a source of the fill (:func:`skin_tone`)."""

    mirror_feather_mm: float = 4.0
    decay_mm: float = 30.0
    source_strength: float = 10.0
    min_edge_mm: float = 0.5
    texels_per_tile: int = 256
    donor_coverage: tuple[float, float] = (0.3, 0.7)
    tone_dark: tuple[float, float] = (0.6, 0.8)
    tone_bright: tuple[float, float] = (1.25, 1.5)


@dataclass(frozen=True)
class FillLayout:
    """What :func:`harmonic_fill` needs of the mesh and its UV layout (model-only, cacheable).

    - ``edges`` (E,2) int64 vertex pairs, ``edge_weight`` (E,) 1/length² (mm⁻², the template mesh);
    - ``texel_face`` (H,W) int64 the triangle each texel lies on, ``texel_bary`` (H,W,3) its
      barycentrics (texels off every triangle: those of the nearest texel on one, so the
      fill has no gutter);
    - ``inside`` (H,W) bool: texels on a triangle;
    - ``vertex_mass`` (N,) Σ of the barycentrics of the texels inside (how many texels a vertex
      holds)."""

    edges: torch.Tensor
    edge_weight: torch.Tensor
    texel_face: torch.Tensor
    texel_bary: torch.Tensor
    inside: torch.Tensor
    vertex_mass: torch.Tensor


def fill_layout(verts: torch.Tensor, faces: torch.Tensor, face_idx: torch.Tensor, bary: torch.Tensor,
                settings: FillSettings = FillSettings()) -> FillLayout:
    """:class:`FillLayout` of a mesh: verts (N,3) mm (the model's template), faces (F,3), and its
    UV rasterisation face_idx (H,W) int64 (−1 off the triangles) and bary (H,W,3)."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(1).values
    edges = torch.unique(e, dim=0)  # (E,2)
    length = (verts[edges[:, 0]] - verts[edges[:, 1]]).norm(dim=-1).clamp_min(settings.min_edge_mm)
    inside = face_idx >= 0
    known = inside.cpu().numpy()
    if known.any() and not known.all():
        rows, cols = distance_transform_edt(~known, return_distances=False, return_indices=True)
        near = torch.from_numpy(rows * known.shape[1] + cols).to(face_idx.device)  # (H,W) nearest inside texel
    else:
        near = torch.arange(known.size, device=face_idx.device).view(known.shape)
    fi, b = face_idx.flatten()[near], bary.reshape(-1, 3)[near]
    mass = torch.zeros(verts.shape[0], dtype=torch.float64, device=verts.device)
    mass.index_add_(0, faces[face_idx[inside]].reshape(-1), bary[inside].reshape(-1).double())
    return FillLayout(edges=edges, edge_weight=(1.0 / length.double() ** 2), texel_face=fi, texel_bary=b.float(),
                      inside=inside, vertex_mass=mass)


def mirror_reach(valid: torch.Tensor, inside: torch.Tensor, feather_texels: float) -> torch.Tensor:
    """How far the mirror completion reaches, (H,W) in [0,1]: 1 inside the region ``valid``
    (H,W) bool (:func:`backend.occlusion.mirror_texels`) beyond about 2 × ``feather_texels``
    from its edge, 0 outside it, a smooth ramp between; the blur is normalised over the texels
    ``inside`` (H,W) bool some triangle covers, so UV island borders do not fade it."""
    H, W = valid.shape
    v, m = valid.float().view(1, 1, H, W), inside.float().view(1, 1, H, W)
    soft = masked_lowpass(v, m, feather_texels)[0, 0]
    return smoothstep(2.0 * soft - 1.0) * valid


def mirror_donor(coverage: torch.Tensor, settings: FillSettings = FillSettings()) -> torch.Tensor:
    """How much a texel may give its colour to its mirror, (H,W) in [0,1]: a smooth ramp of the
    views' summed confidence ``coverage`` (H,W) over ``settings.donor_coverage``; the rim a view
    sees at a grazing angle (stretched, smeared) gives nothing."""
    lo, hi = settings.donor_coverage
    return smoothstep((coverage - lo) / (hi - lo))


def mirror_complete(colour: torch.Tensor, opacity: torch.Tensor, donor: torch.Tensor, grid: torch.Tensor,
                    reach: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The face's hidden half from its mirror: colour (H,W,C) the blended map (any channels),
    opacity (H,W) in [0,1] how much of it is seen (:func:`backend.texture.texture_opacity`), donor
    (H,W) in [0,1] (:func:`mirror_donor`), grid (H,W,2) each texel's mirror
    (:func:`backend.occlusion.mirror_texels`), reach (H,W) in [0,1] (:func:`mirror_reach`).

    A texel's own colour holds with its opacity, less the amount by which its mirror is the
    better donor (so the completion fades over the rim a view sees at a grazing angle, not over
    the opacity's few millimetres; on a frontal face both halves are donors alike and keep their
    colours); the rest goes to the mirror's colour (weighted by opacity × donor there) as far as
    the mirror is a donor and ``reach`` allows (:func:`backend.occlusion.mirror_fill`). The work
    is done on the box that ``reach`` covers (the mirrors of its texels lie in it).
    Returns (colour (H,W,C), opacity (H,W) in [0,1]: the larger of the given one and the sum of
    both weights)."""
    H, W = opacity.shape
    rows, cols = (reach > 0).any(1).nonzero()[:, 0], (reach > 0).any(0).nonzero()[:, 0]
    if rows.numel() == 0:
        return colour, opacity
    margin = 2  # the bilinear taps at the mirror
    r0, r1 = max(0, int(rows[0]) - margin), min(H, int(rows[-1]) + 1 + margin)
    c0, c1 = max(0, int(cols[0]) - margin), min(W, int(cols[-1]) + 1 + margin)
    box = (slice(r0, r1), slice(c0, c1))
    size = grid.new_tensor([W, H])
    g = ((grid[box] + 1.0) * size - 2.0 * grid.new_tensor([c0, r0])) / grid.new_tensor([c1 - c0, r1 - r0]) - 1.0
    o, d, r = opacity[box], donor[box], reach[box]
    d_mirror = Fn.grid_sample(d[None, None], g[None], mode="bilinear", align_corners=False)[0, 0]
    own = o * (1.0 - r * (d_mirror - d).clamp(0.0, 1.0))  # (h,w) the trust in the texel's own colour
    part, total = mirror_fill(colour[box][None], own[None], ((1.0 - own) * r)[None], g, d[None])
    out, alpha = colour.clone(), opacity.clone()
    out[box], alpha[box] = part[0], torch.maximum(o, total[0].clamp(0.0, 1.0))
    return out, alpha


def skin_colour(colour: torch.Tensor, source: torch.Tensor, fallback: tuple[float, float, float]) -> torch.Tensor:
    """The head's skin colour (3,): the per-channel median of ``colour`` (H,W,3) over the texels
    where ``source`` (H,W) ≥ 0.5 (seen skin), else ``fallback``."""
    pick = source >= 0.5
    if not bool(pick.any()):
        return torch.tensor(fallback, dtype=colour.dtype, device=colour.device)
    return colour[pick].median(0).values


def skin_tone(colour: torch.Tensor, skin: torch.Tensor, settings: FillSettings = FillSettings()) -> torch.Tensor:
    """1 where a colour (…,3) has the skin's brightness, (…) in [0,1]: its luminance over that
    of ``skin`` (3,) ramps from 0 to 1 over ``settings.tone_dark`` and back to 0 over
    ``settings.tone_bright``; a jaw's shadow, a beard, a highlight or a grey stubble are not
    continued by the fill."""
    ratio = luminance_ratio(colour, skin)
    (d0, d1), (b0, b1) = settings.tone_dark, settings.tone_bright
    return linear_ramp(ratio, (d0, d1)) * linear_ramp(ratio, (b1, b0))


def harmonic_fill(colour: torch.Tensor, source: torch.Tensor, skin: torch.Tensor, faces: torch.Tensor,
                  layout: FillLayout, settings: FillSettings = FillSettings()) -> torch.Tensor:
    """A smooth fill of the whole layout from the seen skin: colour (H,W,3), source (H,W) in [0,1]
    how much each texel counts as seen skin, skin (3,) the colour far from it, faces (F,3);
    ``layout`` at (⌈H/k⌉, ⌈W/k⌉) texels for a whole k (the fill is smooth: it is solved and
    interpolated on that grid and upsampled bilinearly).

    The texels' colours are averaged onto the vertices (barycentric shares; a vertex's source
    weight q_i is the share of its texels that are sources), then on the vertex graph
    ``k·q_i (x_i − c_i) + Σ_j w_ij (x_i − x_j) + ε (x_i − skin) = 0`` is solved (w_ij = 1/edge²,
    k = ``source_strength``, ε = 1.5/``decay_mm``²: a texel's colour is held where skin is seen
    and relaxes to ``skin`` over ≈ ``decay_mm``), and the vertex colours are interpolated back.
    Returns (H,W,3), defined on every texel (gutters: the nearest triangle's)."""
    H, W = source.shape
    h, w = layout.inside.shape
    k = -(-H // h)
    dev, dt = colour.device, colour.dtype
    pad = (0, k * w - W, 0, k * h - H)
    pooled = Fn.avg_pool2d(Fn.pad(torch.cat([colour * source[..., None], source[..., None]], -1).permute(2, 0, 1), pad),
                           k)  # (4,h,w) the k×k means of colour × source and of source
    src = pooled[3]
    rgb = (pooled[:3] / src.clamp_min(1e-12)).permute(1, 2, 0)  # (h,w,3)
    N = layout.vertex_mass.shape[0]
    pick = (src > 0) & layout.inside
    corners = faces[layout.texel_face[pick]].reshape(-1)  # (3P,)
    share = (layout.texel_bary[pick] * src[pick][:, None]).reshape(-1).double()  # (3P,)
    num = torch.zeros(N, 3, dtype=torch.float64, device=dev)
    num.index_add_(0, corners, share[:, None] * rgb[pick].double().repeat_interleave(3, 0))
    den = torch.zeros(N, dtype=torch.float64, device=dev).index_add_(0, corners, share)
    q = (den / layout.vertex_mass.clamp_min(1e-12)).clamp(0.0, 1.0).cpu().numpy()  # (N,) source weight
    c = (num / den.clamp_min(1e-12)[:, None]).cpu().numpy()  # (N,3) the sources' mean colour
    strength, eps = settings.source_strength, 1.5 / settings.decay_mm**2
    i, j = layout.edges[:, 0].cpu().numpy(), layout.edges[:, 1].cpu().numpy()
    ew = layout.edge_weight.cpu().numpy()
    diagonal = np.bincount(i, ew, N) + np.bincount(j, ew, N) + strength * q + eps
    A = sp.csc_matrix((np.r_[-ew, -ew, diagonal], (np.r_[i, j, np.arange(N)], np.r_[j, i, np.arange(N)])),
                      shape=(N, N))
    b = (strength * q)[:, None] * c + eps * skin.double().cpu().numpy()[None]
    lu = splu(A, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})  # A is symmetric positive definite
    x = torch.from_numpy(lu.solve(b)).to(dev, dt)  # (N,3)
    low = torch.einsum("hwkc,hwk->chw", x[faces[layout.texel_face]], layout.texel_bary.to(dt))  # (3,h,w)
    if k > 1:
        low = Fn.interpolate(low[None], scale_factor=k, mode="bilinear", align_corners=False)[0, :, :H, :W]
    return low.permute(1, 2, 0).clamp(0.0, 1.0)
