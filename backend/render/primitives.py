"""Simple meshes for tests and benchmarks (model-space conventions: +Y up, +Z towards the viewer,
faces counter-clockwise seen from outside)."""
from __future__ import annotations

import math

import torch

__all__ = ["uv_sphere", "grid_mesh"]


def uv_sphere(
    radius: float = 1.0, n_lat: int = 32, n_lon: int = 64, dtype=torch.float32, device=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A latitude/longitude sphere centred at the origin.

    Returns verts (V,3), faces (F,3) int64 (outward, CCW from outside), uv (T,2) and
    faces_uv (F,3): u = longitude/2π (0 at +Z, a seam there), v = 1 at the north pole (+Y)
    down to 0 at the south pole. Poles are single vertices.
    """
    if n_lat < 2 or n_lon < 3:
        raise ValueError(f"need n_lat ≥ 2 and n_lon ≥ 3, got {n_lat}, {n_lon}")
    theta = torch.arange(1, n_lat, dtype=torch.float64) * (math.pi / n_lat)  # polar angle from +Y
    phi = torch.arange(n_lon, dtype=torch.float64) * (2 * math.pi / n_lon)
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    ring = torch.stack([t.sin() * p.sin(), t.cos(), t.sin() * p.cos()], -1).reshape(-1, 3)
    verts = torch.cat([torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64), ring,
                       torch.tensor([[0.0, -1.0, 0.0]], dtype=torch.float64)]) * radius
    n_ring = n_lat - 1
    south = 1 + n_ring * n_lon
    j = torch.arange(n_lon)
    jn = (j + 1) % n_lon
    i = torch.arange(n_ring - 1)[:, None]
    last = 1 + (n_ring - 1) * n_lon
    faces = torch.cat([
        torch.stack([torch.zeros_like(j), 1 + j, 1 + jn], -1),
        _ring_quads(1 + i * n_lon + j, 1 + i * n_lon + jn, 1 + (i + 1) * n_lon + j, 1 + (i + 1) * n_lon + jn),
        torch.stack([last + j, torch.full_like(j, south), last + jn], -1),
    ])
    # UVs on an (n_lat+1)×(n_lon+1) grid: the seam column is duplicated, poles get one UV per column.
    rr, cc = torch.meshgrid(torch.arange(n_lat + 1, dtype=torch.float64), torch.arange(n_lon + 1, dtype=torch.float64),
                            indexing="ij")
    uv = torch.stack([cc / n_lon, 1.0 - rr / n_lat], -1).reshape(-1, 2)
    w = n_lon + 1

    def at(r, c):
        return r * w + c

    ri = torch.arange(1, n_lat - 1)[:, None]
    faces_uv = torch.cat([
        torch.stack([at(0, j), at(1, j), at(1, j + 1)], -1),
        _ring_quads(at(ri, j), at(ri, j + 1), at(ri + 1, j), at(ri + 1, j + 1)),
        torch.stack([at(n_lat - 1, j), at(n_lat, j), at(n_lat - 1, j + 1)], -1),
    ])
    return (verts.to(dtype=dtype, device=device), faces.to(device), uv.to(dtype=dtype, device=device),
            faces_uv.to(device))


def _ring_quads(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Two triangles per quad (a, b upper ring; c, d lower ring; b/d one step east)."""
    return torch.cat([torch.stack([a, c, d], -1), torch.stack([a, d, b], -1)], -2).reshape(-1, 3)


def grid_mesh(n: int, size: float = 1.0, dtype=torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A flat n×n-vertex grid in the z = 0 plane spanning [−size/2, size/2]², facing +Z.

    Returns verts (n²,3), faces (2(n−1)²,3) int64 (CCW seen from +Z) and uv (n²,2) in [0,1]².
    """
    if n < 2:
        raise ValueError(f"grid needs n ≥ 2 vertices per side, got {n}")
    s = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    v, u = torch.meshgrid(s, s, indexing="ij")
    uv = torch.stack([u, v], -1).reshape(-1, 2)
    verts = torch.cat([(uv - 0.5) * size, torch.zeros(n * n, 1, dtype=torch.float64)], -1)
    r = torch.arange(n - 1)[:, None] * n
    c = torch.arange(n - 1)[None, :]
    a = (r + c).reshape(-1)
    quads = torch.stack([a, a + 1, a + n + 1, a + n], -1)  # CCW in (u right, v up)
    faces = torch.cat([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    return verts.to(dtype=dtype, device=device), faces.to(device), uv.to(dtype=dtype, device=device)
