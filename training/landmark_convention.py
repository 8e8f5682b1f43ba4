"""Re-calibrate which mesh vertex stands for each 2-D landmark (backend.facemodel.landmarks).

    python -m training.landmark_convention FOLDER [--n 120] [--seed 123] [--exclude-suite] [--out table.json]
                                                  [--model FILE] [--landmarks68 FILE.landmarks68.json]

FOLDER holds photos with 68-point annotations (``evaluation.readers.find_landmark_sets``).
Each photo is fitted (default quality, coarse only); then, per landmark, the vertex near the
current one is chosen whose projection through every photo's fitted mesh lands nearest the
annotation on average (distances in inter-ocular units). Left/right pairs are chosen together
(mirror vertices), midline points stay on the midline; jaw points (0–16) choose the anchor of
their silhouette row (:func:`backend.fit.contour.contour_candidates`) by where that row's
silhouette vertex lands. A landmark changes only when it gains more than ``min_gain``. It is a
one-step estimate on meshes fitted with the current choice: run it again to refine.
``--exclude-suite`` leaves out the 100 photos the landmark suite scores (``photohead evaluate
landmarks --n 100 --sample random --seed 0``), so the suite stays a held-out check.
Prints the changes as ``{landmark: (current vertex, new vertex)}`` and writes them as JSON.

``--model``: calibrate that model file (BFM, FLAME, an OBJ folder...) instead of the default
head. ``--landmarks68``: also write the whole list (the model's 68 vertices with the changes
applied) as a side file; saved beside the model as ``<model>.landmarks68.json`` it replaces the
model's own list when the model loads (:func:`backend.facemodel.common.landmark_override_file`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from backend.align import MIRROR_68
from backend.camera import Camera, project
from backend.errors import PhotoheadError
from backend.fit.contour import contour_row
from backend.io_utils import atomic_write_text
from backend.reconstruct import ReconstructConfig, load_face_model, reconstruct
from evaluation.readers import find_landmark_sets, pick_paths

CHIN = 8
MIN_PHOTOS = 30  # below this the tool warns: a landmark's mean offset is not yet above its noise


def choose_landmark_vertices(
    model, projected: np.ndarray, annotated: np.ndarray, radius_mm: float = 9.0, jaw_radius_mm: float = 20.0,
    min_gain: float = 0.001,
) -> dict[int, tuple[int, int]]:
    """Landmark vertices that best match annotations, as {landmark: (current vertex, new vertex)}.

    model: a :class:`~backend.facemodel.FaceModel` (its mean shape, current ``landmarks68`` and
    face region); projected (P,V,2): every vertex of each photo's fitted mesh in that photo, and
    annotated (P,68,2), both divided by the photo's inter-ocular distance; ``min_gain`` in the same
    units (per landmark).
    """
    mean = model.mean.cpu().double().numpy()
    current = model.landmarks68.cpu().numpy()
    face = model.face_vertex_mask.cpu().numpy()
    mirror_dist, mirror_vertex = cKDTree(mean).query(mean * [-1.0, 1.0, 1.0])
    paired = mirror_dist < 1.0  # vertices with a mirror partner within 1 mm

    def inner_cost(vertices: np.ndarray, k: int) -> np.ndarray:  # (C,) mean distance over photos
        return np.linalg.norm(projected[:, vertices] - annotated[:, k, None], axis=-1).mean(0)

    mean_t, face_t = model.mean.cpu(), model.face_vertex_mask.cpu()

    def jaw_cost(anchor: int, j: int) -> float:  # where the silhouette of the row anchored there lands
        row = contour_row(mean_t, int(anchor), face_t).numpy()
        x = projected[:, row, 0]
        pick = row[np.argmin(x, 1) if j < CHIN else np.argmax(x, 1)]
        return float(np.linalg.norm(projected[np.arange(len(pick)), pick] - annotated[:, j], axis=-1).mean())

    changes: dict[int, tuple[int, int]] = {}
    for k in range(68):  # a loop over landmarks (each scores its candidates in one batch)
        m = MIRROR_68[k]
        if m < k or k == CHIN:
            continue
        jaw = k < 17
        ok = (np.linalg.norm(mean - mean[current[k]], axis=1) < (jaw_radius_mm if jaw else radius_mm)) & paired & face
        if jaw:  # the row stays on its side of the face
            ok &= np.sign(mean[:, 0]) == np.sign(mean[current[k], 0])
        if m == k:  # midline points stay on the midline
            ok &= np.abs(mean[:, 0]) < 1.0
        cand = np.flatnonzero(ok)
        if len(cand) == 0:
            continue
        if jaw:
            costs = np.array([jaw_cost(c, k) + jaw_cost(mirror_vertex[c], m) for c in cand])
            now = jaw_cost(current[k], k) + jaw_cost(current[m], m)
        else:
            costs = inner_cost(cand, k) + (inner_cost(mirror_vertex[cand], m) if m != k else 0.0)
            now = float(inner_cost(current[[k]], k)[0] + (inner_cost(current[[m]], m)[0] if m != k else 0.0))
        best = int(np.argmin(costs))
        if now - costs[best] > min_gain * (1 if m == k else 2):
            changes[k] = (int(current[k]), int(cand[best]))
            if m != k:
                changes[m] = (int(current[m]), int(mirror_vertex[cand[best]]))
    return dict(sorted(changes.items()))


def fitted_projections(paths: list[Path], annotations: dict[Path, np.ndarray], progress=print,
                       model: str | None = None):
    """Fit each photo (default quality, coarse only; ``model``: a face model file, default the
    search path's) and return (projected (P,V,2), annotated
    (P,68,2)) in inter-ocular units (outer eye corners of the annotation); photos without a face
    are skipped."""
    projected, annotated = [], []
    for i, path in enumerate(paths):
        try:
            head = reconstruct([str(path)], ReconstructConfig(detail=False, model=model))
        except PhotoheadError as exc:
            progress(f"{path.name}: skipped ({exc})")
            continue
        view = head.views[0]
        width, height = view.image_size
        xy = project(torch.from_numpy(head.vertices)[None].double(), torch.from_numpy(np.asarray(view.pose, np.float64))[None],
                     Camera(width, height, view.projection))[0, :, :2].numpy()
        gt = np.asarray(annotations[path], np.float64)
        io = max(float(np.linalg.norm(gt[36] - gt[45])), 1e-9)
        projected.append(xy / io)
        annotated.append(gt / io)
        progress(f"[{i + 1}/{len(paths)}] {path.name}")
    if not projected:
        raise PhotoheadError(f"no face found in any of the {len(paths)} photos: nothing to calibrate on")
    return np.stack(projected), np.stack(annotated)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--exclude-suite", action="store_true")
    ap.add_argument("--out", default="landmark_convention.json")
    ap.add_argument("--model", help="face model file to calibrate (default: the search path's default head)")
    ap.add_argument("--landmarks68", help="also write the model's whole re-assigned list here (a side file)")
    args = ap.parse_args(argv)
    try:
        sets = find_landmark_sets(args.folder)
        face_model = load_face_model(args.model)
        changes = _calibrate(sets, args.n, args.seed, args.exclude_suite, face_model, args.model)
    except PhotoheadError as exc:
        print(exc, file=sys.stderr)
        return 2
    atomic_write_text(args.out, json.dumps({str(k): list(v) for k, v in changes.items()}, indent=1))
    print(f"{len(changes)} landmarks change: {changes}")
    if args.landmarks68:
        atomic_write_text(args.landmarks68, landmark_side_file(face_model, changes))
        print(f"wrote {args.landmarks68}: save it beside the model as <model>.landmarks68.json to use it")
    return 0


def landmark_side_file(face_model, changes: dict[int, tuple[int, int]]) -> str:
    """The model's 68 landmark vertices with ``changes`` applied, as the JSON side file that
    :func:`backend.facemodel.common.read_landmarks_file` reads."""
    ids = face_model.landmarks68.numpy().astype(np.int64).copy()
    for k, (old, new) in changes.items():
        if int(ids[k]) != old:
            raise ValueError(f"landmark {k}: the change starts from vertex {old}, the model has {int(ids[k])}")
        ids[k] = new
    return json.dumps({"model": face_model.name, "landmarks68": ids.tolist(),
                       "changes": {str(k): list(v) for k, v in changes.items()}}, indent=1)


def _calibrate(sets: dict[Path, np.ndarray], n: int, seed: int, exclude_suite: bool, face_model,
               model_path: str | None = None) -> dict[int, tuple[int, int]]:
    """Sample ``n`` annotated photos (``seed``; without the landmark suite's 100 when
    ``exclude_suite``), fit them with ``face_model`` (loaded from ``model_path``) and choose its
    landmark vertices."""
    paths = list(sets)
    if exclude_suite:
        held_out = set(pick_paths(paths, 100, "random", 0))
        paths = [p for p in paths if p not in held_out]
    if n < len(paths):
        paths = [paths[i] for i in np.sort(np.random.default_rng(seed).choice(len(paths), n, replace=False))]
    projected, annotated = fitted_projections(paths, sets, model=model_path)
    print(f"{len(projected)} photos fitted")
    if len(projected) < MIN_PHOTOS:
        print(f"warning: only {len(projected)} photos: per-landmark choices this noisy are unreliable "
              f"(the ICT table used 120)", file=sys.stderr)
    return choose_landmark_vertices(face_model, projected, annotated)


if __name__ == "__main__":
    raise SystemExit(main())
