"""benchmarks.prior_cache: cached inputs scored as the suites score them (a fit that cannot move
the shape scores exactly the mean face's error; given landmarks have zero detector NME)."""
from __future__ import annotations

import numpy as np
import pytest

from backend.facemodel import load_default
from backend.fit.coarse import CoarseFitConfig
from backend.fit.parts_term import PartsFitConfig
from backend.prepare import prepare_view
from benchmarks.prior_cache import CachedItem, fit_cached, load_or_prepare
from evaluation.suites import mean_face_errors
from evaluation.synthetic import SCENES, make_faces

# identity and expression stay at 0 (zero learning rates; the Adam warm-up, since the solved one has no
# learning rate): the mean face
FROZEN = CoarseFitConfig(landmark_steps=2, photo_schedule=((56, 1),), identity=False, lr_id=0.0, lr_exp=0.0,
                         landmark_solver="adam", parts=PartsFitConfig(enabled=False))


@pytest.fixture(scope="module")
def face_and_view():
    model = load_default()
    face = make_faces(model, 1, seed=3, settings=SCENES["classic"])[0]
    return model, face, prepare_view(face.image, landmarks68=face.landmarks68)


def test_frozen_fit_scores_the_mean_face(face_and_view, tmp_path):
    model, face, view = face_and_view
    mask, narrow = model.face_vertex_mask.numpy(), model.region.numpy() == 0
    base = mean_face_errors(model, face, mask, narrow)
    data = {"kind": "synthetic", "mask": mask,
            "items": [CachedItem("0", view, face.vertices, face.neutral, base)]}
    path = tmp_path / "c.pt"
    assert load_or_prepare(path, lambda: data) is data and path.is_file()
    s = fit_cached(load_or_prepare(path, lambda: pytest.fail("cache not read")), FROZEN)["summary"]
    assert s["items"] == 1 and s["id_norm_mean"] == 0.0
    assert s["vertex_err_mean_mm"] == pytest.approx(base["mean_face_err_mean_mm"], rel=1e-4)
    assert s["fit_over_mean_face"] == pytest.approx(1.0, rel=1e-4)
    assert s["neutral_err_mean_mm"] == pytest.approx(base["mean_face_neutral_err_mean_mm"], rel=1e-4)


def test_photo_nme(face_and_view):
    _, face, view = face_and_view
    gt = face.landmarks68.astype(np.float64)
    res = fit_cached({"kind": "photos", "items": [CachedItem("p", view, gt=gt)]}, FROZEN)
    s = res["summary"]
    assert s["detector_nme_io_mean_%"] == pytest.approx(0.0, abs=1e-3)  # the given landmarks are the truth
    assert 0.0 < s["nme_io_mean_%"] < 20.0 and res["per_item"][0]["name"] == "p"
