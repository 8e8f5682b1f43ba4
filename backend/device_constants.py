"""Small constant tensors made once per device and dtype.

``torch.tensor(values, device="cuda")`` copies from pageable host memory and makes the CPU
wait for the GPU; inside a fit step (light weights, a background colour, a pose scale) that
was one stream synchronisation per call (``bench_cuda --cases syncs``). The cached tensor has
the same values, so results keep their bits.
"""
from __future__ import annotations

import functools

import torch

__all__ = ["constant"]


@functools.lru_cache(maxsize=256)
def constant(values: tuple, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``torch.tensor(values, device=device, dtype=dtype)``, built once: callers must not modify it."""
    return torch.tensor(values, device=device, dtype=dtype)
