"""Reconstruction worker process (no bpy): ``python -m <package>.worker JOB.json``.

``JOB.json``: ``{"task": "reconstruct" | "detect", "images": [paths], "config":
{ReconstructConfig fields}, "reconstruct": "module:function", "landmarks": [(68,2) | null]
| null, "output": path}``. A ``reconstruct`` module named ``backend`` or ``backend.*`` is
resolved against the backend this package carries.
- ``reconstruct``: ``function(images, config, progress, cancel[, landmarks=...])`` returns a
  Head, saved with ``backend.export.save_head`` to ``output`` (``landmarks``: the artist's
  pins as given landmarks, passed only when the job has some);
- ``detect``: ``function(images, config, progress, cancel)`` returns one
  ``PhotoLandmarks`` per photo, written as a JSON list to ``output``.

Protocol (one JSON object per line on stdout; everything else the job prints goes to stderr):
``{"event": "progress", "fraction": f, "message": m}`` while running, then exactly one of
``{"event": "done", "path": output}``, ``{"event": "cancelled", "message": m}``,
``{"event": "error", "type": ExceptionName, "message": m}``.
Cancel: write ``cancel`` (or close) stdin; the job stops at its next progress/cancel check.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, TextIO

from . import backend_module

DEFAULT_RECONSTRUCT = "backend.reconstruct:reconstruct"
DEFAULT_DETECT = "backend.detect.photos:detect_photos"
DEFAULT_FUNCTIONS = {"reconstruct": DEFAULT_RECONSTRUCT, "detect": DEFAULT_DETECT}
TASKS = tuple(DEFAULT_FUNCTIONS)


def load_callable(spec: str) -> Callable[..., Any]:
    """``"package.module:function"`` → the function; ``backend...`` uses the bundled backend."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"reconstruct function {spec!r} must look like 'package.module:function'")
    if module_name == "backend" or module_name.startswith("backend."):
        module = backend_module(module_name[len("backend."):] if "." in module_name else "")
    else:
        module = importlib.import_module(module_name)
    return getattr(module, attr)


def make_config(fields: dict[str, Any]):
    """``ReconstructConfig`` from a dict; unknown keys raise ``ValueError``."""
    config_cls = backend_module("reconstruct").ReconstructConfig
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown ReconstructConfig fields {unknown}; known: {sorted(known)}")
    return config_cls(**fields)


def _array(points):
    """JSON (68,2) points → float64 numpy array (numpy is imported only inside the worker)."""
    import numpy as np  # lazy: addon.job imports this module in Blender's process, numpy-free

    return np.asarray(points, np.float64)


class _StdinCancel:
    """Cancel token set by a ``cancel`` line on stdin or by stdin closing (parent gone)."""

    def __init__(self, stream: TextIO):
        self._event = threading.Event()
        threading.Thread(target=self._watch, args=(stream,), daemon=True).start()

    def _watch(self, stream: TextIO) -> None:
        for line in stream:
            if line.strip() == "cancel":
                break
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def run(job: dict[str, Any], emit: Callable[[dict], None], cancel) -> int:
    """Run one job; every outcome is reported through ``emit``. Returns the exit code."""
    errors = backend_module("errors")
    try:
        task = job.get("task", "reconstruct")
        if task not in TASKS:
            raise ValueError(f"unknown job task {task!r}: use one of {TASKS}")
        function = load_callable(job.get("reconstruct") or DEFAULT_FUNCTIONS[task])
        config = make_config(dict(job.get("config", {})))

        def progress(fraction: float, message: str) -> None:
            if cancel.is_set():
                raise errors.CancelledError("cancelled by the user")
            emit({"event": "progress", "fraction": float(fraction), "message": str(message)})

        images = [str(p) for p in job["images"]]
        if task == "detect":
            found = function(images, config, progress, cancel)
            if cancel.is_set():
                raise errors.CancelledError("cancelled by the user")
            io_utils = backend_module("io_utils")
            rows = [io_utils.to_jsonable(dataclasses.asdict(f)) for f in found]
            io_utils.atomic_write_text(job["output"], json.dumps(rows))
        else:
            given = job.get("landmarks")
            extra = {"landmarks": [None if lm is None else _array(lm) for lm in given]} if given else {}
            head = function(images, config, progress, cancel, **extra)
            if cancel.is_set():
                raise errors.CancelledError("cancelled by the user")
            emit({"event": "progress", "fraction": 1.0, "message": "saving the result"})
            backend_module("export").save_head(head, job["output"])
    except errors.CancelledError as exc:
        emit({"event": "cancelled", "message": str(exc)})
        return 0
    except errors.PhotoheadError as exc:
        emit({"event": "error", "type": type(exc).__name__, "message": str(exc)})
        return exc.exit_code
    except Exception as exc:  # process boundary: any crash becomes a reported error, traceback to stderr
        traceback.print_exc()
        emit({"event": "error", "type": type(exc).__name__, "message": f"{type(exc).__name__}: {exc}"})
        return 1
    emit({"event": "done", "path": str(job["output"])})
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m <package>.worker JOB.json", file=sys.stderr)
        return 2
    # Keep the protocol stream clean: the job's own prints (Python or C level) go to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    lock = threading.Lock()

    def emit(message: dict) -> None:
        with lock:
            protocol.write(json.dumps(message) + "\n")
            protocol.flush()

    # Before the backend imports torch: idle OpenMP threads sleep instead of spinning, so a
    # reconstruction beside Blender and the artist's other programs slows by its fair share.
    # One intra-op thread unless PHOTOHEAD_THREADS asks for more (backend.threads.FIT_THREADS).
    policy = backend_module("threads")
    policy.apply_process_policy()
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        policy.set_intra_op_threads(policy.fit_threads())
    except ValueError as exc:
        emit({"event": "error", "type": "ValueError", "message": str(exc)})
        return 2
    return run(job, emit, _StdinCancel(sys.stdin))


if __name__ == "__main__":
    sys.exit(main())
