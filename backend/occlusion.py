"""Occluders in the albedo: what lies in front of the face (a bottle, a sweater, a hand's
shadow, a strand of hair) is kept out of the texture, and the texel takes its mirror's colour.

:func:`backend.texture.delit_albedo` trusts every colour inside the inner face, where brows,
eyes and lips are expected. This module finds the texels there that are not skin in the photo
(:func:`backend.skin.skin_weight`), lie outside the facial features (:func:`feature_mask`) and
whose mirror texel on the other half of the face is skin that the same view sees
(:func:`mirror_texels`): a beard, glasses or nostrils are on both halves and stay. Their
confidence goes to the mirror texel's colour instead (:func:`mirror_fill`).

Letters: V views, H×W UV texels, N vertices, F faces.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as Fn
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

from .align import BROW_BELOW, LEFT_EYE, RIGHT_EYE, _polygon_mask, feature_polygons
from .blend import linear_ramp
from .image_filters import luminance_ratio, max_filter
from .render import interpolate, rasterize_uv

__all__ = ["OcclusionSettings", "feature_mask", "vertex_mirror", "mirror_texels", "not_darker", "occluded", "mirror_fill"]

EYE_MARGIN = 0.35  # eye polygons grown by this many eye widths (lashes, lids, make-up)


@dataclass(frozen=True)
class OcclusionSettings:
    """- ``mirror_tolerance_mm``: a vertex's mirror is the vertex nearest its reflection in the
      model's x = 0 plane, when within this distance (ICT's mean is symmetric to 0.05 mm);
    - ``mirror_clear_mm``: the mirror texel counts as skin only when no non-skin lies within this
      radius of it (so a glasses frame or a beard edge a few mm off its mirror stays);
    - ``seen``: a view's confidence at the mirror texel at which it counts as fully seen;
    - ``rim_mm``: an occluder grows by this much where its mirror is skin (its soft edge)."""

    mirror_tolerance_mm: float = 0.5
    mirror_clear_mm: float = 4.0
    seen: float = 0.5
    rim_mm: float = 1.5


def feature_mask(landmarks68: np.ndarray, size: int, soft_px: float = 0.0,
                 eye_margin: tuple[float, float] = (EYE_MARGIN, EYE_MARGIN), brow_below: float = BROW_BELOW) -> np.ndarray:
    """The facial features of a face crop: brows and lips (:func:`backend.align.feature_polygons`)
    and the eyes grown by ``eye_margin`` eye widths (at their corners, above and below).
    landmarks68 (68,2) in the crop's pixels. Returns (size,size) float32 in [0,1] (``soft_px``:
    Gaussian σ of the edges, pixels)."""
    lm = np.asarray(landmarks68, np.float64)
    eye_w = 0.5 * (np.linalg.norm(lm[39] - lm[36]) + np.linalg.norm(lm[45] - lm[42]))
    polys = list(feature_polygons(lm, brow_below))
    for eye in (lm[RIGHT_EYE], lm[LEFT_EYE]):
        radial = eye - eye.mean(0)
        radial /= np.linalg.norm(radial, axis=1, keepdims=True).clip(1e-9)
        polys.append(eye + np.asarray(eye_margin, np.float64) * eye_w * radial)  # (m·w)·r
    mask = np.zeros((size, size), bool)
    for poly in polys:
        mask |= _polygon_mask(poly, size, size)
    out = mask.astype(np.float32)
    return gaussian_filter(out, sigma=float(soft_px)).astype(np.float32) if soft_px > 0 else out


def vertex_mirror(mean: torch.Tensor, tolerance_mm: float) -> torch.Tensor:
    """(N,) int64: the vertex nearest each vertex's reflection x → −x of ``mean`` (N,3) mm
    (model space, x the face's left-right axis), −1 where none lies within ``tolerance_mm``."""
    pts = mean.detach().cpu().double().numpy()
    dist, idx = cKDTree(pts).query(pts * np.array([-1.0, 1.0, 1.0]))
    return torch.from_numpy(np.where(dist <= tolerance_mm, idx, -1)).long()


def mirror_texels(model, height: int, width: int, settings: OcclusionSettings = OcclusionSettings()
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each texel of the UV layout (``model.uv_tiles`` tiles side by side, H×W) sits on the
    other half of the face: the UV layout rasterised with, at each corner, the UV of the corner
    vertex's mirror (:func:`vertex_mirror`), interpolated. Returns the mirror's position as a
    :func:`torch.nn.functional.grid_sample` grid (H,W,2) (align_corners=False) and (H,W) bool:
    texels of the face region (``model.face_mask_regions``) whose three corners have mirrors
    within one UV island (the other texels have none)."""
    mirror = vertex_mirror(model.mean, settings.mirror_tolerance_mm).to(model.faces.device)
    faces, faces_uv, uv = model.faces, model.faces_uv, model.uv.float()
    uv_of = torch.zeros(model.mean.shape[0], dtype=torch.long, device=faces.device)
    uv_of[faces.reshape(-1)] = faces_uv.reshape(-1)  # a vertex's UV (on a seam: one of its copies)
    m = mirror[faces]  # (F,3)
    corners = uv[uv_of[m.clamp_min(0)]]  # (F,3,2) the mirrors' UVs
    span = (corners[:, :, None] - corners[:, None]).abs().amax((1, 2, 3))  # (F,) largest corner gap
    own = (uv[faces_uv][:, :, None] - uv[faces_uv][:, None]).abs().amax((1, 2, 3))
    region = torch.isin(model.region, torch.tensor(model.face_mask_regions, device=model.region.device))
    ok = (m >= 0).all(1) & (span <= 2.0 * own + 1e-6) & region[faces].all(1)  # (F,)

    frags = rasterize_uv(model.uv, faces_uv, height, width, (0.0, float(model.uv_tiles)))
    at = interpolate(corners, frags.face_idx, frags.bary)[0]  # (H,W,2) mirror UV
    fi = frags.face_idx[0]
    valid = (fi >= 0) & ok[fi.clamp_min(0)]
    grid = torch.stack([at[..., 0] / model.uv_tiles * 2.0 - 1.0, (1.0 - at[..., 1]) * 2.0 - 1.0], -1)
    return grid, valid


def not_darker(colours: torch.Tensor, skin: torch.Tensor, dark: float = 0.5, light: float = 0.8) -> torch.Tensor:
    """1 where a colour is not darker than skin, (T,) in [0,1]: the luminance of ``colours``
    (T,3) over that of ``skin`` (3,), 0 at ``dark`` or below, 1 at ``light`` or above. Hair,
    beards, glasses frames, nostrils and shadows are darker than skin; a bottle, a sweater or
    face paint need not be."""
    return linear_ramp(luminance_ratio(colours, skin), (dark, light))


def occluded(
    nonskin: torch.Tensor, checked: torch.Tensor, bright: torch.Tensor, confidence: torch.Tensor, grid: torch.Tensor,
    valid: torch.Tensor, settings: OcclusionSettings = OcclusionSettings(),
) -> torch.Tensor:
    """How likely each texel shows an occluder, (V,H,W) in [0,1]: where ``checked`` (V,H,W) in
    [0,1] (the inner face off the features; 0 off the seen texels), its photo is not skin
    (``nonskin`` (V,H,W) in [0,1]) and either not darker than skin (``bright`` (V,H,W),
    :func:`not_darker`) or its mirror (``grid`` (H,W,2), ``valid`` (H,W) from
    :func:`mirror_texels`) is skin in the same view, with no non-skin within
    ``settings.mirror_clear_mm`` of it, and seen (``confidence`` (V,H,W), before the skin terms).
    A dark non-skin texel whose mirror is not skin stays: beards, glasses frames, nostrils are on
    both halves. The occluder then grows by ``settings.rim_mm`` where the mirror is skin, so its
    soft edge (a mix of skin and occluder colours) goes with it."""
    nonskin = nonskin * checked
    V, H = nonskin.shape[:2]
    per_mm = H / 512 / 0.57  # texels per mm (≈ 0.57 mm a texel at 512 per tile)
    r = max(1, round(settings.mirror_clear_mm * per_mm))
    near = max_filter(nonskin[:, None], r)  # (V,1,H,W)
    seen = (confidence / settings.seen).clamp(0.0, 1.0)[:, None]
    at = Fn.grid_sample(torch.cat([near, seen], 1), grid[None].expand(V, -1, -1, -1).to(nonskin),
                        mode="bilinear", align_corners=False)  # (V,2,H,W) at the mirror texel
    mirror_skin = (1.0 - at[:, 0]).clamp(0.0, 1.0) * at[:, 1] * valid.to(nonskin)
    core = nonskin * torch.maximum(bright, mirror_skin)
    r = max(1, round(settings.rim_mm * per_mm))
    rim = max_filter(core[:, None], r)[:, 0] * mirror_skin * checked
    return torch.maximum(core, rim)


def mirror_fill(
    maps: torch.Tensor, weight: torch.Tensor, lost: torch.Tensor, grid: torch.Tensor, donor: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Give the confidence a view lost to an occluder to that view's mirror texel.

    maps (V,H,W,C) one view's colours (any channels), weight (V,H,W) its confidence after the occluder was
    taken out, lost (V,H,W) ≥ 0 the confidence taken out (:func:`occluded` × the confidence),
    grid (H,W,2) from :func:`mirror_texels`, donor (V,H,W) in [0,1] how much a texel may give
    its colour (its skin weight: an occluder is not copied across). Each texel becomes the
    weighted mean of its own colour (``weight``) and the mirror's (``lost`` × the mirror's
    ``weight`` × ``donor``, ≤ 1); where neither remains the fill colour takes over later.
    Returns (maps (V,H,W,C), weight (V,H,W))."""
    V = maps.shape[0]
    g = grid[None].expand(V, -1, -1, -1).to(maps)
    give = weight * donor
    at = Fn.grid_sample(torch.cat([maps * give[..., None], give[..., None]], -1).permute(0, 3, 1, 2), g,
                        mode="bilinear", align_corners=False).permute(0, 2, 3, 1)  # (V,H,W,C+1)
    mirror_w = at[..., -1]
    mirror_rgb = at[..., :-1] / mirror_w.clamp_min(1e-6)[..., None]  # weight-normalised: no dark rim
    gift = lost * mirror_w.clamp(0.0, 1.0)
    total = weight + gift
    out = (maps * weight[..., None] + mirror_rgb * gift[..., None]) / total.clamp_min(1e-12)[..., None]
    return torch.where(total[..., None] > 0, out, maps), total
