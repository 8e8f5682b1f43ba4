"""Per-landmark noise weights of the coarse fit's landmark term (backend/fit/landmark_noise.py)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from backend.align import MIRROR_68
from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.fit.landmark_noise import AGREED_IO, GAP_SLOPE, SIGMA_IO, LandmarkNoiseSettings, point_gaps, point_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _face_points() -> torch.Tensor:
    """(1,68,2) px: points with the outer eye corners 36 and 45 exactly 50 px apart."""
    g = torch.Generator().manual_seed(0)
    lm = torch.rand(1, 68, 2, generator=g) * 100
    lm[0, 36], lm[0, 45] = torch.tensor([20.0, 40.0]), torch.tensor([70.0, 40.0])
    return lm


def test_tables_are_mirror_symmetric_and_consistent():
    for table in (SIGMA_IO, AGREED_IO, GAP_SLOPE):
        assert len(table) == 68
        assert all(table[i] == table[MIRROR_68[i]] for i in range(68))
    # the usual (mean) variance is at least the variance where the detectors agree
    assert all(s * s >= a * a - 1e-9 for s, a in zip(SIGMA_IO, AGREED_IO))


def test_only_points_the_detectors_disagree_on_lose_weight():
    lm = _face_points()
    mesh = lm.clone()
    mesh[0, 62, 0] += 10.0  # inner lip: 0.2 inter-ocular distances apart
    mesh[0, 0, 1] += 10.0  # jaw: Face Mesh's jaw is a fixed blend, its gap says nothing (slope 0)
    gaps = point_gaps(lm, mesh)
    assert gaps[0, 62] == pytest.approx(0.2) and gaps[0, 0] == pytest.approx(0.2) and gaps[0, 30] == 0
    on = LandmarkNoiseSettings(gap=True)
    w = point_weights(on, lm, mesh)
    expected = SIGMA_IO[62] ** 2 / (AGREED_IO[62] ** 2 + GAP_SLOPE[62] * 0.2**2)
    assert float(w[0, 62]) == pytest.approx(expected, rel=1e-5)
    assert expected < 0.05
    others = torch.ones(68, dtype=torch.bool)
    others[62] = False
    assert torch.equal(w[0, others], torch.ones(67))  # agreeing points, and the jaw, keep weight 1
    # no second opinion (NaN row, or none at all): every point keeps its weight
    assert torch.equal(point_weights(on, lm, torch.full_like(lm, float("nan"))), torch.ones(1, 68))
    assert torch.equal(point_weights(on, lm, None), torch.ones(1, 68))
    assert not LandmarkNoiseSettings().active  # off by default


def test_table_weights_are_inverse_variances():
    w = point_weights(LandmarkNoiseSettings(table=True, gap=False), _face_points())
    ratio = (SIGMA_IO[39] / SIGMA_IO[0]) ** 2  # the jaw's end against an inner eye corner
    assert float(w[0, 0] / w[0, 39]) == pytest.approx(ratio, rel=1e-5)
    assert float(w.max()) == pytest.approx(1.0)


def test_fit_ignores_a_point_the_detectors_disagree_on(face_model):
    """A detection whose inner-lip point is 8 px off, while Face Mesh's is right: with the noise
    weights the fitted point stays near the truth; without, the fit follows the outlier."""
    from evaluation.synthetic import SyntheticSettings, make_faces

    face = make_faces(face_model, 1, seed=3, settings=SyntheticSettings(size=96))[0]
    img = torch.from_numpy(face.image).float()[None] / 255.0
    truth = torch.from_numpy(face.contour68).float()[None]
    detected = truth.clone()
    detected[0, 66, 1] += 8.0  # the lower inner lip pulled down
    cfg = CoarseFitConfig(landmark_steps=80, photo_schedule=((48, 3),), identity=False)
    on = fit_coarse(face_model, img, detected, torch.ones(1, 96, 96),
                    replace(cfg, landmark_noise=LandmarkNoiseSettings(gap=True)), mesh68=truth)
    off = fit_coarse(face_model, img, detected, torch.ones(1, 96, 96), cfg, mesh68=truth)
    err_on = float((on.landmarks[0, 66] - truth[0, 66]).norm())
    err_off = float((off.landmarks[0, 66] - truth[0, 66]).norm())
    assert err_on < 0.5 * err_off, (err_on, err_off)
    assert err_off > 1.2


def test_calibration_recovers_a_known_noise_law():
    """training.landmark_noise fits error² = s² + a·gap²: on faces built to follow it exactly
    (error 0.03 where the detectors agree, slope 0.5), it returns s = 0.03 and a = 0.5."""
    import numpy as np

    from training.landmark_noise import noise_tables

    rng = np.random.default_rng(0)
    N = 40
    truth = rng.uniform(0, 100, (N, 68, 2))
    truth[:, 36], truth[:, 45] = [20.0, 40.0], [70.0, 40.0]  # inter-ocular distance 50 px
    gap = rng.uniform(0, 0.2, (N, 68))  # inter-ocular distances
    err = np.sqrt(0.03**2 + 0.5 * gap**2)
    angle = rng.uniform(0, 2 * np.pi, (N, 68))
    detected = truth + 50 * err[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    detected[:, 36], detected[:, 45] = truth[:, 36], truth[:, 45]  # keep the scale exact
    mesh = detected + 50 * gap[..., None] * np.array([1.0, 0.0])
    sigma, agreed, slope = noise_tables(detected, mesh, truth)
    inner = [j for j in range(68) if j not in (36, 45)]
    assert agreed[inner] == pytest.approx(0.03, abs=1e-6)
    assert slope[inner] == pytest.approx(0.5, abs=1e-5)
    assert sigma[inner] == pytest.approx(np.sqrt(0.03**2 + 0.5 * np.mean(gap**2)), rel=0.2)


def test_landmark_trust_is_one_for_a_typical_photo_and_falls_with_the_gap():
    """The landmark terms keep their weight up to the typical faces_dev gap and lose it as the
    detectors disagree more: monotone, 1/(1 + ...) of the calibrated variance law."""
    from backend.fit.landmark_noise import TRUST_AGREED, TRUST_SLOPE, TRUST_TYPICAL_GAP, landmark_trust

    lm = _face_points()
    on = LandmarkNoiseSettings(trust=True)
    gaps = torch.linspace(0.0, 0.3, 31)
    trust = [landmark_trust(on, lm, None, gaps=g.view(1)) for g in gaps]
    values = [1.0 if t is None else float(t[0]) for t in trust]
    assert all(b <= a for a, b in zip(values, values[1:]))  # monotone in the disagreement
    assert all(t is None for t, g in zip(trust, gaps) if g <= TRUST_TYPICAL_GAP)  # typical photos: unchanged fit
    typical = TRUST_AGREED**2 + TRUST_SLOPE * TRUST_TYPICAL_GAP**2
    at = landmark_trust(on, lm, None, gaps=torch.tensor([0.07]))  # a render's typical gap
    assert float(at[0]) == pytest.approx(typical / (TRUST_AGREED**2 + TRUST_SLOPE * 0.07**2), rel=1e-5)
    assert 0.3 < float(at[0]) < 0.6
    assert values[-1] < 0.05  # 0.3 apart: one detector is far off
    squared = landmark_trust(LandmarkNoiseSettings(trust=True, trust_power=2.0), lm, None, gaps=torch.tensor([0.07]))
    assert float(squared[0]) == pytest.approx(float(at[0]) ** 2, rel=1e-5)
    assert landmark_trust(LandmarkNoiseSettings(trust=False), lm, None, gaps=torch.tensor([0.2])) is None  # off


def test_landmark_trust_reads_the_gap_from_face_mesh_when_not_given_and_per_item():
    from backend.fit.landmark_noise import (TRUST_AGREED, TRUST_MESH_ALONE, TRUST_SLOPE, TRUST_TYPICAL_GAP,
                                            landmark_trust, view_gaps)

    lm = _face_points().expand(3, -1, -1).clone()
    mesh = lm.clone()
    mesh[:, :, 0] += 0.5  # 0.01 outer-eye distances apart (50 px): closer than typical
    mesh[1, :, 0] += 4.5  # view 1: 0.1
    assert view_gaps(lm, mesh).tolist() == pytest.approx([0.01, 0.1, 0.01])
    on = LandmarkNoiseSettings(trust=True)
    person = LandmarkNoiseSettings(trust=True, trust_view_power=None)
    one_item = landmark_trust(person, lm, mesh)  # one person: the views' variances averaged, one trust
    assert torch.allclose(one_item, one_item[0].expand(3)) and float(one_item[0]) < 1.0
    kept = landmark_trust(on, lm, mesh)  # by default the two views that agree keep full trust
    assert kept[0] == 1.0 and kept[2] == 1.0 and float(kept[1]) == pytest.approx(float(one_item[1]))
    groups = torch.tensor([0, 1, 2])  # three people: each its own
    per_item = landmark_trust(on, lm, mesh, groups=groups)
    assert per_item[0] == 1.0 and per_item[2] == 1.0 and float(per_item[1]) < float(one_item[0])
    alone = landmark_trust(on, lm[1:2], mesh[1:2])
    assert float(per_item[1]) == pytest.approx(float(alone[0]))  # as the item would be fitted alone
    # a known gap wins (the mesh's points replaced dlib's: landmarks == mesh68, yet the detectors were apart)
    given = landmark_trust(on, lm, lm.clone(), gaps=torch.tensor([0.01, 0.1, float("nan")]), groups=groups)
    assert float(given[1]) == pytest.approx(float(per_item[1]), rel=1e-6) and given[0] == 1.0
    # the mesh's points with no dlib to check them (view 2): Face Mesh's own variance on faces_dev
    typical = TRUST_AGREED**2 + TRUST_SLOPE * TRUST_TYPICAL_GAP**2
    assert float(given[2]) == pytest.approx(typical / TRUST_MESH_ALONE, rel=1e-6)
    assert 0.25 < float(given[2]) < 0.4


def test_trust_law_recovers_a_known_law():
    import numpy as np

    from training.landmark_noise import trust_law

    rng = np.random.default_rng(1)
    N = 200
    truth = rng.uniform(0, 100, (N, 68, 2))
    truth[:, 36], truth[:, 45] = [20.0, 40.0], [70.0, 40.0]
    gap = rng.uniform(0.01, 0.12, N)
    err = np.sqrt(0.02**2 + 0.5 * gap**2)  # every point of a face this far off (outer-eye distances)
    angle = rng.uniform(0, 2 * np.pi, (N, 68))
    detected = truth + 50 * err[:, None, None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    detected[:, 45] = truth[:, 45] + detected[:, 36] - truth[:, 36]  # eye corners moved together: 50 px apart
    mesh = detected.copy()
    mesh[..., 0] += 50 * gap[:, None]
    agreed, slope, typical = trust_law(detected, mesh, truth)
    assert agreed == pytest.approx(0.02, abs=1e-4) and slope == pytest.approx(0.5, rel=1e-3)
    assert typical == pytest.approx(np.median(gap), rel=1e-6)


def test_fit_follows_landmarks_less_when_the_detectors_disagree_and_batches_keep_it_per_item(face_model):
    """Noisy landmarks (3 px scatter): with a large detector gap the fit stays nearer the prior
    (smaller identity, further from the noisy points) than with a typical gap; a batch of the two
    gives each item the fit it gets alone."""
    from evaluation.synthetic import SyntheticSettings, make_faces

    face = make_faces(face_model, 1, seed=3, settings=SyntheticSettings(size=96))[0]
    img = torch.from_numpy(face.image).float()[None] / 255.0
    g = torch.Generator().manual_seed(1)
    noisy = torch.from_numpy(face.contour68).float()[None] + 3.0 * torch.randn(1, 68, 2, generator=g)
    cfg = CoarseFitConfig(photo_schedule=((48, 3),), identity=False, landmark_noise=LandmarkNoiseSettings(trust=True))
    skin = torch.ones(1, 96, 96)
    typical = fit_coarse(face_model, img, noisy, skin, cfg, gaps=torch.tensor([0.03]))
    doubtful = fit_coarse(face_model, img, noisy, skin, cfg, gaps=torch.tensor([0.12]))
    off = fit_coarse(face_model, img, noisy, skin, replace(cfg, landmark_noise=LandmarkNoiseSettings()))
    assert torch.equal(typical.id, off.id)  # a typical gap: the fit is unchanged
    assert float(doubtful.id.norm()) < 0.8 * float(typical.id.norm())
    resid = lambda r: float((r.landmarks - noisy).norm(dim=-1).mean())  # noqa: E731
    assert resid(doubtful) > resid(typical) + 0.2
    both = fit_coarse(face_model, img.expand(2, -1, -1, -1), noisy.expand(2, -1, -1), skin.expand(2, -1, -1), cfg,
                      groups=torch.tensor([0, 1]), gaps=torch.tensor([0.03, 0.12]))
    assert torch.allclose(both.id[0], typical.id[0], atol=1e-4) and torch.allclose(both.id[1], doubtful.id[0], atol=1e-4)
    from backend.fit.batch import split_coarse

    assert "landmark_trust" not in typical.history[0] and 0.1 < doubtful.history[0]["landmark_trust"] < 0.2
    items = split_coarse(both, torch.tensor([0, 1]))  # each item's history as its own fit's
    assert "landmark_trust" not in items[0].history[0]
    assert items[1].history[0]["landmark_trust"] == pytest.approx(doubtful.history[0]["landmark_trust"])


def test_trust_power_matches_the_renders_mean_variance():
    """On renders the error variance exceeds what the gap predicts; the power makes the trust of
    the law's mean variance equal the trust of the measured mean variance."""
    import numpy as np

    from training.landmark_noise import trust_power

    s, a, g0 = 0.02, 0.5, 0.03
    typical = s**2 + a * g0**2
    gaps = np.array([0.05, 0.07, 0.09, 0.3])  # the last: beyond 0.15, left out
    law = s**2 + a * gaps[:3] ** 2
    err2 = np.append(typical * (law.mean() / typical) ** 1.7 * np.ones(3), 9.0)
    assert trust_power(gaps, err2, s, a, g0) == pytest.approx(1.7, rel=1e-9)
    assert trust_power(gaps, np.append(law, 9.0), s, a, g0) == pytest.approx(1.0, rel=1e-9)  # the law holds: power 1


def test_landmark_trust_keeps_a_view_whose_detectors_agree_in_a_set_whose_side_views_disagree():
    """Front + ±50°: the side views' large gaps (pose) set the person's trust, but the frontal view,
    whose detectors agree as on a typical photo, keeps full trust; a view slightly above the typical
    gap keeps its own trust to the 8th power; a set without such a view (the renders') is unchanged."""
    from backend.fit.landmark_noise import TRUST_AGREED, TRUST_SLOPE, TRUST_TYPICAL_GAP, landmark_trust

    def var(g: float) -> float:
        return TRUST_AGREED**2 + TRUST_SLOPE * g**2

    typical = var(TRUST_TYPICAL_GAP)
    lm = _face_points().expand(3, -1, -1).clone()
    on, off = LandmarkNoiseSettings(trust=True), LandmarkNoiseSettings(trust=True, trust_view_power=None)
    gaps = torch.tensor([0.5, 0.03, 0.07])  # the grace_hopper frames' (draft): −50°, 0°, +50°
    person = typical / ((var(0.5) + var(0.03) + var(0.07)) / 3)
    assert person == pytest.approx(0.02382, abs=1e-5)
    trust = landmark_trust(on, lm, None, gaps=gaps)
    assert trust.tolist() == pytest.approx([person, 1.0, person], rel=1e-6)  # +50°: 0.345⁸ = 2e-4 < person
    assert landmark_trust(off, lm, None, gaps=gaps).tolist() == pytest.approx([person] * 3, rel=1e-6)
    near = landmark_trust(on, lm, None, gaps=torch.tensor([0.5, 0.035, 0.07]))  # just above the typical gap
    assert float(near[1]) == pytest.approx((typical / var(0.035)) ** 8, rel=1e-5) and 0.4 < float(near[1]) < 0.5
    renders = torch.tensor([0.28, 0.05, 0.294])  # a render head's: no view near the typical gap
    assert torch.equal(landmark_trust(on, lm, None, gaps=renders), landmark_trust(off, lm, None, gaps=renders))
    for g in (0.03, 0.05, 0.2):  # one photo: its own trust, exactly as before
        one = torch.tensor([g])
        a, b = landmark_trust(on, lm[:1], None, gaps=one), landmark_trust(off, lm[:1], None, gaps=one)
        assert (a is None and b is None) or torch.equal(a, b)
    groups = torch.tensor([0, 0, 1])  # two people: the second's view is its own, the first keeps its frontal view
    both = landmark_trust(on, lm, None, gaps=torch.tensor([0.5, 0.03, 0.2]), groups=groups)
    assert both.tolist() == pytest.approx([typical / ((var(0.5) + var(0.03)) / 2), 1.0, typical / var(0.2)], rel=1e-6)


def test_judged_trust_keeps_the_views_own_trust_only_for_real_photo_like_sets():
    """Two people with the grace frames' gaps: the first's photos the model explains (photometric
    scale 0.03 < 1): its views get the person's trust times the scale, as without the rule; the
    second's (scale 1): the views' own, its frontal view at full trust; without a photometric scale
    every view gets its own."""
    from backend.fit.landmark_noise import judged_trust, landmark_trust

    lm = _face_points().expand(6, -1, -1).clone()
    gaps = torch.tensor([0.5, 0.03, 0.07, 0.5, 0.03, 0.07])
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    views = landmark_trust(LandmarkNoiseSettings(trust=True), lm, None, gaps=gaps, groups=groups)
    person = landmark_trust(LandmarkNoiseSettings(trust=True, trust_view_power=None), lm, None, gaps=gaps, groups=groups)
    assert views[1] == 1.0 and views[4] == 1.0 and float(person[1]) == pytest.approx(0.02382, abs=1e-5)
    scale = torch.tensor([0.03, 0.03, 0.03, 1.0, 1.0, 1.0])
    judged = judged_trust(person, views, scale)
    assert torch.equal(judged[:3], person[:3] * scale[:3])  # bit for bit the fit without the rule
    assert torch.equal(judged[3:], views[3:])
    assert judged_trust(person, views, None) is views
    assert torch.equal(judged_trust(None, None, scale), scale)  # no landmark trust: the scale alone
    assert torch.equal(judged_trust(person, person, scale), person * scale)


def test_warm_up_residuals_weigh_each_view_by_its_trust_as_the_adam_warm_up(face_model):
    """Σ r² of the Gauss–Newton warm-up with per-view trust t is the Adam warm-up's loss, the
    landmark term of the points moved toward the targets by √t (``toward``) plus the prior; with
    equal trusts it is the scalar-weighted warm-up's."""
    from backend.camera import Camera, project
    from backend.fit.contour import contour_candidates, select_contour
    from backend.fit.landmark_noise import toward
    from backend.fit.landmark_solve import LandmarkLayout, landmark_residuals
    from backend.losses import CoarseLossWeights, landmark_loss, param_regularizer

    gen = torch.Generator().manual_seed(4)
    V, w, ps = 3, CoarseLossWeights(), 0.03
    ident = torch.randn(1, face_model.n_id, generator=gen) * 0.5
    exp = torch.rand(1, face_model.n_exp, generator=gen) * 0.2
    rot = torch.tensor([[0.05, -0.8, 0.0], [0.0, 0.05, 0.02], [0.03, 0.8, 0.0]])
    log_f, trans, f0 = torch.full((V, 1), 0.02), torch.tensor([[3.0, -1.0]]).expand(V, -1), torch.full((V, 1), 0.9)
    rows = contour_candidates(face_model.mean, face_model.landmarks68, face_model.face_vertex_mask)
    target = torch.rand(V, 68, 2, generator=gen) * 40 + 92
    trust = torch.tensor([0.024, 1.0, 0.024])
    layout = LandmarkLayout(V, 1, 1, face_model.n_id, face_model.n_exp)
    x = layout.join(rot, log_f, trans, ident, exp)
    at = landmark_residuals(layout, face_model, f0, 224, face_model.landmarks68, rows, target, torch.ones(68), None, w,
                            ps, None, view_trust=trust)
    pose = torch.cat([f0 * log_f.exp(), rot, trans, torch.zeros(V, 1)], -1)
    screen = project(face_model(ident, exp).expand(V, -1, -1), pose, Camera(224, 224))[..., :2]
    vid = face_model.landmarks68[None].repeat(V, 1)
    vid[:, :17] = select_contour(screen, rows)
    lms = torch.gather(screen, 1, vid[..., None].expand(-1, -1, 2))
    prior = w.reg * ps * param_regularizer(ident, exp.expand(V, -1), None, w)
    loss = w.landmark * landmark_loss(toward(lms, target, trust), target) + prior
    assert float(at(x)(x).pow(2).sum()) == pytest.approx(float(loss), rel=1e-5)
    scalar = landmark_residuals(layout, face_model, f0, 224, face_model.landmarks68, rows, target, torch.ones(68), None,
                                replace(w, landmark=w.landmark * 0.024), ps, None)
    equal = landmark_residuals(layout, face_model, f0, 224, face_model.landmarks68, rows, target, torch.ones(68), None, w,
                               ps, None, view_trust=torch.full((V,), 0.024))
    assert float(scalar(x)(x).pow(2).sum()) == pytest.approx(float(equal(x)(x).pow(2).sum()), rel=1e-6)
    assert float(at(x)(x).pow(2).sum()) > 3 * float(equal(x)(x).pow(2).sum())  # the frontal view's full trust counts


def test_a_set_keeps_its_views_own_trust_only_when_the_photometric_stage_finds_it_real_photo_like(face_model):
    """Three views with the grace frames' gaps: where the photometric check scales the landmarks
    (a render-like set) the fit is the one without the per-view rule, bit for bit; where it does
    not (the check off, as for a real photo's residual), the frontal view is refitted at full trust."""
    from evaluation.synthetic import SyntheticSettings, make_faces

    from backend.fit.photo_trust import PhotoTrustSettings

    face = make_faces(face_model, 1, seed=3, settings=SyntheticSettings(size=96))[0]
    img = torch.from_numpy(face.image).float()[None].expand(3, -1, -1, -1) / 255.0
    g = torch.Generator().manual_seed(1)
    noisy = torch.from_numpy(face.contour68).float()[None] + 3.0 * torch.randn(3, 68, 2, generator=g)
    skin, gaps = torch.ones(3, 96, 96), torch.tensor([0.5, 0.03, 0.07])
    cfg = CoarseFitConfig(photo_schedule=((48, 3),), identity=False, landmark_noise=LandmarkNoiseSettings(trust=True))
    person = replace(cfg, landmark_noise=LandmarkNoiseSettings(trust=True, trust_view_power=None))
    render_like = PhotoTrustSettings(ref=1e3)  # every residual below it: the landmarks scaled
    a = fit_coarse(face_model, img, noisy, skin, replace(cfg, photo_trust=render_like), gaps=gaps)
    b = fit_coarse(face_model, img, noisy, skin, replace(person, photo_trust=render_like), gaps=gaps)
    assert torch.equal(a.id, b.id) and torch.equal(a.verts, b.verts)
    assert not any("landmark_trust_views" in h for h in a.history)
    real = PhotoTrustSettings(ref=None)
    c = fit_coarse(face_model, img, noisy, skin, replace(cfg, photo_trust=real), gaps=gaps)
    d = fit_coarse(face_model, img, noisy, skin, replace(person, photo_trust=real), gaps=gaps)
    views = next(h["landmark_trust_views"] for h in c.history if "landmark_trust_views" in h)
    assert views[1] == 1.0 and views[0] == pytest.approx(0.02382, abs=1e-4) and views[2] == views[0]
    assert not any("landmark_trust_views" in h for h in d.history)
    resid = lambda r: float((r.landmarks[1] - noisy[1]).norm(dim=-1).mean())  # noqa: E731 the frontal view's
    assert resid(c) < resid(d) - 0.2  # followed more closely at full trust
