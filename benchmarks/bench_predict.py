"""Predict mode speed, and whether hybrid (fit initialised by a prediction) converges faster.

    python -m benchmarks.bench_predict [--checkpoints runs/demo/ckpt] [--photos grace_hopper,astronaut]
                                       [--repeats 5] [--qualities draft,default] [--threads 1]

1. **Predict time per photo** (CPU): ``reconstruct(mode="predict")`` repeated after a warm-up;
   reported without model loading (face model + checkpoints, ``timings["load_s"]``), with and
   without face detection (``timings["detect_s"]``, which includes loading), plus the per-stage
   timings of the median run; and in CPU time (``cpu_s_per_photo_with_detection``: a call's CPU
   time less that of loading the face model and checkpoints), which a loaded machine leaves
   comparable. ``--skip-convergence`` keeps the file's earlier convergence section (said so).
2. **Hybrid vs fit convergence**: the coarse fit (``resolve_preset(--fit-quality).coarse``, L_id off)
   from the closed-form pose (fit mode) and from the network's prediction (hybrid), same photo,
   same schedule. The loss per step is recorded by wrapping the loss functions the fit calls;
   it is L = 1.3·L_pixel + 1.0·L_lm + 20·prior_scale·R_param (the fit's objective without its
   albedo regularisers), L_pixel only in the photometric stages. Reported per stage (warm-up on
   the landmark term; each photometric resolution on L): fit mode's loss at the end of the
   stage and the step at which each run first reaches it (``null``: never).

Checkpoints: ``--checkpoints`` (default ``runs/demo/ckpt`` from docs/training.md when present),
else a tiny pair trained here on synthetic faces (stated in the JSON: an untrained-ish encoder
only tests the plumbing). Writes benchmarks/results/predict.json.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from .common import RESULTS_DIR, write_result

DEMO = Path("runs/demo/ckpt")


def tiny_checkpoints(folder: Path) -> Path:
    """A few steps of both trainers on synthetic faces (as tests/test_predict.py)."""
    from training import coarse as stage1, detail as stage2
    from training.config import CoarseConfig, DetailConfig, apply_overrides

    common = {"data.data": "synthetic", "data.synthetic_count": 12, "data.val_count": 0, "loop.batch_size": 4,
              "loop.device": "cpu", "loop.num_workers": 0, "loop.progress": False, "loop.log_every": 0,
              "loop.image_every": 0, "loop.val_every": 0}
    r1 = stage1.run(apply_overrides(CoarseConfig(), {
        **common, "out": str(folder / "coarse"), "data.crop_size": 96, "encoder.arch": "light", "use_identity": False,
        "loop.steps": 5}))
    r2 = stage2.run(apply_overrides(DetailConfig(), {
        **common, "out": str(folder / "detail"), "coarse": str(r1.last_checkpoint), "uv_size": 64, "ngf": 16,
        "loop.steps": 3}))
    out = folder / "ckpt"
    out.mkdir()
    shutil.copy(r1.last_checkpoint, out / "coarse.pt")
    shutil.copy(r2.last_checkpoint, out / "detail.pt")
    return out


def predict_times(photo, checkpoints: Path, quality: str, repeats: int) -> dict:
    from backend.reconstruct import ReconstructConfig, reconstruct

    from backend.predict import load_predictor
    from backend.reconstruct import load_face_model

    cfg = ReconstructConfig(mode="predict", quality=quality, identity=False, checkpoints=str(checkpoints), device="cpu")
    reconstruct([photo], cfg)  # warm-up (first-call allocations, dlib model load)
    runs = []
    for _ in range(repeats):
        c = time.process_time()
        t = reconstruct([photo], cfg).timings
        runs.append({**t, "no_load_s": t["total_s"] - t["load_s"], "no_detect_s": t["total_s"] - t["detect_s"],
                     "cpu_s": time.process_time() - c})
    loads = []
    for _ in range(repeats):  # what every call spends loading: the face model and the checkpoints
        c = time.process_time()
        load_predictor(checkpoints, "cpu", load_face_model(None))
        loads.append(time.process_time() - c)
    med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
    median_run = min(runs, key=lambda r: abs(r["no_load_s"] - med("no_load_s")))
    return {
        "quality": quality, "repeats": repeats,
        "per_photo_s_with_detection": med("no_load_s"),
        "per_photo_s_without_detection": med("no_detect_s"),
        "load_s": med("load_s"),
        "cpu_s_per_call": med("cpu_s"),
        "cpu_s_loading": statistics.median(loads),
        "cpu_s_per_photo_with_detection": med("cpu_s") - statistics.median(loads),
        "median_run_timings": {k: round(v, 4) for k, v in median_run.items()},
        "target_s": 1.0,
    }


@contextlib.contextmanager
def recorded_losses(log: list[dict]):
    """Wrap the loss functions ``backend.fit.coarse`` calls; one entry per call, in order."""
    import backend.fit.coarse as fc

    saved = {name: getattr(fc, name) for name in ("pixel_loss", "landmark_loss", "param_regularizer")}

    def wrap(name, fn):
        def inner(*args, **kwargs):
            value = fn(*args, **kwargs)
            entry = {"term": name, "value": float(value.detach())}
            if name == "pixel_loss":
                entry["size"] = int(args[0].shape[1])  # photometric stage resolution
            log.append(entry)
            return value
        return inner

    for name, fn in saved.items():
        setattr(fc, name, wrap(name, fn))
    try:
        yield log
    finally:
        for name, fn in saved.items():
            setattr(fc, name, fn)


def per_step_loss(log: list[dict], cfg) -> list[dict]:
    """Group the recorded calls into steps: a step ends with its ``param_regularizer`` call."""
    w, steps, cur = cfg.weights, [], {}
    for entry in log:
        cur[entry["term"]] = entry["value"]
        if "size" in entry:
            cur["size"] = entry["size"]
        if entry["term"] == "param_regularizer":
            stage = f"photo{cur['size']}" if "pixel_loss" in cur else "landmarks"
            total = w.landmark * cur["landmark_loss"] + w.reg * cfg.prior_scale * cur["param_regularizer"]
            if "pixel_loss" in cur:
                total += w.pixel * cur["pixel_loss"]
            steps.append({"stage": stage, "loss": total, "landmark": cur["landmark_loss"]})
            cur = {}
    return steps


def first_step_at_or_below(steps: list[dict], target: float, stage: str, key: str = "loss") -> int | None:
    """1-based global step index of the first ``stage`` step whose ``key`` ≤ target (None: never)."""
    for i, s in enumerate(steps):
        if s["stage"] == stage and s[key] <= target * (1 + 1e-6):
            return i + 1
    return None


def convergence(name: str, photo, checkpoints: Path, quality: str) -> dict:
    from backend.fit.coarse import fit_coarse
    from backend.preset import resolve_preset
    from backend.facemodel import load_default
    from backend.predict import load_predictor
    from backend.prepare import prepare_view

    model = load_default()
    view = prepare_view(photo)
    f = lambda a: torch.from_numpy(a).float()[None]  # noqa: E731
    crops, lms, mask = f(view.crop), f(view.crop_landmarks), f(view.face_mask)
    cfg = replace(resolve_preset(quality).coarse, identity=False)
    pred = load_predictor(checkpoints, "cpu", model)
    predicted = pred.predict_coarse(model, crops)
    out = {"photo": name, "fit_quality": quality, "total_steps": cfg.landmark_steps + sum(n for _, n in cfg.photo_schedule)}
    curves = {}
    for mode in ("fit", "hybrid"):
        torch.manual_seed(0)
        log: list[dict] = []
        t = time.perf_counter()
        with recorded_losses(log):
            fit_coarse(model, crops, lms, mask, cfg, init=None if mode == "fit" else pred.init_for_fit(predicted))
        curves[mode] = per_step_loss(log, cfg)
        out[f"{mode}_time_s"] = time.perf_counter() - t
    stages = list(dict.fromkeys(s["stage"] for s in curves["fit"]))
    # per stage: fit mode's loss at the end of the stage, and the (global, 1-based) step at which
    # each run first reaches it within that stage (losses of different stages are not comparable:
    # no pixel term in the warm-up, pixel loss at another resolution per photometric stage)
    targets = {st: [s for s in curves["fit"] if s["stage"] == st][-1] for st in stages}
    out["fit_final_loss"] = curves["fit"][-1]["loss"]
    out["stage_end_loss_fit"] = {st: (t["landmark"] if st == "landmarks" else t["loss"]) for st, t in targets.items()}
    for mode, steps in curves.items():
        reach = {}
        for st, t in targets.items():
            key = "landmark" if st == "landmarks" else "loss"
            reach[st] = first_step_at_or_below(steps, t[key], st, key)
        out[mode] = {
            "initial_landmark_loss": steps[0]["landmark"],
            "stage_end_loss": {st: [s for s in steps if s["stage"] == st][-1]["loss"] for st in stages},
            "final_loss": steps[-1]["loss"],
            "step_reaching_fit_stage_end_loss": reach,
            "loss_every_10_steps": [round(s["loss"], 3) for s in steps[::10]],
        }
    out["stage_steps"] = {st: sum(1 for s in curves["fit"] if s["stage"] == st) for st in stages}
    return out


def main(argv: list[str] | None = None) -> int:
    from backend.samples import sample_photo

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", default="")
    ap.add_argument("--photos", default="grace_hopper")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--qualities", default="draft,default", help="reconstruct qualities of the predict timing")
    ap.add_argument("--fit-quality", default="default", help="coarse-fit schedule of the convergence comparison")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared 2-core VM more threads oversubscribe)")
    ap.add_argument("--skip-convergence", action="store_true")
    ap.add_argument("--out", default="predict")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tmp = None
    ckpt = Path(args.checkpoints) if args.checkpoints else DEMO
    source = "given" if args.checkpoints else "demo run (docs/training.md)"
    if not (ckpt / "coarse.pt").is_file():
        tmp = tempfile.TemporaryDirectory()
        ckpt, source = tiny_checkpoints(Path(tmp.name)), ("tiny synthetic (5 + 3 steps): plumbing only, the demo "
                                                         "run's architecture, so the same cost")
    payload: dict = {"checkpoints": source, "threads": args.threads, "predict": {}, "convergence": []}
    photos = {name: sample_photo(name)[1] for name in args.photos.split(",")}
    for name, img in photos.items():
        for quality in args.qualities.split(","):
            res = predict_times(img, ckpt, quality, args.repeats)
            payload["predict"][f"{name}/{quality}"] = res
            print(name, {k: v for k, v in res.items() if k != "median_run_timings"}, flush=True)
    if not args.skip_convergence:
        for name, img in photos.items():
            res = convergence(name, img, ckpt, args.fit_quality)
            payload["convergence"].append(res)
            print(name, {k: res[k] for k in ("stage_end_loss_fit", "fit", "hybrid")}, flush=True)
    else:  # the earlier run's convergence (its checkpoints, its date) stays in the file, said so
        earlier = RESULTS_DIR / f"{args.out}.json"
        if earlier.is_file():
            old = json.loads(earlier.read_text())
            if old.get("convergence"):
                payload["convergence"] = old["convergence"]
                payload["convergence_note"] = (f"carried over from the run of {old.get('created_utc', '?')} "
                                               f"(checkpoints: {old.get('checkpoints', '?')})")
    path = write_result(args.out, payload, device="cpu")
    print(f"wrote {path}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
