"""The coarse fit's cheaper solvers: L_id refreshed every few steps (backend.fit.identity_lag) and
the landmark warm-up by Levenberg–Marquardt (backend.fit.landmark_solve)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from backend.camera import Camera, project
from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.fit.contour import contour_candidates, select_contour
from backend.fit.identity_lag import LaggedIdentity
from backend.fit.landmark_solve import LandmarkLayout, landmark_residuals, solve_box_lm
from backend.losses import CoarseLossWeights, landmark_loss, param_regularizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _quartic_loss(c: torch.Tensor) -> torch.Tensor:  # a smooth non-quadratic stand-in for L_id
    return (c.mean((1, 2)) - 0.3).pow(2).sum() + c.pow(4).mean()


def test_lagged_identity_every_step_is_the_plain_term():
    c = torch.rand(2, 8, 8, 3, requires_grad=True)
    lagged = LaggedIdentity(_quartic_loss, every=1)
    for _ in range(3):
        value = lagged(c)
        (g_lag,) = torch.autograd.grad(value, c)
        plain = _quartic_loss(c)
        (g_plain,) = torch.autograd.grad(plain, c)
        assert torch.allclose(value, plain, rtol=1e-6) and torch.allclose(g_lag, g_plain, rtol=1e-5, atol=1e-9)
        c = (c.detach() + 0.05).requires_grad_()
    assert lagged.refreshes == 3


def test_lagged_identity_between_refreshes_is_the_first_order_expansion():
    c0 = torch.rand(1, 8, 8, 3)
    lagged = LaggedIdentity(_quartic_loss, every=3)
    x0 = c0.clone().requires_grad_()
    l0 = lagged(x0)
    (g0,) = torch.autograd.grad(_quartic_loss(x0), x0)
    assert torch.allclose(l0, _quartic_loss(c0))
    c1 = (c0 + 0.01 * torch.randn(c0.shape, generator=torch.Generator().manual_seed(0))).requires_grad_()
    l1 = lagged(c1)  # lagged: ℓ₀ + ⟨g₀, c₁ − c₀⟩, gradient g₀
    (g1,) = torch.autograd.grad(l1, c1)
    assert torch.allclose(l1, _quartic_loss(c0) + (g0 * (c1.detach() - c0)).sum(), rtol=1e-6)
    assert torch.equal(g1, g0)
    assert abs(float(l1.detach()) - float(_quartic_loss(c1.detach()))) < 1e-3 * float(_quartic_loss(c1.detach()))  # a close expansion
    lagged(c1)
    assert lagged.refreshes == 1
    lagged(c1)  # the 4th call refreshes
    assert lagged.refreshes == 2
    with pytest.raises(ValueError, match="≥ 1"):
        LaggedIdentity(_quartic_loss, every=0)


def test_box_levenberg_marquardt_meets_the_kkt_conditions():
    """A linear least-squares problem with a box on some variables: at the answer the free
    variables have zero gradient and those on a bound a gradient pushing outwards."""
    gen = torch.Generator().manual_seed(1)
    A, b = torch.randn(40, 6, generator=gen, dtype=torch.float64), torch.randn(40, generator=gen, dtype=torch.float64) * 3
    lower = torch.tensor([0.0, 0.0, 0.0, -torch.inf, -torch.inf, -0.1], dtype=torch.float64)
    upper = torch.tensor([1.0, 1.0, 1.0, torch.inf, torch.inf, 0.1], dtype=torch.float64)
    x, costs = solve_box_lm(torch.zeros(6, dtype=torch.float64), lambda _x: (lambda x: A @ x - b), lower, upper,
                            iterations=30, tol=1e-14)
    g = A.T @ (A @ x - b)
    at_lo, at_hi = x <= lower + 1e-9, x >= upper - 1e-9
    assert (at_lo | at_hi).any() and (~(at_lo | at_hi)).any()  # the box is active for some, not all
    assert g[~(at_lo | at_hi)].abs().max() < 1e-6
    assert (g[at_lo] >= -1e-6).all() and (g[at_hi] <= 1e-6).all()
    assert costs[-1] < costs[0] and ((x >= lower) & (x <= upper)).all()


def _landmark_problem(face_model, seed: int = 0):
    """True landmarks (1,68,2) of a random face and a start state for the warm-up."""
    gen = torch.Generator().manual_seed(seed)
    truth_id = torch.randn(1, face_model.n_id, generator=gen)
    truth_exp = (torch.randn(1, face_model.n_exp, generator=gen) * 0.3).abs().clamp(max=1.0)
    pose = torch.tensor([[0.9, 0.08, 0.35, -0.03, 4.0, -2.0, 0.0]])
    screen = project(face_model(truth_id, truth_exp), pose, Camera(224, 224))
    rows = contour_candidates(face_model.mean, face_model.landmarks68, face_model.face_vertex_mask)
    vid = face_model.landmarks68[None].clone()
    vid[:, :17] = select_contour(screen[..., :2], rows)
    return screen[0, vid[0], :2][None], rows


def test_residuals_square_to_the_warm_up_loss(face_model):
    """Σ r² is the Adam warm-up's loss, L_lm + 20·prior_scale·R_param, at any state."""
    lms, rows = _landmark_problem(face_model)
    w, ps = CoarseLossWeights(), 0.03
    layout = LandmarkLayout(1, 1, 1, face_model.n_id, face_model.n_exp)
    gen = torch.Generator().manual_seed(2)
    ident, exp = torch.randn(1, face_model.n_id, generator=gen) * 0.5, torch.rand(1, face_model.n_exp, generator=gen) * 0.2
    rot, log_f, trans, f0 = torch.tensor([[0.05, 0.3, 0.0]]), torch.tensor([[0.02]]), torch.tensor([[3.0, -1.0]]), torch.tensor([[0.9]])
    lm_w = torch.ones(68)
    lm_w[:17] = 0.5
    at = landmark_residuals(layout, face_model, f0, 224, face_model.landmarks68, rows, lms, lm_w, None, w, ps, None)
    x = layout.join(rot, log_f, trans, ident, exp)
    pose = torch.cat([f0 * log_f.exp(), rot, trans, torch.zeros(1, 1)], -1)
    screen = project(face_model(ident, exp), pose, Camera(224, 224))[..., :2]
    vid = face_model.landmarks68[None].clone()
    vid[:, :17] = select_contour(screen, rows)
    loss = w.landmark * landmark_loss(screen[:, vid[0]], lms, lm_w) + w.reg * ps * param_regularizer(ident, exp, None, w)
    assert float(at(x)(x).pow(2).sum()) == pytest.approx(float(loss), rel=1e-5)
    assert torch.allclose(at.landmarks(x), screen[:, vid[0]])


def test_gauss_newton_warm_up_reaches_the_adam_warm_up_loss(face_model):
    """The closed-form warm-up (12 iterations at most) ends at or below the loss of 150 Adam
    steps (the default before it), on true landmarks of a turned synthetic face."""
    lms, _ = _landmark_problem(face_model, seed=3)
    img, mask = torch.full((1, 224, 224, 3), 0.5), torch.zeros(1, 224, 224)
    cfg = CoarseFitConfig(photo_schedule=(), identity=False)
    ends = {}
    for solver in ("adam", "gauss_newton"):
        h = fit_coarse(face_model, img, lms, mask, replace(cfg, landmark_solver=solver)).history[0]
        ends[solver] = h["landmark"] + cfg.weights.reg * cfg.prior_scale * h["reg"]
        if solver == "gauss_newton":
            assert h["solve_iterations"] <= cfg.landmark_iterations
            assert h["solve_cost"] == pytest.approx(ends[solver], rel=1e-3)
    assert ends["gauss_newton"] <= ends["adam"] * 1.0, ends


def test_unknown_landmark_solver_is_refused(face_model):
    img, mask, lms = torch.zeros(1, 224, 224, 3), torch.zeros(1, 224, 224), torch.zeros(1, 68, 2)
    with pytest.raises(ValueError, match="landmark_solver"):
        fit_coarse(face_model, img, lms, mask, CoarseFitConfig(landmark_solver="lbfgs", photo_schedule=()))


def test_landmark_jacobian_matches_central_differences(face_model):
    """The residuals' own Jacobian (exact in the coefficients, float64 differences in the pose) against
    central differences of the whole residual vector, all in float64, with the sliding contour."""
    import copy

    from backend.fit.landmark_solve import _numeric_jacobian

    model = copy.deepcopy(face_model).double()
    lms, rows = _landmark_problem(face_model, seed=4)
    layout = LandmarkLayout(1, 1, 1, model.n_id, model.n_exp)
    gen = torch.Generator().manual_seed(6)
    x = layout.join(torch.tensor([[0.1, -0.4, 0.05]]), torch.tensor([[0.03]]), torch.tensor([[2.0, 1.0]]),
                    torch.randn(1, model.n_id, generator=gen) * 0.5, torch.rand(1, model.n_exp, generator=gen) * 0.3).double()
    at = landmark_residuals(layout, model, torch.tensor([[0.9]], dtype=torch.float64), 224, model.landmarks68, rows,
                            lms.double(), torch.ones(68, dtype=torch.float64), None, CoarseLossWeights(), 0.03, None)
    fn = at(x)
    J, ref = fn.jacobian(x), _numeric_jacobian(fn, x)
    assert J.shape == ref.shape == (fn(x).numel(), x.numel())
    assert torch.allclose(J, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max())), float((J - ref).abs().max())


def test_gauss_newton_warm_up_of_a_batch_equals_each_alone(face_model):
    """Each item of a batch (groups) is solved on its own: the same bits as its fit alone."""
    lms = torch.cat([_landmark_problem(face_model, seed=s)[0] for s in (7, 8)])
    img, mask = torch.full((2, 224, 224, 3), 0.5), torch.zeros(2, 224, 224)
    cfg = CoarseFitConfig(photo_schedule=(), identity=False, landmark_solver="gauss_newton")
    both = fit_coarse(face_model, img, lms, mask, cfg, groups=torch.arange(2))
    for i in range(2):
        one = fit_coarse(face_model, img[i:i + 1], lms[i:i + 1], mask[i:i + 1], cfg)
        assert torch.equal(both.verts[i:i + 1], one.verts) and torch.equal(both.pose[i:i + 1], one.pose)


def test_residuals_square_to_the_warm_up_loss_with_dense_points_and_view_weights(face_model):
    """Two views, one with Face Mesh's dense points, robust view weights: Σ r² is still the warm-up's
    loss term for term (L_lm and the dense term as weighted means over views, fit_coarse's landmark_step)."""
    from backend.fit.dense import dense_term

    w, ps, V = CoarseLossWeights(), 0.03, 2
    lms, rows = _landmark_problem(face_model)
    lms = torch.cat([lms, lms + 1.5])
    gen = torch.Generator().manual_seed(9)
    dense = torch.rand(V, 468, 2, generator=gen) * 100 + 60
    dense[1] = float("nan")  # the second view has none
    dt = dense_term(face_model, dense)
    if dt is None:
        pytest.skip("the face model has no Face Mesh table")
    layout = LandmarkLayout(V, 1, 1, face_model.n_id, face_model.n_exp)
    ident, exp = torch.randn(1, face_model.n_id, generator=gen) * 0.5, torch.rand(1, face_model.n_exp, generator=gen) * 0.2
    rot, log_f = torch.tensor([[0.05, 0.3, 0.0], [0.0, -0.2, 0.02]]), torch.tensor([[0.02], [-0.01]])
    trans, f0 = torch.tensor([[3.0, -1.0], [0.0, 2.0]]), torch.tensor([[0.9], [0.95]])
    view_w = torch.tensor([1.0, 0.3])
    lm_w = torch.ones(V, 68)
    lm_w[:, :17] = 0.5
    at = landmark_residuals(layout, face_model, f0, 224, face_model.landmarks68, rows, lms, lm_w, view_w, w, ps, None,
                            dt, None, 1.0)
    x = layout.join(rot, log_f, trans, ident, exp)
    pose = torch.cat([f0 * log_f.exp(), rot, trans, torch.zeros(V, 1)], -1)
    screen = project(face_model(ident.expand(V, -1), exp.expand(V, -1)), pose, Camera(224, 224))[..., :2]
    vid = face_model.landmarks68.expand(V, -1).clone()
    vid[:, :17] = select_contour(screen, rows)
    pred = torch.gather(screen, 1, vid[..., None].expand(-1, -1, 2))
    loss = (w.landmark * landmark_loss(pred, lms, lm_w, view_w)
            + w.reg * ps * param_regularizer(ident, exp.expand(V, -1), None, w)
            + w.landmark * dt.loss(dt.points(screen), 224, 224, view_w))
    assert float(at(x)(x).pow(2).sum()) == pytest.approx(float(loss), rel=1e-5)


def test_contour_candidates_are_each_anchors_row(face_model):
    """The rows tested for all jaw anchors at once equal a row built vertex test by vertex test for
    each anchor (the definition in backend.fit.contour.contour_row); the chin keeps its vertex."""
    mean, mask = face_model.mean, face_model.face_vertex_mask
    rows = contour_candidates(mean, face_model.landmarks68, mask)
    assert rows.shape == (17, 24) and bool((rows[8] == face_model.landmarks68[8]).all())
    for j in (0, 4, 7, 9, 16):
        vid = int(face_model.landmarks68[j])
        p = mean[vid]
        ids = [i for i in range(mean.shape[0]) if bool(mask[i]) and abs(float(mean[i, 1] - p[1])) < 3.0
               and bool(torch.sign(mean[i, 0]) == torch.sign(p[0])) and float(mean[i, 0].abs()) <= float(p[0].abs()) + 12.0
               and float(mean[i, 2]) >= float(p[2]) - 35.0 and float(mean[i, 0].abs()) >= float(p[0].abs()) - 25.0]
        near = sorted(ids, key=lambda i: float((mean[i] - p).norm()))[:23]
        assert rows[j, 0] == vid and set(rows[j, 1:1 + len(near)].tolist()) == set(near), j
        assert bool((rows[j, 1 + len(near):] == vid).all())
