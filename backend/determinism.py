"""Bit-reproducible fits on the CPU and on CUDA.

An analysis-by-synthesis fit is chaotic: a last-bit change of one gradient early on moves the
result by a fraction of a millimetre (docs/design.md, "Determinism"). The sources of such
changes closed here:

- float32 LAPACK in the closed-form pose (``fit.pose_init``, solved in float64);
- every gather's backward (``index_put_``/``index_add_`` with accumulation): the multithreaded
  CPU kernel and the CUDA kernel add atomically, in a different order each run. PyTorch's
  deterministic mode swaps in sorted kernels (no measurable cost on the CPU);
- on CUDA, ``grid_sample``'s backward (atomic adds, no deterministic kernel in PyTorch):
  :mod:`backend.render.sample` gathers instead in this mode;
- on CUDA, cuBLAS is deterministic only with a fixed workspace: ``CUBLAS_WORKSPACE_CONFIG``
  must be set before cuBLAS starts in the process, so :func:`deterministic` on a CUDA device
  sets it (when unset) to ``:4096:8``. A process that ran cuBLAS before its first
  deterministic block keeps the workspace it started with.

On CUDA the sorted kernels cost time (docs/design.md, "GPU").
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Iterator

import torch

try:
    import torch.utils.deterministic as _fill_flag  # PyTorch ≥ 2.1
except ImportError:  # pragma: no cover - older PyTorch: nothing to switch off
    _fill_flag = None

__all__ = ["deterministic", "CUBLAS_WORKSPACE"]

# cuBLAS's fixed workspace for reproducible CUDA matrix products (the user's own value wins)
CUBLAS_WORKSPACE = ":4096:8"

# Ops whose CUDA kernel PyTorch flags as nondeterministic but whose results we only use in ways
# that are: ``median(dim)``'s *indices* may pick any of equal values; we read its values.
_HARMLESS = r"median CUDA with indices output does not have a deterministic implementation"


@contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Within this block, PyTorch's deterministic algorithms are on (the previous setting is
    restored after). On the CPU strictly: an op without a deterministic kernel raises. On CUDA
    such an op warns instead (``warn_only``; the one known harmless warning is silenced), so a
    PyTorch version that flags a new op slows nothing and breaks nothing; ``CUBLAS_WORKSPACE_CONFIG``
    is set (when unset) for the rest of the process. Other devices: no change."""
    if device.type not in ("cpu", "cuda"):
        yield
        return
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    was_on = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    was_filling = getattr(_fill_flag, "fill_uninitialized_memory", None)
    _set_deterministic(True, warn_only=device.type == "cuda")
    if was_filling is not None:
        # The mode also fills every new empty tensor with NaN, so that reading uninitialised
        # memory shows. That is a debugging aid, not determinism (we never read such memory:
        # the CPU fits' bits are the same without it), and on CUDA it is one more kernel for
        # every allocation of a launch-bound fit.
        _fill_flag.fill_uninitialized_memory = False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_HARMLESS)
            yield
    finally:
        _set_deterministic(was_on, warn_only=warn_only)
        if was_filling is not None:
            _fill_flag.fill_uninitialized_memory = was_filling


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
