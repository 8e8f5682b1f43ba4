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
    _set_deterministic(True, warn_only=False)
    try:
        yield
    finally:
        _set_deterministic(was_on, warn_only=warn_only)


def _set_deterministic(mode: bool, warn_only: bool) -> None:
    """``torch.use_deterministic_algorithms`` without its first-call cost: the public function
    also sets Inductor's flag and so imports ``torch._inductor`` (about 1 s in a fresh process,
    which ``photohead reconstruct`` pays every run). We compile nothing, so the ATen flag it
    sets underneath is all we need; the public function remains the fallback."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)
