"""Trust evidence and warnings from a fit's own numbers (backend.trust)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from backend.trust import TrustSettings, assess, view_evidence


def _layout() -> np.ndarray:
    pts = np.random.default_rng(0).uniform(0, 100, size=(68, 2))
    pts[36], pts[45] = [30.0, 40.0], [70.0, 40.0]  # outer eye corners 40 px apart
    return pts


def test_a_fit_that_matches_its_landmarks_is_trusted():
    det = _layout()
    ev = view_evidence("", det + 0.8, det, math.radians(20), mesh68=det - 1.0, presence=0.99)
    cos20 = math.cos(math.radians(20))  # the eye distance seen from the front: 40 px / cos 20°
    assert ev.landmark_residual == pytest.approx(0.8 * math.sqrt(2) / 40 * cos20)
    assert ev.mesh_disagreement == pytest.approx(1.8 * math.sqrt(2) / 40 * cos20)
    metrics, warn = assess([ev], np.full(100, 0.5), id_ball=1.7)
    assert warn == []
    assert metrics["trust_identity_norm"] == pytest.approx(0.5) and metrics["trust_yaw_deg"] == pytest.approx(20)
    assert metrics["trust_presence"] == 0.99


def test_each_kind_of_evidence_warns_once():
    det = _layout()
    pasted = det + [0.3 * 40, 0.0]  # the fit followed a layout 30 % of the eye distance off the mesh
    views = [
        view_evidence("left.jpg", det + [8.0, 0.0], det, math.radians(80)),  # 20 % of the eyes seen, yaw 80°: 10 %
        view_evidence("right.jpg", pasted, pasted, 0.0, mesh68=det, presence=0.5, detector_disagreement=0.12),
    ]
    metrics, warn = assess(views, np.full(100, 1.7), id_ball=1.7)
    text = "\n".join(warn)
    assert len(warn) == 6, warn
    assert "left.jpg: the fitted face misses its landmarks by 10 %" in text
    assert "left.jpg: the head is turned 80°" in text
    assert "right.jpg: the fitted face is 30 % of the eye distance away from Face Mesh" in text
    assert "right.jpg: Face Mesh is unsure" in text
    assert "right.jpg: dlib and Face Mesh place the landmarks 12 %" in text
    assert "identity is at the edge" in text
    assert metrics["trust_landmark_residual"] == pytest.approx(0.1)
    assert metrics["trust_mesh_disagreement"] == pytest.approx(0.3)
    assert "trust_presence" in metrics and metrics["trust_detector_disagreement"] == 0.12
    _, none = assess(views, np.full(100, 1.7), id_ball=1.7,
                     settings=TrustSettings(max_landmark_residual=1, max_mesh_disagreement=1, min_presence=0,
                                            max_yaw_deg=90, id_ball_fraction=2, detector_doubt=(1, 1)))
    assert none == []


def test_calibrated_thresholds_on_dev_evidence():
    """Evidence as faces_dev fits give it (docs/mediapipe.md, "Trust warnings"): a typical good fit
    is silent; dlib's points kept where Face Mesh disagrees by 10–15 % of the eye distance (where
    one of them is off), and a fit that follows a layout far from the mesh (a pasted frontal
    layout on a turned head) warn; a layout the mesh replaced (dlib 20 % off) is not doubted."""
    det = _layout()

    def warns(shift_mesh: float, gap: float | None, residual: float = 0.013, yaw: float = 10.0) -> list[str]:
        ev = view_evidence("", det + [residual * 40, 0.0], det, math.radians(yaw), mesh68=det + [shift_mesh * 40, 0.0],
                           presence=1.0, detector_disagreement=gap)
        return assess([ev], np.full(100, 1.1), id_ball=1.7)[1]

    assert warns(0.03, 0.03) == []  # the median dev photo
    assert warns(0.03, 0.21) == []  # dlib's layout replaced by the mesh's: the fit follows the mesh
    assert warns(0.11, 0.11)  # the doubtful band
    assert warns(0.30, 0.0, residual=0.0)  # followed a layout 30 % off the mesh
    assert warns(0.03, 0.03, residual=0.06)  # the fit cannot explain its landmarks


def test_a_turned_head_is_measured_in_the_eye_distance_seen_from_the_front():
    """At yaw 50° the photo's eye distance is cos 50° = 0.64 of the frontal one: a side view whose
    points are as close as a good frontal fit's, in face proportions, is not warned; and Face
    Mesh's fixed jaw contour is compared with the fit's fixed-vertex points, not its silhouette."""
    det = _layout()
    yaw = math.radians(50)
    off = 0.04 * 40 / math.cos(yaw)  # 4 % of the frontal eye distance (the photo's 40 px / cos 50°)
    ev = view_evidence("", det + [off, 0.0], det, yaw)
    assert ev.landmark_residual == pytest.approx(0.04)
    assert assess([ev], np.full(100, 1.1), id_ball=1.7)[1] == []
    assert view_evidence("", det + [0.04 * 40, 0.0], det, 0.0).landmark_residual == pytest.approx(0.04)
    assert view_evidence("", det + [off, 0.0], det, 0.0).landmark_residual == pytest.approx(0.04 / math.cos(yaw))
    assert view_evidence("", det + [8.0, 0.0], det, math.radians(85)).landmark_residual == pytest.approx(0.1)  # capped at 60°

    silhouette = det.copy()
    silhouette[:17] += [40.0, 0.0]  # the visible outline, far from the mesh's fixed contour
    ev = view_evidence("", silhouette, silhouette, yaw, mesh68=det, fitted68_3d=det + [off, 0.0])
    assert ev.mesh_disagreement == pytest.approx(0.04)
    assert assess([ev], np.full(100, 1.1), id_ball=1.7)[1] == []
    ev = view_evidence("", silhouette, silhouette, yaw, mesh68=det)  # without the fixed points: the silhouette
    assert ev.mesh_disagreement > 0.12 and assess([ev], np.full(100, 1.1), id_ball=1.7)[1]


def test_a_face_only_a_weak_detection_found_is_named_even_when_face_mesh_is_sure():
    det = _layout()
    ev = view_evidence("", det, det, 0.0, mesh68=det, presence=0.95, face_detector="blazeface-weak", face_score=0.16)
    _, warn = assess([ev], np.zeros(100), id_ball=1.7)
    assert warn == ["only a weak detection found this face (score 0.16): it may not be a face (check the overlay in "
                    "preview.png)"]
    for sure in ("blazeface-short", "hog", ""):  # the same score from a detector at its own threshold: no word
        ev = view_evidence("", det, det, 0.0, mesh68=det, presence=0.95, face_detector=sure, face_score=0.16)
        assert assess([ev], np.zeros(100), id_ball=1.7)[1] == []


def test_the_wood_grain_beside_a_coffee_cup_is_found_only_weakly():
    """skimage's coffee photo holds no face; `auto` finds one in the wood grain beside the cup only
    among BlazeFace's weak candidates (score 0.16), with Face Mesh's presence 0.95: the prepared
    view carries the detector and score that name it (backend.prepare)."""
    from skimage import data

    from backend.prepare import prepare_view

    view = prepare_view(data.coffee())
    assert view.face_detector == "blazeface-weak" and view.face_score < 0.5 and view.presence >= 0.8
