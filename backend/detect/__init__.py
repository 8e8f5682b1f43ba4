"""Face detection + 68 landmarks behind one interface.

    faces = detect(image)                       # list[Face], most confident first
    face = detect_one(image, face=0)            # the largest confident face; NoFaceError / FaceTooSmallError
    print(face.note)                            # "2 faces in x.jpg (largest first): #0 box ... score ...; using #0"

Backends: ``"auto"`` (the default, :data:`backend.detectors.DEFAULT_DETECTOR`: dlib checked by
Face Mesh, which replaces its points where they disagree, :mod:`.combined`; dlib alone with a
warning when MediaPipe's files are missing), ``"dlib"`` (offline: HOG + mmod fallback + 68-point
predictor from ``face-recognition-models``), ``"face_alignment"`` (only when its weights are on
disk) and ``"mediapipe"`` (BlazeFace + Face Mesh ported to PyTorch, :mod:`.mediapipe_backend`;
its ``.tflite`` files from ``photohead models fetch mediapipe``).
All coordinates are in ORIGINAL image pixels, 0-based pixel centres (DESIGN.md).
"""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from ..errors import FaceTooSmallError, NoFaceError
from ..detectors import DEFAULT_DETECTOR, DETECTOR_NAMES
from ..image_io import as_rgb_uint8, load_image
from ..validate import check_face_index
from .base import DetectSettings, Face, rank_faces
from .choose import MIN_SCORE, choose_faces, faces_report
from .combined import detect_auto
from .dlib_backend import detect_dlib
from .fa_backend import detect_face_alignment
from .mediapipe_backend import detect_mediapipe
from .orientation import detect_turned, turn_words

__all__ = ["BACKENDS", "DEFAULT_MIN_SIZE", "MIN_SCORE", "DetectSettings", "Face", "detect", "detect_one",
           "choose_faces", "faces_report"]

BACKENDS = DETECTOR_NAMES

# Smallest face accepted by detect_one, in pixels of the landmarks' bounding box (longer
# side). The 224² crop holds a face ~150 px across; below 64 px it would be upsampled > 2×.
DEFAULT_MIN_SIZE = 64


def _as_image(image: np.ndarray | str | os.PathLike) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    return as_rgb_uint8(image, copy=False)  # read-only use: no 36 MB copy of a 12 MP photo


def detect(
    image: np.ndarray | str | os.PathLike, backend: str = DEFAULT_DETECTOR, settings: DetectSettings | None = None
) -> list[Face]:
    """Detect every face in ``image`` and predict its 68 landmarks.

    image: (H,W,3) uint8 RGB (other layouts are normalised with
    :func:`backend.image_io.as_rgb_uint8`) or a file path (read with
    :func:`backend.image_io.load_image`, EXIF-upright). Returns faces sorted by detector score, most
    confident first (ties: larger first), each with ``index``/``count`` filled; [] when none.
    Raises ``ValueError`` for an unknown backend, :class:`WeightsNotFoundError` /
    :class:`DependencyMissingError` when the backend cannot run.
    """
    settings = settings or DetectSettings()
    if backend not in BACKENDS:
        raise ValueError(f"unknown detector backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    rgb = _as_image(image)
    if backend == "dlib":
        faces = detect_dlib(rgb, settings)
    elif backend == "auto":
        faces = detect_auto(rgb, settings)
    elif backend == "mediapipe":
        faces = detect_mediapipe(rgb, settings)
    else:
        faces = detect_face_alignment(rgb, settings)
    return rank_faces(faces)


def detect_one(
    image: np.ndarray | str | os.PathLike,
    face: int = 0,
    min_size: float = DEFAULT_MIN_SIZE,
    backend: str = DEFAULT_DETECTOR,
    settings: DetectSettings | None = None,
    name: str = "",
) -> Face:
    """The ``face``-th confident face, largest first (0 = the largest), checked for size.

    Detections scoring below their detector's threshold (:data:`.choose.MIN_SCORE`, measured on
    the dev photos, docs/reliability.md) are dropped when a face reaches it; the rest are ordered
    by size (:func:`.choose.choose_faces`). The returned :class:`Face` carries ``count``,
    ``index`` and, when several faces remain, ``note``: one line listing each (index, box, score).
    ``name`` (default: the path when one is given) is put into messages.

    Raises :class:`PhotoheadError` for ``face`` < 0, :class:`NoFaceError` when nothing is found
    or ``face`` ≥ the count, and :class:`FaceTooSmallError` when the chosen face's size (longer
    side of its landmarks' box, pixels) is below ``min_size``.
    """
    check_face_index(face)
    if not name and isinstance(image, (str, os.PathLike)):
        name = os.fspath(image)
    where = f" in {name}" if name else ""
    rgb = _as_image(image)

    def find(img: np.ndarray) -> list[Face]:
        return choose_faces(detect(img, backend=backend, settings=settings))

    faces, turns = detect_turned(rgb, find, find(rgb))  # a face on its side or upside down: the photo's turns
    if not faces:
        h, w = rgb.shape[:2]
        raise NoFaceError(
            f"no face found{where} ({w}×{h} px): use a photo where the face is visible, "
            f"roughly frontal and at least {int(min_size)} px across"
        )
    if face >= len(faces):
        raise NoFaceError(
            f"face #{face} requested{where} but only {len(faces)} face(s) found (valid: 0..{len(faces) - 1}; "
            f"{faces_report(faces, name)})"
        )
    chosen = faces[face]
    if chosen.size < min_size:
        raise FaceTooSmallError(
            f"face too small{where}: {chosen.size:.0f} px, need ≥ {min_size:.0f} px: "
            "use a larger or closer photo of the face"
        )
    if len(faces) > 1:
        chosen = replace(chosen, note=f"{faces_report(faces, name)}; using #{face}" +
                         (" (the largest; --face N picks another)" if face == 0 else ""))
    if turns:
        turned = f"the face{where} is upright with the photo turned {turn_words(turns)} (its orientation tag is " \
                 "missing or wrong, or the head lies on its side): found there; the results keep the photo's frame"
        chosen = replace(chosen, note="; ".join(n for n in (turned, chosen.note) if n))
    return chosen
