"""Exact resume: an interrupted + resumed run reproduces the uninterrupted loss sequence bit for bit."""
from __future__ import annotations

import pytest
import torch

from test_training import _tiny


def test_resume_reproduces_uninterrupted_run_exactly(tmp_path, face_model):
    from backend.checkpoint import load_checkpoint
    from training.coarse import run
    from training.loop import RunFolderError

    # 10 synthetic faces (8 train), batch 4: the resumed half crosses an epoch boundary
    tiny = {"loop.ckpt_every": 2, "loop.image_every": 0, "loop.val_every": 1, "loop.val_batches": 1}
    full = run(_tiny(tmp_path / "a", **tiny, **{"loop.steps": 4})).history
    first = run(_tiny(tmp_path / "b", **tiny, **{"loop.steps": 2})).history
    assert [h["total"] for h in first] == [h["total"] for h in full[:2]]
    with pytest.raises(RunFolderError):  # neither resume nor a new folder
        run(_tiny(tmp_path / "b", **tiny, **{"loop.steps": 4}))
    rest = run(_tiny(tmp_path / "b", **tiny, **{"loop.steps": 4, "resume": "auto"}))
    assert rest.step == 4 and len(rest.history) == 2
    assert [h["total"] for h in rest.history] == [h["total"] for h in full[2:]]  # bit-exact
    ckpt = load_checkpoint(tmp_path / "b" / "last.pt")
    assert ckpt["step"] == 4 and ckpt["extra"]["data_position"] == {"epoch": 2, "offset": 0, "items_seen": 16, "n": 8}
    assert ckpt["model_card"]["face_model"]["n_verts"] == face_model.n_verts and ckpt["model_card"]["steps"] == 4
    assert ckpt["arch"]["arch"] == "light" and ckpt["config"]["loop"]["steps"] == 4
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    assert all(torch.equal(a["model"][k], ckpt["model"][k]) for k in a["model"])
    # init = weights only: a new run at step 0 starting from b's weights
    init = run(_tiny(tmp_path / "c", **tiny, **{"loop.steps": 1, "init": str(tmp_path / "b" / "last.pt")}))
    assert init.step == 1 and init.history[0]["lr"] == pytest.approx(1e-3)


@pytest.mark.slow
def test_dataloader_workers_do_not_change_the_run(tmp_path, face_model):
    from training.coarse import run

    tiny = {"loop.steps": 3, "loop.ckpt_every": 0, "loop.image_every": 0}
    inline = run(_tiny(tmp_path / "w0", **tiny, **{"loop.num_workers": 0})).history
    workers = run(_tiny(tmp_path / "w2", **tiny, **{"loop.num_workers": 2})).history
    assert [h["total"] for h in inline] == [h["total"] for h in workers]
