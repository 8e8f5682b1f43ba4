"""Cached inputs for tuning the coarse fit: each render or photo prepared once (render, detection,
crop, skin mask), then only the coarse fit runs per setting (:mod:`benchmarks.bench_prior_tuning`
``--fast``; about 5 s of one CPU thread per face at default quality instead of the whole
reconstruction's 45 s).

The fast path scores exactly what the suites score from the coarse fit: the synthetic suite's
similarity-aligned vertex errors (:func:`evaluation.suites.run_synthetic`: face regions, the
identity-only shape, the mean face's on the same faces) and the landmark suite's inter-ocular
NME of the fitted and the detected 68 points (:func:`evaluation.suites.run_landmarks`). It leaves
out what the coarse fit does not change (texture, detail, the trust warnings).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.align import points_to_image
from backend.detect import DetectSettings
from backend.detectors import DEFAULT_DETECTOR
from backend.errors import PhotoheadError
from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.prepare import PreparedView, dense_targets, detector_gaps, mesh68_targets, prepare_view


@dataclass
class CachedItem:
    """One prepared input: its view (:class:`~backend.prepare.PreparedView`) and its truth.

    Synthetic: ``vertices``/``neutral`` (N,3) mm the true shape and its identity-only shape,
    ``mean_face`` the mean face's errors (:func:`evaluation.suites.mean_face_errors`).
    Photos: ``gt`` (68,2) photo px, the annotated landmarks.
    """

    name: str
    view: PreparedView
    vertices: np.ndarray | None = None
    neutral: np.ndarray | None = None
    mean_face: dict[str, float] | None = None
    gt: np.ndarray | None = None


def prepare_synthetic(n: int, seed: int, scene: str, detector: str = DEFAULT_DETECTOR) -> dict[str, Any]:
    """The synthetic suite's ``n`` renders of ``seed`` in ``scene``, prepared with ``detector``
    (renders without a face are left out, as the suite counts them apart)."""
    from evaluation.suites import mean_face_errors
    from evaluation.synthetic import SCENES, make_faces
    from backend.facemodel import load_default

    model = load_default()
    mask = model.face_vertex_mask.numpy()
    narrow = model.region.numpy() == 0
    items = []
    for i, face in enumerate(make_faces(model, n, seed=seed, settings=SCENES[scene])):
        try:
            view = prepare_view(face.image, detector=detector, detect_settings=DetectSettings())
        except PhotoheadError:
            continue
        items.append(CachedItem(str(i), view, face.vertices, face.neutral, mean_face_errors(model, face, mask, narrow)))
    return {"kind": "synthetic", "items": items, "mask": mask}


def prepare_photos(folder: str | Path, n: int, seed: int, detector: str = DEFAULT_DETECTOR) -> dict[str, Any]:
    """``n`` annotated photos of ``folder`` (the landmark suite's random sample for ``seed``), prepared."""
    from evaluation.readers import find_landmark_sets, pick_paths

    sets = find_landmark_sets(folder)
    items = []
    for path in pick_paths(list(sets), n, "random", seed):
        try:
            view = prepare_view(str(path), detector=detector, detect_settings=DetectSettings())
        except PhotoheadError:
            continue
        items.append(CachedItem(path.name, view, gt=np.asarray(sets[path], np.float64)))
    return {"kind": "photos", "items": items}


def load_or_prepare(path: Path, make) -> dict[str, Any]:
    """The cache at ``path`` (a pickle of trusted local data written by ``make``), made when missing."""
    if path.is_file():
        return torch.load(path, weights_only=False)  # our own pickle of numpy arrays and dataclasses
    data = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(data, tmp)
    tmp.replace(path)
    return data


def fit_cached(data: dict[str, Any], cfg: CoarseFitConfig, identity_net=None) -> dict[str, Any]:
    """The coarse fit of every cached item with ``cfg``: per-item rows and the summary.

    Synthetic summary: ``vertex_err_mean_mm``, ``mean_face_err_mean_mm``, ``fit_over_mean_face``,
    ``neutral_err_mean_mm``, ``mean_face_neutral_err_mean_mm``; photos: ``nme_io_mean_%`` and
    ``detector_nme_io_mean_%``. Both: ``id_norm_mean`` (‖x_id‖) and ``cpu_s`` (process CPU time).
    """
    from backend.facemodel import load_default
    from evaluation import metrics as M

    model = load_default()
    rows = []
    t0 = time.process_time()
    for it in data["items"]:
        v = it.view
        as_t = lambda a: torch.from_numpy(np.asarray(a, np.float32))[None]  # noqa: E731
        fit = fit_coarse(model, as_t(v.crop), as_t(v.crop_landmarks), as_t(v.skin_mask), cfg, identity_net,
                         dense=dense_targets([v], torch.device("cpu")), mesh68=mesh68_targets([v], torch.device("cpu")),
                         gaps=detector_gaps([v], torch.device("cpu")))
        row: dict[str, Any] = {"name": it.name, "id_norm": float(fit.id.norm())}
        if data["kind"] == "synthetic":
            neutral = model(fit.id, None)[0].double().numpy()
            row |= {"vertex_err_mean_mm": M.vertex_error(fit.verts[0].double().numpy(), it.vertices, data["mask"])["mean"],
                    "neutral_err_mean_mm": M.vertex_error(neutral, it.neutral, data["mask"])["mean"],
                    "mean_face_err_mean_mm": it.mean_face["mean_face_err_mean_mm"],
                    "mean_face_neutral_err_mean_mm": it.mean_face["mean_face_neutral_err_mean_mm"]}
        else:
            lm = points_to_image(fit.landmarks[0].double().numpy(), v.image_from_crop)
            row |= {"nme_io": float(M.landmark_nme(lm, it.gt)[0]),
                    "det_nme_io": float(M.landmark_nme(v.detected68.astype(np.float64), it.gt)[0])}
        rows.append(row)
    mean = lambda k: float(np.mean([r[k] for r in rows])) if rows else float("nan")  # noqa: E731
    summary: dict[str, Any] = {"items": len(rows), "id_norm_mean": mean("id_norm"), "cpu_s": time.process_time() - t0}
    if data["kind"] == "synthetic":
        keys = ("vertex_err_mean_mm", "mean_face_err_mean_mm", "neutral_err_mean_mm", "mean_face_neutral_err_mean_mm")
        summary |= {k: mean(k) for k in keys}
        summary["fit_over_mean_face"] = summary["vertex_err_mean_mm"] / summary["mean_face_err_mean_mm"]
    else:
        summary |= {"nme_io_mean_%": 100 * mean("nme_io"), "detector_nme_io_mean_%": 100 * mean("det_nme_io")}
    return {"summary": summary, "per_item": rows}
