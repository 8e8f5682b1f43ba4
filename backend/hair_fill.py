"""Hair over the forehead, the temples and the face's upper rim kept out of the albedo: its
texels take the colour of the surrounding skin of the same photo.

A fringe or a strand usually covers both halves of the face, so :mod:`backend.occlusion`'s mirror
has nothing to give. Within the hair zone (:func:`hair_zone`: above the brows and the lines from
the brows' outer ends down to the face outline just below the eyes, off the brows and eyes), a texel is
hair (:func:`hair_evidence`) when its colour is not skin (the skin weight) or departs from the
local skin colour (:func:`local_skin`, a smooth average of the view's skin at ≈ 18 mm): darker
(hair, the shadow it casts), brighter (grey and white hair) or of another hue (blond, grey on a
colour photo). Hair texels and a thin rim around them take a push-pull interpolation of the
view's skin, with fine noise of the skin's own grain, and the view's confidence, fading with the
distance from that skin (:func:`donor_reach`, :func:`mix_fill`); :func:`remove_hair` runs the
whole step. Beards, moustaches, sideburns, glasses and the lower face lie outside the
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
from .blend import fill_holes, linear_ramp
from .image_filters import LUMA, gaussian_blur, max_filter
from .uvmaps import texels_per_mm

__all__ = ["HairFillSettings", "hair_zone", "local_skin", "hair_evidence", "upsampled_at", "donor_reach", "mix_fill", "remove_hair"]



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

    dark: tuple[float, float] = (0.85, 0.7)
    bright: tuple[float, float] = (1.25, 1.45)
    chroma: tuple[float, float] = (0.12, 0.22)
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
    return x[..., 0] * LUMA[0] + x[..., 1] * LUMA[1] + x[..., 2] * LUMA[2]


def _chroma(x: torch.Tensor) -> torch.Tensor:
    """(…,2) log R/G, log B/G of colours (…,3) in [0,1]."""
    eps = 2.0 / 255.0
    return torch.log((x[..., [0, 2]] + eps) / (x[..., 1:2] + eps))


def local_skin(weighted: torch.Tensor, donors: torch.Tensor, block: int) -> torch.Tensor:
    """A smooth local average of the donors' colours on a grid of ``block``-texel blocks: the
    donor-weighted mean of each block, push-pull over the blocks no donor reaches (read it at
    texels with :func:`upsampled_at`). weighted (V,H,W,3) the colours × ``donors`` (V,H,W) in
    [0,1]. Returns (V,⌈H/block⌉,⌈W/block⌉,3); zeros where a view has no donor."""
    V, H, W, _ = weighted.shape
    k = max(1, int(block))
    x = torch.cat([weighted, donors[..., None]], -1).permute(0, 3, 1, 2)  # (V,4,H,W)
    coarse = Fn.avg_pool2d(Fn.pad(x, (0, (-W) % k, 0, (-H) % k)), k)  # (V,4,h,w) block means
    w = coarse[:, 3]
    colour = coarse[:, :3] / w.clamp_min(1e-12)[:, None]
    return fill_holes(colour.permute(0, 2, 3, 1), (w / 0.25).clamp(0.0, 1.0))


def upsampled_at(coarse: torch.Tensor, k: int, at: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear upsampling by ``k`` (align_corners=False) of ``coarse`` (V,h,w,C), cut to
    height×width and read at the texels ``at`` (T,) int64, flat indices into V×height×width.
    Returns (T,C)."""
    up = Fn.interpolate(coarse.permute(0, 3, 1, 2), scale_factor=k, mode="bilinear", align_corners=False)
    v, rest = at // (height * width), at % (height * width)
    return up[..., :height, :width].flatten(2).permute(0, 2, 1)[v, rest]


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
    off = torch.stack([linear_ramp(ratio, settings.dark), linear_ramp(ratio, settings.bright), linear_ramp(hue, settings.chroma),
                       nonskin]).amax(0)
    return off * zone


def _half(x: torch.Tensor, op: str) -> torch.Tensor:
    """x (V,H,W) on a 2× coarser grid: 2×2 ``"max"`` or ``"mean"`` (odd sizes padded: zeros)."""
    x = Fn.pad(x[:, None], (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
    return (Fn.max_pool2d(x, 2) if op == "max" else Fn.avg_pool2d(x, 2))[:, 0]


def _grain(maps: torch.Tensor, donors_half: torch.Tensor) -> torch.Tensor:
    """The donors' fine grain per view, (V,): the robust spread (1.4826 × median |·|) of the
    luminance's relative departure from its 3×3 mean, at every other texel (the 2× coarser
    grid's, where ``donors_half`` (V,⌈H/2⌉,⌈W/2⌉) is full), at most 0.05."""
    y = (_luma(maps) + 1e-3)[:, None]  # (V,1,H,W)
    mean = Fn.avg_pool2d(y, 3, stride=2, padding=1, count_include_pad=False)[:, 0]  # (V,⌈H/2⌉,⌈W/2⌉)
    grain = (y[:, 0, ::2, ::2] / mean - 1.0).abs()
    full = donors_half > 0.99
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


def mix_fill(
    own: torch.Tensor, weight: torch.Tensor, seen: torch.Tensor, hair: torch.Tensor, fill: torch.Tensor,
    reach: torch.Tensor, trust: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A hair texel's colour and confidence: ``(1 − hair)`` of its own colour ``own`` (…,3) at
    its confidence ``weight`` (…) plus ``hair`` (…) in [0,1] of ``fill`` (…,3) at ``trust`` ×
    ``seen`` (…) (the confidence the view's geometry allows) × ``reach`` (…) in [0,1]
    (:func:`donor_reach`); where neither is left, its own colour at confidence 0.
    Returns (colour (…,3), confidence (…))."""
    keep = weight * (1.0 - hair)
    gift = seen * hair * trust * reach
    total = keep + gift
    mixed = (own * keep[..., None] + fill * gift[..., None]) / total.clamp_min(1e-12)[..., None]
    return torch.where((total > 0)[..., None], mixed, own), total


def remove_hair(
    maps: torch.Tensor, weight: torch.Tensor, seen: torch.Tensor, zone: torch.Tensor, skin: torch.Tensor,
    features: torch.Tensor, settings: HairFillSettings = HairFillSettings(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole step on the views' UV maps: hair within the zone replaced by the view's skin.

    maps (V,H,W,3) colours, weight (V,H,W) confidence, seen (V,H,W) the confidence before any
    colour term, zone (V,H,W) in [0,1] (:func:`hair_zone` at each texel's photo pixel), skin
    (V,H,W) in [0,1] the photo's skin weight, features (V,H,W) in [0,1] the brows, eyes and
    lips (:func:`backend.occlusion.feature_mask`); W a whole number of H×H tiles. Per tile,
    only the rows and columns the zone reaches (and a margin of ``local_mm``) are worked on.
    Returns (maps, weight), the same shapes; both the same values where no hair is found."""
    V, H, W, _ = maps.shape
    where = (zone > 0).any(0)  # (H,W): the zone is 0 where no view has confidence
    if not bool(where.any()):
        return maps, weight
    per_mm = texels_per_mm(H)
    block = 2 ** max(0, round(np.log2(settings.local_mm * per_mm)))
    out_m, out_w = maps.clone(), weight.clone()
    for t0 in range(0, W, H):  # a loop over UV tiles (separate surfaces: no fill across them)
        tile = where[:, t0 : t0 + H]
        if not bool(tile.any()):
            continue
        rows, cols = tile.any(1).nonzero()[:, 0], tile.any(0).nonzero()[:, 0] + t0
        r0, r1 = max(0, int(rows[0]) - block), min(H, int(rows[-1]) + 1 + block)
        c0, c1 = max(t0, int(cols[0]) - block), min(t0 + H, W, int(cols[-1]) + 1 + block)
        box = (slice(None), slice(r0, r1), slice(c0, c1))
        m, w = maps[box], weight[box]
        px, colour_px, weight_px = _fill_box(m, w, seen[box], zone[box], skin[box], features[box], block, per_mm,
                                             settings)
        out_m[box] = m.reshape(-1, 3).index_put((px,), colour_px).view_as(m)
        out_w[box] = w.flatten().index_put((px,), weight_px).view_as(w)
    return out_m, out_w


def _fill_box(
    m: torch.Tensor, w: torch.Tensor, s: torch.Tensor, z: torch.Tensor, k: torch.Tensor, f: torch.Tensor, block: int,
    per_mm: float, settings: HairFillSettings,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`remove_hair` within one box of one tile (its arguments cut to the box, (V,Hc,Wc,…)):
    the texels that change (P,) (flat indices into V×Hc×Wc), their colours (P,3) and
    confidences (P,)."""
    V, Hc, Wc, _ = m.shape
    z = z * (1.0 - f) * (s > 0)
    base = (w / 0.3).clamp(0.0, 1.0) * (2.0 * k).clamp(0.0, 1.0) * (1.0 - f)  # confident skin off the features
    at = (z > 0).flatten().nonzero()[:, 0]  # (T,) the zone's texels in the box, flat over V×Hc×Wc
    skin_half = _half(base, "mean")  # (V,h,w) on the 2× coarser grid, h = ⌈Hc/2⌉
    summed = Fn.avg_pool2d(Fn.pad((m * base[..., None]).permute(0, 3, 1, 2), (0, Wc % 2, 0, Hc % 2)), 2)
    summed = summed.permute(0, 2, 3, 1)  # (V,h,w,3) the 2×2 means of colour × base
    local = upsampled_at(local_skin(summed, skin_half, block // 2), block, at, Hc, Wc)
    hair_at = hair_evidence(m.reshape(-1, 3)[at], local, (1.0 - 2.0 * k).clamp_min(0.0).flatten()[at],
                            z.flatten()[at], settings)  # (T,)
    hair = torch.zeros_like(z).flatten().index_put((at,), hair_at).view_as(z)
    # the rim and the donors' gap on the 2× coarser grid; the fill is smooth there anyway
    hair_half = _half(hair, "max")[:, None]
    rim = max_filter(hair_half, max(1, round(settings.rim_mm * per_mm / 2)))[:, 0]
    gap = max_filter(hair_half, max(1, round((settings.rim_mm + settings.gap_mm) * per_mm / 2)))[:, 0]
    grown = torch.maximum(hair_at, upsampled_at(rim[..., None], 2, at, Hc, Wc)[:, 0])  # (T,) the rim, in the zone
    colour = summed / skin_half.clamp_min(1e-12)[..., None]
    donors = skin_half * (1.0 - gap)  # (V,⌈Hc/2⌉,⌈Wc/2⌉)
    some = (donors.flatten(1).amax(1) > 0).to(donors)  # (V,) a view without skin here gives nothing
    reach = donor_reach(donors, settings.reach_mm * per_mm / 2, settings.reach_density) * some.view(-1, 1, 1)
    fill_half = fill_holes(colour, (2.0 * donors).clamp(0.0, 1.0))  # (V,⌈Hc/2⌉,⌈Wc/2⌉,3)

    sel = grown > 0
    px, g = at[sel], grown[sel]  # (P,) the texels that change
    fill = upsampled_at(fill_half, 2, px, Hc, Wc)
    if settings.noise:
        gen = torch.Generator(device="cpu").manual_seed(settings.seed)
        z_noise = torch.randn(px.numel(), generator=gen).to(fill)
        fill = (fill * (1.0 + _grain(m, donors)[px // (Hc * Wc)] * z_noise)[:, None]).clamp(0.0, 1.0)
    colour_px, weight_px = mix_fill(m.reshape(-1, 3)[px], w.flatten()[px], s.flatten()[px], g, fill,
                                    upsampled_at(reach[..., None], 2, px, Hc, Wc)[:, 0],
                                    settings.trust if V > 1 else 1.0)
    return px, colour_px, weight_px
