"""Mesh and camera geometry in numpy, free of torch (the add-on calls it inside Blender):
area-weighted vertex normals, Phong tessellation, the whole head with its detail in the
geometry (what ``head_detailed.obj`` and the add-on's dense option export), and a view's
camera frame (:func:`camera_frame`). :mod:`backend.export`
imports this module; it imports nothing of the backend.

Phong tessellation (Boubekeur & Alexa 2008) is the smooth surface over a triangle mesh that the
fit's UV position map (:func:`backend.uvmaps.uv_position_map`, torch) and the detailed head
(numpy) both lie on. A point with barycentrics b over corners p_k with unit normals n_k: the
linear point q = Σ b_k p_k is projected onto each corner's tangent plane, q − ((q − p_k)·n_k) n_k,
the projections are blended by b, and the result is mixed with q by ``PHONG_ALPHA``. Along an
edge it depends only on that edge's two corners, so neighbouring triangles meet without cracks.

The detailed head: the fit's dense mesh (:mod:`backend.detail`, the paper's UV render layer)
covers the face tile only: one vertex per texel, so it has no scalp and its border is a cut. For
export every coarse triangle is instead split into a regular lattice of ``n = 2^levels`` steps per
edge; lattice points on a shared edge or corner are shared, so the result is as closed and
manifold as the coarse mesh, and it keeps the coarse mesh's UV layout (seams included), so
``albedo.png`` applies unchanged. Each point lies on the Phong surface and is moved along the
interpolated vertex normal by the displacement map sampled at its UV (face tile; the other tiles
carry none).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

__all__ = ["array_digest", "vertex_normals_np", "PHONG_ALPHA", "phong_points", "DetailedHeadMesh", "detailed_head_mesh",
           "subdivision_levels", "lattice_subdivision", "sample_map", "MAX_LEVELS", "euler_to_rotation_np",
           "CameraFrame", "camera_frame", "ORTHO_CAMERA_DISTANCE_MM", "split_seams"]

Array = TypeVar("Array")  # numpy.ndarray or torch.Tensor: the Phong formula is the same for both

# Shape factor: 0 = flat triangles, 1 = fully projected. On a sphere of 10° facets ½ leaves
# 0.008 mm mean radial error per 100 mm (flat: 0.40 mm inside; their visual choice ¾: 0.19 mm
# outside), so ½ is the geometric choice.
PHONG_ALPHA = 0.5


def vertex_normals_np(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals. vertices (V,3), faces (F,3) CCW. Returns (V,3) float32.

    Vertices used by no face get (0, 0, 1).
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # (F,3), |.| = 2·area
    idx = f.reshape(-1)
    rep = np.repeat(fn, 3, axis=0)
    n = np.stack([np.bincount(idx, rep[:, c], minlength=len(v)) for c in range(3)], -1)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    out = np.where(length > 1e-20, n / np.maximum(length, 1e-20), np.array([0.0, 0.0, 1.0]))
    return out.astype(np.float32)


def split_seams(faces: np.ndarray, faces_uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One vertex per unique (position, UV) pair, as glTF needs.

    faces, faces_uv (F,3). Returns (vert_idx (N,), uv_idx (N,), new_faces (F,3)): new vertex i is
    position ``vert_idx[i]`` with UV ``uv_idx[i]``.
    """
    pairs = np.stack([np.asarray(faces, np.int64).reshape(-1), np.asarray(faces_uv, np.int64).reshape(-1)], -1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    return unique[:, 0], unique[:, 1], inverse.reshape(-1, 3)


def phong_points(flat: Array, corners: Array, normals: Array, bary: Array) -> Array:
    """The Phong points of linear points. numpy arrays or torch tensors, broadcast together:
    flat (...,3) the linear points Σ b_k p_k; corners (...,3,3) the triangle's corner positions
    and normals (...,3,3) their unit vertex normals; bary (...,3). Returns (...,3)."""
    q = flat[..., None, :]
    projected = q - ((q - corners) * normals).sum(-1)[..., None] * normals  # onto each corner's tangent plane
    return (1.0 - PHONG_ALPHA) * flat + PHONG_ALPHA * (bary[..., None] * projected).sum(-2)


@dataclass(frozen=True)
class DetailedHeadMesh:
    """verts (V,3) mm; faces (F,3); uv (T,2) in the model's tile layout (u ∈ [0, tiles]);
    faces_uv (F,3); displacement (V,) mm applied to each vertex, read from the map at
    vertex_uv (V,2) (one of a seam vertex's UVs: its first occurrence)."""

    verts: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    faces_uv: np.ndarray
    displacement: np.ndarray
    vertex_uv: np.ndarray


MAX_LEVELS = 2  # 4^2 = 16 triangles per coarse one (ICT at 256²: 357k); 3 levels would be 1.4 M


def subdivision_levels(uv: np.ndarray, faces_uv: np.ndarray, map_size: int, max_levels: int = MAX_LEVELS) -> int:
    """Lattice levels that bring the face tile's edges down to about one texel of a
    ``map_size``² map: ``ceil(log2(median edge length in texels))``, at most ``max_levels``.
    ICT: its median face-tile edge spans 1.2 / 2.3 / 4.7 texels at 128² / 256² / 512², so 1 / 2 /
    2 (capped: the normal map carries what is finer). A denser model needs fewer levels.
    uv (T,2) in tile units; faces_uv (F,3)."""
    uv, faces_uv = np.asarray(uv, np.float64), np.asarray(faces_uv, np.int64)
    tile = uv[faces_uv].mean(1)[:, 0] < 1.0  # the face tile (u < 1), as backend.uvmaps
    corners = faces_uv[tile] if tile.any() else faces_uv
    edges = np.concatenate([corners[:, [0, 1]], corners[:, [1, 2]], corners[:, [2, 0]]])
    texels = float(np.median(np.linalg.norm(uv[edges[:, 0]] - uv[edges[:, 1]], axis=1))) * map_size
    return int(min(max_levels, max(0, np.ceil(np.log2(max(texels, 1.0))))))


def _lattice(n: int) -> tuple[np.ndarray, np.ndarray]:
    """One triangle's lattice: integer weights (P,3) of the points (i, j), i + j ≤ n, on corners
    (0, 1, 2) = (n − i − j, i, j), and its n² triangles (n²,3) oriented like the corners."""
    j, i = np.divmod(np.arange((n + 1) ** 2), n + 1)
    keep = i + j <= n
    i, j = i[keep], j[keep]
    index = np.full((n + 2, n + 2), -1)
    index[i, j] = np.arange(i.size)
    ci, cj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    up = ci + cj < n  # (i,j) → (i+1,j) → (i,j+1)
    down = ci + cj < n - 1  # (i+1,j) → (i+1,j+1) → (i,j+1)
    tris = np.concatenate([
        np.stack([index[ci, cj], index[ci + 1, cj], index[ci, cj + 1]], -1)[up],
        np.stack([index[ci + 1, cj], index[ci + 1, cj + 1], index[ci, cj + 1]], -1)[down],
    ])
    return np.stack([n - i - j, i, j], 1), tris


def _shared_ids(table: np.ndarray, steps: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids of every triangle's lattice points, shared along edges and at corners.

    table (F,3) vertex (or UV) ids; steps (P,3) lattice weights. Returns (ids (F,P) in [0,N),
    first (N,): the flat F·P position of each id's first occurrence)."""
    F, P = table.shape[0], steps.shape[0]
    if max(F, int(table.max(initial=0)) + 1) >= 1 << 25 or n >= 16:
        raise ValueError("mesh too large (2^25 vertices or faces) or too many levels (3 at most) to subdivide")
    zeros = (steps == 0).sum(1)
    corner, on_edge, inside = zeros == 2, zeros == 1, zeros == 0
    # one int64 key per point: kind (2 bits) | a (25) | b (25) | t (4); corner (0, vertex, 0, 0),
    # edge (1, lower vertex, higher vertex, steps from the lower), inside (2, triangle, point, 0)
    kind = np.zeros((F, P), np.int64)
    a = np.zeros((F, P), np.int64)
    b = np.zeros((F, P), np.int64)
    t = np.zeros((F, P), np.int64)
    a[:, corner] = table[:, steps[corner].argmax(1)]
    zero_corner = (steps[on_edge] == 0).argmax(1)  # an edge point joins the other two corners
    e0, e1 = (zero_corner + 1) % 3, (zero_corner + 2) % 3
    va, vb = table[:, e0], table[:, e1]  # (F,Pe)
    t_from_a = steps[on_edge][np.arange(e1.size), e1]  # steps from va towards vb
    kind[:, on_edge] = 1
    a[:, on_edge], b[:, on_edge] = np.minimum(va, vb), np.maximum(va, vb)
    t[:, on_edge] = np.where(va <= vb, t_from_a, n - t_from_a)
    kind[:, inside] = 2
    a[:, inside] = np.arange(F)[:, None]
    b[:, inside] = np.flatnonzero(inside)[None]
    key = (kind << 54) | (a << 29) | (b << 4) | t
    _, first, ids = np.unique(key.reshape(-1), return_index=True, return_inverse=True)
    return ids.reshape(F, P), first


def lattice_subdivision(faces: np.ndarray, faces_uv: np.ndarray, levels: int) -> dict[str, np.ndarray]:
    """Split every triangle into ``4^levels`` by a regular lattice of ``n = 2^levels`` steps.

    faces, faces_uv (F,3). Returns ``faces``/``faces_uv`` (F·n²,3) of new vertex / UV ids and,
    per new vertex / UV, its source triangle and barycentrics: ``vert_face`` (N,), ``vert_bary``
    (N,3), ``uv_face`` (T,), ``uv_bary`` (T,3); ``vert_uv`` (N,) the UV id of each vertex's first
    occurrence. Ids are ordered by (corners by coarse id, edge points, interior points)."""
    if levels < 0:
        raise ValueError(f"levels must be ≥ 0, got {levels}")
    faces, faces_uv = np.asarray(faces, np.int64), np.asarray(faces_uv, np.int64)
    if faces.shape != faces_uv.shape or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces and faces_uv must both be (F,3), got {faces.shape} and {faces_uv.shape}")
    n = 2 ** levels
    steps, tris = _lattice(n)
    P = steps.shape[0]
    v_ids, v_first = _shared_ids(faces, steps, n)
    t_ids, t_first = _shared_ids(faces_uv, steps, n)
    return {
        "faces": v_ids[:, tris].reshape(-1, 3), "faces_uv": t_ids[:, tris].reshape(-1, 3),
        "vert_face": v_first // P, "vert_bary": steps[v_first % P] / n,
        "uv_face": t_first // P, "uv_bary": steps[t_first % P] / n,
        "vert_uv": t_ids.reshape(-1)[v_first],
    }


def sample_map(image: np.ndarray, uv: np.ndarray, u_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """Bilinear lookup of a single-channel map (H,W), top row = v 1, texel centres at
    u = u0 + (j + ½)/W·(u1 − u0), edges clamped (as :func:`backend.render.sample_texture`).
    uv (N,2) → (N,)."""
    H, W = image.shape
    x = np.clip((uv[:, 0] - u_range[0]) / (u_range[1] - u_range[0]) * W - 0.5, 0, W - 1)
    y = np.clip((1.0 - uv[:, 1]) * H - 0.5, 0, H - 1)
    x0, y0 = np.minimum(np.floor(x).astype(np.int64), W - 2), np.minimum(np.floor(y).astype(np.int64), H - 2)
    fx, fy = x - x0, y - y0
    return ((1 - fy) * ((1 - fx) * image[y0, x0] + fx * image[y0, x0 + 1])
            + fy * ((1 - fx) * image[y0 + 1, x0] + fx * image[y0 + 1, x0 + 1]))


_DETAILED_CACHE: dict[bytes, DetailedHeadMesh] = {}  # the last head's mesh, by its inputs' digest


def array_digest(*arrays: np.ndarray, extra: tuple = ()) -> bytes:
    """A digest of the arrays' dtypes, shapes and bytes (and ``extra``): a cache key that an
    in-place edit changes."""
    h = hashlib.blake2b(repr(extra).encode(), digest_size=20)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.digest()


def detailed_head_mesh(head, levels: int | None = None) -> DetailedHeadMesh:
    """The whole head of ``head`` (a :class:`~backend.head.Head` with ``displacement``) with its
    detail displaced into a lattice subdivision (module docstring). ``levels``: default
    :func:`subdivision_levels` of the model's UVs and the map size.

    The last result is kept, keyed by a digest of every input: the previews and
    ``head_detailed.obj`` of one head build it once (0.2 s). Treat its arrays as read-only."""
    if head.displacement is None:
        raise ValueError("this Head has no displacement map: run the detail stage")
    tiles = max(1, int(getattr(head, "uv_tiles", 1)))
    key = array_digest(head.displacement, head.vertices, head.faces, head.faces_uv, head.uv, extra=(levels, tiles))
    if key not in _DETAILED_CACHE:
        _DETAILED_CACHE.clear()
        _DETAILED_CACHE[key] = _detailed_head_mesh(head, levels, tiles)
    return _DETAILED_CACHE[key]


def _detailed_head_mesh(head, levels: int | None, tiles: int) -> DetailedHeadMesh:
    """:func:`detailed_head_mesh` without the cache."""
    disp = np.asarray(head.displacement, np.float64)  # (S, S·tiles) mm, top row = v 1
    verts = np.asarray(head.vertices, np.float64)
    faces, faces_uv = np.asarray(head.faces, np.int64), np.asarray(head.faces_uv, np.int64)
    uv = np.asarray(head.uv, np.float64)
    levels = subdivision_levels(uv, faces_uv, disp.shape[0]) if levels is None else levels
    sub = lattice_subdivision(faces, faces_uv, levels)
    normals = vertex_normals_np(verts, faces).astype(np.float64)  # (V,3)
    corners = faces[sub["vert_face"]]  # (N,3) coarse vertex ids
    flat = (sub["vert_bary"][..., None] * verts[corners]).sum(1)  # (N,3) on the flat triangles
    position = phong_points(flat, verts[corners], normals[corners], sub["vert_bary"])
    direction = (sub["vert_bary"][..., None] * normals[corners]).sum(1)
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    new_uv = (sub["uv_bary"][..., None] * uv[faces_uv[sub["uv_face"]]]).sum(1)  # (T,2)
    # each vertex reads the map at the UV of its first occurrence (across a seam the map fades to 0)
    vertex_uv = new_uv[sub["vert_uv"]]
    d = sample_map(disp, vertex_uv, (0.0, float(tiles)))
    return DetailedHeadMesh(verts=position + d[:, None] * direction, faces=sub["faces"], uv=new_uv,
                            faces_uv=sub["faces_uv"], displacement=d, vertex_uv=vertex_uv)


# -- cameras -------------------------------------------------------------------------------------
ORTHO_CAMERA_DISTANCE_MM = 1000.0  # a scene camera for an orthographic view sits this far in front


def euler_to_rotation_np(angles: np.ndarray) -> np.ndarray:
    """:func:`backend.camera.euler_to_rotation` in numpy (float64): angles (..., 3) radians
    (rx, ry, rz) → (..., 3, 3) ``Rz·Ry·Rx``."""
    a = np.asarray(angles, np.float64)
    cx, sx, cy, sy, cz, sz = np.cos(a[..., 0]), np.sin(a[..., 0]), np.cos(a[..., 1]), np.sin(a[..., 1]), \
        np.cos(a[..., 2]), np.sin(a[..., 2])
    one, zero = np.ones_like(cx), np.zeros_like(cx)
    shape = a.shape[:-1] + (3, 3)
    Rx = np.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(shape)
    Ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(shape)
    Rz = np.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(shape)
    return Rz @ Ry @ Rx


@dataclass(frozen=True)
class CameraFrame:
    """A view's camera placed in model space (mm), for a scene camera that sees the photo.

    - ``axes`` (3,3): rows = the camera's x (image right), y (image up) and z (towards the viewer:
      the camera looks along −z) in model coordinates (= the rows of the pose's R);
    - ``eye`` (3,) mm: the camera's position;
    - ``projection``: ``orthographic`` (``f``: pixels per mm) or ``perspective`` (``f``: the focal
      length in pixels).
    """

    axes: np.ndarray
    eye: np.ndarray
    projection: str
    f: float


def camera_frame(pose: np.ndarray, projection: str, distance_mm: float = ORTHO_CAMERA_DISTANCE_MM) -> CameraFrame:
    """The camera of a view's 7-D pose (:mod:`backend.camera`: f, rx, ry, rz, tx, ty, tz) whose
    image is the photo. Orthographic: camera space in mm has the image centre at (−tx/f, −ty/f);
    the camera sits ``distance_mm`` in front. Perspective: the camera at the camera-space origin
    (R·v + t = 0)."""
    f, rx, ry, rz, tx, ty, tz = (float(v) for v in np.asarray(pose, np.float64).ravel()[:7])
    rot = euler_to_rotation_np(np.array([rx, ry, rz]))
    if projection == "orthographic":
        return CameraFrame(axes=rot, eye=rot.T @ np.array([-tx / f, -ty / f, distance_mm]), projection=projection, f=f)
    if projection == "perspective":
        return CameraFrame(axes=rot, eye=-rot.T @ np.array([tx, ty, tz]), projection=projection, f=f)
    raise ValueError(f"unknown projection {projection!r}: use 'orthographic' or 'perspective'")
