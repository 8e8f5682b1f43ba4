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


def test_float32_pose_does_not_depend_on_memory_alignment():
    """The fit amplifies a 1e-5 px change of its starting pose into millimetres, so the closed
    form must give the same bits for the same values wherever they sit in memory (float32
    LAPACK did not: 4 different poses over 16 buffer offsets)."""
    g = torch.Generator().manual_seed(0)
    p3 = torch.randn(1, 51, 3, generator=g) * 40  # float32, as the fit calls it
    p2 = torch.randn(1, 51, 2, generator=g) * 30 + 112
    poses = set()
    for offset in range(16):
        buf3 = torch.zeros(p3.numel() + 16)
        buf2 = torch.zeros(p2.numel() + 16)
        buf3[offset : offset + p3.numel()] = p3.flatten()
        buf2[offset : offset + p2.numel()] = p2.flatten()
        pose = fit_orthographic_pose(buf3[offset : offset + p3.numel()].view(1, 51, 3),
                                     buf2[offset : offset + p2.numel()].view(1, 51, 2), Camera(224, 224))
        assert pose.dtype == torch.float32
        poses.add(tuple(pose[0].tolist()))
    assert len(poses) == 1
