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


def _boxes_over_points(xy: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate (point, box) pairs: every box (B,2) lo–hi that may hold a point xy (N,2), found
    through a uniform grid of cells the size of a typical box (each box listed in the cells it
    overlaps, each point looking in its own cell): a superset of the boxes that hold it.
    Returns (point (P,), box (P,)) int64."""
    if len(lo) == 0 or len(xy) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cell = max(float(np.median(np.max(hi - lo, axis=1))), 1e-6)
    origin = np.minimum(lo.min(0), xy.min(0))
    c0 = np.floor((lo - origin) / cell).astype(np.int64)  # (B,2) first and last cells per box
    c1 = np.floor((hi - origin) / cell).astype(np.int64)
    ncol = int(max(c1[:, 0].max(), np.floor((xy[:, 0].max() - origin[0]) / cell))) + 1
    span = c1 - c0 + 1  # (B,2)
    per_box = span[:, 0] * span[:, 1]
    box = np.repeat(np.arange(len(lo)), per_box)
    k = np.arange(len(box)) - np.repeat(np.cumsum(per_box) - per_box, per_box)  # index within its box's cells
    cx = c0[box, 0] + k % span[box, 0]
    cy = c0[box, 1] + k // span[box, 0]
    key = cy * ncol + cx
    order = np.argsort(key, kind="stable")
    key, box = key[order], box[order]
    pc = np.floor((xy - origin) / cell).astype(np.int64)
    pkey = pc[:, 1] * ncol + pc[:, 0]
    start, stop = np.searchsorted(key, pkey, "left"), np.searchsorted(key, pkey, "right")
    counts = stop - start
    point = np.repeat(np.arange(len(xy)), counts)
    at = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(start, counts)
    return point, box[at]


def skin_behind(points: np.ndarray, skin: np.ndarray, skin_faces: np.ndarray, reach: float) -> np.ndarray:
    """(N,) mm: how far ``points`` (N,3) lie in front of the skin (V,3), faces (F,3)
    counter-clockwise from outside: the distance straight back (−z) to the first skin triangle
    when the ray meets its outer face (the skin faces the point), else 0. Within ``reach`` mm."""
    from .head_parts import ray_triangle_pairs

    p = np.asarray(points, np.float64)
    skin = np.asarray(skin, np.float64)
    faces = np.asarray(skin_faces, np.int64)
    out = np.zeros(len(p))
    if len(p) == 0:
        return out
    corners = skin[faces]  # (F,3 corners,3)
    lo, hi = corners.min(1), corners.max(1)
    # only triangles the rays can meet: overlapping the points seen from the front, within reach behind them
    keep = np.all((hi[:, :2] >= p[:, :2].min(0)) & (lo[:, :2] <= p[:, :2].max(0)), axis=1)
    keep &= (hi[:, 2] >= p[:, 2].min() - reach) & (lo[:, 2] <= p[:, 2].max())
    a, b, c = (corners[keep, k] for k in range(3))
    lo, hi = lo[keep], hi[keep]
    if len(a) == 0:
        return out
    back = np.broadcast_to(-FORWARD, p.shape)
    ray, tri = _boxes_over_points(p[:, :2], lo[:, :2], hi[:, :2])
    if len(ray) == 0:
        return out
    # the triangle's box holds the ray: seen from the front around the point, not all in front of it
    inside = np.all((lo[tri, :2] <= p[ray, :2]) & (hi[tri, :2] >= p[ray, :2]), axis=1)
    inside &= (lo[tri, 2] <= p[ray, 2]) & (hi[tri, 2] >= p[ray, 2] - reach)
    ray, tri = ray[inside], tri[inside]
    hit, t, det = ray_triangle_pairs(p[ray], back[ray], a[tri], b[tri], c[tri], reach)
    first = np.full(len(p), np.inf)
    np.minimum.at(first, ray[hit], t[hit])
    facing = hit & (t == first[ray]) & (det > 0)  # det > 0: the ray meets the face against its normal
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
