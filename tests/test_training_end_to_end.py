"""Issue 29: ``prepare`` → ``coarse`` → ``detail`` → predict mode on a few dev photos, on the CPU at a
tiny size: the ``photohead train`` command lines of docs/training.md ("A small run end to end"),
read from the doc and run as written, with the sizes cut by overrides appended after them (a
later ``--key`` wins)."""
from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--loop.progress=false", "--loop.batch_size=2", "--data.val_count=2", "--loop.log_every=1",
        "--loop.steps=2", "--loop.ckpt_every=2", "--loop.val_every=2"]
#: per stage: what the test appends to the documented command (6 photos, 2 steps, toy widths)
SHRINK = {"prepare": ["--data.shard_size=3", "--data.workers=1", "--progress=false"],
          "coarse": [*TINY, "--encoder.width=0.25", "--albedo_uv=16"],
          "detail": [*TINY, "--uv_size=32", "--ngf=8"]}


def documented_commands() -> list[list[str]]:
    """The ``photohead train ...`` commands of the doc's small end-to-end run, in order, with
    ``$SMALL`` expanded and continuation lines joined."""
    text = (ROOT / "docs" / "training.md").read_text()
    block = text.split("## A small run end to end", 1)[1].split("\n## ", 1)[0]
    cmds, cur = [], ""
    for line in block.splitlines():
        if not line.startswith("    "):
            continue
        cur += line.strip().rstrip("\\") + " "
        if not line.rstrip().endswith("\\"):
            cmds.append(cur.strip())
            cur = ""
    small = next(shlex.split(c.partition("=")[2])[0] for c in cmds if c.startswith("SMALL="))
    return [shlex.split(c.replace("$SMALL", small)) for c in cmds if c.startswith("photohead train ")]


def test_the_documented_sequence_is_prepare_coarse_detail():
    stages = [c[2] for c in documented_commands()]
    assert stages == ["prepare", "coarse", "detail"]


def test_prepare_coarse_detail_predict_on_dev_photos(tmp_path, faces_dev, face_model):
    pytest.importorskip("dlib")
    from backend.checkpoint import load_checkpoint
    from backend.reconstruct import ReconstructConfig, reconstruct
    from training import coarse, detail, prepare

    e2e = tmp_path / "e2e"
    photos = e2e / "photos"  # 6 dev photos, read in place (the doc links 40)
    photos.mkdir(parents=True)
    for f in sorted((faces_dev / "images").glob("*.jpg"))[:6]:
        (photos / f.name).symlink_to(f)
    mains = {"prepare": prepare.main, "coarse": coarse.main, "detail": detail.main}
    for cmd in documented_commands():
        stage = cmd[2]
        argv = [a.replace("runs/e2e", str(e2e)) for a in cmd[3:]] + SHRINK[stage]
        assert mains[stage](argv) == 0, " ".join(cmd)
    cache = e2e / "cache64"
    assert len(list(cache.glob("shard_*.json"))) == 2 and (cache / "rejects.json").exists()
    card = load_checkpoint(e2e / "coarse" / "last.pt")["model_card"]
    assert card["data"]["kept"] >= 5 and card["steps"] == 2
    assert load_checkpoint(e2e / "detail" / "last.pt")["model_card"]["steps"] == 2
    ckpt = e2e / "ckpt"
    ckpt.mkdir()
    shutil.copy(e2e / "coarse" / "last.pt", ckpt / "coarse.pt")
    shutil.copy(e2e / "detail" / "last.pt", ckpt / "detail.pt")
    photo = sorted(photos.glob("*.jpg"))[0]
    head = reconstruct([str(photo)], ReconstructConfig(mode="predict", checkpoints=str(ckpt), quality="draft"))
    assert head.vertices.shape == (face_model.n_verts, 3) and np.isfinite(head.vertices).all()
    assert head.displacement is not None and np.abs(head.displacement).max() > 0
