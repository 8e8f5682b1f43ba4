"""Small constant tensors made once per device and dtype.

``torch.tensor(values, device="cuda")`` copies from pageable host memory and makes the CPU
wait for the GPU; inside a fit step (light weights, a background colour, a pose scale) that
was one stream synchronisation per call (``bench_cuda --cases syncs``). The cached tensor has
the same values, so results keep their bits.
"""
from __future__ import annotations

import functools
import weakref

import torch

__all__ = ["constant", "corner_major"]


@functools.lru_cache(maxsize=256)
def constant(values: tuple, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``torch.tensor(values, device=device, dtype=dtype)``, built once: callers must not modify it."""
    return torch.tensor(values, device=device, dtype=dtype)


# faces tensors' corner-major ids: id → (weak reference, version, ids)
_CORNER_MAJOR: dict[int, tuple[weakref.ref, int, torch.Tensor]] = {}


def corner_major(faces: torch.Tensor) -> torch.Tensor:
    """``faces.t().reshape(-1)``: the (3·F,) vertex ids of (F,3) ``faces``, corner by corner. Kept
    per tensor until it is modified in place (every step of a fit renders the same faces; the
    copy took 1.3 ms on the detail fit's dense mesh): callers must not modify it."""
    hit = _CORNER_MAJOR.get(id(faces))
    if hit is not None and hit[0]() is faces and hit[1] == faces._version:
        return hit[2]
    ids = faces.t().reshape(-1)
    if len(_CORNER_MAJOR) > 16:
        _CORNER_MAJOR.clear()
    key = id(faces)  # the entry goes with its tensor
    _CORNER_MAJOR[key] = (weakref.ref(faces, lambda _: _CORNER_MAJOR.pop(key, None)), faces._version, ids)
    return ids
