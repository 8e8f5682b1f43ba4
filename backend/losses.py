"""The paper's losses (its eqs. 3–9) as pure functions, with their weights in two dataclasses.

Units: images in [0,1] RGB, landmarks in pixels of the image the loss is computed at, displacements
in mm. Every loss returns a scalar tensor averaged over the batch.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class CoarseLossWeights:
    """L_coarse = pixel·L_pixel + landmark·L_lm + identity·L_id + reg·R_param (paper: 1.3, 1.0, 1.5, 20.0);
    R_param = w_id‖x_id‖² + w_exp‖x_exp‖² + w_tex‖x_tex‖² (paper ω: 1.3, 1.0, 1.3)."""

    pixel: float = 1.3
    landmark: float = 1.0
    identity: float = 1.5
    reg: float = 20.0
    w_id: float = 1.3
    w_exp: float = 1.0
    w_tex: float = 1.3


@dataclass(frozen=True)
class DetailLossWeights:
    """L_fine = pixel·L_pixel + smooth·L_smooth + disp·L_disp (paper: 1.0, 10, 10) with
    L_smooth weights (w_sn, w_sz) = (20, 10) and L_disp weights (w_dn, w_dz) = (0.5, 0.01)."""

    pixel: float = 1.0
    smooth: float = 10.0
    disp: float = 10.0
    w_sn: float = 20.0
    w_sz: float = 10.0
    w_dn: float = 0.5
    w_dz: float = 0.01


SMOOTH_REFERENCE_UV = 256  # texels per side of the UV map the paper's L_smooth weight balances


def weights_at_uv_size(weights: DetailLossWeights, uv_size: int) -> DetailLossWeights:
    """``weights`` with L_smooth's weight carried from the paper's 256² map to a ``uv_size``² map.

    L_smooth (eq. 8) is a mean of squared differences between neighbouring texels. On the same
    surface a map of twice the size has neighbours twice as close, so every difference halves and
    the term falls 4×, while L_pixel and L_disp (means of per-pixel / per-texel values) do not
    change. The weight therefore scales with (uv_size / 256)²: ×4 at 512², ×0.25 at 128², so each
    size smooths the surface as the paper's 256² balance does (at 512² the unscaled weight let
    photo noise crumple smooth skin into lumps).
    """
    scale = (uv_size / SMOOTH_REFERENCE_UV) ** 2
    return replace(weights, smooth=weights.smooth * scale)


SATURATION = 250.0 / 255.0  # photo channels at or above this are treated as clipped (pixel_loss)


def pixel_loss(
    image: torch.Tensor, render: torch.Tensor, mask: torch.Tensor, value_range: float = 255.0,
    saturation: float | None = SATURATION, view_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 3, L2,1: mean over masked pixels of the per-pixel Euclidean colour distance (not squared).

    image, render: (B,H,W,3) in [0,1]; mask: (B,H,W) in [0,1] (visible skin, soft allowed).
    The distance is measured in 8-bit intensity units (``value_range`` 255), the scale at which
    the paper's weights balance the landmark term (pixels²). Per-image means are averaged.

    ``saturation``: a photo channel at or above it (clipped by the camera) only says "at least
    this bright", so a render brighter than the photo there costs nothing (a censored
    observation; None: plain two-sided residual). Without this, a fit darkens a clipped
    forehead's albedo and the detail stage bends the skin away from the light to match the clip.

    ``view_weights`` (B,) ≥ 0: the per-image values' weighted mean Σ w·L / Σ w instead of their
    mean (:mod:`backend.fit.view_weights`).
    """
    diff = (render - image) * value_range
    if saturation is not None:
        diff = torch.where(image >= saturation, diff.clamp(max=0.0), diff)
    dist = torch.sqrt((diff**2).sum(-1) + 1e-6)  # (B,H,W); eps keeps the gradient finite at 0
    weight = mask.to(dist.dtype)
    per_image = (dist * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1.0)
    return per_image.mean() if view_weights is None else _weighted_mean(per_image, view_weights)


def _weighted_mean(per_image: torch.Tensor, view_weights: torch.Tensor) -> torch.Tensor:
    """Σ w·x / Σ w of per-image values (B,) with weights (B,)."""
    return (per_image * view_weights).sum() / view_weights.sum()


def landmark_loss(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
    view_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 4: mean over landmarks of the squared 2-D distance. pred, target (B,68,2) px; weights (68,)
    or per view (B,68), optional (a weighted mean per view, then the mean over views); view_weights
    (B,) optional: that mean over views weighted (as in :func:`pixel_loss`)."""
    sq = ((pred - target) ** 2).sum(-1)  # (B,68)
    if view_weights is not None:
        per_image = (sq * weights).sum(-1).div(weights.sum(-1)) if weights is not None else sq.mean(-1)
        return _weighted_mean(per_image, view_weights)
    if weights is not None:
        return (sq * weights).sum(-1).div(weights.sum(-1)).mean()
    return sq.mean()


def identity_loss(
    feat_input: torch.Tensor, feat_render: torch.Tensor, view_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 5: squared L2 distance between face-recognition features. (B,D) each; view_weights (B,)
    optional: a weighted mean over the batch (as in :func:`pixel_loss`)."""
    per_image = ((feat_input - feat_render) ** 2).sum(-1)
    return per_image.mean() if view_weights is None else _weighted_mean(per_image, view_weights)


def param_regularizer(
    id_coeffs: torch.Tensor,
    exp_coeffs: torch.Tensor,
    tex_coeffs: torch.Tensor | None,
    weights: CoarseLossWeights = CoarseLossWeights(),
) -> torch.Tensor:
    """Eq. 6: ω_s‖x_id‖² + ω_e‖x_exp‖² (+ ω_t‖x_tex‖²), batch mean. Coefficients (B,K).

    Our normalisation: each squared norm is divided by its coefficient count (a mean square), so
    the paper's weight 20 does not grow with the basis size (ICT 100 identity modes vs the
    paper's 80) and a unit-variance face costs the same whatever the model.
    """
    reg = weights.w_id * id_coeffs.pow(2).mean(-1) + weights.w_exp * exp_coeffs.pow(2).mean(-1)
    if tex_coeffs is not None and tex_coeffs.numel() > 0:
        reg = reg + weights.w_tex * tex_coeffs.pow(2).mean(-1)
    return reg.mean()


def _neighbour_diffs(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared differences to the radius-1 neighbours (8-neighbourhood, each pair once).

    x (B,C,H,W), mask (B,1,H,W). Returns (sum of ‖x_i − x_j‖² over valid pairs, number of pairs) per batch.
    """
    total = x.new_zeros(x.shape[0])
    count = x.new_zeros(x.shape[0])
    H, W = x.shape[-2:]
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        ya, yb = slice(0, H - dy), slice(dy, H)
        xa, xb = slice(max(0, -dx), W - max(0, dx)), slice(max(0, dx), W - max(0, -dx))
        pair = mask[..., ya, xa] * mask[..., yb, xb]
        diff = ((x[..., ya, xa] - x[..., yb, xb]) ** 2).sum(1, keepdim=True)
        total = total + (diff * pair).flatten(1).sum(1)
        count = count + pair.flatten(1).sum(1)
    return total, count


def smooth_loss(
    disp: torch.Tensor,
    delta_normals: torch.Tensor,
    mask: torch.Tensor,
    weights: DetailLossWeights = DetailLossWeights(),
) -> torch.Tensor:
    """Eq. 8: Σ over texels i and radius-1 neighbours j of w_sn‖Δn(i)−Δn(j)‖² + w_sz‖Δz(i)−Δz(j)‖²,
    normalised by the number of valid neighbour pairs.

    disp (B,1,H,W) mm; delta_normals (B,3,H,W) (normal map change caused by the displacement); mask (B,1,H,W).
    """
    n_sum, count = _neighbour_diffs(delta_normals, mask)
    z_sum, _ = _neighbour_diffs(disp, mask)
    return ((weights.w_sn * n_sum + weights.w_sz * z_sum) / count.clamp_min(1.0)).mean()


def disp_loss(
    disp: torch.Tensor,
    delta_normals: torch.Tensor,
    mask: torch.Tensor,
    weights: DetailLossWeights = DetailLossWeights(),
) -> torch.Tensor:
    """Eq. 9: Σ_i w_dn‖Δn(i)‖² + w_dz‖Δz(i)‖², normalised by the number of valid texels.

    disp (B,1,H,W) mm; delta_normals (B,3,H,W); mask (B,1,H,W).
    """
    per_texel = weights.w_dn * delta_normals.pow(2).sum(1, keepdim=True) + weights.w_dz * disp.pow(2)
    return ((per_texel * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1.0)).mean()


def coarse_loss(terms: dict[str, torch.Tensor], weights: CoarseLossWeights = CoarseLossWeights()) -> torch.Tensor:
    """Weighted sum of the stage-1 terms present in ``terms`` (keys pixel, landmark, identity, reg)."""
    return sum(getattr(weights, k) * v for k, v in terms.items())


def detail_loss(terms: dict[str, torch.Tensor], weights: DetailLossWeights = DetailLossWeights()) -> torch.Tensor:
    """Weighted sum of the stage-2 terms present in ``terms`` (keys pixel, smooth, disp)."""
    return sum(getattr(weights, k) * v for k, v in terms.items())
