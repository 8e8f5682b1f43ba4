"""The lens estimate's search and its solved warm-up handed to the real fit (backend.focal_search,
backend.fit.warmup_reuse): one solve per candidate tried, none again in the fit, the same result."""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch

import backend.fit.coarse as coarse
from backend.camera import Camera, project
from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.fit.contour import contour_candidates, select_contour
from backend.focal_search import CANDIDATES_35MM, estimate_focal_warmups, lowest_downhill, warmup_fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _asked(costs: list[float], start: int) -> tuple[int, list[int]]:
    asked: list[int] = []

    def cost(i: int) -> float:
        asked.append(i)
        return costs[i]

    return lowest_downhill(cost, len(costs), start), asked


def test_downhill_search_is_argmin_on_costs_that_fall_then_rise():
    for n, start in ((6, 3), (6, 0), (6, 5), (2, 1), (1, 0)):
        for low in range(n):  # every position of the minimum, every start
            costs = [abs(i - low) + 0.1 * (i > low) for i in range(n)]
            pick, asked = _asked(costs, start)
            assert pick == low == int(np.argmin(costs)), (costs, start, pick)
            assert len(asked) == len(set(asked)) <= n
    # from 50 mm (index 3 of 6) a pick at 85 or 50 mm asks 4 or 3 candidates, not 6
    assert _asked([5.0, 4.0, 1.0, 2.0, 3.0, 6.0], 3) == (2, [3, 4, 2, 1])
    assert _asked([5.0, 4.0, 3.0, 1.0, 2.0, 6.0], 3) == (3, [3, 4, 2])
    # ties: argmin's first lowest
    assert _asked([3.0, 1.0, 1.0, 1.0, 2.0, 4.0], 3)[0] == 1
    # costs with two dips: the walk keeps the one it reached (argmin would say 0)
    assert _asked([0.5, 2.0, 1.5, 1.0, 1.2, 3.0], 3)[0] == 3


def test_downhill_search_on_random_unimodal_costs():
    gen = np.random.default_rng(0)
    for _ in range(200):
        n = int(gen.integers(1, 8))
        low = int(gen.integers(0, n))
        left, right = np.sort(gen.random(low))[::-1] + 1, np.sort(gen.random(n - low - 1)) + 1
        costs = [*left, 0.5, *right]
        for start in range(n):
            assert _asked(costs, start)[0] == low


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
    """estimate_focal_warmups solves once per candidate it tries; the fit given the winner's warm-up
    solves nothing more and equals the fit that solves it; another candidate's warm-up is ignored."""
    solves = []
    real = coarse._solve_warmup
    monkeypatch.setattr(coarse, "_solve_warmup", lambda *a, **k: solves.append(1) or real(*a, **k))
    view = _view_through(face_model, 35.0)
    cfg = CoarseFitConfig(photo_schedule=((64, 3),), identity=False)
    (picked,), (warm,) = estimate_focal_warmups(face_model, [view], cfg, torch.device("cpu"))
    tried = len(solves)
    assert picked.focal_source == "estimated" and picked.focal_35mm in (24.0, 35.0, 50.0), picked.focal_35mm
    assert 2 <= tried < len(CANDIDATES_35MM) and warm is not None

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


def test_estimate_picks_among_the_candidates_as_exhaustive_search(face_model):
    """The downhill pick is the lowest of all six warm-up costs on this face (they fall then rise)."""
    from backend.focal_search import warmup_cost

    view = _view_through(face_model, 35.0)
    cfg = CoarseFitConfig(identity=False)
    warm = replace(cfg, photo_schedule=(), parts=replace(cfg.parts, enabled=False))
    costs = [warmup_cost(face_model, replace(view, focal_35mm=f), warm, torch.device("cpu")) for f in CANDIDATES_35MM]
    low = int(np.argmin(costs))
    assert all(a > b for a, b in itertools.pairwise(costs[:low + 1])) and all(a < b for a, b in itertools.pairwise(costs[low:]))
    (picked,), _ = estimate_focal_warmups(face_model, [view], cfg, torch.device("cpu"))
    assert picked.focal_35mm == CANDIDATES_35MM[low]
