"""Hard light left in the de-lit albedo: the shadow side of a side-lit face, and the fill colour.

A 2nd-order SH (:func:`backend.lighting.sh_shading`) cannot represent the attached shadow of a
strong side light (nor cast shadows), so after :func:`backend.texture.delight_views` divides by
it the shadowed half of the face stays dark. Faces are nearly symmetric in albedo at low
frequencies while such a light is not: :func:`shadow_gain` lifts, per view and before the
views are blended, a texel whose low-pass luminance (σ ≈ 1.5 cm) is darker than its mirror
texel's (:func:`backend.occlusion.mirror_texels`), only where the view's fitted shading is not
higher than at the mirror (the shadow side; a fit whose smooth albedo took up the light leaves
its SH flat, and then the photo alone decides), with a smooth gain field: brows, eyes, lips and beards keep their contrast
to the skin around them, and an asymmetric feature on the lit side stays. The gain spreads a
little beyond the face region (where texels have no mirror) along the shadow side.

:func:`lit_skin_colour` reads the fill colour (texels no view sees) from the texels the fitted
light lights well, not from a median over lit and shadowed skin.

Letters: V views, H×W UV texels, h×w the working grid (≈ ``texel_mm`` a texel).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as Fn

from .image_filters import gaussian_blur

__all__ = ["ShadowLiftSettings", "relative_shading", "shadow_gain", "lit_skin_colour"]

LUMA = (0.299, 0.587, 0.114)
TEXEL_MM_512 = 0.57  # mm per texel of a 512² face tile (ICT)


@dataclass(frozen=True)
class ShadowLiftSettings:
    """- ``texel_mm``: texel size of the working grid (the gain is smooth: no finer grid needed);
    - ``sigma_mm``: low-pass of the luminance compared with the mirror's;
    - ``spread_mm``: how far the gain reaches past the texels that have a mirror;
    - ``shadow``: the mirror's low-pass shading over the texel's at which the gain starts to
      apply, and from which it applies fully (1: the texel is lit no more than its mirror);
    - ``dead``: mirror / own luminance ratios below ``1 + dead[0]`` lift nothing, above
      ``1 + dead[1]`` fully (small asymmetries of real faces and even light stay);
    - ``max_gain``: the largest lift;
    - ``lit``: relative shading from which a texel counts as well lit for the fill colour;
    - ``quantile``: the view's well-lit shading level (a quantile of its confident texels);
    - ``band``: luminance quantiles of the well-lit texels the fill colour is the median of
      (shadows the SH left and dark features below, highlights above)."""

    texel_mm: float = 4.5
    sigma_mm: float = 15.0
    spread_mm: float = 20.0
    shadow: tuple[float, float] = (0.85, 1.0)
    dead: tuple[float, float] = (0.05, 0.2)
    max_gain: float = 3.0
    lit: float = 0.8
    quantile: float = 0.95
    band: tuple[float, float] = (0.1, 0.9)


def _ramp(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Smoothstep from 0 at ``lo`` to 1 at ``hi``."""
    t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def relative_shading(shading: torch.Tensor, weight: torch.Tensor, settings: ShadowLiftSettings = ShadowLiftSettings()
                     ) -> torch.Tensor:
    """Each view's shading luminance over its well-lit level: shading (V,H,W,3) the SH shading
    the photo was divided by (0 where unused), weight (V,H,W) the view's confidence. The level is
    the ``settings.quantile`` of the luminance over texels of confidence > 0.5 (all seen texels
    when none). Returns (V,H,W) ≥ 0 (0 where the view has no confidence)."""
    lum = shading @ shading.new_tensor(LUMA)  # (V,H,W)
    out = torch.zeros_like(lum)
    for i in range(lum.shape[0]):  # a loop over views
        core = weight[i] > 0.5
        core = core if core.any() else weight[i] > 0
        if core.any():
            level = torch.quantile(_thin(lum[i][core]), settings.quantile).clamp_min(1e-6)
            out[i] = lum[i] / level * (weight[i] > 0)
    return out


def _thin(x: torch.Tensor, most: int = 20000) -> torch.Tensor:
    """Every k-th row of x (N,...), at most about ``most`` rows: quantiles of a smooth field need no more."""
    return x[:: max(1, x.shape[0] // most)]


def _factor(height: int, width: int, texel_mm: float, settings: ShadowLiftSettings) -> int:
    """The largest pooling factor ≤ the working texel size that divides both H and W."""
    f = max(1, round(settings.texel_mm / texel_mm))
    while f > 1 and (height % f or width % f):
        f -= 1
    return f


def _smooth(x: torch.Tensor, w: torch.Tensor, sigma: float) -> torch.Tensor:
    """Weight-normalised Gaussian blur of x (B,1,h,w) with weights w (B,1,h,w) ≥ 0."""
    return gaussian_blur(x * w, sigma, padding="constant") / gaussian_blur(w, sigma, padding="constant").clamp_min(1e-6)


def shadow_gain(
    maps: torch.Tensor, weight: torch.Tensor, rel_shading: torch.Tensor, grid: torch.Tensor, valid: torch.Tensor,
    settings: ShadowLiftSettings = ShadowLiftSettings(),
) -> torch.Tensor:
    """The smooth gain (≥ 1) that lifts each view's shadow side to its mirror side's luminance.

    maps (V,H,W,3) de-lit colours, weight (V,H,W) their confidence (features such as eyes may be
    down-weighted; the low-pass is weight-normalised), rel_shading (V,H,W) from
    :func:`relative_shading`, grid (H,W,2) / valid (H,W) bool from
    :func:`backend.occlusion.mirror_texels` (H texels per face tile: ``TEXEL_MM_512`` · 512 / H
    mm a texel). Where a texel and its mirror are both seen, the ratio of the mirror's low-pass
    luminance to its own (σ ``sigma_mm``) past a dead zone is the lift; it spreads by a
    weight-normalised blur (σ ``spread_mm``) to texels without a mirror, fading with distance,
    and applies only where the texel's low-pass shading is no higher than its mirror's
    (``settings.shadow``).
    Returns (V,H,W) in [1, ``max_gain``], bilinearly upsampled from the working grid.
    """
    V, H, W = weight.shape
    texel = TEXEL_MM_512 * 512 / H
    f = _factor(H, W, texel, settings)
    mm = texel * f  # mm per working texel
    pool = (lambda x: Fn.avg_pool2d(x, f)) if f > 1 else (lambda x: x)
    w = weight[:, None]  # (V,1,H,W)
    lum = (maps @ maps.new_tensor(LUMA))[:, None]
    wl = pool(w)  # (V,1,h,w)
    yl = pool(lum * w) / wl.clamp_min(1e-6)
    sl = pool(rel_shading[:, None] * w) / wl.clamp_min(1e-6)
    sigma = settings.sigma_mm / mm
    y_lp, s_lp = _smooth(yl, wl, sigma), _smooth(sl, wl, sigma)
    seen = _ramp(gaussian_blur(wl, sigma, padding="constant"), 0.1, 0.4)  # (V,1,h,w) enough evidence around

    vf = valid.to(maps.dtype)[None, None]  # (1,1,H,W)
    vl = pool(vf)
    gl = pool(grid.permute(2, 0, 1)[None].to(maps.dtype) * vf) / vl.clamp_min(1e-6)  # (1,2,h,w) mean mirror position
    gl = gl[0].permute(1, 2, 0)[None].expand(V, -1, -1, -1)
    at = Fn.grid_sample(torch.cat([y_lp, seen, s_lp], 1), gl, mode="bilinear", align_corners=False)  # (V,3,h,w)
    ratio = at[:, :1] / y_lp.clamp_min(1e-3)
    lift = (ratio.clamp(max=settings.max_gain) - 1.0) * _ramp(ratio - 1.0, *settings.dead)
    # the side the fitted light calls the shadow side (or as lit as its mirror: a fit whose smooth
    # albedo took up the light leaves its SH flat); a texel it lights more than its mirror keeps its colour
    lift = lift * _ramp(at[:, 2:] / s_lp.clamp_min(1e-3), *settings.shadow)
    evidence = (vl > 0.5).to(maps.dtype) * seen * at[:, 1:2]  # (V,1,h,w)
    spread = _smooth(lift, evidence, settings.spread_mm / mm)
    reach = _ramp(gaussian_blur(evidence, settings.spread_mm / mm, padding="constant"), 0.05, 0.3)
    lift = evidence * lift + (1.0 - evidence) * spread * reach
    gain = 1.0 + lift.clamp_min(0.0) * seen
    if f > 1:
        gain = Fn.interpolate(gain, size=(H, W), mode="bilinear", align_corners=False)
    return gain[:, 0].clamp(1.0, settings.max_gain)


def lit_skin_colour(
    blended: torch.Tensor, coverage: torch.Tensor, rel_shading: torch.Tensor, weight: torch.Tensor,
    settings: ShadowLiftSettings = ShadowLiftSettings(),
) -> torch.Tensor | None:
    """The person's skin albedo for the texels no view sees: the per-channel median of the
    blended albedo (H,W,3) over texels of coverage (H,W) > 0.25 that some view with confidence
    > 0.5 (weight (V,H,W)) lights at ≥ ``settings.lit`` of its well-lit level (rel_shading
    (V,H,W), :func:`relative_shading`) and whose luminance lies in their ``settings.band`` of
    quantiles. None when fewer than 1 % of the covered texels (at least 50) are so lit.
    Returns (3,)."""
    seen = coverage > 0.25
    lit = ((rel_shading >= settings.lit) & (weight > 0.5)).any(0) & seen
    if int(lit.sum()) < max(50, 0.01 * int(seen.sum())):
        return None
    colours = _thin(blended[lit])  # (L,3)
    lum = colours @ colours.new_tensor(LUMA)
    lo, hi = torch.quantile(lum, lum.new_tensor(settings.band))
    return colours[(lum >= lo) & (lum <= hi)].median(0).values
