"""Fault injection for the output writer and the trainer (issue 26): a crash at each write step
leaves the previous result or the new one, never a mix; a training run killed with SIGKILL
before, during or after a checkpoint write resumes to the same bits as a run never killed.

The writer is crashed by an exception (every rename, a disk-full error half-way through each
file, the final swap), by SIGKILL in a forked child at each of the same steps, and by a real
full disk (a 1 MB tmpfs, where mounting is permitted).
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend import atomic_folder, export, io_utils
from backend.head import Head, ViewResult

ROOT = Path(__file__).resolve().parents[1]


# -- a small head --------------------------------------------------------------------------------------
def tiny_head(seed: int, albedo_side: int = 32) -> Head:
    """A 100-vertex head whose every output differs with ``seed`` (a few kB in all)."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(-75, 75, 10), np.linspace(-90, 90, 10))
    neutral = np.stack([x.ravel(), y.ravel(), 30 * np.cos(x.ravel() / 60)], 1).astype(np.float32)
    faces = np.array([[r * 10 + c, r * 10 + c + 1, (r + 1) * 10 + c] for r in range(9) for c in range(9)], np.int32)
    uv = ((neutral[:, :2] - neutral[:, :2].min(0)) / np.ptp(neutral[:, :2], 0)).astype(np.float32)
    basis = rng.normal(size=(2, 100, 3)).astype(np.float32)
    exp = rng.uniform(0, 1, 2).astype(np.float32)
    view = ViewResult(
        name="photo.jpg", image_size=(64, 64), pose=rng.normal(size=7).astype(np.float32),
        sh=rng.normal(size=27).astype(np.float32), exp=exp, landmarks68=rng.uniform(0, 64, (68, 2)),
        detected68=rng.uniform(0, 64, (68, 2)),
    )
    return Head(
        model_name="tiny", vertices=neutral + np.einsum("k,kvc->vc", exp, basis), neutral=neutral, faces=faces,
        uv=uv, faces_uv=faces, id_coeffs=rng.normal(size=3).astype(np.float32), exp_coeffs=exp,
        exp_names=["a", "b"], exp_basis=basis, uv_tiles=1,
        albedo=rng.uniform(0, 1, (albedo_side, albedo_side, 3)).astype(np.float32),
        normal_map=rng.uniform(0, 1, (16, 16, 3)).astype(np.float32), views=[view], timings={"total_s": 1.0},
    )


def state(folder: Path) -> dict[str, object]:
    """A folder's content: bytes per file; head.npz by its vertices (its zip entries carry the write time)."""
    out: dict[str, object] = {}
    for p in sorted(folder.iterdir()):
        out[p.name] = export.load_head(p).vertices.tobytes() if p.name == "head.npz" else p.read_bytes()
    return out


def previews(seed: int) -> dict[str, np.ndarray]:
    return {"preview": np.full((8, 8, 3), seed * 40, np.uint8), "preview_view1": np.full((8, 8, 3), seed, np.uint8)}


@pytest.fixture
def old_and_new(tmp_path):
    """An earlier result (with the user's notes.txt beside its outputs and a preview_view1.png the
    new head does not have) and what the folder must hold after the new head is written."""
    ref = tmp_path / "ref"
    export.write_outputs(tiny_head(2), ref, previews={"preview": previews(2)["preview"]})
    out = tmp_path / "out"
    export.write_outputs(tiny_head(1), out, previews=previews(1))
    (out / "notes.txt").write_text("the user's own notes")
    new = {**state(ref), "notes.txt": b"the user's own notes"}
    return out, state(out), new


def _steps(monkeypatch) -> list[str]:
    """The write steps of a successful write_outputs: every file's rename and the final swap."""
    seen: list[str] = []
    real_replace, real_exchange = os.replace, atomic_folder.exchange

    def replace(a, b):
        seen.append(f"rename {Path(b).name}")
        return real_replace(a, b)

    def exchange(a, b):
        seen.append("swap folders")
        return real_exchange(a, b)

    monkeypatch.setattr(io_utils.os, "replace", replace)
    monkeypatch.setattr(atomic_folder, "exchange", exchange)
    return seen


def test_writer_exception_at_each_step_leaves_the_old_result(old_and_new, tmp_path, monkeypatch):
    out, old, new = old_and_new
    with monkeypatch.context() as m:  # count the steps on a throw-away folder
        seen = _steps(m)
        export.write_outputs(tiny_head(2), tmp_path / "count", previews={"preview": previews(2)["preview"]})
    assert len(seen) >= 9 and seen[-1] == "rename count"  # a new folder: one rename at the end
    real_replace, real_exchange = os.replace, atomic_folder.exchange
    for k in range(len(seen)):  # the k-th step fails (the last one: the swap of the existing folder)
        calls = [0]

        def maybe_fail(fn):
            def wrapped(a, b):
                calls[0] += 1
                if calls[0] == k + 1:
                    raise OSError(errno.EIO, "injected failure")
                return fn(a, b)
            return wrapped

        with monkeypatch.context() as m:
            m.setattr(io_utils.os, "replace", maybe_fail(real_replace))
            m.setattr(atomic_folder, "exchange", maybe_fail(real_exchange))
            with pytest.raises(export.ExportError, match="injected failure"):
                export.write_outputs(tiny_head(2), out, previews={"preview": previews(2)["preview"]})
        assert state(out) == old, f"step {k}: {seen[k]}"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["count", "out", "ref"]  # no temporary leftovers
    export.write_outputs(tiny_head(2), out, previews={"preview": previews(2)["preview"]})
    assert state(out) == new  # stale preview_view1.png retired, notes.txt kept


def test_user_files_and_folders_in_a_result_folder_are_kept(tmp_path):
    """The user's file (hard-linked before the swap) and sub-folder (moved after it) stay; the
    earlier run's outputs that this one does not write are retired with the old folder."""
    out = tmp_path / "out"
    export.write_outputs(tiny_head(1), out, previews=previews(1))
    (out / "mine").mkdir()
    (out / "mine" / "sketch.txt").write_text("keep me")
    (out / "notes.txt").write_text("and me")
    export.write_outputs(tiny_head(2), out, previews={"preview": previews(2)["preview"]})
    assert (out / "mine" / "sketch.txt").read_text() == "keep me" and (out / "notes.txt").read_text() == "and me"
    assert not (out / "preview_view1.png").exists() and export.load_head(out / "head.npz").model_name == "tiny"
    assert np.array_equal(export.load_head(out / "head.npz").vertices, tiny_head(2).vertices)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_without_an_atomic_swap_the_old_folder_is_renamed_aside(tmp_path, monkeypatch):
    """Where renameat2(RENAME_EXCHANGE) is missing: two renames, same result, nothing left over."""
    out = tmp_path / "out"
    export.write_outputs(tiny_head(1), out, previews=previews(1))
    (out / "notes.txt").write_text("keep")
    monkeypatch.setattr(atomic_folder, "exchange", lambda a, b: False)
    export.write_outputs(tiny_head(2), out)
    assert np.array_equal(export.load_head(out / "head.npz").vertices, tiny_head(2).vertices)
    assert (out / "notes.txt").read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_writer_refuses_an_empty_folder_name(tmp_path, monkeypatch):
    """``write_outputs(head, "")`` would have written into the current folder."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(export.ExportError, match="name is empty"):
        export.write_outputs(tiny_head(1), "")
    assert list(tmp_path.iterdir()) == []


def test_writer_disk_full_half_way_through_each_file(old_and_new, tmp_path, monkeypatch):
    """ENOSPC after half of each file's bytes (the temporary file), one file at a time."""
    out, old, new = old_and_new
    real = io_utils.atomic_write_bytes
    names: list[str] = []

    def counting(path, data):
        names.append(Path(path).name)
        return real(path, data)

    with monkeypatch.context() as m:
        m.setattr(export, "atomic_write_bytes", counting)
        m.setattr(io_utils, "atomic_write_bytes", counting)  # atomic_write_text's
        export.write_outputs(tiny_head(2), tmp_path / "count", previews={"preview": previews(2)["preview"]})
    for k in range(len(names)):
        calls = [0]

        def half_then_full(path, data):
            calls[0] += 1
            if calls[0] == k + 1:
                with io_utils.atomic_path(path) as tmp:
                    tmp.write_bytes(data[: len(data) // 2])
                    raise OSError(errno.ENOSPC, "No space left on device")
            return real(path, data)

        with monkeypatch.context() as m:
            m.setattr(export, "atomic_write_bytes", half_then_full)
            m.setattr(io_utils, "atomic_write_bytes", half_then_full)
            with pytest.raises(export.ExportError, match="No space left"):
                export.write_outputs(tiny_head(2), out, previews={"preview": previews(2)["preview"]})
        assert state(out) == old, names[k]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["count", "out", "ref"]
    assert {"albedo.png", "head.obj", "head.glb", "params.json", "preview.png"} <= set(names)


def test_writer_killed_at_each_step(old_and_new, tmp_path, monkeypatch):
    """SIGKILL (no cleanup, no rollback) in a forked child at each step: old or new, never a mix.
    A killed run leaves its hidden temporary folder (.out.*.tmp) beside the result."""
    out, old, new = old_and_new
    with monkeypatch.context() as m:
        seen = _steps(m)
        export.write_outputs(tiny_head(2), tmp_path / "count", previews={"preview": previews(2)["preview"]})
    outcomes = []
    for k in range(len(seen) + 1):  # k = len(seen): killed right after the swap
        pid = os.fork()
        if pid == 0:  # the child: write, dying at step k
            calls = [0]
            real_replace, real_exchange = os.replace, atomic_folder.exchange

            def die_at(fn):
                def wrapped(a, b):
                    calls[0] += 1
                    if calls[0] == k + 1:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return fn(a, b)
                return wrapped

            os.replace = die_at(real_replace)
            atomic_folder.exchange = die_at(real_exchange)
            try:
                export.write_outputs(tiny_head(2), out, previews={"preview": previews(2)["preview"]})
                if k == len(seen):
                    os.kill(os.getpid(), signal.SIGKILL)
            finally:
                os._exit(3)  # never back into pytest
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        now = state(out)
        assert now in (old, new), f"killed at step {k}: a mix"
        outcomes.append("new" if now == new else "old")
        if now == new:
            old = new
    assert outcomes[: len(seen) - 1] == ["old"] * (len(seen) - 1) and outcomes[-1] == "new"


@pytest.fixture
def tmpfs_1mb(tmp_path):
    where = tmp_path / "mnt"
    where.mkdir()
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                            capture_output=True).returncode == 0
    except OSError:
        ok = False
    if not ok:
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_writer_on_a_full_1mb_tmpfs(tmpfs_1mb):
    """A real ENOSPC: the earlier result fits on the 1 MB disk, the new one (a 1024² noise albedo,
    ~3 MB as PNG) does not; the earlier result stays and every byte of the attempt is freed."""
    out = tmpfs_1mb / "out"
    export.write_outputs(tiny_head(1), out, previews=previews(1))
    before, free = state(out), os.statvfs(tmpfs_1mb).f_bfree
    with pytest.raises(export.ExportError, match="earlier result there is unchanged") as info:
        export.write_outputs(tiny_head(2, albedo_side=1024), out)
    assert info.value.__cause__.errno == errno.ENOSPC and "\n" not in str(info.value)
    assert state(out) == before and [p.name for p in tmpfs_1mb.iterdir()] == ["out"]
    assert os.statvfs(tmpfs_1mb).f_bfree == free


# -- the trainer ------------------------------------------------------------------------------------------
_KILLER = r'''
import io, os, signal, sys
from pathlib import Path
sys.path.insert(0, {root!r})
import torch
import backend.checkpoint as ckpt_mod
import training.loop as loop

point, at = sys.argv[1], int(sys.argv[2])
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
real_save, real_torch_save, real_link = loop._save, torch.save, os.link

def _save(out_dir, **kw):
    if point == "before" and kw["step"] == at:
        die()
    path = real_save(out_dir, **kw)
    if point == "after" and kw["step"] == at:
        die()
    return path

def torch_save(obj, f, *a, **k):
    if point == "during" and isinstance(obj, dict) and obj.get("step") == at:
        buf = io.BytesIO()
        real_torch_save(obj, buf)
        Path(f).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        die()
    return real_torch_save(obj, f, *a, **k)

def link(src, dst, *a, **k):
    if point == "before_last" and Path(src).name == f"step_{{at:07d}}.pt":
        die()
    return real_link(src, dst, *a, **k)

loop._save, ckpt_mod.torch.save, loop.os.link = _save, torch_save, link
from training.coarse import main
sys.exit(main(sys.argv[3:]))
'''

_TINY = ["--data=synthetic", "--data.crop_size=32", "--data.synthetic_count=10", "--data.val_count=2",
         "--encoder.arch=light", "--encoder.width=0.25", "--use_identity=false", "--albedo_k=4", "--albedo_uv=16",
         "--loop.batch_size=4", "--loop.num_workers=0", "--loop.log_every=0", "--loop.image_every=0",
         "--loop.val_every=0", "--loop.ckpt_every=2", "--loop.progress=false", "--optim.lr=1e-3",
         "--loop.device=cpu", "--loop.steps=6"]


def _train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", _KILLER.format(root=str(ROOT)), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _weights(path: Path) -> dict:
    import torch

    ckpt = torch.load(path, weights_only=True)
    return {"step": ckpt["step"], "model": ckpt["model"], "optimizer": ckpt["optimizer"]["state"]}


def _same(a: dict, b: dict) -> bool:
    import torch

    return a["step"] == b["step"] and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]) and all(
        torch.equal(a["optimizer"][i][n], b["optimizer"][i][n]) for i in a["optimizer"] for n in a["optimizer"][i])


KILL_POINTS = {  # where the SIGKILL lands in the step-4 checkpoint write → the step last.pt then holds
    "before": 2,       # before step_0000004.pt is written
    "during": 2,       # half of step_0000004.pt's temporary file written
    "before_last": 2,  # step_0000004.pt in place, last.pt not yet pointing at it
    "after": 4,        # the whole checkpoint written
}


@pytest.fixture(scope="module")
def never_killed(tmp_path_factory) -> dict:
    """The final checkpoint of the same run, never interrupted."""
    folder = tmp_path_factory.mktemp("ref")
    ref = _train(["none", "0", *_TINY, "--out", "ref"], folder)
    assert ref.returncode == 0, ref.stderr
    return _weights(folder / "ref" / "last.pt")


def _kill_and_resume(tmp_path: Path, point: str, reference: dict) -> None:
    """kill -9 of `python -m training.coarse` at ``point`` of step 4's checkpoint write, then
    ``--resume=auto``: the final weights and optimizer state equal those of a run never killed."""
    killed = _train([point, "4", *_TINY, "--out", "run"], tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _weights(tmp_path / "run" / "last.pt")["step"] == KILL_POINTS[point]  # a whole checkpoint, never a part
    resumed = _train(["none", "0", *_TINY, "--out", "run", "--resume=auto"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _same(_weights(tmp_path / "run" / "last.pt"), reference)


def test_training_killed_while_writing_a_checkpoint_resumes_bit_exactly(tmp_path, never_killed):
    """In the default suite: SIGKILL half-way through writing step 4's checkpoint."""
    _kill_and_resume(tmp_path, "during", never_killed)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before", "before_last", "after"])
def test_training_killed_around_a_checkpoint_resumes_bit_exactly(tmp_path, never_killed, point):
    """The other points: before the checkpoint, between its file and last.pt, after it."""
    _kill_and_resume(tmp_path, point, never_killed)
