"""Uncompressed copies of large compressed ``.npz`` model files in the cache folder.

Inflating ICT-FaceKit's head and parts files costs ≈ 0.3 s of CPU in every process that loads
the face model; reading the same arrays stored uncompressed costs a few ms. The copy is keyed by
the source's resolved path, size and modification time, written atomically, and checked on read
by the zip members' CRC-32 (a damaged copy is read from the source again and rewritten)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..io_utils import atomic_savez, read_npz
from .search import cache_dir

# Smaller files are read directly (test fixtures, tiny models): inflating them costs nothing.
MIN_CACHED_BYTES = 1 << 20


def cached_copy_path(path: Path) -> Path | None:
    """Where the uncompressed copy of ``path`` lives (None: too small to cache, or unreadable)."""
    try:
        st = path.stat()
        if st.st_size < MIN_CACHED_BYTES:
            return None
        key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    except OSError:
        return None
    return cache_dir().parent / "npz" / f"{path.stem}-{key}.npz"


def read_cached(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of ``path`` from its uncompressed copy; None when there is none or it is damaged."""
    copy = cached_copy_path(path)
    if copy is None or not copy.is_file():
        return None
    return read_npz(copy)  # each member's CRC-32 is checked as it is read


def write_cached(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Store ``arrays`` (read from ``path``) uncompressed, atomically; a cache that cannot be
    written (read-only, full disk) is skipped."""
    copy = cached_copy_path(path)
    if copy is None:
        return
    try:
        atomic_savez(copy, arrays)
    except OSError:
        pass
