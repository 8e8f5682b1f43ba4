"""The lid-gap solve after the coarse fit (backend.fit.lid_gap): a half-closed eye is closed by its
own shapes, the other eye, the pose and the identity stay as they are."""
import math
from dataclasses import replace

import pytest
import torch

from backend.camera import Camera, project
from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.fit.lid_gap import EYE_SHAPES, LidGapSettings, eye_shape_columns, fit_lid_gaps, lid_openness
from backend.fit.photo_trust import PhotoTrustSettings

S = 224


def _pose(yaw_deg: float = 15.0, pitch_deg: float = -5.0) -> torch.Tensor:
    """(1,7) an orthographic pose that puts a head of ~150 mm into the 224² crop."""
    return torch.tensor([[1.2, math.radians(pitch_deg), math.radians(yaw_deg), 0.02, 0.0, 10.0, 0.0]])


def _landmarks(model, ident: torch.Tensor, exp: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """(B,68,2) the model's 68 points projected into the crop (contour at its fixed vertices)."""
    return project(model(ident, exp), pose, Camera(S, S))[:, model.landmarks68, :2]


def _col(model, name: str) -> int:
    return list(model.exp_names).index(name)


def _case(model):
    """A random face whose iBUG 36–41 eye (the subject's right) is narrowed, the left open; the
    fit's expression with that eye's shapes at 0 (too open, by as much as the coarse fit's worst)."""
    g = torch.Generator().manual_seed(3)
    c = model.sample(1, g)
    truth = c["exp"].clone()
    for side in "LR":
        for shape in ("eyeBlink", "eyeSquint", "eyeWide"):
            truth[:, _col(model, f"{shape}_{side}")] = 0.0
    truth[:, _col(model, "eyeBlink_R")] = 0.25
    truth[:, _col(model, "eyeSquint_R")] = 0.3
    fitted = truth.clone()
    fitted[:, _col(model, "eyeBlink_R")] = 0.0
    fitted[:, _col(model, "eyeSquint_R")] = 0.0
    pose = _pose()
    return c["id"], truth, fitted, pose, _landmarks(model, c["id"], truth, pose)


def test_eye_shape_columns_name_each_eyes_own_shapes(face_model):
    cols = eye_shape_columns(face_model.exp_names)
    assert cols.shape == (2, 3)
    assert [face_model.exp_names[int(i)] for i in cols.reshape(-1)] == [n for eye in EYE_SHAPES for n in eye]
    # row 0 moves the iBUG 36–41 eye's upper lid (37, 38) and not the other eye's (43, 44)
    zero_id, zero = torch.zeros(1, face_model.n_id), torch.zeros(1, face_model.n_exp)
    blink = zero.clone()
    blink[0, cols[0, 0]] = 1.0
    moved = (face_model(zero_id, blink) - face_model(zero_id, zero))[0, face_model.landmarks68].norm(dim=-1)
    assert moved[[37, 38]].min() > 5.0 and moved[[43, 44]].max() == 0.0
    assert eye_shape_columns(["jawOpen", "eyeBlink_L"]) is None


def test_half_closed_eye_is_closed_by_its_shapes_alone(face_model):
    ident, truth, fitted, pose, lms = _case(face_model)
    open_now = lid_openness(_landmarks(face_model, ident, fitted, pose))[0]
    goal = lid_openness(lms)[0]
    assert open_now[0] - goal[0] > 0.08  # the fit's eye is too open; the other eye matches
    assert abs(open_now[1] - goal[1]) < 1e-4
    before = fitted.clone()
    out = fit_lid_gaps(LidGapSettings(), face_model, ident, fitted, None, pose, Camera(S, S), lms, torch.ones(68))
    assert torch.equal(fitted, before)  # the argument is not modified
    after = lid_openness(_landmarks(face_model, ident, out, pose))[0]
    # the default prior keeps a little of the start: within 20 % of the gap, from 0.18
    assert abs(after[0] - goal[0]) < 0.25 * (open_now[0] - goal[0]), (after, goal)
    assert abs(after[1] - goal[1]) < 0.005  # the open eye stays open (a wink stays a wink)
    cols = eye_shape_columns(face_model.exp_names).reshape(-1)
    others = torch.ones(face_model.n_exp, dtype=torch.bool)
    others[cols] = False
    assert torch.equal(out[:, others], fitted[:, others])  # every other shape is untouched
    assert out[0, _col(face_model, "eyeBlink_R")] > 0.12
    assert out[:, cols].min() >= 0.0 and out[:, cols].max() <= 1.0
    # without a prior worth the name the solve lands on the detected gaps
    exact = fit_lid_gaps(LidGapSettings(coeff_sigma=100.0, robust=None, iterations=5), face_model, ident, fitted, None,
                         pose, Camera(S, S), lms, torch.ones(68))
    assert (lid_openness(_landmarks(face_model, ident, exact, pose))[0] - goal).abs().max() < 0.003


def test_distrusted_lid_points_move_the_eye_less(face_model):
    ident, _, fitted, pose, lms = _case(face_model)
    blink = _col(face_model, "eyeBlink_R")
    run = lambda **kw: float(fit_lid_gaps(LidGapSettings(), face_model, ident, fitted, None, pose, Camera(S, S), lms,  # noqa: E731
                                          **kw)[0, blink])
    full = run(weights=torch.ones(68))
    low_trust = run(weights=torch.ones(68), trust=torch.tensor([0.1]))
    noisy_points = run(weights=torch.full((68,), 0.01))
    assert full > 0.12 and low_trust < 0.6 * full and noisy_points < 0.6 * full


def test_noisy_lid_points_cannot_slam_an_open_eye_shut(face_model):
    """Both eyes open in the fit; the detected upper lid points of one eye lie on its lower lid."""
    ident, truth, _, pose, _ = _case(face_model)
    fitted = truth.clone()
    fitted[:, _col(face_model, "eyeBlink_R")] = 0.0
    fitted[:, _col(face_model, "eyeSquint_R")] = 0.0
    lms = _landmarks(face_model, ident, fitted, pose).clone()
    lms[:, [43, 44]] = lms[:, [47, 46]]  # the iBUG 42–47 eye detected shut
    out = fit_lid_gaps(LidGapSettings(), face_model, ident, fitted, None, pose, Camera(S, S), lms, torch.ones(68))
    shut = lid_openness(_landmarks(face_model, ident, out, pose))[0, 1]
    plain = fit_lid_gaps(LidGapSettings(robust=None), face_model, ident, fitted, None, pose, Camera(S, S), lms,
                         torch.ones(68))
    assert shut > 0.2  # open: 0.3; the robust kernel lets the wild detection move it little
    assert lid_openness(_landmarks(face_model, ident, plain, pose))[0, 1] < shut - 0.1  # least squares follows it


def test_off_and_models_without_eye_shapes_keep_the_expression(face_model):
    ident, _, fitted, pose, lms = _case(face_model)
    off = fit_lid_gaps(LidGapSettings(active=False), face_model, ident, fitted, None, pose, Camera(S, S), lms,
                       torch.ones(68))
    assert off is fitted


def test_multi_view_rows_share_one_expression(face_model):
    """Two views of one person (one expression row) and the same two views as two items."""
    ident, truth, fitted, _, _ = _case(face_model)
    pose = torch.cat([_pose(-20.0), _pose(25.0)])
    lms = _landmarks(face_model, ident.expand(2, -1), truth.expand(2, -1), pose)
    one = fit_lid_gaps(LidGapSettings(), face_model, ident, fitted, None, pose, Camera(S, S), lms, torch.ones(68))
    assert one.shape == fitted.shape and one[0, _col(face_model, "eyeBlink_R")] > 0.12
    two = fit_lid_gaps(LidGapSettings(), face_model, ident.expand(2, -1), fitted.expand(2, -1).clone(),
                       torch.tensor([0, 1]), pose, Camera(S, S), lms, torch.ones(2, 68))
    assert two.shape == (2, face_model.n_exp) and (two[:, _col(face_model, "eyeBlink_R")] > 0.12).all()


def test_coarse_fit_closes_the_lids_with_pose_and_identity_bit_identical(face_model):
    """fit_coarse on a half-closed eye's true landmarks, the warm-up alone with the paper's full prior
    (which leaves the eye too open): the lid solve closes it, nothing but the eye shapes changes."""
    ident, truth, _, pose, lms = _case(face_model)
    images = torch.full((1, S, S, 3), 0.5)
    mask = torch.ones(1, S, S)
    cfg = CoarseFitConfig(photo_schedule=(), identity=False, prior_scale=1.0, photo_trust=PhotoTrustSettings(ref=None))
    off = fit_coarse(face_model, images, lms, mask, replace(cfg, lid_gap=LidGapSettings(active=False)))
    on = fit_coarse(face_model, images, lms, mask, cfg)
    assert torch.equal(on.pose, off.pose) and torch.equal(on.id, off.id)
    cols = eye_shape_columns(face_model.exp_names).reshape(-1)
    others = torch.ones(face_model.n_exp, dtype=torch.bool)
    others[cols] = False
    assert torch.equal(on.exp[:, others], off.exp[:, others])
    goal = lid_openness(lms)[0]
    err_off = (lid_openness(off.landmarks)[0] - goal).abs()
    err_on = (lid_openness(on.landmarks)[0] - goal).abs()
    assert err_off[0] > 0.03  # the prior leaves the half-closed eye open
    assert err_on[0] < 0.5 * err_off[0], (err_on, err_off)
    assert err_on[1] < err_off[1] + 0.01
