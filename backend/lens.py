"""Each photo's lens: its 35-mm-equivalent focal length (the user's, the photo's EXIF, or a default)
turned into the fits' crop camera (:class:`backend.camera.Camera` with ``focal`` and ``principal``).

A 35-mm-equivalent focal length ``f35`` (mm) is the focal of a lens that gives the same field of
view on a 36×24 mm frame (diagonal 43.27 mm): in pixels of a photo whose diagonal is ``d`` px,
``F = f35·d/43.27``. The fits' crop is a similarity of the photo (:mod:`backend.align`), so in the
crop the focal is ``F`` times the crop's scale and the principal point is the photo's centre
mapped into the crop. ``f35 = ∞`` is an orthographic camera.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .camera import Camera, euler_to_rotation, rotation_to_euler
from .validate import FOCAL_RANGE_MM

__all__ = ["DEFAULT_FOCAL_35MM", "FRAME_DIAGONAL_MM", "exif_focal_35mm", "focal_source", "crop_camera", "perspective_in_photo",
           "lens_in_window"]

FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 43.27 mm, the 35-mm film frame's diagonal
# The focal assumed when neither the user nor the photo gives one (mm; None: an orthographic camera).
# Chosen on the realistic renders with detected landmarks (docs/design.md, "Camera").
DEFAULT_FOCAL_35MM: float | None = None


def exif_focal_35mm(image: str | Path | np.ndarray) -> float | None:
    """The photo's EXIF FocalLengthIn35mmFilm (mm), or None (no EXIF, no such tag, 0 = unknown, an
    array, or a value outside :data:`FOCAL_RANGE_MM`)."""
    if not isinstance(image, (str, Path)):
        return None
    from PIL import Image, UnidentifiedImageError  # the photo was read already: this reads its header again

    try:
        with Image.open(image) as img:
            value = img.getexif().get_ifd(0x8769).get(0xA405)  # Exif IFD, FocalLengthIn35mmFilm
    except (OSError, ValueError, UnidentifiedImageError, SyntaxError):
        return None
    try:
        f = float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return None
    lo, hi = FOCAL_RANGE_MM
    return f if lo <= f <= hi else None


def focal_source(config_focal: float | None, exif_focal: float | None,
                 default: float | None = DEFAULT_FOCAL_35MM) -> tuple[float, str]:
    """The focal (mm, 35-mm equivalent; ∞: orthographic) a photo is fitted with and where it came
    from: the user's (``config_focal``), the photo's EXIF, else ``default`` (None: orthographic), source "none"."""
    if config_focal is not None:
        return float(config_focal), "given"
    if exif_focal is not None:
        return float(exif_focal), "exif"
    return (math.inf if default is None else float(default)), "none"


def crop_camera(focal_35mm: Sequence[float], image_sizes: Sequence[tuple[int, int]],
                crop_from_image: Sequence[np.ndarray], size: int, device=None,
                dtype: torch.dtype = torch.float32) -> Camera:
    """The ``size``² crops' camera of V photos: per photo its focal (mm, 35-mm equivalent, ∞:
    orthographic), its size (W, H) px and its crop's similarity ``crop_from_image`` (2,3) (of a
    ``size``² crop). Returns a Camera with ``focal`` (V,) crop px (∞ kept) and ``principal``
    (V,2) crop px."""
    focal, principal = [], []
    for f35, (w, h), M in zip(focal_35mm, image_sizes, crop_from_image):
        M = np.asarray(M, np.float64)
        scale = math.sqrt(abs(float(np.linalg.det(M[:, :2]))))
        focal.append(f35 * math.hypot(w, h) / FRAME_DIAGONAL_MM * scale)
        principal.append(M @ np.array([(w - 1) / 2.0, (h - 1) / 2.0, 1.0]))
    return Camera(size, size, focal=torch.tensor(focal, dtype=dtype, device=device),
                  principal=torch.tensor(np.stack(principal), dtype=dtype, device=device))


def _in_plane(M: np.ndarray) -> tuple[float, torch.Tensor]:
    """A similarity's (2,3) scale and its rotation as a (3,3) float64 rotation of camera space (about
    the optical axis, in the camera's x right / y up frame)."""
    A = np.asarray(M, np.float64)[:, :2]
    k = math.sqrt(abs(float(np.linalg.det(A))))
    flip = np.diag([1.0, -1.0])
    Q = np.eye(3)
    Q[:2, :2] = flip @ A @ flip / k  # image y down → camera y up
    return k, torch.from_numpy(Q)


def perspective_in_photo(pose: torch.Tensor, camera: Camera, image_from_crop: np.ndarray) -> torch.Tensor:
    """A crop-frame pose through a lens (pose (1,7) orthographic form, ``camera`` the crop's with one
    view's finite focal and principal point = the photo's centre in the crop) as the photo's
    perspective pose (1,7) (:mod:`backend.camera`: f focal px, angles, t mm; principal point the
    photo's centre) — exact: the crop is a similarity of the photo. float64."""
    p = pose.double()[0]
    s, F = p[0], camera.focal.double()[0]
    cx, cy = camera.center
    pp = camera.principal.double()[0] if camera.principal is not None else torch.tensor([cx, cy], dtype=torch.float64)
    q = torch.stack([pp[0] - cx, cy - pp[1]])  # the principal point, camera up-coordinates
    R = euler_to_rotation(p[1:4])
    t = torch.stack([(p[4] - q[0]) / s, (p[5] - q[1]) / s, (p[6] - F) / s])  # mm, the camera at the origin
    k, Q = _in_plane(image_from_crop)
    return torch.cat([(F * k)[None], rotation_to_euler(Q @ R), Q @ t])[None]


def lens_in_window(pose: torch.Tensor, image_size: tuple[int, int], window_from_image: np.ndarray,
                   size: int) -> tuple[torch.Tensor, Camera]:
    """A photo's perspective pose (1,7) (principal point the photo's centre, ``image_size`` (W,H))
    re-expressed in a ``size``² window of the photo (similarity ``window_from_image`` (2,3)): the
    orthographic-form pose (1,7) float32 and the window's camera with the lens. Exact."""
    p = pose.double()[0]
    k, Q = _in_plane(window_from_image)
    R, t = Q @ euler_to_rotation(p[1:4]), Q @ p[4:7]
    F = p[0] * k
    s = F / (-t[2])
    w, h = image_size
    M = np.asarray(window_from_image, np.float64)
    pw = M @ np.array([(w - 1) / 2.0, (h - 1) / 2.0, 1.0])  # the principal point in the window
    c = (size - 1) / 2.0
    out = torch.cat([s[None], rotation_to_euler(R), (s * t[:2] + torch.tensor([pw[0] - c, c - pw[1]])),
                     torch.zeros(1, dtype=torch.float64)])[None].float()
    return out, Camera(size, size, focal=F.float()[None], principal=torch.from_numpy(pw).float()[None])
