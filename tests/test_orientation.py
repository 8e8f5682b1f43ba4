"""Faces in turned photos (backend/detect/orientation.py): a quarter or half turn found, the
points mapped back into the photo's own pixels."""
from __future__ import annotations

import numpy as np
import pytest

from backend.detect import Face, detect_one
from backend.detect.orientation import detect_turned, roll_deg, turn_points, unturn_face, unturn_points


@pytest.mark.parametrize("k", [1, 2, 3])
def test_turned_points_land_on_the_same_pixels_as_np_rot90(k):
    rng = np.random.default_rng(k)
    img = rng.integers(0, 255, (7, 11, 3), np.uint8)  # H 7, W 11: not square
    pts = np.stack([rng.integers(0, 11, 20), rng.integers(0, 7, 20)], 1).astype(np.float64)
    turned = turn_points(pts, k, img.shape)
    rot = np.rot90(img, k)
    ti = turned.round().astype(int)
    assert np.array_equal(rot[ti[:, 1], ti[:, 0]], img[pts[:, 1].astype(int), pts[:, 0].astype(int)])
    np.testing.assert_allclose(unturn_points(turned, k, img.shape), pts, atol=1e-12)


def test_roll_reads_upright_sideways_and_upside_down_faces():
    lm = np.zeros((68, 2))
    lm[36:48] = [50.0, 40.0]  # eyes
    lm[48:68] = [50.0, 80.0]  # mouth below them (y down)
    assert roll_deg(lm) == pytest.approx(0.0)
    assert abs(roll_deg(turn_points(lm, 1, (100, 100)))) == pytest.approx(90.0)
    assert abs(roll_deg(turn_points(lm, 2, (100, 100)))) == pytest.approx(180.0)


def _face(detector: str, presence: float | None, roll_k: int = 0) -> Face:
    lm = np.zeros((68, 2))
    lm[:, 0] = np.linspace(20, 80, 68)
    lm[36:48, 1], lm[48:68, 1] = 40.0, 80.0
    lm = turn_points(lm, roll_k, (100, 100))
    return Face(box=np.r_[lm.min(0), lm.max(0)], landmarks=lm, score=1.0, backend="stub", detector=detector,
                presence=presence)


def test_a_face_found_by_the_upright_detector_costs_no_turn():
    calls = []
    probe = lambda img: calls.append(img.shape) or 1.0  # noqa: E731
    faces, k = detect_turned(np.zeros((100, 100, 3), np.uint8), lambda img: [], [_face("hog", 1.0)], probe)
    assert k == 0 and calls == []


@pytest.mark.parametrize("found, kept", [
    (_face("hog+mesh", 1.0), True),          # upright and sure in the turn: taken
    (_face("hog+mesh", 0.3), False),         # Face Mesh doubts it
    (_face("blazeface", 1.0, roll_k=1), False),  # on its side in the turn too
])
def test_a_turn_replaces_the_photos_face_only_when_it_is_upright_and_sure(found, kept):
    upright = [_face("blazeface-short", 0.99)]  # a sure face, but not dlib's upright detector's
    probe = lambda img: 0.9 if img.shape[0] == 30 else None  # noqa: E731  (only the 90° turns are 30 tall)
    faces, k = detect_turned(np.zeros((20, 30, 3), np.uint8), lambda img: [found], upright, probe)
    assert (k != 0) == kept
    assert faces[0] is upright[0] if not kept else faces[0].landmarks.shape == (68, 2)


def test_no_upright_face_in_any_turn_keeps_the_photos_answer():
    upright = [_face("blazeface-short", 0.95)]  # a profile MediaPipe found: HOG finds no turn
    faces, k = detect_turned(np.zeros((20, 30, 3), np.uint8), lambda img: pytest.fail("no detection expected"),
                             upright, lambda img: None)
    assert k == 0 and faces is upright


def test_unturned_face_box_holds_its_points():
    f = unturn_face(_face("hog", 1.0), 1, (100, 140, 3))
    assert (f.landmarks.min(0) >= f.box[:2] - 1e-9).all() and (f.landmarks.max(0) <= f.box[2:] + 1e-9).all()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_grace_hopper_turned_gives_the_upright_photos_points(grace_hopper, k):
    """Turned a quarter or half turn, the photo gives dlib's points of the upright photo, exactly,
    in the turned photo's pixels. Upside down, MediaPipe alone takes a pattern on her uniform for
    an upright face (presence 0.99, 130 px off): the HOG probe finds the real one."""
    ref = detect_one(grace_hopper)
    img = np.ascontiguousarray(np.rot90(grace_hopper, k))
    got = detect_one(img)
    np.testing.assert_allclose(got.landmarks, turn_points(ref.landmarks, k, grace_hopper.shape), atol=1e-9)
    assert got.detector == ref.detector and "upright with the photo turned" in got.note


def test_a_photo_on_its_side_reconstructs_in_its_own_frame(grace_hopper, face_model):
    """grace_hopper a quarter turn clockwise (a phone photo whose orientation tag was lost): the
    head is fitted, its landmarks lie on the turned photo's face (within 4.5 % of the eye distance
    of the detection, as the upright photo's in test_reconstruct) and the warning says so."""
    from backend.reconstruct import ReconstructConfig, reconstruct

    head = reconstruct([np.ascontiguousarray(np.rot90(grace_hopper, 3))], ReconstructConfig(quality="draft", identity=False,
                                                                                             detail=False))
    view = head.views[0]
    expected = turn_points(detect_one(grace_hopper).landmarks, 3, grace_hopper.shape)
    np.testing.assert_allclose(view.detected68, expected, atol=1e-6)
    iod = np.linalg.norm(expected[36] - expected[45])
    assert np.linalg.norm(view.landmarks68 - expected, axis=1).mean() / iod <= 0.045
    assert any("upright with the photo turned 90° counter-clockwise" in w for w in head.warnings)
