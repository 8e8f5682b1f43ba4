"""MediaPipe's palm detector ported to PyTorch (:mod:`backend.detect.hands`) and the hand region it implies.

``fixtures/palm_reference.npz`` was recorded once with the TFLite interpreter (ai-edge-litert, in
the scratch venv of ``benchmarks/mediapipe_reference/``, scripts ``palm_*.py``): the 8 best anchors'
raw outputs on our letterboxed inputs of two faces_dev photos with a hand on the face and on a
seeded random input (no photo needed). Skipped without ``palm_detection_lite.tflite`` on the model
search path (`photohead models fetch mediapipe`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.detect.hands import PALM, Palm, detect_palms, hand_mask, hand_outlines, hand_regions, region_corners
from backend.detect.mediapipe_backend import detector_input
from backend.detect.mediapipe_nets import find_mediapipe_file
from backend.errors import WeightsNotFoundError
from backend.image_io import load_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REF = Path(__file__).with_name("fixtures") / "palm_reference.npz"
# the two faces_dev photos of the fixture, and where the palm lies in each (box centre, photo px)
HAND_PHOTOS = {"helen_train_2293429456_1": (136.0, 296.0), "helen_train_154598717_1": (250.0, 218.0)}


@pytest.fixture(scope="module")
def palm_net():
    try:
        find_mediapipe_file(PALM.file)
    except WeightsNotFoundError as exc:
        pytest.skip(str(exc))
    from backend.detect.mediapipe_nets import load_blazeface

    return load_blazeface(PALM)


def _hand_photo(name: str) -> np.ndarray:
    from tests.conftest import FACES_DEV

    path = FACES_DEV / "images" / f"{name}.jpg"
    if not path.exists():
        pytest.skip("faces_dev development set not present")
    return load_image(path)


def _check(net, x: torch.Tensor, ref, key: str) -> None:
    with torch.no_grad():
        raw, logit = net.net(x)
    idx = ref[f"{key}:idx"].astype(int)
    assert raw.shape == (1, 2016, 18)
    assert np.abs(raw[0, idx].numpy() - ref[f"{key}:raw"]).max() < 0.05  # input pixels of 192
    np.testing.assert_allclose(logit[0, idx, 0].numpy(), ref[f"{key}:logit"], atol=0.01)


def test_palm_port_matches_interpreter_on_random_input(palm_net):
    x = np.random.default_rng(0).random((192, 192, 3), dtype=np.float32)
    _check(palm_net, torch.from_numpy(x).permute(2, 0, 1)[None], np.load(REF), "random")


@pytest.mark.parametrize("name", sorted(HAND_PHOTOS))
def test_palm_port_matches_interpreter_and_finds_the_hand(palm_net, name):
    image = _hand_photo(name)
    x, _, _ = detector_input(image, PALM)
    _check(palm_net, (x + 1.0) * 0.5, np.load(REF), name)
    (palm,) = detect_palms(image)
    centre = 0.5 * (palm.box[:2] + palm.box[2:])
    assert palm.score > 0.7 and np.linalg.norm(centre - HAND_PHOTOS[name]) < 12.0, (palm.score, centre)
    assert palm.keypoints.shape == (7, 2)
    assert (palm.keypoints.min(0) > palm.box[:2] - 20).all() and (palm.keypoints.max(0) < palm.box[2:] + 20).all()


def test_no_palm_on_photos_without_hands(palm_net, astronaut, grace_hopper):
    assert detect_palms(astronaut) == [] and detect_palms(grace_hopper) == []


def test_without_the_palm_file_no_hands(tmp_path, astronaut):
    assert detect_palms(astronaut, folder=tmp_path) == []


def test_hand_region_follows_mediapipes_rule():
    """Box 10 px, wrist → middle finger up: the region (side 26) moves 5 px up; the same palm with its
    fingers to the right: the region turns by 90° and moves 5 px right."""
    box = np.array([0.0, 0.0, 10.0, 10.0])
    up = Palm(0.9, box, np.array([[5.0, 10.0], [3.0, 2.0], [5.0, 0.0], [7, 2], [8, 3], [1, 8], [0, 5]]))
    right = Palm(0.9, box, np.array([[0.0, 5.0], [8.0, 3.0], [10.0, 5.0], [8, 7], [7, 8], [2, 9], [5, 10]]))
    centre, side, angle = hand_regions([up, right])
    np.testing.assert_allclose(centre, [[5.0, 0.0], [10.0, 5.0]], atol=1e-9)
    np.testing.assert_allclose(side, [26.0, 26.0])
    np.testing.assert_allclose(angle, [0.0, np.pi / 2], atol=1e-9)
    corners = region_corners(centre, side, angle)
    np.testing.assert_allclose(corners[0], [[-8, -13], [18, -13], [18, 13], [-8, 13]], atol=1e-9)
    # the outline's finger end (region y = −½ side … MASK_TOP) lies towards the fingers
    assert hand_outlines([right])[0][:, 0].max() > 10.0 + 0.35 * 26


def test_hand_mask_in_a_crop():
    """The outline mapped by crop_from_image (×0.5, shifted) and drawn; None when off the crop."""
    quad = np.array([[[20.0, 20.0], [60.0, 20.0], [60.0, 60.0], [20.0, 60.0]]])
    m = hand_mask(quad, np.array([[0.5, 0.0, 4.0], [0.0, 0.5, 4.0]]), 64)
    assert m.dtype == np.float32 and m.shape == (64, 64)
    ys, xs = np.nonzero(m)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (14, 34, 14, 34) and m.sum() == 21 * 21  # edges inclusive
    assert hand_mask(quad + 500.0, np.array([[0.5, 0.0, 4.0], [0.0, 0.5, 4.0]]), 64) is None
    assert hand_mask(np.zeros((0, 4, 2)), np.eye(2, 3), 64) is None
