"""The trainers' checks before any work: run folder, data folder, checkpoints to resume or start
from. Each failure is one :class:`~backend.errors.PhotoheadError` line (exit code 2 from
:func:`training.config.cli_main`, which also removes a run folder this invocation created).

:func:`check_run` runs before the face model loads or a photo is preprocessed;
:func:`check_weights` once the task's networks exist (cheap), before preprocessing: the
checkpoints' tensors (memory-mapped) are compared with the networks' shapes, so a mismatch is
refused without allocating or copying anything.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from backend.checkpoint import load_checkpoint, unwrap
from backend.validate import OutputLocationError, check_state_shapes, check_writable

from .data import IMAGE_EXTENSIONS, TrainingDataError, find_images

__all__ = ["TrainingDataError", "check_run", "check_weights"]


def check_run(cfg: Any) -> None:
    """Run folder (a name, writable), data folder (exists, holds photos), checkpoint files named by
    ``resume``/``init``/``coarse`` when they exist (readable Photohead checkpoints, tensors within
    the file; a missing one is named by :func:`training.loop.check_run_folder`, which also refuses
    an earlier run without ``--resume``)."""
    out_text = str(cfg.out)
    if not out_text.strip():
        raise OutputLocationError("the run folder name is empty: pass --out RUN")
    out = Path(out_text)
    if out.exists() and not out.is_dir():
        raise OutputLocationError(f"{out}: the run folder exists and is not a folder: choose another --out")
    check_writable(out, "run folder")
    data = cfg.data.data
    prepared = bool(cfg.data.cache) and (Path(cfg.data.cache) / "manifest.json").is_file()
    if data != "synthetic" and not (prepared and not data):  # --cache alone: a cache made by `train prepare`
        if not data:
            raise TrainingDataError("no training data: pass --data DIR (a folder of photos), --data synthetic, or "
                                    "--cache DIR of a cache made by `photohead train prepare`")
        root = Path(data)
        if not root.is_dir():
            raise TrainingDataError(f"{root}: the data folder {'is not a folder' if root.exists() else 'does not exist'}")
        if not find_images(root):
            raise TrainingDataError(f"{root}: the data folder holds no photos ({', '.join(IMAGE_EXTENSIONS)})")
    for path in (getattr(cfg, "init", ""), getattr(cfg, "coarse", ""), cfg.resume):
        if path and path != "auto" and Path(path).is_file():
            load_checkpoint(path)


def check_weights(cfg: Any, model: nn.Module) -> None:
    """The checkpoint a run resumes from (``resume``, or ``<out>/last.pt`` with ``auto``) or takes
    its weights from (``init``) must fit ``model``: same weight names and shapes."""
    out = Path(cfg.out)
    paths = []
    if cfg.resume == "auto" and (out / "last.pt").exists():
        paths.append(out / "last.pt")
    elif cfg.resume not in ("", "auto"):
        paths.append(Path(cfg.resume))
    if cfg.init:
        paths.append(Path(cfg.init))
    shapes = {k: v.shape for k, v in unwrap(model).state_dict().items()}
    for path in paths:
        check_state_shapes(load_checkpoint(path)["model"], shapes, path, "this run's network (see --help)")
