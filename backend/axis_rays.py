"""Rays along the face model's z axis against a triangle mesh: the view from the front (+z) or
straight back into the head (−z). A triangle such a ray meets covers the ray's (x, y), so the
candidates come from a uniform 2-D grid over the triangles' (x, y) boxes instead of a 3-D
search around each segment; each candidate pair is then tested exactly
(:func:`backend.head_parts.ray_triangle_pairs`). numpy only.
"""
from __future__ import annotations

import numpy as np

__all__ = ["boxes_over_points", "z_ray_hits"]

PAD = 1e-6  # mm: boxes grown by this much, so a hit on a triangle's edge is never missed by the search


def boxes_over_points(xy: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def z_ray_hits(origins: np.ndarray, verts: np.ndarray, faces: np.ndarray, direction: float, reach: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every meeting of the rays ``origins + s·(0, 0, direction)`` (origins (N,3) mm, direction
    +1 or −1), s ∈ (0, ``reach``], with the triangles ``faces`` (F,3) over ``verts`` (V,3).
    Returns (ray (P,) int64, s (P,), det (P,)) per meeting, det as in
    :func:`backend.head_parts.ray_triangle_pairs` (> 0: the ray meets the face against its normal)."""
    from .head_parts import ray_triangle_pairs

    o = np.asarray(origins, np.float64)
    none = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    if len(o) == 0 or len(faces) == 0:
        return none
    corners = np.asarray(verts, np.float64)[np.asarray(faces, np.int64)]  # (F,3 corners,3)
    lo, hi = corners.min(1) - PAD, corners.max(1) + PAD
    # the z range a ray covers: (z, z + reach] looking up, [z − reach, z) looking back
    near, far = (o[:, 2], o[:, 2] + reach) if direction > 0 else (o[:, 2] - reach, o[:, 2])
    keep = np.all((hi[:, :2] >= o[:, :2].min(0)) & (lo[:, :2] <= o[:, :2].max(0)), axis=1)
    keep &= (hi[:, 2] >= near.min()) & (lo[:, 2] <= far.max())
    corners, lo, hi = corners[keep], lo[keep], hi[keep]
    ray, tri = boxes_over_points(o[:, :2], lo[:, :2], hi[:, :2])
    # the triangle's box holds the ray: around the point seen from the front, within its z range
    inside = np.all((lo[tri, :2] <= o[ray, :2]) & (hi[tri, :2] >= o[ray, :2]), axis=1)
    inside &= (hi[tri, 2] >= near[ray]) & (lo[tri, 2] <= far[ray])
    ray, tri = ray[inside], tri[inside]
    if len(ray) == 0:
        return none
    d = np.broadcast_to(np.array([0.0, 0.0, float(np.sign(direction))]), (len(ray), 3))
    hit, s, det = ray_triangle_pairs(o[ray], d, corners[tri, 0], corners[tri, 1], corners[tri, 2], reach)
    return ray[hit], s[hit], det[hit]
