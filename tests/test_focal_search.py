"""The lens estimate's solved warm-up handed to the real fit (backend.focal_search,
backend.fit.warmup_reuse): one solve per candidate, none again in the fit, the same result."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import backend.fit.coarse as coarse
from backend.camera import Camera, project
from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.fit.contour import contour_candidates, select_contour
from backend.fit.photo_trust import PhotoTrustSettings
from backend.focal_search import CANDIDATES_35MM, estimate_focal_warmups, warmup_cost, warmup_fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _view_through(face_model, focal_35mm: float):
    """A prepared grey photo whose landmarks are a random face's seen through a ``focal_35mm`` lens,
    with a second detector's noisier points and their gap (so the landmark trust is active)."""
    from backend.prepare import prepare_view
    from evaluation.synthetic_scene import perspective_pose

    gen = torch.Generator().manual_seed(5)
    verts = face_model(torch.randn(1, face_model.n_id, generator=gen), torch.zeros(1, face_model.n_exp))
    size = 448
    pose = perspective_pose(verts[0, face_model.landmarks68], [0.1, 0.25, 0.0], size, 0.45, focal_35mm, np.zeros(2))
    screen = project(verts, pose, Camera(size, size, "perspective"))[..., :2]
    vid = face_model.landmarks68[None].clone()
    rows = contour_candidates(face_model.mean, face_model.landmarks68, face_model.face_vertex_mask)
    vid[:, :17] = select_contour(screen, rows)
    lms = screen[0, vid[0]].double().numpy()
    view = prepare_view(np.full((size, size, 3), 128, np.uint8), landmarks68=lms)
    noise = np.random.default_rng(1).normal(0.0, 3.0, lms.shape)
    return replace(view, mesh68=lms + noise, detector_disagreement=0.06)


def test_the_fit_reuses_the_estimates_warm_up(face_model, monkeypatch):
    """estimate_focal_warmups solves once per candidate and picks the lowest warm-up cost; the fit
    given the winner's warm-up solves nothing more and equals the fit that solves it; another
    candidate's warm-up is ignored."""
    solves = []
    real = coarse._solve_warmup
    monkeypatch.setattr(coarse, "_solve_warmup", lambda *a, **k: solves.append(1) or real(*a, **k))
    view = _view_through(face_model, 35.0)
    cfg = CoarseFitConfig(photo_schedule=((64, 3),), identity=False,
                          photo_trust=PhotoTrustSettings(ref=None))  # a grey image: its own re-solve (.photo_trust)
    (picked,), (warm,) = estimate_focal_warmups(face_model, [view], cfg, torch.device("cpu"))
    tried = len(solves)
    assert picked.focal_source == "estimated" and picked.focal_35mm in (24.0, 35.0, 50.0), picked.focal_35mm
    assert tried == len(CANDIDATES_35MM) and warm is not None
    warm_cfg = replace(cfg, photo_schedule=(), parts=replace(cfg.parts, enabled=False))
    costs = [warmup_cost(face_model, replace(view, focal_35mm=f), warm_cfg, torch.device("cpu")) for f in CANDIDATES_35MM]
    assert picked.focal_35mm == CANDIDATES_35MM[int(np.argmin(costs))]
    tried = len(solves)

    t = lambda a: torch.from_numpy(np.asarray(a))[None].float()  # noqa: E731
    from backend.prepare import dense_targets, detector_gaps, mesh68_targets, views_camera
    args = (face_model, t(picked.crop), t(picked.crop_landmarks), t(picked.skin_mask), cfg)
    kwargs = dict(camera=views_camera([picked]), dense=dense_targets([picked], torch.device("cpu")),
                  mesh68=mesh68_targets([picked], torch.device("cpu")), gaps=detector_gaps([picked], torch.device("cpu")))
    assert kwargs["gaps"] is not None and kwargs["mesh68"] is not None
    reused = fit_coarse(*args, **kwargs, warmup=warm)
    assert len(solves) == tried  # no solve in the fit
    fresh = fit_coarse(*args, **kwargs)
    assert len(solves) == tried + 1
    for name in ("id", "exp", "pose", "sh", "albedo", "verts", "landmarks"):
        assert torch.equal(getattr(reused, name), getattr(fresh, name)), name
    assert reused.history == fresh.history
    assert reused.warmup.key == fresh.warmup.key == warm.key

    # a warm-up of another lens (or of other landmarks) solved another problem: solved again
    other = warmup_fit(face_model, replace(view, focal_35mm=135.0 if picked.focal_35mm != 135.0 else 24.0),
                       replace(cfg, photo_schedule=()), torch.device("cpu")).warmup
    n = len(solves)
    again = fit_coarse(*args, **kwargs, warmup=other)
    assert len(solves) == n + 1 and other.key != warm.key
    assert torch.equal(again.verts, fresh.verts)
