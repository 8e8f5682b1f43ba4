"""The second look for a lost face in a multi-view set (backend/multiview_detect.py)."""
from __future__ import annotations

import numpy as np
import pytest

from backend.multiview_detect import box_candidates, medoid, normalised_contrast


def test_contrast_stretch_maps_percentiles_to_the_full_range():
    rng = np.random.default_rng(0)
    dark = np.repeat(rng.integers(20, 60, (64, 64, 1)), 3, 2).astype(np.uint8)  # grey: no channel clips alone
    out = normalised_contrast(dark)
    assert out.dtype == np.uint8 and out.shape == dark.shape
    lum = out.astype(float).mean(2)
    assert np.percentile(lum, 1) == pytest.approx(0.0, abs=1.0)
    assert np.percentile(lum, 99) == pytest.approx(255.0, abs=1.0)
    flat = np.full((8, 8, 3), 90, np.uint8)
    assert np.array_equal(normalised_contrast(flat), flat)  # nothing to stretch


def test_box_candidates_scale_to_the_photo_and_mirror():
    boxes = np.array([[10.0, 20.0, 110.0, 140.0]])
    out = box_candidates(boxes, np.array([[200, 200]]), (400, 300))  # photo 2× wider, 1.5× taller
    np.testing.assert_allclose(out[0], [20.0, 30.0, 220.0, 210.0])
    np.testing.assert_allclose(out[1], [399 - 220.0, 30.0, 399 - 20.0, 210.0])  # mirrored about x = (W−1)/2


def test_medoid_is_the_candidate_the_others_agree_with():
    base = np.random.default_rng(1).uniform(0, 100, (68, 2))
    sets = [base + 1.0, base + 30.0, base - 1.0, base + 0.5]
    assert medoid(sets) in (0, 2, 3)
    assert medoid([base + 30.0, base]) == 0  # too few to vote: the first (the detector's own)


def test_a_nearly_black_photo_is_found_in_the_other_photos_face_box(grace_hopper):
    """grace_hopper at 2 % brightness with a side ramp (pixel values ≤ 5): no detector finds the
    face; Face Mesh in the bright photo's face box does, within 5 % of the eye distance of the
    bright photo's own points (measured 4.3 %)."""
    from backend.detect import detect_one
    from backend.detect.combined import mediapipe_available
    from backend.errors import NoFaceError
    from backend.multiview_detect import retry_face

    if not mediapipe_available():
        pytest.skip("MediaPipe's weights are missing (photohead models fetch mediapipe)")
    ref = detect_one(grace_hopper, backend="auto")
    H, W = grace_hopper.shape[:2]
    dark = (grace_hopper * (0.02 * np.linspace(1.0, 0.3, W))[None, :, None]).round().astype(np.uint8)
    with pytest.raises(NoFaceError):
        detect_one(dark, backend="auto")
    face, how = retry_face(dark, ref.box[None], np.array([[W, H]]), "auto")
    assert how == "Face Mesh in another photo's face box" and face.dense is not None
    eye = np.linalg.norm(ref.landmarks[36] - ref.landmarks[45])
    assert np.linalg.norm(face.landmarks - ref.landmarks, axis=1).mean() / eye < 0.05
    assert retry_face(np.full_like(dark, 128), ref.box[None], np.array([[W, H]]), "auto") is None  # no face: none


@pytest.fixture(scope="module")
def dark_side_set():
    """Seed 0, head 5 of bench_multiview_detected: its −50° photo is dark and lit from the side,
    and ``auto`` finds no face in it; (images, true 68 points)."""
    from backend.facemodel import load_default
    from evaluation.multiview_heads import make_head_views

    model = load_default()
    rng = np.random.default_rng(0)
    for _ in range(6):
        hv = make_head_views(model, rng, (-50.0, 0.0, 50.0))
    return hv.images, hv.contour68


@pytest.mark.slow
def test_a_dark_side_view_is_found_on_a_second_look(dark_side_set, tmp_path):
    from backend.detect import detect_one
    from backend.detect.combined import mediapipe_available
    from backend.errors import NoFaceError
    from backend.reconstruct import ReconstructConfig, _prepare_views

    if not mediapipe_available():
        pytest.skip("MediaPipe's weights are missing (photohead models fetch mediapipe)")
    images, truth = dark_side_set
    with pytest.raises(NoFaceError):
        detect_one(images[0], backend="auto")  # the first look fails
    from PIL import Image

    path = tmp_path / "left.png"  # the lost photo from a file: its name (and lens) follow it
    Image.fromarray(images[0]).save(path)
    warn: list[str] = []
    views = _prepare_views([path, *images[1:]], ReconstructConfig(quality="draft", device="cpu"), None, None, None,
                           warn)
    assert [v.name for v in views] == [str(path), "image #1", "image #2"]  # photo order kept
    assert len(warn) == 1 and "'left.png'" in warn[0] and "second look" in warn[0]
    assert views[0].focal_source == "none"
    wh = truth[0].max(0) - truth[0].min(0)
    nme = np.linalg.norm(views[0].detected68 - truth[0], axis=1).mean() / np.sqrt(wh.prod())
    assert nme < 0.10  # not lost (bench_multiview_detected's threshold); measured 8.7 %
    assert views[0].dense is not None  # Face Mesh's points come with it


@pytest.mark.slow
def test_a_photo_without_a_face_is_still_skipped_and_named(dark_side_set):
    from backend.detect.combined import mediapipe_available
    from backend.reconstruct import ReconstructConfig, _prepare_views

    if not mediapipe_available():
        pytest.skip("MediaPipe's weights are missing (photohead models fetch mediapipe)")
    images, _ = dark_side_set
    blank = np.full_like(images[1], 128)
    warn: list[str] = []
    views = _prepare_views([images[1], blank], ReconstructConfig(quality="draft", device="cpu"), None, None, None, warn)
    assert [v.name for v in views] == ["image #0"]
    assert len(warn) == 1 and warn[0].startswith("skipped: no face found in image #1")
