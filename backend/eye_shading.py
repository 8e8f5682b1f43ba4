"""How much of the sky each eyeball point sees past the lids: ambient occlusion of the eyeball by
the skin around it, for the preview renderer (which has no shadows). numpy only.

The skin in front of the eye is a height field along the model's z axis (the face looks along +z):
the front-most skin over a grid of (x, y), scanned from its triangles.
From each eyeball point the horizon is searched along a few directions in (x, y) (horizon-based
ambient occlusion); a direction whose skin rises θ above the point's horizontal plane lets through
cos²θ of its slice of a cosine-weighted hemisphere around +z. An eyeball point under the skin
(hidden from the front) sees nothing. The occluders are the lids and the skin of the socket: the
result is fixed to them, whatever the gaze turned the eyeball by.
"""
from __future__ import annotations

import numpy as np

__all__ = ["lid_visibility", "fine_eyeball", "eye_shading", "SCLERA_REFERENCE", "IRIS_REFERENCE"]

LASH_REACH, LASH_RISE = 6.0, 3.0  # mm: the upper lashes reach forward and up from the lid margin
LASH_COVER = 0.6
SKY_ABOVE = 0.8  # of the sky behind them that the lashes hide
SCLERA_REFERENCE, IRIS_REFERENCE = 0.7, 0.5  # quantiles of the visible sclera's, iris's visibility: their colour
FACING = 0.3  # a vertex normal's z over its length above this: the vertex faces the front
SEEN_FACING = -0.3  # below this the eyeball faces into the socket, never seen through the opening: 0


def _skin_heights(xs: np.ndarray, ys: np.ndarray, z0: float, skin: np.ndarray, skin_faces: np.ndarray) -> np.ndarray:
    """(len(ys), len(xs)) the front-most skin's z over the regular grid xs × ys (mm, ascending,
    one spacing), −inf where no skin triangle above z0 covers a grid point: the triangles are
    scanned over the grid points inside their (x, y) boxes and z is interpolated there."""
    step = float(xs[1] - xs[0]) if len(xs) > 1 else 1.0
    corners = skin[skin_faces]  # (F,3,3)
    lo, hi = corners[..., :2].min(1), corners[..., :2].max(1)
    c0 = np.maximum(np.ceil((lo - [xs[0], ys[0]]) / step).astype(np.int64), 0)  # first and last grid
    c1 = np.minimum(np.floor((hi - [xs[0], ys[0]]) / step).astype(np.int64), [len(xs) - 1, len(ys) - 1])
    keep = np.all(c1 >= c0, axis=1) & (corners[..., 2].max(1) >= z0)
    corners, c0, c1 = corners[keep], c0[keep], c1[keep]
    span = c1 - c0 + 1
    per = span[:, 0] * span[:, 1]
    tri = np.repeat(np.arange(len(corners)), per)
    k = np.arange(len(tri)) - np.repeat(np.cumsum(per) - per, per)
    col, row = c0[tri, 0] + k % span[tri, 0], c0[tri, 1] + k // span[tri, 0]
    a, b, c = corners[tri, 0], corners[tri, 1], corners[tri, 2]  # (P,3) each
    px, py = xs[col], ys[row]
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    ok = np.abs(det) > 1e-12
    det = np.where(ok, det, 1.0)
    u = ((px - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (py - a[:, 1])) / det
    v = ((b[:, 0] - a[:, 0]) * (py - a[:, 1]) - (px - a[:, 0]) * (b[:, 1] - a[:, 1])) / det
    inside = ok & (u >= -1e-9) & (v >= -1e-9) & (u + v <= 1.0 + 1e-9)
    z = a[:, 2] + u * (b[:, 2] - a[:, 2]) + v * (c[:, 2] - a[:, 2])
    height = np.full(len(xs) * len(ys), -np.inf)
    np.maximum.at(height, (row * len(xs) + col)[inside], z[inside])
    return height.reshape(len(ys), len(xs))


def _lash_heights(xs: np.ndarray, ys: np.ndarray, heights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(Y,X) the upper lashes as a sheet over the grid xs (X,) × ys (Y,) mm: from the upper lid's
    margin as seen from the front (in each column, the skin just above the opening's topmost open
    cell among ``rows`` (Y,) bool, the eyeball's rows) forward by :data:`LASH_REACH` while rising
    :data:`LASH_RISE` mm; −inf off the sheet and over columns without an opening. heights (Y,X)
    the skin's (:func:`_skin_heights`, −inf in the opening)."""
    opening = ~np.isfinite(heights) & rows[:, None]  # (Y,X)
    top = len(ys) - 1 - np.argmax(opening[::-1], axis=0)  # (X,) the topmost open row per column
    margin = np.minimum(top + 1, len(ys) - 1)
    cols = np.arange(len(xs))
    ok = opening.any(0) & np.isfinite(heights[margin, cols])
    up = (ys[:, None] - ys[margin][None]) / LASH_RISE  # (Y,X) 0 at the margin, 1 at the lashes' tips
    on = (up >= 0.0) & (up <= 1.0) & ok[None]
    return np.where(on, heights[margin, cols][None] + LASH_REACH * up, -np.inf)


def lid_visibility(points: np.ndarray, skin: np.ndarray, skin_faces: np.ndarray, where: np.ndarray | None = None,
                   lashes: bool = True, reach: float = 8.0, step: float = 0.2, directions: int = 12,
                   samples: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(visible (N,) in [0,1], covered (N,) bool): the share of the cosine-weighted hemisphere
    around +z (the face's front) that each eyeball point sees past the skin (1 on open ground,
    towards 0 deep under a lid; a sky brighter above, :data:`SKY_ABOVE`) and whether skin lies
    straight in front of it (hidden from the front).

    points (N,3) mm, model space (the face looks along +z), posed and turned as rendered; skin
    (V,3) mm with faces (F,3); ``where`` (N,) bool: the points to compute (0 elsewhere; default
    all). The skin's height field is sampled every ``step`` mm over the points' box grown by
    ``reach`` mm; the horizon along each of ``directions`` azimuths is the steepest rise of the
    skin over ``samples`` distances up to ``reach`` (closer ones denser). ``lashes``: the upper
    lashes (:func:`_lash_heights`) hide :data:`LASH_COVER` of what lies behind them."""
    p = np.asarray(points, np.float64)
    where = np.ones(len(p), bool) if where is None else np.asarray(where, bool)
    visible, covered = np.zeros(len(p)), np.zeros(len(p), bool)
    if not where.any():
        return visible, covered
    q = p[where]
    lo, hi = q[:, :2].min(0) - reach - step, q[:, :2].max(0) + reach + step
    xs, ys = np.arange(lo[0], hi[0] + step, step), np.arange(lo[1], hi[1] + step, step)
    z0 = float(q[:, 2].min()) - 1.0
    heights = _skin_heights(xs, ys, z0, np.asarray(skin, np.float64), np.asarray(skin_faces, np.int64))
    angle = np.arange(directions) * (2.0 * np.pi / directions)
    dirs = np.stack([np.cos(angle), np.sin(angle)], 1)  # (D,2)
    dist = np.maximum(reach * ((np.arange(samples) + 1.0) / samples) ** 2, step)  # (S,) mm, denser near the point
    offset = np.rint(dist[None, :, None] * dirs[:, None, :] / step).astype(np.int64)  # (D,S,2) grid steps
    cell = np.rint((q[:, :2] - lo) / step).astype(np.int64)  # (n,2)
    col = np.clip(cell[:, None, None, 0] + offset[..., 0], 0, len(xs) - 1)
    row = np.clip(cell[:, None, None, 1] + offset[..., 1], 0, len(ys) - 1)
    flat = row * len(xs) + col  # (n,D,S)
    seen = _horizon_share(heights.astype(np.float32).ravel()[flat], q[:, 2], dist)
    if lashes:
        rows = (ys >= q[:, 1].min() - 2.0) & (ys <= q[:, 1].max() + 2.0)  # the opening over the points
        sheet = np.maximum(heights, _lash_heights(xs, ys, heights, rows)).astype(np.float32)
        seen = (1.0 - LASH_COVER) * seen + LASH_COVER * _horizon_share(sheet.ravel()[flat], q[:, 2], dist)
    visible[where] = seen
    covered[where] = heights[np.clip(cell[:, 1], 0, len(ys) - 1), np.clip(cell[:, 0], 0, len(xs) - 1)] > q[:, 2]
    return visible, covered


def _horizon_share(heights: np.ndarray, z: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """(N,) the cosine-weighted share of the sky seen under the horizons: heights (N,D,S) mm of the
    occluders around each point along D azimuths at distances ``dist`` (S,) mm, z (N,) the points'."""
    rise = (heights - z[:, None, None].astype(heights.dtype)) * (1.0 / dist).astype(heights.dtype)  # (N,D,S) tan
    tan = np.maximum(rise.max(2), 0.0).astype(np.float64)  # (N,D) the horizon, at least the point's own plane
    D = heights.shape[1]
    weight = 1.0 + SKY_ABOVE * np.sin(np.arange(D) * (2.0 * np.pi / D))  # (D,) brighter from above (+y)
    return (1.0 / (1.0 + tan**2)) @ (weight / weight.sum())  # cos²θ per slice


def eye_shading(eyeballs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], skin: np.ndarray, skin_faces: np.ndarray,
                references: dict[int, float]) -> list[np.ndarray]:
    """Per eyeball triangle corner, the share (f,3) in [0,1] of its material's colour that the lids
    let through: the corner's :func:`lid_visibility` over that of the part of its material the
    photo's colour was read from.

    eyeballs: per eyeball (vertices (n,3) mm, faces (f,3), material (f,) int), as rendered; skin
    (V,3) mm, faces (F,3); references: {material: quantile}: that quantile of the visibility of the
    material's vertices seen from the front (not covered, facing +z; pooled over the eyeballs)
    keeps the full colour (the sclera's colour is the median of the brightest pixels between the
    lids, the iris's the median of its ring: :func:`backend.parts_texture.eye_colours`); a
    material not listed takes the lowest of those levels."""
    from .geometry import vertex_normals_np

    seen, fronts = [], []
    for verts, faces, material in eyeballs:
        normals = vertex_normals_np(np.asarray(verts, np.float32), np.asarray(faces, np.int64))
        facing = normals[:, 2] / np.maximum(np.linalg.norm(normals, axis=1), 1e-12)  # (n,) cos to +z
        vis, covered = lid_visibility(verts, skin, skin_faces, where=facing > SEEN_FACING)
        front = ~covered & (facing > FACING)
        seen.append(vis)
        fronts.append({m: vis[np.intersect1d(np.flatnonzero(front), faces[material == m])] for m in references})
    levels = {}
    for m, q in references.items():
        pooled = np.concatenate([f[m] for f in fronts]) if fronts else np.zeros(0)
        levels[m] = max(float(np.quantile(pooled, q)), 1e-3) if len(pooled) else 1.0
    rest = min(levels.values(), default=1.0)
    out = []
    for (verts, faces, material), vis in zip(eyeballs, seen):
        level = np.array([levels.get(int(m), rest) for m in range(int(material.max(initial=0)) + 1)])
        out.append(np.clip(vis[faces] / level[material][:, None], 0.0, 1.0))
    return out


def fine_eyeball(vertices: np.ndarray, faces: np.ndarray, material: np.ndarray, levels: int = 1
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An eyeball's shell split into ``4^levels`` triangles each (:func:`backend.geometry.lattice_subdivision`),
    the new vertices pushed out onto the sphere through the old (:func:`backend.head_parts.eye_frame`'s),
    so a shading sampled at the vertices resolves the lids' shadow. vertices (n,3) mm, faces (f,3),
    material (f,). Returns (vertices (N,3) float32, faces (f·4^levels,3) int64, material (f·4^levels,))."""
    from .geometry import lattice_subdivision
    from .head_parts import eye_frame

    v, f = np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    split = lattice_subdivision(f, f, levels)
    fine = np.einsum("nk,nkc->nc", split["vert_bary"], v[f[split["vert_face"]]])
    frame = eye_frame(v)
    rel = fine - frame.centre
    length = np.linalg.norm(rel, axis=1, keepdims=True)
    coarse = np.einsum("nk,nk->n", split["vert_bary"], np.linalg.norm(v - frame.centre, axis=1)[f[split["vert_face"]]])
    fine = frame.centre + rel * (coarse[:, None] / np.maximum(length, 1e-9))  # the corners' radius, interpolated
    return fine.astype(np.float32), split["faces"], np.repeat(np.asarray(material), 4**levels)
