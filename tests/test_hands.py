"""MediaPipe's palm detector and hand landmark model ported to PyTorch (:mod:`backend.detect.hands`),
the hand outlines, and the hands kept out of the fits' masks and the albedo.

``fixtures/palm_reference.npz`` was recorded once in the scratch venv of
``benchmarks/mediapipe_reference/`` (scripts ``palm_*.py``): the TFLite interpreter's outputs (the
palm detector's 8 best anchors, the hand landmark model's 21 points and presence) on our own input
tensors of two faces_dev photos with a hand on the face and on seeded random inputs, and MediaPipe's
own Hands graph end to end on five faces_dev photos. Skipped without the two ``.tflite`` files on
the model search path (`photohead models fetch mediapipe`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.detect.hands import (
    HAND_LANDMARK_FILE, PALM, Hand, Palm, detect_hands, detect_palms, hand_mask, hand_outline, hand_regions,
    hands_at_face, region_corners,
)
from backend.detect.mediapipe_backend import detector_input, sample_crops
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
        find_mediapipe_file(HAND_LANDMARK_FILE)
    except WeightsNotFoundError as exc:
        pytest.skip(str(exc))
    from backend.detect.mediapipe_nets import load_blazeface

    return load_blazeface(PALM)


@pytest.fixture(scope="module")
def hand_net(palm_net):
    from backend.detect.hands import load_hand_landmarks

    return load_hand_landmarks()


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


def test_hand_landmark_port_matches_interpreter(hand_net):
    """Random input and our crops of the two photos (MediaPipe's region of the best palm): the
    21 points within 0.01 crop px of 224 (1.2e-4 measured), the presence within 1e-4."""
    ref = np.load(REF)
    crops = {"random": torch.from_numpy(np.random.default_rng(0).random((224, 224, 3), dtype=np.float32)).permute(2, 0, 1)[None]}
    for name in HAND_PHOTOS:
        crops[name] = sample_crops(_hand_photo(name), ref[f"{name}:hand_tf"][None], 224, "border")
    for key, x in crops.items():
        with torch.no_grad():
            points, presence = hand_net(x)
        assert np.abs(points[0].numpy() - ref[f"{key}:hand_points"]).max() < 0.01
        assert abs(float(presence[0]) - float(ref[f"{key}:hand_presence"])) < 1e-4
    assert float(ref["random:hand_presence"]) < 0.01 < 0.95 < float(ref[f"{name}:hand_presence"])


def test_hands_close_to_mediapipe_end_to_end(hand_net):
    """Five faces_dev photos (320²) with a hand at the face: one hand each, its 21 points within
    5 px on average of MediaPipe's own Hands graph (0.9–3.8 px measured; wrist to middle knuckle
    56–93 px)."""
    ref = np.load(REF)
    keys = [k for k in ref.files if k.endswith(":mp_hand0")]
    assert len(keys) == 5
    for key in keys:
        (hand,) = detect_hands(_hand_photo(key.split(":")[0]))
        err = np.linalg.norm(hand.points[:, :2] - ref[key], axis=1).mean()
        assert err < 5.0 and hand.presence > 0.9, (key, err, hand.presence)


def test_no_hands_on_photos_without_hands(palm_net, astronaut, grace_hopper):
    assert detect_palms(astronaut) == [] and detect_palms(grace_hopper) == []
    assert detect_hands(astronaut) == [] and detect_hands(grace_hopper) == []


def test_without_the_files_no_hands(tmp_path, astronaut):
    assert detect_palms(astronaut, folder=tmp_path) == [] and detect_hands(astronaut, folder=tmp_path) == []


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


def _flat_hand(scale: float) -> np.ndarray:
    """21 points (21,3) of a flat hand, fingers up, knuckles 5 and 9 ``scale`` px apart."""
    pts = [[0.0, 0.0]] + [[-1.5 - 0.4 * i, -0.8 - 0.9 * i] for i in range(4)]  # wrist, thumb
    for f, x in enumerate((-1.0, 0.0, 1.0, 2.0)):  # index, middle, ring, little: base at y = −3
        pts += [[x, -3.0 - 1.2 * j] for j in range(4)]
    return np.c_[np.array(pts) * scale, np.zeros(21)]


def test_hand_outline_grows_the_hull_by_half_a_finger():
    pts = _flat_hand(10.0)
    outline = hand_outline(pts)
    from matplotlib.path import Path as MplPath

    assert MplPath(outline).contains_points(pts[:, :2]).all()
    lo, hi = outline.min(0), outline.max(0)
    np.testing.assert_allclose(lo, pts[:, :2].min(0) - 6.0, atol=0.3)  # 0.6 × the 10 px knuckle distance
    np.testing.assert_allclose(hi, pts[:, :2].max(0) + 6.0, atol=0.3)


def test_only_hands_of_a_hands_size_at_the_face_count():
    """Jaw width 100 px: a 66 px hand counts; a 25 px one (an ear taken for a hand) does not."""
    lm = np.zeros((68, 2))
    lm[16] = [100.0, 0.0]
    big, small = (Hand(Palm(0.9, np.zeros(4), np.zeros((7, 2))), _flat_hand(s), 0.9) for s in (10.0, 3.8))
    assert hands_at_face([big, small], lm) == [big]


def test_only_hands_reaching_in_from_outside_the_face_count():
    """A face outline 100 px square (jaw 0–16 along its sides and chin, brows along its top): a
    hand-sized shape wholly inside it (a mouth or nose taken for a hand) does not count; the same
    hand with its wrist and palm below the chin does."""
    lm = np.zeros((68, 2))
    lm[0:17] = np.concatenate([np.c_[np.zeros(6), np.linspace(0, 100, 6)],  # one side, down
                               np.c_[np.linspace(0, 100, 6)[1:-1], np.full(4, 100.0)],  # the chin
                               np.c_[np.full(7, 100.0), np.linspace(100, 0, 7)]])  # the other side, up
    lm[17:27] = np.c_[np.linspace(5, 95, 10), np.zeros(10)]
    inside = _flat_hand(8.0) + [50.0, 85.0, 0.0]  # wrist at (50, 85), fingertips at y ≈ 32
    below = _flat_hand(8.0) + [50.0, 130.0, 0.0]  # wrist 30 px below the chin
    hands = [Hand(Palm(0.9, np.zeros(4), np.zeros((7, 2))), p, 0.9) for p in (inside, below)]
    assert hands_at_face(hands, lm) == [hands[1]]


def test_hand_mask_in_a_crop():
    """The outline mapped by crop_from_image (×0.5, shifted) and drawn; None when off the crop."""
    quad = np.array([[[20.0, 20.0], [60.0, 20.0], [60.0, 60.0], [20.0, 60.0]]])
    m = hand_mask(quad, np.array([[0.5, 0.0, 4.0], [0.0, 0.5, 4.0]]), 64)
    assert m.dtype == np.float32 and m.shape == (64, 64)
    ys, xs = np.nonzero(m)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (14, 34, 14, 34) and m.sum() == 21 * 21  # edges inclusive
    assert hand_mask(quad + 500.0, np.array([[0.5, 0.0, 4.0], [0.0, 0.5, 4.0]]), 64) is None
    assert hand_mask([], np.eye(2, 3), 64) is None


# -- the hands in the pipeline: prepare (the fits' photometric masks) and the albedo ----------------
def test_prepare_takes_the_hand_off_the_skin_mask(palm_net, astronaut):
    from backend.prepare import detail_inputs, hand_crop_mask, prepare_view
    from backend.skin import skin_mask

    view = prepare_view(_hand_photo("helen_train_2293429456_1"))  # the hand over the mouth
    hand = hand_crop_mask(view)
    assert len(view.hands) == 1 and hand is not None and 0.05 < hand.mean() < 0.5
    assert view.skin_mask[hand > 0].max() == 0.0
    plain = skin_mask(view.crop, view.crop_landmarks, 224)
    assert (plain[hand > 0] > 0.5).sum() > 2000  # the colour model took the hand for skin (6420 px)
    np.testing.assert_array_equal(view.skin_mask[hand == 0], plain[hand == 0])
    _, skins, _ = detail_inputs([view], 256)
    assert float(skins[0][torch.from_numpy(hand_crop_mask(view, 256)) > 0].max()) == 0.0
    clean = prepare_view(astronaut)  # no hand: the masks are as before, bit for bit
    assert clean.hands is None and hand_crop_mask(clean) is None
    np.testing.assert_array_equal(clean.skin_mask, skin_mask(clean.crop, clean.crop_landmarks, 224))


def _synthetic_view(model, patch: bool, hands: list[np.ndarray] | None):
    """A frontal synthetic face (224² photo = its crop), optionally with a skin-coloured but brighter
    darker patch on its right cheek (a 'hand' in shadow: no colour test rejects it), and the fit that made it."""
    from backend.align import face_mask
    from backend.camera import Camera, project
    from backend.fit.coarse import CoarseFitResult
    from backend.prepare import PreparedView
    from backend.skin import skin_mask
    from evaluation.multiview_scene import synthetic_views

    scene = synthetic_views(model, (0.0,), size=224, tex_res=128, seed=3, noise=0.0)
    lm = project(scene.verts, scene.poses, Camera(224, 224))[:, model.landmarks68, :2].float()
    image = scene.images[0].clamp(0, 1).numpy()
    if patch:
        v, u = np.mgrid[0:224, 0:224]
        c = 0.5 * (lm[0, 3].numpy() + lm[0, 48].numpy())
        disc = (u - c[0]) ** 2 + (v - c[1]) ** 2 <= 12.0**2
        image = image.copy()
        image[disc] = image[disc] * np.array([0.8, 0.78, 0.78])
    rgb = np.round(image * 255).astype(np.uint8)
    crop = rgb.astype(np.float32) / 255
    lm0 = lm[0].double().numpy()
    eye = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    view = PreparedView(name="synthetic", image=rgb, detected68=lm0, face_box=np.r_[lm0.min(0), lm0.max(0)],
                        crop_from_image=eye, image_from_crop=eye, crop=crop, crop_landmarks=lm0,
                        face_mask=face_mask(lm0, 224, 224, soft_px=1.0), skin_mask=skin_mask(crop, lm0, 224), hands=hands)
    fit = CoarseFitResult(id=torch.zeros(1, model.n_id), exp=torch.zeros(1, model.n_exp), pose=scene.poses, sh=scene.sh,
                          albedo=None, tex=None, verts=scene.verts, landmarks=lm)
    return view, fit, lm0


def test_a_hand_on_the_cheek_takes_its_texels_out_of_the_albedo(face_model):
    """The 'hand' patch lands in the albedo without its outline; with it, those texels take their
    mirror's colour (close to the clean face's). Hands off the crop: the albedo bit for bit as none."""
    import torch.nn.functional as Fn

    from backend.texture import delit_albedo, model_mirror_texels

    cpu = torch.device("cpu")
    view, fit, lm = _synthetic_view(face_model, False, None)
    clean, _ = delit_albedo(face_model, fit, [view], 128, cpu)
    view, fit, _ = _synthetic_view(face_model, True, None)
    patched, w_patched = delit_albedo(face_model, fit, [view], 128, cpu)
    c = 0.5 * (lm[3] + lm[48])
    quad = (c + 16.0 * np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]))[None]
    view, fit, _ = _synthetic_view(face_model, True, list(quad))
    handed, w_handed = delit_albedo(face_model, fit, [view], 128, cpu)
    changed = np.abs(patched - clean).max(-1) > 0.04  # the patch's texels
    assert changed.sum() > 30
    err_patched = np.abs(patched - clean)[changed].mean()  # 0.093 (0.11 on the 336 seen ones)
    # 0.039: the fill is the mirror's colour, not the texel's own (the synthetic skin is not symmetric)
    err_handed = np.abs(handed - clean)[changed].mean()
    assert err_handed < 0.45 * err_patched, (err_handed, err_patched)
    grid, _ = model_mirror_texels(face_model, *clean.shape[:2])
    mirror = Fn.grid_sample(torch.from_numpy(clean).permute(2, 0, 1)[None], grid[None], align_corners=False)
    mirror = mirror[0].permute(1, 2, 0).numpy()  # the clean albedo's mirror texel colours
    assert np.abs(handed - mirror)[changed].mean() < 0.2 * np.abs(patched - mirror)[changed].mean()  # 0.013, 0.135
    view, fit, _ = _synthetic_view(face_model, True, list(quad + 500.0))  # a hand in the photo, off the face's crop
    far, w_far = delit_albedo(face_model, fit, [view], 128, cpu)
    np.testing.assert_array_equal(far, patched)
    np.testing.assert_array_equal(w_far, w_patched)
