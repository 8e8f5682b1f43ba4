"""Closed-form pose: an exact orthographic image gives back its pose."""
import torch

from backend.camera import Camera, project
from backend.fit.pose_init import fit_orthographic_pose


def test_exact_pose_recovered():
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(3, 40, 3, generator=g, dtype=torch.float64) * 50
    cam = Camera(224, 224)
    pose = torch.tensor(
        [[1.1, 0.2, -0.5, 0.1, 3.0, -7.0, 0.0], [0.8, -0.3, 0.6, -0.2, -10.0, 5.0, 0.0], [1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
        dtype=torch.float64,
    )
    screen = project(pts, pose, cam)[..., :2]
    est = fit_orthographic_pose(pts, screen, cam)
    assert torch.allclose(est, pose, atol=1e-6)
    assert torch.allclose(project(pts, est, cam)[..., :2], screen, atol=1e-6)
