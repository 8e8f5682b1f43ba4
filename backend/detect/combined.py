"""``auto`` backend: MediaPipe's Face Mesh checks dlib's 68 points, and replaces them when they disagree.

dlib's 68-point predictor is the more precise of the two on photos like its 300-W training data
(near-frontal, face well framed), but past ~40° of yaw, and on renders, it pastes a frontal layout
beside the face. Face Mesh (a 3-D mesh regressed from a rotated crop) keeps its points on the face
at those poses. So both run; for each Face Mesh face, dlib's points are kept when their mean
distance to the mesh's 68 points is below :data:`AGREE` × the mesh's outer-eye distance, and
the mesh's 68 points are used otherwise (``Face.backend`` says which). Every face keeps the mesh's
``dense`` points and ``presence`` (and ``disagreement``, the distance that decided). When BlazeFace
finds no face (near profile) but dlib boxed one, Face Mesh runs in dlib's box (three passes, the
first unlevelled); when that finds no face either, BlazeFace's weaker candidates are tried, each
verified by the mesh (:func:`.mediapipe_backend.weak_mesh_faces`). Faces only dlib finds
(HOG false positives on textures) are returned only when the mesh finds no face at all. Without the
MediaPipe files this is dlib alone, with a warning (``photohead models fetch mediapipe``).
"""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np

from ..errors import WeightsNotFoundError
from .base import DetectSettings, Face
from .dlib_backend import detect_dlib
from .mediapipe_backend import detect_mediapipe, mesh_faces_in_boxes, weak_mesh_faces
from .mediapipe_nets import MEDIAPIPE_FILES, find_mediapipe_file

__all__ = ["AGREE", "MISSING_MEDIAPIPE", "MediaPipeMissingWarning", "detect_auto", "disagreement", "mediapipe_available"]

# Largest mean distance between dlib's and the mesh's 68 points, in mesh eye distances (outer
# corners 36–45), at which dlib's points are kept. On faces_dev the mesh was the wrong one at
# 0.10–0.12 (3 photos) and dlib's layout at 0.17 and beyond (docs/mediapipe.md).
AGREE = 0.15
MISSING_MEDIAPIPE = ("MediaPipe's weights are missing, so dlib's landmarks are used unchecked "
                     "(they fail at large head turns): `photohead models fetch mediapipe` adds them")


class MediaPipeMissingWarning(UserWarning):
    """``auto`` ran dlib alone: MediaPipe's weights are not on disk (:data:`MISSING_MEDIAPIPE`)."""


def mediapipe_available(folder: str | None = None) -> bool:
    """Whether every MediaPipe ``.tflite`` this backend needs is on disk."""
    try:
        for name in MEDIAPIPE_FILES:
            find_mediapipe_file(name, folder)
    except WeightsNotFoundError:
        return False
    return True


def disagreement(a: np.ndarray, mesh68: np.ndarray) -> float:
    """Mean distance between (68,2) point sets, in units of ``mesh68``'s outer-eye distance."""
    eye = max(float(np.linalg.norm(mesh68[36] - mesh68[45])), 1e-6)
    return float(np.linalg.norm(np.asarray(a) - mesh68, axis=1).mean() / eye)


def detect_auto(image: np.ndarray, settings: DetectSettings) -> list[Face]:
    """All faces in ``image`` (H,W,3) uint8 RGB, unsorted (see the module docstring)."""
    dlib_faces = detect_dlib(image, settings)
    if not mediapipe_available(settings.weights_dir):
        warnings.warn(MISSING_MEDIAPIPE, MediaPipeMissingWarning, stacklevel=3)
        return dlib_faces
    mesh_faces = detect_mediapipe(image, settings)
    if not mesh_faces and dlib_faces:  # near profile BlazeFace may miss a face dlib (mmod) boxed
        boxes = np.stack([df.box for df in dlib_faces[: settings.max_faces]])
        scores = np.array([df.score for df in dlib_faces[: settings.max_faces]])
        mesh_faces = mesh_faces_in_boxes(image, boxes, scores, f"{dlib_faces[0].detector}-box", settings,
                                         passes=max(settings.mesh_passes, 3))
    if not mesh_faces:  # near profile: BlazeFace's weaker candidates, each verified by the mesh
        mesh_faces = weak_mesh_faces(image, settings)
    out, used = [], set()
    for mf in mesh_faces:
        centre, size = mf.landmarks.mean(0), mf.size
        near = [(np.linalg.norm(df.landmarks.mean(0) - centre), i) for i, df in enumerate(dlib_faces) if i not in used]
        near = [(d, i) for d, i in near if d < 0.5 * size]
        if near:
            i = min(near)[1]
            used.add(i)
            gap = disagreement(dlib_faces[i].landmarks, mf.landmarks)
            if gap < AGREE:
                df = dlib_faces[i]
                out.append(replace(mf, landmarks=df.landmarks, backend="dlib", detector=f"{df.detector}+mesh",
                                   disagreement=gap))
                continue
            mf = replace(mf, disagreement=gap)
        out.append(mf)
    return out if out else dlib_faces
