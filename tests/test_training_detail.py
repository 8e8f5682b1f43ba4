"""Stage 2 on a tiny synthetic set: frozen stage 1, U-Net trained with L_fine."""
from __future__ import annotations

import pytest
import torch

from training.config import DetailConfig, apply_overrides

from test_training import _tiny


@pytest.fixture(scope="module")
def coarse_ckpt(tmp_path_factory, face_model):
    from training.coarse import run

    out = tmp_path_factory.mktemp("coarse")
    run(_tiny(out, **{"loop.steps": 1, "loop.ckpt_every": 1, "loop.image_every": 0}))
    return out / "last.pt"


def _detail(out, coarse, **extra):
    base = {
        "out": str(out), "coarse": str(coarse), "data.data": "synthetic", "data.synthetic_count": 6, "data.val_count": 2,
        "uv_size": 32, "ngf": 8, "loop.batch_size": 2, "loop.num_workers": 0, "loop.log_every": 1, "loop.image_every": 2,
        "loop.val_every": 2, "loop.val_batches": 1, "loop.ckpt_every": 2, "loop.progress": False, "loop.device": "cpu",
    }
    base.update(extra)
    return apply_overrides(DetailConfig(), base)


def test_detail_trains_unet_with_stage1_frozen(tmp_path, coarse_ckpt, face_model):
    from backend.checkpoint import load_checkpoint
    from backend.nets import build_unet
    from training.detail import run

    before = load_checkpoint(coarse_ckpt)["model"]
    res = run(_detail(tmp_path / "d", coarse_ckpt, **{"loop.steps": 2}))
    assert res.step == 2 and len(res.history) == 2
    h = res.history[0]
    assert {"pixel", "smooth", "disp", "total"} <= set(h) and all(torch.isfinite(torch.tensor(v)) for v in h.values())
    assert h["disp_abs_mm"] < 0.05  # the U-Net starts at ~zero displacement
    assert res.history[1]["disp_abs_mm"] > h["disp_abs_mm"]  # ... and moves
    assert res.val_history and res.val_history[0][0] == 2
    ckpt = load_checkpoint(tmp_path / "d" / "last.pt")
    unet = build_unet(ckpt["arch"])
    unet.load_state_dict(ckpt["model"])
    assert unet.config.size == 32 and ckpt["model_card"]["stage"] == "detail" and ckpt["model_card"]["uv_size"] == 32
    assert ckpt["config"]["optim"]["lr"] == 2e-3
    # stage 1 is untouched (its checkpoint is read, never written)
    after = load_checkpoint(coarse_ckpt)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_detail_task_gradients_reach_only_the_unet(coarse_ckpt, face_model):
    from training.data import SyntheticFaceDataset
    from training.detail import build_task

    task = build_task(_detail("unused", coarse_ckpt), face_model).to(torch.device("cpu"))
    ds = SyntheticFaceDataset(face_model, n=2, size=task.coarse.model.config.in_size, seed=3)
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    res = task.step(task.model, batch, want_images=True)
    sum(res.losses.values()).backward()
    assert all(p.grad is None for p in task.coarse.model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.model.parameters())
    assert res.images["displacement"].shape == (2, 1, 32, 32) and res.images["detailed"].shape[1] == 3


def test_detail_needs_a_matching_stage1(tmp_path, coarse_ckpt, face_model):
    from training.config import ConfigError
    from training.detail import build_task

    with pytest.raises(ConfigError, match="--coarse"):
        build_task(_detail(tmp_path, ""), face_model)
    ckpt = torch.load(coarse_ckpt, weights_only=True)
    ckpt["model_card"]["face_model"]["n_verts"] = 5
    torch.save(ckpt, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="face model"):
        build_task(_detail(tmp_path, tmp_path / "other.pt"), face_model)
