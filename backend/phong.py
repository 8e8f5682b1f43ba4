"""Phong tessellation (Boubekeur & Alexa 2008): the smooth surface over a triangle mesh that
the fit's UV position map (:func:`backend.uvmaps.uv_position_map`, torch) and the exported
whole-head detailed mesh (:mod:`backend.detailed_head`, numpy) both lie on.

A point with barycentrics b over corners p_k with unit normals n_k: the linear point q = Σ b_k p_k
is projected onto each corner's tangent plane, q − ((q − p_k)·n_k) n_k, the projections are
blended by b, and the result is mixed with q by ``PHONG_ALPHA``. Along an edge it depends only on
that edge's two corners, so neighbouring triangles meet without cracks.
"""
from __future__ import annotations

import numpy as np

__all__ = ["PHONG_ALPHA", "phong_points"]

# Shape factor: 0 = flat triangles, 1 = fully projected. On a sphere of 10° facets ½ leaves
# 0.008 mm mean radial error per 100 mm (flat: 0.40 mm inside; their visual choice ¾: 0.19 mm
# outside), so ½ is the geometric choice.
PHONG_ALPHA = 0.5


def phong_points(corners: np.ndarray, normals: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """corners (N,3,3) positions, normals (N,3,3) unit vertex normals, bary (N,3) → (N,3) points."""
    b = bary[..., None]
    flat = (b * corners).sum(1)
    q = flat[:, None]
    projected = q - ((q - corners) * normals).sum(-1, keepdims=True) * normals
    return (1.0 - PHONG_ALPHA) * flat + PHONG_ALPHA * (b * projected).sum(1)
