"""Which detected face a reconstruction uses: confident faces only, the largest first.

:func:`choose_faces` drops detections below :data:`MIN_SCORE` for their detector whenever some
face reaches it (a photo whose only face is a weak detection keeps it), then orders the rest by
size, so ``--face 0`` is the largest confident face. The thresholds come from the detector scores
of true and false faces on the dev photos (docs/reliability.md).
"""
from __future__ import annotations

from dataclasses import replace

from .base import Face

__all__ = ["MIN_SCORE", "choose_faces", "faces_report"]

# Minimum score per detector (Face.detector); other detectors keep every face. HOG: above every
# detection on the dev photos that was not a face; mmod: below every true face it found
# (docs/reliability.md, benchmarks/results/face_scores.json).
MIN_SCORE = {"hog": 0.3, "mmod": 0.5}


def _confident(face: Face) -> bool:
    return face.score >= MIN_SCORE.get(face.detector, float("-inf"))


def choose_faces(faces: list[Face]) -> list[Face]:
    """Confident faces (all of them when none is), largest first, with ``index``/``count`` set."""
    kept = [f for f in faces if _confident(f)] or list(faces)
    kept.sort(key=lambda f: (-f.size, -f.score))
    return [replace(f, index=i, count=len(kept)) for i, f in enumerate(kept)]


def faces_report(faces: list[Face], name: str = "") -> str:
    """One line naming every face: ``2 faces in x.jpg (largest first): #0 box (x0,y0,x1,y1) score s, ...``."""
    where = f" in {name}" if name else ""
    items = ", ".join(
        f"#{f.index} box ({f.box[0]:.0f},{f.box[1]:.0f},{f.box[2]:.0f},{f.box[3]:.0f}) score {f.score:.2f}" for f in faces
    )
    return f"{len(faces)} faces{where} (largest first): {items}"
