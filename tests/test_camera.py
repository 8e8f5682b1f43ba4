"""Camera: rotations, projection conventions and round trips."""
from __future__ import annotations

import math

import pytest
import torch

from backend.camera import (
    Camera, default_pose, euler_to_rotation, project, rotation_to_euler, to_camera_space, view_direction,
)


def test_rotation_is_orthonormal_and_euler_round_trips():
    g = torch.Generator().manual_seed(0)
    angles = (torch.rand(64, 3, generator=g, dtype=torch.float64) - 0.5) * torch.tensor([3.0, 2.8, 3.0], dtype=torch.float64)
    R = euler_to_rotation(angles)
    eye = torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    torch.testing.assert_close(R @ R.transpose(1, 2), eye)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(64, dtype=torch.float64))
    torch.testing.assert_close(rotation_to_euler(R), angles)


def test_rotation_axes_and_order():
    # Yaw +90° (ry) turns the face's +Z towards +X; pitch +90° (rx) turns +Y towards +Z.
    Ry = euler_to_rotation(torch.tensor([0.0, math.pi / 2, 0.0]))
    torch.testing.assert_close(Ry @ torch.tensor([0.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 0.0]), atol=1e-6, rtol=0)
    Rx = euler_to_rotation(torch.tensor([math.pi / 2, 0.0, 0.0]))
    torch.testing.assert_close(Rx @ torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]), atol=1e-6, rtol=0)
    # R = Rz·Ry·Rx: apply x first.
    a = torch.tensor([0.3, -0.2, 0.5])
    Rz = euler_to_rotation(torch.tensor([0.0, 0.0, 0.5]))
    Ry2 = euler_to_rotation(torch.tensor([0.0, -0.2, 0.0]))
    Rx2 = euler_to_rotation(torch.tensor([0.3, 0.0, 0.0]))
    torch.testing.assert_close(euler_to_rotation(a), Rz @ Ry2 @ Rx2)


def test_orthographic_projection_of_known_points():
    cam = Camera(width=101, height=81)
    pose = torch.tensor([[2.0, 0.0, 0.0, 0.0, 5.0, -3.0, 7.0]])
    v = torch.tensor([[[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]]])
    s = project(v, pose, cam)
    # centre (50, 40); x = cx + f·x + tx, y = cy − (f·y + ty), z = −(f·z + tz).
    expected = torch.tensor([[[55.0, 43.0, -7.0], [75.0, 43.0, -7.0], [55.0, 23.0, -7.0], [55.0, 43.0, -27.0]]])
    torch.testing.assert_close(s, expected)


def test_perspective_projection_and_back_projection():
    cam = Camera(64, 48, "perspective")
    pose = torch.tensor([[100.0, 0.1, -0.2, 0.05, 3.0, -2.0, -500.0]], dtype=torch.float64)
    v = torch.randn(1, 50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 40
    s = project(v, pose, cam)
    cam_v = to_camera_space(v, pose, "perspective")
    torch.testing.assert_close(s[..., 2], -cam_v[..., 2])
    # Back-project pixels with their depth: recovers the camera-space points.
    cx, cy = cam.center
    x = (s[..., 0] - cx) * s[..., 2] / 100.0
    y = -(s[..., 1] - cy) * s[..., 2] / 100.0
    torch.testing.assert_close(torch.stack([x, y, -s[..., 2]], -1), cam_v)
    # Farther points look smaller: doubling the depth halves the offset from the centre.
    p = torch.tensor([[[10.0, 0.0, 0.0]]], dtype=torch.float64)
    near = project(p, pose.new_tensor([[100.0, 0, 0, 0, 0, 0, -200.0]]), cam)
    far = project(p, pose.new_tensor([[100.0, 0, 0, 0, 0, 0, -400.0]]), cam)
    assert (near[0, 0, 0] - cx) == pytest.approx(2 * (far[0, 0, 0] - cx))


def test_default_pose_fits_the_head_and_view_direction():
    for proj in ("orthographic", "perspective"):
        cam = Camera(224, 224, proj)
        pose = default_pose(1, cam)
        top_bottom = torch.tensor([[[0.0, 115.0, 0.0], [0.0, -115.0, 0.0]]])
        s = project(top_bottom, pose, cam)
        assert (s[0, 1, 1] - s[0, 0, 1]).item() == pytest.approx(224.0, rel=1e-4)
    pts = torch.tensor([[[0.0, 0.0, -100.0], [30.0, 40.0, -50.0]]])
    d = view_direction(pts, "perspective")
    torch.testing.assert_close(d[0, 0], torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(1, 2))
    torch.testing.assert_close(view_direction(pts, "orthographic")[0, 1], torch.tensor([0.0, 0.0, 1.0]))


def test_unknown_projection_raises():
    with pytest.raises(ValueError, match="orthographic"):
        to_camera_space(torch.zeros(1, 1, 3), torch.zeros(1, 7), "fisheye")


@pytest.mark.parametrize("projection", ["orthographic", "perspective"])
def test_camera_frame_sees_what_the_projection_projects(projection):
    """backend.geometry.camera_frame (numpy, for Blender's cameras) agrees with project(): a point
    in the frame's camera space lands on the same pixel, and the numpy rotation is the torch one."""
    from backend.geometry import camera_frame, euler_to_rotation_np

    angles = torch.tensor([[0.3, -0.7, 0.2]], dtype=torch.float64)
    torch.testing.assert_close(torch.from_numpy(euler_to_rotation_np(angles.numpy())), euler_to_rotation(angles))
    cam = Camera(320, 240, projection)
    if projection == "orthographic":
        pose = torch.tensor([[1.3, 0.3, -0.7, 0.2, 12.0, -7.0, 3.0]], dtype=torch.float64)
    else:
        pose = torch.tensor([[900.0, 0.3, -0.7, 0.2, 8.0, -5.0, -600.0]], dtype=torch.float64)
    verts = torch.tensor([[[10.0, 20.0, 30.0], [-40.0, 5.0, -15.0], [0.0, 0.0, 0.0]]], dtype=torch.float64)
    expected = project(verts, pose, cam)[0, :, :2].numpy()
    frame = camera_frame(pose[0].numpy(), projection)
    c = (verts[0].numpy() - frame.eye) @ frame.axes.T  # camera space, mm; the camera looks along −z
    scale = frame.f if projection == "orthographic" else frame.f / -c[:, 2:3]
    cx, cy = cam.center
    got = torch.tensor([cx, cy], dtype=torch.float64).numpy() + scale * c[:, :2] * [1.0, -1.0]
    assert frame.f == pytest.approx(float(pose[0, 0]))
    torch.testing.assert_close(torch.from_numpy(got), torch.from_numpy(expected), atol=1e-9, rtol=0)
    if projection == "orthographic":
        assert (c[:, 2] < 0).all()  # the head lies in front of the camera
