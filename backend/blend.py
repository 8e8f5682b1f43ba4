"""Multi-view UV blending: confidence weights, gain equalisation, multi-band blending, hole filling.

Every function here works on UV images in the layout of :mod:`backend.render.uv` (stored top
row = v 1) with the letters V views, H×W texels, C channels, Hi×Wi photo pixels. Inputs may
be torch tensors (any device/float dtype; results follow them) or numpy arrays (results are
numpy). Nothing is modified in place.

Pipeline (what :func:`backend.texture.delit_albedo` chains for several photos)::

    frags, idx = facing_texels(uv, faces_uv, faces, ...)     # the T texels some view can face
    un = unwrap_image(..., frags, ...)                       # per view: texture, visible, cosine, screen
    un = Unwrapped(*(scatter_texels(x[:, 0], idx, H, W) ...))  # back to the H×W layout
    w = per_view_confidence(un, silhouette_distance(mask))   # (V,H,W) in [0,1]
    eq = equalize_views(delit_maps, w)                       # per-view gain (+ bias): overlaps agree
    albedo, coverage = multiband_blend(eq.maps, w)           # seams spread per frequency band

Only the texels that can matter are worked on (:func:`facing_texels`, :func:`texel_subset`,
:func:`scatter_texels`): the back of the head is never unwrapped, and one view's "blend" is its
own map (no pyramid).

Multi-band blending (Burt & Adelson's Laplacian-pyramid splining): each view's map is split
into band-pass levels; level k of the result is the sum of the views' level k weighted by their
weights blurred to that level (Gaussian pyramid) and normalised over views. Fine detail thus
switches between views over a few texels (no ghosting), while colour differences are spread
over the width of the coarsest band (no visible seam). Texels a view does not see are first
filled in that view's map with its nearest seen texel (so its pyramid has no artificial edge
at the border of what it saw and its coarse bands continue its own border colour), and texels
no view sees are filled in the result by push-pull from the blended texels: empty regions
never pull colours towards black. UV islands are treated as one image: near island borders
the coarse bands mix in colours from across the gap (filled texels), which is harmless for
skin but worth knowing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as Fn
from scipy.ndimage import distance_transform_edt

from .render.rasterize import Fragments
from .render.uv import Unwrapped, rasterize_uv

__all__ = [
    "multiband_blend", "weighted_average", "fill_holes", "EqualizeSettings", "Equalization", "equalize_views",
    "ConfidenceSettings", "per_view_confidence", "silhouette_distance", "pixels_per_texel", "default_levels",
    "facing_texels", "texel_subset", "scatter_texels", "smoothstep",
]

#: Camera-space normal z above which a vertex may face the camera (see :func:`facing_texels`):
#: 10× the rasteriser's edge tolerance (barycentrics ≥ −1e-5), so no visible texel is missed.
_FACING_MARGIN = 1e-4

# 4-tap binomial kernel: blur + decimation centred between texel pairs (coarse texel i sits at
# fine position 2i + 0.5, exactly where bilinear upsampling with align_corners=False expects it).
_BINOMIAL4 = (1.0, 3.0, 3.0, 1.0)


# -- array plumbing ----------------------------------------------------------------------------
def _to_tensor(x) -> tuple[torch.Tensor, bool]:
    """(tensor, was_numpy). Integer/bool inputs become float32."""
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x))
        return (t if t.is_floating_point() else t.float()), True
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch tensor or numpy array, got {type(x).__name__}")
    return (x if x.is_floating_point() else x.float()), False


def _back(x: torch.Tensor, numpy: bool):
    return x.detach().cpu().numpy() if numpy else x


# -- pyramids (N,C,H,W) ------------------------------------------------------------------------
def _blur_down(x: torch.Tensor) -> torch.Tensor:
    """Binomial blur then decimate by 2: (N,C,H,W) → (N,C,⌈H/2⌉,⌈W/2⌉) (replicated borders)."""
    N, C, H, W = x.shape
    k = torch.tensor(_BINOMIAL4, dtype=x.dtype, device=x.device) / 8.0
    y = Fn.pad(x.reshape(N * C, 1, H, W), (1, 2, 1, 2), mode="replicate")
    y = Fn.conv2d(y, k.view(1, 1, 1, 4), stride=(1, 2))
    y = Fn.conv2d(y, k.view(1, 1, 4, 1), stride=(2, 1))
    return y.reshape(N, C, y.shape[-2], y.shape[-1])


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of a level produced by :func:`_blur_down` back to ``size``."""
    H, W = size
    h, w = x.shape[-2:]
    up = Fn.interpolate(x, size=(2 * h, 2 * w), mode="bilinear", align_corners=False)
    return up[..., :H, :W]


def default_levels(height: int, width: int) -> int:
    """Pyramid depth used when ``levels`` is None: the coarsest level is about 8–16 texels on
    its short side (e.g. 6 levels for 512×1024, 5 for 256×512)."""
    return max(1, int(math.floor(math.log2(max(1, min(height, width))))) - 3)


def _gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    pyr = [x]
    for _ in range(levels - 1):
        pyr.append(_blur_down(pyr[-1]))
    return pyr


def _laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels L_0..L_{n-2} and the low-pass residual G_{n-1}; collapse is exact."""
    gauss = _gaussian_pyramid(x, levels)
    lap = [g - _up(gn, g.shape[-2:]) for g, gn in zip(gauss[:-1], gauss[1:])]
    return lap + [gauss[-1]]


def _collapse(lap: list[torch.Tensor]) -> torch.Tensor:
    out = lap[-1]
    for band in reversed(lap[:-1]):
        out = band + _up(out, band.shape[-2:])
    return out


# -- push-pull hole filling --------------------------------------------------------------------
def _push_pull(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Push-pull interpolation (Gortler et al. 1996). x (N,C,H,W), w (N,1,H,W) in [0,1].

    Pull: 2×2 weighted averages, the weight of a coarse texel ``min(1, Σ w)``. Push: from
    coarse to fine, ``c = w·c + (1 − w)·up(c_coarse)`` with bilinear upsampling. Texels of
    weight 1 keep their value exactly; weight 0 texels take a smooth interpolation.
    """
    colours, weights = [x * w], [w]
    while min(colours[-1].shape[-2:]) > 1:
        cw, ww = colours[-1], weights[-1]
        ph, pw = cw.shape[-2] % 2, cw.shape[-1] % 2
        if ph or pw:  # zero-weight padding to even sizes keeps the 2×2 blocks aligned
            cw, ww = Fn.pad(cw, (0, pw, 0, ph)), Fn.pad(ww, (0, pw, 0, ph))
        csum = Fn.avg_pool2d(cw, 2) * 4.0
        wsum = Fn.avg_pool2d(ww, 2) * 4.0
        wc = wsum.clamp(max=1.0)
        # premultiplied colour at the coarse level: mean colour × clamped weight
        colours.append(csum / wsum.clamp_min(1e-12) * wc)
        weights.append(wc)
    out = colours[-1] / weights[-1].clamp_min(1e-12)
    for cw, ww in zip(reversed(colours[:-1]), reversed(weights[:-1])):
        size = cw.shape[-2:]
        h, w_ = out.shape[-2:]
        up = Fn.interpolate(out, size=(2 * h, 2 * w_), mode="bilinear", align_corners=False)[..., : size[0], : size[1]]
        mean = cw / ww.clamp_min(1e-12)
        out = torch.where(ww > 0, ww * mean + (1.0 - ww) * up, up)
    return out


def fill_holes(map_, mask):
    """Fill texels outside ``mask`` smoothly from those inside (push-pull).

    map_: (H,W,C) or (B,H,W,C) float; mask: (H,W) / (B,H,W) bool or float weight in [0,1]
    (1 = known, 0 = hole; fractional weights blend the known value with the interpolation).
    Returns the same shape as ``map_``: equal to ``map_`` where mask is 1 (exactly), a smooth
    interpolation of the known texels elsewhere. An all-empty mask gives zeros.
    """
    m, numpy = _to_tensor(map_)
    k, _ = _to_tensor(mask)
    batched = m.dim() == 4
    if m.dim() not in (3, 4) or k.shape != m.shape[:-1]:
        raise ValueError(
            f"map must be (H,W,C) or (B,H,W,C) and mask its (H,W)/(B,H,W), got {tuple(m.shape)}, {tuple(k.shape)}"
        )
    if not batched:
        m, k = m[None], k[None]
    out = _push_pull(m.permute(0, 3, 1, 2), k.to(m.dtype).clamp(0.0, 1.0)[:, None].to(m.device))
    out = out.permute(0, 2, 3, 1)
    return _back(out if batched else out[0], numpy)


def _nearest_extend(x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Copy into every unknown texel the value of its nearest known texel (Euclidean, via
    ``scipy.ndimage.distance_transform_edt`` on the CPU). x (N,C,H,W), known (N,H,W) bool.
    Known texels are unchanged; an image with no known texel is left as is."""
    N, C, H, W = x.shape
    k = known.cpu().numpy()
    rows = np.empty((N, H, W), np.int64)
    cols = np.empty((N, H, W), np.int64)
    for i in range(N):  # one distance transform per view
        if k[i].all() or not k[i].any():
            rows[i], cols[i] = np.indices((H, W))
        else:
            idx = distance_transform_edt(~k[i], return_distances=False, return_indices=True)
            rows[i], cols[i] = idx[0], idx[1]
    flat = torch.from_numpy(rows * W + cols).to(x.device).reshape(N, 1, H * W).expand(N, C, H * W)
    return x.reshape(N, C, H * W).gather(2, flat).reshape(N, C, H, W)


# -- blending ----------------------------------------------------------------------------------
def _check_views(maps: torch.Tensor, weights: torch.Tensor) -> None:
    if maps.dim() != 4 or weights.shape != maps.shape[:-1]:
        raise ValueError(f"maps must be (V,H,W,C) and weights (V,H,W), got {tuple(maps.shape)}, {tuple(weights.shape)}")
    if (weights < 0).any():
        raise ValueError("weights must be non-negative")


def weighted_average(maps, weights):
    """Per-texel weighted mean of the views (the single-band reference blend).

    maps (V,H,W,C), weights (V,H,W) ≥ 0. Returns (blended (H,W,C), coverage (H,W) = Σ_v w),
    zero where no view has weight.
    """
    m, numpy = _to_tensor(maps)
    w, _ = _to_tensor(weights)
    w = w.to(m)
    _check_views(m, w)
    cov = w.sum(0)
    out = (m * w[..., None]).sum(0) / cov.clamp_min(1e-12)[..., None]
    return _back(out, numpy), _back(cov, numpy)


def multiband_blend(maps, weights, levels: int | None = None, fill: bool = True):
    """Laplacian-pyramid (multi-band) blend of several views' UV maps.

    maps: (V,H,W,C) float (colour, displacement with C=1, ...); weights: (V,H,W) ≥ 0, zero
    where a view has no data (its map's values there are ignored). ``levels``: pyramid depth
    (None: :func:`default_levels`); 1 is the plain weighted average. ``fill``: fill the texels
    no view sees (total weight 0) by push-pull from the blended ones; without it they are 0.

    Returns ``(blended (H,W,C), coverage (H,W))``, coverage = Σ_v weights (unnormalised;
    compare it with a threshold for "seen"). With a single view the result is its map wherever
    its weight is > 0 (exactly; no pyramid is built). The result is a convex
    combination per band, not per texel: it can overshoot the input range by the size of
    the colour step it hides; clamp colours afterwards.
    """
    m, numpy = _to_tensor(maps)
    w, _ = _to_tensor(weights)
    w = w.to(m)
    _check_views(m, w)
    V, H, W, C = m.shape
    levels = default_levels(H, W) if levels is None else int(levels)
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    if V == 1:
        # one view: every band's normalised weight is 1, the pyramid collapses to the map itself
        out = m[0]
    else:
        # each view's map continued (nearest known texel) where it has no data, so its pyramid
        # has no artificial edge there and its coarse bands extrapolate its own border colour
        x = _nearest_extend(m.permute(0, 3, 1, 2), w > 0)  # (V,C,H,W)
        lap = _laplacian_pyramid(x, levels)
        wpyr = _gaussian_pyramid(w[:, None], levels)  # (V,1,h,w) per level
        bands = []
        for band, wk in zip(lap, wpyr):
            total = wk.sum(0, keepdim=True)
            norm = torch.where(total > 1e-12, wk / total.clamp_min(1e-12), torch.full_like(wk, 1.0 / V))
            bands.append((band * norm).sum(0, keepdim=True))
        out = _collapse(bands)[0].permute(1, 2, 0)  # (H,W,C)
    cov = w.sum(0)
    covered = cov > 0
    if fill and not bool(covered.all()):
        if bool(covered.any()):
            out = _push_pull(out.permute(2, 0, 1)[None], covered[None, None].to(m.dtype))[0].permute(1, 2, 0)
        else:
            out = torch.zeros_like(out)
    elif not fill:
        out = out * covered[..., None].to(out.dtype)
    return _back(out, numpy), _back(cov, numpy)


# -- exposure / lighting equalisation ----------------------------------------------------------
@dataclass(frozen=True)
class EqualizeSettings:
    """Options of :func:`equalize_views` (colour units of the maps, e.g. [0,1] albedo).

    - ``bias``: also fit a per-view, per-channel offset (gain-only when False).
    - ``noise_sigma``: expected disagreement of two views at one texel after correction.
    - ``gain_sigma`` / ``bias_sigma``: prior spread of the gain around 1 / of the bias around 0.
      The priors keep the trivial all-zero solution away; the gains and biases are afterwards
      re-centred (coverage-weighted mean gain 1, mean bias 0), so the views move towards each
      other without changing the overall brightness.
    - ``min_overlap``: pairs whose overlap (Σ_texels w_i·w_j) is below this are ignored.
    """

    bias: bool = False
    noise_sigma: float = 0.02
    gain_sigma: float = 0.5
    bias_sigma: float = 0.1
    min_overlap: float = 4.0


@dataclass(frozen=True)
class Equalization:
    """Result of :func:`equalize_views`: ``maps`` (V,H,W,C) = gain·map + bias (where weighted;
    untouched elsewhere), ``gain`` (V,C), ``bias`` (V,C) (zeros without ``bias``)."""

    maps: torch.Tensor | np.ndarray
    gain: torch.Tensor | np.ndarray
    bias: torch.Tensor | np.ndarray


def equalize_views(maps, weights, settings: EqualizeSettings | None = None) -> Equalization:
    """Per-view gain (and optional bias) so that overlapping views agree before blending.

    Compensates what SH delighting leaves between photos (exposure, white balance, light
    colour). Minimises, per channel c, with o_ij = w_i·w_j the overlap weight of views i, j::

        Σ_{i<j} Σ_x o_ij(x) ((g_i a_i(x) + b_i) − (g_j a_j(x) + b_j))² / σ_n²
          + Σ_i N_i ((g_i − 1)²/σ_g² + b_i²/σ_b²),     N_i = Σ_{j≠i} Σ_x o_ij

    (a linear 2V×2V system, built from overlap moments; Brown & Lowe's gain compensation with
    a bias term). maps (V,H,W,C), weights (V,H,W) ≥ 0. Returns :class:`Equalization`; a view
    that overlaps no other keeps gain 1, bias 0.
    """
    s = settings or EqualizeSettings()
    m, numpy = _to_tensor(maps)
    w, _ = _to_tensor(weights)
    w = w.to(m)
    _check_views(m, w)
    V, H, W, C = m.shape
    a = m.double().reshape(V, H * W, C)
    wd = w.double().reshape(V, H * W)
    wa = wd[..., None] * a  # (V,N,C)
    O = wd @ wd.T  # (V,V): Σ o_ij
    A = torch.einsum("inc,jn->cij", wa, wd)  # Σ o_ij a_i
    Q = torch.einsum("inc,jn->cij", wa * a, wd)  # Σ o_ij a_i²
    P = torch.einsum("inc,jnc->cij", wa, wa)  # Σ o_ij a_i a_j
    off = 1.0 - torch.eye(V, dtype=O.dtype, device=O.device)
    use = off * (O >= s.min_overlap).to(O.dtype)
    O, A, Q, P = O * use, A * use, Q * use, P * use
    N = O.sum(1)  # (V,)
    lam_g = (s.noise_sigma / s.gain_sigma) ** 2
    lam_b = (s.noise_sigma / s.bias_sigma) ** 2
    eye = torch.eye(V, dtype=O.dtype, device=O.device)
    Mgg = torch.diag_embed(Q.sum(2)) - P + eye * (lam_g * N + 1e-9)  # (C,V,V)
    rhs_g = (lam_g * N + 1e-9).expand(C, V)
    if s.bias:
        Mbb = (torch.diag(N) - O + eye * (lam_b * N + 1e-9)).expand(C, V, V)
        Mgb = torch.diag_embed(A.sum(2)) - A  # (C,V,V): rows g, columns b
        M = torch.cat([torch.cat([Mgg, Mgb], 2), torch.cat([Mgb.transpose(1, 2), Mbb], 2)], 1)
        rhs = torch.cat([rhs_g, torch.zeros_like(rhs_g)], 1)
        sol = torch.linalg.solve(M, rhs[..., None])[..., 0]
        gain, bias = sol[:, :V].T, sol[:, V:].T  # (V,C)
    else:
        gain = torch.linalg.solve(Mgg, rhs_g[..., None])[..., 0].T
        bias = torch.zeros_like(gain)
    # re-centre over the views that took part (coverage-weighted)
    wt = (N / N.sum()).view(V, 1) if float(N.sum()) > 0 else torch.full((V, 1), 1.0 / V, dtype=O.dtype, device=O.device)
    mean_g = (gain * wt).sum(0, keepdim=True)
    # keep the coverage-weighted mean colour: Σ wt (g a + b) = Σ wt a at the views' means
    mean_a = (wa.sum(1) / wd.sum(1).clamp_min(1e-12)[:, None])  # (V,C)
    gain = torch.where(N.view(V, 1) > 0, gain / mean_g, torch.ones_like(gain))
    bias = torch.where(N.view(V, 1) > 0, bias / mean_g, torch.zeros_like(bias))
    if s.bias:
        shift = (wt * (gain * mean_a + bias - mean_a)).sum(0, keepdim=True)
        bias = torch.where(N.view(V, 1) > 0, bias - shift, bias)
    has = (w > 0)[..., None]
    out = torch.where(has, m * gain.to(m.dtype).view(V, 1, 1, C) + bias.to(m.dtype).view(V, 1, 1, C), m)
    gain, bias = gain.to(m.dtype), bias.to(m.dtype)
    return Equalization(maps=_back(out, numpy), gain=_back(gain, numpy), bias=_back(bias, numpy))


# -- per-view confidence -----------------------------------------------------------------------
@dataclass(frozen=True)
class ConfidenceSettings:
    """Options of :func:`per_view_confidence`.

    - ``cosine_start`` / ``cosine_full``: facing ramp: weight 0 at a cosine (texel normal ·
      direction to the camera) ≤ start, 1 at ≥ full, smoothstep between (0.2 / 0.7 ≈ 78° / 46°).
    - ``silhouette_px``: distance (photo pixels) from the rendered face mask's border (and from
      depth discontinuities) over which the weight ramps from 0 to 1: texels near an occluding
      contour are where a slightly wrong geometry samples the background or the occluder.
    - ``reference_ppt``: resolution term: a texel seen at ``p`` photo pixels per texel (linear,
      from the Jacobian of its projection) gets ``min(1, p / reference)``. None: the reference
      is the best view of that texel (relative weighting); a number makes it absolute.
    - ``resolution_power``: exponent of the resolution term (0 disables it).
    """

    cosine_start: float = 0.2
    cosine_full: float = 0.7
    silhouette_px: float = 6.0
    reference_ppt: float | None = None
    resolution_power: float = 1.0


def linear_ramp(x: torch.Tensor, edges: tuple[float, float]) -> torch.Tensor:
    """0 at ``edges[0]``, 1 at ``edges[1]`` (either order: a falling ramp when the first is the
    larger), linear between, clamped to [0,1]."""
    a, b = edges
    return ((x - a) / (b - a)).clamp(0.0, 1.0)


def smoothstep(t: torch.Tensor) -> torch.Tensor:
    """Hermite ramp 3t² − 2t³ of t clamped to [0,1]: 0 below 0, 1 above 1, flat at both ends."""
    t = t.clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def silhouette_distance(mask, depth=None, depth_jump: float | None = None):
    """Distance (pixels) of each photo pixel to the nearest pixel outside the rendered face.

    mask: (V,Hi,Wi) bool rendered coverage (``RenderResult.mask`` / ``Fragments.mask``).
    depth: optional (V,Hi,Wi) screen depth of the render (same units as ``depth_jump``, pixels
    for orthographic poses): pixels next to a depth jump larger than ``depth_jump`` count as
    boundary too (internal occluding contours: nose over cheek, jaw over neck).
    Returns (V,Hi,Wi) float32 (0 outside the mask), via ``scipy.ndimage.distance_transform_edt``
    (CPU; the result is moved back to the input's device).
    """
    m, numpy = _to_tensor(mask)
    inside = m > 0.5
    if inside.dim() != 3:
        raise ValueError(f"mask must be (V,Hi,Wi), got {tuple(inside.shape)}")
    if depth is not None:
        if depth_jump is None:
            raise ValueError("depth_jump is needed with depth (e.g. 4 pixels for orthographic renders)")
        d, _ = _to_tensor(depth)
        d = d.to(inside.device)
        jump = torch.zeros_like(inside)
        dx = (d[:, :, 1:] - d[:, :, :-1]).abs() > depth_jump
        dy = (d[:, 1:, :] - d[:, :-1, :]).abs() > depth_jump
        # mark the farther pixel of each jump (the occluded side)
        far_x = d[:, :, 1:] > d[:, :, :-1]
        far_y = d[:, 1:, :] > d[:, :-1, :]
        jump[:, :, 1:] |= dx & far_x
        jump[:, :, :-1] |= dx & ~far_x
        jump[:, 1:, :] |= dy & far_y
        jump[:, :-1, :] |= dy & ~far_y
        inside = inside & ~jump
    arr = inside.cpu().numpy()
    dist = np.stack([
        distance_transform_edt(a).astype(np.float32) if a.any() else np.zeros(a.shape, np.float32) for a in arr
    ])
    if numpy:
        return dist
    return torch.from_numpy(dist).to(m.device)


def pixels_per_texel(screen: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Linear photo resolution at each texel: √|det J| of the texel → pixel map.

    screen: (V,H,W,2|3) projected texel positions (pixels; :attr:`Unwrapped.screen`); valid:
    (V,H,W) bool texels with a meaningful projection. J is taken from differences to the
    row/column neighbours; of the forward and backward difference the shorter valid one is
    used (robust at UV seams, where a neighbour lies elsewhere on the surface).
    Returns (V,H,W) float, 0 where no valid neighbour exists.
    """
    p = screen[..., :2]
    big = torch.finfo(p.dtype).max

    def derivative(dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = p.shape[dim]
        if n < 2:  # no neighbours along this axis
            return torch.zeros_like(p), torch.zeros_like(valid)
        fwd = p.narrow(dim, 1, n - 1) - p.narrow(dim, 0, n - 1)  # pair j = (j, j + 1)
        ok = valid.narrow(dim, 1, n - 1) & valid.narrow(dim, 0, n - 1)
        # squared length per pair, once (elementwise: a norm over 2 channels is slow); invalid: never shorter
        length = torch.where(ok, fwd[..., 0] * fwd[..., 0] + fwd[..., 1] * fwd[..., 1], big)
        # texel j: forward pair j or backward pair j − 1, whichever is valid and shorter (the first
        # and last texels have one pair: if it is invalid the texel is, and its difference unused)
        inner = torch.where(
            (length.narrow(dim, 1, n - 2) <= length.narrow(dim, 0, n - 2))[..., None],
            fwd.narrow(dim, 1, n - 2), fwd.narrow(dim, 0, n - 2),
        )
        d = torch.cat([fwd.narrow(dim, 0, 1), inner, fwd.narrow(dim, n - 2, 1)], dim)
        either = ok.narrow(dim, 1, n - 2) | ok.narrow(dim, 0, n - 2)
        o = torch.cat([ok.narrow(dim, 0, 1), either, ok.narrow(dim, n - 2, 1)], dim)
        return d, o

    du, ou = derivative(2)  # along columns (u)
    dv, ov = derivative(1)  # along rows (v)
    area = (du[..., 0] * dv[..., 1] - du[..., 1] * dv[..., 0]).abs()
    return area.sqrt() * (ou & ov & valid).to(p.dtype)


def per_view_confidence(
    unwrapped: Unwrapped,
    silhouette_distance_px,
    settings: ConfidenceSettings | None = None,
    image_weight=None,
) -> torch.Tensor:
    """Per-texel blending confidence of each view, in [0,1].

    ``confidence = visible × facing × silhouette × resolution [× image_weight]``:
    - visible: :attr:`Unwrapped.visible` (on the mesh, inside the photo, not occluded, front-facing);
    - facing: smoothstep ramp of :attr:`Unwrapped.cosine` (see :class:`ConfidenceSettings`);
    - silhouette: smoothstep of ``silhouette_distance_px`` / ``settings.silhouette_px``, the
      distance map (V,Hi,Wi) of :func:`silhouette_distance` bilinearly sampled at each texel's
      projection (:attr:`Unwrapped.screen`, pixel centres at integers);
    - resolution: ``(p / ref)^power`` clamped to 1, p = :func:`pixels_per_texel` and ref the
      best view of the texel (or ``settings.reference_ppt``);
    - image_weight: optional (V,Hw,Ww) photo-space weight in [0,1] (e.g. the skin mask), sampled
      like the distance; it covers the same frame as the distance map at any resolution (e.g.
      the 224² crop's mask for a 512² re-crop: sampled at the same, normalised positions).

    unwrapped: batch V (one per photo; Hi×Wi must match the distance map). Returns (V,H,W)
    float tensor on the unwrap's device. Not differentiable (weights are data, not parameters).
    """
    s = settings or ConfidenceSettings()
    if s.cosine_full <= s.cosine_start:
        raise ValueError(f"cosine_full must exceed cosine_start, got {s.cosine_start}, {s.cosine_full}")
    with torch.no_grad():
        vis = unwrapped.visible
        screen = unwrapped.screen.detach()
        dtype = screen.dtype if screen.is_floating_point() else torch.float32
        dist, _ = _to_tensor(silhouette_distance_px)
        dist = dist.to(device=screen.device, dtype=dtype)
        if dist.dim() != 3 or dist.shape[0] != vis.shape[0]:
            raise ValueError(f"silhouette distance must be (V,Hi,Wi) with V={vis.shape[0]}, got {tuple(dist.shape)}")
        Hi, Wi = dist.shape[-2:]
        V, H, W = vis.shape
        if image_weight is not None:
            iw, _ = _to_tensor(image_weight)
            iw = iw.to(device=screen.device, dtype=dtype)
            if iw.dim() != 3 or iw.shape[0] != V:
                raise ValueError(f"image_weight must be (V,Hw,Ww) with V={V}, got {tuple(iw.shape)}")
        # every factor but the resolution (which needs the neighbours) on the texels some view sees
        seen = vis.any(0).reshape(-1).nonzero().squeeze(1)  # (T,) flat

        def texels(x: torch.Tensor) -> torch.Tensor:  # (V,H,W,...) → (V,T,...)
            return x.flatten(1, 2).index_select(1, seen)

        p = texels(screen)
        grid = torch.stack([(p[..., 0] + 0.5) * (2.0 / Wi) - 1.0, (p[..., 1] + 0.5) * (2.0 / Hi) - 1.0], -1)[:, :, None]

        def sample(img: torch.Tensor) -> torch.Tensor:  # (V,Hi',Wi') → (V,T)
            out = Fn.grid_sample(img[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            return out[:, 0, :, 0]

        cosine = texels(unwrapped.cosine.detach()).to(dtype)
        facing = smoothstep((cosine - s.cosine_start) / (s.cosine_full - s.cosine_start))
        sil = smoothstep(sample(dist) / max(s.silhouette_px, 1e-6))
        conf = texels(vis).to(dtype) * facing * sil
        if s.resolution_power > 0:
            ppt = texels(pixels_per_texel(screen, vis))
            if s.reference_ppt is None:
                ref = ppt.amax(0, keepdim=True)
            else:
                ref = torch.full_like(ppt[:1], float(s.reference_ppt))
            res = (ppt / ref.clamp_min(1e-12)).clamp(0.0, 1.0) ** s.resolution_power
            conf = conf * res
        if image_weight is not None:
            conf = conf * sample(iw).clamp(0.0, 1.0)
        out = conf.new_zeros(V, H * W).index_copy_(1, seen, conf)
    return out.view(V, H, W)


# -- texel subsets -----------------------------------------------------------------------------
def facing_texels(
    uv: torch.Tensor, faces_uv: torch.Tensor, faces: torch.Tensor, normals: torch.Tensor, height: int, width: int,
    u_range: tuple[float, float] = (0.0, 1.0),
) -> tuple[Fragments, torch.Tensor]:
    """The texels of an H×W UV layout some view may see, as a list of T texels.

    uv (Tu,2), faces_uv (F,3): the layout (:func:`backend.render.rasterize_uv`); faces (F,3)
    the mesh's; normals (V,N,3) unit vertex normals in each view's orthographic camera frame
    (z towards the camera, the cosine of :func:`backend.render.unwrap_image` for orthographic
    poses). Only faces with a vertex normal of z > −1e-4 in some view are rasterised: on any
    other face the interpolated normal faces away from every camera (cosine ≤ 0, even with the
    rasteriser's edge tolerance), so :func:`backend.render.unwrap_image` would mark its texels
    invisible. (A texel on an edge shared with a dropped face, which the full layout gives to
    the lower face index, may go to the kept face here; its normal is then, within the edge
    tolerance, the shared edge's, whose vertices face away.)

    Returns (fragments (1,1,T) of those texels, face indices into ``faces``, for per-texel
    operations such as interpolate and unwrap_image; their flat indices (T,) into the H×W
    layout, ascending, for :func:`scatter_texels`).
    """
    front = (normals[..., 2] > -_FACING_MARGIN)[:, faces.long()].any(-1).any(0).nonzero().squeeze(1)  # (F',)
    frags = rasterize_uv(uv, faces_uv.index_select(0, front), height, width, u_range)
    index = (frags.face_idx.reshape(-1) >= 0).nonzero().squeeze(1)
    sub = texel_subset(frags, index)
    return Fragments(front[sub.face_idx], sub.bary, sub.depth), index


def texel_subset(frags: Fragments, index: torch.Tensor) -> Fragments:
    """The fragments (batch 1, any H×W) of the texels ``index`` (T,) (flat, into H×W) as a 1×T
    image: per-texel operations (interpolate, unwrap_image) then run on those texels only."""
    return Fragments(
        face_idx=frags.face_idx.reshape(-1).index_select(0, index).view(1, 1, -1),
        bary=frags.bary.reshape(-1, 3).index_select(0, index).view(1, 1, -1, 3),
        depth=frags.depth.reshape(-1).index_select(0, index).view(1, 1, -1),
    )


def scatter_texels(values: torch.Tensor, index: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Per-texel values (V,T,...) at the flat texel indices ``index`` (T,) → (V,H,W,...) maps,
    zero (False) at every other texel. The inverse of ``maps.flatten(1, 2).index_select(1, index)``."""
    V, rest = values.shape[0], values.shape[2:]
    out = values.new_zeros((V, height * width) + rest).index_copy_(1, index, values)
    return out.view((V, height, width) + rest)
