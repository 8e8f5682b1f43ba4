"""Dense landmark term of the coarse fit: Face Mesh's 468 points as fixed surface points.

Each Face Mesh point has a fixed place on the face model's surface (a triangle and barycentric
weights, :mod:`backend.facemodel.dense_points`). The term projects those surface points with
the view's pose and pulls them onto the detected points: mean squared 2-D distance in crop
pixels over all 468, visible or not (Face Mesh regresses a whole 3-D face, so its hidden points
are placed consistently with its visible ones), with no sliding contour. Views without dense
points (another detector, given landmarks) contribute nothing.

With dense points a view's 68-point jaw contour is down-weighted (``jaw_weight_with_dense``):
the mesh's face oval holds the same evidence without the silhouette ambiguity.
"""
from __future__ import annotations

import torch

from ..facemodel.dense_points import DensePoints, dense_points_for

__all__ = ["DenseTerm", "dense_term", "dense_loss"]


class DenseTerm:
    """The dense points of V views and the model surface points they pull.

    targets (V,P,2) crop px, NaN rows for views without dense points; ``vertices`` (P,3) long and
    ``weights`` (P,3) the surface points (:class:`DensePoints`), on the targets' device.
    """

    def __init__(self, table: DensePoints, targets: torch.Tensor):
        dev, dt = targets.device, targets.dtype
        self.vertices = torch.as_tensor(table.vertices, device=dev)
        self.weights = torch.as_tensor(table.weights, device=dev, dtype=dt)
        self.has = torch.isfinite(targets).all(-1).all(-1)  # (V,) bool
        self.targets = torch.nan_to_num(targets)

    def vertex_ids(self) -> torch.Tensor:
        """(3P,) the model vertices the term reads."""
        return self.vertices.reshape(-1)

    def points(self, screen_xy: torch.Tensor, vertex_map: torch.Tensor | None = None) -> torch.Tensor:
        """Projected surface points (V,P,2) from screen vertices (V,N,2) px; ``vertex_map`` (N_model,)
        maps model vertex ids to rows of ``screen_xy`` when it holds a subset of the vertices."""
        vid = self.vertices if vertex_map is None else vertex_map[self.vertices]
        return (screen_xy[:, vid] * self.weights[None, ..., None]).sum(-2)

    def loss(self, points: torch.Tensor, size: int, crop: int, view_weights: torch.Tensor | None = None,
             scale: torch.Tensor | None = None) -> torch.Tensor:
        """Mean squared distance (px² of the ``crop``-px frame) between ``points`` (V,P,2) in a
        ``size``² image and the targets (given in the ``crop``² frame, pixel-centre convention);
        ``view_weights`` (V,) as in :func:`dense_loss`; ``scale`` (V,) multiplies each view's
        squared distances (:func:`.landmark_noise.landmark_trust`; None: 1)."""
        k = size / crop
        target = self.targets * k + 0.5 * k - 0.5
        if scale is not None:
            points = target + scale.sqrt()[:, None, None] * (points - target)
        return dense_loss(points, target, self.has, view_weights) / k**2


def dense_loss(points: torch.Tensor, target: torch.Tensor, has: torch.Tensor,
               view_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over points of the squared 2-D distance, in the views that ``has`` (V,) bool, then the
    mean over all V views (a view without dense points counts 0, as a mean over equal items, like
    L_lm: a batch of fits sums its items' losses). points, target (V,P,2) px. ``view_weights`` (V,)
    ≥ 0 (a multi-view fit's landmark weights, :mod:`.view_weights`): the weighted mean Σ w·x / Σ w
    over views instead."""
    sq = ((points - target) ** 2).sum(-1).mean(-1) * has.to(points.dtype)  # (V,)
    return sq.mean() if view_weights is None else (sq * view_weights).sum() / view_weights.sum()


def dense_term(model, dense: torch.Tensor | None) -> DenseTerm | None:
    """The term for ``model`` and dense targets (V,P,2) crop px (NaN rows: views without), or
    None when there are none or the model has no Face Mesh table."""
    if dense is None or not torch.isfinite(dense).all(-1).all(-1).any():
        return None
    table = dense_points_for(model)
    return None if table is None else DenseTerm(table, dense)
