"""Predict and hybrid modes: tiny checkpoints trained here (synthetic faces, a few steps), then
one-pass prediction on a real photo, hybrid fitting, and the errors for wrong/missing weights."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from backend.camera import Camera, project
from backend.checkpoint import load_checkpoint, save_checkpoint
from backend.errors import ModelFormatError, PhotoheadError, WeightsNotFoundError
from backend.detail_input import coarse_render
from backend.predict import load_predictor
from backend.reconstruct import ReconstructConfig, reconstruct

CROP = 64  # encoder input of the tiny stage 1 (reconstruct's crops are 224²: poses get rescaled)
UV = 32  # tiny U-Net


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, face_model):
    """A folder with coarse.pt / detail.pt from a few steps of both trainers on synthetic faces."""
    from training import coarse as stage1, detail as stage2
    from training.config import CoarseConfig, DetailConfig, apply_overrides

    root = tmp_path_factory.mktemp("predict")
    common = {
        "data.data": "synthetic", "data.synthetic_count": 8, "data.val_count": 0, "loop.batch_size": 4,
        "loop.device": "cpu", "loop.num_workers": 0, "loop.progress": False, "loop.log_every": 0,
        "loop.image_every": 0, "loop.val_every": 0,
    }
    c1 = apply_overrides(CoarseConfig(), {
        **common, "out": str(root / "coarse"), "data.crop_size": CROP, "encoder.arch": "light",
        "encoder.width": 0.25, "use_identity": False, "albedo_k": 6, "albedo_uv": 16, "loop.steps": 3, "optim.lr": 1e-3,
    })
    r1 = stage1.run(c1)
    c2 = apply_overrides(DetailConfig(), {
        **common, "out": str(root / "detail"), "coarse": str(r1.last_checkpoint), "uv_size": UV, "ngf": 8,
        "loop.steps": 2,
    })
    r2 = stage2.run(c2)
    folder = root / "ckpt"
    folder.mkdir()
    shutil.copy(r1.last_checkpoint, folder / "coarse.pt")
    shutil.copy(r2.last_checkpoint, folder / "detail.pt")
    return folder


def test_predictor_outputs_in_crop_frame(checkpoints, face_model):
    pred = load_predictor(checkpoints, "cpu", face_model)
    assert pred.in_size == CROP and pred.has_detail
    crops = torch.rand(2, 224, 224, 3)
    out = pred.predict_coarse(face_model, crops)
    assert out.id.shape == (1, face_model.n_id) and out.exp.shape == (2, face_model.n_exp)
    assert out.pose.shape == (2, 7) and out.sh.shape == (2, 27) and out.history == []
    assert out.albedo.shape == (1, 16, 16 * face_model.uv_tiles, 3) and out.tex is None
    assert torch.equal(out.exp[0], out.exp[1])  # shared expression
    # the landmarks are the model's projected through the 224² pose ...
    lm = project(out.verts, out.pose, Camera(224, 224))[:, face_model.landmarks68, :2]
    assert torch.allclose(out.landmarks, lm, atol=1e-4)
    # ... and the pose is the encoder's (64² frame) scaled by 224/64 about the pixel centres
    x = torch.nn.functional.interpolate(crops.permute(0, 3, 1, 2), size=(CROP, CROP), mode="area")
    raw = pred.encoder.decompose(pred.encoder(x))["pose"]
    assert torch.allclose(out.pose[:, 0], raw[:, 0] * 224 / CROP, rtol=1e-5)
    assert torch.allclose(out.pose[:, 4:6], raw[:, 4:6] * 224 / CROP, rtol=1e-4, atol=1e-4)
    # a nearly untrained encoder predicts the aligned template: the face fills the crop's middle
    centre = out.landmarks[0].mean(0)
    assert (centre - 111.5).abs().max() < 40, centre
    disp = pred.predict_detail(face_model, out, crops, size=48)
    assert disp.shape == (1, 1, 48, 48) and disp.abs().max() <= 3.0 + 1e-6
    # one view: the visibility-weighted average is that view's prediction
    one = pred.predict_detail(face_model, pred.predict_coarse(face_model, crops[:1]), crops[:1])
    assert one.shape == (1, 1, UV, UV) and torch.isfinite(one).all()


def test_unet_input_is_unwrap_pair_in_one_pass(checkpoints, face_model):
    """The predictor unwraps photo and coarse render together, reusing the render's
    rasterisation: exactly the trainer's unwrap_pair."""
    from backend.uvmaps import face_tile_layout, unwrap_pair

    pred = load_predictor(checkpoints, "cpu", face_model)
    crops = torch.rand(2, 224, 224, 3, generator=torch.Generator().manual_seed(5))
    coarse = pred.predict_coarse(face_model, crops, shared_expression=False)
    photo = pred._encoder_input(crops)
    k = CROP / 224
    pose = coarse.pose * torch.tensor([k, 1, 1, 1, k, k, k])
    cam, layout = Camera(CROP, CROP), face_tile_layout(face_model, UV)
    render = coarse_render(face_model, coarse, pose, cam).image
    want = unwrap_pair(photo, render, coarse.verts, face_model.faces, pose, cam, layout)
    got = pred.detail_input(face_model, coarse, crops)
    assert torch.equal(got.pair, want[0]) and torch.equal(got.visible, want[1])


def test_predict_mode_real_photo(checkpoints, grace_hopper):
    head = reconstruct([grace_hopper], ReconstructConfig(mode="predict", quality="draft", identity=False,
                                                         checkpoints=str(checkpoints)))
    assert head.mode == "predict"
    assert "coarse_fit_s" not in head.timings and "detail_fit_s" not in head.timings
    assert head.timings["coarse_predict_s"] < 5.0
    assert head.vertices.shape == head.neutral.shape == (11248, 3) and np.isfinite(head.vertices).all()
    assert head.albedo.shape == (256, 512, 3) and 0.05 < head.albedo.mean() < 0.95
    assert head.displacement is not None and np.abs(head.displacement).max() <= 3.0 + 1e-5
    assert head.dense_vertices.shape[0] > 5000
    # the untrained-ish encoder starts from the aligned template, so its landmarks land near the detected ones
    v = head.views[0]
    iod = np.linalg.norm(v.detected68[36] - v.detected68[45])
    err = np.linalg.norm(v.landmarks68 - v.detected68, axis=1).mean() / iod
    assert err < 0.5, err


@pytest.mark.slow
def test_hybrid_mode_fits_from_prediction(checkpoints, grace_hopper):
    head = reconstruct([grace_hopper], ReconstructConfig(mode="hybrid", quality="draft", identity=False,
                                                         checkpoints=str(checkpoints)))
    assert head.mode == "hybrid" and "coarse_fit_s" in head.timings and "detail_fit_s" in head.timings
    v = head.views[0]
    iod = np.linalg.norm(v.detected68[36] - v.detected68[45])
    inner = slice(17, 68)
    err = np.linalg.norm(v.landmarks68[inner] - v.detected68[inner], axis=1).mean() / iod
    assert err <= 0.03, err  # the fit still converges to the photo
    assert head.metrics["pixel_loss_detail"] < head.metrics["pixel_loss_coarse"]


def test_checkpoint_for_other_face_model_is_refused(checkpoints, tmp_path, face_model):
    ckpt = load_checkpoint(checkpoints / "coarse.pt")
    card = dict(ckpt["model_card"])
    card["face_model"] = {**card["face_model"], "name": "flame2020", "n_verts": 5023}
    folder = tmp_path / "other"
    folder.mkdir()
    enc = load_predictor(checkpoints).encoder
    save_checkpoint(folder / "coarse.pt", model=enc, model_card=card, step=3)
    with pytest.raises(ModelFormatError, match=r"flame2020.*5023 vertices.*--model"):
        load_predictor(folder, "cpu", face_model)
    pred = load_predictor(folder)  # loading without a model defers the check to the first prediction
    with pytest.raises(ModelFormatError, match="flame2020"):
        pred.predict_coarse(face_model, torch.rand(1, 224, 224, 3))


def test_missing_folder_and_files_give_clear_errors(tmp_path, checkpoints, grace_hopper):
    with pytest.raises(WeightsNotFoundError, match=r"not found.*coarse\.pt.*training"):
        load_predictor(tmp_path / "nowhere")
    with pytest.raises(WeightsNotFoundError, match=r"no coarse\.pt in checkpoint folder"):
        load_predictor(tmp_path)
    with pytest.raises(WeightsNotFoundError, match="--checkpoints"):
        reconstruct([grace_hopper], ReconstructConfig(mode="predict"))
    # detail.pt is optional: predict_detail then says what is missing
    only = tmp_path / "coarse_only"
    only.mkdir()
    shutil.copy(checkpoints / "coarse.pt", only / "coarse.pt")
    pred = load_predictor(only)
    assert not pred.has_detail
    with pytest.raises(WeightsNotFoundError, match="detail.pt"):
        pred.predict_detail(None, None, torch.rand(1, 224, 224, 3))
    # a stage-2 file where stage 1 belongs
    wrong = tmp_path / "swapped"
    wrong.mkdir()
    shutil.copy(checkpoints / "detail.pt", wrong / "coarse.pt")
    with pytest.raises(PhotoheadError, match="expected 'coarse'"):
        load_predictor(wrong)


def test_albedo_basis_is_shared_with_training():
    """Inference rebuilds the trainer's UV albedo basis from the model card: one implementation."""
    from backend.nets import AlbedoBasis
    from training.albedo_basis import AlbedoBasis as TrainingBasis

    assert TrainingBasis is AlbedoBasis
    basis = AlbedoBasis.lowfreq(6, 16, tiles=2)
    assert basis.n_tex == 6 and basis.uv_size == 16
    out = basis(torch.zeros(1, 6))
    assert out.shape == (1, 16, 32, 3) and torch.allclose(out[0, 0, 0], torch.tensor([0.72, 0.53, 0.44]))
    red = basis(torch.tensor([[1.0, 0, 0, 0, 0, 0]]))[0, ..., 0] - out[0, ..., 0]
    assert torch.allclose(red, torch.full_like(red, 0.08))  # first mode: +0.08 red everywhere


def test_hybrid_mode_can_tune_the_unet(checkpoints, grace_hopper):
    """--tune-unet: the detail stage fine-tunes the U-Net on the photo; the result lowers L_pixel
    and stays within the net's bound."""
    head = reconstruct([grace_hopper], ReconstructConfig(mode="hybrid", quality="draft", identity=False,
                                                         checkpoints=str(checkpoints), tune_unet=True))
    assert "detail_tune_s" in head.timings and "detail_fit_s" not in head.timings
    assert head.displacement is not None and np.abs(head.displacement).max() <= 3.0 + 1e-5
    assert head.metrics["pixel_loss_skin_detail"] < head.metrics["pixel_loss_skin_coarse"]


def test_tuning_the_unet_is_checked_before_fitting(checkpoints, tmp_path, grace_hopper):
    with pytest.raises(PhotoheadError, match="hybrid"):
        reconstruct([grace_hopper], ReconstructConfig(mode="fit", tune_unet=True))
    only_coarse = tmp_path / "coarse_only"
    only_coarse.mkdir()
    shutil.copy(checkpoints / "coarse.pt", only_coarse / "coarse.pt")
    with pytest.raises(WeightsNotFoundError, match=r"detail\.pt"):
        reconstruct([grace_hopper], ReconstructConfig(mode="hybrid", tune_unet=True, checkpoints=str(only_coarse)))


def test_loading_checkpoints_does_not_import_dynamo(checkpoints):
    """Checking a checkpoint's architecture builds the network on the meta device without its
    random init (whose meta decomposition imported torch._dynamo, ≈ 1.2 s per process)."""
    import subprocess
    import sys

    code = ("import sys; from backend.predict import load_predictor; "
            f"p = load_predictor({str(checkpoints)!r}, 'cpu'); "
            "assert p.encoder is not None; print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
