"""dlib backend: HOG frontal detector (mmod CNN fallback) + the 68-point shape predictor.

Models come from the ``face-recognition-models`` package, located with
``importlib.util.find_spec`` (its ``__init__`` imports ``pkg_resources``, so it is never
imported). dlib and the models are loaded lazily on first use and cached per process.

Strategy (why): the 68-point predictor was trained on HOG boxes, so HOG runs
first — it is also 10–30× cheaper than mmod. It runs on a copy downscaled to ≤
``max_detect_side`` px, upsampled ×2 (up to ``max_upsample`` times) only when nothing is
found. When HOG still finds nothing, mmod (more robust to pose/occlusion) runs on a ≤
``mmod_max_side`` px copy and its boxes are mapped to HOG-like boxes with constants fitted
on faces_dev. Landmarks are always predicted on the full-resolution photo.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..align import MIRROR_68
from ..errors import DependencyMissingError, WeightsFormatError, WeightsNotFoundError
from ..io_utils import atomic_path
from .base import DetectSettings, Face, downscale_for_detection, small_to_orig
from .ert_predictor import load_predictor

__all__ = ["detect_dlib", "hog_score", "model_dir", "MMOD_TO_HOG"]

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
MMOD_FILE = "mmod_human_face_detector.dat"

# mmod box → HOG-like box, in units of the mmod box width w (boxes are square):
#   cx_hog = cx_mmod + dx·w,  cy_hog = cy_mmod + dy·w,  side_hog = scale·w.
# Grid-searched on development photos for the predictor's lowest landmark error on mapped mmod
# boxes (docs/design.md, "Landmarks and the jaw contour", has the held-out numbers).
MMOD_TO_HOG = {"dx": 0.05, "dy": 0.05, "scale": 1.05}


def _dlib():
    try:
        import dlib  # lazy: a missing dlib becomes DependencyMissingError with the pip command
    except ImportError as exc:
        raise DependencyMissingError(
            "the dlib face detector is not installed: `pip install dlib-bin face-recognition-models` "
            f"into the Python running Photohead ({exc})"
        ) from None
    return dlib


def model_dir() -> Path:
    """Folder holding the dlib model files of the ``face-recognition-models`` package.

    Raises :class:`WeightsNotFoundError` when the package or its files are missing.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            "dlib's landmark models are missing: `pip install face-recognition-models` "
            "(it ships shape_predictor_68_face_landmarks.dat and mmod_human_face_detector.dat)"
        )
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "models"
        if (d / PREDICTOR_FILE).is_file():
            return d
    raise WeightsNotFoundError(
        f"{PREDICTOR_FILE} not found under {list(spec.submodule_search_locations)}: "
        "reinstall with `pip install --force-reinstall face-recognition-models`"
    )


def hog_cache_path(version: str) -> Path:
    """Where the HOG face detector of dlib ``version`` is kept as a file
    (``<cache>/weights/dlib_frontal_hog_<version>.svm``, beside the identity network's cache)."""
    from ..facemodel.search import cache_dir  # lazy: keeps this module's imports light

    return cache_dir().parent / "weights" / f"dlib_frontal_hog_{version}.svm"


@functools.lru_cache(maxsize=1)
def _hog():
    """dlib's frontal HOG detector. ``get_frontal_face_detector`` decodes it from a string built
    into dlib, 0.56 s of CPU per process; the same detector saved once with ``save`` loads in
    about 1 ms, so it is kept in the cache folder (:func:`hog_cache_path`; per dlib version,
    written atomically; a folder that cannot be written only means the slow path next time)."""
    dlib = _dlib()
    path = hog_cache_path(getattr(dlib, "__version__", "unknown"))
    if path.is_file():
        try:
            return dlib.fhog_object_detector(str(path))
        except RuntimeError:  # unreadable (truncated, another format): rebuilt below
            pass
    detector = dlib.get_frontal_face_detector()
    try:
        with atomic_path(path) as tmp:
            detector.save(str(tmp))
    except (OSError, RuntimeError):
        pass  # a read-only cache folder: the detector is the same either way
    return detector


@functools.lru_cache(maxsize=1)
def _predictor() -> Callable[[np.ndarray, tuple[int, int, int, int]], np.ndarray]:
    """The 68-point predictor as ``(image (H,W,3) uint8, (left, top, right, bottom) int) → (68,2)
    int64`` pixels. The numpy port (:mod:`.ert_predictor`, the same points as dlib's) loads its
    cached arrays in milliseconds, where ``dlib.shape_predictor`` decodes the 100 MB file in about
    0.5 s of CPU per process; dlib's own predictor is the fallback when the cache cannot be
    written or the file is not in the format the port reads."""
    source = model_dir() / PREDICTOR_FILE
    try:
        port = load_predictor(source)
    except WeightsFormatError:
        port = None
    if port is not None:
        return port
    dlib = _dlib()
    pred = dlib.shape_predictor(str(source))

    def run(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        return np.array([(p.x, p.y) for p in pred(image, dlib.rectangle(*box)).parts()], np.int64)

    return run


@functools.lru_cache(maxsize=1)
def _mmod():
    path = model_dir() / MMOD_FILE
    if not path.is_file():
        raise WeightsNotFoundError(f"{MMOD_FILE} not found in {path.parent}: reinstall face-recognition-models")
    return _dlib().cnn_face_detection_model_v1(str(path))


def _run_hog(small: np.ndarray, settings: DetectSettings) -> tuple[np.ndarray, np.ndarray]:
    """HOG on the working copy, upsampling only when nothing is found.

    Returns boxes (N,4) x0,y0,x1,y1 in working-copy pixels and scores (N,)."""
    hog = _hog()
    for up in range(settings.max_upsample + 1):
        rects, scores, _ = hog.run(small, up, settings.hog_threshold)
        if len(rects):
            boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float64)
            return boxes, np.asarray(scores, np.float64)
    return np.zeros((0, 4)), np.zeros(0)


def mmod_to_hog_boxes(boxes: np.ndarray) -> np.ndarray:
    """Map mmod boxes (N,4) to HOG-like boxes (N,4) with :data:`MMOD_TO_HOG` (pixels)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w = 0.5 * ((b[:, 2] - b[:, 0]) + (b[:, 3] - b[:, 1]))
    cx = 0.5 * (b[:, 0] + b[:, 2]) + MMOD_TO_HOG["dx"] * w
    cy = 0.5 * (b[:, 1] + b[:, 3]) + MMOD_TO_HOG["dy"] * w
    half = 0.5 * MMOD_TO_HOG["scale"] * w
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


def _run_mmod(image: np.ndarray, settings: DetectSettings) -> tuple[np.ndarray, np.ndarray]:
    """mmod on a ≤ mmod_max_side copy. Returns HOG-like boxes (N,4) in ORIGINAL pixels, scores."""
    small, s = downscale_for_detection(image, settings.mmod_max_side)
    dets = _mmod()(small, 0)
    if not len(dets):
        return np.zeros((0, 4)), np.zeros(0)
    boxes = np.array([[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in dets], np.float64)
    scores = np.array([d.confidence for d in dets], np.float64)
    boxes = mmod_to_hog_boxes(boxes)
    return small_to_orig(boxes.reshape(-1, 2, 2), s).reshape(-1, 4), scores


def _predict_subpixel(image: np.ndarray, box: np.ndarray, min_side: int) -> np.ndarray:
    """68 landmarks (68,2) for one box (4,) in original pixels.

    dlib rounds its landmark output to whole pixels; for a box smaller than ``min_side`` the
    predictor runs on a ×k bilinear upscale of the box region (k ≤ 4) so the rounding step is
    1/k px: it matters for small faces and for a smooth landmark loss, not for accuracy at large.
    """
    pred = _predictor()
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0, 1.0)
    k = int(min(4, np.ceil(min_side / side))) if min_side > 0 else 1
    if k <= 1:
        return pred(image, (int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1)))).astype(np.float64)

    h, w = image.shape[:2]
    m = 0.5 * side  # the predictor looks a little outside its box
    rx0, ry0 = int(max(0, np.floor(x0 - m))), int(max(0, np.floor(y0 - m)))
    rx1, ry1 = int(min(w, np.ceil(x1 + m) + 1)), int(min(h, np.ceil(y1 + m) + 1))
    region = np.ascontiguousarray(image[ry0:ry1, rx0:rx1])
    size = (region.shape[1] * k, region.shape[0] * k)
    up = np.asarray(Image.fromarray(region).resize(size, Image.Resampling.BILINEAR))
    # region px r ↔ upscaled px (r + 0.5)·k − 0.5
    ub = (np.array([x0 - rx0, y0 - ry0, x1 - rx0, y1 - ry0]) + 0.5) * k - 0.5
    pts = pred(up, tuple(int(round(v)) for v in ub)).astype(np.float64)
    return (pts + 0.5) / k - 0.5 + np.array([rx0, ry0], np.float64)


def _landmarks(image: np.ndarray, boxes: np.ndarray, min_side: int, flip_average: bool = False) -> np.ndarray:
    """68 landmarks (N,68,2) float64 at full resolution for boxes (N,4) in original pixels.

    ``flip_average``: also predict on the mirrored photo (mirrored box), mirror those points back
    (x → W−1−x, iBUG order through :data:`backend.align.MIRROR_68`) and average the two. The
    predictor's cascade is not mirror-symmetric, so the two answers err differently
    (docs/design.md); it costs one more predictor call per face (milliseconds).
    """
    out = np.empty((len(boxes), 68, 2), np.float64)
    if flip_average:
        mirrored = np.ascontiguousarray(image[:, ::-1])
        last = image.shape[1] - 1.0  # x of the last pixel centre
    for i, box in enumerate(boxes):  # loop over faces, not pixels
        out[i] = _predict_subpixel(image, box, min_side)
        if flip_average:
            x0, y0, x1, y1 = box
            seen = _predict_subpixel(mirrored, np.array([last - x1, y0, last - x0, y1]), min_side)
            seen[:, 0] = last - seen[:, 0]
            out[i] = 0.5 * (out[i] + seen[list(MIRROR_68)])
    return out


def hog_score(image: np.ndarray, max_side: int = 640) -> float | None:
    """The best score of dlib's upright HOG face detector on a copy of ``image`` (H,W,3) uint8 at
    most ``max_side`` px long, without upsampling (faces ≥ ~80 px there), or None when it finds
    none: a cheap test of whether the image holds an upright, roughly frontal face."""
    small, _ = downscale_for_detection(np.ascontiguousarray(image), max_side)
    _, scores = _run_hog(small, DetectSettings(max_upsample=0, hog_threshold=0.0))
    return float(scores.max()) if len(scores) else None


def detect_dlib(image: np.ndarray, settings: DetectSettings) -> list[Face]:
    """All faces in ``image`` (H,W,3) uint8 RGB, unsorted; coordinates in original pixels."""
    image = np.ascontiguousarray(image)
    small, s = downscale_for_detection(image, settings.max_detect_side)
    boxes, scores = _run_hog(small, settings)
    detector = "hog"
    if len(boxes):
        boxes = small_to_orig(boxes.reshape(-1, 2, 2), s).reshape(-1, 4)
    elif settings.mmod_fallback:
        boxes, scores = _run_mmod(image, settings)
        detector = "mmod"
    if not len(boxes):
        return []
    lms = _landmarks(image, boxes, settings.subpixel_min_side, settings.flip_average)
    return [
        Face(box=b, landmarks=lm, score=float(sc), backend="dlib", detector=detector)
        for b, lm, sc in zip(boxes, lms, scores)
    ]
