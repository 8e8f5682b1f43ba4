"""Pure-PyTorch differentiable mesh renderer (CPU and CUDA, batched).

Primitives, each usable on its own: :func:`rasterize` (hard z-buffer → :class:`Fragments`),
:func:`interpolate` (vertex or face-varying attributes), :func:`sample_texture` (bilinear UV
lookup), :func:`shade_lambertian` (SH light), :func:`soft_silhouette` (edge gradients);
:func:`render` chains them for a posed mesh.
UV space: :func:`rasterize_uv` (per-texel face + barycentrics → :func:`position_map`,
:func:`normal_map`) and :func:`unwrap_image` (photo → UV texture with visibility).
"""
from __future__ import annotations

from .interpolate import interpolate, sample_texture, uv_to_grid
from .rasterize import Fragments, RasterSettings, barycentric_at, rasterize, rasterize_reference
from .renderer import RenderResult, RenderSettings, render, shade_lambertian
from .silhouette import soft_silhouette
from .uv import (
    UnwrapSettings, Unwrapped, UVRasterCache, normal_map, position_map, rasterize_uv, unwrap_image, uv_to_screen,
)

__all__ = [
    "Fragments", "RasterSettings", "rasterize", "rasterize_reference", "barycentric_at",
    "interpolate", "sample_texture", "uv_to_grid",
    "RenderSettings", "RenderResult", "render", "shade_lambertian", "soft_silhouette",
    "rasterize_uv", "UVRasterCache", "uv_to_screen", "position_map", "normal_map",
    "UnwrapSettings", "Unwrapped", "unwrap_image",
]
