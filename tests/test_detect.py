"""backend.detect: dlib detection + 68 landmarks on real photos and on every bad input."""
from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import backend.detect
from backend.detect import DetectSettings, Face
from backend.errors import FaceTooSmallError, NoFaceError, PhotoheadError, WeightsNotFoundError

pytest.importorskip("dlib")
# These tests are dlib's (the default detector, auto, checks dlib's points with Face Mesh: test_mediapipe.py).
detect = functools.partial(backend.detect.detect, backend="dlib")
detect_one = functools.partial(backend.detect.detect_one, backend="dlib")


def _iod(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[36] - lm[45]))


def _inside(pts: np.ndarray, box: np.ndarray, margin: float) -> bool:
    x0, y0, x1, y1 = box
    m = margin * (x1 - x0)
    return bool(((pts[:, 0] >= x0 - m) & (pts[:, 0] <= x1 + m) & (pts[:, 1] >= y0 - m) & (pts[:, 1] <= y1 + m)).all())


def check_plausible(face: Face) -> None:
    """Landmark sanity: inner points (brows..mouth) inside the box grown by 10 %, the jaw
    within 35 % (HOG boxes are tight, brows to chin); eye/brow/mouth order correct."""
    lm = face.landmarks
    assert lm.shape == (68, 2) and lm.dtype == np.float64 and np.isfinite(lm).all()
    assert _inside(lm[17:], face.box, 0.1) and _inside(lm, face.box, 0.35)
    # the subject's right eye (36–41) is at image left of the left eye (42–47)
    assert lm[36:42, 0].mean() < lm[42:48, 0].mean()
    # brows above eyes above nose tip above mouth above chin (image y grows downwards)
    brows, eyes, nose, mouth, chin = lm[17:27, 1].mean(), lm[36:48, 1].mean(), lm[33, 1], lm[48:68, 1].mean(), lm[8, 1]
    assert brows < eyes < nose < mouth < chin


def test_astronaut_real_face_first(astronaut):
    faces = detect(astronaut)
    assert len(faces) >= 1
    f = faces[0]
    assert f.backend == "dlib" and f.detector == "hog" and f.index == 0 and f.count == len(faces)
    # Eileen Collins' face is around x 180–265, y 80–170; the flag/patch is far below
    cx, cy = f.landmarks.mean(0)
    assert 180 < cx < 265 and 80 < cy < 190
    check_plausible(f)
    assert 45 < _iod(f.landmarks) < 90
    # scores are sorted, most confident first
    assert all(a.score >= b.score for a, b in zip(faces, faces[1:]))


def test_astronaut_flag_false_positive_ranked_last(astronaut):
    """With a permissive threshold HOG also fires on the textured patch: it must rank below the face."""
    faces = detect(astronaut, settings=DetectSettings(hog_threshold=-0.5, max_upsample=0))
    assert len(faces) == 2
    assert faces[0].landmarks[:, 1].mean() < 200 and faces[1].box[1] > 300
    assert faces[0].score > faces[1].score + 1.0


def test_grace_hopper(grace_hopper):
    f = detect_one(grace_hopper)
    check_plausible(f)
    assert f.summary() == "1 face found, using #0"
    cx, cy = f.landmarks.mean(0)
    assert 200 < cx < 340 and 200 < cy < 340
    assert 80 < _iod(f.landmarks) < 160


def test_grayscale_input(grace_hopper):
    gray = np.asarray(Image.fromarray(grace_hopper).convert("L"))
    f = detect_one(gray)
    check_plausible(f)
    ref = detect_one(grace_hopper)
    assert np.abs(f.landmarks - ref.landmarks).mean() < 0.05 * _iod(ref.landmarks)


def test_rgba_input(grace_hopper):
    rgba = np.concatenate([grace_hopper, np.full(grace_hopper.shape[:2] + (1,), 255, np.uint8)], 2)
    f = detect_one(rgba)
    np.testing.assert_allclose(f.landmarks, detect_one(grace_hopper).landmarks)


def test_huge_image_landmarks_at_full_resolution(grace_hopper):
    """A 4000×3000 photo: detection on a downscaled copy, landmarks on the full image."""
    k = 5
    up = np.asarray(Image.fromarray(grace_hopper).resize((512 * k, 600 * k), Image.Resampling.BICUBIC))
    big = np.full((3000, 4000, 3), 90, np.uint8)
    big[:, 700:700 + up.shape[1]] = up
    f = detect_one(big)
    check_plausible(f)
    ref = detect_one(grace_hopper).landmarks
    expect = (ref + 0.5) * k - 0.5 + [700, 0]
    assert np.abs(f.landmarks - expect).mean() < 0.05 * _iod(expect)
    # sub-downscale precision: landmarks are not quantised to the 4× coarser detection grid
    assert len(np.unique(f.landmarks[:, 0] % 4)) > 1


def _tiny(grace_hopper: np.ndarray, factor: int) -> np.ndarray:
    small = np.asarray(Image.fromarray(grace_hopper).resize((512 // factor, 600 // factor), Image.Resampling.LANCZOS))
    canvas = np.full((400, 400, 3), 128, np.uint8)
    canvas[100:100 + small.shape[0], 100:100 + small.shape[1]] = small
    return canvas


def test_tiny_face(grace_hopper):
    img = _tiny(grace_hopper, 5)  # face ~40 px: found by the upsampled HOG pass
    faces = detect(img)
    assert len(faces) == 1 and faces[0].size < 64
    with pytest.raises(FaceTooSmallError, match=r"face too small: \d+ px, need ≥ 64 px"):
        detect_one(img)
    # a caller may accept it explicitly
    assert detect_one(img, min_size=20).size == faces[0].size


def test_no_face_blank():
    with pytest.raises(NoFaceError, match="no face found in blank.png"):
        detect_one(np.full((200, 240, 3), 200, np.uint8), name="blank.png")


def test_no_face_noise():
    """Noise: HOG finds nothing, the mmod fallback runs and finds nothing either."""
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert detect(noise) == []
    with pytest.raises(NoFaceError, match="no face found"):
        detect_one(noise)


def test_two_faces(astronaut, grace_hopper):
    gh = np.asarray(Image.fromarray(grace_hopper).resize((437, 512)))
    both = np.concatenate([astronaut, gh], axis=1)
    faces = detect(both)
    real = [f for f in faces if f.score > 0.5]
    assert len(real) == 2 and faces[0].count == len(faces)
    assert {f.index for f in faces} == set(range(len(faces)))
    xs = sorted(f.landmarks[:, 0].mean() for f in real)
    assert xs[0] < 512 < xs[1]
    for f in real:
        check_plausible(f)
    # detect_one: the weak false detection dropped (MIN_SCORE), the largest face first, all reported
    f0, f1 = detect_one(both), detect_one(both, face=1)
    assert f0.size > f1.size and f0.landmarks[:, 0].mean() > 512 and (f0.count, f1.index) == (2, 1)
    assert f0.note.startswith("2 faces (largest first): #0 box (") and f0.note.endswith("using #0 (the largest; --face N picks another)")
    assert f1.summary() == "2 faces found, using #1" and f1.note.count(" score ") == 2
    with pytest.raises(NoFaceError, match=r"face #9 requested but only 2 face\(s\) found"):
        detect_one(both, face=9)


def test_mmod_fallback_box_mapping():
    from backend.detect.dlib_backend import MMOD_TO_HOG, mmod_to_hog_boxes

    b = mmod_to_hog_boxes(np.array([[100.0, 200.0, 199.0, 299.0]]))[0]
    w = 99.0
    np.testing.assert_allclose(0.5 * (b[0] + b[2]), 149.5 + MMOD_TO_HOG["dx"] * w)
    np.testing.assert_allclose(0.5 * (b[1] + b[3]), 249.5 + MMOD_TO_HOG["dy"] * w)
    np.testing.assert_allclose(b[2] - b[0], MMOD_TO_HOG["scale"] * w)


def test_mmod_fallback_finds_face(grace_hopper):
    """Force the fallback (HOG threshold unreachable): mmod box → HOG-like box → plausible landmarks."""
    faces = detect(grace_hopper, settings=DetectSettings(hog_threshold=10.0, max_upsample=0))
    assert len(faces) == 1 and faces[0].detector == "mmod"
    check_plausible(faces[0])
    ref = detect_one(grace_hopper).landmarks
    assert np.abs(faces[0].landmarks - ref).mean() < 0.08 * _iod(ref)


def test_face_alignment_without_weights(tmp_path, monkeypatch, grace_hopper):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    wdir = tmp_path / "my_weights"
    wdir.mkdir()
    with pytest.raises(WeightsNotFoundError, match="face_alignment weights not found") as ei:
        detect(grace_hopper, backend="face_alignment", settings=DetectSettings(weights_dir=str(wdir)))
    msg = str(ei.value)
    assert "2DFAN4" in msg and "s3fd" in msg and str(wdir) in msg and "never downloads" in msg
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints") in msg


def test_face_alignment_flip_average_is_its_flip_input(tmp_path, monkeypatch, grace_hopper):
    """With weights on disk, face-alignment is built with flip_input = DetectSettings.flip_average
    (its own mirrored-crop test) and its answer becomes a Face. A stand-in module plays the library."""
    import sys
    import types

    from backend.detect import fa_backend

    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "2DFAN4-cd938726ad.zip").write_bytes(b"")
    (checkpoints / "s3fd-619a316812.pth").write_bytes(b"")
    built = []

    class FakeFA:
        def __init__(self, kind, **kwargs):
            built.append(kwargs)

        def get_landmarks_from_image(self, image, return_bboxes, return_landmark_score):
            lm = np.stack([np.linspace(100, 300, 68), np.linspace(120, 320, 68)], 1)
            return [lm], [np.ones(68)], [np.array([90.0, 110.0, 310.0, 330.0, 0.99])]

    fake = types.SimpleNamespace(FaceAlignment=FakeFA, LandmarksType=types.SimpleNamespace(TWO_D="2D"))
    monkeypatch.setitem(sys.modules, "face_alignment", fake)
    fa_backend._model.cache_clear()
    try:
        for flip in (True, False):
            faces = fa_backend.detect_face_alignment(grace_hopper, DetectSettings(weights_dir=str(tmp_path / "hub"), flip_average=flip))
            assert built[-1]["flip_input"] is flip and built[-1]["face_detector"] == "sfd"
            assert len(faces) == 1 and faces[0].backend == "face_alignment" and abs(faces[0].score - 0.99) < 1e-9
            assert faces[0].landmarks.shape == (68, 2)
    finally:
        fa_backend._model.cache_clear()


def test_bad_arguments(grace_hopper):
    with pytest.raises(ValueError, match="unknown detector backend"):
        detect(grace_hopper, backend="opencv")
    with pytest.raises(PhotoheadError, match="--face must be 0 or more"):  # a user's error: one line, exit 2
        detect_one(grace_hopper, face=-1)
    with pytest.raises(ValueError, match="max_upsample"):
        DetectSettings(max_upsample=9)


def test_models_load_lazily():
    """Importing the detection package must not import dlib or load any model."""
    code = "import sys, backend.detect, backend.align, backend.image_io; print('dlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_path_input_and_name_in_errors(tmp_path, grace_hopper):
    p = tmp_path / "gh.png"
    Image.fromarray(grace_hopper).save(p)
    np.testing.assert_allclose(detect_one(p).landmarks, detect_one(grace_hopper).landmarks)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 160, 3), 255, np.uint8)).save(blank)
    with pytest.raises(NoFaceError) as ei:
        detect_one(blank)
    assert str(blank) in str(ei.value) and "160×120" in str(ei.value)


def test_subpixel_landmarks_on_small_face(grace_hopper):
    """Small faces get landmarks on a 1/k px grid (dlib alone rounds to whole pixels), and
    they agree with the full-size photo's landmarks scaled down."""
    img = _tiny(grace_hopper, 3)  # 170×200 photo at (100,100), eyes ~38 px apart
    sub = detect_one(img, min_size=20)
    whole = detect_one(img, min_size=20, settings=DetectSettings(subpixel_min_side=0, flip_average=False))
    assert (np.abs(sub.landmarks - np.round(sub.landmarks)) > 0.1).mean() > 0.3
    assert (whole.landmarks == np.round(whole.landmarks)).all()
    ref = (detect_one(grace_hopper).landmarks + 0.5) * [170 / 512, 200 / 600] - 0.5 + 100
    nme = np.linalg.norm(sub.landmarks - ref, axis=1).mean() / _iod(ref)
    assert nme < 0.04
    check_plausible(sub)


def test_face_is_frozen_and_serialisable(grace_hopper):
    f = detect_one(grace_hopper)
    with pytest.raises(ValueError):
        f.landmarks[0, 0] = 1.0
    g = Face.from_dict(f.to_dict())
    np.testing.assert_array_equal(g.landmarks, f.landmarks)
    assert (g.score, g.backend, g.detector, g.count) == (f.score, f.backend, f.detector, f.count)
    with pytest.raises(ValueError, match=r"\(68,2\)"):
        Face(box=np.zeros(4), landmarks=np.zeros((5, 2)), score=1.0, backend="dlib")


def test_flip_average_is_mirror_consistent(grace_hopper):
    """With ``flip_average`` the landmarks of the mirrored photo are exactly the mirrored
    landmarks of the photo (each answer averages the same two predictions), and they differ
    from a single prediction by about a pixel."""
    pytest.importorskip("dlib")
    from backend.align import MIRROR_68
    from backend.detect.dlib_backend import _landmarks

    img = np.ascontiguousarray(grace_hopper)
    last = img.shape[1] - 1.0
    box = np.array([[150.0, 140.0, 370.0, 360.0]])
    both = _landmarks(img, box, 256, flip_average=True)[0]
    mirrored = _landmarks(np.ascontiguousarray(img[:, ::-1]), np.array([[last - 370.0, 140.0, last - 150.0, 360.0]]), 256,
                          flip_average=True)[0]
    back = mirrored[list(MIRROR_68)]
    back[:, 0] = last - back[:, 0]
    np.testing.assert_allclose(both, back, atol=1e-9)
    single = _landmarks(img, box, 256)[0]
    shift = np.linalg.norm(both - single, axis=1).mean()
    assert 0.1 < shift < 3.0, shift


def test_hog_detector_is_cached_as_a_file(tmp_path, monkeypatch, grace_hopper):
    """dlib's HOG detector is written to the cache folder once and loaded from there later (1 ms
    instead of decoding dlib's built-in string, 0.56 s of CPU), with the same detections; an
    unreadable cache file is rebuilt."""
    import time

    import dlib

    from backend.detect import dlib_backend

    monkeypatch.setenv("PHOTOHEAD_CACHE", str(tmp_path))
    path = dlib_backend.hog_cache_path(dlib.__version__)
    assert path.parent.parent == tmp_path and not path.exists()
    dlib_backend._hog.cache_clear()
    try:
        built = dlib_backend._hog()
        assert path.is_file() and path.stat().st_size > 100_000
        dlib_backend._hog.cache_clear()
        t = time.process_time()
        loaded = dlib_backend._hog()
        assert time.process_time() - t < 0.1
        rects, scores, kinds = loaded.run(grace_hopper, 0, 0.0)
        ref = built.run(grace_hopper, 0, 0.0)
        assert len(rects) == 1 and [str(r) for r in rects] == [str(r) for r in ref[0]]
        assert list(scores) == list(ref[1]) and list(kinds) == list(ref[2])
        path.write_bytes(b"not a detector")
        dlib_backend._hog.cache_clear()
        assert len(dlib_backend._hog().run(grace_hopper, 0, 0.0)[0]) == 1  # rebuilt
        assert path.stat().st_size > 100_000
    finally:
        dlib_backend._hog.cache_clear()  # the next test loads from the user's cache again
