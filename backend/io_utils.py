"""Atomic file writes (write to a temporary sibling, then rename over the target) and the
reading back of the ``.npz`` files written so."""
from __future__ import annotations

import contextlib
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np


_FILE_MODE: int | None = None


def default_file_mode() -> int:
    """``0o666`` minus the process umask: the mode ``open()`` would give a new file.

    (``mkstemp`` creates 0600 files; results must be readable like any other file.)
    """
    global _FILE_MODE
    if _FILE_MODE is None:
        umask = os.umask(0o022)
        os.umask(umask)
        _FILE_MODE = 0o666 & ~umask
    return _FILE_MODE


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, default_file_mode())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_savez(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """``arrays`` as an uncompressed ``.npz`` at ``path``, written atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


def read_npz(path: str | Path, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray] | None:
    """The arrays ``names`` (None: all) of the ``.npz`` at ``path``, or None when it is missing,
    unreadable, damaged (each member's CRC-32 is checked as it is read) or lacks one of them."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {n: z[n] for n in (z.files if names is None else names)}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None


def to_jsonable(x: Any) -> Any:
    """numpy arrays/scalars, Paths and containers → plain JSON values (non-finite floats → None)."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, Path):
        return str(x)
    return x
