"""backend.detect.photos: every photo's 68 landmarks for the add-on's pins, placeholder included."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from backend.align import TEMPLATE_68_MM
from backend.detect import detect_one
from backend.detect.photos import PLACEHOLDER_FACE_WIDTH, detect_photos, placeholder_landmarks
from backend.errors import CancelledError, ImageReadError
from backend.reconstruct import ReconstructConfig
from backend.samples import sample_photo


def test_placeholder_is_the_mean_face_in_the_middle():
    pts = placeholder_landmarks(400, 300)
    assert pts.shape == (68, 2)
    np.testing.assert_allclose(pts.mean(0), [199.5, 149.5], atol=1e-9)
    assert pts[:, 0].max() - pts[:, 0].min() == pytest.approx(PLACEHOLDER_FACE_WIDTH * 300)
    # a similarity of the template: same shape up to scale and shift
    t = TEMPLATE_68_MM - TEMPLATE_68_MM.mean(0)
    np.testing.assert_allclose((pts - pts.mean(0)) / np.linalg.norm(pts - pts.mean(0)), t / np.linalg.norm(t), atol=1e-12)
    assert pts[8, 1] > pts[30, 1] > pts[19, 1]  # chin below nose below brow: upright in the photo


def test_detect_photos_detects_or_places(tmp_path):
    path, rgb = sample_photo("grace_hopper")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 200), (128, 128, 128)).save(blank)
    seen = []
    found = detect_photos([path, str(blank)], ReconstructConfig(detector="dlib"), progress=lambda f, m: seen.append(f))
    assert [f.source for f in found] == ["dlib", "placeholder"]
    assert found[0].name == path and found[0].image_size == (rgb.shape[1], rgb.shape[0]) and not found[0].message
    np.testing.assert_allclose(found[0].landmarks68, detect_one(rgb).landmarks, atol=1e-6)
    assert "no face found" in found[1].message and found[1].image_size == (320, 200)
    np.testing.assert_allclose(found[1].landmarks68, placeholder_landmarks(320, 200))
    assert seen[0] == 0.0 and seen[-1] == 1.0
    with pytest.raises(ImageReadError):
        detect_photos([str(tmp_path / "missing.png")])

    class Cancelled:
        def is_set(self) -> bool:
            return True

    with pytest.raises(CancelledError):
        detect_photos([path], cancel=Cancelled())
