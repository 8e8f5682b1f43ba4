"""Bilinear image sampling whose backward is deterministic on CUDA.

``torch.nn.functional.grid_sample``'s backward scatters each output's gradient into the input
with atomic adds on CUDA, so the input's gradient sums in a different order each run (PyTorch
has no deterministic kernel for it: ``grid_sampler_2d_backward_cuda``), enough on its own to
keep two fits of one photo apart (docs/design.md, "Determinism"). :func:`grid_sample_bilinear` is ``grid_sample`` except when the
input needs a gradient on CUDA under ``torch.are_deterministic_algorithms_enabled()``; then it
gathers the four neighbours with ``index_select``, whose backward (``index_add_``) PyTorch
sums in a fixed order in that mode. The CPU path is untouched (its kernel is deterministic).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["grid_sample_bilinear", "gather_bilinear"]

Padding = Literal["zeros", "border"]


def grid_sample_bilinear(image: torch.Tensor, grid: torch.Tensor, padding_mode: Padding = "zeros",
                         align_corners: bool = False) -> torch.Tensor:
    """``F.grid_sample(image, grid, mode="bilinear", ...)``, deterministic in both directions
    on every device when deterministic algorithms are enabled. image (N,C,H,W), grid
    (N,Ho,Wo,2) in [−1,1] (x right, y down) → (N,C,Ho,Wo)."""
    if image.is_cuda and image.requires_grad and torch.are_deterministic_algorithms_enabled():
        return gather_bilinear(image, grid, padding_mode, align_corners)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)


def gather_bilinear(image: torch.Tensor, grid: torch.Tensor, padding_mode: Padding = "zeros",
                    align_corners: bool = False) -> torch.Tensor:
    """Bilinear sampling by four ``index_select`` gathers: the same values and gradients (w.r.t.
    image and grid) as ``F.grid_sample`` with ``mode="bilinear"`` and ``padding_mode`` zeros or
    border. image (N,C,H,W), grid (N,Ho,Wo,2) → (N,C,Ho,Wo)."""
    if image.dim() != 4 or grid.dim() != 4 or grid.shape[-1] != 2 or grid.shape[0] != image.shape[0]:
        raise ValueError(f"image must be (N,C,H,W) and grid (N,Ho,Wo,2), got {tuple(image.shape)}, {tuple(grid.shape)}")
    if padding_mode not in ("zeros", "border"):
        raise ValueError(f"padding_mode must be 'zeros' or 'border', got {padding_mode!r}")
    N, C, H, W = image.shape
    Ho, Wo = grid.shape[1:3]
    grid = grid.to(image.dtype)
    # normalised → pixel coordinates (pixel centres at integers)
    if align_corners:
        x = (grid[..., 0] + 1) * (0.5 * (W - 1))
        y = (grid[..., 1] + 1) * (0.5 * (H - 1))
    else:
        x = ((grid[..., 0] + 1) * W - 1) * 0.5
        y = ((grid[..., 1] + 1) * H - 1) * 0.5
    if padding_mode == "border":
        x, y = x.clamp(0, W - 1), y.clamp(0, H - 1)
    x0, y0 = x.detach().floor(), y.detach().floor()
    fx, fy = x - x0, y - y0  # (N,Ho,Wo) fractions, differentiable w.r.t. the grid
    x0l, y0l = x0.long(), y0.long()
    table = image.permute(0, 2, 3, 1).reshape(N * H * W, C)  # one row per input pixel
    base = (torch.arange(N, device=image.device) * (H * W)).view(N, 1, 1)
    out = image.new_zeros(N, Ho, Wo, C)
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):  # the four neighbours (not a loop over pixels)
        xi, yi = x0l + dx, y0l + dy
        weight = (fx if dx else 1 - fx) * (fy if dy else 1 - fy)
        inside = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
        index = base + yi.clamp(0, H - 1) * W + xi.clamp(0, W - 1)
        values = table.index_select(0, index.reshape(-1)).view(N, Ho, Wo, C)
        out = out + values * (weight * inside.to(weight.dtype))[..., None]
    return out.permute(0, 3, 1, 2)
