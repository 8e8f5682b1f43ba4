"""The eyes' lid gaps, matched after the coarse fit by the eye shapes alone.

The coarse fit leaves narrow and squinting eyes too open: the expression prior and the
photometric stage both pull the lids apart, and weighting the lid points more in L_lm also
pulls the pose and the identity (docs/design.md, "Heavier eyelid points"). Here only each eye's
lid opening is fitted, by only that eye's blink / squint / wide coefficients, with the pose,
the identity and every other coefficient frozen:

- per view and eye, two gaps (upper minus lower lid point, iBUG 37/41, 38/40 and 43/47, 44/46)
  measured across the detected eye (perpendicular to its corner line 36–39 / 42–45), in detected
  eye widths; the fitted gap against the detected one is the residual;
- each residual counts by its two points' weights in L_lm (the detector's per-point trust,
  :mod:`.landmark_noise`) times the view's landmark trust, over ``gap_sigma``²;
- a Gaussian prior (``coeff_sigma``) keeps the coefficients near the coarse fit's, and a gate
  (``robust``) lowers the weight of an eye whose detected gaps disagree with the coarse fit's by
  much: the coarse fit has already weighed the lid points against the photo, so a wild
  disagreement (a lid point on a glasses rim, a lash line in shadow) is more likely the
  detector's error than the fit's: noisy points cannot slam an eye shut;
- the coefficients stay in [0, 1] (active-set Gauss–Newton on a handful of unknowns).

Each eye has its own shapes, so a wink stays a wink. The lids' clearance of the eyeballs is the
per-head corrective's job (:mod:`backend.eye_clearance`), which covers every weight in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..camera import Camera, project
from .groups import per_view

__all__ = ["LidGapSettings", "EYE_SHAPES", "eye_shape_columns", "lid_openness", "fit_lid_gaps"]

# iBUG points per eye: corners (outer/inner, the eye's width) and the (upper, lower) lid pairs
_CORNERS = ((36, 39), (42, 45))
_PAIRS = (((37, 41), (38, 40)), ((43, 47), (44, 46)))
# ICT-FaceKit's eye shapes per iBUG eye: 36–41 is the subject's right eye (_R), 42–47 the left
EYE_SHAPES: tuple[tuple[str, ...], ...] = (("eyeBlink_R", "eyeSquint_R", "eyeWide_R"),
                                           ("eyeBlink_L", "eyeSquint_L", "eyeWide_L"))


@dataclass(frozen=True)
class LidGapSettings:
    """The lid-gap solve after the coarse fit (:func:`fit_lid_gaps`).

    - ``active``: run it (False: the coarse fit's expression is kept).
    - ``gap_sigma``: a lid gap's detection noise, in eye widths, for a point pair at full
      weight and a fully trusted view.
    - ``coeff_sigma``: the prior's standard deviation of each eye coefficient around the coarse
      fit's value (coefficients are in [0, 1]).
    - ``robust``: an eye's residuals count by exp(−½(r̄/``robust``)²), r̄ its mean gap residual at
      the coarse fit, in eye widths (a Welsch weight, fixed before the solve; None: plain least squares).
    - ``middle``: weight of each pair's middle (½(upper + lower) along the eye's normal, against
      the detected one) relative to its gap: it decides between closing from above (blink) and
      from below (squint); 0: the gaps alone (the prior then splits the change).
    - ``trust_power``: a view's residuals count by its landmark trust to this power.
    - ``iterations``: Gauss–Newton steps (the gaps are nearly linear in the coefficients).
    """

    active: bool = True
    gap_sigma: float = 0.05
    coeff_sigma: float = 0.7
    robust: float | None = 0.07
    middle: float = 1.0
    trust_power: float = 3.0
    iterations: int = 3


def eye_shape_columns(exp_names: list[str] | tuple[str, ...]) -> torch.Tensor | None:
    """(2,3) long: the expression columns of :data:`EYE_SHAPES` (row 0 the iBUG 36–41 eye), or
    None when the model lacks any of them (the solve is then skipped)."""
    names = list(exp_names)
    if any(n not in names for eye in EYE_SHAPES for n in eye):
        return None
    return torch.tensor([[names.index(n) for n in eye] for eye in EYE_SHAPES])


def _eye_frames(landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each eye's unit normal across its corner line (V,2,2) (pointing up the image: from the lower
    to the upper lid) and its width (V,2) px, from landmarks (V,68,2) px."""
    a = landmarks[:, [c[0] for c in _CORNERS]]  # (V,2,2) outer corners
    b = landmarks[:, [c[1] for c in _CORNERS]]  # inner corners
    d = b - a
    width = d.norm(dim=-1).clamp_min(1e-6)
    along = d / width[..., None]
    normal = torch.stack([along[..., 1], -along[..., 0]], -1)  # rotated by −90°: up in image coords
    flip = torch.where((normal[..., 1] > 0), -1.0, 1.0).to(landmarks.dtype)  # y grows down: up is −y
    return normal * flip[..., None], width


_LIDS = [i for eye in _PAIRS for pair in eye for i in pair]  # (8,) 37, 41, 38, 40, 43, 47, 44, 46


def _lids(lids: torch.Tensor, normal: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """(V,2,2,2) [eye, pair, (gap, middle)] in eye widths along each eye's normal: the lid gap
    (upper − lower)·normal / width and the pair's middle ½(upper + lower)·normal / width, from the
    lid points ``lids`` (V,8,2) px in :data:`_LIDS` order; normal (V,2,2), width (V,2) (:func:`_eye_frames`)."""
    p = (lids.reshape(-1, 2, 2, 2, 2) * normal[:, :, None, None]).sum(-1) / width[:, :, None, None]  # (V,eye,pair,up/lo)
    return torch.stack([p[..., 0] - p[..., 1], 0.5 * (p[..., 0] + p[..., 1])], -1)


def lid_openness(landmarks: torch.Tensor) -> torch.Tensor:
    """Each eye's openness (V,2): its mean lid gap over its width (iBUG 36–41 first), landmarks (V,68,2)."""
    normal, width = _eye_frames(landmarks)
    return _lids(landmarks[:, _LIDS], normal, width)[..., 0].mean(-1)


def _box_step(H: torch.Tensor, g: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The step s minimising gᵀs + ½sᵀHs with c + s in [0, 1]: a coordinate whose step would
    leave the box is held at that bound and the rest solved again (n ≤ a few dozen)."""
    step = torch.zeros_like(c)
    free = torch.ones_like(c, dtype=torch.bool)
    for _ in range(c.numel()):
        f = free.nonzero()[:, 0]
        if f.numel() == 0:
            break
        step[f] = -torch.linalg.solve(H[f][:, f], g[f] + H[f][:, ~free] @ step[~free])
        out = free & ((c + step < 0) | (c + step > 1))
        if not bool(out.any()):
            break
        step = torch.where(out, (c + step).clamp(0.0, 1.0) - c, step)
        free = free & ~out
    return step


def fit_lid_gaps(settings: LidGapSettings, model, ident: torch.Tensor, exp: torch.Tensor, groups: torch.Tensor | None,
                 pose: torch.Tensor, camera: Camera, landmarks: torch.Tensor, weights: torch.Tensor,
                 trust: torch.Tensor | None = None) -> torch.Tensor:
    """The expression rows with each eye's shapes solved to the detected lid gaps.

    model: a :class:`backend.facemodel.FaceModel` (``landmarks68``, ``exp_names``, ``restricted``);
    ident (1|G|V,K_id) and exp (R,K_exp) the fit's identity and expression rows (one, per item of
    ``groups`` or per view, as :func:`.groups.per_view` reads them); pose (V,7) for ``camera``
    (the crops' camera); landmarks (V,68,2) detected, crop px; weights (68,) or (V,68) the points'
    L_lm weights; trust (V,) each view's landmark trust, or None.
    Returns a new (R,K_exp): only the :data:`EYE_SHAPES` columns differ from ``exp`` (``exp`` itself
    when the solve is off or the model has no eye shapes). Each row is solved from its own views
    alone, so an item of a batch gets the same bits as its fit alone.
    """
    cols = eye_shape_columns(model.exp_names)
    if not settings.active or cols is None:
        return exp
    V, R = landmarks.shape[0], exp.shape[0]
    exp, ident, pose = exp.detach(), per_view(ident.detach(), groups, V), pose.detach()
    row = per_view(torch.arange(R, device=exp.device), groups, V)  # (V,) each view's expression row
    cols = cols.to(exp.device).reshape(-1)  # (6,) eye 0's three shapes, then eye 1's
    sub = model.restricted(model.landmarks68[_LIDS].to(exp.device))  # the 8 lid vertices
    weights = weights.expand(V, 68)
    solved = []
    for r in range(R):
        views = (row == r).nonzero()[:, 0]
        solved.append(_solve_row(settings, sub, exp[r], cols, ident[views], pose[views], camera.select(views),
                                 landmarks[views], weights[views], None if trust is None else trust[views]))
    return exp.index_copy(1, cols, torch.stack(solved))


def _solve_row(settings: LidGapSettings, sub, exp: torch.Tensor, cols: torch.Tensor, ident: torch.Tensor,
               pose: torch.Tensor, camera: Camera, landmarks: torch.Tensor, weights: torch.Tensor,
               trust: torch.Tensor | None) -> torch.Tensor:
    """One expression row's eye coefficients (6,) from its n views: exp (K_exp,), cols (6,), ident
    (n,K_id), pose (n,7), landmarks (n,68,2), weights (n,68), trust (n,) or None; ``sub`` the
    model on the 8 lid vertices."""
    n = landmarks.shape[0]
    normal, width = _eye_frames(landmarks)
    target = _lids(landmarks[:, _LIDS], normal, width)  # (n,2,2,2)
    w = weights[:, _LIDS].reshape(n, 2, 2, 2)  # (n, eye, pair, upper/lower)
    pair_w = 2 * w.prod(-1) / w.sum(-1).clamp_min(1e-12)  # (n,2,2) the two points' harmonic mean
    if trust is not None:
        pair_w = pair_w * trust.pow(settings.trust_power)[:, None, None]

    def lids_at(cv: torch.Tensor, views: torch.Tensor) -> torch.Tensor:  # (B,6) coefficients of views (B,) → (B,2,2,2)
        e = exp.expand(len(views), -1).index_copy(1, cols, cv)  # (B,K_exp)
        screen = project(sub(ident[views], e), pose[views], camera.select(views))[..., :2]  # (B,8,2)
        return _lids(screen, normal[views], width[views])

    views = torch.arange(n, device=exp.device)
    twelve = views.repeat_interleave(12)  # each view ±h along the 6 coefficients
    h = 0.05  # the lids are linear in the coefficients in 3-D: central differences are exact to O(h²) of the lens
    steps = h * torch.cat([torch.eye(6), -torch.eye(6)]).to(exp)  # (12,6)
    prior = 1.0 / settings.coeff_sigma ** 2
    c0 = exp[cols]  # (6,) the coarse fit's eye coefficients
    c = c0
    if settings.robust is not None:  # (n,2) each eye's gate from the coarse fit's disagreement
        gap_r = (lids_at(c.expand(n, -1), views) - target)[..., 0].mean(-1)
        pair_w = pair_w * torch.exp(-0.5 * (gap_r / settings.robust) ** 2)[..., None]
    W = (pair_w[..., None] * pair_w.new_tensor([1.0, settings.middle])).reshape(-1) / settings.gap_sigma ** 2  # (8n,)
    eye = prior * torch.eye(6, dtype=exp.dtype, device=exp.device)
    for _ in range(settings.iterations):
        r = lids_at(c.expand(n, -1), views) - target  # (n,2,2,2)
        moved = lids_at((c + steps).repeat(n, 1), twelve).reshape(n, 2, 6, 8)  # (view, ±, coefficient, residual)
        J = ((moved[:, 0] - moved[:, 1]) / (2 * h)).transpose(1, 2).reshape(n * 8, 6)  # (8n,6)
        H = J.T @ (W[:, None] * J) + eye
        g = J.T @ (W * r.reshape(-1)) + prior * (c - c0)
        c = c + _box_step(H, g, c)
    return c
