"""Separable Gaussian filtering of image batches (B,C,H,W), shared by the identity chips and
the detail stage's low-pass."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation ``sigma`` (pixels), radius ⌈3σ⌉. Returns (K,)."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(images: torch.Tensor, sigma: float, padding: str = "replicate") -> torch.Tensor:
    """Separable Gaussian blur (rows, then columns) of images (B,C,H,W); ``padding`` is
    :func:`torch.nn.functional.pad`'s mode ("replicate", or "constant" for zeros). Returns (B,C,H,W)."""
    k = gaussian_kernel1d(sigma, images.device, images.dtype)
    r, C = k.numel() // 2, images.shape[1]
    out = F.conv2d(F.pad(images, (r, r, 0, 0), mode=padding), k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(F.pad(out, (0, 0, r, r), mode=padding), k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)
