"""Shared benchmark helpers: machine info, a timer, and an atomic JSON result writer.

Usage::

    from benchmarks.common import peak_rss_mb, time_call, write_result
    stats = time_call(lambda: work(), repeats=10, warmup=2)      # seconds
    write_result("render", {"cases": {...}})                        # → benchmarks/results/render.json

Every result file holds ``{"name", "created_utc", "machine": machine_info(), **payload}``.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info(device: str | None = None) -> dict[str, Any]:
    """Describe the machine a benchmark ran on (CPU, cores, load, torch build, GPU if any)."""
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        info["loadavg_1m"] = os.getloadavg()[0]
    except (AttributeError, OSError):
        info["loadavg_1m"] = None
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
    except ImportError:
        info["torch"] = None
    if device is not None:
        info["device"] = device
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux ``ru_maxrss``; CPU only).

    Monotonic: measure one case per fresh process (see ``bench_render --one``) for per-case peaks.
    """
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def _sync(device: str | None) -> None:
    if device is not None and device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_call(
    fn: Callable[[], Any], repeats: int = 10, warmup: int = 2, device: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Time ``fn()`` ``repeats`` times after ``warmup`` calls. Returns seconds: median, min, mean, max.

    ``device`` ("cuda", "cuda:0") makes the timer synchronise CUDA around each call; ``clock``:
    wall time by default, ``time.process_time`` for CPU time (what a loaded machine leaves comparable).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = clock()
        fn()
        _sync(device)
        times.append(clock() - t0)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "mean_s": statistics.fmean(times),
        "max_s": max(times),
        "repeats": repeats,
    }


def write_result(name: str, payload: dict[str, Any], results_dir: str | Path | None = None,
                 device: str | None = None) -> Path:
    """Write ``results/<name>.json`` atomically with machine info. Returns the path written.

    ``payload`` must be JSON-serialisable; its keys are merged after ``name``/``created_utc``/``machine``.
    """
    # Imported here so `benchmarks` does not need the backend package at import time.
    from backend.io_utils import atomic_write_text

    path = Path(results_dir or RESULTS_DIR) / f"{name}.json"
    doc = {
        "name": name,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(device),
        **payload,
    }
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path
