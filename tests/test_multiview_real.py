"""Real-photo multi-view tools (evaluation.multiview_real): rendered frame sets, the seam
metric, same-person sets; the dev-set check skips when faces_dev is absent."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation.multiview_real import (
    DevDescriptors, FrameSettings, luminance_gradient, render_frames, same_person_sets, seam_stats, trusted_albedo,
)
from backend.head import Head

# the set bench_multiview_real --dev-set picks (one woman, three photos of a series, yaw −36°, −12°, +15°)
DEV_SET = ("helen_train_2140620254_2.jpg", "helen_train_2140530512_1.jpg", "helen_train_2134232899_2.jpg")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def skin_head(model, res: int = 64) -> Head:
    """The model's mean face as a Head with a skin-like albedo (no reconstruction needed)."""
    from evaluation.multiview_scene import skin_texture

    v = model.mean.cpu().numpy().astype(np.float32)
    albedo = skin_texture(res, res * model.uv_tiles, torch.Generator().manual_seed(0)).numpy()
    return Head(
        model_name=model.name, vertices=v, neutral=v, faces=model.faces.cpu().numpy().astype(np.int32),
        uv=model.uv.cpu().numpy().astype(np.float32), faces_uv=model.faces_uv.cpu().numpy().astype(np.int32),
        id_coeffs=np.zeros(1, np.float32), exp_coeffs=np.zeros(1, np.float32), exp_names=[], uv_tiles=model.uv_tiles,
        albedo=albedo,
    )


# -- seam metric -------------------------------------------------------------------------------
def _two_views(H: int = 40, W: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights of two views meeting at column W/2 (view 0 left), and a full region."""
    w = torch.zeros(2, H, W)
    w[0, :, : W // 2] = 1.0
    w[1, :, W // 2 :] = 1.0
    return w, torch.ones(H, W, dtype=torch.bool)


def test_luminance_gradient_of_a_ramp():
    ramp = torch.linspace(0, 1, 11).view(1, 11, 1).expand(5, 11, 3)  # 0.1 per column, grey
    g = luminance_gradient(ramp)
    torch.testing.assert_close(g[2, 1:-1], torch.full((9,), 0.1), atol=1e-5, rtol=0)
    assert float(g[:, 0].abs().max()) == 0.0


def test_seam_stats_sees_a_step_at_the_view_border_and_not_a_smooth_texture():
    w, region = _two_views()
    H, W = region.shape
    rng = np.random.default_rng(0)
    texture = torch.from_numpy(0.5 + 0.02 * rng.standard_normal((H, W, 1))).float().expand(H, W, 3)
    seamless = seam_stats(texture, w, region)
    assert 0.8 < seamless.ratio < 1.25, seamless
    step = texture.clone()
    step[:, W // 2 :] += 0.1  # one view 0.1 brighter: a hard seam at the border
    seamy = seam_stats(step, w, region)
    assert seamy.ratio > 1.5 * seamless.ratio, (seamy, seamless)
    assert seamy.border_texels > 0 and seamy.interior_texels > 0
    # a plain-skin mask that leaves out the border → nothing to compare
    smooth = torch.ones(H, W, dtype=torch.bool)
    smooth[:, W // 2 - 6 : W // 2 + 6] = False
    with pytest.raises(ValueError, match="no texels"):
        seam_stats(step, w, region, smooth=smooth)
    with pytest.raises(ValueError, match="must agree"):
        seam_stats(step[:, :10], w, region)


def test_trusted_albedo_fades_unseen_texels_to_the_seen_colour():
    head = Head(model_name="t", vertices=np.zeros((1, 3)), neutral=np.zeros((1, 3)), faces=np.zeros((0, 3), np.int32),
                uv=np.zeros((1, 2)), faces_uv=np.zeros((0, 3), np.int32), id_coeffs=np.zeros(1), exp_coeffs=np.zeros(1),
                exp_names=[], albedo=np.zeros((4, 8, 3), np.float32))
    head.albedo[:, :4] = 0.6  # seen part
    head.albedo[:, 4:] = 0.1  # smeared rim
    w = np.zeros((1, 4, 8), np.float32)
    w[0, :, :4] = 1.0
    w[0, :, 4:6] = 0.5  # half trusted at trusted_weight 0.7 → partly faded
    head.view_weights = w
    out = trusted_albedo(head, 0.7)
    np.testing.assert_allclose(out[:, :4], 0.6)
    np.testing.assert_allclose(out[:, 6:], 0.6)  # weight 0 → the seen median
    assert (out[:, 4:6] > 0.1).all() and (out[:, 4:6] < 0.6).all()
    np.testing.assert_array_equal(trusted_albedo(head, 0.0), head.albedo)


# -- same-person sets ----------------------------------------------------------------------------
def test_same_person_sets_groups_one_person_across_photos_only():
    rng = np.random.default_rng(1)
    person = rng.normal(size=128) * 0.09
    other = rng.normal(size=128) * 0.09
    names = ["helen_train_100_1.jpg", "helen_train_200_1.jpg", "helen_train_300_1.jpg", "helen_train_400_1.jpg",
             "helen_train_100_2.jpg", "helen_train_500_1.jpg"]
    desc = np.stack([person + rng.normal(size=128) * 0.01 for _ in range(4)]
                    + [person + rng.normal(size=128) * 0.01, other]).astype(np.float32)
    yaw = np.array([-30.0, -2.0, 3.0, 28.0, 10.0, 0.0], np.float32)
    colour = np.array([0.2, 0.2, 0.2, 0.2, 0.2, 0.2], np.float32)
    sets = same_person_sets(DevDescriptors(names, desc, yaw, colour))
    assert len(sets) == 1
    chosen = sets[0]
    # widest yaw span, evenly spread; never two faces of one photo (100_1 and 100_2)
    assert chosen["names"][0] == "helen_train_100_1.jpg" and chosen["names"][-1] == "helen_train_400_1.jpg"
    assert len(chosen["names"]) == 3 and "helen_train_100_2.jpg" not in chosen["names"]
    assert chosen["spread_deg"] == pytest.approx(58.0)
    # a black-and-white photo drops out with min_colourfulness
    colour[3] = 0.0
    sets = same_person_sets(DevDescriptors(names, desc, yaw, colour), min_colourfulness=0.02)
    assert all("helen_train_400_1.jpg" not in s["names"] for s in sets)
    # too little yaw spread: no set
    assert same_person_sets(DevDescriptors(names, desc, yaw * 0.1, colour)) == []


# -- rendered frames → joint reconstruction ------------------------------------------------------
@pytest.fixture(scope="module")
def small_frames(face_model):
    settings = FrameSettings(size=192, noise=0.01)
    return render_frames(skin_head(face_model), face_model, settings), settings


def test_render_frames_gives_posed_lit_photos_with_landmarks(small_frames):
    frames, settings = small_frames
    assert len(frames.images) == 3 and frames.images[0].shape == (192, 192, 3) and frames.images[0].dtype == np.uint8
    assert frames.masks.shape == (3, 192, 192) and 0.15 < frames.masks.mean() < 0.7
    for lm in frames.landmarks68:
        assert lm.shape == (68, 2) and (lm > 0).all() and (lm < 192).all()
    # the nose tip (landmark 30) moves with the yaw: image left at −50°, right at +50°
    nose_x = [lm[30, 0] for lm in frames.landmarks68]
    assert nose_x[0] < nose_x[1] - 15 and nose_x[2] > nose_x[1] + 15, nose_x
    # different gains: the frames' mean head colours differ in hue, not only brightness
    means = np.stack([im[m].mean(0) for im, m in zip(frames.images, frames.masks)])
    ratios = means / means.mean(1, keepdims=True)
    assert np.ptp(ratios[:, 2]) > 0.05


def test_joint_reconstruction_covers_more_than_the_frontal_frame(small_frames):
    from backend.reconstruct import ReconstructConfig, reconstruct

    frames, _ = small_frames
    config = ReconstructConfig(quality="draft", device="cpu", detail=False, identity=False)
    joint = reconstruct(frames.images, config, landmarks=frames.landmarks68)
    front = reconstruct([frames.images[1]], config, landmarks=[frames.landmarks68[1]])
    assert joint.view_weights.shape[0] == 3 and not joint.warnings
    assert [v.detector for v in joint.views] == ["given"] * 3  # the caller's landmarks, recorded as such
    cj, cf = joint.metrics["uv_face_coverage"], front.metrics["uv_face_coverage"]
    assert cj > cf + 0.1, (cj, cf)


# -- the dev set ---------------------------------------------------------------------------------
def test_dev_set_group_is_one_person_with_different_yaw(faces_dev, face_model):
    """The three photos the benchmark reconstructs: one person (descriptors within 0.6), three
    different source photos, colour, yaw spread > 30°. Reads the photos in place, writes nothing."""
    from backend.errors import WeightsNotFoundError
    from evaluation.multiview_real import dev_descriptors
    from backend.multiview import SAME_PERSON_THRESHOLD

    try:
        dev = dev_descriptors(faces_dev, face_model, names=list(DEV_SET))
    except WeightsNotFoundError as exc:
        pytest.skip(str(exc))
    assert dev.names == sorted(DEV_SET)
    d = np.linalg.norm(dev.descriptors[:, None] - dev.descriptors[None], axis=-1)
    assert d.max() < SAME_PERSON_THRESHOLD, d
    assert (dev.colourfulness > 0.02).all()
    assert np.ptp(dev.yaw_deg) > 30.0, dev.yaw_deg
    sets = same_person_sets(dev)
    assert sets and sorted(sets[0]["names"]) == sorted(DEV_SET)
