"""``auto`` backend: MediaPipe's Face Mesh checks dlib's 68 points, and replaces them when they disagree.

dlib's 68-point predictor is the more precise of the two on photos like its 300-W training data
(near-frontal, face well framed), but past ~40° of yaw, and on renders, it pastes a frontal layout
beside the face. Face Mesh (a 3-D mesh regressed from a rotated crop) keeps its points on the face
at those poses. So both run; for each Face Mesh face, dlib's points are kept when their mean
distance to the mesh's 68 points is below :data:`AGREE` × the mesh's outer-eye distance, the
mesh's 68 points from :data:`MESH_ONLY`, and a blend between (:func:`mesh_weight`; ``Face.backend``
"dlib", "auto" for a blend, or "mediapipe"). Every face keeps the mesh's
``dense`` points and ``presence`` (and ``disagreement``, the distance that decided). When BlazeFace
finds no face (near profile) but dlib boxed one, Face Mesh runs in dlib's box (three passes, the
first unlevelled); when that finds no face either, BlazeFace's weaker candidates are tried, each
verified by the mesh (:func:`.mediapipe_backend.weak_mesh_faces`); when nothing verifies the face,
dlib's faces are returned with the mesh's (low) presence in their box, for the trust check. A face only dlib
finds beside BlazeFace's (a smaller second person) is kept when Face Mesh in its box confirms it; dlib's
unconfirmed faces (HOG false positives on textures) are returned only when the mesh finds no face at all. Without the
MediaPipe files this is dlib alone, with a warning (``photohead models fetch mediapipe``).
"""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np

from ..errors import WeightsNotFoundError
from .base import DetectSettings, Face
from .dlib_backend import detect_dlib
from .mediapipe_backend import MIN_PRESENCE, detect_mediapipe, mesh_faces_in_boxes, weak_mesh_faces
from .mediapipe_nets import MEDIAPIPE_FILES, find_mediapipe_file

__all__ = ["AGREE", "MESH_ONLY", "SAME_FACE", "MISSING_MEDIAPIPE", "MediaPipeMissingWarning", "detect_auto", "disagreement", "mediapipe_available", "mesh_weight"]

# Mean distance between dlib's and the mesh's 68 points, in mesh eye distances (outer corners
# 36–45): below AGREE dlib's points are kept, from MESH_ONLY the mesh's, between them a blend
# (mesh_weight). Between 0.10 and 0.15 the mesh was the wrong one on faces_dev (3 photos, dlib's
# own training data) and the better one on the renders (5 faces); beyond, dlib's (docs/mediapipe.md).
AGREE = 0.10
MESH_ONLY = 0.15
SAME_FACE = 0.5  # a dlib face and a mesh face whose centres are closer than this × the mesh face's size are one face
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


def mesh_weight(gap: float) -> float:
    """The mesh's share of the 68 points at a dlib–mesh ``gap`` (eye distances): 0 below
    :data:`AGREE`, 1 from :data:`MESH_ONLY`, linear between (no jump at a threshold)."""
    return float(np.clip((gap - AGREE) / (MESH_ONLY - AGREE), 0.0, 1.0))


def _centre_gap(face: Face, mesh_face: Face) -> float:
    """Distance between two faces' landmark centres in ``mesh_face``'s sizes (below
    :data:`SAME_FACE`: the same face)."""
    return float(np.linalg.norm(face.landmarks.mean(0) - mesh_face.landmarks.mean(0)) / mesh_face.size)


def _verified_dlib_only(image: np.ndarray, dlib_faces: list[Face], mesh_faces: list[Face],
                        settings: DetectSettings) -> list[Face]:
    """Face Mesh in the boxes of dlib's faces that no mesh face covers (:func:`_centre_gap`); the
    faces it confirms (presence ≥ MediaPipe's 0.5), HOG false positives dropped."""
    alone = [df for df in dlib_faces if all(_centre_gap(df, mf) >= SAME_FACE for mf in mesh_faces)]
    alone = alone[: settings.max_faces]
    if not alone:
        return []
    return mesh_faces_in_boxes(image, np.stack([df.box for df in alone]), np.array([df.score for df in alone]),
                               f"{alone[0].detector}-box", settings)


def detect_auto(image: np.ndarray, settings: DetectSettings) -> list[Face]:
    """All faces in ``image`` (H,W,3) uint8 RGB, unsorted (see the module docstring)."""
    dlib_faces = detect_dlib(image, settings)
    if not mediapipe_available(settings.weights_dir):
        warnings.warn(MISSING_MEDIAPIPE, MediaPipeMissingWarning, stacklevel=3)
        return dlib_faces
    mesh_faces = detect_mediapipe(image, settings)
    if not mesh_faces and dlib_faces:  # near profile BlazeFace may miss a face dlib (mmod) boxed
        boxed = dlib_faces[: settings.max_faces]
        meshed = mesh_faces_in_boxes(image, np.stack([df.box for df in boxed]), np.array([df.score for df in boxed]),
                                     f"{dlib_faces[0].detector}-box", settings, passes=max(settings.mesh_passes, 3),
                                     min_presence=0.0)
        mesh_faces = [mf for mf in meshed if mf.presence >= MIN_PRESENCE]
        if not mesh_faces:  # dlib's faces keep the mesh's doubt: a low presence, which the trust check reports
            dlib_faces = [replace(df, presence=mf.presence) for df, mf in zip(boxed, meshed)] + dlib_faces[len(boxed):]
    if not mesh_faces:  # near profile: BlazeFace's weaker candidates, each verified by the mesh
        mesh_faces = weak_mesh_faces(image, settings)
    elif dlib_faces:  # a face dlib boxed that BlazeFace missed (e.g. small beside a larger one): the mesh verifies it
        mesh_faces = mesh_faces + _verified_dlib_only(image, dlib_faces, mesh_faces, settings)
    out, used = [], set()
    for mf in mesh_faces:
        near = [(_centre_gap(df, mf), i) for i, df in enumerate(dlib_faces) if i not in used]
        near = [(d, i) for d, i in near if d < SAME_FACE]
        if near:
            i = min(near)[1]
            used.add(i)
            gap = disagreement(dlib_faces[i].landmarks, mf.landmarks)
            w = mesh_weight(gap)
            if w < 1.0:
                df = dlib_faces[i]
                lm = (1.0 - w) * df.landmarks + w * mf.landmarks
                out.append(replace(mf, landmarks=lm, backend="dlib" if w == 0.0 else "auto",
                                   detector=f"{df.detector}+mesh", disagreement=gap))
                continue
            mf = replace(mf, disagreement=gap)
        out.append(mf)
    return out if out else dlib_faces
