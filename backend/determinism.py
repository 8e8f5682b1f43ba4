"""Bit-reproducible fits on the CPU.

An analysis-by-synthesis fit is chaotic: a last-bit change of one gradient early on moves the
result by a fraction of a millimetre (astronaut, default fit: a 1e-4 px shift of the starting
pose moves the face by 0.23 mm on average, 0.5 mm at most). Two sources of such changes
were found and closed: float32 LAPACK in the closed-form pose (``fit.pose_init``, solved in
float64) and the multithreaded CPU ``index_put_(accumulate=True)`` behind every gather's
backward, whose atomic adds sum in a different order each run. PyTorch's deterministic mode
swaps that kernel for a sorted one; on this CPU it costs nothing measurable (default fit of
astronaut, 2 threads: 11.5 s without, 10.9 s with).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

__all__ = ["deterministic_on_cpu"]


@contextmanager
def deterministic_on_cpu(device: torch.device) -> Iterator[None]:
    """Within this block, PyTorch's deterministic algorithms are on when ``device`` is the CPU
    (the previous setting is restored after). On CUDA nothing changes: cuBLAS would need
    ``CUBLAS_WORKSPACE_CONFIG`` set before start-up and several of our scatters have no
    deterministic CUDA kernel, so GPU fits may differ in the last bits from run to run."""
    if device.type != "cpu":
        yield
        return
    was_on = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_on, warn_only=warn_only)
