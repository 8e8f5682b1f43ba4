"""The 68 iBUG (300-W) points as fixed weighted sums of Face Mesh's 468 points.

``mediapipe_68.json`` lists, per iBUG point, ``[mesh index, weight]`` pairs whose weights sum
to 1. They were fitted by least squares on faces_dev photos outside the landmark suite
(docs/mediapipe.md): Face Mesh has no vertex exactly where 300-W annotators put the brows, eye
corners or mouth corners, and its face oval is a fixed 3-D contour while the 300-W jaw is the 2-D
outline, so each point blends the ~10 nearest mesh points. The jaw stays a fixed blend: at large
yaw its far side lies inside the visible outline (the mesh's points there are hidden ones).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

__all__ = ["mesh_to_68", "mesh_68_matrix"]

TABLE_PATH = Path(__file__).with_name("mediapipe_68.json")


@functools.lru_cache(maxsize=1)
def mesh_68_matrix() -> np.ndarray:
    """(68,468) float64: iBUG points = matrix @ mesh points; every row sums to 1."""
    rows = json.loads(TABLE_PATH.read_text(encoding="utf-8"))["points"]
    m = np.zeros((68, 468))
    for i, row in enumerate(rows):
        for j, w in row:
            m[i, j] = w
    m /= m.sum(1, keepdims=True)  # the file rounds weights to 4 decimals
    m.flags.writeable = False
    return m


def mesh_to_68(points: np.ndarray) -> np.ndarray:
    """points (..., 468, 2+) px → (..., 68, 2) px (iBUG order: 36 = the subject's right outer eye corner)."""
    return np.einsum("lp,...pc->...lc", mesh_68_matrix(), np.asarray(points, np.float64)[..., :2])
