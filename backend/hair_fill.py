"""Hair over the forehead, the temples and the face's upper rim kept out of the albedo: its
texels take the colour of the surrounding skin of the same photo.

A fringe or a strand usually covers both halves of the face, so :mod:`backend.occlusion`'s mirror
has nothing to give. Within the hair zone (:func:`hair_zone`: above the brows and the lines from
the brows' outer ends down to the face outline just below the eyes, off the brows and eyes), a texel is
hair (:func:`hair_evidence`) when its colour is not skin (the skin weight) or departs from the
local skin colour (:func:`local_skin`, a smooth average of the view's skin at ≈ 18 mm): darker
(hair, the shadow it casts), brighter (grey and white hair) or of another hue (blond, grey on a
colour photo). Hair texels and a thin rim around them take a push-pull interpolation of the
view's skin (:func:`fill_hair`), with fine noise of the skin's own grain, and the view's
confidence, fading with the distance from that skin (:func:`donor_reach`); :func:`remove_hair`
runs the whole step. Beards, moustaches, sideburns, glasses and the lower face lie outside the
zone.

Letters: V views, H×W UV texels, S×S photo crop pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as Fn
from scipy.ndimage import gaussian_filter

from .align import BROWS, _polygon_mask
from .blend import fill_holes
from .image_filters import gaussian_blur
from .occlusion import _max_filter

__all__ = ["HairFillSettings", "hair_zone", "local_skin", "hair_evidence", "donor_reach", "fill_hair", "remove_hair"]

_LUMA = (0.299, 0.587, 0.114)
MM_PER_TEXEL_512 = 0.57  # ICT's face tile at 512 texels per tile


@dataclass(frozen=True)
class HairFillSettings:
    """- ``dark``: luminance ratio to the local skin below which a texel starts to count as
      hair, and the ratio at which it fully does (hair, the shadow a fringe casts);
    - ``bright``: the same above the local skin (grey and white hair, which colour finds on a
      colour photo but not on a grey one);
    - ``chroma``: distance of log R/G, log B/G from the local skin's where hair starts, and
      where it is full (blond and grey hair on a colour photo);
    - ``local_mm``: the scale of the local skin colour (pyramid block side);
    - ``rim_mm``: hair grows by this much (its soft edge, a mix of hair and skin colours);
    - ``gap_mm``: donors keep this far beyond the rim from hair;
    - ``reach_mm``: the fill's confidence fades with the distance from the donors (Gaussian σ
      of their density; full where it is ≥ ``reach_density``), so a forehead hidden under hair
      fades into the head's fill colour instead of ending at the face mask's edge;
    - ``trust``: with several views, a filled texel's confidence as a fraction of the view's
      (a view that sees skin there wins);
    - ``noise``: add fine noise of the donors' own grain to the fill (``seed`` fixes it)."""

    dark: tuple[float, float] = (0.9, 0.75)
    bright: tuple[float, float] = (1.25, 1.45)
    chroma: tuple[float, float] = (0.08, 0.16)
    local_mm: float = 18.0
    rim_mm: float = 2.0
    gap_mm: float = 1.5
    reach_mm: float = 8.0
    reach_density: float = 0.3
    trust: float = 0.5
    noise: bool = True
    seed: int = 0


def hair_zone(landmarks68: np.ndarray, size: int, soft_px: float = 0.0) -> np.ndarray:
    """Where hair may lie over the face, in a face crop: everything above the brow points
    (17–26) and the lines from the brows' outer ends (17, 26) to the face outline just below
    the eyes' level (1, 15), continued sideways. landmarks68 (68,2) in the crop's pixels; the brows and eyes
    themselves are taken out by the caller (:func:`backend.occlusion.feature_mask`).
    Returns (size,size) float32 in [0,1] (``soft_px``: Gaussian σ of the edge, pixels)."""
    lm = np.asarray(landmarks68, np.float64)
    up = lm[BROWS].mean(0) - lm[8]
    up /= max(float(np.hypot(*up)), 1e-9)
    side = np.array([-up[1], up[0]])  # towards landmark 16 (image right for an upright face)
    if np.dot(lm[16] - lm[0], side) < 0:
        side = -side
    far = 4.0 * size
    lower = np.concatenate([lm[1:2] - far * side, lm[1:2], lm[BROWS], lm[15:16], lm[15:16] + far * side])
    poly = np.concatenate([lower, lower[::-1][[0, -1]] + far * up])  # closed over the top
    out = _polygon_mask(poly, size, size).astype(np.float32)
    return gaussian_filter(out, sigma=float(soft_px)).astype(np.float32) if soft_px > 0 else out


def _luma(x: torch.Tensor) -> torch.Tensor:
    """(…) the luminance of colours (…,3)."""
    return x[..., 0] * _LUMA[0] + x[..., 1] * _LUMA[1] + x[..., 2] * _LUMA[2]


def _chroma(x: torch.Tensor) -> torch.Tensor:
    """(…,2) log R/G, log B/G of colours (…,3) in [0,1]."""
    eps = 2.0 / 255.0
    return torch.log((x[..., [0, 2]] + eps) / (x[..., 1:2] + eps))


def local_skin(maps: torch.Tensor, donors: torch.Tensor, block: int) -> torch.Tensor:
    """A smooth local average of the donors' colours: weighted 2×2 means down to blocks of
    ``block`` texels (a power of 2), push-pull over the blocks no donor reaches, bilinear back.
    maps (V,H,W,3), donors (V,H,W) in [0,1]. Returns (V,H,W,3); zeros where a view has no donor."""
    V, H, W, _ = maps.shape
    x = torch.cat([maps * donors[..., None], donors[..., None]], -1).permute(0, 3, 1, 2)  # (V,4,H,W)
    k = max(1, int(block))
    x = Fn.pad(x, (0, (-W) % k, 0, (-H) % k))
    coarse = Fn.avg_pool2d(x, k)  # (V,4,h,w) block means
    w = coarse[:, 3]
    colour = coarse[:, :3] / w.clamp_min(1e-12)[:, None]
    filled = fill_holes(colour.permute(0, 2, 3, 1), (w / 0.25).clamp(0.0, 1.0))  # (V,h,w,3)
    up = Fn.interpolate(filled.permute(0, 3, 1, 2), scale_factor=k, mode="bilinear", align_corners=False)
    return up[:, :, :H, :W].permute(0, 2, 3, 1)


def _ramp(x: torch.Tensor, edges: tuple[float, float]) -> torch.Tensor:
    """0 at ``edges[0]``, 1 at ``edges[1]`` (either order), linear between, clamped."""
    a, b = edges
    return ((x - a) / (b - a)).clamp(0.0, 1.0)


def hair_evidence(
    maps: torch.Tensor, local: torch.Tensor, nonskin: torch.Tensor, zone: torch.Tensor,
    settings: HairFillSettings = HairFillSettings(),
) -> torch.Tensor:
    """How likely each texel shows hair, (…) in [0,1]: within ``zone`` (…) in [0,1], the
    largest of ``nonskin`` (…) in [0,1] (the photo's colour is not skin) and how far the
    colour of ``maps`` (…,3) departs from ``local`` (…,3) (:func:`local_skin`): darker,
    brighter (luminance ratio) or of another hue (chroma distance). (…): any leading shape,
    (V,H,W) or a list of texels (T,)."""
    ratio = (_luma(maps) + 1e-3) / (_luma(local) + 1e-3)
    hue = (_chroma(maps) - _chroma(local)).norm(dim=-1)
    off = torch.stack([_ramp(ratio, settings.dark), _ramp(ratio, settings.bright), _ramp(hue, settings.chroma),
                       nonskin]).amax(0)
    return off * zone


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over the (2r+1)² square around each texel of x (V,H,W) (borders: the part inside)."""
    return Fn.avg_pool2d(x[:, None], 2 * r + 1, stride=1, padding=r, count_include_pad=False)[:, 0]


def _half(x: torch.Tensor, op: str) -> torch.Tensor:
    """x (V,H,W) on a 2× coarser grid: 2×2 ``"max"`` or ``"mean"`` (odd sizes padded: zeros)."""
    x = Fn.pad(x[:, None], (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
    return (Fn.max_pool2d(x, 2) if op == "max" else Fn.avg_pool2d(x, 2))[:, 0]


def _double(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """x (V,h,w[,C]) from :func:`_half`'s grid back to ``size`` (H,W): bilinear."""
    chans = x.dim() == 4
    y = x.permute(0, 3, 1, 2) if chans else x[:, None]
    y = Fn.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)[..., : size[0], : size[1]]
    return y.permute(0, 2, 3, 1) if chans else y[:, 0]


def _grown(hair: torch.Tensor, r: int) -> torch.Tensor:
    """``hair`` (V,H,W) grown by about ``r`` texels: a max filter on the 2× coarser grid,
    bilinear back (a soft edge of about a texel), never below ``hair``."""
    coarse = _max_filter(_half(hair, "max")[:, None], max(1, r // 2))[:, 0]
    return torch.maximum(hair, _double(coarse, hair.shape[-2:]))


def _grain(maps: torch.Tensor, donors: torch.Tensor) -> torch.Tensor:
    """The donors' fine grain per view, (V,): the robust spread (1.4826 × median |·|) over the
    full donors of the luminance's relative departure from its 3×3 mean (at most 0.05)."""
    y = _luma(maps) + 1e-3
    grain = (y / _box(y, 1) - 1.0).abs()  # (V,H,W)
    full = donors > 0.99
    return torch.stack([1.4826 * grain[i][full[i]].median() if bool(full[i].any()) else grain.new_zeros(())
                        for i in range(maps.shape[0])]).clamp(max=0.05)  # a loop over views


def donor_reach(donors: torch.Tensor, sigma: float, density: float) -> torch.Tensor:
    """How near the donors (V,H,W) in [0,1] are, (V,H,W) in [0,1]: their Gaussian density at σ =
    ``sigma`` texels (on a 4× coarser grid, bilinear back) over ``density``, clamped."""
    V, H, W = donors.shape
    k = 4
    coarse = Fn.avg_pool2d(Fn.pad(donors[:, None], (0, (-W) % k, 0, (-H) % k)), k)
    blurred = gaussian_blur(coarse, sigma / k, padding="constant")
    up = Fn.interpolate(blurred, scale_factor=k, mode="bilinear", align_corners=False)[:, 0, :H, :W]
    return (up / density).clamp(0.0, 1.0)


def fill_hair(
    maps: torch.Tensor, weight: torch.Tensor, seen: torch.Tensor, hair: torch.Tensor, donors: torch.Tensor,
    reach: torch.Tensor | None = None, trust: float = 1.0, seed: int | None = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Give the hair texels the view's skin colour.

    maps (V,H,W,3) a view's colours, weight (V,H,W) its confidence, seen (V,H,W) the
    confidence the view's geometry allows there (before any colour term), hair (V,H,W) in
    [0,1], donors (V,H,W) in [0,1] the skin that may give its colour (0 on and near hair).
    The fill is a push-pull interpolation of the donors (:func:`backend.blend.fill_holes`, on
    a 2× coarser grid), times Gaussian noise of the donors' own grain (``seed``; None: none).
    A hair texel becomes ``(1 − hair)`` its own colour and confidence plus ``hair`` the fill at
    ``trust`` × ``seen`` × ``reach`` (V,H,W) in [0,1] (:func:`donor_reach`; None: 1); where
    neither is left its confidence is 0. Returns (maps (V,H,W,3), weight (V,H,W)); the other
    texels keep their values."""
    V, H, W, _ = maps.shape
    at = (hair > 0).flatten().nonzero()[:, 0]  # (T,) hair texels, flat over V×H×W
    if at.numel() == 0:
        return maps, weight
    view = at // (H * W)
    half = _half(donors, "mean")  # (V,h,w) the push-pull on the 2× coarser grid: 4× cheaper, as smooth
    colour = torch.stack([_half(maps[..., c] * donors, "mean") for c in range(3)], -1) / half.clamp_min(1e-12)[..., None]
    fill = _double(fill_holes(colour, (2.0 * half).clamp(0.0, 1.0)), (H, W)).reshape(-1, 3)[at]  # (T,3)
    if seed is not None:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        z = torch.randn(at.numel(), generator=gen).to(maps)
        fill = (fill * (1.0 + _grain(maps, donors)[view] * z)[:, None]).clamp(0.0, 1.0)
    h = hair.flatten()[at]
    keep = weight.flatten()[at] * (1.0 - h)
    gift = seen.flatten()[at] * h * trust * (donors.flatten(1).amax(1) > 0).to(seen)[view]
    if reach is not None:
        gift = gift * reach.flatten()[at]
    total = keep + gift
    own = maps.reshape(-1, 3)[at]
    mixed = (own * keep[:, None] + fill * gift[:, None]) / total.clamp_min(1e-12)[:, None]
    out_m, out_w = maps.reshape(-1, 3).clone(), weight.flatten().clone()
    out_m[at] = torch.where((total > 0)[:, None], mixed, own)
    out_w[at] = total
    return out_m.view_as(maps), out_w.view_as(weight)


def remove_hair(
    maps: torch.Tensor, weight: torch.Tensor, seen: torch.Tensor, zone: torch.Tensor, skin: torch.Tensor,
    features: torch.Tensor, settings: HairFillSettings = HairFillSettings(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole step on the views' UV maps: hair within the zone replaced by the view's skin.

    maps (V,H,W,3) colours, weight (V,H,W) confidence, seen (V,H,W) the confidence before any
    colour term, zone (V,H,W) in [0,1] (:func:`hair_zone` at each texel's photo pixel), skin
    (V,H,W) in [0,1] the photo's skin weight, features (V,H,W) in [0,1] the brows, eyes and
    lips (:func:`backend.occlusion.feature_mask`). Only the rows and columns the zone reaches
    (and a margin of ``local_mm``) are worked on. Returns (maps, weight), the same shapes;
    both unchanged (the same values) where no hair is found."""
    V, H, W, _ = maps.shape
    where = (zone > 0).any(0)  # (H,W): the zone is 0 where no view has confidence
    if not bool(where.any()):
        return maps, weight
    per_mm = H / 512 / MM_PER_TEXEL_512
    block = 2 ** max(0, round(np.log2(settings.local_mm * per_mm)))
    pad = block
    rows, cols = where.any(1).nonzero()[:, 0], where.any(0).nonzero()[:, 0]
    r0, r1 = max(0, int(rows[0]) - pad), min(H, int(rows[-1]) + 1 + pad)
    c0, c1 = max(0, int(cols[0]) - pad), min(W, int(cols[-1]) + 1 + pad)
    box = (slice(None), slice(r0, r1), slice(c0, c1))
    m, w, s, z, k, f = (x[box] for x in (maps, weight, seen, zone, skin, features))
    z = z * (1.0 - f) * (s > 0)

    base = (w / 0.3).clamp(0.0, 1.0) * (2.0 * k).clamp(0.0, 1.0) * (1.0 - f)  # confident skin off the features
    local = local_skin(m, base, block)
    at = (z > 0).flatten().nonzero()[:, 0]  # (T,) the zone's texels in the box
    hair = torch.zeros_like(z).flatten()
    hair[at] = hair_evidence(*(x.reshape(-1, 3)[at] for x in (m, local)), (1.0 - 2.0 * k).clamp_min(0.0).flatten()[at],
                             z.flatten()[at], settings)
    hair = hair.view_as(z)
    rim = max(1, round(settings.rim_mm * per_mm))
    gap = max(1, round((settings.rim_mm + settings.gap_mm) * per_mm))
    grown = torch.where(z > 0, _grown(hair, rim), hair)  # the rim stays in the zone
    donors = base * (1.0 - _grown(hair, gap))
    trust = settings.trust if V > 1 else 1.0
    reach = donor_reach(donors, settings.reach_mm * per_mm, settings.reach_density)
    m2, w2 = fill_hair(m, w, s, grown, donors, reach, trust, settings.seed if settings.noise else None)
    out_m, out_w = maps.clone(), weight.clone()
    out_m[box], out_w[box] = m2, w2
    return out_m, out_w
