"""Closed-form orthographic pose from 2-D↔3-D correspondences (landmark initialisation)."""
from __future__ import annotations

import torch

from ..camera import Camera, rotation_to_euler

# Landmarks used for the initial pose: brows, nose, eyes, mouth. The jaw contour (0–16) is a
# silhouette, not fixed vertices, so it is left out of the rigid fit.
INNER_LANDMARKS = tuple(range(17, 68))


def fit_orthographic_pose(points3d: torch.Tensor, points2d: torch.Tensor, camera: Camera) -> torch.Tensor:
    """Least-squares scaled-orthographic pose mapping ``points3d`` onto ``points2d``.

    points3d: (B,N,3) model space mm; points2d: (B,N,2) image pixels (camera's convention).
    Returns pose (B,7) = (f, rx, ry, rz, tx, ty, 0) for :func:`backend.camera.project`: an affine
    camera is solved by least squares, then its two rows are projected to the nearest scaled
    rotation (SVD). Exact when the points are an exact scaled-orthographic image.

    Solved in float64 and returned in the input dtype: LAPACK's float32 lstsq/SVD results move
    in the last bits with the buffers' memory alignment, and the fit that starts from this pose
    amplifies a 1e-5 px difference into millimetres, so float32 here made fits irreproducible.
    """
    dtype = points3d.dtype
    points3d, points2d = points3d.double(), points2d.double()
    cx, cy = camera.center
    # image → "camera up" coordinates: u = x − cx, w = cy − y, so [u, w] = f·(R v)_xy + t
    target = torch.stack([points2d[..., 0] - cx, cy - points2d[..., 1]], -1)  # (B,N,2)
    X = torch.cat([points3d, torch.ones_like(points3d[..., :1])], -1)  # (B,N,4)
    A = torch.linalg.lstsq(X, target).solution  # (B,4,2)
    rows = A[:, :3, :].transpose(1, 2)  # (B,2,3)
    t = A[:, 3, :]  # (B,2)
    scale = rows.norm(dim=-1).mean(-1)  # (B,)
    r1, r2 = rows[:, 0], rows[:, 1]
    M = torch.stack([r1, r2, torch.cross(r1, r2, dim=-1) / scale[:, None]], 1)  # (B,3,3) ≈ f·R
    U, _, Vh = torch.linalg.svd(M)
    det = torch.det(U @ Vh)
    D = torch.diag_embed(torch.stack([torch.ones_like(det), torch.ones_like(det), det], -1))
    R = U @ D @ Vh
    # refine the scale for the orthonormal R: f = <target − t, (R v)_xy> / ‖(R v)_xy‖²
    rv = (points3d @ R.transpose(1, 2))[..., :2]
    centred = target - t[:, None]
    f = (centred * rv).sum((1, 2)) / (rv * rv).sum((1, 2)).clamp_min(1e-12)
    t = (target - f[:, None, None] * rv).mean(1)
    angles = rotation_to_euler(R)
    return torch.cat([f[:, None], angles, t, torch.zeros_like(f[:, None])], -1).to(dtype)
