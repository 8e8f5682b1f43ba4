"""Separable filters of image batches (B,C,H,W): the Gaussian blur shared by the identity chips
and the detail stage's low-pass, and the square max filter of the occluder, hair and shading masks;
the luma weights of RGB and a colour's luminance against a reference's."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)  # Rec. 601 luma weights of R, G, B


def luminance_ratio(colours: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The luminance of ``colours`` (…,3) over that of ``reference`` (3,) (clamped at 1e-6). Returns (…)."""
    luma = colours.new_tensor(LUMA)
    return (colours @ luma) / (reference @ luma).clamp_min(1e-6)


def gaussian_kernel1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation ``sigma`` (pixels), radius ⌈3σ⌉. Returns (K,)."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(images: torch.Tensor, sigma: float, padding: str = "replicate") -> torch.Tensor:
    """Separable Gaussian blur (rows, then columns) of images (B,C,H,W); ``padding`` is
    :func:`torch.nn.functional.pad`'s mode ("replicate", or "constant" for zeros). Returns (B,C,H,W).

    With zero padding the blur is its own adjoint (a symmetric kernel, and rows and columns
    commute), so its gradient is one more blur (:class:`_ZeroPaddedBlur`): on the CPU that is
    ≈ 9× cheaper than ``conv2d``'s depthwise backward (1.8 against 16 ms at 256², σ 4 texels)."""
    if padding == "constant" and images.requires_grad and torch.is_grad_enabled():
        return _ZeroPaddedBlur.apply(images, sigma)
    return _blur(images, sigma, padding)


class _ZeroPaddedBlur(torch.autograd.Function):
    """:func:`gaussian_blur` with zero padding; backward: the same blur of the gradient."""

    @staticmethod
    def forward(ctx, images: torch.Tensor, sigma: float) -> torch.Tensor:
        ctx.sigma = sigma
        return _blur(images, sigma, "constant")

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return gaussian_blur(grad, ctx.sigma, "constant"), None


def _blur(images: torch.Tensor, sigma: float, padding: str) -> torch.Tensor:
    """:func:`gaussian_blur`'s convolutions (autograd through ``conv2d``); float32 on the CPU
    without autograd: :func:`_blur_shifted`."""
    k = gaussian_kernel1d(sigma, images.device, images.dtype)
    if images.device.type == "cpu" and images.dtype == torch.float32 and not (
            images.requires_grad and torch.is_grad_enabled()):
        return _blur_shifted(images, k, padding)
    return _blur_conv(images, k, padding)


def _blur_conv(images: torch.Tensor, k: torch.Tensor, padding: str) -> torch.Tensor:
    """The separable blur as two depthwise ``conv2d`` calls. images (B,C,H,W); k (K,)."""
    r, C = k.numel() // 2, images.shape[1]
    out = F.conv2d(F.pad(images, (r, r, 0, 0), mode=padding), k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(F.pad(out, (0, 0, r, r), mode=padding), k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


def _blur_shifted(images: torch.Tensor, k: torch.Tensor, padding: str) -> torch.Tensor:
    """The separable blur as K shifted multiply-adds per axis, in the kernel's order: on the CPU
    the same float32 numbers as the depthwise ``conv2d`` (``tests/test_image_filters.py``) at a
    fraction of its cost (≈ 8× at 512×1536, σ 6). images (B,C,H,W); k (K,). Returns (B,C,H,W)."""
    H, W = images.shape[-2:]
    weights = k.tolist()
    r = len(weights) // 2
    padded = F.pad(images, (r, r, 0, 0), mode=padding)
    rows = padded[..., 0:W] * weights[0]
    for i, w in enumerate(weights[1:], 1):
        rows.add_(padded[..., i : i + W], alpha=w)
    padded = F.pad(rows, (0, 0, r, r), mode=padding)
    out = padded[..., 0:H, :] * weights[0]
    for i, w in enumerate(weights[1:], 1):
        out.add_(padded[..., i : i + H, :], alpha=w)
    return out


def max_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """The largest value within ``r`` pixels (a (2r+1)² square) of each pixel of x (N,C,H,W):
    two 1-D passes, the same values as one 2-D max pool at a fraction of its cost."""
    x = F.max_pool2d(x, (2 * r + 1, 1), stride=1, padding=(r, 0))
    return F.max_pool2d(x, (1, 2 * r + 1), stride=1, padding=(0, r))
