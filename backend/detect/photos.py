"""Landmarks of each photo on their own, before any fit: what the Blender add-on shows as pins.

    found = detect_photos(["front.jpg", "left.jpg"], ReconstructConfig(detector="dlib"))
    found[1].source   # "dlib", "face_alignment", or "placeholder" when no face was found

A photo where the detector finds no (large enough) face still gets 68 points: the mean
layout (:func:`placeholder_landmarks`) in the middle of the photo, for the artist to drag
onto the face. The corrected points go back into ``reconstruct(..., landmarks=...)`` as
given landmarks. Pixels: x right, y down, 0-based pixel centres of the upright photo.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..align import TEMPLATE_68_MM
from ..detectors import DEFAULT_DETECTOR
from ..errors import CancelledError, FaceTooSmallError, NoFaceError
from ..image_io import load_image
from . import detect_one
from .base import DetectSettings

__all__ = ["PhotoLandmarks", "PLACEHOLDER_FACE_WIDTH", "detect_photos", "placeholder_landmarks"]

PLACEHOLDER_FACE_WIDTH = 0.4  # the placeholder's jaw width as a fraction of the photo's shorter side


@dataclass(frozen=True)
class PhotoLandmarks:
    """One photo's 68 landmarks.

    - ``name``: the photo path as given; ``image_size`` (width, height) pixels;
    - ``landmarks68`` (68,2) float64 photo pixels, iBUG order;
    - ``source``: the detector (``"dlib"``/``"face_alignment"``) or ``"placeholder"``;
    - ``message``: why the placeholder was used (empty when detected).
    """

    name: str
    image_size: tuple[int, int]
    landmarks68: np.ndarray
    source: str
    message: str = ""


def placeholder_landmarks(width: int, height: int) -> np.ndarray:
    """(68,2) float64: the mean face layout (``align.TEMPLATE_68_MM``) centred in a
    ``width × height`` photo, its jaw ``PLACEHOLDER_FACE_WIDTH`` of the shorter side wide."""
    template = TEMPLATE_68_MM - TEMPLATE_68_MM.mean(0)
    span = template[:, 0].max() - template[:, 0].min()
    scale = PLACEHOLDER_FACE_WIDTH * min(width, height) / span
    return template * scale + np.array([(width - 1) / 2.0, (height - 1) / 2.0])


def detect_photos(
    images: Sequence[str | Path],
    config: Any = None,
    progress: Callable[[float, str], None] | None = None,
    cancel: Any = None,
) -> list[PhotoLandmarks]:
    """The 68 landmarks of every photo (one :class:`PhotoLandmarks` each, in order).

    ``config``: a ``ReconstructConfig`` (its ``detector``, ``detector_weights`` and ``face``
    are used; default dlib, face 0). A photo without a usable face gets the placeholder
    layout and the reason in ``message``. Raises ``ImageReadError`` for an unreadable photo,
    ``CancelledError`` when ``cancel.is_set()``.
    """
    detector = getattr(config, "detector", DEFAULT_DETECTOR)
    settings = DetectSettings(weights_dir=getattr(config, "detector_weights", None))
    face = getattr(config, "face", 0)
    found: list[PhotoLandmarks] = []
    for i, image in enumerate(images):
        if cancel is not None and cancel.is_set():
            raise CancelledError("cancelled by the user")
        name = str(image)
        if progress is not None:
            progress(i / len(images), f"detecting landmarks in photo {i + 1}/{len(images)}")
        rgb = load_image(image)
        height, width = rgb.shape[:2]
        try:
            hit = detect_one(rgb, face=face, backend=detector, settings=settings, name=Path(name).name)
        except (NoFaceError, FaceTooSmallError) as exc:
            found.append(PhotoLandmarks(name, (width, height), placeholder_landmarks(width, height), "placeholder",
                                        f"{exc} (placed the mean layout: drag the points onto the face)"))
            continue
        found.append(PhotoLandmarks(name, (width, height), np.asarray(hit.landmarks, np.float64), hit.backend))
    if progress is not None:
        progress(1.0, "landmarks detected")
    return found
