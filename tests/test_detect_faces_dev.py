"""Landmark accuracy of dlib's detector on faces_dev (HELEN / 300-W ground truth)."""
from __future__ import annotations

import functools
import json

import numpy as np
import pytest

import backend.detect
from backend.image_io import load_image

pytest.importorskip("dlib")
detect = functools.partial(backend.detect.detect, backend="dlib")  # auto's accuracy: docs/mediapipe.md


def _sample(faces_dev, n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    meta = json.loads((faces_dev / "landmarks.json").read_text())["images"]
    names = sorted(meta)
    pick = np.random.default_rng(seed).choice(len(names), size=min(n, len(names)), replace=False)
    return [(names[i], np.asarray(meta[names[i]]["landmarks"], np.float64)) for i in sorted(pick)]


def _inside(pts: np.ndarray, box: np.ndarray, margin: float) -> bool:
    """All points inside ``box`` grown by ``margin`` × its width on every side (HOG boxes are
    tight: brows to chin; the jaw of a turned head pokes out)."""
    x0, y0, x1, y1 = box
    m = margin * (x1 - x0)
    return bool(((pts[:, 0] >= x0 - m) & (pts[:, 0] <= x1 + m) & (pts[:, 1] >= y0 - m) & (pts[:, 1] <= y1 + m)).all())


def _evaluate(faces_dev, sample):
    """Per photo: NME (mean point error / outer-eye-corner distance) of the detection matching
    the annotated face (nearest landmark centre), whether it was ranked #0, and ordering checks."""
    nmes, first, ordered, missed = [], [], [], []
    for name, gt in sample:
        faces = detect(load_image(faces_dev / "images" / name))
        if not faces:
            missed.append(name)
            continue
        d = [np.linalg.norm(f.landmarks.mean(0) - gt.mean(0)) for f in faces]
        k = int(np.argmin(d))
        lm = faces[k].landmarks
        iod = np.linalg.norm(gt[36] - gt[45])
        nmes.append(np.linalg.norm(lm - gt, axis=1).mean() / iod)
        first.append(k == 0)
        inside = _inside(lm[17:], faces[k].box, 0.1) and _inside(lm, faces[k].box, 0.35)
        order = (lm[36:42, 0].mean() < lm[42:48, 0].mean()
                 and lm[17:27, 1].mean() < lm[36:48, 1].mean() < lm[48:68, 1].mean())
        ordered.append(bool(inside and order))
    return np.array(nmes), np.array(first), np.array(ordered), missed


def test_faces_dev_sample_nme(faces_dev):
    sample = _sample(faces_dev, 20, seed=0)
    nme, first, ordered, missed = _evaluate(faces_dev, sample)
    assert len(missed) <= 1, f"no face found in {missed}"
    assert nme.mean() < 0.08, f"mean NME {nme.mean():.3%}"
    assert np.median(nme) < 0.05
    assert first.mean() >= 0.9  # the annotated (centred, largest) face ranks first
    assert ordered.all()


@pytest.mark.slow
def test_faces_dev_large_sample_nme(faces_dev):
    sample = _sample(faces_dev, 200, seed=1)
    nme, first, ordered, missed = _evaluate(faces_dev, sample)
    assert len(missed) <= 4, f"no face found in {missed}"
    assert nme.mean() < 0.05, f"mean NME {nme.mean():.3%}"
    assert first.mean() >= 0.9
    assert ordered.mean() >= 0.97


def test_flip_average_lowers_the_error(faces_dev):
    """Averaging with the mirror image's prediction (the default) beats one prediction on the
    same sample (faces_dev: 2.67 → 2.57 % mean NME on 150 photos outside the landmark suite)."""
    from backend.detect import DetectSettings

    sample = _sample(faces_dev, 20, seed=1)
    nme = {}
    for flip in (False, True):
        errors = []
        for name, gt in sample:
            faces = detect(load_image(faces_dev / "images" / name), settings=DetectSettings(flip_average=flip))
            if faces:
                lm = min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - gt.mean(0))).landmarks
                errors.append(np.linalg.norm(lm - gt, axis=1).mean() / np.linalg.norm(gt[36] - gt[45]))
        nme[flip] = np.mean(errors)
    assert nme[True] < nme[False], nme
