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

The fits' camera: the orthographic pose with a *lens* (``Camera.focal`` (B,) pixels,
``Camera.principal`` (B,2) image px). With ``o`` the orthographic screen point and ``c_z``
its camera-space depth (px, + towards the camera):
``xy = o + (o − principal)·c_z/(focal − c_z)``, an exact pinhole camera at ``focal/f`` mm from
the model origin (``f`` the pose's px per mm there) looking along −Z through ``principal``.
``focal = ∞`` (or None) is the orthographic projection, bit for bit; the depth ``z`` stays
``−c_z`` (same order as the true depth ``focal − c_z``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from .device_constants import constant

POSE_DIM = 7

Projection = Literal["orthographic", "perspective"]


@dataclass(frozen=True)
class Camera:
    """Image size and projection kind; the pose tensor carries everything else.

    ``focal`` (B,) pixels and ``principal`` (B,2) image px (None: the image centre): the lens of
    an orthographic camera's views (module docstring; ∞ or None: orthographic). Per view, so
    that views from different cameras fit in one batch.
    """

    width: int
    height: int
    projection: Projection = "orthographic"
    focal: torch.Tensor | None = field(default=None, compare=False)
    principal: torch.Tensor | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.focal is not None and self.projection != "orthographic":
            raise ValueError("a lens (focal) is for the orthographic pose; the perspective pose carries its own focal")

    @property
    def center(self) -> tuple[float, float]:
        return (self.width - 1) / 2.0, (self.height - 1) / 2.0

    def resized(self, width: int, height: int) -> "Camera":
        """The same view in the image resized to ``width``×``height`` (pixel centres map to pixel
        centres, as :func:`scale_pose`): the lens's focal and principal point scale with it."""
        kx, ky = width / self.width, height / self.height
        focal = principal = None
        if self.focal is not None:
            focal = self.focal * kx
            if self.principal is not None:
                k = constant((kx, ky), self.principal.device, self.principal.dtype)
                principal = (self.principal + 0.5) * k - 0.5
        return replace(self, width=width, height=height, focal=focal, principal=principal)

    def select(self, index) -> "Camera":
        """The camera of some views (``index`` into the batch: an int keeps one view as a batch of 1)."""
        if self.focal is None:
            return self
        index = [index] if isinstance(index, int) else index
        return replace(self, focal=self.focal[index],
                       principal=None if self.principal is None else self.principal[index])

    @property
    def has_lens(self) -> bool:
        """True when some view has a finite focal (a perspective lens)."""
        return self.focal is not None and bool(torch.isfinite(self.focal).any())


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
        if camera.focal is not None:
            x, y = _through_lens(x, y, cam[..., 2], camera)
    else:
        depth = (-cam[..., 2]).clamp_min(1e-6)
        f = pose[:, :1]
        x = cx + f * cam[..., 0] / depth
        y = cy - f * cam[..., 1] / depth
        z = depth
    return torch.stack([x, y, z], -1)


def _through_lens(x: torch.Tensor, y: torch.Tensor, cz: torch.Tensor, camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthographic screen x, y (B,V) px and camera-space depth cz (B,V) px → the lens's screen
    x, y: ``o + (o − principal)·cz/(focal − cz)`` (the gain is exactly 0 for an infinite focal)."""
    F = camera.focal.to(cz.dtype)[:, None]  # (B,1)
    if camera.principal is None:
        cx, cy = camera.center
        px, py = cx, cy
    else:
        pp = camera.principal.to(cz.dtype)
        px, py = pp[:, :1], pp[:, 1:2]
    gain = cz / (F - cz).clamp_min(0.05 * F)  # points nearer than 5 % of the distance: clamped
    return x + (x - px) * gain, y + (y - py) * gain


def screen_jacobian(cam: torch.Tensor, pose: torch.Tensor, camera: Camera) -> torch.Tensor:
    """∂(screen x, y)/∂(model-space vertex) (B,V,2,3) px per mm at camera-space points ``cam``
    (B,V,3) (:func:`to_camera_space`) of an orthographic camera (with or without a lens)."""
    if camera.projection != "orthographic":
        raise ValueError("screen_jacobian is for the orthographic camera (with or without a lens)")
    R = euler_to_rotation(pose[:, 1:4]) * pose[:, :1, None]  # (B,3,3) ∂c/∂v = f·R
    D = torch.zeros(*cam.shape[:2], 2, 3, dtype=cam.dtype, device=cam.device)  # ∂(x,y)/∂c
    D[..., 0, 0], D[..., 1, 1] = 1.0, -1.0
    if camera.focal is not None:
        cx, cy = camera.center
        x, y, cz = cx + cam[..., 0], cy - cam[..., 1], cam[..., 2]
        F = camera.focal.to(cam.dtype)[:, None]
        pp = (torch.tensor([cx, cy], dtype=cam.dtype, device=cam.device).expand(cam.shape[0], 2)
              if camera.principal is None else camera.principal.to(cam.dtype))
        finite = torch.isfinite(F)
        Fs = torch.where(finite, F, torch.ones_like(F))
        den = (Fs - cz).clamp_min(0.05 * Fs)
        k = torch.where(finite, Fs / den, torch.ones_like(cz))  # 1 + gain
        dk = torch.where(finite, Fs / den.pow(2), torch.zeros_like(cz))  # ∂gain/∂cz
        D[..., 0, 0], D[..., 1, 1] = k, -k
        D[..., 0, 2] = (x - pp[:, :1]) * dk
        D[..., 1, 2] = (y - pp[:, 1:2]) * dk
    return D @ R[:, None]


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
