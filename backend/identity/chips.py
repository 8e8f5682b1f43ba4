"""Differentiable face-chip framing, the way dlib's ``get_face_chip_details`` + ``extract_image_chip``
frame a face from its 68 landmarks, and the one-call identity feature extractor.

dlib's framing (``dlib/image_transforms/interpolation.h``): a least-squares similarity transform
``T(p) = M p + t`` (``M = [[a,−b],[b,a]]``) maps a mean face template — 33 of the 68 points
(nose 27–35, eyes 36–47, upper mouth 48–54 and inner upper lip 60–64; brows, jaw and lower lip
ignored), placed at ``(padding + m)/(1 + 2·padding)·size`` in chip pixels — onto the landmarks.
The chip rectangle is centred on ``c = T(size/2, size/2)`` with side ``size·s`` (``s = |(a,b)|``)
and dlib maps its corners (``centered_drect`` spans ``size·s − 1``) to the corner pixel centres of
the chip, so chip pixel ``(u, v)`` samples the image at

    x = c + k·R·((u, v) − (size−1)/2),    k = (size·s − 1)/(size − 1),   R = M/s,

with bilinear interpolation; samples whose 2×2 neighbourhood leaves the image are black. When a
chip pixel covers more than 2 image pixels (``s > 2``) dlib samples a 2×-downsampled image pyramid
level instead; :func:`extract_chips` approximates that with a Gaussian pre-blur. Image pixel
convention: x right, y down, 0-based pixel centres (as DESIGN.md and dlib).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..image_filters import gaussian_blur
from ..render.sample import grid_sample_bilinear
from .network import CHIP_SIZE, IdentityNet, load_identity_net

__all__ = ["face_chip_transform", "extract_chips", "identity_features", "FaceIdentity", "MEAN_FACE_TEMPLATE"]

# dlib's mean positions of landmarks 17..67 in a unit face box (x, y), from
# get_face_chip_details (dlib, Boost Software License). Only _TEMPLATE_INDICES are used.
_MEAN_X = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)
_MEAN_Y = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
)
_TEMPLATE_INDICES = tuple(range(27, 55)) + tuple(range(60, 65))
MEAN_FACE_TEMPLATE = tuple((_MEAN_X[i - 17], _MEAN_Y[i - 17]) for i in _TEMPLATE_INDICES)
"""(33, 2) unit-box template positions of the landmarks ``_TEMPLATE_INDICES`` (0-based iBUG)."""


def _check_landmarks(landmarks68: torch.Tensor) -> None:
    if landmarks68.ndim != 3 or landmarks68.shape[1:] != (68, 2):
        raise ValueError(f"landmarks68 must be (B,68,2) image pixels, got shape {tuple(landmarks68.shape)}")


def face_chip_transform(landmarks68: torch.Tensor, size: int = CHIP_SIZE, padding: float = 0.25) -> torch.Tensor:
    """Affine map from chip pixels to image pixels, framed like dlib's ``get_face_chip_details``.

    landmarks68 (B,68,2) float, image pixels (x right, y down, 0-based pixel centres), iBUG
    68-point order → (B,2,3) ``A`` with ``[x, y]ᵀ = A · [u, v, 1]ᵀ`` for chip pixel ``(u, v)`` of
    a ``size``×``size`` chip (same 0-based pixel-centre convention). Differentiable w.r.t. the
    landmarks; dtype/device follow them. ``padding`` is dlib's: the unit face box is padded by
    this fraction on each side.
    """
    _check_landmarks(landmarks68)
    if size < 2 or padding < 0:
        raise ValueError(f"need size >= 2 and padding >= 0, got size={size}, padding={padding}")
    dt, dev = landmarks68.dtype, landmarks68.device
    template = torch.tensor(MEAN_FACE_TEMPLATE, dtype=torch.float64, device=dev)
    src = ((padding + template) / (2 * padding + 1) * size).to(dt)  # (P,2) chip pixels
    dst = landmarks68[:, list(_TEMPLATE_INDICES)]  # (B,P,2) image pixels
    # Least-squares similarity src → dst (2-D Umeyama without reflection = linear LS in a, b).
    src_mean, dst_mean = src.mean(0), dst.mean(1)
    sc, dc = src - src_mean, dst - dst_mean[:, None]
    denom = (sc ** 2).sum()
    a = (sc[None, :, 0] * dc[..., 0] + sc[None, :, 1] * dc[..., 1]).sum(1) / denom
    b = (sc[None, :, 0] * dc[..., 1] - sc[None, :, 1] * dc[..., 0]).sum(1) / denom
    M = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], -2)  # (B,2,2)
    t = dst_mean - (M @ src_mean[:, None])[..., 0]  # (B,2)
    centre_chip = torch.full((2,), size / 2.0, dtype=dt, device=dev)
    c = (M @ centre_chip[:, None])[..., 0] + t  # (B,2) image position of the chip centre
    s = torch.sqrt(a * a + b * b)
    k = (size * s - 1.0) / (size - 1.0) / s  # per unit of M
    L = M * k[:, None, None]  # (B,2,2) chip pixel step → image pixels
    half = torch.full((2,), (size - 1) / 2.0, dtype=dt, device=dev)
    offset = c - (L @ half[:, None])[..., 0]
    return torch.cat([L, offset[..., None]], -1)


def _pyramid_levels(transform: torch.Tensor, size: int) -> list[int]:
    """How many 2× pyramid levels dlib would descend for each chip (scale > 2 per level)."""
    scale = torch.linalg.det(transform[:, :, :2].detach().double()).abs().sqrt() * (size - 1) / size
    levels = []
    for s in scale.tolist():
        n = 0
        while s / 2 ** (n + 1) > 2.0:  # rect_down(rect).area() > size², approximately
            n += 1
        levels.append(n + 1 if s > 2.0 else 0)
    return levels


def extract_chips(images: torch.Tensor, transform: torch.Tensor, size: int = CHIP_SIZE,
                  antialias: bool = True) -> torch.Tensor:
    """Resample face chips, differentiably (``affine_grid`` + bilinear ``grid_sample``).

    images (B,3,H,W) float RGB in [0,1]; transform (B,2,3) chip pixels → image pixels (from
    :func:`face_chip_transform`) → chips (B,3,size,size), black outside the image. Gradients flow
    to the images and the transform. ``antialias``: where a chip pixel spans more than 2 image
    pixels (dlib switches to an image pyramid there) the image is first Gaussian-blurred with
    σ² = (4^L − 1)/3 px², L the pyramid levels dlib would descend.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B,C,H,W), got shape {tuple(images.shape)}")
    B, _, H, W = images.shape
    if transform.shape != (B, 2, 3):
        raise ValueError(f"transform must be ({B},2,3), got shape {tuple(transform.shape)}")
    if H < 2 or W < 2:
        raise ValueError(f"images must be at least 2×2 pixels, got {H}×{W}")
    transform = transform.to(images.dtype)
    if antialias:
        levels = _pyramid_levels(transform, size)
        if any(levels):
            blurred = []
            for i, n in enumerate(levels):
                img = images[i:i + 1]
                blurred.append(gaussian_blur(img, math.sqrt((4 ** n - 1) / 3)) if n else img)
            images = torch.cat(blurred, 0)
    # Normalised coordinates (align_corners=True): chip u ∈ [0,size−1] ↔ [−1,1]; image x likewise.
    dt, dev = images.dtype, images.device
    h = (size - 1) / 2.0
    to_chip_px = torch.tensor([[h, 0.0, h], [0.0, h, h], [0.0, 0.0, 1.0]], dtype=dt, device=dev)
    to_norm = torch.tensor([[2.0 / (W - 1), 0.0, -1.0], [0.0, 2.0 / (H - 1), -1.0]], dtype=dt, device=dev)
    full = torch.cat([transform, torch.tensor([[[0.0, 0.0, 1.0]]], dtype=dt, device=dev).expand(B, 1, 3)], 1)
    theta = to_norm @ full @ to_chip_px  # (B,2,3)
    grid = F.affine_grid(theta, [B, images.shape[1], size, size], align_corners=True)
    return grid_sample_bilinear(images, grid, padding_mode="zeros", align_corners=True)


def identity_features(images: torch.Tensor, landmarks68: torch.Tensor, net: IdentityNet | None = None,
                      padding: float = 0.25) -> torch.Tensor:
    """Face-recognition descriptors of the faces in ``images``, differentiable w.r.t. the images.

    images (B,3,H,W) float RGB in [0,1]; landmarks68 (B,68,2) image pixels → (B,128). ``net``:
    the identity network (moved to the images' device/dtype by the caller); None loads the default
    (costs ~0.2 s each time: pass it in inside loops).
    """
    _check_landmarks(landmarks68)
    if net is None:
        net = load_identity_net().to(device=images.device, dtype=images.dtype)
    transform = face_chip_transform(landmarks68.to(images.dtype), CHIP_SIZE, padding)
    return net(extract_chips(images, transform, CHIP_SIZE))


class FaceIdentity(nn.Module):
    """Framing + identity network as one frozen module: ``(images, landmarks68) → features``.

    images (B,3,H,W) float RGB in [0,1]; landmarks68 (B,68,2) image pixels → (B,128). Pass it
    where a fitting loop wants an ``identity_net(images, landmarks)`` callable; ``.to()`` moves
    the network. ``net`` None loads the default (dlib's model).
    """

    def __init__(self, net: IdentityNet | None = None, padding: float = 0.25) -> None:
        super().__init__()
        self.net = net if net is not None else load_identity_net()
        self.padding = padding

    def forward(self, images: torch.Tensor, landmarks68: torch.Tensor) -> torch.Tensor:
        return identity_features(images, landmarks68, self.net, self.padding)
