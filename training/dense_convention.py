"""Calibrate where Face Mesh's 468 points lie on the face model (backend.facemodel.dense_points).

    python -m training.dense_convention FOLDER [--n 300] [--seed 123] [--out backend/facemodel/ict_dense468.json]

FOLDER holds photos with 68-point annotations (``evaluation.readers.find_landmark_sets``);
the 100 photos of the landmark suite (``photohead evaluate landmarks --n 100 --sample random
--seed 0``) are always left out. Per photo:

1. the face model is fitted to the *annotated* 68 points (landmark stage of the coarse fit,
   sliding jaw contour, 224² crop, orthographic) — an accurate head without any detector;
2. MediaPipe Face Mesh runs on the photo (:func:`backend.detect.detect`, ``mediapipe``); its
   468 points (x, y px, z relative depth) go into the crop frame;
3. Face Mesh's depth is matched to the fitted surface (z_surface ≈ a·z_mesh + b, fitted on the
   points whose pixel ray hits a front-facing triangle), then each point is located at the
   closest point of the fitted face region in 3-D, depth counted at half weight;
4. that surface point is carried to the mean shape (same triangle, same barycentrics).

Per Face Mesh point, the median over the photos where its triangle faces the camera (normal
z > 0.3; all photos if none) gives its mean-shape position. Points are paired with their mirror
(x → −x) by an optimal assignment, each pair averaged with its mirror image (midline points get
x = 0) and snapped to the mean shape's face surface (triangle + barycentrics). Writes the table
as JSON and prints the spread of the per-photo positions.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from backend.camera import Camera, project
from backend.detect import detect
from backend.errors import PhotoheadError
from backend.facemodel.dense_points import N_MESH_POINTS
from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.image_io import load_image
from backend.io_utils import atomic_write_text
from backend.prepare import prepare_view
from backend.reconstruct import load_face_model
from backend.render import rasterize
from evaluation.metrics import MeshIndex
from evaluation.readers import find_landmark_sets, pick_paths

DEPTH_WEIGHT = 0.5  # Face Mesh's depth counts at half weight in the 3-D closest point
FACING = 0.3  # a point's triangle faces the camera: normal z above this


def barycentric(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Barycentric weights (N,3) of points (N,3) on (the plane of) triangles tri (N,3,3), clipped ≥ 0, sum 1."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00, d01, d11 = (v0 * v0).sum(-1), (v0 * v1).sum(-1), (v1 * v1).sum(-1)
    d20, d21 = (v2 * v0).sum(-1), (v2 * v1).sum(-1)
    den = np.maximum(d00 * d11 - d01 * d01, 1e-30)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    bary = np.clip(np.stack([1 - v - w, v, w], -1), 0.0, None)
    return bary / np.maximum(bary.sum(-1, keepdims=True), 1e-30)


def locate_on_fit(screen: np.ndarray, faces: np.ndarray, face_tri: np.ndarray, mesh_pts: np.ndarray,
                  size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face Mesh points on one fitted head. screen (N,3) the fitted vertices in crop px (z depth,
    larger = farther); faces (F,3); face_tri (F,) bool the triangles allowed; mesh_pts (P,3) crop
    px (z relative). Returns (triangle (P,), barycentrics (P,3), facing (P,) normal z of the triangle)."""
    frags = rasterize(torch.from_numpy(screen)[None].float(), torch.from_numpy(faces), size, size)
    fid = frags.face_idx[0].numpy()
    px = np.clip(np.rint(mesh_pts[:, :2]).astype(int), 0, size - 1)
    hit = fid[px[:, 1], px[:, 0]]
    tri_xyz = screen[faces]  # (F,3,3)
    n = np.cross(tri_xyz[:, 1] - tri_xyz[:, 0], tri_xyz[:, 2] - tri_xyz[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    facing_all = -n[:, 2]  # screen z grows away from the camera; CCW outward normals point to −z when visible
    ok = (hit >= 0) & face_tri[np.maximum(hit, 0)] & (facing_all[np.maximum(hit, 0)] > 0.7)
    z_surf = np.zeros(len(mesh_pts))
    if ok.sum() >= 20:
        b = barycentric(np.concatenate([mesh_pts[ok, :2], np.zeros((ok.sum(), 1))], 1),
                        np.concatenate([tri_xyz[hit[ok], :, :2], np.zeros((ok.sum(), 3, 1))], -1))
        z_surf = (b * tri_xyz[hit[ok], :, 2]).sum(-1)
        A = np.stack([mesh_pts[ok, 2], np.ones(ok.sum())], 1)
        a, c = np.linalg.lstsq(A, z_surf, rcond=None)[0]
        a = float(np.clip(a, 0.5, 2.0))
        c = float(np.median(z_surf - a * mesh_pts[ok, 2]))
    else:  # too few hits to match depths: centre Face Mesh's depth on the surface's
        a, c = 1.0, float(np.median(screen[:, 2]) - np.median(mesh_pts[:, 2]))
    query = np.concatenate([mesh_pts[:, :2], (a * mesh_pts[:, 2:3] + c)], 1)
    scale = np.array([1.0, 1.0, DEPTH_WEIGHT])
    index = MeshIndex(screen * scale, faces[face_tri])
    _, closest, tri_local = index.closest_points(query * scale, k=24)
    tri = np.flatnonzero(face_tri)[tri_local]
    bary = barycentric(closest / scale, tri_xyz[tri])
    return tri, bary, facing_all[tri]


def mirror_pairs(positions: np.ndarray) -> np.ndarray:
    """(P,) the mirror partner of each point (x → −x; itself on the midline), an optimal one-to-one
    assignment made symmetric. positions (P,3) mm model space."""
    flipped = positions * np.array([-1.0, 1.0, 1.0])
    cost = np.linalg.norm(positions[:, None] - flipped[None], axis=-1)
    _, partner = linear_sum_assignment(cost)
    for i in range(len(partner)):  # an involution: where the assignment is not one, keep i's side
        if partner[partner[i]] != i:
            partner[i] = i
    return partner


def symmetric_table(model, positions: np.ndarray) -> dict:
    """Mirror-symmetric mean-shape points snapped to the face surface: the table's JSON document.
    positions (P,3) mm on (near) the mean shape."""
    partner = mirror_pairs(positions)
    flip = np.array([-1.0, 1.0, 1.0])
    sym = 0.5 * (positions + positions[partner] * flip)
    sym[partner == np.arange(len(partner)), 0] = 0.0
    mean = model.mean.detach().cpu().double().numpy()
    faces = model.faces.cpu().numpy()
    face_tri = model.face_vertex_mask.cpu().numpy()[faces].all(-1)
    _, closest, tri_local = MeshIndex(mean, faces[face_tri]).closest_points(sym, k=24)
    tri = np.flatnonzero(face_tri)[tri_local]
    bary = barycentric(closest, mean[faces[tri]])
    return {"model": model.name, "n_vertices": int(model.n_verts), "vertices": faces[tri].tolist(),
            "weights": np.round(bary, 5).tolist(), "mirror": partner.tolist()}


def photo_positions(model, path: Path, truth: np.ndarray, cfg: CoarseFitConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """One photo's Face Mesh points carried to the mean shape: (positions (P,3) mm, facing (P,)),
    or None when Face Mesh finds no face at the annotated one."""
    rgb = load_image(path)
    faces = [f for f in detect(rgb, backend="mediapipe") if f.dense is not None]
    centre = truth.mean(0)
    faces = [f for f in faces if np.linalg.norm(f.landmarks.mean(0) - centre) < 0.3 * np.ptp(truth, 0).max()]
    if not faces:
        return None
    view = prepare_view(rgb, landmarks68=truth)
    S = view.crop.shape[0]
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32))[None]  # noqa: E731
    fit = fit_coarse(model, t(view.crop), t(view.crop_landmarks), t(view.skin_mask), cfg)
    screen = project(fit.verts, fit.pose, Camera(S, S))[0].double().numpy()
    A = view.crop_from_image
    dense = faces[0].dense
    pts = np.concatenate([dense[:, :2] @ A[:, :2].T + A[:, 2], dense[:, 2:3] * np.sqrt(abs(np.linalg.det(A[:, :2])))], 1)
    fm = model.faces.cpu().numpy()
    face_tri = model.face_vertex_mask.cpu().numpy()[fm].all(-1)
    tri, bary, facing = locate_on_fit(screen, fm, face_tri, pts, S)
    mean = model.mean.detach().cpu().double().numpy()
    return (bary[..., None] * mean[fm[tri]]).sum(1), facing


def calibrate(model, sets: dict[Path, np.ndarray], n: int, seed: int, progress=print) -> tuple[dict, dict]:
    """The table (:func:`symmetric_table`) from ``n`` annotated photos outside the landmark suite,
    and a summary of the per-photo spread."""
    paths = list(sets)
    held_out = set(pick_paths(paths, 100, "random", 0))
    paths = [p for p in paths if p not in held_out]
    paths = pick_paths(paths, n, "random", seed)
    cfg = CoarseFitConfig(photo_schedule=(), identity=False)
    pos, facing = [], []
    for i, path in enumerate(paths):
        got = photo_positions(model, path, np.asarray(sets[path], np.float64), cfg)
        if got is None:
            progress(f"[{i + 1}/{len(paths)}] {path.name}: no Face Mesh face, skipped")
            continue
        pos.append(got[0])
        facing.append(got[1])
        if (i + 1) % 20 == 0:
            progress(f"[{i + 1}/{len(paths)}] {path.name}")
    if len(pos) < 10:
        raise PhotoheadError(f"only {len(pos)} of {len(paths)} photos gave Face Mesh points: too few to calibrate")
    P, Fc = np.stack(pos), np.stack(facing)  # (photos,468,3), (photos,468)
    use = Fc > FACING
    use[:, use.sum(0) == 0] = True
    med = np.stack([np.median(P[use[:, j], j], 0) for j in range(N_MESH_POINTS)])
    spread = np.array([np.median(np.linalg.norm(P[use[:, j], j] - med[j], axis=-1)) for j in range(N_MESH_POINTS)])
    table = symmetric_table(model, med)
    summary = {"photos": len(pos), "photos_per_point_median": float(np.median(use.sum(0))),
               "spread_mm_median": float(np.median(spread)), "spread_mm_p90": float(np.percentile(spread, 90)),
               "midline_points": int((np.asarray(table["mirror"]) == np.arange(N_MESH_POINTS)).sum())}
    return table, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--out", default="ict_dense468.json")
    ap.add_argument("--model", help="face model file (default: the search path's default head)")
    args = ap.parse_args(argv)
    try:
        sets = find_landmark_sets(args.folder)
        model = load_face_model(args.model)
        table, summary = calibrate(model, sets, args.n, args.seed)
    except PhotoheadError as exc:
        print(exc, file=sys.stderr)
        return 2
    table["calibration"] = {"photos": summary["photos"], "seed": args.seed, "command": "python -m training.dense_convention"}
    atomic_write_text(args.out, json.dumps(table, separators=(",", ":")) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
