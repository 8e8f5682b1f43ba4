"""Training framework on a tiny synthetic set: config overrides, checkpoints, loss going down,
exact resume, the data cache. Light encoder, 64² crops, a handful of steps."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from training.config import CoarseConfig, ConfigError, DetailConfig, apply_overrides, from_dict, parse_args, to_dict


def _tiny(out, **extra):
    base = {
        "out": str(out), "data.data": "synthetic", "data.crop_size": 32, "data.synthetic_count": 10, "data.val_count": 2,
        "encoder.arch": "light", "encoder.width": 0.25, "use_identity": False, "albedo_k": 4, "albedo_uv": 16,
        "loop.batch_size": 4, "loop.num_workers": 0, "loop.log_every": 1, "loop.image_every": 2, "loop.val_every": 0,
        "loop.ckpt_every": 3, "loop.progress": False, "optim.lr": 1e-3, "loop.device": "cpu",
    }
    base.update(extra)
    return apply_overrides(CoarseConfig(), base)


# -- config -----------------------------------------------------------------------------------------
def test_config_defaults_are_the_papers():
    c, d = CoarseConfig(), DetailConfig()
    assert (c.optim.lr, c.optim.lr_decay, c.optim.lr_decay_every, c.loop.steps, c.loop.batch_size) == (1e-4, 0.9, 5000, 200_000, 10)
    assert (c.loss.pixel, c.loss.landmark, c.loss.identity, c.loss.reg) == (1.3, 1.0, 1.5, 20.0)
    assert (c.loss.w_id, c.loss.w_exp, c.loss.w_tex) == (1.3, 1.0, 1.3)
    assert (d.optim.lr, d.optim.lr_decay, d.optim.lr_decay_every, d.loop.steps, d.loop.batch_size) == (2e-3, 0.98, 5000, 20_000, 10)
    assert (d.loss.pixel, d.loss.smooth, d.loss.disp, d.loss.w_sn, d.loss.w_sz, d.loss.w_dn, d.loss.w_dz) == (1.0, 10, 10, 20, 10, 0.5, 0.01)
    assert c.data.crop_size == 224 and d.uv_size == 256 and c.data.val_count == 1000 and c.encoder.arch == "vgg16"


def test_config_overrides_toml_then_cli_typed(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('out = "runs/x"\n[optim]\nlr = 3e-4\n[loop]\nsteps = 7\namp = false\n')
    cfg = parse_args(CoarseConfig(), ["--config", str(toml), "--data", "/d", "--loop.steps=9", "--loss.pixel=2",
                                      "--optim.betas=[0.5, 0.9]", "--encoder.arch", "light"])
    assert cfg.out == "runs/x" and cfg.optim.lr == 3e-4 and cfg.loop.steps == 9 and cfg.loop.amp is False
    assert cfg.data.data == "/d" and cfg.loss.pixel == 2.0 and cfg.optim.betas == (0.5, 0.9) and cfg.encoder.arch == "light"
    assert CoarseConfig().loop.steps == 200_000  # defaults untouched
    for bad in (["--nope=1"], ["--loop.steps=1.5"], ["--loop.amp=maybe"], ["--encoder.arch=resnet"], ["--optim=1"],
                ["--optim.betas=[1]"], ["positional"]):
        with pytest.raises(ConfigError):
            parse_args(CoarseConfig(), bad)
    (tmp_path / "bad.toml").write_text("[loop]\nstepz = 3\n")
    with pytest.raises(ConfigError, match="loop.stepz"):
        parse_args(CoarseConfig(), ["--config", str(tmp_path / "bad.toml")])
    assert from_dict(CoarseConfig, to_dict(cfg)) == cfg
    assert json.loads(json.dumps(to_dict(DetailConfig())))["loss"]["w_dz"] == 0.01


# -- checkpoints -------------------------------------------------------------------------------------
def test_checkpoint_round_trip_weights_only(tmp_path):
    from backend.checkpoint import (CheckpointFormatError, load_checkpoint, load_weights, make_model_card,
                                    restore_training_state, save_checkpoint)
    from backend.errors import WeightsNotFoundError
    from backend.nets import EncoderConfig, FaceEncoder, build_encoder

    torch.manual_seed(0)
    enc = FaceEncoder(EncoderConfig(arch="light", in_size=32, n_id=3, n_exp=2, width=0.25))
    opt = torch.optim.Adam(enc.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    enc(torch.rand(2, 3, 32, 32)).sum().backward()
    opt.step(); sched.step(); sched.step()
    card = make_model_card(steps=2, config={"a": (1, 2)}, uv_size=16, data_summary={"images": 3}, stage="coarse")
    path = save_checkpoint(tmp_path / "c.pt", model=enc, optimizer=opt, scheduler=sched, step=2, config={"lr": 0.1},
                           model_card=card, extra={"rng": [torch.get_rng_state()], "pos": {"epoch": 1}})
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind
    raw = torch.load(path, weights_only=True)  # plain types only
    assert raw["format_version"] == 1 and raw["model_card"]["config"]["a"] == [1, 2]
    ckpt = load_checkpoint(path)
    fresh = build_encoder(ckpt["arch"])  # architecture rebuilt from the checkpoint
    load_weights(ckpt, fresh)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(fresh(x), enc(x))
    opt2 = torch.optim.Adam(fresh.parameters(), lr=0.1)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 2, 0.5)
    assert restore_training_state(ckpt, model=fresh, optimizer=opt2, scheduler=sched2) == 2
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.05)
    with pytest.raises(WeightsNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointFormatError):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointFormatError):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "d.pt", model=enc, config={"bad": object()})


# -- the loop --------------------------------------------------------------------------------------
def test_step_sampler_is_a_function_of_the_step():
    from training.loop import StepBatchSampler

    full = StepBatchSampler(10, 4, 0, 1, seed=3, start_step=0, total_steps=6)
    later = StepBatchSampler(10, 4, 0, 1, seed=3, start_step=4, total_steps=6)
    batches = list(full)
    assert list(later) == batches[4:]
    assert sorted(sum(batches[:2], []) + batches[2][:2]) == list(range(10))  # epoch 0 is a permutation
    ranks = [StepBatchSampler(10, 4, r, 2, seed=3, start_step=0, total_steps=6).indices(1) for r in range(2)]
    assert ranks[0] + ranks[1] == batches[1]
    assert full.position(3) == {"epoch": 1, "offset": 2, "items_seen": 12, "n": 10}
    with pytest.raises(ValueError):
        StepBatchSampler(10, 3, 0, 2, 0, 0, 1)


def test_coarse_steps_reduce_loss(tmp_path, face_model):
    from training.coarse import run

    # one fixed batch (4 faces, batch 4): a few Adam steps must fit it better
    cfg = _tiny(tmp_path / "run", **{"data.synthetic_count": 5, "data.val_count": 1, "loop.steps": 8, "loop.ckpt_every": 0,
                                     "optim.lr": 2e-3})
    hist = run(cfg).history
    totals = [h["total"] for h in hist]
    assert len(totals) == 8 and all(np.isfinite(totals))
    assert {"landmark", "reg", "pixel", "total", "lr"} <= set(hist[0])
    assert np.mean(totals[-2:]) < 0.8 * totals[0]
    assert hist[-1]["raw_landmark"] < hist[0]["raw_landmark"]
    assert (tmp_path / "run" / "config.json").exists()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["loop"]["steps"] == 8


def test_coarse_step_with_identity_loss(face_model):
    from backend.errors import PhotoheadError
    from training.coarse import build_task
    from training.data import SyntheticFaceDataset

    cfg = apply_overrides(_tiny("unused"), {"use_identity": True, "data.crop_size": 64})
    try:
        task = build_task(cfg, face_model).to(torch.device("cpu"))
    except PhotoheadError as exc:  # identity weights (face-recognition-models) not installed
        pytest.skip(str(exc))
    ds = SyntheticFaceDataset(face_model, n=2, size=64, seed=1)
    res = task.step(task.model, torch.utils.data.default_collate([ds[0], ds[1]]), want_images=True)
    assert set(res.losses) == {"pixel", "landmark", "identity", "reg"}
    assert res.losses["identity"].item() == pytest.approx(1.5 * res.metrics["raw_identity"].item())
    assert 0 < res.metrics["raw_identity"] < 4  # squared distance of unit-scale descriptors
    sum(res.losses.values()).backward()
    assert all(p.grad is None for p in task.identity_net.parameters())  # frozen
    assert task.model.head.weight.grad.abs().sum() > 0
    assert res.images["overlay"].shape == (2, 3, 64, 64)


def test_non_finite_loss_raises_with_loss_dict(tmp_path, face_model):
    from training.coarse import build_task
    from training.data import SyntheticFaceDataset
    from training.loop import train

    cfg = _tiny(tmp_path / "nan", **{"loop.steps": 2, "loop.ckpt_every": 0})
    task = build_task(cfg, face_model)
    ds = SyntheticFaceDataset(face_model, n=4, size=32)
    ds.landmarks[:] = float("nan")
    with pytest.raises(FloatingPointError, match="landmark=nan"):
        train(task, ds, loop=cfg.loop, optim=cfg.optim, out_dir=tmp_path / "nan")


def test_make_grid_tiles_named_batches():
    from training.loop import make_grid

    grid = make_grid({"a": torch.ones(3, 3, 8, 8), "b": torch.zeros(2, 1, 16, 16)}, max_items=2)
    assert grid.shape == (3, 16, 16)
    assert grid[:, :8].min() == 1 and grid[:, 8:].max() == 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_mixed_precision_steps(tmp_path, face_model):
    from backend.checkpoint import load_checkpoint
    from training.coarse import run

    common = {"data.synthetic_count": 5, "data.val_count": 1, "loop.steps": 6, "loop.ckpt_every": 6,
              "loop.device": "cuda", "loop.amp": True, "optim.lr": 2e-3}
    hist = run(_tiny(tmp_path / "bf16", **common)).history  # bfloat16 autocast, no loss scaling
    totals = [h["total"] for h in hist]
    assert all(np.isfinite(totals)) and np.mean(totals[-2:]) < 0.9 * totals[0]
    assert load_checkpoint(tmp_path / "bf16" / "last.pt")["scaler"] is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(_tiny(tmp_path / "fp16", **common, **{"loop.amp_dtype": "float16"}))
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)]  # skipped fp16 steps skip the schedule
    ckpt = load_checkpoint(tmp_path / "fp16" / "last.pt")
    assert ckpt["scaler"] is not None and 0 < ckpt["scaler"]["scale"] <= 2.0**16  # GradScaler state kept for resume
