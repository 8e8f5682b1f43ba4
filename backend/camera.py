"""Cameras: the paper's 7-D pose (eq. 10), orthographic (default) and perspective projection.

Conventions (DESIGN.md):
- model space: right-handed, millimetres, +Y up, +Z out of the face towards the camera;
- image space: pixels, x right, y down, origin at the top-left pixel's centre (0-based);
- screen depth ``z``: larger is farther from the camera (the rasteriser keeps the smallest).

Pose ``(f, rx, ry, rz, tx, ty, tz)``:
- orthographic: ``f`` pixels per mm; ``(tx, ty)`` pixels; ``tz`` a depth offset (pixels).
  ``c = f·R·v + t``; screen ``x = cx + c_x``, ``y = cy − c_y``, ``z = −c_z``.
- perspective: ``f`` focal length in pixels; ``t`` mm. The camera sits at the origin
  looking along −Z (OpenGL), so a head in front of it has ``tz < 0``. ``c = R·v + t``;
  ``x = cx + f·c_x/(−c_z)``, ``y = cy − f·c_y/(−c_z)``, ``z = −c_z`` (mm).
``cx = (W − 1)/2``, ``cy = (H − 1)/2``. Angles in radians, ``R = Rz(rz)·Ry(ry)·Rx(rx)``
(rx pitch, ry yaw, rz roll).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from .device_constants import constant

POSE_DIM = 7

Projection = Literal["orthographic", "perspective"]


@dataclass(frozen=True)
class Camera:
    """Image size and projection kind; the pose tensor carries everything else."""

    width: int
    height: int
    projection: Projection = "orthographic"

    @property
    def center(self) -> tuple[float, float]:
        return (self.width - 1) / 2.0, (self.height - 1) / 2.0


def euler_to_rotation(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from Euler angles.

    angles: (..., 3) radians (rx, ry, rz). Returns (..., 3, 3) ``Rz·Ry·Rx``.
    """
    rx, ry, rz = angles.unbind(-1)
    cx, sx, cy, sy, cz, sz = rx.cos(), rx.sin(), ry.cos(), ry.sin(), rz.cos(), rz.sin()
    one, zero = torch.ones_like(rx), torch.zeros_like(rx)
    Rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1)
    Ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1)
    Rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1)
    shape = angles.shape[:-1] + (3, 3)
    return Rz.reshape(shape) @ Ry.reshape(shape) @ Rx.reshape(shape)


def rotation_to_euler(R: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`euler_to_rotation` (away from gimbal lock, |ry| < π/2).

    R: (..., 3, 3). Returns (..., 3) radians (rx, ry, rz).
    """
    ry = torch.asin((-R[..., 2, 0]).clamp(-1.0, 1.0))
    rx = torch.atan2(R[..., 2, 1], R[..., 2, 2])
    rz = torch.atan2(R[..., 1, 0], R[..., 0, 0])
    return torch.stack([rx, ry, rz], -1)


def to_camera_space(verts: torch.Tensor, pose: torch.Tensor, projection: Projection) -> torch.Tensor:
    """Model → camera space. verts (B,V,3) mm, pose (B,7). Returns (B,V,3).

    Orthographic: pixel units (``f·R·v + t``); perspective: mm (``R·v + t``).
    """
    R = euler_to_rotation(pose[:, 1:4])  # (B,3,3)
    rotated = verts @ R.transpose(1, 2)
    if projection == "orthographic":
        rotated = rotated * pose[:, :1, None]
    elif projection != "perspective":
        raise ValueError(f"unknown projection {projection!r}: use 'orthographic' or 'perspective'")
    return rotated + pose[:, None, 4:7]


def project(verts: torch.Tensor, pose: torch.Tensor, camera: Camera) -> torch.Tensor:
    """Model vertices → screen vertices for the rasteriser.

    verts (B,V,3) mm, pose (B,7). Returns (B,V,3): x, y in pixels (image convention) and
    depth z (larger = farther; pixels for orthographic, mm for perspective).
    """
    return camera_to_screen(to_camera_space(verts, pose, camera.projection), pose, camera)


def scale_pose(pose: torch.Tensor, factor: float) -> torch.Tensor:
    """Orthographic pose (B,7) for the same view in an image resized by ``factor`` (the crop's
    side times ``factor``): ``f`` and ``t`` scale, the angles stay; pixel centres map to pixel
    centres (the image centre stays the centre)."""
    return pose * constant((factor, 1, 1, 1, factor, factor, factor), pose.device, pose.dtype)


def camera_to_screen(cam: torch.Tensor, pose: torch.Tensor, camera: Camera) -> torch.Tensor:
    """Camera-space points (B,V,3) (from :func:`to_camera_space`) → screen (B,V,3) as :func:`project`."""
    cx, cy = camera.center
    if camera.projection == "orthographic":
        x, y, z = cx + cam[..., 0], cy - cam[..., 1], -cam[..., 2]
    else:
        depth = (-cam[..., 2]).clamp_min(1e-6)
        f = pose[:, :1]
        x = cx + f * cam[..., 0] / depth
        y = cy - f * cam[..., 1] / depth
        z = depth
    return torch.stack([x, y, z], -1)


def view_direction(verts_cam: torch.Tensor, projection: Projection) -> torch.Tensor:
    """Unit vectors from each camera-space point towards the camera. (B,V,3) → (B,V,3)."""
    if projection == "orthographic":
        d = torch.zeros_like(verts_cam)
        d[..., 2] = 1.0
        return d
    return torch.nn.functional.normalize(-verts_cam, dim=-1)


def default_pose(
    batch: int, camera: Camera, face_height_mm: float = 230.0, device=None, dtype=torch.float32
) -> torch.Tensor:
    """A frontal pose that fits a head of ``face_height_mm`` into the image. Returns (B,7)."""
    pose = torch.zeros(batch, POSE_DIM, device=device, dtype=dtype)
    if camera.projection == "orthographic":
        pose[:, 0] = camera.height / face_height_mm
        pose[:, 6] = 0.0
    else:
        f = 2.0 * camera.height  # about a 28° vertical field of view
        pose[:, 0] = f
        pose[:, 6] = -f * face_height_mm / camera.height
    return pose
