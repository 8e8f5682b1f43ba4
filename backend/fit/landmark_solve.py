"""The coarse fit's landmark warm-up as a small nonlinear least-squares problem.

The warm-up minimises L_lm (+ the dense Face Mesh term) + R_param over pose, identity and
expression. The face model is linear in its coefficients and the camera orthographic, so the
loss is a sum of squares of a few hundred residuals in 6·V + K_id + K_exp ≈ 160 unknowns, nearly
quadratic away from the rotation. :func:`solve_box_lm` solves it by Levenberg–Marquardt (Gauss–
Newton steps with an adaptive damping) with the expression's [0, 1] box kept by an active set
and the identity ball by projection, in a handful of iterations where Adam needs 150 small steps.
:func:`landmark_residuals` writes the warm-up's loss (``fit_coarse``'s ``landmark_step``) as
those residuals: the sum of their squares is the loss, term for term.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..camera import Camera, project, screen_jacobian, to_camera_space
from ..losses import CoarseLossWeights
from .contour import select_contour
from .groups import per_view

__all__ = ["LandmarkLayout", "landmark_residuals", "solve_box_lm"]

Residuals = Callable[[torch.Tensor], torch.Tensor]  # x (P,) → r (M,)


@dataclass(frozen=True)
class LandmarkLayout:
    """Where each parameter sits in the flat vector x (P,): rot (V,3), log_f (V,1), trans (V,2),
    id (G,K_id), exp (E,K_exp) (E = G when the expression is shared, else V), in this order."""

    V: int
    G: int
    E: int
    n_id: int
    n_exp: int

    @property
    def sizes(self) -> tuple[int, ...]:
        return (3 * self.V, self.V, 2 * self.V, self.G * self.n_id, self.E * self.n_exp)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x (P,) → rot (V,3), log_f (V,1), trans (V,2), id (G,K_id), exp (E,K_exp)."""
        rot, log_f, trans, ident, exp = torch.split(x, self.sizes)
        return (rot.view(self.V, 3), log_f.view(self.V, 1), trans.view(self.V, 2), ident.view(self.G, self.n_id),
                exp.view(self.E, self.n_exp))

    def join(self, rot, log_f, trans, ident, exp) -> torch.Tensor:
        """The inverse of :meth:`split`."""
        return torch.cat([t.reshape(-1) for t in (rot, log_f, trans, ident, exp)])

    def exp_slice(self) -> slice:
        start = sum(self.sizes[:4])
        return slice(start, start + self.E * self.n_exp)


def landmark_residuals(
    layout: LandmarkLayout, shape: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], f0: torch.Tensor, size: int,
    lm_vid: torch.Tensor, contour_rows: torch.Tensor | None, target: torch.Tensor, lm_weights: torch.Tensor,
    view_weights: torch.Tensor | None, weights: CoarseLossWeights, prior_scale: float,
    groups: torch.Tensor | None, dense=None, dense_map: torch.Tensor | None = None, dense_weight: float = 0.0,
    camera: Camera | None = None, view_trust: torch.Tensor | None = None,
) -> Callable[[torch.Tensor], Residuals]:
    """The warm-up loss as residuals, for :func:`solve_box_lm`.

    ``shape`` (id (V,K_id), exp (V,K_exp)) → vertices (V,U,3) mm (the model on the U vertices the
    terms read); f0 (V,1) the pose's base scale; ``size`` the crop's side (px); lm_vid (68,) and
    contour_rows (17,k) rows of that vertex subset (None: no sliding contour); target (V,68,2)
    crop px; lm_weights (68,) or (V,68); view_weights (V,) or None (L_lm's view weights, read at each ``at``);
    ``dense`` a :class:`backend.fit.dense.DenseTerm` (or None) with ``dense_map`` (model vertex id
    → subset row) and its weight relative to L_lm; ``camera`` the ``size``² crop's with each
    view's lens (None: orthographic). Returns ``at(x)`` → residuals ``r(x)`` whose
    squares sum to the loss, with the sliding contour's vertices chosen at ``x`` (fixed inside r);
    ``at.landmarks(x)`` gives the model's landmarks (V,68,2) there.
    """
    V, G = layout.V, layout.G
    cam = Camera(size, size) if camera is None else camera
    W = lm_weights.expand(V, -1)  # (V,68)
    reg = weights.reg * prior_scale * G
    id_scale = (reg * weights.w_id / (layout.n_id * G)) ** 0.5
    exp_scale = (reg * weights.w_exp / (layout.n_exp * V)) ** 0.5

    with torch.no_grad():  # the model's bases on the U vertices, (K,U,3), from its (linear) shape function
        dt, dev = target.dtype, target.device
        rest = shape(torch.zeros(1, layout.n_id, dtype=dt, device=dev), torch.zeros(1, layout.n_exp, dtype=dt, device=dev))
        id_basis = shape(torch.eye(layout.n_id, dtype=dt, device=dev),
                         torch.zeros(layout.n_id, layout.n_exp, dtype=dt, device=dev)) - rest
        exp_basis = shape(torch.zeros(layout.n_exp, layout.n_id, dtype=dt, device=dev),
                          torch.eye(layout.n_exp, dtype=dt, device=dev)) - rest

    def state_of(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """screen (V,U,2) px, ident (G,K_id), exp_v (V,K_exp), pose (V,7), verts (V,U,3) mm at x."""
        rot, log_f, trans, ident, exp = layout.split(x)
        pose = torch.cat([f0 * log_f.exp(), rot, trans, torch.zeros_like(f0)], -1)  # (V,7)
        exp_v = per_view(exp, groups, V)
        verts = shape(per_view(ident, groups, V), exp_v)
        return project(verts, pose, cam)[..., :2], ident, exp_v, pose, verts

    last: list = [None, None]  # the last x (kept alive, so ``is`` is safe) and its state

    def state(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """:func:`state_of`, once per x: the solver asks at one x for the contour, the residuals and
        the Jacobian, and a trial step's x is the next linearisation point."""
        if x.requires_grad:
            return state_of(x)
        if last[0] is not x:
            last[:] = x, state_of(x)
        return last[1]

    def screen_of(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return state(x)[:3]

    def contour_at(x0: torch.Tensor) -> torch.Tensor:  # (V,68) subset rows, the contour chosen at x0
        vid = lm_vid.expand(V, -1).clone()
        if contour_rows is not None:
            with torch.no_grad():
                vid[:, :17] = select_contour(screen_of(x0)[0], contour_rows)
        return vid

    def landmarks(x: torch.Tensor) -> torch.Tensor:
        """The model's 68 landmarks (V,68,2) crop px at x."""
        with torch.no_grad():
            return torch.gather(screen_of(x)[0], 1, contour_at(x)[..., None].expand(-1, -1, 2))

    def at(x0: torch.Tensor) -> Residuals:
        share = (torch.full((V,), 1.0 / V, dtype=target.dtype, device=target.device) if view_weights is None
                 else view_weights / view_weights.sum())  # read here: the view weights change in place
        if view_trust is not None:  # (V,) each view's landmark trust
            share = share * view_trust
        lm_scale = (weights.landmark * G * share[:, None] * W / W.sum(-1, keepdim=True)).sqrt()  # (V,68)
        if dense is not None:  # the dense term's mean over points, then over views with the same shares
            dense_scale = (weights.landmark * dense_weight * G * share / dense.targets.shape[1]
                           * dense.has.to(target.dtype)).sqrt()  # (V,)
        vid = contour_at(x0)

        def assemble(screen: torch.Tensor, ident: torch.Tensor, exp_v: torch.Tensor, offset: bool) -> torch.Tensor:
            """Residuals (C,M) of C states: screens (C,V,U,2), identities (C,G,K_id), per-view expressions
            (C,V,K_exp); ``offset`` False: of C tangents (the residuals are affine in all three)."""
            C = screen.shape[0]
            lms = torch.gather(screen, 2, vid[None, ..., None].expand(C, -1, -1, 2))  # (C,V,68,2)
            parts = [((lms - target if offset else lms) * lm_scale[..., None]).reshape(C, -1),
                     id_scale * ident.reshape(C, -1), exp_scale * exp_v.reshape(C, -1)]
            if dense is not None:
                points = dense.points(screen.flatten(0, 1), dense_map).view(C, V, -1, 2)  # crop frame = this frame
                parts.append(((points - dense.targets if offset else points) * dense_scale[:, None, None]).reshape(C, -1))
            return torch.cat(parts, 1)

        def residuals(x: torch.Tensor) -> torch.Tensor:
            screen, ident, exp_v = state(x)[:3]
            return assemble(screen[None], ident[None], exp_v[None], True)[0]

        def jacobian(x: torch.Tensor) -> torch.Tensor:
            """∂r/∂x (M,P) at x: exact in the coefficients (the residuals are affine in them), central
            differences in float64 for each view's 6 pose values."""
            pose, verts = state(x)[3:]
            verts = verts.detach()  # (V,U,3)
            dt, dev, U = x.dtype, x.device, verts.shape[1]
            # pose, in the layout's order (rot 3, log f, trans 2): tangent screens (6,V,U,2)
            p64, v64, h = pose.detach().double(), verts.double(), 1e-6
            shifted = []  # 12 poses (V,7): each of the 6 values moved by +h, then by -h
            for k in range(6):
                for sgn in (h, -h):
                    q = p64.clone()
                    if k == 3:
                        q[:, 0] = q[:, 0] * torch.exp(torch.tensor(sgn, dtype=torch.float64))
                    else:
                        q[:, 1 + k if k < 3 else k] += sgn
                    shifted.append(q)
            # one projection of the 12 shifted copies (the same per-view arithmetic as 12 calls, bit for bit)
            ends = project(v64.repeat(12, 1, 1), torch.cat(shifted), cam.select(list(range(V)) * 12))[..., :2]
            ends = ends.view(6, 2, V, U, 2)
            d_pose = ((ends[:, 0] - ends[:, 1]) / (2 * h)).to(dt)  # (6,V,U,2)
            # the same view's tangent only, columns ordered rot (V,3), log_f (V,1), trans (V,2)
            order = [(k, v) for k0, n in ((0, 3), (3, 1), (4, 2)) for v in range(V) for k in range(k0, k0 + n)]
            T_pose = torch.zeros(len(order), V, U, 2, dtype=dt, device=dev)
            for c, (k, v) in enumerate(order):
                T_pose[c, v] = d_pose[k, v]
            # coefficients: the projection's derivative at each vertex applied to each basis shape
            lin = _coefficient_tangents(pose, verts, (id_basis, exp_basis), cam)
            map_id = per_view(torch.eye(G, dtype=dt, device=dev), groups, V)  # (V,G) which identity row each view reads
            map_exp = per_view(torch.eye(layout.E, dtype=dt, device=dev), groups, V)  # (V,E)
            T_id = torch.einsum("vg,vkuc->gkvuc", map_id, lin[0]).reshape(-1, V, U, 2)
            T_exp = torch.einsum("ve,vkuc->ekvuc", map_exp, lin[1]).reshape(-1, V, U, 2)
            n_pose, n_id, n_exp = T_pose.shape[0], T_id.shape[0], T_exp.shape[0]
            P = n_pose + n_id + n_exp
            ident_t = torch.zeros(P, G * layout.n_id, dtype=dt, device=dev)
            ident_t[n_pose:n_pose + n_id] = torch.eye(n_id, dtype=dt, device=dev)
            exp_rows = torch.zeros(P, layout.E, layout.n_exp, dtype=dt, device=dev)
            exp_rows[n_pose + n_id:] = torch.eye(n_exp, dtype=dt, device=dev).view(n_exp, layout.E, layout.n_exp)
            exp_t = torch.einsum("ve,pek->pvk", map_exp, exp_rows)  # (P,V,K_exp)
            T = torch.cat([T_pose, T_id, T_exp])  # (P,V,U,2)
            return assemble(T, ident_t.view(P, G, -1), exp_t, False).T  # (M,P)

        residuals.jacobian = jacobian  # type: ignore[attr-defined]
        return residuals

    at.landmarks = landmarks  # type: ignore[attr-defined]
    return at


def _coefficient_tangents(pose: torch.Tensor, verts: torch.Tensor, bases: tuple[torch.Tensor, ...],
                          cam: Camera) -> list[torch.Tensor]:
    """Screen tangents (V,K,U,2) of each basis shape (K,U,3) mm at vertices verts (V,U,3) under
    pose (V,7): orthographic, the projection's linear part (exact); with a lens, its Jacobian at
    each vertex (:func:`backend.camera.screen_jacobian`)."""
    V, U, dt, dev = verts.shape[0], verts.shape[1], verts.dtype, verts.device
    if cam.focal is None:
        origin = project(torch.zeros(V, 1, 3, dtype=dt, device=dev), pose, cam)[..., :2]  # (V,1,2)
        return [(project(b.reshape(1, -1, 3).expand(V, -1, -1), pose, cam)[..., :2] - origin).view(V, b.shape[0], U, 2)
                for b in bases]
    D = screen_jacobian(to_camera_space(verts, pose, cam.projection), pose, cam)  # (V,U,2,3)
    return [torch.einsum("vuij,kuj->vkui", D, b) for b in bases]


def solve_box_lm(
    x0: torch.Tensor, residuals_at: Callable[[torch.Tensor], Residuals], lower: torch.Tensor, upper: torch.Tensor,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None, iterations: int = 12, tol: float = 1e-7,
) -> tuple[torch.Tensor, list[float]]:
    """Levenberg–Marquardt on ½‖r(x)‖² with the box lower ≤ x ≤ upper (P,) (±inf: unbounded).

    Each iteration linearises ``residuals_at(x)`` (its ``jacobian`` attribute, else central
    differences), takes a damped Gauss–Newton step inside the box (:func:`_box_step`, float64)
    and applies ``project`` (x → x, e.g. a norm ball). A step that does not lower the cost
    raises the damping and is retried (at most 8 times). Stops after ``iterations`` or when an
    accepted step lowers the cost by less than ``tol`` (relative). With a sliding contour (``residuals_at`` choosing vertices at x) the cost at a new x, with
    its own choice, can exceed the last step's: the solver then stops. Returns the best x (P,)
    and the costs: at x0, after each accepted step, and last the best, each at its own contour.
    """
    x = x0.detach().clone()
    damping = 1e-3
    costs: list[float] = []
    best_x, best_cost = x, float("inf")
    for _ in range(iterations):
        fn = residuals_at(x)
        r = fn(x).detach()
        cost = float(r.double().pow(2).sum())
        if not costs:
            costs.append(cost)
        elif cost >= best_cost * (1.0 - tol):  # the sliding contour moved and undid the last step's gain
            break
        if cost < best_cost:
            best_x, best_cost = x, cost
        J = (fn.jacobian(x) if hasattr(fn, "jacobian") else _numeric_jacobian(fn, x)).detach().double()  # (M,P)
        rd = r.double()
        g = J.T @ rd  # ½∇‖r‖²
        lo, hi = (lower - x).double(), (upper - x).double()  # the step's box
        JtJ = J.T @ J
        accepted = False
        for _ in range(8):
            step = _box_step(J, JtJ, rd, g, lo, hi, damping)
            x_new = torch.minimum(torch.maximum(x + step.to(x.dtype), lower), upper)
            if project is not None:
                x_new = project(x_new)
            new_cost = float(fn(x_new).detach().double().pow(2).sum())
            if new_cost < cost:
                accepted = True
                damping = max(damping / 3.0, 1e-9)
                break
            damping *= 4.0
        if not accepted:
            break
        x = x_new
        costs.append(new_cost)
        if cost - new_cost < tol * cost:
            break
    final = float(residuals_at(x)(x).detach().double().pow(2).sum())  # at its own contour
    if final < best_cost:
        best_x, best_cost = x, final
    costs.append(best_cost)
    return best_x, costs


def _box_step(J: torch.Tensor, JtJ: torch.Tensor, r: torch.Tensor, g: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
              damping: float, passes: int = 6) -> torch.Tensor:
    """A damped Gauss–Newton step s (P,) within lo ≤ s ≤ hi (float64): variables at a bound that the
    gradient pushes outwards are held there; a free variable whose step would leave the box is
    moved onto the bound and held, and the others are solved again for the rest, up to ``passes``
    times. J (M,P), JtJ (P,P), r (M,), g = Jᵀr (P,)."""
    step = torch.zeros_like(g)
    held = ((lo >= 0) & (g > 0)) | ((hi <= 0) & (g < 0))
    for _ in range(passes):
        free = ~held
        H = JtJ[free][:, free]
        rhs = g[free] + JtJ[free][:, held] @ step[held]  # Jfᵀ(r + Jh·sh)
        H = H + torch.diag(damping * H.diagonal().clamp_min(1e-12))
        step[free] = -torch.linalg.solve(H, rhs)
        out = free & ((step < lo) | (step > hi))
        if not out.any():
            break
        step = torch.minimum(torch.maximum(step, lo), hi)
        held = held | out
    return torch.minimum(torch.maximum(step, lo), hi)


def _numeric_jacobian(fn: Residuals, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """∂r/∂x (M,P) by central differences, for residual functions without their own ``jacobian``
    (small problems; forward-mode autodiff would load torch's JIT decompositions, 0.3 s a process)."""
    cols = []
    for k in range(x.numel()):
        e = torch.zeros_like(x)
        e[k] = h
        cols.append((fn(x + e) - fn(x - e)) / (2 * h))
    return torch.stack(cols, 1)
