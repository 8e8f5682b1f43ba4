"""Depth-map error against ground-truth depth registered to the photo (``photohead evaluate depth``).

The paper's FRGC2 row ("depth min-max scaled to GT, fixed mask", after Sela et al.
2017 and Tran et al. 2018): the reconstruction's depth is rendered in the photo's pixels, scaled
linearly so its minimum and maximum inside the evaluation mask meet the ground truth's, and the
mean absolute difference there is the error (mm). Min-max scaling hangs on two extreme pixels,
so a least-squares scale + offset (``affine``) error is reported beside it.

Folder layout: :data:`evaluation.readers.DEPTH_LAYOUT`.
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from backend.align import face_mask
from backend.camera import Camera, camera_to_screen, to_camera_space
from backend.errors import PhotoheadError
from backend.export import load_head
from backend.io_utils import atomic_path
from backend.quality import DEFAULT as DEFAULT_QUALITY
from backend.render import rasterize

from . import metrics as M
from .readers import IMAGE_SUFFIXES, EvalDataError, read_pts
from .suites import _config, _default_reconstruct, _progress, given_landmarks, machine_summary
from .synthetic import make_faces

__all__ = ["read_frgc_abs", "height_map", "depth_errors", "run_depth", "write_synthetic_depth_set"]

FRGC_INVALID = -999999.0
MIN_PIXELS = 50  # fewer evaluated pixels than this: the subject fails with a message


def read_frgc_abs(path: str | Path) -> np.ndarray:
    """An FRGC ``.abs`` range file: a header (``<R> rows``, ``<C> columns``, ``pixels (flag X Y
    Z):``) then R·C flags and R·C values each of X, Y and Z (mm, row-major). Returns (R,C,3)
    float64 XYZ, NaN where the flag is 0 or a value is FRGC's invalid marker (−999999)."""
    path = Path(path)
    try:
        with open(path, encoding="ascii", errors="strict") as fh:
            rows, cols = (int(fh.readline().split()[0]) for _ in range(2))
            fh.readline()  # "pixels (flag X Y Z):"
            values = np.array(fh.read().split(), np.float64)
    except (OSError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise EvalDataError(f"{path}: not an FRGC .abs range file ({exc})") from None
    n = rows * cols
    if rows < 1 or cols < 1 or values.size != 4 * n:
        raise EvalDataError(f"{path}: header says {rows}×{cols} pixels (4×{n} values), the file holds {values.size}")
    flag, xyz = values[:n].reshape(rows, cols), values[n:].reshape(3, rows, cols).transpose(1, 2, 0).copy()
    xyz[(flag == 0) | np.any(xyz <= FRGC_INVALID + 0.5, -1)] = np.nan
    return xyz


def height_map(vertices: np.ndarray, faces: np.ndarray, pose: np.ndarray, width: int, height: int,
               projection: str = "orthographic") -> np.ndarray:
    """A mesh's height towards the camera per photo pixel. vertices (V,3) mm model space, faces
    (F,3) counter-clockwise seen from outside, pose (7,) for the photo at full size in
    ``projection`` (:mod:`backend.camera`; perspective: the height is minus the distance along
    the optical axis). Returns (height, width) float64 mm (up to a constant), NaN where the
    mesh does not cover the pixel or shows its inside (through the eye and mouth openings)."""
    pose_t = torch.as_tensor(np.asarray(pose, np.float64))[None]
    faces_t = torch.as_tensor(np.asarray(faces, np.int64))
    cam = to_camera_space(torch.as_tensor(np.asarray(vertices, np.float64))[None], pose_t, projection)[0]
    a, b, c = cam[faces_t[:, 0]], cam[faces_t[:, 1]], cam[faces_t[:, 2]]
    # (F,) outward normal towards the camera (+z; perspective: towards the eye at the origin). Not
    # RasterSettings.cull_backfaces: culling shows what lies behind a back face, whose extreme heights
    # then decide the min-max scaling (one synthetic face: 21 mm error instead of 4.4); a pixel whose
    # nearest face is a back face has no depth.
    normal = torch.linalg.cross(b - a, c - a)
    front = ((normal[:, 2] > 0) if projection == "orthographic" else ((normal * -a).sum(-1) > 0)).numpy()
    frags = rasterize(camera_to_screen(cam[None], pose_t, Camera(width, height, projection)), faces_t, height, width)
    scale = float(pose[0]) if projection == "orthographic" else 1.0  # screen depth px (ortho) or mm
    out = -frags.depth[0].double().numpy() / scale  # screen depth (smaller = nearer) → mm up
    hit = frags.face_idx[0].numpy()
    out[(hit < 0) | ~front[np.maximum(hit, 0)]] = np.nan
    return out


def depth_errors(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """The protocol on one depth pair. pred, truth (H,W) heights in mm (NaN: none); mask (H,W)
    bool (default: wherever ``truth`` has data). Returns ``minmax_mm`` (prediction min-max scaled
    to the truth's range inside the mask, mean absolute error), ``affine_mm`` (least-squares scale
    and offset), ``affine_scale``, ``pixels`` (evaluated) and ``coverage`` (share of the masked
    ground truth the prediction covers). Raises :class:`EvalDataError` under ``MIN_PIXELS``."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if pred.shape != truth.shape:
        raise EvalDataError(f"prediction {pred.shape} and ground-truth depth {truth.shape} differ in size")
    wanted = np.isfinite(truth) & (np.ones(truth.shape, bool) if mask is None else np.asarray(mask, bool))
    used = wanted & np.isfinite(pred)
    if used.sum() < MIN_PIXELS:
        raise EvalDataError(f"only {int(used.sum())} pixels have both a prediction and ground truth inside the mask "
                            f"(need {MIN_PIXELS}): is the depth registered to the photo?")
    p, g = pred[used], truth[used]
    span = max(float(p.max() - p.min()), 1e-12)
    minmax = (p - p.min()) / span * (g.max() - g.min()) + g.min()
    design = np.stack([p, np.ones_like(p)], 1)
    coef = np.linalg.lstsq(design, g, rcond=None)[0]
    return {"minmax_mm": float(np.abs(minmax - g).mean()), "affine_mm": float(np.abs(design @ coef - g).mean()),
            "affine_scale": float(coef[0]), "pixels": int(used.sum()), "coverage": float(used.sum() / wanted.sum())}


def _ground_truth(subject: Path) -> np.ndarray:
    """(H,W) heights in mm from depth.npy or the one *.abs file of a subject folder."""
    if (subject / "depth.npy").is_file():
        depth = np.load(subject / "depth.npy", allow_pickle=False)
        if depth.ndim != 2:
            raise EvalDataError(f"{subject / 'depth.npy'}: expected an (H,W) height map, got shape {depth.shape}")
        return depth.astype(np.float64)
    abs_files = sorted(subject.glob("*.abs"))
    if len(abs_files) != 1:
        raise EvalDataError(f"{subject}: needs depth.npy or exactly one .abs file (found {len(abs_files)} .abs)")
    return read_frgc_abs(abs_files[0])[..., 2]


def _mask(subject: Path, shape: tuple[int, int]) -> np.ndarray | None:
    path = subject / "mask.png"
    if not path.is_file():
        return None

    mask = np.asarray(Image.open(path).convert("L")) > 0
    if mask.shape != shape:
        raise EvalDataError(f"{path}: {mask.shape[::-1]} px, the ground-truth depth is {shape[::-1]}")
    return mask


def _prediction(subject: Path, shape: tuple[int, int], reconstruct: Callable) -> tuple[np.ndarray, str]:
    """The subject's predicted heights (H,W) mm and where they come from: another method's
    pred_depth.npy, a saved head.npz, or the reconstruction of its one photo (with its .pts
    landmarks when present) rendered in the photo's pixels."""
    if (subject / "pred_depth.npy").is_file():
        pred = np.load(subject / "pred_depth.npy", allow_pickle=False).astype(np.float64)
        return pred, "pred_depth.npy"
    if (subject / "head.npz").is_file():
        head, source = load_head(subject / "head.npz"), "head.npz"
    else:
        photos = sorted(str(p) for p in subject.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.name != "mask.png")
        if len(photos) != 1:
            raise EvalDataError(f"{subject}: needs pred_depth.npy, head.npz or exactly one photo (found {len(photos)})")
        pts = Path(photos[0]).with_suffix(".pts")
        with given_landmarks(read_pts(pts)) if pts.is_file() else nullcontext():
            head, source = reconstruct(photos), "reconstruction"
    view = head.views[0]
    width, height = view.image_size
    if (height, width) != shape:
        raise EvalDataError(f"{subject}: the photo is {width}×{height} px, the depth {shape[1]}×{shape[0]}")
    return height_map(head.vertices, head.faces, view.pose, width, height, view.projection), source


def _row(r: dict[str, float]) -> dict[str, float]:
    return {"depth_err_minmax_mm": r["minmax_mm"], "depth_err_affine_mm": r["affine_mm"],
            "affine_scale": r["affine_scale"], "coverage": r["coverage"], "pixels": r["pixels"]}


def run_depth(
    folder: str | Path,
    n: int | None = None,
    quality: str = DEFAULT_QUALITY,
    seed: int = 0,
    reconstruct_fn: Callable | None = None,
    progress: Callable[[float, str], None] | None = None,
    mode: str = "fit",
    checkpoints: str | Path | None = None,
) -> dict[str, Any]:
    """Depth error over the subjects of ``folder`` (layout in the module docstring), in
    :func:`evaluation.report.write_report`'s layout. A subject that fails (no face, no
    data) is listed with its error and left out of the means."""
    folder = Path(folder)
    has_truth = lambda p: (p / "depth.npy").is_file() or any(p.glob("*.abs"))  # noqa: E731
    subjects = sorted(p for p in folder.iterdir() if p.is_dir() and has_truth(p)) if folder.is_dir() else []
    if not subjects:
        raise EvalDataError(f"{folder}: no <subject>/depth.npy or <subject>/*.abs found "
                            "(layout: `photohead evaluate depth --help`)")
    subjects = subjects[: n if n else None]
    recon, config = reconstruct_fn or _default_reconstruct(), _config(quality, seed, True, mode, checkpoints)
    items: list[dict[str, Any]] = []
    for i, subject in enumerate(subjects):
        _progress(progress, i, len(subjects), f"depth {subject.name} ({i + 1}/{len(subjects)})")
        try:
            truth = _ground_truth(subject)
            pred, source = _prediction(subject, truth.shape, lambda photos: recon(photos, config))
            r = depth_errors(pred, truth, _mask(subject, truth.shape))
            items.append({"subject": subject.name, "source": source, **_row(r)})
        except PhotoheadError as exc:
            items.append({"subject": subject.name, "error": str(exc)})
    col = lambda key: np.array([it.get(key, np.nan) for it in items], np.float64)  # noqa: E731
    minmax, affine = M.summarize(col("depth_err_minmax_mm")), M.summarize(col("depth_err_affine_mm"))
    return {
        "suite": "depth",
        "description": "Depth error in the photo's pixels (FRGC2 protocol as the paper reports it: the prediction "
                       "min-max scaled to the ground truth inside a fixed mask, mean absolute error; 'affine': "
                       "least-squares scale and offset instead).",
        "summary": {"subjects": len(subjects), "failed": sum(1 for it in items if "error" in it),
                    "depth_err_minmax_mean_mm": minmax["mean"], "depth_err_minmax_std_mm": minmax["std"],
                    "depth_err_affine_mean_mm": affine["mean"], "depth_err_affine_std_mm": affine["std"],
                    "coverage_mean": float(np.nanmean(col("coverage"))) if np.isfinite(col("coverage")).any() else float("nan")},
        "tables": {"per subject": items},
        "plots": {"depth_error": {"kind": "bar", "labels": [it["subject"] for it in items],
                                  "values": col("depth_err_minmax_mm"), "ylabel": "depth error, min-max scaled (mm)"}},
        "per_item": items,
        "config": {"folder": str(folder), "quality": quality, "seed": seed},
        "machine": machine_summary(),
    }


def write_synthetic_depth_set(model, folder: str | Path, n: int = 3, seed: int = 0) -> list[Path]:
    """Synthetic subjects in :func:`run_depth`'s layout: random faces of ``model`` rendered
    (:func:`evaluation.synthetic.make_faces`) with their true height maps, a fixed mask
    (the landmark face outline, :func:`backend.align.face_mask` with eyes and mouth, on the face
    region the render covers: no silhouette pixels, whose extreme heights would decide the
    min-max scaling) and their true 68 landmarks (jaw on the silhouette, as annotators
    mark it; dlib is out of its domain on these bald renders). Returns the subject folders."""
    folder = Path(folder)
    faces_np = model.faces.cpu().numpy()
    face_vertex = model.face_vertex_mask.cpu().numpy()
    face_tris = faces_np[face_vertex[faces_np].all(1)]
    out = []
    for i, face in enumerate(make_faces(model, n, seed=seed)):
        subject = folder / f"synthetic_{i:03d}"
        subject.mkdir(parents=True, exist_ok=True)
        h, w = face.image.shape[:2]
        Image.fromarray(face.image).save(subject / "photo.png")
        depth = height_map(face.vertices, faces_np, face.pose, w, h)
        with atomic_path(subject / "depth.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, depth.astype(np.float32))
        region = np.isfinite(height_map(face.vertices, face_tris, face.pose, w, h))
        region &= face_mask(face.contour68, h, w, exclude_eyes=False, exclude_mouth=False) > 0.5
        Image.fromarray((region * 255).astype(np.uint8)).save(subject / "mask.png")
        lines = ["version: 1", "n_points: 68", "{", *(f"{x + 1:.3f} {y + 1:.3f}" for x, y in face.contour68), "}"]
        (subject / "photo.pts").write_text("\n".join(lines) + "\n")
        out.append(subject)
    return out
