"""Arrays that depend on the face model's UV layout only (rasterisations of it), computed once:
kept for the process (the last one of each name) and stored in the cache folder under a digest
of what they derive from, so a new process reads them (about 1 ms) instead of rasterising."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .facemodel import cache_dir
from .io_utils import atomic_savez, read_npz

__all__ = ["layout_arrays"]

_MEMORY: dict[str, tuple[bytes, dict[str, np.ndarray]]] = {}  # name → (digest, arrays): the last layout's


def layout_arrays(name: str, key: bytes, names: tuple[str, ...],
                  compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays ``names`` called ``name`` for the layout digest ``key``
    (:func:`backend.geometry.array_digest` of what they derive from): from memory, else from
    ``<cache>/uv/<name>-<key>.npz``, else from ``compute()`` (then stored; a read-only cache
    folder only costs computing them again next time)."""
    held = _MEMORY.get(name)
    if held is not None and held[0] == key:
        return held[1]
    path = cache_dir().parent / "uv" / f"{name}-{key.hex()}.npz"
    arrays = read_npz(path, names)
    if arrays is None:
        arrays = {n: np.asarray(a) for n, a in compute().items()}
        try:
            atomic_savez(path, arrays)
        except OSError:
            pass
    _MEMORY[name] = (key, arrays)
    return arrays
