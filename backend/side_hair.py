"""The face's sides, between the eyes' level and the mouth's: hair lying beside the cheek and the
strongly foreshortened rim kept out of the albedo and the detail stage's skin.

Towards the ears a frontal photo sees the cheek at a grazing angle: a few photo pixels are
stretched over many texels, and what lies at the face outline there (grey or white side hair,
lit brightly; the cheek's own edge) becomes a band of streaks along the stretch. The hair zone of
:mod:`backend.hair_fill` stops at the eyes' level, and the inner face trusts every colour.

- :func:`side_zone`: a band along the face outline (points 1–4 and 12–15) and everything outside
  it, from the eyes' level down to the mouth's (the hair zone's lower edge, continued); beards and
  stubble of the lower face lie below it (a grey beard passes every colour test that grey hair
  does, so the jaw is left alone).
- :func:`side_hair_mask`: pixels of the zone brighter than the local skin, or paler (less red)
  and not darker (grey, white and blond hair), the photo-space evidence; darker pixels (a
  sideburn, stubble, a shadow) are left alone.
- :func:`rim_fade`: a texel's photo weight in the zone, down to 0 where the view sees it at a
  grazing angle (facing cosine, :attr:`backend.render.Unwrapped.cosine`) or sees side hair, so
  the texture fades into the completion (the mirror, the harmonic fill) there.

Letters: S×S crop pixels, V views, T texels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as Fn
from scipy.ndimage import gaussian_filter

from .align import _polygon_mask, inner_face_mask
from .blend import linear_ramp
from .image_filters import LUMA, gaussian_blur, max_filter

__all__ = ["SideHairSettings", "side_zone", "side_hair_mask", "side_detail_mask", "rim_fade"]

_LUMA = np.array(LUMA)
_JUDGE_PX = 224  # the detail mask is judged at this crop size
_UPPER = ((1, 2, 3, 4), (15, 14, 13, 12))  # outline points from the eyes' level down to the mouth's


@dataclass(frozen=True)
class SideHairSettings:
    """- ``inward``: the zone reaches this fraction of the way from the outline points to the
      face's vertical axis (27–8);
    - ``bright``: luminance ratio to the local skin where a pixel starts to count as hair, and
      where it fully does (grey and white hair);
    - ``pale``: drop of log R/G below the local skin's where a pixel starts to count, and where
      it fully does (grey, white and blond hair are less red than skin) …
    - ``not_dark``: … when its luminance ratio is above the first value (fully above the second):
      a darker pixel is a sideburn, stubble or a shadow, kept;
    - ``local_px``: Gaussian σ (pixels at 224²) of the local skin colour, over the skin mask;
    - ``grow_px``: the hair grows by this many pixels (at 224²), its soft edge;
    - ``detail_grow_px``: the detail stage's mask is the side hair grown by this many pixels
      (at 224²): the darker strands among grey ones;
    - ``grazing``: facing cosines between which a texel of the zone loses its photo weight
      (all of it at the first, none at the second; cos 0.35 ≈ 70°, a stretch of ≈ 3×)."""

    inward: float = 0.3
    bright: tuple[float, float] = (1.12, 1.3)
    pale: tuple[float, float] = (0.06, 0.14)
    not_dark: tuple[float, float] = (0.9, 1.0)
    local_px: float = 12.0
    grow_px: int = 2
    detail_bright: tuple[float, float] = (1.25, 1.45)
    detail_pale: tuple[float, float] = (0.1, 0.2)
    detail_grow_px: int = 6
    grazing: tuple[float, float] = (0.35, 0.65)


def side_zone(landmarks68: np.ndarray, size: int, soft_px: float = 0.0,
              settings: SideHairSettings = SideHairSettings()) -> np.ndarray:
    """Where side hair may lie beside the cheeks, in a face crop: on each side a band from the
    outline points (1–4, 15–12) ``settings.inward`` of the way towards the face's vertical axis,
    and everything outside it, between the line from point 1 (15) straight out (the lower edge of
    :func:`backend.hair_fill.hair_zone`) and the line from point 4 (12) straight out.
    landmarks68 (68,2) in the crop's pixels. Returns (size,size) float32 in [0,1] (``soft_px``:
    Gaussian σ of the edge, pixels)."""
    lm = np.asarray(landmarks68, np.float64)
    top, chin = lm[27], lm[8]
    axis = (top - chin) / max(float(np.hypot(*(top - chin))), 1e-9)  # up the face
    side = np.array([-axis[1], axis[0]])  # towards landmark 16
    if np.dot(lm[16] - lm[0], side) < 0:
        side = -side
    far = 4.0 * size
    out = np.zeros((size, size), bool)
    for idx, sign in zip(_UPPER, (-1.0, 1.0)):
        pts = lm[list(idx)]
        on_axis = chin + ((pts - chin) @ axis)[:, None] * axis  # (4,2) their feet on the axis
        inner = pts + settings.inward * (on_axis - pts)
        outward = sign * far * side
        poly = np.concatenate([inner, [pts[-1] + outward, pts[0] + outward]])
        out |= _polygon_mask(poly, size, size)
    out = out.astype(np.float32)
    return gaussian_filter(out, sigma=float(soft_px)).astype(np.float32) if soft_px > 0 else out


def _against_local_skin(crop: np.ndarray, skin: np.ndarray, settings: SideHairSettings
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each pixel of a crop (S,S,3) against the local skin colour (the sure pixels of ``skin``
    (S,S), > 0.5, blurred at ``local_px``): its luminance ratio, the drop of its log R/G below
    the local skin's, and whether skin is near enough to compare with (0/1), each (S,S)."""
    S = crop.shape[0]
    rgb = torch.from_numpy(np.asarray(crop, np.float32)).permute(2, 0, 1)[None]  # (1,3,S,S)
    luma = (rgb * torch.tensor(_LUMA, dtype=torch.float32).view(1, 3, 1, 1)).sum(1, keepdim=True)
    sure = torch.from_numpy((np.asarray(skin) > 0.5).astype(np.float32))[None, None]
    # the local colour is smooth: blurred on a grid of blocks of ≈ 4 px at 224², bilinear back
    k = max(1, round(4 * S / 224.0))
    x = torch.cat([rgb * sure, luma * sure, sure], 1)
    coarse = Fn.avg_pool2d(Fn.pad(x, (0, (-S) % k, 0, (-S) % k)), k)
    blurred = gaussian_blur(coarse, settings.local_px * S / 224.0 / k, "constant")
    blurred = Fn.interpolate(blurred, scale_factor=k, mode="bilinear", align_corners=False)[..., :S, :S]
    local = blurred[0, :4] / blurred[0, 4:].clamp_min(1e-3)  # (4,S,S) local skin RGB and luma
    ratio = (luma[0, 0] + 1e-3) / (local[3] + 1e-3)
    eps = 2.0 / 255.0
    red = torch.log((rgb[0, 0] + eps) / (rgb[0, 1] + eps))  # log R/G
    red_local = torch.log((local[0] + eps) / (local[1] + eps))
    return ratio, red_local - red, (blurred[0, 4] > 0.05).float()


def side_hair_mask(crop: np.ndarray, landmarks68: np.ndarray, skin: np.ndarray,
                   settings: SideHairSettings = SideHairSettings()) -> np.ndarray:
    """How much each pixel of a face crop is side hair, (S,S) float32 in [0,1]: within
    :func:`side_zone` and the inner face, brighter than the local skin (``bright``) or paler (``pale``) and not
    darker (``not_dark``); the local skin is the colour of the skin mask's sure pixels
    (``skin`` (S,S) in [0,1] > 0.5, :func:`backend.skin.skin_mask`) blurred at ``local_px``.
    crop (S,S,3) in [0,1]; landmarks68 (68,2) in its pixels. 0 where the zone has no local skin."""
    S = crop.shape[0]
    return _hair_in(crop, skin, _hair_zone(landmarks68, S, settings), settings)


def _hair_zone(landmarks68: np.ndarray, size: int, settings: SideHairSettings) -> np.ndarray:
    """Where side hair is looked for: :func:`side_zone` within the inner face (the hull of the
    jaw and brows, :func:`backend.align.inner_face_mask`; beyond the outline lies background,
    which a brighter backdrop would otherwise pass as hair). (size,size) float32 in [0,1]."""
    soft = size / 224.0
    return side_zone(landmarks68, size, soft_px=soft, settings=settings) * inner_face_mask(landmarks68, size, size, soft_px=soft)


def _hair_in(crop: np.ndarray, skin: np.ndarray, zone: np.ndarray, settings: SideHairSettings,
             detail: bool = False) -> np.ndarray:
    """:func:`side_hair_mask` within ``zone`` (S,S) (``detail``: the detail stage's thresholds)."""
    S = crop.shape[0]
    scale = S / 224.0
    if not (zone > 0.5).any():
        return np.zeros((S, S), np.float32)
    ratio, paler, some = _against_local_skin(crop, skin, settings)
    bright, pale = (settings.detail_bright, settings.detail_pale) if detail else (settings.bright, settings.pale)
    pale = linear_ramp(paler, pale) * linear_ramp(ratio, settings.not_dark)
    hair = torch.maximum(linear_ramp(ratio, bright), pale) * some * torch.from_numpy(zone)
    g = max(0, round(settings.grow_px * scale))
    if g > 0:
        hair = max_filter(hair[None, None], g)[0, 0] * torch.from_numpy(zone)
    return hair.numpy().astype(np.float32)


def side_detail_mask(crop: np.ndarray, landmarks68: np.ndarray, skin: np.ndarray,
                     settings: SideHairSettings = SideHairSettings()) -> np.ndarray:
    """Where the detail stage must not read relief at the face's sides, (S,S) float32 in [0,1]:
    the side hair (:func:`side_hair_mask` by ``detail_bright`` and ``detail_pale``) grown by ``detail_grow_px`` within the zone, so the
    darker strands among grey ones (which the hair test leaves, as it leaves sideburns) go too:
    the detail fit would raise them as ridges along the stretch. Arguments as
    :func:`side_hair_mask`. A crop larger than 224² is judged at 224² (area-averaged) and the
    mask upsampled (bilinear): the same evidence at a quarter of the cost."""
    S = crop.shape[0]
    if S > _JUDGE_PX:
        def down(x: np.ndarray) -> torch.Tensor:  # (S,S,C) → (1,C,224,224)
            t = torch.from_numpy(np.asarray(x, np.float32).reshape(S, S, -1)).permute(2, 0, 1)[None]
            return Fn.interpolate(t, size=(_JUDGE_PX, _JUDGE_PX), mode="area")
        k = _JUDGE_PX / S
        small = side_detail_mask(down(crop)[0].permute(1, 2, 0).numpy(), (np.asarray(landmarks68) + 0.5) * k - 0.5,
                                 down(skin)[0, 0].numpy(), settings)
        up = Fn.interpolate(torch.from_numpy(small)[None, None], size=(S, S), mode="bilinear", align_corners=False)
        return up[0, 0].numpy()
    scale = S / 224.0
    zone = _hair_zone(landmarks68, S, settings)
    hair = _hair_in(crop, skin, zone, settings, detail=True)
    g = max(0, round(settings.detail_grow_px * scale))
    if g == 0 or not hair.any():
        return hair
    return (max_filter(torch.from_numpy(hair)[None, None], g)[0, 0].numpy() * zone).astype(np.float32)


def rim_fade(cosine: torch.Tensor, zone: torch.Tensor, hair: torch.Tensor,
             settings: SideHairSettings = SideHairSettings()) -> torch.Tensor:
    """The factor of a texel's photo weight at the face's sides, (…) in [0,1]: 1 off the zone
    (``zone`` (…) in [0,1], :func:`side_zone` at the texel's photo pixel); in it, down to 0 with
    the side hair there (``hair`` (…) in [0,1], :func:`side_hair_mask`) and with the grazing
    angle (``cosine`` (…) the view's facing cosine, ``settings.grazing``)."""
    grazing = 1.0 - linear_ramp(cosine, settings.grazing)
    return 1.0 - zone * torch.maximum(grazing, hair)
