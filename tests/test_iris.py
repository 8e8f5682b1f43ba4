"""MediaPipe's Iris model ported to PyTorch (:mod:`backend.detect.iris`): the port against the TFLite
interpreter, MediaPipe's eye regions and mirroring, and the fallback without the file.

``fixtures/iris_reference.npz`` was recorded once in the scratch venv of
``benchmarks/mediapipe_reference/`` (scripts ``iris_*.py``): our eye crops of grace_hopper and
astronaut (at Face Mesh's eye corners, rounded to uint8), the interpreter's outputs on them and on
a seeded random input, and MediaPipe's own Face Mesh iris points (``refine_landmarks``) for the
same photos. Skipped without ``iris_landmark.tflite`` on the model search path (`photohead models
fetch mediapipe`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.detect.iris import (IRIS_FILE, detect_irises, eye_regions, iris_confident, iris_crops, iris_radius_px,
                                 load_iris_landmarks)
from backend.detect.mediapipe_nets import find_mediapipe_file
from backend.errors import WeightsNotFoundError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REF = Path(__file__).with_name("fixtures") / "iris_reference.npz"
PHOTOS = ("grace_hopper", "astronaut")


@pytest.fixture(scope="module")
def iris_net():
    try:
        find_mediapipe_file(IRIS_FILE)
    except WeightsNotFoundError as exc:
        pytest.skip(str(exc))
    return load_iris_landmarks()


@pytest.mark.parametrize("key", [*PHOTOS, "random"])
def test_iris_port_matches_interpreter(iris_net, key):
    """Contour, brow and iris points within 1e-3 crop px (of 64) of the TFLite interpreter's
    (measured: 4e-5)."""
    ref = np.load(REF)
    if key == "random":
        x = np.random.default_rng(0).random((1, 64, 64, 3), dtype=np.float32)
    else:
        x = ref[f"{key}:crops"].astype(np.float32) / 255.0
    with torch.no_grad():
        contour, iris = iris_net(torch.from_numpy(x).permute(0, 3, 1, 2))
    np.testing.assert_allclose(contour.numpy(), ref[f"{key}:contour"], atol=1e-3)
    np.testing.assert_allclose(iris.numpy(), ref[f"{key}:iris"], atol=1e-3)
    assert 20.0 < float(iris[0, 0, 0]) < 44.0 and 20.0 < float(iris[0, 0, 1]) < 44.0  # the iris near the crop's middle


@pytest.mark.parametrize("name", PHOTOS)
def test_eye_crops_and_points_match_mediapipe(iris_net, name, request):
    """Our eye regions (the eye at image right mirrored) reproduce the recorded crops, and the iris
    centres land within 2 px of MediaPipe's own Face Mesh iris points (another model: its
    attention mesh; measured 0.7–1.9 px), each on its own eye; radii 5–15 % smaller than its."""
    ref = np.load(REF)
    image = request.getfixturevalue(name)
    corners = ref[f"{name}:corners"].astype(np.float64)
    x, _, _ = iris_crops(image, corners)
    got = np.clip(np.round(x.permute(0, 2, 3, 1).numpy() * 255), 0, 255)
    assert np.abs(got - ref[f"{name}:crops"]).max() <= 1
    eyes = detect_irises(image, corners)
    mp = ref[f"{name}:mp_refined"]  # (10,2): 468–472 the eye at image left, 473–477 at image right
    np.testing.assert_allclose(eyes.iris[:, 0], mp[[0, 5]], atol=2.0)
    mp_r = 0.5 * np.linalg.norm(mp[[1, 6]] - mp[[3, 8]], axis=1)
    assert np.all(iris_radius_px(eyes.iris) > 0.8 * mp_r) and np.all(iris_radius_px(eyes.iris) < 1.05 * mp_r)
    assert iris_confident(eyes.iris, corners).all()
    assert eyes.contour.shape == (2, 71, 2) and np.isfinite(eyes.contour).all()


def test_eye_regions_are_mediapipes():
    """Centre between the corners, side 2.3 × the corners' box's longer side, angle levelling them."""
    corners = np.array([[[10.0, 20.0], [30.0, 30.0]], [[50.0, 20.0], [50.0, 40.0]]])
    centre, side, angle = eye_regions(corners)
    np.testing.assert_allclose(centre, [[20.0, 25.0], [50.0, 30.0]])
    np.testing.assert_allclose(side, [46.0, 46.0])
    np.testing.assert_allclose(angle, [np.arctan2(10.0, 20.0), np.pi / 2])


def test_iris_radius_and_confidence():
    """The radius is half the longer rim diameter; a squashed, tiny or far-off iris is not trusted."""
    corners = np.array([[[0.0, 0.0], [30.0, 0.0]]] * 4)
    ring = np.array([[0, 0], [6, 0], [0, -6], [-6, 0], [0, 6]], np.float64)
    iris = np.stack([ring + [15, 0], ring * [1.0, 0.3] + [15, 0], ring * 0.2 + [15, 0], ring + [15, 30]])
    np.testing.assert_allclose(iris_radius_px(iris), [6.0, 6.0, 1.2, 6.0])
    assert iris_confident(iris, corners).tolist() == [True, False, False, False]


def test_no_iris_file_means_no_irises(tmp_path, grace_hopper):
    """Without ``iris_landmark.tflite`` (an install fetched before it was added): None, no error."""
    corners = np.array([[[199.0, 193.0], [238.0, 192.0]], [[288.0, 190.0], [328.0, 187.0]]])
    assert detect_irises(grace_hopper, corners, folder=tmp_path) is None
