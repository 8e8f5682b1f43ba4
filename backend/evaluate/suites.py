"""Evaluation suites behind ``photohead evaluate``: synthetic, landmarks, scans, timing.

Each ``run_*`` returns a results dict in :func:`~backend.evaluate.report.write_report`'s
layout (``suite``, ``summary``, ``tables``, ``plots``, ``per_item``, ``config``, ``machine``).
The reconstruction is injectable (``reconstruct_fn(images, config) -> Head``, default
:func:`backend.reconstruct.reconstruct`) so the harness is tested without the real fit.

Scans folder layout (``run_scans``)::

    DIR/<subject>/scan.obj        ground-truth scan, mm (a mesh; its vertices are the samples)
    DIR/<subject>/scan.json       optional {"nose_tip": [x,y,z], "landmarks68": [[x,y,z] × 68]}
                                  in scan coordinates (landmarks initialise the alignment)
    DIR/<subject>/head.npz        a prediction (backend.export.save_head), or else
    DIR/<subject>/*.jpg|png       photos, reconstructed together as one head

Protocol (MICC, as in the paper): crop the scan to ``radius_mm`` (95) around the nose tip,
initialise a similarity from landmark correspondences (scan landmarks ↔ the predicted mesh's
landmark vertices; else nose tip ↔ nose tip), refine with ICP (isotropic scale by default) of
the cropped scan points onto the predicted mesh, then report point-to-point and
point-to-plane distances of the aligned scan points (mm, see :mod:`.metrics`).
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import PhotoheadError
from ..head import Head
from . import metrics as M
from .readers import IMAGE_SUFFIXES, EvalDataError, find_landmark_sets, read_obj_mesh

__all__ = ["ReconstructFn", "run_synthetic", "run_landmarks", "run_scans", "run_timing", "machine_summary", "evaluate_scan",
           "NOSE_TIP_LANDMARK"]

ReconstructFn = Callable[[Sequence[Any], Any], Head]
NOSE_TIP_LANDMARK = 30  # iBUG 68: tip of the nose


def _default_reconstruct() -> ReconstructFn:
    from ..reconstruct import reconstruct

    return lambda images, config: reconstruct(images, config)


def _config(quality: str, seed: int, detail: bool):
    from ..reconstruct import ReconstructConfig

    return ReconstructConfig(quality=quality, seed=seed, detail=detail)


def machine_summary() -> dict[str, Any]:
    """Where an evaluation ran: platform, Python, CPU count, torch build and device."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["torch"] = None
    return info


MAX_PANELS = 6


def _overlay(image, truth68: np.ndarray | None, fitted68: np.ndarray | None) -> np.ndarray:
    """Photo with ground-truth (green) and fitted (red) landmarks, 256 px high."""
    from ..preview import draw_landmarks, resize_to_height, to_uint8_rgb

    img = to_uint8_rgb(image)
    scale = 256.0 / img.shape[0]
    img = resize_to_height(img, 256)
    for pts, color in ((truth68, (64, 255, 64)), (fitted68, (255, 64, 64))):
        if pts is not None:
            img = draw_landmarks(img, (np.asarray(pts) + 0.5) * scale - 0.5, color, 2)
    return img


def _examples(panels: list[np.ndarray]) -> dict[str, np.ndarray]:
    from ..preview import compose_panels

    return {"examples": compose_panels(panels)} if panels else {}


def _progress(progress: Callable[[float, str], None] | None, i: int, n: int, msg: str) -> None:
    if progress is not None:
        progress(i / max(n, 1), msg)


# ---------------------------------------------------------------------------------------
def run_synthetic(
    n: int = 10,
    quality: str = "default",
    seed: int = 0,
    detail: bool = False,
    model=None,
    settings=None,
    reconstruct_fn: ReconstructFn | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Reconstruct ``n`` synthetic faces (:mod:`.synthetic`) and compare with their ground truth.

    Per face: face-region vertex error after similarity alignment (mm, ``Head.vertices`` vs the
    true shape; ``Head.neutral`` vs the true identity-only shape), landmark NME (inter-ocular;
    fitted model landmarks vs the true landmark vertices' projections, and vs the true
    silhouette jaw contour), yaw error (degrees) and, with ``detail``, the Pearson correlation
    of the displacement maps.
    """
    from dataclasses import replace

    from ..facemodel import load_default
    from .synthetic import SyntheticSettings, make_faces

    model = model if model is not None else load_default()
    settings = settings or SyntheticSettings()
    if detail and not settings.detail:
        settings = replace(settings, detail=True)
    recon = reconstruct_fn or _default_reconstruct()
    config = _config(quality, seed, detail)
    faces = make_faces(model, n, seed=seed, settings=settings)
    mask = model.face_vertex_mask.numpy()
    items = []
    panels: list[np.ndarray] = []
    for i, face in enumerate(faces):
        _progress(progress, i, n, f"synthetic face {i + 1}/{n}")
        t0 = time.perf_counter()
        try:
            head = recon([face.image], config)
        except PhotoheadError as exc:
            items.append({"index": i, "yaw_deg": face.yaw_deg, "error": str(exc)})
            continue
        dt = time.perf_counter() - t0
        view = head.views[0]
        if len(panels) < MAX_PANELS:
            panels.append(_overlay(face.image, face.landmarks68, view.landmarks68))
        verr = M.vertex_error(head.vertices, face.vertices, mask)
        nme = float(M.landmark_nme(view.landmarks68, face.landmarks68)[0])
        nme_contour = float(M.landmark_nme(view.landmarks68, face.contour68)[0])
        nerr = M.vertex_error(head.neutral, face.neutral, mask)
        item = {"index": i, "yaw_deg": face.yaw_deg, "vertex_err_mean_mm": verr["mean"],
                "vertex_err_median_mm": verr["median"], "neutral_err_mean_mm": nerr["mean"], "nme": nme,
                "nme_contour": nme_contour,
                "yaw_err_deg": abs(math.degrees(float(view.pose[2])) - face.yaw_deg), "seconds": dt}
        if detail and head.displacement is not None and face.displacement is not None:
            from scipy.ndimage import zoom

            pred = np.asarray(head.displacement, np.float64)
            gt = zoom(face.displacement, (pred.shape[0] / face.displacement.shape[0],
                                          pred.shape[1] / face.displacement.shape[1]), order=1)
            item["disp_corr"] = M.displacement_correlation(pred, gt[: pred.shape[0], : pred.shape[1]],
                                                           np.abs(gt[: pred.shape[0], : pred.shape[1]]) > 1e-6)
        items.append(item)
    ok = [it for it in items if "error" not in it]
    col = lambda key: np.array([it.get(key, np.nan) for it in ok], np.float64)  # noqa: E731
    summary = {
        "faces": n, "reconstructed": len(ok),
        "vertex_err_mean_mm": M.summarize(col("vertex_err_mean_mm"))["mean"],
        "vertex_err_median_mm": M.summarize(col("vertex_err_median_mm"))["median"],
        "neutral_err_mean_mm": M.summarize(col("neutral_err_mean_mm"))["mean"],
        "nme_interocular_mean_%": 100 * M.summarize(col("nme"))["mean"],
        "nme_contour_mean_%": 100 * M.summarize(col("nme_contour"))["mean"],
        "yaw_err_mean_deg": M.summarize(col("yaw_err_deg"))["mean"],
        "seconds_per_face": M.summarize(col("seconds"))["mean"],
    }
    if detail:
        summary["disp_corr_mean"] = M.summarize(col("disp_corr"))["mean"]
    return {
        "suite": "synthetic",
        "description": "Random ICT faces rendered by backend.render with known shape, pose and light "
                       f"(yaw within ±{settings.yaw_max_deg:g}°).",
        "summary": summary,
        "tables": {"per face": items},
        "plots": {"vertex_error": {"kind": "hist", "values": col("vertex_err_mean_mm"),
                                   "xlabel": "mean face vertex error (mm)"}},
        "images": _examples(panels),
        "per_item": items,
        "config": {"n": n, "quality": quality, "seed": seed, "detail": detail, "settings": settings.__dict__},
        "machine": machine_summary(),
    }


# ---------------------------------------------------------------------------------------
def run_landmarks(
    folder: str | Path,
    n: int | None = None,
    quality: str = "default",
    seed: int = 0,
    reconstruct_fn: ReconstructFn | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Landmark accuracy on annotated photos (``folder``: see :func:`.readers.find_landmark_sets`).

    Reports NME of the fitted model's projected landmarks and of the detector's, normalised by
    the inter-ocular distance (300-W) and by the box size (AFLW2000-3D), the failure rate
    (NME > 8 %), and a table binned by the fitted |yaw|. Photos where no face is found count as
    failures (NME = NaN).
    """
    sets = find_landmark_sets(folder)
    paths = list(sets)[: n if n else None]
    recon = reconstruct_fn or _default_reconstruct()
    config = _config(quality, seed, False)
    items = []
    panels: list[np.ndarray] = []
    for i, path in enumerate(paths):
        _progress(progress, i, len(paths), f"{path.name} ({i + 1}/{len(paths)})")
        gt = sets[path]
        if gt.shape != (68, 2):
            items.append({"image": path.name, "error": f"ground truth has {len(gt)} points, not 68"})
            continue
        try:
            head = recon([str(path)], config)
        except PhotoheadError as exc:
            items.append({"image": path.name, "error": str(exc), "nme_io": np.nan, "nme_box": np.nan})
            continue
        view = head.views[0]
        if len(panels) < MAX_PANELS:
            from PIL import Image

            with Image.open(path) as im:
                panels.append(_overlay(np.asarray(im.convert("RGB")), gt, view.landmarks68))
        items.append({
            "image": path.name,
            "yaw_deg": math.degrees(float(view.pose[2])),
            "nme_io": float(M.landmark_nme(view.landmarks68, gt, "interocular")[0]),
            "nme_box": float(M.landmark_nme(view.landmarks68, gt, "bbox")[0]),
            "det_nme_io": float(M.landmark_nme(view.detected68, gt, "interocular")[0]),
            "det_nme_box": float(M.landmark_nme(view.detected68, gt, "bbox")[0]),
        })
    col = lambda key: np.array([it.get(key, np.nan) for it in items], np.float64)  # noqa: E731
    nme_io, nme_box = col("nme_io"), col("nme_box")
    summary = {
        "photos": len(paths),
        "no_face": sum(1 for it in items if "error" in it),
        "nme_io_mean_%": 100 * M.summarize(nme_io)["mean"],
        "nme_io_median_%": 100 * M.summarize(nme_io)["median"],
        "nme_box_mean_%": 100 * M.summarize(nme_box)["mean"],
        "failure_rate_io_%": 100 * M.failure_rate(nme_io),
        "detector_nme_io_mean_%": 100 * M.summarize(col("det_nme_io"))["mean"],
        "detector_nme_box_mean_%": 100 * M.summarize(col("det_nme_box"))["mean"],
    }
    yaw = col("yaw_deg")
    ok = np.isfinite(yaw)
    binned = M.yaw_binned(nme_box[ok], yaw[ok])
    for row in binned:
        row["mean_nme_%"] = 100 * row.pop("mean_nme")
    return {
        "suite": "landmarks",
        "description": f"68-point landmark NME on {len(paths)} annotated photos from {folder}.",
        "summary": summary,
        "tables": {"NME (bbox) by fitted |yaw|": binned},
        "plots": {"nme_cdf": {"kind": "cdf", "values": 100 * nme_io, "xlabel": "NME inter-ocular (%)"}},
        "images": _examples(panels),
        "per_item": items,
        "config": {"folder": str(folder), "n": n, "quality": quality, "seed": seed},
        "machine": machine_summary(),
    }


# ---------------------------------------------------------------------------------------
def _load_scan(subject: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    verts, faces = read_obj_mesh(subject / "scan.obj")
    nose = lms = None
    meta_path = subject / "scan.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("landmarks68") is not None:
            lms = np.asarray(meta["landmarks68"], np.float64).reshape(-1, 3)
        if meta.get("nose_tip") is not None:
            nose = np.asarray(meta["nose_tip"], np.float64).reshape(3)
    if nose is None and lms is not None and len(lms) == 68:
        nose = lms[NOSE_TIP_LANDMARK]
    return verts, faces, nose, lms


def evaluate_scan(
    scan_points: np.ndarray,
    pred_vertices: np.ndarray,
    pred_faces: np.ndarray,
    pred_landmarks: np.ndarray,
    scan_nose: np.ndarray | None = None,
    scan_landmarks: np.ndarray | None = None,
    radius_mm: float = 95.0,
    with_scale: bool = True,
) -> dict[str, Any]:
    """MICC protocol for one scan (see the module docstring). Points/vertices (N,3) mm;
    ``pred_landmarks`` (68,3) predicted landmark vertices. Returns distances and the alignment."""
    pts = np.asarray(scan_points, np.float64)
    if scan_nose is None:
        scan_nose = pts[pts[:, 2].argmax()]  # frontal scans: the most forward point
    cropped, _ = M.crop_around(pts, scan_nose, radius_mm)
    if len(cropped) < 10:
        raise EvalDataError(f"only {len(cropped)} scan points within {radius_mm} mm of the nose tip: "
                            "check that the scan is in millimetres and give its nose tip in scan.json")
    if scan_landmarks is not None and len(scan_landmarks) == len(pred_landmarks):
        init = M.similarity_align(scan_landmarks, pred_landmarks, with_scale=with_scale)
    else:
        init = (1.0, np.eye(3), pred_landmarks[NOSE_TIP_LANDMARK] - scan_nose)
    mesh = M.MeshIndex(pred_vertices, pred_faces)
    res = M.icp(cropped, mesh, with_scale=with_scale, init=init)
    aligned = res.apply(cropped)
    return {
        "p2p": M.summarize(M.point_to_point(aligned, mesh)),
        "p2plane": M.summarize(M.point_to_plane(aligned, mesh)),
        "icp_scale": res.s, "icp_rmse": res.rmse, "icp_iterations": res.iterations, "points": len(cropped),
        "R": res.R, "t": res.t,
    }


def run_scans(
    folder: str | Path,
    n: int | None = None,
    quality: str = "default",
    seed: int = 0,
    radius_mm: float = 95.0,
    with_scale: bool = True,
    model=None,
    reconstruct_fn: ReconstructFn | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Scan-to-mesh error over the subjects in ``folder`` (layout in the module docstring)."""
    from ..export import load_head

    folder = Path(folder)
    subjects = sorted(p for p in folder.iterdir() if (p / "scan.obj").is_file()) if folder.is_dir() else []
    if not subjects:
        raise EvalDataError(f"{folder}: no <subject>/scan.obj found (layout: `photohead evaluate scans --help`)")
    subjects = subjects[: n if n else None]
    landmark_idx = None
    items = []
    for i, subject in enumerate(subjects):
        _progress(progress, i, len(subjects), f"scan {subject.name} ({i + 1}/{len(subjects)})")
        if (subject / "head.npz").is_file():
            head = load_head(subject / "head.npz")
        else:
            photos = sorted(str(p) for p in subject.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not photos:
                items.append({"subject": subject.name, "error": "no head.npz and no photos"})
                continue
            try:
                head = (reconstruct_fn or _default_reconstruct())(photos, _config(quality, seed, True))
            except PhotoheadError as exc:
                items.append({"subject": subject.name, "error": str(exc)})
                continue
        if landmark_idx is None:
            from ..facemodel import load_default

            landmark_idx = (model if model is not None else load_default()).landmarks68.numpy()
        verts, _, nose, lms = _load_scan(subject)
        r = evaluate_scan(verts, head.vertices, head.faces, np.asarray(head.vertices)[landmark_idx], nose, lms,
                          radius_mm, with_scale)
        items.append({"subject": subject.name, "p2p_mean_mm": r["p2p"]["mean"], "p2p_median_mm": r["p2p"]["median"],
                      "p2plane_mean_mm": r["p2plane"]["mean"], "p2plane_median_mm": r["p2plane"]["median"],
                      "icp_scale": r["icp_scale"], "icp_rmse_mm": r["icp_rmse"], "points": r["points"]})
    col = lambda key: np.array([it.get(key, np.nan) for it in items], np.float64)  # noqa: E731
    p2p, p2pl = M.summarize(col("p2p_mean_mm")), M.summarize(col("p2plane_mean_mm"))
    return {
        "suite": "scans",
        "description": f"Scan-to-mesh error, scans cropped to {radius_mm:g} mm around the nose tip, "
                       f"ICP {'with isotropic scale' if with_scale else 'rigid'}.",
        "summary": {"subjects": len(subjects), "failed": sum(1 for it in items if "error" in it),
                    "p2p_mean_mm": p2p["mean"], "p2p_std_mm": p2p["std"],
                    "p2plane_mean_mm": p2pl["mean"], "p2plane_std_mm": p2pl["std"]},
        "tables": {"per subject": items},
        "plots": {"p2plane": {"kind": "bar", "labels": [it["subject"] for it in items],
                              "values": col("p2plane_mean_mm"), "ylabel": "point-to-plane (mm)"}},
        "per_item": items,
        "config": {"folder": str(folder), "radius_mm": radius_mm, "with_scale": with_scale, "quality": quality},
        "machine": machine_summary(),
    }


# ---------------------------------------------------------------------------------------
def _timing_rows(node: Any, path: str, rows: list[dict[str, Any]], bench: str) -> None:
    if isinstance(node, dict):
        if "median_s" in node:
            rows.append({"benchmark": bench, "case": path or "-",
                         **{k: node.get(k) for k in ("median_s", "min_s", "mean_s", "max_s", "repeats")}})
            return
        for key, value in node.items():
            if key != "machine":
                _timing_rows(value, f"{path}/{key}" if path else str(key), rows, bench)


def run_timing(results_dir: str | Path | None = None) -> dict[str, Any]:
    """Collect ``benchmarks/results/*.json`` (``benchmarks.common.write_result`` files): one row
    per timed case (any dict holding ``median_s``), plus each file's machine."""
    results_dir = Path(results_dir) if results_dir else Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    files = sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []
    rows: list[dict[str, Any]] = []
    machines = []
    for path in files:
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            rows.append({"benchmark": path.stem, "case": f"unreadable: {exc}"})
            continue
        name = str(doc.get("name", path.stem))
        _timing_rows({k: v for k, v in doc.items() if k not in ("name", "created_utc")}, "", rows, name)
        m = doc.get("machine") or {}
        machines.append({"benchmark": name, "created_utc": doc.get("created_utc"),
                         **{k: m.get(k) for k in ("processor", "cpu_count", "torch", "gpu", "device", "loadavg_1m")}})
    return {
        "suite": "timing",
        "description": f"{len(files)} benchmark result files from {results_dir}.",
        "summary": {"files": len(files), "cases": len(rows)},
        "tables": {"timings (s)": rows, "machines": machines},
        "plots": {},
        "per_item": rows,
        "config": {"results_dir": str(results_dir)},
        "machine": machine_summary(),
    }
