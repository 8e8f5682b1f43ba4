"""Issue 29: ``prepare`` → ``coarse`` → ``detail`` → predict mode on a few dev photos, on the CPU at a
tiny size, through the same command lines as docs/training.md ("A small run end to end")."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--loop.device=cpu", "--loop.num_workers=0", "--loop.progress=false", "--loop.image_every=0",
        "--loop.batch_size=2", "--data.val_count=2", "--loop.log_every=1"]


def test_prepare_coarse_detail_predict_on_dev_photos(tmp_path, faces_dev, face_model):
    pytest.importorskip("dlib")
    from backend.checkpoint import load_checkpoint
    from backend.reconstruct import ReconstructConfig, reconstruct
    from training import coarse, detail, prepare

    photos = tmp_path / "photos"  # 6 dev photos, read in place
    photos.mkdir()
    for f in sorted((faces_dev / "images").glob("*.jpg"))[:6]:
        (photos / f.name).symlink_to(f)
    cache, runs = tmp_path / "cache64", tmp_path / "runs"
    assert prepare.main(["--data", str(photos), "--cache", str(cache), "--data.crop_size=64", "--data.workers=1",
                         "--data.shard_size=3", "--progress=false"]) == 0
    assert len(list(cache.glob("shard_*.json"))) == 2 and (cache / "rejects.json").exists()
    assert coarse.main(["--cache", str(cache), "--out", str(runs / "coarse"), "--data.crop_size=64",
                        "--encoder.arch=light", "--encoder.width=0.25", "--use_identity=false", "--albedo_k=4",
                        "--albedo_uv=16", "--loop.steps=2", "--loop.ckpt_every=2", "--loop.val_every=2", *TINY]) == 0
    assert detail.main(["--cache", str(cache), "--coarse", str(runs / "coarse" / "last.pt"), "--out",
                        str(runs / "detail"), "--uv_size=32", "--ngf=8", "--loop.steps=2", "--loop.ckpt_every=2",
                        *TINY]) == 0
    card = load_checkpoint(runs / "coarse" / "last.pt")["model_card"]
    assert card["data"]["kept"] >= 5 and card["steps"] == 2
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    shutil.copy(runs / "coarse" / "last.pt", ckpt / "coarse.pt")
    shutil.copy(runs / "detail" / "last.pt", ckpt / "detail.pt")
    photo = sorted(photos.glob("*.jpg"))[0]
    head = reconstruct([str(photo)], ReconstructConfig(mode="predict", checkpoints=str(ckpt), quality="draft"))
    assert head.vertices.shape == (face_model.n_verts, 3) and np.isfinite(head.vertices).all()
    assert head.displacement is not None and np.abs(head.displacement).max() > 0
