"""A second look for the face in a multi-view photo where detection found none.

Side views at ±50° that are dark and lit from the side lose their face: BlazeFace finds no box,
dlib's HOG/mmod none either (``auto`` on renders: 1 of 16 side views of
``bench_multiview_detected``). The other photos of the set, where a face was found, say how
large the face is and roughly where (a set is usually shot with one framing). The retry
(:func:`retry_face`) collects candidates:

- the photo's luminance stretched to its 1st–99th percentiles (:func:`normalised_contrast`),
  given to the same detector again;
- Face Mesh (three passes, the first in the box) on that normalised photo in each other view's
  face box, scaled to this photo's size, and in its horizontal mirror (a −50° photo's face
  sits where a +50° photo's does, mirrored).

Face Mesh's presence score is no judge on these photos (a candidate at 0.12 with its points
5.6 % off, another at 0.23 with 13.8 %), but the candidates that found the face agree with each
other and a stray one does not: the candidate kept is the medoid (the smallest median distance
of its 68 points to the other candidates'). Candidates whose presence is below
:data:`MIN_PRESENCE` (background: 0.0) are dropped first.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .detect import DetectSettings, detect_one
from .detect.base import Face
from .detect.combined import mediapipe_available
from .detect.mediapipe_backend import mesh_faces_in_boxes
from .errors import FaceTooSmallError, NoFaceError

__all__ = ["MIN_PRESENCE", "normalised_contrast", "box_candidates", "medoid", "retry_face"]

MIN_PRESENCE = 0.02  # Face Mesh presence below this: no face in the box (a plain background scores 0.0)


def normalised_contrast(image: np.ndarray, lo: float = 1.0, hi: float = 99.0) -> np.ndarray:
    """``image`` (H,W,3) uint8 with its luminance's ``lo``–``hi`` percentiles stretched to 0–255
    (one gain and offset for all channels, clipped). Returns (H,W,3) uint8."""
    x = image.astype(np.float32)
    lum = x.mean(2)
    a, b = np.percentile(lum, [lo, hi])
    if b - a < 1.0:
        return image.copy()
    return np.clip((x - a) * (255.0 / (b - a)), 0.0, 255.0).round().astype(np.uint8)


def box_candidates(boxes: np.ndarray, sizes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Face boxes for a photo of ``size`` (W, H) px from other photos' boxes (N,4) x0,y0,x1,y1 px
    in photos of ``sizes`` (N,2) (W, H): each scaled to this photo, and its horizontal mirror.
    Returns (2N,4) px."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scale = np.asarray(size, np.float64)[None] / np.asarray(sizes, np.float64).reshape(-1, 2)  # (N,2)
    scaled = boxes * np.concatenate([scale, scale], 1)
    W = float(size[0])
    mirrored = np.stack([W - 1 - scaled[:, 2], scaled[:, 1], W - 1 - scaled[:, 0], scaled[:, 3]], 1)
    return np.concatenate([scaled, mirrored], 0)


def medoid(points: list[np.ndarray]) -> int:
    """Index of the point set (each (68,2)) with the smallest median mean-distance to the others
    (the first with fewer than three sets)."""
    n = len(points)
    if n < 3:
        return 0
    p = np.stack(points)  # (n,68,2)
    d = np.linalg.norm(p[:, None] - p[None], axis=-1).mean(-1)  # (n,n)
    off = d[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    return int(np.argmin(np.median(off, 1)))


def retry_face(image: np.ndarray, boxes: np.ndarray, sizes: np.ndarray, detector: str,
               settings: DetectSettings | None = None) -> tuple[Face, str] | None:
    """The face in ``image`` (H,W,3) uint8 RGB where detection found none, from the other
    photos' face boxes (N,4) px in photos of ``sizes`` (N,2) (W, H) (module docstring).
    Returns (the face, in ``image``'s pixels; how it was found, for the warning) or None."""
    settings = settings or DetectSettings()
    bright = normalised_contrast(image)
    found: list[tuple[Face, str]] = []
    try:
        found.append((detect_one(bright, backend=detector, settings=settings), "contrast-normalised"))
    except (NoFaceError, FaceTooSmallError):
        pass
    if detector in ("auto", "mediapipe") and mediapipe_available(settings.weights_dir) and len(boxes):
        H, W = image.shape[:2]
        cands = box_candidates(boxes, sizes, (W, H))
        faces = mesh_faces_in_boxes(bright, cands, np.zeros(len(cands)), "other-view-box", settings,
                                    passes=3, min_presence=MIN_PRESENCE)
        found += [(replace(f, score=0.0), "Face Mesh in another photo's face box") for f in faces]
    if not found:
        return None
    return found[medoid([f.landmarks for f, _ in found])]
