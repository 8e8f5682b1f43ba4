"""Phong tessellation (Boubekeur & Alexa 2008): the smooth surface over a triangle mesh that
the fit's UV position map (:func:`backend.uvmaps.uv_position_map`, torch) and the exported
whole-head detailed mesh (:mod:`backend.detailed_head`, numpy) both lie on.

A point with barycentrics b over corners p_k with unit normals n_k: the linear point q = Σ b_k p_k
is projected onto each corner's tangent plane, q − ((q − p_k)·n_k) n_k, the projections are
blended by b, and the result is mixed with q by ``PHONG_ALPHA``. Along an edge it depends only on
that edge's two corners, so neighbouring triangles meet without cracks.
"""
from __future__ import annotations

from typing import TypeVar

Array = TypeVar("Array")  # numpy.ndarray or torch.Tensor: the formula is the same for both

__all__ = ["PHONG_ALPHA", "phong_points"]

# Shape factor: 0 = flat triangles, 1 = fully projected. On a sphere of 10° facets ½ leaves
# 0.008 mm mean radial error per 100 mm (flat: 0.40 mm inside; their visual choice ¾: 0.19 mm
# outside), so ½ is the geometric choice.
PHONG_ALPHA = 0.5


def phong_points(flat: Array, corners: Array, normals: Array, bary: Array) -> Array:
    """The Phong points of linear points. numpy arrays or torch tensors, broadcast together:
    flat (...,3) the linear points Σ b_k p_k; corners (...,3,3) the triangle's corner positions
    and normals (...,3,3) their unit vertex normals; bary (...,3). Returns (...,3)."""
    q = flat[..., None, :]
    projected = q - ((q - corners) * normals).sum(-1)[..., None] * normals  # onto each corner's tangent plane
    return (1.0 - PHONG_ALPHA) * flat + PHONG_ALPHA * (bary[..., None] * projected).sum(-2)
