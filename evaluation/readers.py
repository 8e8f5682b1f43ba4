"""Readers for evaluation data: 68-point ``.pts`` and JSON landmark files, OBJ scans; the sample of
photos a suite scores (:func:`pick_paths`).

Landmarks come back as (68,2) float64 pixels, 0-based pixel centres (x right, y down).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from backend.errors import PhotoheadError

__all__ = ["EvalDataError", "LandmarkFormatError", "read_pts", "read_landmarks_json", "read_obj_mesh", "find_landmark_sets",
           "pick_paths", "DEPTH_LAYOUT"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# The folder layout of ``photohead evaluate depth`` (evaluation.depth.run_depth).
DEPTH_LAYOUT = """    DIR/<subject>/<photo>.jpg|png   one photo
    DIR/<subject>/depth.npy         (H,W) float: height towards the camera in mm, on the photo's
                                    pixel grid (NaN: no data); or instead
    DIR/<subject>/*.abs             an FRGC range file (flag + X/Y/Z in mm per pixel; Z grows
                                    towards the scanner) on the photo's pixel grid
    DIR/<subject>/mask.png          optional fixed evaluation mask (non-zero = evaluated; default:
                                    every pixel with ground truth)
    DIR/<subject>/<photo>.pts       optional 68 landmarks (300-W .pts, 1-based) given to the fit
                                    instead of the detector
    DIR/<subject>/head.npz          optional saved prediction (else the photo is reconstructed)
    DIR/<subject>/pred_depth.npy    optional: another method's (H,W) predicted heights, scored as
                                    they are (no photo or head needed)
"""


class EvalDataError(PhotoheadError):
    """Evaluation data is missing or unusable (folder layout, units)."""


class LandmarkFormatError(EvalDataError, ValueError):
    """A landmark or scan file is malformed."""


def read_pts(path: str | Path, one_based: bool = True) -> np.ndarray:
    """Read a 300-W/iBUG ``.pts`` file. Returns (N,2) float64, 0-based pixels.

    Accepts the standard header (``version: 1`` / ``n_points: 68`` / ``{`` ... ``}``) and
    header-less files of plain ``x y`` lines. 300-W coordinates are 1-based (Matlab), so 1 is
    subtracted unless ``one_based`` is False.
    """
    path = Path(path)
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    n_points = None
    rows = []
    for ln in lines:
        low = ln.lower()
        if low.startswith("version"):
            continue
        if low.startswith("n_points"):
            try:
                n_points = int(ln.split(":", 1)[1])
            except (IndexError, ValueError) as exc:
                raise LandmarkFormatError(f"{path}: bad n_points line {ln!r}") from exc
            continue
        if ln in ("{", "}"):
            continue
        parts = ln.replace(",", " ").split()
        try:
            rows.append([float(parts[0]), float(parts[1])])
        except (IndexError, ValueError) as exc:
            raise LandmarkFormatError(f"{path}: cannot read a point from {ln!r} (expected 'x y')") from exc
    pts = np.asarray(rows, np.float64).reshape(-1, 2)
    if n_points is not None and len(pts) != n_points:
        raise LandmarkFormatError(f"{path}: header says {n_points} points but {len(pts)} were found")
    return pts - 1.0 if one_based else pts


def _as_points(value, where: str) -> np.ndarray:
    pts = np.asarray(value, np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise LandmarkFormatError(f"{where}: landmarks must be a list of [x, y] pairs, got shape {pts.shape}")
    return pts[:, :2]


def read_landmarks_json(path: str | Path) -> dict[str, np.ndarray]:
    """Read landmark sets from JSON. Returns {image file name: (N,2) 0-based pixels}.

    Accepted layouts: the faces_dev file ``{"images": {name: {"landmarks": [[x,y],...]}}}``;
    a mapping ``{name: [[x,y],...]}`` or ``{name: {"landmarks": ...}}``; a single face
    ``{"landmarks": [[x,y],...]}`` (keyed by the JSON file's stem). Coordinates are taken as
    0-based unless the file says ``"one_based": true``.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LandmarkFormatError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise LandmarkFormatError(f"{path}: expected a JSON object with landmark sets")
    shift = 1.0 if doc.get("one_based") else 0.0
    if "landmarks" in doc:
        return {path.stem: _as_points(doc["landmarks"], str(path)) - shift}
    entries = doc.get("images", doc)
    out = {}
    for name, value in entries.items():
        if isinstance(value, dict):
            if "landmarks" not in value:
                continue
            value = value["landmarks"]
        elif not isinstance(value, list):
            continue  # metadata (set name, counts, conventions)
        out[name] = _as_points(value, f"{path}[{name}]") - shift
    if not out:
        raise LandmarkFormatError(f"{path}: no landmark sets found (expected 'images' or name → [[x, y], ...])")
    return out


def find_landmark_sets(folder: str | Path) -> dict[Path, np.ndarray]:
    """Image → ground-truth landmarks for a folder: ``landmarks.json`` (any layout above,
    names relative to the folder or its ``images/``) or per-image ``.pts``/``.json`` files
    beside the images. Returns {image path: (68,2) pixels}, sorted by name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalDataError(f"{folder}: no such folder of annotated photos")
    found: dict[Path, np.ndarray] = {}
    index = folder / "landmarks.json"
    if index.is_file():
        for name, pts in read_landmarks_json(index).items():
            for cand in (folder / name, folder / "images" / name):
                if cand.is_file():
                    found[cand] = pts
                    break
    else:
        for img in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            if img.with_suffix(".pts").is_file():
                found[img] = read_pts(img.with_suffix(".pts"))
            elif img.with_suffix(".json").is_file():
                found[img] = next(iter(read_landmarks_json(img.with_suffix(".json")).values()))
    if not found:
        raise EvalDataError(
            f"{folder}: no annotated photos found; put a landmarks.json there, or a .pts/.json next to each image"
        )
    return dict(sorted(found.items()))


def read_obj_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Positions and triangles of an OBJ (polygons fan-triangulated; UVs/normals ignored).

    Returns (vertices (V,3) float64 in the file's units, faces (F,3) int64 0-based).
    A file with no faces gives faces of shape (0,3) (a point cloud).
    """
    path = Path(path)
    verts: list[list[float]] = []
    faces: list[list[int]] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("v "):
                verts.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("f "):
                idx = [int(c.split("/")[0]) for c in line.split()[1:]]
                idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
                faces.extend([idx[0], idx[j], idx[j + 1]] for j in range(1, len(idx) - 1))
    if not verts:
        raise LandmarkFormatError(f"{path}: no vertices ('v x y z' lines) found")
    return np.asarray(verts, np.float64), np.asarray(faces, np.int64).reshape(-1, 3)


def pick_paths(paths: list[Path], n: int | None, sample: str, seed: int) -> list[Path]:
    """``n`` of ``paths`` (all when ``n`` is None or not smaller): the first ``n`` (``sample``
    ``"first"``) or a seeded random sample kept in their order (``"random"``)."""
    if sample not in ("first", "random"):
        raise ValueError(f"unknown sample {sample!r}: use 'first' or 'random'")
    if not n or n >= len(paths):
        return paths
    if sample == "first":
        return paths[:n]
    idx = np.sort(np.random.default_rng(seed).choice(len(paths), n, replace=False))
    return [paths[i] for i in idx]
