"""Checkpoints: one ``.pt`` file per save, written atomically, loadable with ``weights_only=True``.

Layout (``FORMAT_VERSION`` 1) — only tensors and plain Python values, so
``torch.load(weights_only=True)`` reads it without executing code:

- ``format``: ``"photohead-checkpoint"``, ``format_version``: int;
- ``model``: the unwrapped model's state dict (no ``module.`` prefixes);
- ``arch``: plain dict to rebuild the architecture (e.g. ``EncoderConfig.to_dict()``);
- ``optimizer``, ``scheduler``, ``scaler``: state dicts or None (resume only);
- ``step``: optimizer steps done; ``config``: the resolved training config (plain dict);
- ``model_card``: JSON-able dict (face model name and vertex count, UV size, data summary,
  steps, config), see :func:`make_model_card`;
- ``extra``: anything else plain (RNG states, data order position, best metric ...).

Two ways in, kept apart: :func:`restore_training_state` resumes everything (weights,
optimizer, scheduler, step, extra); :func:`load_weights` only fills a model's weights, for
inference or to start a new run at step 0 from pretrained weights.
"""
from __future__ import annotations

import json
import pickle
import platform
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import WeightsFormatError, WeightsNotFoundError
from .io_utils import atomic_path
from .validate import check_tensor_sizes, one_line

FORMAT = "photohead-checkpoint"
FORMAT_VERSION = 1


class CheckpointFormatError(WeightsNotFoundError):
    """A file exists but is not a Photohead checkpoint of a version this code reads."""


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module inside DDP / DataParallel / ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def make_model_card(
    *,
    face_model: Any | None = None,
    uv_size: int | None = None,
    data_summary: dict | None = None,
    steps: int = 0,
    config: dict | None = None,
    stage: str = "",
    notes: str = "",
) -> dict:
    """A JSON-able description of what a checkpoint is and how it was trained.

    ``face_model``: a :class:`~backend.facemodel.FaceModel` (name, vertex count, basis sizes are
    read from it) or None.
    """
    card: dict[str, Any] = {"stage": stage, "steps": int(steps), "uv_size": uv_size, "notes": notes}
    if face_model is not None:
        card["face_model"] = {
            "name": str(face_model.name),
            "n_verts": int(face_model.n_verts),
            "n_id": int(face_model.n_id),
            "n_exp": int(face_model.n_exp),
            "n_tex": int(face_model.n_tex),
        }
    card["data"] = dict(data_summary or {})
    card["config"] = dict(config or {})
    card["torch"] = str(torch.__version__)
    card["python"] = platform.python_version()
    json.dumps(card)  # fail here, not at load time, if something is not JSON-able
    return card


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    step: int = 0,
    config: dict | None = None,
    model_card: dict | None = None,
    extra: dict | None = None,
    arch: dict | None = None,
    scaler: Any | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary sibling, then rename). Returns ``path``.

    Call on rank 0 only. ``arch`` defaults to ``model.config.to_dict()`` when the model has one.
    """
    bare = unwrap(model)
    if arch is None and hasattr(bare, "config") and hasattr(bare.config, "to_dict"):
        arch = bare.config.to_dict()
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": bare.state_dict(),
        "arch": _plain(arch or {}),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "step": int(step),
        "config": _plain(config or {}),
        "model_card": _plain(model_card or {}),
        "extra": extra or {},
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device | None = "cpu") -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``; check its format and version.

    Raises :class:`~backend.errors.WeightsNotFoundError` when the file is missing and
    :class:`CheckpointFormatError` when it is not a readable Photohead checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"checkpoint {path} not found: train one (python -m training.coarse) or pass its path")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; junk, truncated or another format
        raise CheckpointFormatError(f"{path}: not a readable checkpoint (not a torch.save archive: truncated or another "
                                    "format)")
    try:  # mmap: tensors stay in the file until copied, so a declared size is checked before any allocation
        ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise CheckpointFormatError(f"{path}: not a readable checkpoint ({one_line(exc)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointFormatError(f"{path}: not a Photohead checkpoint (no '{FORMAT}' header)")
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointFormatError(
            f"{path}: checkpoint format version {version} is newer than this code reads ({FORMAT_VERSION}); update Photohead"
        )
    try:
        check_tensor_sizes(ckpt, path)
    except WeightsFormatError as exc:
        raise CheckpointFormatError(str(exc)) from None
    return ckpt


def load_weights(source: str | Path | dict, model: nn.Module, strict: bool = True) -> dict:
    """Fill ``model``'s weights from a checkpoint (path or loaded dict); nothing else.

    For inference or for a new run that starts at step 0 from pretrained weights.
    Returns the checkpoint dict.
    """
    ckpt = source if isinstance(source, dict) else load_checkpoint(source)
    unwrap(model).load_state_dict(ckpt["model"], strict=strict)
    return ckpt


def restore_training_state(
    ckpt: dict,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
) -> int:
    """Resume: restore weights, optimizer, scheduler (and AMP scaler). Returns the step."""
    unwrap(model).load_state_dict(ckpt["model"])
    if optimizer is not None and ckpt.get("optimizer") is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    if scaler is not None and ckpt.get("scaler") is not None:
        scaler.load_state_dict(ckpt["scaler"])
    return int(ckpt["step"])


def model_card_json(ckpt: dict) -> str:
    """The checkpoint's model card as pretty JSON (e.g. to write next to the ``.pt``)."""
    return json.dumps(ckpt.get("model_card", {}), indent=2, sort_keys=True)


def _plain(value: Any) -> Any:
    """Convert to JSON-able plain Python (tuples → lists, Paths → str); reject anything else."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool):
        return value
    for kind in (int, float, str):  # exact built-in types (e.g. TorchVersion is a str subclass)
        if isinstance(value, kind):
            return kind(value)
    raise TypeError(f"checkpoint config/card values must be plain Python, got {type(value).__name__}: {value!r}")
