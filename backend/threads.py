"""CPU thread policy: how a fit shares the processor with other programs.

PyTorch's CPU kernels run on an OpenMP team. By default the team's idle threads spin for a
while at every barrier, and every parallel op waits for its slowest thread. When another
program holds one of the cores, each op then waits a scheduler slice for the thread that lost
its core, and the fit slows by an order of magnitude instead of by its fair share
(docs/speed.md has the measurements). Two settings prevent it:

- ``OMP_WAIT_POLICY=PASSIVE``: idle team threads sleep instead of spinning. The OpenMP runtime
  reads it once, when it is loaded (at ``import torch``), so :func:`apply_process_policy` must
  run before that: the command line and the add-on's worker call it first thing.
- ``NUMPY_MADVISE_HUGEPAGE=0``: numpy's large arrays on ordinary pages. numpy asks the kernel
  for transparent huge pages for every array of 4 MB or more; where the kernel then compacts
  memory on the page fault (``defrag=madvise``, this VM's setting) and memory is fragmented by
  other programs, loading the face model took 0.5–1 s of system time instead of 0.1 s. numpy
  reads it when it is imported; :func:`apply_process_policy` also applies it to a numpy
  already imported.
- One intra-op thread per fit (:data:`FIT_THREADS`, :func:`fit_threads`): the command line and
  the add-on's worker fit on one thread unless ``--threads`` / ``PHOTOHEAD_THREADS`` ask for
  more. Most of a fit's ops are too small to split, so a second thread bought ≈ 10 % when the
  machine is idle and cost far more than its share when it is not, while one thread never waits
  at a barrier: beside a busy neighbour it keeps its own core, and the head has the same bits on
  any machine whatever its core count (docs/speed.md, "Thread count").

A run repeats to the bit with the same thread count. A different count changes the order of
PyTorch's large CPU reductions, and the fit, being chaotic, carries that last-bit change into
the head: grace_hopper comes out bit-identical on 1 and 2 threads, astronaut 0.7 mm apart at
most (docs/speed.md).

This module imports nothing heavy, so it can be imported before torch.
"""
from __future__ import annotations

import os
import sys
from typing import MutableMapping

__all__ = ["FIT_THREADS", "PROCESS_DEFAULTS", "apply_process_policy", "fit_threads", "set_intra_op_threads",
           "threads_from_env", "worker_environment"]

# Environment defaults for a process that runs fits. A value the user set wins.
PROCESS_DEFAULTS: dict[str, str] = {
    "OMP_WAIT_POLICY": "PASSIVE",  # idle OpenMP threads sleep (GNU and LLVM OpenMP)
    "KMP_BLOCKTIME": "0",          # the same for Intel's OpenMP runtime, where torch links it
    "NUMPY_MADVISE_HUGEPAGE": "0",  # numpy's large arrays without huge pages (no compaction stalls)
}

THREADS_VAR = "PHOTOHEAD_THREADS"

FIT_THREADS = 1  # intra-op threads of a fit process unless the user asks for more (docs/speed.md)


def worker_environment(environ: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add :data:`PROCESS_DEFAULTS` to ``environ`` where unset (for a child process's env).

    Returns ``environ``, changed in place: it is the caller's copy for a child process."""
    for key, value in PROCESS_DEFAULTS.items():
        environ.setdefault(key, value)
    return environ


def apply_process_policy() -> bool:
    """Apply the thread policy to this process; call it before ``import torch``.

    Returns False (and changes nothing) when torch is already imported: the OpenMP runtime
    has read its settings by then, and only a fixed thread count (``PHOTOHEAD_THREADS``,
    applied by :func:`threads_from_env`'s caller) can still help."""
    if "torch" in sys.modules:
        return False
    worker_environment(os.environ)
    if "numpy" in sys.modules:  # imported already: it read the variable then
        sys.modules["numpy"].core.multiarray._set_madvise_hugepage(os.environ["NUMPY_MADVISE_HUGEPAGE"] != "0")
    return True


def threads_from_env(environ: MutableMapping[str, str] | None = None) -> int | None:
    """The intra-op thread count asked for in ``PHOTOHEAD_THREADS``, or None when unset.

    Raises ValueError with a readable message for anything but a positive integer."""
    raw = (os.environ if environ is None else environ).get(THREADS_VAR, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{THREADS_VAR}={raw!r}: give a whole number of threads, 1 or more")
    return int(raw)


def fit_threads(requested: int | None = None, environ: MutableMapping[str, str] | None = None) -> int:
    """The intra-op thread count of a fit process: ``requested`` (``--threads``), else
    ``PHOTOHEAD_THREADS``, else :data:`FIT_THREADS`. Raises ValueError like :func:`threads_from_env`."""
    if requested is not None:
        return requested
    from_env = threads_from_env(environ)
    return FIT_THREADS if from_env is None else from_env


def set_intra_op_threads(count: int | None) -> None:
    """Fix torch's intra-op thread count (None: leave torch's choice, one per core)."""
    if count is None:
        return
    import torch  # lazy: this module is imported before torch on purpose (see the docstring)

    torch.set_num_threads(count)
