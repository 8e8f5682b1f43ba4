"""Robust per-view weights for a multi-view coarse fit: a view the fit cannot explain is
down-weighted instead of bending the shared head.

A side photo whose detector pasted a frontal 68-point layout beside the head, or whose crop
shows hair and background where the landmarks say skin, pulls the shared identity and albedo
towards a face that fits none of the photos. The fit's own evidence says which view it is:
each view's landmark residual and photometric residual, relative to the other views'. This is
iteratively reweighted least squares over views:

- residuals per view v: r_lm (root weighted mean squared landmark distance, pixels of the 224²
  crop) and r_px (the photometric loss L_pixel of that view alone, 8-bit units);
- robust scale: the lower median over views for the landmark residuals (in units of each
  view's expected detector noise, ``yaw_noise``), the smallest for the photometric ones,
  floored (``min_landmark_px``, ``min_pixel``) so that views which all fit well keep weight 1
  whatever their small differences;
- ratio t = r / scale → weight 1 for t ≤ ``inlier``, ``floor`` for t ≥ ``outlier``, a smooth
  step between (cubic); a view's weight is the smaller of its landmark and photometric weights.

The weights multiply each view's L_lm, L_pixel and L_id in a weighted mean over views
(Σ w_v·L_v / Σ w_v), so the balance against the prior is that of the good views. A weight at
``floor`` takes the view out of the identity, expression and albedo; its own pose and light are
still fitted (Adam's steps are per coefficient, so a small weight does not slow them).

With one view nothing is weighted (the single-view fit is unchanged, bit for bit); with two,
the lower median is the better view, so only the worse one can lose weight.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..losses import pixel_loss

__all__ = ["ViewWeightSettings", "ViewWeighting", "robust_view_weights", "landmark_residual_px", "pixel_residual",
           "view_weight_report", "landmarks_followed"]


@dataclass(frozen=True)
class ViewWeightSettings:
    """How views are weighted (module docstring).

    - ``enabled``: weight views at all (False: every view counts fully, as before).
    - ``update_every``: steps between weight updates, in the landmark warm-up and in each
      photometric stage (the first update of a stage is at its first step).
    - ``warmup_start``: fraction of the warm-up run with weight 1 before the first update (the
      poses first have to find their views).
    - ``inlier`` / ``outlier``: residual ratios to the robust scale where the weight starts to fall
      and where it reaches ``floor``.
    - ``floor``: the smallest weight (> 0 so the view's own pose and light keep being fitted).
    - ``min_landmark_px``: floor of the landmark residuals' scale, pixels of the 224² crop.
    - ``min_pixel``: floor of the photometric residuals' scale, 8-bit units (L_pixel's).
    - ``pixel_inlier`` / ``pixel_outlier``: the ratios for the photometric residuals, whose
      reference is the best-explained view, not the median: when the shared shape follows two
      side views, the frontal view is the worst explained, 2.5× the best on the bench's heads,
      while a view with a pasted layout is 5× or more.
    - ``yaw_noise``: the detector's landmark error grows with the head's yaw, modelled as
      σ ∝ 1 + ``yaw_noise``·sin²(yaw), and each view's landmark term (and dense term) is also
      weighted by 1/σ² relative to the most frontal view, from the first weight update on
      (before it, a photo whose pasted frontal layout makes its pose frontal would take the
      weight of the sides; 0: off). At ±50° most of the error is a bias both sides share, not
      noise that averages out (renders, ``auto``, benchmarks/bench_side_landmark_bias.py: the jaw
      contour is off by 12.9 px of the 224² crop on average against 8.3 px of scatter around
      that; even the nose 4.2 against 3.4), so two side views outvote the frontal one with the
      same wrong shape. 32 (weight 0.0026 at ±50°, 0.045 at ±20°) leaves the sides their
      photometric evidence and their own poses: docs/multiview.md.
    - ``warn_below``: a final weight below this is reported as a warning naming the view.
    """

    enabled: bool = True
    update_every: int = 5
    warmup_start: float = 0.5
    inlier: float = 1.5
    outlier: float = 3.0
    floor: float = 0.01
    min_landmark_px: float = 3.0
    min_pixel: float = 2.0
    pixel_inlier: float = 3.0
    pixel_outlier: float = 5.0
    yaw_noise: float = 32.0
    warn_below: float = 0.5


def lower_median(x: torch.Tensor) -> torch.Tensor:
    """The lower median of a (V,) tensor (for two values, the smaller)."""
    return x.sort().values[(x.numel() - 1) // 2]


def _smooth_step_down(t: torch.Tensor, lo: float, hi: float, floor: float) -> torch.Tensor:
    """1 for t ≤ lo, ``floor`` for t ≥ hi, a cubic (smoothstep) between."""
    u = ((t - lo) / max(hi - lo, 1e-9)).clamp(0.0, 1.0)
    s = u * u * (3.0 - 2.0 * u)
    return 1.0 - (1.0 - floor) * s


def robust_view_weights(residuals: torch.Tensor, min_scale: float, settings: ViewWeightSettings,
                        inlier: float | None = None, outlier: float | None = None,
                        reference: str = "median") -> torch.Tensor:
    """Weights (V,) in [floor, 1] for per-view residuals (V,) ≥ 0: the residual over
    max(reference, ``min_scale``) through the smooth step of :class:`ViewWeightSettings`
    (its ``inlier``/``outlier`` ratios unless given); ``reference`` "median" (the lower median)
    or "min" (the best-explained view)."""
    ref = lower_median(residuals) if reference == "median" else residuals.min()
    scale = ref.clamp_min(min_scale)
    lo = settings.inlier if inlier is None else inlier
    hi = settings.outlier if outlier is None else outlier
    return _smooth_step_down(residuals / scale, lo, hi, settings.floor)


def yaw_landmark_weights(yaw: torch.Tensor, yaw_noise: float) -> torch.Tensor:
    """(V,) in (0,1]: 1/σ² of each view's landmark noise σ ∝ 1 + ``yaw_noise``·sin²(yaw), relative
    to the most frontal view. yaw (V,) radians."""
    inv_var = (1.0 + yaw_noise * yaw.sin().pow(2)).pow(-2)
    return inv_var / inv_var.max()


def landmark_residual_px(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Per view root weighted mean squared landmark distance (V,), in the points' pixels.
    pred, target (V,68,2); weights (68,) or (V,68) or None."""
    sq = ((pred - target) ** 2).sum(-1)  # (V,68)
    if weights is None:
        return sq.mean(-1).sqrt()
    return ((sq * weights).sum(-1) / weights.sum(-1)).sqrt()


def pixel_residual(image: torch.Tensor, render: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_pixel of each view alone (V,): image, render (V,H,W,3) [0,1], mask (V,H,W)."""
    return torch.stack([pixel_loss(image[v : v + 1], render[v : v + 1], mask[v : v + 1]) for v in range(image.shape[0])])


class ViewWeighting:
    """The fit's per-view weights as it runs (state of the IRLS loop).

    ``weights`` is None when every view counts fully (one view or weighting disabled), else (V,)
    in [floor, 1] (1 until the first update): the robust weights of L_pixel and L_id;
    ``landmark_weights`` (V,) those times each view's landmark information relative to the most
    frontal view (its yaw: :meth:`set_yaw`), for L_lm and the dense term.
    Both are updated in place (a captured CUDA-graph step reads them, :mod:`.step_graph`).
    ``landmark`` / ``pixel`` / ``yaw`` hold the latest residuals and yaws (V,) used.
    """

    def __init__(self, settings: ViewWeightSettings, n_views: int, device: torch.device | None = None,
                 dtype: torch.dtype = torch.float32):
        self.settings = settings
        self.active = settings.enabled and n_views > 1
        ones = torch.ones(n_views, device=device, dtype=dtype) if self.active else None
        self.weights: torch.Tensor | None = ones
        self.landmark_weights: torch.Tensor | None = None if ones is None else ones.clone()
        self.landmark: torch.Tensor | None = None
        self.pixel: torch.Tensor | None = None
        self.yaw: torch.Tensor | None = None
        self._info = ones  # (V,) each view's landmark information relative to the most frontal view (its yaw)

    def due(self, step: int, n_steps: int, warmup: bool) -> bool:
        """Whether to update at ``step`` (0-based) of a stage of ``n_steps``."""
        if not self.active:
            return False
        start = int(self.settings.warmup_start * n_steps) if warmup else 0
        return step >= start and (step - start) % self.settings.update_every == 0

    @torch.no_grad()
    def set_yaw(self, yaw: torch.Tensor) -> None:
        """Each view's landmark information from its yaw (V,) radians (``yaw_noise``), without
        touching the robust weights."""
        if not self.active:
            return
        self.yaw = yaw.detach().clone()
        self._info = (yaw_landmark_weights(self.yaw, self.settings.yaw_noise) if self.settings.yaw_noise > 0
                      else torch.ones_like(self.yaw))
        self.landmark_weights.copy_(self.weights * self._info)

    @torch.no_grad()
    def update(self, landmark_px: torch.Tensor, yaw: torch.Tensor, pixel: torch.Tensor | None = None) -> None:
        """New weights from per-view landmark residuals (V,) px at 224², the fitted yaws (V,)
        radians and, in the photometric stages, photometric residuals (V,) 8-bit units (None:
        the previous ones are kept, if any)."""
        s = self.settings
        self.landmark = landmark_px.detach()
        self.set_yaw(yaw)
        w = robust_view_weights(self.landmark * self._info.sqrt(), s.min_landmark_px, s)  # residuals in units of σ
        if pixel is not None:
            self.pixel = pixel.detach()
        if self.pixel is not None:
            w = torch.minimum(w, robust_view_weights(self.pixel, s.min_pixel, s, s.pixel_inlier, s.pixel_outlier, "min"))
        self.weights.copy_(w)
        self.landmark_weights.copy_(w * self._info)

    def summary(self) -> dict[str, list[float]]:
        """The latest weights, residuals and yaws as lists (for the fit's history)."""
        out: dict[str, list[float]] = {}
        for key, value in (("view_weights", self.weights), ("view_landmark_weights", self.landmark_weights),
                           ("view_landmark_px", self.landmark), ("view_pixel", self.pixel), ("view_yaw", self.yaw)):
            if value is not None:
                out[key] = [float(x) for x in value]
        return out


def view_weight_report(weights: torch.Tensor | None, names: list[str],
                       settings: ViewWeightSettings = ViewWeightSettings()) -> tuple[dict[str, float], list[str]]:
    """Metrics ``view_weight_<i>`` (views in order) and ``view_weight_min`` for ``params.json``,
    and one warning per view below ``settings.warn_below`` naming it (``names``: V photo names).
    Nothing when ``weights`` is None (one view, or weighting off)."""
    if weights is None:
        return {}, []
    w = [float(x) for x in weights]
    metrics = {f"view_weight_{i}": x for i, x in enumerate(w)}
    metrics["view_weight_min"] = min(w)
    warn = [
        f"photo {names[i]!r}: the fit could not explain its landmarks and photo together with the other photos "
        f"(view weight {x:.2f}), so it barely shapes the head; check its landmarks in preview.png, or leave it out"
        for i, x in enumerate(w) if x < settings.warn_below
    ]
    return metrics, warn


def landmarks_followed(history: list[dict], n_views: int, threshold: float = 0.5) -> list[bool]:
    """Per view, whether the fit followed its landmarks: False for a view whose landmark term the
    yaw term held below ``threshold`` of the most frontal view's at the end of the fit (a side
    view of a multi-view set), from the fit's ``history`` (``view_landmark_weights`` over
    ``view_weights``, the latest entry with both). All True without them (one view, weighting off)."""
    last = next((h for h in reversed(history) if "view_landmark_weights" in h and "view_weights" in h), None)
    if last is None or len(last["view_weights"]) != n_views:
        return [True] * n_views
    return [lw / max(w, 1e-12) >= threshold for lw, w in zip(last["view_landmark_weights"], last["view_weights"])]
