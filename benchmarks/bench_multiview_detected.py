"""Multi-view vs single views with DETECTED landmarks: front + ±50° renders of random heads (issue 23).

    python -m benchmarks.bench_multiview_detected [--heads 8] [--quality default] [--jobs 2]

Each head (:func:`evaluation.multiview_heads.make_head_views`: the synthetic suite's random
identity, expression, albedo with brows and lips, pitch/roll, grey background; 320², the face
half the image) is photographed at yaw −50°, 0°, +50° under its own light per view, and
reconstructed (coarse only, ``detail=False``) with each ``--detectors`` entry as a user would
(``reconstruct`` detects: Face Mesh's dense points are fitted where the detector keeps them; a
photo without a face is skipped):

- each photo alone (``single_-50`` / ``single_0`` / ``single_+50``);
- all three jointly with the robust view weights (``joint``, :mod:`backend.fit.view_weights`), with
  their earlier, weaker yaw term (``joint_yaw16``: ``yaw_noise`` 16) and without them
  (``joint_unweighted``, the fit before them); ``--runs`` adds other yaw terms (``joint_yaw4``,
  ``joint_yaw64``).

Scored: vertex error (mm, similarity-aligned, narrow face region, as the synthetic suite) against
the true head, next to the mean face's; each view's detector NME (% of the true landmarks' box
√(w·h), as bench_detector_yaw, after ``reconstruct``'s second look for a lost face; > 10 % = the
view lost its landmarks, no face = lost); the fitted
view weights. Writes benchmarks/results/multiview_detected.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .common import write_result

YAWS = (-50.0, 0.0, 50.0)
RUNS = {"single_-50": [0], "single_0": [1], "single_+50": [2], "joint": [0, 1, 2], "joint_yaw16": [0, 1, 2],
        "joint_unweighted": [0, 1, 2]}
# joint runs with other view-weight settings than the default (a run named "*_<suffix>", also
# fitted when asked for with --runs)
VARIANTS = {"unweighted": {"enabled": False}, "yaw4": {"yaw_noise": 4.0}, "yaw16": {"yaw_noise": 16.0},
            "yaw64": {"yaw_noise": 64.0}}
ALL_RUNS = {**RUNS, **{f"joint_{k}": [0, 1, 2] for k in VARIANTS}}
LOST_NME = 0.10


def box_nme(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean landmark error (68,2) over the truth's box size √(w·h) (a fraction)."""
    wh = truth.max(0) - truth.min(0)
    return float(np.linalg.norm(pred - truth, axis=1).mean() / np.sqrt(wh[0] * wh[1]))


def detected(images: list[np.ndarray], detector: str) -> list[np.ndarray | None]:
    """The 68 landmarks (68,2) px ``reconstruct`` would use in each photo (``detect_one``, face 0;
    a photo without a face gets the second look of :func:`backend.multiview_detect.retry_face`
    from the others' face boxes, as in ``reconstruct``); None: no face."""
    from backend.detect import detect_one
    from backend.errors import NoFaceError
    from backend.multiview_detect import retry_face

    faces = []
    for img in images:
        try:
            faces.append(detect_one(img, backend=detector))
        except NoFaceError:
            faces.append(None)
    found = [(f.box, (img.shape[1], img.shape[0])) for f, img in zip(faces, images) if f is not None]
    out = []
    for f, img in zip(faces, images):
        if f is None and found and len(images) > 1:
            retry = retry_face(img, np.stack([b for b, _ in found]), np.array([s for _, s in found]), detector)
            f = None if retry is None else retry[0]
        out.append(None if f is None else f.landmarks)
    return out


def fit_runs(images: list[np.ndarray], detector: str, runs_of: dict[str, list[int]],
             truth: np.ndarray, model, quality: str) -> dict:
    """Reconstruct each run's photos (coarse only) as a user would: ``reconstruct`` detects with
    ``detector`` (dense points and all; a photo without a face is skipped, a run of none is an
    error; a run named ``*_<suffix>`` with the view weights of ``VARIANTS[suffix]``: ``unweighted``
    without them, ``yaw4`` / ``yaw16`` / ``yaw64`` other yaw terms) and score its vertex error against
    ``truth`` (N,3) mm."""
    import torch

    from backend import preset as presets
    from backend.errors import PhotoheadError
    from backend.fit.view_weights import ViewWeightSettings
    from backend.reconstruct import ReconstructConfig, reconstruct
    from evaluation.metrics import vertex_error

    torch.set_num_threads(1)
    narrow = model.region.numpy() == 0
    base = presets.PRESETS[quality]
    runs = {}
    for name, idx in runs_of.items():
        weighting = dataclasses.replace(ViewWeightSettings(), **VARIANTS.get(name.rsplit("_", 1)[-1], {}))
        presets.PRESETS[quality] = dataclasses.replace(base, coarse=dataclasses.replace(base.coarse, view_weights=weighting))
        t0 = time.process_time()
        try:
            head = reconstruct([images[i] for i in idx],
                               ReconstructConfig(quality=quality, device="cpu", detail=False, detector=detector))
        except PhotoheadError as exc:
            runs[name] = {"error": str(exc)}
            continue
        finally:
            presets.PRESETS[quality] = base
        runs[name] = {
            "vertex_error_mm": vertex_error(head.vertices, truth, narrow)["mean"],
            "views": len(head.views),
            "view_weights": [head.metrics[k] for k in sorted(head.metrics)
                             if k.startswith("view_weight_") and k[len("view_weight_"):].isdigit()],
            "cpu_s": time.process_time() - t0,
            "warnings": head.warnings,
            "view_evidence": view_evidence(head),
        }
    return runs


def view_evidence(head) -> list[dict]:
    """Per fitted view: its fitted yaw (degrees) and the mean distance of its fitted 68 points to
    the detected ones over the detected box's √(w·h) (``landmark_residual``, a fraction)."""
    out = []
    for r in head.views:
        det = np.asarray(r.detected68, np.float64)
        out.append({"yaw_deg": float(np.degrees(r.pose[2])),
                    "landmark_residual": box_nme(np.asarray(r.landmarks68, np.float64), det)})
    return out


def _one_head(args: tuple[int, int, str, tuple[str, ...], tuple[str, ...]]) -> dict:
    """Runs ``run_names`` of head ``index`` (drawn in order from ``seed``) for each detector."""
    index, seed, quality, detectors, run_names = args
    from backend.facemodel import load_default
    from evaluation.metrics import vertex_error
    from evaluation.multiview_heads import make_head_views

    model = load_default()
    rng = np.random.default_rng(seed)
    for _ in range(index + 1):
        hv = make_head_views(model, rng, YAWS)
    truth = hv.face.vertices
    out: dict = {"index": index, "detectors": {},
                 "mean_face_mm": vertex_error(model.mean.numpy(), truth, model.region.numpy() == 0)["mean"]}
    for det in detectors:
        found = detected(hv.images, det)
        nme = [None if lm is None else box_nme(lm, tr) for lm, tr in zip(found, hv.contour68)]
        runs = fit_runs(hv.images, det, {k: ALL_RUNS[k] for k in run_names}, truth, model, quality)
        out["detectors"][det] = {"nme": nme, "runs": runs}
        print(index, det, "nme", [None if v is None else round(100 * v, 1) for v in nme],
              {k: round(r.get("vertex_error_mm", float("nan")), 3) for k, r in runs.items()},
              f"mean face {out['mean_face_mm']:.3f}", flush=True)
    return out


def summarize(heads: list[dict], detectors: tuple[str, ...]) -> dict:
    """Per detector: mean vertex error of each run, of the best single view per head, wins and lost views."""
    table = {}
    for det in detectors:
        rows = [h["detectors"][det] for h in heads]
        names = [n for n in ALL_RUNS if all(n in r["runs"] for r in rows)]
        err = {name: np.array([r["runs"][name].get("vertex_error_mm", np.nan) for r in rows]) for name in names}
        singles = [err[n] for n in names if n.startswith("single")]
        best = np.nanmin(np.stack(singles), 0) if singles else np.full(len(rows), np.nan)
        nme = np.array([[np.nan if v is None else v for v in r["nme"]] for r in rows])  # (heads, 3)
        lost = ~(nme <= LOST_NME)
        table[det] = {
            "vertex_error_mm": {name: float(np.nanmean(e)) for name, e in err.items()},
            "best_single_mm": float(np.nanmean(best)),
            "mean_face_mm": float(np.mean([h["mean_face_mm"] for h in heads])),
            **{f"{n}_le_best_single": int(np.sum(err[n] <= best + 1e-9)) for n in names if n.startswith("joint")},
            "heads": len(rows),
            "nme_mean_%": [float(100 * np.nanmean(nme[:, v])) for v in range(len(YAWS))],
            "lost_views": [int(lost[:, v].sum()) for v in range(len(YAWS))],
        }
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="index of the first head (heads are drawn in order)")
    ap.add_argument("--quality", default="default")
    ap.add_argument("--detectors", default="dlib,auto")
    ap.add_argument("--runs", default=",".join(RUNS), help=f"runs to fit, of {', '.join(ALL_RUNS)}")
    ap.add_argument("--jobs", type=int, default=1, help="heads fitted in parallel (one thread each)")
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = ap.parse_args(argv)
    detectors = tuple(args.detectors.split(","))
    run_names = tuple(args.runs.split(","))
    unknown = [n for n in run_names if n not in ALL_RUNS]
    if unknown:
        ap.error(f"unknown runs {unknown}: choose from {', '.join(ALL_RUNS)}")
    jobs = [(i, args.seed, args.quality, detectors, run_names) for i in range(args.start, args.start + args.heads)]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            heads = list(pool.map(_one_head, jobs))
    else:
        heads = [_one_head(j) for j in jobs]
    summary = summarize(heads, detectors)
    for det, row in summary.items():
        print(det, row)
    write_result("multiview_detected", {"quality": args.quality, "yaws_deg": list(YAWS), "seed": args.seed,
                                        "lost_nme": LOST_NME, "summary": summary, "heads": heads}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
