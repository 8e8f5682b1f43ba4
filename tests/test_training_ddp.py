"""DDP through torchrun: two gloo CPU processes train two stage-1 steps on a synthetic set."""
from __future__ import annotations

import os
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_torchrun_two_processes_gloo(tmp_path, face_model):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "training.coarse", "--data", "synthetic", "--out", str(out),
        "--data.crop_size=32", "--data.synthetic_count=6", "--data.val_count=2", "--encoder.arch=light",
        "--encoder.width=0.25", "--use_identity=false", "--albedo_k=0", "--loop.steps=2", "--loop.batch_size=4",
        "--loop.num_workers=0", "--loop.ckpt_every=1", "--loop.val_every=0", "--loop.image_every=0",
        "--loop.progress=false", "--loop.device=cpu",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "stage 1 done at step 2" in proc.stdout
    from backend.checkpoint import load_checkpoint

    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["step"] == 2 and ckpt["extra"]["world_size"] == 2
    assert len(ckpt["extra"]["rng"]) == 2  # every rank's RNG, for exact resume
    # ranks seed seed + rank, so their RNG streams differ
    assert not torch.equal(ckpt["extra"]["rng"][0]["torch"], ckpt["extra"]["rng"][1]["torch"])
    assert sorted(p.name for p in out.glob("step_*.pt")) == ["step_0000001.pt", "step_0000002.pt"]
    assert not list(out.glob(".*.tmp"))
