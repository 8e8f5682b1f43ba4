"""Issue 29, item 3: training and inference build the same mesh, loss units follow the 224² crop,
gradient clipping, no per-step host sync, run-folder checks before any write, resume warnings,
the --lr shorthand, and docs tables generated from the benchmark JSON."""
from __future__ import annotations

import json
import logging

import pytest
import torch

from test_training import _tiny
from training.config import CoarseConfig, parse_args


# -- expression clamp ---------------------------------------------------------------------------------
def test_clamp_expression_is_the_blendshape_range():
    from backend.nets import EXP_RANGE, clamp_expression

    exp = torch.tensor([[-0.5, 0.25, 1.5]], requires_grad=True)
    out = clamp_expression(exp)
    assert out.tolist() == [[0.0, 0.25, 1.0]] and EXP_RANGE == (0.0, 1.0)
    (out * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert exp.grad.tolist() == [[0.0, 2.0, 0.0]]  # a plain clamp, as predict mode applies it


def test_training_decode_clamps_the_expression_as_predict_does(face_model):
    from training.coarse import build_task

    task = build_task(_tiny("unused"), face_model)
    cfg = task.model.config
    code = torch.zeros(2, cfg.code_dim)
    code[:, cfg.n_id:cfg.n_id + cfg.n_exp] = torch.linspace(-2, 2, cfg.n_exp)
    out = task.decode(code)
    exp = out.params["exp"]
    assert exp.min() == 0 and exp.max() == 1 and out.params["exp_raw"].min() == -2
    torch.testing.assert_close(out.verts, face_model(out.params["id"], exp.clamp(0, 1)))
    # the training default is what benchmarks/results/exp_clamp.json found best on held-out faces
    assert task.exp_clamp == "hard"


# -- L_lm in units of the 224² crop --------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 64])
def test_landmark_loss_is_in_224_crop_pixels_at_any_crop_size(face_model, size):
    from training.coarse import build_task

    task = build_task(_tiny("unused", **{"data.crop_size": size}), face_model)
    images = torch.rand(2, 3, size, size)
    with torch.no_grad():
        predicted = task.decode(task.model(images)).landmarks
    # every landmark 3 px off at 224², i.e. 3·size/224 px in this crop
    batch = {"image": images, "landmarks": predicted + torch.tensor([3.0, 0.0]) * size / 224, "mask": torch.ones(2, size, size)}
    res = task.step(task.model, batch, want_images=False)
    assert res.metrics["raw_landmark"].item() == pytest.approx(9.0, rel=1e-3)
    assert res.metrics["lm_rmse_px224"].item() == pytest.approx(3.0, rel=1e-3)


# -- gradient clipping and host syncs --------------------------------------------------------------------
def test_gradient_clipping_limits_the_update_and_is_recorded(tmp_path, face_model):
    from training.coarse import build_task, run
    from training.data import SyntheticFaceDataset
    from training.loop import seed_everything, train

    ds = SyntheticFaceDataset(face_model, n=4, size=32)
    changes = {}
    for clip in (0.0, 1e-12):
        cfg = _tiny(tmp_path / f"c{clip}", **{"loop.steps": 1, "loop.ckpt_every": 0, "optim.grad_clip": clip})
        seed_everything(0)
        task = build_task(cfg, face_model)
        before = {k: v.clone() for k, v in task.model.state_dict().items()}
        res = train(task, ds, loop=cfg.loop, optim=cfg.optim, out_dir=tmp_path / f"c{clip}")
        after = task.model.state_dict()
        changes[clip] = max((after[k] - before[k]).abs().max().item() for k in before if before[k].is_floating_point())
        assert res.history[0]["grad_norm"] > 1.0  # the norm before clipping is logged
    lr = 1e-3
    assert changes[0.0] == pytest.approx(lr, rel=0.05)  # Adam's first step moves some weight by ≈ lr
    assert changes[1e-12] < 1e-3 * lr  # gradients cut to 1e-12: Adam's eps dominates, no move
    cfg = _tiny(tmp_path / "rec", **{"loop.steps": 1, "loop.ckpt_every": 1, "optim.grad_clip": 5.0})
    run(cfg)
    assert json.loads((tmp_path / "rec" / "config.json").read_text())["optim"]["grad_clip"] == 5.0


def test_logged_values_are_read_once_per_log_interval(tmp_path, face_model, monkeypatch):
    import training.loop as loop_mod
    from training.coarse import run

    calls = []
    real = loop_mod._read_pending
    monkeypatch.setattr(loop_mod, "_read_pending", lambda pending, env: calls.append(len(pending)) or real(pending, env))
    res = run(_tiny(tmp_path / "r", **{"loop.steps": 6, "loop.log_every": 3, "loop.ckpt_every": 0, "loop.image_every": 0}))
    assert calls == [3, 3]  # one device→host read per 3 steps, not one per step
    assert [len(h) > 3 for h in res.history] == [True] * 6 and res.history[0]["lr"] == pytest.approx(1e-3)


# -- run folder and resume ----------------------------------------------------------------------------------
def test_refused_fresh_launch_writes_nothing_and_exits_2(tmp_path, face_model, capsys):
    from training.coarse import main, run
    from training.loop import RunFolderError

    out = tmp_path / "run"
    run(_tiny(out, **{"loop.steps": 1, "loop.ckpt_every": 1}))
    config_before = (out / "config.json").read_text()
    files_before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(RunFolderError, match="--resume=auto"):
        run(_tiny(out, **{"loop.steps": 5}))
    assert (out / "config.json").read_text() == config_before
    assert sorted(p.name for p in out.rglob("*")) == files_before
    assert main(["--out", str(out), "--data", "synthetic", "--loop.device=cpu"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    with pytest.raises(RunFolderError, match="not found"):
        run(_tiny(tmp_path / "other", resume=str(tmp_path / "missing.pt")))
    assert not (tmp_path / "other").exists()


def test_resume_warns_about_settings_the_checkpoint_replaces(tmp_path, face_model, caplog):
    from training.coarse import run

    out = tmp_path / "run"
    run(_tiny(out, **{"loop.steps": 2, "loop.ckpt_every": 2}))
    with caplog.at_level(logging.WARNING, logger="photohead.training"):
        res = run(_tiny(out, **{"loop.steps": 3, "resume": "auto", "optim.lr": 5e-2, "loop.ckpt_every": 3}))
    text = caplog.text
    assert "optim.lr=0.05 → 0.001" in text  # replaced by the checkpoint's, and said so
    assert "loop.steps: 2 → 3" in text  # changed and applied, and said so
    assert res.history[0]["lr"] == pytest.approx(1e-3)
    assert json.loads((out / "config.json").read_text())["optim"]["lr"] == pytest.approx(1e-3)


def test_lr_shorthand_from_the_help_example():
    assert parse_args(CoarseConfig(), ["--lr=1e-4", "--batch_size", "32"]).optim.lr == 1e-4
    assert parse_args(CoarseConfig(), ["--lr", "3e-4"]).optim.lr == 3e-4
    assert parse_args(CoarseConfig(), ["--batch_size", "32"]).loop.batch_size == 32


# -- docs tables -------------------------------------------------------------------------------------------
def test_training_doc_tables_are_generated_from_the_json(tmp_path):
    from benchmarks.doc_tables import ROOT, main, render, update

    results = ROOT / "benchmarks" / "results"
    assert main(["--check"]) == 0, "docs/training.md is out of date: run python -m benchmarks.doc_tables"
    doc = json.loads((results / "predict.json").read_text())
    block = render("hybrid_vs_fit", results)
    for c in doc["convergence"]:  # the numbers come from the file, rounded to 3 digits
        assert f"{c['hybrid']['final_loss']:.3g}" in block and f"{c['fit']['final_loss']:.3g}" in block
    gh = next(c for c in doc["convergence"] if c["photo"] == "grace_hopper")
    assert gh["hybrid"]["final_loss"] > gh["fit"]["final_loss"] and "ends higher on grace_hopper" in block
    text = "a\n<!-- generated:predict_time:start -->\nstale\n<!-- generated:predict_time:end -->\nb\n"
    once = update(text, results)
    assert "stale" not in once and update(once, results) == once and once.startswith("a\n") and once.endswith("b\n")
    missing = update(text, tmp_path)
    assert "not measured yet" in missing
