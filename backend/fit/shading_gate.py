"""Which photo pixels the detail stage may explain with geometry.

The displacement changes only the shading of the coarse render. Under a near-white light a
change of shading moves a pixel's chroma only along the skin's own shading line (shadow on skin
is redder) and its brightness by a bounded factor (a crease darkens skin, it does not turn it
black). A residual against the coarse render off that line (face paint, a bottle) or beyond that
factor (a dark hair strand), and a pixel where the smooth coarse albedo took in something that is
not skin (hair, a hood), is no relief: :func:`shading_explained` gives such pixels, and a pixel
around them, weight 0, so the detail fit neither follows them nor sees the texels under them (its
``unseen_weight`` then pulls the displacement there to 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as Fn

from ..blend import linear_ramp
from ..image_filters import gaussian_blur, max_filter
from ..render import RenderResult

__all__ = ["ShadingGate", "shading_explained"]


@dataclass(frozen=True)
class ShadingGate:
    """- ``chroma``: (full, none): the norm (natural log units) of the photo/render log ratio's
      chroma (the ratio minus its channel mean) off the skin's shading line (below) at which
      the weight starts falling and reaches 0;
    - ``brightness``: (full, none) of the |log brightness ratio|: a crease darkens skin by a
      bounded factor, a dark hair strand or a bottle's highlight goes beyond it;
    - ``highpass_px`` / ``passes``: the log ratio's local mean (Gaussian σ, pixels at 224²) is
      taken off before both tests: relief answers the residual's fine part (colour edges), the
      albedo gain and the low-pass penalty its broad part. The mean runs over the mask's pixels
      the previous pass explained (the first: all of them), so a paint blob's inside stands out
      against the skin around it and the skin beside it keeps a clean reference;
    - ``albedo_dark``: (full, none): how much darker (natural log units) than its median over
      the mask the coarse albedo may be: darker, it holds hair or a beard the smooth albedo took
      in, and the skin between the strands would be fitted as bumps;
    - ``albedo_chroma``: (full, none): how far the coarse albedo's chroma may lie from its median
      over the mask (natural log units): farther, it took in a hood, a sleeve or a bottle;
    - ``eps``: added to both images before the logs (dark pixels' chroma is noise);
    - ``blur_px``: box filter side (pixels at 224²; scaled with the render) applied to both
      images first, so pixel noise and a pixel's misalignment do not count;
    - ``max_slope`` / ``rounds``: the skin's shading chroma, a direction the chroma takes per unit
      of log brightness (shadow on skin is redder), is fitted per view in ``rounds`` rounds
      (each without the pixels off it beyond ``chroma[0]``); its length is capped at
      ``max_slope``; only the chroma off that line counts against a pixel, and along it anything
      from none to ``saturation`` times the line's value (deep shadow saturates skin more);
    - ``grow_px``: the low-weight areas grow by this many pixels (at 224²), so their soft edges
      go with them."""

    chroma: tuple[float, float] = (0.06, 0.12)
    brightness: tuple[float, float] = (0.45, 0.8)
    highpass_px: float = 8.0
    passes: int = 2
    albedo_dark: tuple[float, float] = (0.5, 0.8)
    albedo_chroma: tuple[float, float] = (0.2, 0.3)
    eps: float = 0.03
    blur_px: int = 3
    grow_px: int = 1
    max_slope: float = 0.6
    rounds: int = 3
    saturation: float = 2.0


def _ramp(x: torch.Tensor, band: tuple[float, float]) -> torch.Tensor:
    """1 up to band[0], 0 from band[1], linear between (:func:`backend.blend.linear_ramp`, falling)."""
    return linear_ramp(x, (band[1], band[0]))


def _off_shading(chroma: torch.Tensor, lum: torch.Tensor, beta: torch.Tensor, saturation: float) -> torch.Tensor:
    """How far each pixel's chroma (V,N,3) lies from what shading explains: ``beta`` (V,1,3) × its
    log brightness ``lum`` (V,N,1), where along ``beta`` anything from 0 to ``saturation`` × that
    counts as explained (deep shadow on skin saturates more than linearly). Returns (V,N,1)."""
    slope = beta.norm(dim=-1, keepdim=True)  # (V,1,1)
    u = beta / slope.clamp_min(1e-6)
    along = (chroma * u).sum(-1, keepdim=True)  # (V,N,1)
    across = chroma - along * u
    expected = slope * lum
    lo = torch.minimum(expected, saturation * expected).clamp(max=0.0)
    hi = torch.maximum(expected, saturation * expected).clamp(min=0.0)
    excess = along - along.clamp(lo, hi)
    return (across.pow(2).sum(-1, keepdim=True) + excess.pow(2)).sqrt()


def _masked_median(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per view and channel median of x (V,N,C) over mask (V,N) > 0.5 (all pixels where none).
    Returns (V,1,C)."""
    out = []
    for v in range(x.shape[0]):  # one per view
        sel = x[v][mask[v] > 0.5]
        out.append((sel if len(sel) else x[v]).median(0).values)
    return torch.stack(out)[:, None]


def _explained(d: torch.Tensor, fit_w: torch.Tensor, gate: ShadingGate) -> torch.Tensor:
    """The weight of each pixel from its log ratio against the local reference, d (V,N,4) (log
    brightness, chroma), with fit_w (V,N,1) the pixels that fit the skin's shading line.
    Returns (V,N)."""
    lum, chroma = d[..., :1], d[..., 1:]  # (V,N,1), (V,N,3)
    # skin's own shading colour: shadow on skin is redder (light scattered under the surface), so
    # the chroma moves along a direction with the brightness: fitted per view over the mask,
    # with the pixels far off it (paint) left out of the next round
    for _ in range(gate.rounds):
        beta = (fit_w * chroma * lum).sum(1, keepdim=True) / (fit_w * lum * lum).sum(1, keepdim=True).clamp_min(1e-6)
        beta = beta * (gate.max_slope / beta.norm(dim=-1, keepdim=True).clamp_min(gate.max_slope))
        off = _off_shading(chroma, lum, beta, gate.saturation)
        fit_w = fit_w * (off < gate.chroma[0]).to(d.dtype)
    return _ramp(lum[..., 0].abs(), gate.brightness) * _ramp(off[..., 0], gate.chroma)


def shading_explained(photo: torch.Tensor, rend: RenderResult, mask: torch.Tensor,
                      gate: ShadingGate = ShadingGate()) -> torch.Tensor:
    """Weight in [0,1] of each pixel whose colour a change of the coarse render's shading explains.

    photo (V,R,R,3) in [0,1]; rend: the coarse surface rendered in each view (its ``image`` and
    ``albedo`` (V,R,R,3) are read); mask (V,R,R) in [0,1]: the loss's mask, whose pixels (> 0.5)
    give the statistics. Returns (V,R,R), to multiply into the mask.
    """
    V, R = photo.shape[0], photo.shape[1]
    scale = R / 224.0
    k = max(1, round(gate.blur_px * scale)) | 1
    both = torch.cat([photo, rend.image], 0).permute(0, 3, 1, 2)  # (2V,3,R,R)
    both = Fn.avg_pool2d(both, k, 1, k // 2, count_include_pad=False)
    both = both.clamp_min(0.0)  # a light the SH makes negative on faces turned from it renders below 0
    d = torch.log(both[:V] + gate.eps) - torch.log(both[V:] + gate.eps)  # (V,3,R,R) log ratio
    lum = d.mean(1, keepdim=True)
    d = torch.cat([lum, d - lum], 1)  # (V,4,R,R) log brightness, chroma
    inside = (mask > 0.5).to(d.dtype)  # (V,R,R)
    sigma = gate.highpass_px * scale
    w = inside
    for _ in range(gate.passes):  # each pass's reference: the pixels the last one explained
        wm = (inside * w)[:, None]
        blurred = gaussian_blur(torch.cat([d * wm, wm], 1), sigma, "constant")  # one call: (V,5,R,R)
        local = blurred[:, :4] / blurred[:, 4:].clamp_min(1e-3)
        ref = (d - local).permute(0, 2, 3, 1).reshape(V, R * R, 4)
        w = _explained(ref, (inside * w).reshape(V, -1, 1), gate).reshape(V, R, R)
    # the coarse albedo took in something that is not skin: dark (hair) or of another colour (fabric)
    log_albedo = torch.log(rend.albedo.clamp_min(0.0) + gate.eps).reshape(V, -1, 3)
    dark = log_albedo.mean(-1, keepdim=True)
    albedo_chroma = log_albedo - dark
    off_skin = torch.cat([dark, albedo_chroma], -1) - _masked_median(torch.cat([dark, albedo_chroma], -1),
                                                                    inside.reshape(V, -1))
    w = w * (_ramp(-off_skin[..., 0], gate.albedo_dark)
             * _ramp(off_skin[..., 1:].norm(dim=-1), gate.albedo_chroma)).reshape(V, R, R)
    g = round(gate.grow_px * scale)
    if g > 0:  # min filter: the low-weight areas grow
        w = -max_filter(-w[:, None], g)[:, 0]
    return w
