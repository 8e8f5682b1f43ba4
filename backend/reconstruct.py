"""The one public entry point: photos → :class:`~backend.head.Head`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from .head import Head
from .progress import CancelToken, ProgressFn

Mode = Literal["fit", "predict", "hybrid"]
Quality = Literal["draft", "default", "high"]


@dataclass
class ReconstructConfig:
    """Everything a reconstruction needs besides the photos.

    - ``mode``: ``fit`` (per-image analysis-by-synthesis, no weights), ``predict`` (trained
      encoder + U-Net), ``hybrid`` (predict initialises fit).
    - ``quality``: fit schedule and UV resolution preset (README lists times).
    - ``device``: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
    - ``model``: face model file (default: ICT on the search path).
    - ``face``: which detected face (0 = largest) in each photo.
    - ``detail``: run the detail (stage-2) fit.
    - ``checkpoints``: folder with ``coarse.pt`` / ``detail.pt`` for predict/hybrid.
    - ``shared_expression``: multi-view: one expression for all photos.
    - ``seed``: random seed (fits are deterministic for a given seed and device).
    """

    mode: Mode = "fit"
    quality: Quality = "default"
    device: str = "auto"
    model: str | None = None
    face: int = 0
    detail: bool = True
    checkpoints: str | None = None
    shared_expression: bool = True
    seed: int = 0
    labels: list[str] = field(default_factory=list)


def reconstruct(
    images: Sequence[str | Path | np.ndarray],
    config: ReconstructConfig | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Head:
    """Reconstruct one head from one or more photos of the same person.

    images: paths or (H,W,3) uint8 RGB arrays. Raises :class:`~backend.errors.PhotoheadError`
    subclasses with actionable messages (no face, unreadable file, missing model ...).
    """
    raise NotImplementedError("reconstruct(): the coarse fit lands with issue 6")
