"""A reconstruction job in a worker process, driven by plain method calls (no bpy).

The modal operator calls :meth:`Job.poll` from a timer; tests call :meth:`Job.wait`.
The worker (``<package>.worker``) runs ``reconstruct(...)``, saves the Head with
``backend.export.save_head`` into the job folder and reports progress as JSON lines.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from .worker import DEFAULT_FUNCTIONS, TASKS

PENDING, RUNNING, DONE, FAILED, CANCELLED = "PENDING", "RUNNING", "DONE", "FAILED", "CANCELLED"
CANCEL_GRACE_S = 10.0  # after a cancel request the worker is killed if still alive


@dataclass(frozen=True)
class JobState:
    """A snapshot of a job. ``status`` is one of PENDING, RUNNING, DONE, FAILED, CANCELLED.

    ``fraction`` in [0,1]; ``message`` the latest progress or error text; ``result_path``
    the saved Head (DONE only); ``error_type`` the exception class name (FAILED only).
    """

    status: str = PENDING
    fraction: float = 0.0
    message: str = ""
    result_path: str | None = None
    error_type: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED, CANCELLED)


class Job:
    """One reconstruction (or landmark detection) in a spawned Python process.

    - ``images``: photo paths; ``config``: ReconstructConfig fields as a dict;
    - ``task``: ``"reconstruct"`` (result: ``head.npz``) or ``"detect"`` (result:
      ``landmarks.json``, the 68 landmarks of each photo);
    - ``reconstruct``: dotted ``module:function`` run by the worker (default: the task's
      backend function; tests inject fakes);
    - ``landmarks``: per photo (68,2) photo pixels or None, passed to the reconstruction as
      given landmarks (the artist's pins); photos with None are detected as usual;
    - ``python``: interpreter for the worker (default: this one, i.e. Blender's);
    - ``python_paths``: extra ``PYTHONPATH`` entries (e.g. the extension's site-packages);
    - ``env``: extra environment variables (e.g. ``PHOTOHEAD_MODEL_PATH``).
    """

    def __init__(
        self,
        images: Sequence[str | os.PathLike],
        config: dict[str, Any] | None = None,
        reconstruct: str = "",
        python: str | None = None,
        python_paths: Sequence[str | os.PathLike] = (),
        env: dict[str, str] | None = None,
        task: str = "reconstruct",
        landmarks: Sequence[Any] | None = None,
    ):
        if task not in TASKS:
            raise ValueError(f"unknown job task {task!r}: use one of {TASKS}")
        self.images = [str(p) for p in images]
        self.config = dict(config or {})
        self.task = task
        self.reconstruct = reconstruct or DEFAULT_FUNCTIONS[task]
        self.landmarks = None if landmarks is None else [
            None if lm is None else [[float(x), float(y)] for x, y in lm] for lm in landmarks]
        self.python = python or sys.executable
        self.python_paths = [str(p) for p in python_paths]
        self.env = dict(env or {})
        self.workdir: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._events: queue.Queue[dict] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._state = JobState()
        self._cancel_time: float | None = None
        self._log = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> JobState:
        """Write the job file and spawn the worker. Raises ``OSError`` if it cannot start."""
        if self._proc is not None:
            raise RuntimeError("job already started")
        self.workdir = Path(tempfile.mkdtemp(prefix="photohead-job-"))
        job_file = self.workdir / "job.json"
        job_file.write_text(json.dumps({
            "task": self.task,
            "images": self.images,
            "config": self.config,
            "reconstruct": self.reconstruct,
            "landmarks": self.landmarks,
            "output": str(self.workdir / ("head.npz" if self.task == "reconstruct" else "landmarks.json")),
        }), encoding="utf-8")
        package_dir = Path(__file__).resolve().parent
        env = self.worker_env()
        self._log = open(self.workdir / "worker.log", "w", encoding="utf-8")
        try:
            self._proc = subprocess.Popen(
                [self.python, "-m", f"{package_dir.name}.worker", str(job_file)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                cwd=self.workdir, env=env, text=True, encoding="utf-8", bufsize=1,
            )
        except OSError:
            self._log.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        self._reader = threading.Thread(target=self._read, args=(self._proc.stdout,), daemon=True)
        self._reader.start()
        self._state = JobState(RUNNING, 0.0, "starting")
        return self._state

    def worker_env(self) -> dict[str, str]:
        """The worker's environment: this one plus ``env``; ``PYTHONPATH`` = this package's parent,
        ``python_paths``, then any inherited entries; the face model the zip bundles
        (``<package>/models``) last on ``PHOTOHEAD_MODEL_PATH``."""
        package_dir = Path(__file__).resolve().parent
        env = dict(os.environ)
        env.update(self.env)
        paths = [str(package_dir.parent), *self.python_paths]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        bundled = package_dir / "models"
        if bundled.is_dir():
            env["PHOTOHEAD_MODEL_PATH"] = os.pathsep.join(
                p for p in (env.get("PHOTOHEAD_MODEL_PATH", ""), str(bundled)) if p)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _read(self, stream) -> None:
        for line in stream:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # the worker routes stray output to stderr; ignore anything unparsable
            if isinstance(event, dict):
                self._events.put(event)
        self._events.put({"event": "eof"})

    def poll(self) -> JobState:
        """Apply the worker's messages so far and return the current state (never blocks long)."""
        if self._proc is None or self._state.finished:
            return self._state
        state = self._state
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            kind = event.get("event")
            if kind == "progress":
                state = replace(state, fraction=float(event.get("fraction", 0.0)), message=str(event.get("message", "")))
            elif kind == "done":
                state = replace(state, status=DONE, fraction=1.0, message="done", result_path=event.get("path"))
            elif kind == "cancelled":
                state = replace(state, status=CANCELLED, message=str(event.get("message", "cancelled")))
            elif kind == "error":
                state = replace(state, status=FAILED, message=str(event.get("message", "")), error_type=event.get("type"))
            elif kind == "eof" and not state.finished:
                code = self._proc.wait()
                if self._cancel_time is not None:
                    state = replace(state, status=CANCELLED, message="cancelled by the user")
                else:
                    state = replace(state, status=FAILED, error_type="WorkerCrashed",
                                    message=f"the worker stopped (exit code {code}) without a result: {self.log_tail()}")
            if state.finished:
                break
        if not state.finished and self._cancel_time is not None and time.monotonic() - self._cancel_time > CANCEL_GRACE_S:
            self._proc.kill()
            state = replace(state, status=CANCELLED, message="cancelled by the user (worker stopped)")
        if state.finished:
            self._finish()
        self._state = state
        return state

    def _finish(self) -> None:
        try:
            self._proc.wait(timeout=CANCEL_GRACE_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass  # pipe already broken: the worker is gone
        if self._log is not None:
            self._log.close()

    def cancel(self) -> None:
        """Ask the worker to stop at its next check (killed after ``CANCEL_GRACE_S``)."""
        if self._proc is None or self._state.finished or self._cancel_time is not None:
            return
        self._cancel_time = time.monotonic()
        try:
            self._proc.stdin.write("cancel\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # worker already exiting; poll() picks up its end

    def wait(self, timeout: float | None = None, interval: float = 0.05) -> JobState:
        """Poll until finished. On ``timeout`` seconds, cancel, wait the grace period and return."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll().finished:
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                deadline = None
            time.sleep(interval)
        return self._state

    @property
    def state(self) -> JobState:
        return self._state

    def log_tail(self, chars: int = 600) -> str:
        """The end of the worker's stderr (for crash messages)."""
        if self.workdir is None or not (self.workdir / "worker.log").exists():
            return ""
        if self._log is not None:
            self._log.flush()
        text = (self.workdir / "worker.log").read_text(encoding="utf-8", errors="replace").strip()
        return text[-chars:]

    def keep_result(self, folder: str | os.PathLike) -> Path:
        """Move the job folder (its result and worker log) into ``folder`` and keep it out of
        :meth:`cleanup`. Returns the kept folder. Raises ``OSError``."""
        if self.workdir is None:
            raise RuntimeError("the job has no folder (never started, or already cleaned up)")
        if self._log is not None and not self._log.closed:
            self._log.close()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{self.workdir.name}"
        shutil.move(str(self.workdir), str(target))
        self.workdir = None
        return target

    def cleanup(self) -> None:
        """Stop the worker if still running and delete the job folder (after the result is loaded)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
            self._state = replace(self._state, status=CANCELLED) if not self._state.finished else self._state
        if self._log is not None and not self._log.closed:
            self._log.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
