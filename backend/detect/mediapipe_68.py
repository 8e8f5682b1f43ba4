"""The 68 iBUG points as fixed weighted sums of Face Mesh's 468 points (placeholder)."""
from __future__ import annotations

import numpy as np

__all__ = ["mesh_to_68"]

# temporary: single vertices, to be calibrated
_IDX = np.array([127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,
                 70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 168, 197, 5, 4, 75, 97, 2, 326, 305,
                 33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380, 61, 39, 37, 0, 267, 269, 291,
                 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87])


def mesh_to_68(points: np.ndarray) -> np.ndarray:
    """points (468,2+) px → (68,2) px."""
    return np.asarray(points, np.float64)[_IDX, :2].copy()
