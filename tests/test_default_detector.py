"""The default detector is ``auto`` everywhere, and without MediaPipe's files it is dlib with one warning."""
from __future__ import annotations

import inspect

import numpy as np

import pytest

from backend.detectors import DEFAULT_DETECTOR, DETECTOR_NAMES


def _parse(argv: list[str]):
    from backend.cli import build_parser

    return build_parser().parse_args(argv)


def test_auto_is_the_default_everywhere():
    from backend.detect import BACKENDS, detect, detect_one
    from backend.prepare import prepare_view
    from backend.reconstruct import ReconstructConfig
    from evaluation.suites import run_landmarks

    assert DEFAULT_DETECTOR == "auto" and DETECTOR_NAMES[0] == "auto" and BACKENDS == DETECTOR_NAMES
    assert ReconstructConfig().detector == "auto"
    for fn, arg in ((detect, "backend"), (detect_one, "backend"), (prepare_view, "detector"), (run_landmarks, "detector")):
        assert inspect.signature(fn).parameters[arg].default == "auto", fn.__name__
    assert _parse(["reconstruct", "x.jpg", "-o", "out"]).detector == "auto"
    assert _parse(["evaluate", "landmarks", "dir"]).detector == "auto"


def test_reconstruct_without_mediapipe_files_warns_once_with_the_command(astronaut, tmp_path, monkeypatch):
    """The model search path holds no ``mediapipe/`` folder: dlib's points, one warning naming the fetch."""
    pytest.importorskip("dlib")
    import backend.detect.mediapipe_nets as nets
    from backend.detect.combined import MISSING_MEDIAPIPE
    from backend.reconstruct import ReconstructConfig, _prepare_views

    monkeypatch.setattr(nets, "search_path", lambda: [tmp_path])
    warn: list[str] = []
    views = _prepare_views([astronaut, astronaut], ReconstructConfig(), None, None, None, warn)
    assert warn == [MISSING_MEDIAPIPE] and "photohead models fetch mediapipe" in MISSING_MEDIAPIPE
    assert [v.detector for v in views] == ["dlib", "dlib"] and views[0].mesh68 is None


def test_extension_stage_carries_the_mediapipe_files(tmp_path, monkeypatch):
    """The platform zips' staging folder holds the three pinned ``.tflite`` files, the Apache-2.0
    LICENSE and a NOTICE in ``models/mediapipe``, where the worker's model path finds them."""
    import hashlib

    from addon import build
    import backend.detect.mediapipe_nets as nets

    try:
        folder = build.find_mediapipe_dir()
    except build.ManifestError as exc:
        pytest.skip(str(exc))
    staged = build.stage(build.read_manifest(), tmp_path, mediapipe_dir=folder)
    mp = staged / build.MODEL_DIR / "mediapipe"
    optional = [n for n in {**nets.HAND_FILES, **nets.IRIS_FILES} if (folder / n).is_file()]  # hands, irises, when fetched
    assert sorted(p.name for p in mp.iterdir()) == sorted([*nets.MEDIAPIPE_FILES, *optional, "LICENSE", "NOTICE"])
    for name, digest in {**nets.MEDIAPIPE_FILES, **nets.HAND_FILES, **nets.IRIS_FILES}.items():
        if name not in nets.MEDIAPIPE_FILES and name not in optional:
            continue
        assert hashlib.sha256((mp / name).read_bytes()).hexdigest() == digest
    assert "Apache License" in (mp / "LICENSE").read_text() and "Apache" in (mp / "NOTICE").read_text()
    monkeypatch.setattr(nets, "search_path", lambda: [staged / build.MODEL_DIR])
    assert nets.find_mediapipe_file("face_landmark.tflite") == mp / "face_landmark.tflite"
    monkeypatch.setattr(nets, "search_path", lambda: [tmp_path / "nothing"])
    with pytest.raises(build.ManifestError, match="models fetch mediapipe"):
        build.find_mediapipe_dir()


def test_auto_keeps_a_second_face_blazeface_misses(astronaut, grace_hopper):
    """Two people side by side: BlazeFace finds only the larger face; dlib's box of the smaller one
    is confirmed by Face Mesh and kept, dlib's HOG false positive on the flag is not."""
    from PIL import Image

    from backend.detect import DetectSettings
    from backend.detect.combined import detect_auto, mediapipe_available
    from backend.detect.dlib_backend import detect_dlib

    if not mediapipe_available():
        pytest.skip("MediaPipe's weights are not fetched")
    gh = np.asarray(Image.fromarray(grace_hopper).resize((437, 512)))
    image = np.ascontiguousarray(np.concatenate([astronaut, gh], axis=1))
    assert len(detect_dlib(image, DetectSettings())) == 3  # both faces and a false positive on the flag
    faces = detect_auto(image, DetectSettings())
    centres = sorted(float(f.landmarks[:, 0].mean()) for f in faces)
    assert len(faces) == 2 and centres[0] < 512 < centres[1], centres
    assert all(f.presence >= 0.5 for f in faces)
