"""Mouth parts that stay behind the skin: a per-head corrective for the mouth socket, gums,
tongue and teeth at the fitted expression.

ICT's expressions are sculpted one at a time; the mixes a fit finds on real photos (the jaw
open behind closed lips, ``mouthShrugLower`` raising the chin, ``mouthLeft`` with
``mouthRight``) can draw the skin below the lower lip in behind the lower teeth and the mouth
socket, so the dark socket, the gums or the teeth show through the chin. :func:`pull_behind_skin`
moves each such vertex straight back (along the head's −z, the face looking along +z) until it
sits ``margin`` behind the skin that faced it. A vertex seen through the open lips has no
forward-facing skin behind it (only the back of the head, seen from inside) and stays.

numpy only.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MOUTH_PARTS", "skin_behind", "pull_behind_skin"]

MOUTH_PARTS = ("mouth_socket", "gums_and_tongue", "teeth")
FORWARD = np.array([0.0, 0.0, 1.0])  # the face model looks along +z


def skin_behind(points: np.ndarray, skin: np.ndarray, skin_faces: np.ndarray, reach: float) -> np.ndarray:
    """(N,) mm: how far ``points`` (N,3) lie in front of the skin (V,3), faces (F,3)
    counter-clockwise from outside: the distance straight back (−z) to the first skin triangle
    when the ray meets its outer face (the skin faces the point), else 0. Within ``reach`` mm."""
    from .axis_rays import z_ray_hits

    out = np.zeros(len(points))
    ray, t, det = z_ray_hits(points, skin, skin_faces, -1.0, reach)
    first = np.full(len(points), np.inf)
    np.minimum.at(first, ray, t)
    facing = (t == first[ray]) & (det > 0)  # det > 0: the ray meets the face against its normal
    out[ray[facing]] = t[facing]
    return out


def pull_behind_skin(points: np.ndarray, skin: np.ndarray, skin_faces: np.ndarray, margin: float = 1.0,
                     reach: float = 20.0, passes: int = 3) -> np.ndarray:
    """``points`` (N,3) mm in front of the skin (V,3), faces (F,3) counter-clockwise from outside
    (:func:`skin_behind`), moved back along −z to ``margin`` behind it; the others unchanged.
    (N,3) float64. Folded skin can stack layers, so the test repeats up to ``passes`` times on
    the points it moved."""
    p = np.asarray(points, np.float64).copy()
    todo = np.arange(len(p))
    for _ in range(passes):
        if len(todo) == 0:
            break
        depth = skin_behind(p[todo], skin, skin_faces, reach)
        out = depth > 0.0
        todo = todo[out]
        p[todo] -= (depth[out] + margin)[:, None] * FORWARD
    return p
