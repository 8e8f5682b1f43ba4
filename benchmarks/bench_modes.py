"""Fit, predict and hybrid side by side on the evaluation suites, and what the initialiser saves.

    python -m benchmarks.bench_modes --checkpoints CKPT_DIR [--synthetic-n 10] \\
        [--landmarks $FACES_DEV --landmarks-n 20] [--curve-n 10] [--scales 0.25,0.5,1] [--out modes]

1. **Suites** (``ROWS``: fit, predict and hybrid at the default quality, fit and hybrid at draft):
   :func:`evaluation.suites.run_synthetic` (true landmarks, no detail) and, with
   ``--landmarks``, :func:`evaluation.suites.run_landmarks` (a random sample, seed 0, aggregates
   only: the dev photos are research-only) on the same faces and photos in every row. Time per
   face is the process's CPU time (``time.process_time``, one thread) of the reconstruction,
   loading included. The mean face's vertex error on the same synthetic faces
   (:func:`benchmarks.bench_mean_face.mean_face_errors`) is the do-nothing baseline.
2. **Curve** (coarse stage only, L_id off): the default schedule (150 landmark steps, 70 at 112²,
   30 at 224²) scaled by each of ``--scales`` (every stage's steps × s), from the closed-form pose
   and the mean face (fit) and from the network's prediction (hybrid; ``hybrid_closed_pose``:
   the prediction's identity, expression, light and albedo with fit mode's closed-form pose), on
   the first ``--curve-n`` synthetic faces: vertex error (mm) and CPU seconds per face. Scale 0 is
   the start: the mean face for fit, the prediction for hybrid.

Writes ``benchmarks/results/<out>.json``; docs/training.md's ``modes`` table is generated from
``modes.json`` and its ``hybrid_curve`` table from ``hybrid_curve.json`` (``python -m
benchmarks.doc_tables``), so the docs' numbers come from::

    python -m benchmarks.bench_modes --checkpoints CKPT --landmarks $FACES_DEV --skip-curve --out modes
    python -m benchmarks.bench_modes --checkpoints CKPT --skip-suites --out hybrid_curve

``--rows``/``--variants`` run a part (fit needs no checkpoints, so it can run while the networks
train) and ``--merge`` keeps the other parts already in the file.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .common import RESULTS_DIR, write_result

#: suite rows: (mode, quality)
ROWS: tuple[tuple[str, str], ...] = (("fit", "default"), ("predict", "default"), ("hybrid", "default"),
                                     ("fit", "draft"), ("hybrid", "draft"))
SYNTHETIC_KEYS = ("vertex_err_mean_mm", "vertex_err_narrow_face_mean_mm", "lm_err_px224_mean",
                  "nme_interocular_mean_%", "faces", "no_face")
LANDMARK_KEYS = ("nme_io_mean_%", "nme_io_median_%", "failure_rate_io_%", "detector_nme_io_mean_%", "photos",
                 "no_face")
CURVE_VARIANTS = ("fit", "hybrid", "hybrid_closed_pose")


def timed_reconstruct(cpu: list[float]) -> Callable:
    """A suite ``reconstruct_fn`` that appends each call's CPU seconds to ``cpu``."""
    from backend.reconstruct import reconstruct

    def fn(images, config):
        t = time.process_time()
        head = reconstruct(images, config)
        cpu.append(time.process_time() - t)
        return head
    return fn


def suite_rows(checkpoints: Path, synthetic_n: int, landmarks: Path | None, landmarks_n: int,
               rows_wanted: tuple[tuple[str, str], ...] = ROWS) -> list[dict[str, Any]]:
    """One entry per row of ``rows_wanted`` (mode, quality): the synthetic (and landmark) suite's summary."""
    from evaluation.suites import run_landmarks, run_synthetic

    rows = []
    for mode, quality in rows_wanted:
        ckpt = None if mode == "fit" else checkpoints
        row: dict[str, Any] = {"mode": mode, "quality": quality}
        cpu: list[float] = []
        res = run_synthetic(n=synthetic_n, quality=quality, seed=0, detail=False, landmarks="truth", mode=mode,
                            checkpoints=ckpt, reconstruct_fn=timed_reconstruct(cpu))
        row["synthetic"] = {k: res["summary"][k] for k in SYNTHETIC_KEYS}
        row["synthetic"]["cpu_s_per_face"] = float(np.mean(cpu)) if cpu else None
        if landmarks is not None:
            cpu = []
            res = run_landmarks(landmarks, n=landmarks_n, quality=quality, seed=0, sample="random", per_item=False,
                                reconstruct_fn=timed_reconstruct(cpu), mode=mode, checkpoints=ckpt)
            row["landmarks"] = {k: res["summary"][k] for k in LANDMARK_KEYS}
            row["landmarks"]["cpu_s_per_photo"] = float(np.mean(cpu)) if cpu else None
        print(mode, quality, row, flush=True)
        rows.append(row)
    return rows


def scaled_schedule(cfg, s: float):
    """``cfg`` (a :class:`backend.fit.coarse.CoarseFitConfig`) with every stage's steps × ``s`` (at least 1)."""
    return replace(cfg, landmark_steps=max(1, round(cfg.landmark_steps * s)),
                   photo_schedule=tuple((r, max(1, round(n * s))) for r, n in cfg.photo_schedule))


def curve(checkpoints: Path, n: int, scales: list[float], variants: tuple[str, ...] = CURVE_VARIANTS) -> dict[str, Any]:
    """Vertex error (mm) and CPU seconds per face of the coarse fit at each schedule scale, per variant."""
    return _curve(checkpoints, n, scales, variants)


def merge_curves(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the variants of ``old`` it lacks (same faces and scales; otherwise ``new`` alone)."""
    if not old or old.get("faces") != new["faces"] or old.get("scales") != new["scales"]:
        return new
    out = dict(new)
    for key in ("vertex_err_mean_mm", "cpu_s_per_face", "per_face_mm"):
        out[key] = {**old[key], **new[key]}
        out[key] = {v: out[key][v] for v in CURVE_VARIANTS if v in out[key]}
    return out


def _curve(checkpoints: Path, n: int, scales: list[float], variants: tuple[str, ...]) -> dict[str, Any]:
    """Vertex error (mm) and CPU seconds per face of the coarse fit at each schedule scale, per variant."""
    from backend.facemodel import load_default
    from backend.fit.coarse import fit_coarse
    from backend.predict import load_predictor
    from backend.prepare import prepare_view
    from backend.preset import resolve_preset
    from evaluation import metrics as M
    from evaluation.synthetic import make_faces

    model = load_default()
    mask = model.face_vertex_mask.numpy()
    base = replace(resolve_preset("default").coarse, identity=False)
    pred = load_predictor(checkpoints, "cpu", model) if any(v != "fit" for v in variants) else None
    faces = make_faces(model, n, seed=0)
    err = {v: {s: [] for s in [0.0, *scales]} for v in variants}
    cpu = {v: {s: [] for s in scales} for v in variants}
    mean = model.mean.reshape(-1, 3).numpy()
    for i, face in enumerate(faces):
        truth = face.contour68 if face.contour68 is not None else face.landmarks68
        view = prepare_view(face.image, landmarks68=truth)
        f = lambda a: torch.from_numpy(np.asarray(a)).float()[None]  # noqa: E731
        crops, lms, skin = f(view.crop), f(view.crop_landmarks), f(view.skin_mask)
        verr = lambda verts: M.vertex_error(np.asarray(verts, np.float64), face.vertices, mask)["mean"]  # noqa: E731
        for v in variants:
            for s in scales:
                torch.manual_seed(0)
                t = time.process_time()
                init = None
                if v != "fit":
                    predicted = pred.predict_coarse(model, crops)
                    init = pred.init_for_fit(predicted)
                    if v == "hybrid_closed_pose":
                        init.pop("pose")
                    if s == scales[0]:
                        err[v][0.0].append(verr(predicted.verts[0].detach().numpy()))
                result = fit_coarse(model, crops, lms, skin, scaled_schedule(base, s), init=init)
                cpu[v][s].append(time.process_time() - t)
                err[v][s].append(verr(result.verts[0].detach().numpy()))
            if v == "fit":
                err[v][0.0].append(verr(mean))
        print(f"face {i + 1}/{n}", {v: round(err[v][scales[-1]][-1], 3) for v in variants}, flush=True)
    steps = {s: scaled_schedule(base, s) for s in scales}
    return {
        "faces": n, "seed": 0, "scales": scales,
        "steps": {str(s): c.landmark_steps + sum(k for _, k in c.photo_schedule) for s, c in steps.items()},
        "photo_steps": {str(s): sum(k for _, k in c.photo_schedule) for s, c in steps.items()},
        "vertex_err_mean_mm": {v: {str(s): float(np.mean(e)) for s, e in d.items()} for v, d in err.items()},
        "cpu_s_per_face": {v: {str(s): float(np.mean(c)) for s, c in d.items()} for v, d in cpu.items()},
        "per_face_mm": {v: {str(s): [round(x, 4) for x in e] for s, e in d.items()} for v, d in err.items()},
    }


def main(argv: list[str] | None = None) -> int:
    from .bench_mean_face import mean_face_errors

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", type=Path, required=True, help="folder with coarse.pt (the initialiser)")
    ap.add_argument("--describe", default="", help="what the checkpoints are (into the JSON and the docs)")
    ap.add_argument("--synthetic-n", type=int, default=10)
    ap.add_argument("--landmarks", type=Path, default=None, help="annotated photos (e.g. $FACES_DEV)")
    ap.add_argument("--landmarks-n", type=int, default=20)
    ap.add_argument("--curve-n", type=int, default=10)
    ap.add_argument("--scales", default="0.25,0.5,1")
    ap.add_argument("--rows", default=",".join(f"{m}/{q}" for m, q in ROWS),
                    help="suite rows as mode/quality, comma-separated (default: %(default)s)")
    ap.add_argument("--variants", default=",".join(CURVE_VARIANTS), help="curve variants (default: %(default)s)")
    ap.add_argument("--skip-suites", action="store_true")
    ap.add_argument("--skip-curve", action="store_true")
    ap.add_argument("--out", default="modes")
    ap.add_argument("--merge", action="store_true",
                    help="keep the parts of an existing results file this run skips (suites and curve run apart)")
    args = ap.parse_args(argv)
    if not (args.checkpoints / "coarse.pt").is_file():
        ap.error(f"no coarse.pt in {args.checkpoints}")
    if args.landmarks is not None and not args.landmarks.is_dir():
        ap.error(f"--landmarks {args.landmarks} is not a folder")
    torch.set_num_threads(1)
    from backend.facemodel import load_default

    payload: dict[str, Any] = {}
    old = RESULTS_DIR / f"{args.out}.json"
    if args.merge and old.is_file():
        payload = {k: v for k, v in json.loads(old.read_text()).items() if k in ("rows", "curve")}
    payload |= {"checkpoints": args.describe or str(args.checkpoints), "threads": 1,
                               "synthetic_n": args.synthetic_n,
                               "landmarks_n": args.landmarks_n if args.landmarks is not None else 0}
    baseline = mean_face_errors(load_default(), args.synthetic_n, False, seed=0)
    payload["mean_face"] = {k: baseline[k] for k in ("vertex_err_mean_mm", "vertex_err_narrow_face_mean_mm")}
    if not args.skip_suites:
        wanted = tuple(tuple(r.split("/")) for r in args.rows.split(","))
        new = suite_rows(args.checkpoints, args.synthetic_n, args.landmarks, args.landmarks_n, wanted)
        keep = [r for r in payload.get("rows", []) if (r["mode"], r["quality"]) not in wanted]
        order = {row: i for i, row in enumerate(ROWS)}
        payload["rows"] = sorted(keep + new, key=lambda r: order.get((r["mode"], r["quality"]), len(order)))
    if not args.skip_curve:
        new_curve = curve(args.checkpoints, args.curve_n, [float(s) for s in args.scales.split(",")],
                          tuple(args.variants.split(",")))
        payload["curve"] = merge_curves(payload.get("curve"), new_curve)
    path = write_result(args.out, payload, device="cpu")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
