"""Evaluation metrics (numpy/scipy): alignment, scan-to-mesh distances, landmark NME, detail.

Units: 3-D quantities in millimetres (model space), 2-D landmarks in pixels. Meshes are
(vertices (V,3), faces (F,3)) pairs or a prebuilt :class:`MeshIndex`.

Distance definitions (recorded here because papers differ):
- **point-to-point**: Euclidean distance from each point to the closest point on the mesh
  *surface*. Candidates are the ``k`` triangles whose centroids are nearest the point (KD-tree),
  and the exact point–triangle distance is taken over them. With ``k`` = 16 on face meshes
  (triangles of a few mm) this is exact for points near the surface.
- **point-to-plane**: ``|(p − v)·n_v|`` with ``v`` the mesh vertex nearest ``p`` and ``n_v``
  its area-weighted unit normal (the ICP convention used by MoFA/Genova et al. on MICC).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from scipy.spatial import cKDTree

__all__ = [
    "MeshIndex", "IcpResult", "similarity_align", "apply_similarity", "icp", "point_to_point",
    "point_to_plane", "summarize", "crop_around", "vertex_error", "landmark_nme", "failure_rate",
    "yaw_binned", "displacement_correlation", "YAW_BINS", "FAILURE_NME",
]

YAW_BINS: tuple[tuple[float, float], ...] = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))
FAILURE_NME = 0.08


# ---------------------------------------------------------------------------------------
# similarity alignment
def similarity_align(
    src: np.ndarray, dst: np.ndarray, with_scale: bool = True, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ s·R·src + t`` (Umeyama 1991), reflections excluded.

    src, dst: (N,3) corresponding points (N ≥ 3, not collinear); weights: optional (N,) ≥ 0.
    Returns (s, R (3,3), t (3,)); ``s`` = 1 when ``with_scale`` is False.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"similarity_align needs two (N,3) arrays with N >= 3, got {src.shape} and {dst.shape}")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if w.shape != (len(src),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be (N,) non-negative with a positive sum")
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    cov = (xd * w[:, None]).T @ xs  # (3,3) Σ w·d·sᵀ
    U, S, Vt = np.linalg.svd(cov)
    D = np.ones(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2] = -1.0
    R = U @ np.diag(D) @ Vt
    var_s = float(w @ (xs**2).sum(1))
    s = float((S * D).sum() / var_s) if with_scale and var_s > 0 else 1.0
    t = mu_d - s * R @ mu_s
    return s, R, t


def apply_similarity(points: np.ndarray, s: float, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``s·R·p + t`` for points (N,3). Returns (N,3) float64."""
    return s * np.asarray(points, np.float64) @ np.asarray(R).T + np.asarray(t)


# ---------------------------------------------------------------------------------------
# meshes
class MeshIndex:
    """A triangle mesh with KD-trees over vertices and triangle centroids (built once).

    vertices (V,3) mm, faces (F,3) int (CCW = outward).
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        self.vertices = np.asarray(vertices, np.float64)
        self.faces = np.asarray(faces, np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"mesh vertices must be (V,3), got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            raise ValueError(f"mesh faces must be a non-empty (F,3) array, got {self.faces.shape}")
        tri = self.vertices[self.faces]  # (F,3,3)
        self.tri = tri
        fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        n = np.zeros_like(self.vertices)
        for c in range(3):
            n += np.stack([np.bincount(self.faces[:, c], fn[:, k], minlength=len(n)) for k in range(3)], -1)
        self.vertex_normals = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
        self.vertex_tree = cKDTree(self.vertices)
        self.centroid_tree = cKDTree(tri.mean(1))

    @classmethod
    def of(cls, mesh: "MeshIndex | tuple[np.ndarray, np.ndarray]") -> "MeshIndex":
        return mesh if isinstance(mesh, MeshIndex) else cls(*mesh)

    def nearest_vertex(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """points (N,3) → (distance (N,), vertex index (N,))."""
        d, i = self.vertex_tree.query(np.asarray(points, np.float64))
        return d, i

    def closest_points(self, points: np.ndarray, k: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Closest surface points among the ``k`` triangles with the nearest centroids.

        points (N,3). Returns (distance (N,), closest point (N,3), face index (N,)).
        """
        p = np.asarray(points, np.float64)
        k = int(min(k, len(self.faces)))
        _, cand = self.centroid_tree.query(p, k=k)
        cand = cand.reshape(len(p), k)
        q = _closest_on_triangles(np.repeat(p, k, axis=0), self.tri[cand.reshape(-1)]).reshape(len(p), k, 3)
        d2 = ((q - p[:, None]) ** 2).sum(-1)
        best = d2.argmin(1)
        rows = np.arange(len(p))
        return np.sqrt(d2[rows, best]), q[rows, best], cand[rows, best]


def _closest_on_segments(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = ((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-30)
    return a + np.clip(t, 0.0, 1.0)[..., None] * ab


def _closest_on_triangles(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Closest point of triangle ``tri[i]`` (M,3,3) to ``p[i]`` (M,3). Returns (M,3).

    Project onto the plane; if the projection is inside, that is it, else the nearest point
    on the three edges.
    """
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    n = np.cross(b - a, c - a)
    nn = (n * n).sum(-1)
    safe = nn > 1e-30
    proj = p - (((p - a) * n).sum(-1) / np.where(safe, nn, 1.0))[:, None] * n
    # barycentric signs via sub-triangle orientations
    inside = safe.copy()
    for u, v in ((a, b), (b, c), (c, a)):
        inside &= (np.cross(v - u, proj - u) * n).sum(-1) >= 0
    edges = np.stack([_closest_on_segments(p, a, b), _closest_on_segments(p, b, c), _closest_on_segments(p, c, a)], 1)
    e_best = ((edges - p[:, None]) ** 2).sum(-1).argmin(1)
    on_edge = edges[np.arange(len(p)), e_best]
    return np.where(inside[:, None], proj, on_edge)


def point_to_point(points: np.ndarray, mesh, k: int = 16) -> np.ndarray:
    """Point-to-surface distance (mm) of each point (N,3) to ``mesh``. Returns (N,)."""
    return MeshIndex.of(mesh).closest_points(points, k)[0]


def point_to_plane(points: np.ndarray, mesh) -> np.ndarray:
    """``|(p − v)·n_v|`` (mm) with v the nearest mesh vertex and n_v its normal. Returns (N,)."""
    m = MeshIndex.of(mesh)
    p = np.asarray(points, np.float64)
    _, idx = m.nearest_vertex(p)
    return np.abs(((p - m.vertices[idx]) * m.vertex_normals[idx]).sum(-1))


def summarize(values: np.ndarray) -> dict[str, float]:
    """{"median", "mean", "std", "rmse", "n"} of the finite values (NaN when none)."""
    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"median": float("nan"), "mean": float("nan"), "std": float("nan"), "rmse": float("nan"), "n": 0}
    return {"median": float(np.median(v)), "mean": float(v.mean()), "std": float(v.std()),
            "rmse": float(np.sqrt((v**2).mean())), "n": int(v.size)}


@dataclass(frozen=True)
class IcpResult:
    """``s·R·src + t`` maps the source points onto the mesh; ``rmse`` (mm) over the inliers of
    the last iteration; ``iterations`` run; ``converged`` when the RMSE change fell below tol."""

    s: float
    R: np.ndarray
    t: np.ndarray
    rmse: float
    iterations: int
    converged: bool

    def apply(self, points: np.ndarray) -> np.ndarray:
        return apply_similarity(points, self.s, self.R, self.t)


def icp(
    src_points: np.ndarray,
    dst_mesh,
    with_scale: bool = True,
    init: tuple[float, np.ndarray, np.ndarray] | None = None,
    iterations: int = 50,
    tol: float = 1e-5,
    reject_factor: float = 3.0,
    surface: bool = True,
) -> IcpResult:
    """Rigid (+ isotropic scale) ICP of points (N,3) onto a mesh.

    ``init`` (s, R, t): the starting similarity, typically ``similarity_align(src_lm, dst_lm)``
    of landmark correspondences (identity when None). Each iteration pairs every transformed
    point with its closest surface point (``surface``; else nearest vertex), drops pairs farther
    than ``reject_factor`` × the median distance (scan parts the mesh lacks: hair, shoulders;
    a fixed trimmed fraction would bias the scale) and re-solves the similarity from the
    original points. Stops when the inlier RMSE changes less than ``tol`` mm.
    """
    m = MeshIndex.of(dst_mesh)
    src = np.asarray(src_points, np.float64)
    if src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"icp needs (N,3) source points with N >= 3, got {src.shape}")
    if not reject_factor >= 1.0:
        raise ValueError(f"reject_factor must be >= 1, got {reject_factor}")
    s, R, t = (1.0, np.eye(3), np.zeros(3)) if init is None else (float(init[0]), np.asarray(init[1]), np.asarray(init[2]))
    prev = np.inf
    rmse = np.inf
    converged = False
    it = 0
    for it in range(1, iterations + 1):
        moved = apply_similarity(src, s, R, t)
        if surface:
            d, target, _ = m.closest_points(moved, k=8)
        else:
            d, vi = m.nearest_vertex(moved)
            target = m.vertices[vi]
        keep = d <= max(reject_factor * float(np.median(d)), 1e-9)
        if keep.sum() < 3:
            keep = np.ones(len(d), bool)
        s, R, t = similarity_align(src[keep], target[keep], with_scale=with_scale)
        rmse = float(np.sqrt((d[keep] ** 2).mean()))
        if abs(prev - rmse) < tol:
            converged = True
            break
        prev = rmse
    return IcpResult(s=s, R=R, t=t, rmse=rmse, iterations=it, converged=converged)


def crop_around(points: np.ndarray, center: np.ndarray, radius_mm: float = 95.0) -> tuple[np.ndarray, np.ndarray]:
    """Points within ``radius_mm`` of ``center`` (3,) (MICC: 95 mm around the nose tip).

    Returns (cropped points (M,3), boolean mask (N,)).
    """
    p = np.asarray(points, np.float64)
    mask = np.linalg.norm(p - np.asarray(center, np.float64).reshape(1, 3), axis=1) <= radius_mm
    return p[mask], mask


def vertex_error(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, with_scale: bool = True
) -> dict[str, float]:
    """Per-vertex error (mm) after similarity-aligning ``pred`` (V,3) to ``gt`` (V,3) on ``mask`` (V,).

    Same topology. Returns :func:`summarize` of the distances plus ``scale`` of the alignment.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"vertex_error needs meshes with the same vertices, got {pred.shape} and {gt.shape}")
    sel = np.ones(len(pred), bool) if mask is None else np.asarray(mask, bool)
    s, R, t = similarity_align(pred[sel], gt[sel], with_scale=with_scale)
    d = np.linalg.norm(apply_similarity(pred[sel], s, R, t) - gt[sel], axis=1)
    return {**summarize(d), "scale": s}


# ---------------------------------------------------------------------------------------
# landmarks
def landmark_nme(
    pred: np.ndarray, gt: np.ndarray, norm: Literal["interocular", "bbox"] = "interocular"
) -> np.ndarray:
    """Normalised mean error per face. pred, gt: (N,68,2) or (68,2) pixels.

    ``interocular``: distance between the outer eye corners 36 and 45 of the ground truth
    (300-W). ``bbox``: sqrt(w·h) of the ground-truth landmarks' bounding box (AFLW2000-3D).
    Returns (N,) fractions (multiply by 100 for %).
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.ndim == 2:
        pred, gt = pred[None], gt[None]
    if pred.shape != gt.shape or pred.shape[1:] != (68, 2):
        raise ValueError(f"landmark_nme needs (N,68,2) arrays of equal shape, got {pred.shape} and {gt.shape}")
    err = np.linalg.norm(pred - gt, axis=-1).mean(-1)
    if norm == "interocular":
        d = np.linalg.norm(gt[:, 36] - gt[:, 45], axis=-1)
    elif norm == "bbox":
        wh = gt.max(1) - gt.min(1)
        d = np.sqrt(wh[:, 0] * wh[:, 1])
    else:
        raise ValueError(f"unknown norm {norm!r}: use 'interocular' or 'bbox'")
    return err / np.maximum(d, 1e-12)


def failure_rate(nme: np.ndarray, threshold: float = FAILURE_NME) -> float:
    """Fraction of faces with NME above ``threshold`` (default 8 %). NaN NMEs count as failures."""
    nme = np.asarray(nme, np.float64).reshape(-1)
    if nme.size == 0:
        return float("nan")
    return float(np.mean(~(nme <= threshold)))


def yaw_binned(
    nme: np.ndarray, yaw_deg: np.ndarray, bins: Sequence[tuple[float, float]] = YAW_BINS
) -> list[dict[str, float]]:
    """Mean NME per |yaw| bin (AFLW2000-3D table: 0–30, 30–60, 60–90°) and their balanced mean.

    Returns rows {"bin": "0-30", "lo", "hi", "n", "mean_nme"}; the last row is "balanced"
    (mean of the non-empty bins' means). A bin includes its upper edge only for the last bin.
    """
    nme = np.asarray(nme, np.float64).reshape(-1)
    yaw = np.abs(np.asarray(yaw_deg, np.float64).reshape(-1))
    rows = []
    for i, (lo, hi) in enumerate(bins):
        last = i == len(bins) - 1
        sel = (yaw >= lo) & ((yaw <= hi) if last else (yaw < hi))
        rows.append({"bin": f"{lo:g}-{hi:g}", "lo": lo, "hi": hi, "n": int(sel.sum()),
                     "mean_nme": float(nme[sel].mean()) if sel.any() else float("nan")})
    means = [r["mean_nme"] for r in rows if r["n"] > 0]
    rows.append({"bin": "balanced", "lo": float(bins[0][0]), "hi": float(bins[-1][1]), "n": int(sum(r["n"] for r in rows)),
                 "mean_nme": float(np.mean(means)) if means else float("nan")})
    return rows


def displacement_correlation(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation of two displacement maps (H,W) over ``mask`` (H,W) (finite texels)."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"displacement maps differ in shape: {pred.shape} vs {gt.shape}; resample one first")
    sel = np.isfinite(pred) & np.isfinite(gt)
    if mask is not None:
        sel &= np.asarray(mask, bool)
    if sel.sum() < 2:
        return float("nan")
    a, b = pred[sel] - pred[sel].mean(), gt[sel] - gt[sel].mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")
