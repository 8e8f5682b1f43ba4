"""``photohead train synth``: rendered faces with known coefficients in the training cache format,
resumable shards, and stage 1's supervised term L_param on them. Tiny sizes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from test_training import _tiny


def test_synth_cache_carries_true_coefficients_and_trains_supervised(tmp_path, face_model):
    from training.coarse import build_task
    from training.data import CachedFaceDataset
    from training.synth import main

    cache = tmp_path / "synth"
    args = ["--cache", str(cache), "--n", "3", "--size", "128", "--data.crop_size=32", "--data.shard_size=2",
            "--data.workers=1", "--data.min_face_px=20", "--seed", "4", "--progress=false"]
    assert main(args) == 0
    ds = CachedFaceDataset(cache)
    assert len(ds) == 3 and len(list(cache.glob("shard_*.json"))) == 2
    item = ds[2]
    assert item["image"].shape == (3, 32, 32) and item["id"].shape == (face_model.n_id,)
    assert item["exp"].shape == (face_model.n_exp,) and 0 <= item["exp"].min() and item["exp"].max() <= 1
    assert item["id"].abs().max() > 0.1 and not torch.equal(ds[0]["id"], ds[1]["id"])
    # the same arguments give the same faces; a finished shard is skipped on a rerun
    before = (cache / "shard_00000.crops.npy").stat().st_mtime_ns
    assert main(args) == 0 and (cache / "shard_00000.crops.npy").stat().st_mtime_ns == before
    (cache / "shard_00001.json").unlink()
    assert main(args) == 0
    assert torch.equal(CachedFaceDataset(cache)[2]["id"], item["id"])
    # stage 1 with --supervised: L_param measured against the true coefficients
    task = build_task(_tiny("unused", supervised=2.0), face_model)
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    res = task.step(task.model, batch, want_images=False)
    assert res.losses["param"].item() == pytest.approx(2.0 * res.metrics["raw_param"].item())
    p = task.decode(task.model(batch["image"])).params
    want = (p["id"] - batch["id"]).pow(2).mean() + (p["exp"] - batch["exp"]).pow(2).mean()
    assert res.metrics["raw_param"].item() == pytest.approx(want.item(), rel=1e-5)
    assert "param" not in build_task(_tiny("unused"), face_model).step(task.model, batch, False).losses
    assert main(["--cache", str(cache), "--n", "0"]) == 2
