"""Is a reconstruction trustworthy? Evidence from the fit itself, and warnings when it is not.

A fit follows its landmarks; when the detector pasted a frontal layout beside a turned head, the
fit twists the head to match and nothing looked wrong. The evidence used here needs no ground
truth:

- ``landmark_residual``: mean distance between the fitted model's projected 68 points and the
  detected ones, in the face's outer-eye distances (36–45; the detection's, unforeshortened by
  the fitted yaw: the eye distance seen from the front, so a turned head is held to the same face
  proportions as a frontal one). A fit that cannot explain its
  landmarks is large here. Not warned on for a view whose landmarks the fit was told not to
  follow (``landmarks_followed`` False: a side view of a multi-view set, whose landmark term the
  yaw term of :mod:`backend.fit.view_weights` took down; the robust view weights judge it).
- ``mesh_disagreement``: the same distance between the fitted points and Face Mesh's 68 points
  (an independent 3-D detector; only when it ran: ``--detector mediapipe`` or ``auto``). Face
  Mesh's jaw is a fixed 3-D contour, so it is compared with the fit's fixed-vertex points
  (``landmarks68_3d``) when given, not with its 2-D silhouette.
- ``detector_disagreement``: ``auto`` only: the same distance between dlib's and Face Mesh's 68
  points before the fit (mesh eye distances). Small: both agree. Large: dlib pasted a frontal
  layout and the mesh's points were used. In between neither is clearly right.
- ``presence``: Face Mesh's face-presence probability for the crop.
- ``face_detector``, ``face_score``: what found the face and its confidence
  (:attr:`backend.prepare.PreparedView.face_detector`). A face only BlazeFace's weak candidates
  (below its own threshold, :data:`backend.detect.base.WEAK_DETECTOR`) found is always named:
  Face Mesh's presence is no proof there (0.95 on the wood grain beside skimage's coffee cup).
- ``yaw_deg``: the fitted head's yaw; beyond ``max_yaw_deg`` the far half of the face is unseen.
- ``identity_norm``: ‖x_id‖/√K_id of the fitted identity (unit-variance coefficients); at the
  fit's identity ball the shape was held back by the bound, not by the photo.
- ``photo_error``: the coarse fit's last photometric loss (mean over views; recorded, not warned on).

:func:`assess` returns the per-view evidence, flat summary metrics (for ``params.json``) and one
warning line per problem.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .detect.base import WEAK_DETECTOR

__all__ = ["TrustSettings", "ViewEvidence", "assess", "view_evidence"]


@dataclass(frozen=True)
class TrustSettings:
    """Thresholds of :func:`assess` (units as in the module docstring).

    - ``max_landmark_residual``: fitted vs detected points, eye distances.
    - ``max_mesh_disagreement``: fitted vs Face Mesh points, eye distances.
    - ``detector_doubt``: (lo, hi): warn when dlib and Face Mesh disagree by more than lo and
      less than hi eye distances (``auto``; above hi dlib's layout is plainly wrong and the mesh's is used).
    - ``min_presence``: Face Mesh's face-presence probability.
    - ``max_yaw_deg``: |yaw| of the fitted head, degrees.
    - ``id_ball_fraction``: warn when ‖x_id‖/√K reaches this fraction of the fit's identity ball.
    """

    max_landmark_residual: float = 0.05
    max_mesh_disagreement: float = 0.12
    detector_doubt: tuple[float, float] = (0.10, 0.15)  # hi: backend.detect.combined.AGREE
    min_presence: float = 0.8
    max_yaw_deg: float = 75.0
    id_ball_fraction: float = 0.98


@dataclass(frozen=True)
class ViewEvidence:
    """One view's evidence (None where it does not apply)."""

    name: str
    landmark_residual: float
    yaw_deg: float
    mesh_disagreement: float | None = None
    presence: float | None = None
    detector_disagreement: float | None = None
    landmarks_followed: bool = True
    face_detector: str = ""
    face_score: float | None = None


MAX_FORESHORTENING_DEG = 60.0  # beyond this yaw the eye distance is not scaled up further


def _eye_units(a: np.ndarray, b: np.ndarray, ref: np.ndarray, yaw_rad: float = 0.0) -> float:
    """Mean distance between (68,2) point sets a and b, in ``ref``'s outer-eye distances seen
    from the front: the photo's eye distance over cos(yaw), yaw capped at
    :data:`MAX_FORESHORTENING_DEG`."""
    cos = max(math.cos(yaw_rad), math.cos(math.radians(MAX_FORESHORTENING_DEG)))
    eye = max(float(np.linalg.norm(ref[36] - ref[45])) / cos, 1e-6)
    return float(np.linalg.norm(np.asarray(a, np.float64) - b, axis=1).mean() / eye)


def view_evidence(name: str, fitted68: np.ndarray, detected68: np.ndarray, yaw_rad: float,
                  mesh68: np.ndarray | None = None, presence: float | None = None,
                  detector_disagreement: float | None = None, fitted68_3d: np.ndarray | None = None,
                  face_detector: str = "", face_score: float | None = None) -> ViewEvidence:
    """Evidence for one view: points (68,2) photo px (``fitted68``: the fit's 2-D silhouette
    convention; ``fitted68_3d``: its fixed-vertex points, compared with Face Mesh's when given),
    yaw in radians."""
    fixed = fitted68 if fitted68_3d is None else fitted68_3d
    return ViewEvidence(
        name=name, landmark_residual=_eye_units(fitted68, detected68, detected68, yaw_rad), yaw_deg=math.degrees(yaw_rad),
        mesh_disagreement=None if mesh68 is None else _eye_units(fixed, mesh68, mesh68, yaw_rad), presence=presence,
        detector_disagreement=detector_disagreement,
        face_detector=face_detector, face_score=face_score,
    )


def assess(views: list[ViewEvidence], id_coeffs: np.ndarray, id_ball: float | None,
           settings: TrustSettings | None = None, photo_error: float | None = None) -> tuple[dict[str, float], list[str]]:
    """Summary metrics ``trust_*`` (worst view) and warning lines for ``views`` and the identity
    (``photo_error``: the coarse fit's last photometric loss, when it ran)."""
    s = settings or TrustSettings()
    warn: list[str] = []
    for v in views:
        where = f"{v.name}: " if len(views) > 1 or v.name else ""
        if v.landmarks_followed and v.landmark_residual > s.max_landmark_residual:
            warn.append(f"{where}the fitted face misses its landmarks by {100 * v.landmark_residual:.0f} % of the eye "
                        "distance: the head may be wrong (check the overlay in preview.png)")
        if v.mesh_disagreement is not None and v.mesh_disagreement > s.max_mesh_disagreement:
            warn.append(f"{where}the fitted face is {100 * v.mesh_disagreement:.0f} % of the eye distance away from Face "
                        "Mesh's landmarks: the landmarks or the fit are likely wrong")
        lo, hi = s.detector_doubt
        if v.detector_disagreement is not None and lo < v.detector_disagreement < hi:
            warn.append(f"{where}dlib and Face Mesh place the landmarks {100 * v.detector_disagreement:.0f} % of the eye "
                        "distance apart and were blended: either may be off (check the overlay in preview.png)")
        if v.presence is not None and v.presence < s.min_presence:
            warn.append(f"{where}Face Mesh is unsure this is a face (presence {v.presence:.2f}): the landmarks may be "
                        "wrong (check the overlay in preview.png)")
        if v.face_detector == WEAK_DETECTOR:
            score = "" if v.face_score is None else f" (score {v.face_score:.2f})"
            warn.append(f"{where}only a weak detection found this face{score}: it may not be a face "
                        "(check the overlay in preview.png)")
        if abs(v.yaw_deg) > s.max_yaw_deg:
            warn.append(f"{where}the head is turned {abs(v.yaw_deg):.0f}° (beyond ±{s.max_yaw_deg:.0f}°): "
                        "the far side of the face is guessed")
    ids = np.asarray(id_coeffs, np.float64).reshape(-1)
    id_norm = float(np.linalg.norm(ids) / math.sqrt(max(ids.size, 1)))
    if id_ball is not None and id_norm >= s.id_ball_fraction * id_ball:
        warn.append(f"the identity is at the edge of the allowed range (‖x_id‖/√K = {id_norm:.2f}, bound {id_ball:.2f}): "
                    "the shape may be exaggerated")
    metrics = {
        "trust_landmark_residual": max(v.landmark_residual for v in views),
        "trust_yaw_deg": max(abs(v.yaw_deg) for v in views),
        "trust_identity_norm": id_norm,
    }
    meshes = [v.mesh_disagreement for v in views if v.mesh_disagreement is not None]
    if meshes:
        metrics["trust_mesh_disagreement"] = max(meshes)
    gaps = [v.detector_disagreement for v in views if v.detector_disagreement is not None]
    if gaps:
        metrics["trust_detector_disagreement"] = max(gaps)
    presences = [v.presence for v in views if v.presence is not None]
    if presences:
        metrics["trust_presence"] = min(presences)
    if photo_error is not None:
        metrics["trust_photo_error"] = float(photo_error)
    return metrics, warn
