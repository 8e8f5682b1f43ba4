"""Faces in a photo that is turned: a quarter or half turn found by detecting in turned copies.

A phone photo whose orientation tag was lost, or a person lying down, shows the face on its side
or upside down. dlib's HOG detector and predictor expect an upright face; on such a photo the
detector finds nothing, or its CNN finds the face and the predictor lays a 68-point layout across
it (Face Mesh's presence then drops to 0); MediaPipe can even take a pattern beside an upside-down
face for an upright one. When dlib's upright HOG detector did not find the face,
:func:`detect_turned` asks it about the photo turned by 90°, 270° and 180° (exact pixel
permutations, ``np.rot90``; ~40 ms a turn), runs the detector on a turn where it finds one, and
maps that turn's faces back into the photo's own pixels (:func:`unturn_face`). Everything after detection works in the photo's frame: the crop's
similarity (:func:`backend.align.align_face`) takes up the roll, so exports, cameras and
landmark pins stay on the photo as the user has it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from .base import Face
from .choose import MIN_SCORE
from .dlib_backend import hog_score

__all__ = ["TURNS", "MIN_PRESENCE", "MAX_ROLL_DEG", "turn_points", "unturn_points", "unturn_face", "roll_deg",
           "is_sure", "detect_turned", "turn_words"]

TURNS = (1, 3, 2)  # quarter turns tried (np.rot90's k: counter-clockwise): 90°, 270°, 180°
MIN_PRESENCE = 0.8  # Face Mesh's presence of a sure face (backend.trust warns below it too)
MAX_ROLL_DEG = 45.0  # a turn counts only where its face is upright: the mouth below the eyes within this


def turn_points(points: np.ndarray, k: int, shape: tuple[int, ...]) -> np.ndarray:
    """Points (...,2+) x, y in pixels of an image of ``shape`` (H,W,…) → the same points in
    ``np.rot90(image, k)`` (0-based pixel centres; extra columns such as depth are kept)."""
    h, w = shape[:2]
    p = np.array(points, np.float64, copy=True)
    x, y = p[..., 0].copy(), p[..., 1].copy()
    k %= 4
    if k == 1:  # counter-clockwise: rot[i, j] = img[j, w-1-i]
        p[..., 0], p[..., 1] = y, w - 1 - x
    elif k == 2:
        p[..., 0], p[..., 1] = w - 1 - x, h - 1 - y
    elif k == 3:  # clockwise: rot[i, j] = img[h-1-j, i]
        p[..., 0], p[..., 1] = h - 1 - y, x
    return p


def unturn_points(points: np.ndarray, k: int, shape: tuple[int, ...]) -> np.ndarray:
    """Points in ``np.rot90(image, k)`` → the same points in ``image`` of ``shape`` (H,W,…)."""
    turned_shape = shape[:2] if k % 2 == 0 else (shape[1], shape[0])
    return turn_points(points, -k, turned_shape)


def unturn_face(face: Face, k: int, shape: tuple[int, ...]) -> Face:
    """A face detected in ``np.rot90(image, k)`` in the pixels of ``image`` (shape (H,W,…)):
    landmarks and Face Mesh points mapped back, the box the bounds of its mapped corners."""
    x0, y0, x1, y1 = face.box
    corners = unturn_points(np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]), k, shape)
    return replace(face, box=np.concatenate([corners.min(0), corners.max(0)]),
                   landmarks=unturn_points(face.landmarks, k, shape),
                   dense=None if face.dense is None else unturn_points(face.dense, k, shape))


def roll_deg(landmarks68: np.ndarray) -> float:
    """The face's in-plane turn in degrees (0: the mouth straight below the eyes, ±90: on its
    side, 180: upside down), from its 68 points (68,2) in pixels (y down)."""
    lm = np.asarray(landmarks68, np.float64)
    down = lm[48:68].mean(0) - lm[36:48].mean(0)
    return float(np.degrees(np.arctan2(-down[0], down[1])))


def is_sure(face: Face) -> bool:
    """Whether Face Mesh is sure of the face: its presence reaches :data:`MIN_PRESENCE`, or it did
    not run (dlib alone)."""
    return face.presence is None or face.presence >= MIN_PRESENCE


def detect_turned(rgb: np.ndarray, detect: Callable[[np.ndarray], list[Face]], upright: list[Face],
                  probe: Callable[[np.ndarray], float | None] = hog_score) -> tuple[list[Face], int]:
    """The faces of ``rgb`` (H,W,3), found in the photo as it is or in one of its quarter turns,
    and that turn k (np.rot90's, counter-clockwise; 0: as it is).

    ``detect`` maps an image to its chosen faces (largest confident first) and ``upright`` is its
    answer on ``rgb``. When dlib's upright HOG detector gave ``upright``'s first face, the photo is
    upright. Otherwise (no face; or dlib's CNN, MediaPipe or FAN found it: a profile, a face on its
    side, or a false face such as MediaPipe's on an upside-down photo) ``probe`` (HOG alone, about
    40 ms a turn) looks for an upright face in the turns; ``detect`` runs on the best-scoring turn
    scoring at least ``MIN_SCORE["hog"]``, and its first face replaces ``upright`` when Face Mesh
    is sure of it (:func:`is_sure`) and it is upright there (:func:`roll_deg` within
    :data:`MAX_ROLL_DEG`). The faces returned are in ``rgb``'s pixels."""
    if upright and upright[0].detector.startswith("hog"):
        return upright, 0
    scores = {k: probe(np.ascontiguousarray(np.rot90(rgb, k))) for k in TURNS}
    found = {k: v for k, v in scores.items() if v is not None and v >= MIN_SCORE["hog"]}
    if not found:
        return upright, 0
    k = max(found, key=found.get)
    faces = detect(np.ascontiguousarray(np.rot90(rgb, k)))
    if not faces or not is_sure(faces[0]) or abs(roll_deg(faces[0].landmarks)) > MAX_ROLL_DEG:
        return upright, 0
    return [unturn_face(f, k, rgb.shape) for f in faces], k


def turn_words(k: int) -> str:
    """How a photo was turned, for messages: k quarter turns counter-clockwise."""
    return {1: "90° counter-clockwise", 2: "180°", 3: "90° clockwise"}[k % 4]
