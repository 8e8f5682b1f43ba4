"""Progress reporting and cancellation shared by the CLI, the add-on worker and training."""
from __future__ import annotations

import threading
from typing import Callable, Protocol

from .errors import CancelledError

# progress(fraction in [0,1], message)
ProgressFn = Callable[[float, str], None]


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


class Cancel:
    """A thread/process-safe cancel flag (``threading.Event`` or ``multiprocessing.Event``)."""

    def __init__(self, event=None):
        self._event = event if event is not None else threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def check_cancel(cancel: CancelToken | None) -> None:
    """Raise :class:`CancelledError` if the job was cancelled."""
    if cancel is not None and cancel.is_set():
        raise CancelledError("cancelled by the user")


class Stage:
    """Maps a sub-task's progress [0,1] into the [start, end] slice of the whole job."""

    def __init__(self, progress: ProgressFn | None, start: float, end: float, cancel: CancelToken | None = None):
        self.progress, self.start, self.end, self.cancel = progress, start, end, cancel

    def __call__(self, fraction: float, message: str) -> None:
        check_cancel(self.cancel)
        if self.progress is not None:
            self.progress(self.start + (self.end - self.start) * min(max(fraction, 0.0), 1.0), message)
