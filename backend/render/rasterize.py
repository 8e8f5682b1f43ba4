"""Hard z-buffer rasterisation of triangle meshes in pure PyTorch.

Screen conventions are :mod:`backend.camera`'s: x right, y down, pixel ``(i, j)`` (row, column)
has its centre at ``(x, y) = (j, i)``; screen ``z`` is a depth, smaller = nearer.
A pixel is covered by a triangle when its centre lies inside or on an edge (inclusive, with a
tiny tolerance so shared edges leave no cracks). Of the triangles covering a pixel the
nearest wins; exact depth ties go to the lower face index.

Two passes:

1. *Visibility* (no autograd): every triangle enumerates the pixel centres in its bounding
   box. Triangles are grouped into buckets by bounding-box size (powers of two per axis) so
   a 1-pixel triangle costs one candidate and a large one costs its box, and buckets are cut
   into chunks of at most ``max_candidates`` candidates, so memory stays bounded. The winner
   per pixel is one ``scatter_reduce(amin)`` over an int64 key holding the quantised depth
   in the high bits and the face index in the low bits (depth order + deterministic ties).
2. *Barycentrics* (autograd): for the winning face of each covered pixel only, the
   barycentrics are recomputed from the vertex positions, so they (and depth, and anything
   interpolated from them) are differentiable w.r.t. ``screen_verts``. Coverage itself is
   piecewise constant (no gradient through silhouettes).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

from ..device_constants import constant, corner_major

__all__ = ["Fragments", "RasterSettings", "rasterize", "rasterize_reference", "visibility"]

_SENTINEL = torch.iinfo(torch.int64).max


@dataclass(frozen=True)
class RasterSettings:
    """Options of :func:`rasterize`.

    - ``perspective_correct``: interpolate barycentrics perspective-correctly, treating screen
      ``z`` as the view depth (positive, mm: :func:`backend.camera.project` with a perspective
      camera). Depth is then ``1/Σ(b_i/z_i)``. Leave False for orthographic cameras.
    - ``cull_backfaces``: drop triangles facing away from the camera. Front faces are
      counter-clockwise seen from the camera, i.e. *clockwise* in screen coordinates (y down):
      negative signed screen area ``(x1−x0)(y2−y0) − (x2−x0)(y1−y0)``.
    - ``edge_tolerance``: a pixel centre counts as inside when all barycentrics ≥ −tolerance
      (barycentric units); closes float cracks along shared edges.
    - ``z_near``: when set, triangles with any vertex at screen ``z < z_near`` are dropped
      (use with perspective cameras: a vertex behind the camera has no valid projection).
    - ``max_candidates``: upper bound on (triangle, pixel) candidates processed at once in
      the visibility pass; memory is about 60 bytes per candidate.
    """

    perspective_correct: bool = False
    cull_backfaces: bool = False
    edge_tolerance: float = 1e-5
    z_near: float | None = None
    max_candidates: int = 1 << 21


@dataclass(frozen=True)
class Fragments:
    """Per-pixel rasterisation result (B batch, H×W image).

    - ``face_idx``: (B,H,W) int64, index into ``faces`` of the visible triangle, −1 where
      no triangle covers the pixel.
    - ``bary``: (B,H,W,3) barycentrics of the pixel centre w.r.t. that triangle's vertices
      (sum to 1; perspective-correct when requested), zero on background. Same dtype and
      device as ``screen_verts``; differentiable w.r.t. it.
    - ``depth``: (B,H,W) screen depth at the pixel centre (units of screen ``z``: pixels for
      orthographic, mm for perspective), 0 on background.
    """

    face_idx: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B,H,W) bool: pixels covered by some triangle."""
        return self.face_idx >= 0

    def detach(self) -> "Fragments":
        """The same fragments without autograd history."""
        return Fragments(self.face_idx, self.bary.detach(), self.depth.detach())


def _check_inputs(screen_verts: torch.Tensor, faces: torch.Tensor, height: int, width: int) -> None:
    if screen_verts.dim() != 3 or screen_verts.shape[-1] != 3:
        raise ValueError(f"screen_verts must be (B,V,3), got {tuple(screen_verts.shape)}")
    if not screen_verts.is_floating_point():
        raise ValueError(f"screen_verts must be floating point, got {screen_verts.dtype}")
    if faces.dim() != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be (F,3), got {tuple(faces.shape)}")
    if faces.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"faces must be int32/int64 vertex indices, got {faces.dtype}")
    if faces.device != screen_verts.device:
        raise ValueError(f"faces on {faces.device} but screen_verts on {screen_verts.device}: move both to one device")
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    _check_face_range(faces, screen_verts.shape[1])


def rasterize(
    screen_verts: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    settings: RasterSettings | None = None,
    face_mask: torch.Tensor | None = None,
    visible: torch.Tensor | None = None,
) -> Fragments:
    """Rasterise triangles with a hard z-buffer.

    screen_verts: (B,V,3) float, x/y in pixels (camera convention), z depth (smaller = nearer).
    faces: (F,3) int vertex indices, shared by the batch. height, width: image size in pixels.
    face_mask: optional (B,F) bool, the triangles each batch item draws (items whose meshes
    differ in a few triangles, as batched independent detail fits; None: all).
    visible: optional (B·H·W,) int64, pass 1's answer from :func:`visibility` (of these or
    earlier positions): then only pass 2 runs, over every pixel, with no data-dependent shape
    and no host synchronisation (a step that can be captured in a CUDA graph,
    :mod:`backend.fit.step_graph`); the same fragments, bit for bit, as the sparse pass.
    Returns :class:`Fragments`; barycentrics and depth carry gradients to ``screen_verts``.
    """
    if visible is not None:
        return _fragments_dense(screen_verts, faces.long(), visible, height, width, settings or RasterSettings())
    settings = settings or RasterSettings()
    _check_inputs(screen_verts, faces, height, width)
    if face_mask is not None and face_mask.shape != (screen_verts.shape[0], faces.shape[0]):
        raise ValueError(f"face_mask must be (B,F) = {(screen_verts.shape[0], faces.shape[0])}, got {tuple(face_mask.shape)}")
    faces = faces.long()
    with torch.no_grad():
        keys = _visibility_keys(screen_verts.detach(), faces, height, width, settings, face_mask)
    return _fragments_from_keys(screen_verts, faces, keys, height, width, settings)


def visibility(
    screen_verts: torch.Tensor, faces: torch.Tensor, height: int, width: int, settings: RasterSettings | None = None,
    face_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pass 1 alone (no autograd; data-dependent shapes inside): (B·H·W,) int64 keys of the
    winning triangle per pixel, for :func:`rasterize`'s ``visible``. Arguments as rasterize's."""
    settings = settings or RasterSettings()
    _check_inputs(screen_verts, faces, height, width)
    with torch.no_grad():
        return _visibility_keys(screen_verts.detach(), faces.long(), height, width, settings, face_mask)


# --------------------------------------------------------------------------------------
# pass 1: visibility
def _visibility_keys(
    sv: torch.Tensor, faces: torch.Tensor, height: int, width: int, settings: RasterSettings,
    face_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B·H·W,) int64 keys ``quantised depth << face_bits | face`` of the winning face, or the sentinel.

    Per-triangle quantities are kept planar (one contiguous row per quantity, a column per
    triangle) and the kept triangles are gathered once, already sorted by bucket."""
    B, F, dev = sv.shape[0], faces.shape[0], sv.device
    keys = torch.full((B * height * width,), _SENTINEL, dtype=torch.int64, device=dev)
    if F == 0:
        return keys
    face_bits = max(1, int(F - 1).bit_length())
    key_bits = min(62 - face_bits, 40)
    # Depth keys of in-triangle candidates lie in [margin, margin + levels]: the edge
    # tolerance can push them a hair outside [kmin, kmax], never past the margin.
    margin = float(2 ** (key_bits - 12))
    depth_levels = float(2**key_bits) - 2 * margin

    # corners[c, i] (B·F,): coordinate c (x, y, z) of corner i of every triangle instance b·F + f
    coords = sv.float().permute(2, 0, 1).reshape(3 * B, -1)  # (3·B,N)
    corners = coords.index_select(1, corner_major(faces)).view(3, B, 3, F).transpose(1, 2).reshape(3, 3, B * F)
    x0, x1, x2 = corners[0]
    y0, y1, y2 = corners[1]
    z = corners[2]  # (3,B·F)

    # Pixel-centre bounding boxes clipped to the image (elementwise min/max: faster than amin).
    xmin = torch.minimum(torch.minimum(x0, x1), x2).ceil_().clamp_min_(0)
    xmax = torch.maximum(torch.maximum(x0, x1), x2).floor_().clamp_max_(width - 1)
    ymin = torch.minimum(torch.minimum(y0, y1), y2).ceil_().clamp_min_(0)
    ymax = torch.maximum(torch.maximum(y0, y1), y2).floor_().clamp_max_(height - 1)
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    keep = (xmin <= xmax) & (ymin <= ymax) & (area != 0) & torch.isfinite(corners.sum((0, 1)))
    if settings.cull_backfaces:
        keep &= area < 0
    if settings.z_near is not None:
        keep &= (z >= settings.z_near).all(0)
    if settings.perspective_correct:
        keep &= (z > 0).all(0)
    if face_mask is not None:
        keep &= face_mask.reshape(-1)  # instances b·F + f
    sel = keep.nonzero().squeeze(1)  # instances (b·F + f)
    if sel.numel() == 0:
        return keys

    # Bucket by power-of-two box size per axis; sorting the instances once makes every bucket
    # (and every chunk of ≤ max_candidates) a contiguous slice.
    box = torch.stack([xmin, ymin, xmax, ymax]).index_select(1, sel)  # (4,n)
    size = (box[2:] - box[:2]).long() + 1  # (2,n) box width, height
    order = torch.argsort(_ceil_log2(size[0]) * 64 + _ceil_log2(size[1]))
    sel, box, size = sel.index_select(0, order), box.index_select(1, order), size.index_select(1, order)
    codes, counts = torch.unique_consecutive(
        _ceil_log2(size[0]) * 64 + _ceil_log2(size[1]), return_counts=True)
    xmin_, ymin_ = box[0], box[1]
    tri = corners.view(9, B * F).index_select(1, sel)  # (9,n)
    x0, x1, x2, y0, y1, y2 = tri[:6]
    inv_area = 1.0 / ((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0))
    # Barycentrics as affine functions of the pixel offset (lx, ly) from (xmin, ymin):
    # b_i = A_i·lx + B_i·ly + C_i (edge functions of the opposite edge, over the area).
    ex = torch.stack([x2 - x1, x0 - x2, x1 - x0])  # (3,n) edge i runs from vertex i+1 to i+2
    ey = torch.stack([y2 - y1, y0 - y2, y1 - y0])
    sx = torch.stack([x1, x2, x0])
    sy = torch.stack([y1, y2, y0])
    A = -ey * inv_area
    Bc = ex * inv_area
    C = (ex * (ymin_ - sy) - ey * (xmin_ - sx)) * inv_area
    # Quantised depth key, also affine in (lx, ly).
    kv = -1.0 / tri[6:] if settings.perspective_correct else tri[6:]  # (3,n)
    kmin, kmax = kv.min(), kv.max()
    kscale = depth_levels / (kmax - kmin).clamp_min(1e-30)
    kq = (kv - kmin) * kscale + margin
    pix0 = (sel // F) * (height * width) + ymin_.long() * width + xmin_.long()

    fparams = torch.cat([A, Bc, C, torch.stack(_affine_depth(A, Bc, C, kq))])  # (12,n)
    iparams = torch.stack([size[0], size[1], pix0, sel % F])  # (4,n)
    _scan_buckets(keys, fparams, iparams, codes, counts, width, face_bits, settings)
    return keys


def _affine_depth(A: torch.Tensor, Bc: torch.Tensor, C: torch.Tensor, kq: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Coefficients of the depth key k(lx, ly) = Ak·lx + Bk·ly + Ck from per-vertex keys kq (3,n)."""
    # Explicit sums (not .sum(0)): a fixed evaluation order keeps CPU and CUDA bitwise equal.
    return tuple(_dot3(t, kq) for t in (A, Bc, C))


def _scan_buckets(
    keys: torch.Tensor, fparams: torch.Tensor, iparams: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor,
    width: int, face_bits: int, settings: RasterSettings,
) -> None:
    """Fold every (triangle, pixel-in-bbox) candidate into ``keys`` (in place, amin).

    fparams (12,n): barycentric A(3), B(3), C(3) and depth-key Ak, Bk, Ck, all affine in the
    pixel offset (lx, ly) from the box corner; iparams (4,n): box width, height, flat index of
    the corner pixel, face index. The columns are sorted by bucket: ``codes`` (ceil log2 of the
    box width · 64 + of its height) and ``counts`` give the consecutive buckets.
    """
    dev = keys.device
    # Box sizes as floats, minus one: lx ≤ bw − 1 is a fourth "edge" in the min below.
    box = (iparams[:2] - 1).float()
    n_pix = keys.shape[0]
    tol = -settings.edge_tolerance
    start = 0
    for c, n in zip(codes.tolist(), counts.tolist()):
        sw, sh = 1 << (c // 64), 1 << (c % 64)
        per = max(1, settings.max_candidates // (sw * sh))
        lx, ly, offs = _box_offsets(sw, sh, width, dev)
        for s in range(start, start + n, per):
            e = min(s + per, start + n)
            fp = fparams[:, s:e, None, None]  # (12,n,1,1)
            ip = iparams[:, s:e, None, None]
            bx = box[:, s:e, None, None]
            # Inside ⇔ all three barycentrics ≥ tol and the pixel lies in the box.
            m = torch.minimum(bx[0] - lx, bx[1] - ly)  # (n,sh,sw)
            for i in range(3):
                m = torch.minimum(m, fp[i] * lx + (fp[3 + i] * ly + fp[6 + i]))
            inside = m >= tol
            kk = (fp[9] * lx + (fp[10] * ly + fp[11])).long()
            key = torch.where(inside, (kk << face_bits) | ip[3], _SENTINEL)
            # Out-of-box candidates may index past the image: clamp (their key is the sentinel).
            pix = (ip[2] + offs).clamp_(max=n_pix - 1)
            keys.scatter_reduce_(0, pix.reshape(-1), key.reshape(-1), reduce="amin", include_self=True)
        start += n


_BOX_OFFSETS: dict[tuple[int, int, int, torch.device], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _box_offsets(sw: int, sh: int, width: int, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """lx (sw,) and ly (sh,1) float pixel offsets in an sw×sh box and their flat image offsets
    (1,sh,sw) for an image ``width`` wide; kept per size, since every step of a fit asks again."""
    key = (sw, sh, width, dev)
    found = _BOX_OFFSETS.get(key)
    if found is None:
        if len(_BOX_OFFSETS) > 512:
            _BOX_OFFSETS.clear()
        lx = torch.arange(sw, device=dev, dtype=torch.float32)
        ly = torch.arange(sh, device=dev, dtype=torch.float32)[:, None]
        offs = (torch.arange(sh, device=dev)[:, None] * width + torch.arange(sw, device=dev)).view(1, sh, sw)
        found = _BOX_OFFSETS[key] = (lx, ly, offs)
    return found


def _dot3(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ_i a[i]·b[i] over 3 rows, in a fixed order."""
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


# faces tensors already checked against a vertex count: id → (weak reference, version, n_verts).
# Reading min/max makes the CPU wait for a GPU, and a fit rasterises the same faces every step.
_CHECKED_FACES: dict[int, tuple[weakref.ref, int, int]] = {}


def _check_face_range(faces: torch.Tensor, n_verts: int) -> None:
    """Raise ValueError unless every index of ``faces`` is a vertex of an ``n_verts`` mesh; a
    tensor that passed for this count (and was not modified since) is not read again."""
    if not faces.numel():
        return
    seen = _CHECKED_FACES.get(id(faces))
    if seen is not None and seen[0]() is faces and seen[1:] == (faces._version, n_verts):
        return
    lo, hi = (int(v) for v in torch.aminmax(faces))
    if lo < 0 or hi >= n_verts:
        raise ValueError(
            f"faces index vertices {lo}..{hi} but screen_verts has {n_verts}: pass the faces of this mesh "
            "(faces_uv index uv, not vertices)"
        )
    if len(_CHECKED_FACES) > 256:
        _CHECKED_FACES.clear()
    _CHECKED_FACES[id(faces)] = (weakref.ref(faces), faces._version, n_verts)


def _ceil_log2(n: torch.Tensor) -> torch.Tensor:
    """ceil(log2(n)) for int64 n ≥ 1 (n ≤ 2^40)."""
    powers = constant(tuple(1 << k for k in range(41)), n.device, n.dtype)
    return torch.bucketize(n.contiguous(), powers)


# --------------------------------------------------------------------------------------
# pass 2: differentiable barycentrics for the winners
def barycentric_at(
    tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor, perspective_correct: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Barycentrics and depth of points in screen triangles.

    tri: (N,3,3) screen vertices (x, y, z) per point; px, py: (N,) pixel coordinates.
    Returns bary (N,3) (perspective-correct when asked: z is view depth) and depth (N,).
    """
    x, y, z = tri.unbind(-1)
    x0, x1, x2 = x.unbind(-1)
    y0, y1, y2 = y.unbind(-1)
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    w0 = (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)
    w1 = (x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)
    w2 = (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)
    bary = torch.stack([w0, w1, w2], -1) / area[:, None]
    if perspective_correct:
        q = bary / z
        bary = q / q.sum(-1, keepdim=True)
    depth = (bary * z).sum(-1)
    return bary, depth


def _fragments_from_keys(
    screen_verts: torch.Tensor, faces: torch.Tensor, keys: torch.Tensor, height: int, width: int,
    settings: RasterSettings,
) -> Fragments:
    B, F = screen_verts.shape[0], faces.shape[0]
    face_bits = max(1, int(F - 1).bit_length())
    covered = keys != _SENTINEL
    face_flat = torch.where(covered, keys & ((1 << face_bits) - 1), -1)
    pix = covered.nonzero().squeeze(1)  # (N,)
    fid = face_flat.index_select(0, pix)
    hw = height * width
    b = pix // hw
    rem = pix % hw
    py = (rem // width).to(screen_verts.dtype)
    px = (rem % width).to(screen_verts.dtype)
    vidx = faces.index_select(0, fid) + (b * screen_verts.shape[1])[:, None]  # (N,3) into flattened verts
    tri = screen_verts.reshape(-1, 3).index_select(0, vidx.reshape(-1)).view(-1, 3, 3)  # (N,3,3)
    bary_c, depth_c = barycentric_at(tri, px, py, settings.perspective_correct)
    n_pix = B * hw
    bary = screen_verts.new_zeros(n_pix, 3).index_copy(0, pix, bary_c)
    depth = screen_verts.new_zeros(n_pix).index_copy(0, pix, depth_c)
    return Fragments(
        face_idx=face_flat.view(B, height, width),
        bary=bary.view(B, height, width, 3),
        depth=depth.view(B, height, width),
    )


def _fragments_dense(
    screen_verts: torch.Tensor, faces: torch.Tensor, keys: torch.Tensor, height: int, width: int,
    settings: RasterSettings,
) -> Fragments:
    """Pass 2 over every pixel (static shapes): :func:`_fragments_from_keys`'s values, bit for bit.
    Uncovered pixels evaluate a fixed unit triangle (finite, no gradient) and are zeroed."""
    B, N, F = screen_verts.shape[0], screen_verts.shape[1], faces.shape[0]
    face_bits = max(1, int(F - 1).bit_length())
    covered = keys != _SENTINEL  # (B·H·W,)
    face_flat = torch.where(covered, keys & ((1 << face_bits) - 1), -1)
    hw = height * width
    pix = torch.arange(B * hw, device=keys.device)
    b, rem = pix // hw, pix % hw
    py = (rem // width).to(screen_verts.dtype)
    px = (rem % width).to(screen_verts.dtype)
    vidx = faces.index_select(0, face_flat.clamp_min(0)) + (b * N)[:, None]  # (B·H·W,3)
    tri = screen_verts.reshape(-1, 3).index_select(0, vidx.reshape(-1)).view(-1, 3, 3)
    unit = constant((0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0), tri.device, tri.dtype).view(3, 3).t()
    tri = torch.where(covered[:, None, None], tri, unit)
    bary, depth = barycentric_at(tri, px, py, settings.perspective_correct)
    bary = torch.where(covered[:, None], bary, 0.0)
    depth = torch.where(covered, depth, 0.0)
    return Fragments(
        face_idx=face_flat.view(B, height, width),
        bary=bary.view(B, height, width, 3),
        depth=depth.view(B, height, width),
    )


# --------------------------------------------------------------------------------------
def rasterize_reference(
    screen_verts: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    settings: RasterSettings | None = None,
) -> Fragments:
    """Slow, readable twin of :func:`rasterize` (same signature and result), for tests.

    Loops over batch and faces; for each face tests every pixel centre and keeps it where
    it is strictly nearer than the current z-buffer (so on ties the lower face index stays).
    """
    settings = settings or RasterSettings()
    _check_inputs(screen_verts, faces, height, width)
    faces = faces.long()
    B, dev, dt = screen_verts.shape[0], screen_verts.device, screen_verts.dtype
    ys, xs = torch.meshgrid(
        torch.arange(height, device=dev, dtype=dt), torch.arange(width, device=dev, dtype=dt), indexing="ij"
    )
    px, py = xs.reshape(-1), ys.reshape(-1)
    face_out, bary_out, depth_out = [], [], []
    for b in range(B):
        face_idx = torch.full((height * width,), -1, dtype=torch.int64, device=dev)
        zbuf = torch.full((height * width,), float("inf"), dtype=dt, device=dev)
        bary = screen_verts.new_zeros(height * width, 3)
        depth = screen_verts.new_zeros(height * width)
        for f in range(faces.shape[0]):
            tri = screen_verts[b, faces[f]]  # (3,3)
            x, y, z = tri[:, 0], tri[:, 1], tri[:, 2]
            area = (x[1] - x[0]) * (y[2] - y[0]) - (x[2] - x[0]) * (y[1] - y[0])
            if area == 0 or not torch.isfinite(tri).all():
                continue
            if settings.cull_backfaces and area > 0:
                continue
            if settings.z_near is not None and (z < settings.z_near).any():
                continue
            if settings.perspective_correct and (z <= 0).any():
                continue
            b_lin, _ = barycentric_at(tri.expand(px.shape[0], 3, 3), px, py, perspective_correct=False)
            inside = (b_lin >= -settings.edge_tolerance).all(-1)
            if settings.perspective_correct:
                order_key = -(b_lin / z).sum(-1)  # −1/depth, smaller = nearer
            else:
                order_key = (b_lin * z).sum(-1)
            wins = inside & (order_key < zbuf)
            if not wins.any():
                continue
            b_f, d_f = barycentric_at(tri.expand(px.shape[0], 3, 3), px, py, settings.perspective_correct)
            zbuf = torch.where(wins, order_key, zbuf)
            face_idx = torch.where(wins, f, face_idx)
            bary = torch.where(wins[:, None], b_f, bary)
            depth = torch.where(wins, d_f, depth)
        face_out.append(face_idx.view(height, width))
        bary_out.append(bary.view(height, width, 3))
        depth_out.append(depth.view(height, width))
    return Fragments(torch.stack(face_out), torch.stack(bary_out), torch.stack(depth_out))
