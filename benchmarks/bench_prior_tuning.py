"""The coarse fit's prior tuned under real landmark noise (issue 23): the synthetic suite's
realistic renders fitted from the DEFAULT detector's landmarks, one coarse-fit setting at a time.

    python -m benchmarks.bench_prior_tuning --seed 100 --n 10 \\
        current= "p1=prior_scale:1.0" "p1_b1.2=prior_scale:1.0,id_ball:1.2" "w=pixel:2.6,landmark:0.5"
    python -m benchmarks.bench_prior_tuning --fast --seed 100 --n 10 current= "p1=prior_scale:1.0"
    python -m benchmarks.bench_prior_tuning --fast --photos $FACES_DEV --n 30 current= "p1=prior_scale:1.0"
    python -m benchmarks.bench_prior_tuning --table benchmarks/results/prior_tuning.json

Each ``NAME=key:value,...`` overrides fields of the quality preset's ``CoarseFitConfig``
(``pixel``, ``landmark``, ``identity``, ``reg``, ``w_id``, ``w_exp`` go to its ``CoarseLossWeights``; ``None`` for
no value) for one run of :func:`evaluation.suites.run_synthetic` (``--landmarks detector``,
``--scene realistic``, the default detector, the default quality; ``--landmarks truth`` for the
check on true landmarks). Results go into ``--out`` (default
``benchmarks/results/prior_tuning.json``) under ``<landmarks>_seed<seed>_n<n>`` → NAME: the
overrides, the suite's summary (fit and mean-face vertex errors, their ratio, landmark errors)
and the per-face errors. Runs already in the file are skipped, so a grid resumes. Tune on one
seed, confirm on another: the renders of different seeds are different faces.

``--fast`` prepares each render once (``--cache-dir``) and runs only the coarse fit per setting
(:mod:`benchmarks.prior_cache`: the same vertex errors, ten times cheaper); ``--scene`` picks
the render path (``realistic_cycles``: path-traced). ``--photos DIR`` (with ``--fast``) is the
guard on real photos: the landmark suite's NME (fitted and detected) on ``--n`` annotated photos
of ``DIR`` (random sample for ``--seed``), section ``photos_<folder>_seed<seed>_n<n>``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

from backend import preset as P
from backend.detectors import DEFAULT_DETECTOR

from benchmarks.common import RESULTS_DIR, write_result

WEIGHT_KEYS = ("pixel", "landmark", "identity", "reg", "w_id", "w_exp")  # CoarseLossWeights fields
SUMMARY_KEYS = ("faces", "reconstructed", "vertex_err_mean_mm", "mean_face_err_mean_mm", "fit_over_mean_face",
                "vertex_err_narrow_face_mean_mm", "mean_face_err_narrow_face_mean_mm", "neutral_err_mean_mm",
                "mean_face_neutral_err_mean_mm",
                "lm_err_px224_mean", "detector_err_px224_mean", "yaw_err_mean_deg", "seconds_per_face")


def parse_spec(spec: str) -> tuple[str, dict[str, float | None]]:
    """``NAME=key:value,...`` → (NAME, overrides)."""
    name, _, body = spec.partition("=")
    over: dict[str, float | None] = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition(":")
        over[key] = None if value == "None" else float(value)
    return name, over


def patched_preset(quality: str, over: dict[str, float | None]) -> P.Preset:
    """The quality's preset with ``over`` applied to its coarse fit (weights to its loss weights)."""
    base = P.PRESETS[quality]
    weights = replace(base.coarse.weights, **{k: v for k, v in over.items() if k in WEIGHT_KEYS})
    coarse = replace(base.coarse, weights=weights, **{k: v for k, v in over.items() if k not in WEIGHT_KEYS})
    return replace(base, coarse=coarse)


def run_one(over: dict[str, float | None], n: int, seed: int, landmarks: str, quality: str,
            scene: str = "realistic") -> dict[str, Any]:
    """One synthetic-suite run with the overridden coarse fit."""
    from evaluation.suites import run_synthetic  # lazy: --table needs no torch

    preset = patched_preset(quality, over)
    with mock.patch("backend.reconstruct.resolve_preset", lambda q: preset):
        res = run_synthetic(n=n, quality=quality, seed=seed, landmarks=landmarks, scene=scene,
                            detector=DEFAULT_DETECTOR)
    s = res["summary"]
    return {"over": over, "summary": {k: s.get(k) for k in SUMMARY_KEYS}, "per_face": [
        {k: it.get(k) for k in ("index", "vertex_err_mean_mm", "mean_face_err_mean_mm", "input_err_px224", "error")}
        for it in res["per_item"]], "detector": res["config"]["detector"]}


def fast_table(section: str, runs: dict[str, Any]) -> list[str]:
    """Markdown rows of a ``--fast`` section (coarse fit only): vertex errors, or photo NMEs."""
    if section.startswith("photos_"):
        lines = [f"**{section}** (coarse fit only)", "", "| setting | overrides | fitted NME (%) | detector NME (%) | "
                 "‖x_id‖ | photos |", "|---|---|---|---|---|---|"]
        for name, r in runs.items():
            s = r["summary"]
            lines.append(f"| {name} | {_over_text(r['over'])} | {s['nme_io_mean_%']:.2f} | {s['detector_nme_io_mean_%']:.2f} | "
                         f"{s['id_norm_mean']:.1f} | {s['items']} |")
        return lines + [""]
    lines = [f"**{section}** (coarse fit only)", "", "| setting | overrides | fit (mm) | mean face (mm) | fit / mean face | "
             "identity only: fit / mean face (mm) | ‖x_id‖ | faces |", "|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        s = r["summary"]
        lines.append(f"| {name} | {_over_text(r['over'])} | {s['vertex_err_mean_mm']:.2f} | {s['mean_face_err_mean_mm']:.2f} | "
                     f"{s['fit_over_mean_face']:.2f} | {s['neutral_err_mean_mm']:.2f} / {s['mean_face_neutral_err_mean_mm']:.2f} | "
                     f"{s['id_norm_mean']:.1f} | {s['items']} |")
    return lines + [""]


def _over_text(over: dict[str, float | None]) -> str:
    return ", ".join(f"{k} {v:g}" if v is not None else f"{k} none" for k, v in over.items()) or "defaults"


def run_fast(over: dict[str, float | None], args: argparse.Namespace, section: str) -> dict[str, Any]:
    """One ``--fast`` run: the coarse fit with ``over`` on the section's cached inputs."""
    import torch

    from backend.reconstruct import _identity_adapter
    from benchmarks import prior_cache as C

    if args.landmarks != "detector":
        raise SystemExit("--fast prepares detected landmarks only")
    cache = args.cache_dir / f"{section.removesuffix('_fast')}.pt"
    if args.photos is not None:
        data = C.load_or_prepare(cache, lambda: C.prepare_photos(args.photos, args.n, args.seed))
    else:
        data = C.load_or_prepare(cache, lambda: C.prepare_synthetic(args.n, args.seed, args.scene))
    cfg = patched_preset(args.quality, over).coarse
    identity = _identity_adapter(torch.device("cpu")) if cfg.identity else None
    return {"over": over, **C.fit_cached(data, cfg, identity), "detector": DEFAULT_DETECTOR}


def table(doc: dict[str, Any]) -> str:
    """Markdown: one row per run (fit mm, mean face mm, ratio, landmark error) in each section."""
    lines = []
    for section, runs in doc.get("runs", {}).items():
        if section.endswith("_fast"):
            lines += fast_table(section, runs)
            continue
        lines += [f"**{section}**", "", "| setting | overrides | fit (mm) | mean face (mm) | fit / mean face | "
                  "identity only: fit / mean face (mm) | fitted landmarks (px, 224²) | detector (px) | faces |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, r in runs.items():
            s = r["summary"]
            over = _over_text(r["over"])
            lines.append(f"| {name} | {over} | {s['vertex_err_mean_mm']:.2f} | {s['mean_face_err_mean_mm']:.2f} | "
                         f"{s['fit_over_mean_face']:.2f} | {s['neutral_err_mean_mm']:.2f} / "
                         f"{s.get('mean_face_neutral_err_mean_mm') or float('nan'):.2f} | {s['lm_err_px224_mean']:.2f} | "
                         f"{s['detector_err_px224_mean']:.2f} | {s['reconstructed']}/{s['faces']} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("settings", nargs="*", help="NAME=key:value,... (empty after '=': the preset as it is)")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--landmarks", choices=("detector", "truth"), default="detector")
    ap.add_argument("--quality", default="default")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "prior_tuning.json")
    ap.add_argument("--fast", action="store_true", help="coarse fit only, on inputs prepared once (--cache-dir)")
    ap.add_argument("--scene", choices=("realistic", "realistic_cycles"), default="realistic")
    ap.add_argument("--photos", type=Path, default=None, help="with --fast: annotated photos (landmark suite) instead")
    ap.add_argument("--cache-dir", type=Path, default=Path("out/prior_cache"))
    ap.add_argument("--table", type=Path, default=None, help="print the markdown table of a results file and exit")
    args = ap.parse_args(argv)
    if args.table is not None:
        print(table(json.loads(args.table.read_text())))
        return 0
    specs = [parse_spec(s) for s in args.settings]
    unknown = {k for _, over in specs for k in over} - set(WEIGHT_KEYS) - set(P.CoarseFitConfig.__dataclass_fields__)
    if unknown or not specs:
        print(f"unknown CoarseFitConfig fields: {sorted(unknown)}" if unknown else "give at least one NAME=...",
              file=sys.stderr)
        return 2
    if args.photos is not None and not (args.fast and args.photos.is_dir()):
        print(f"--photos needs --fast and a folder: {args.photos}", file=sys.stderr)
        return 2
    section = f"{args.landmarks}_seed{args.seed}_n{args.n}" + ("" if args.scene == "realistic" else f"_{args.scene}")
    if args.photos is not None:
        section = f"photos_{args.photos.name}_seed{args.seed}_n{args.n}"
    section += "_fast" if args.fast else ""
    for name, over in specs:
        doc = json.loads(args.out.read_text()) if args.out.is_file() else {}
        runs = doc.get("runs", {})
        if name in runs.get(section, {}):
            continue
        t0 = time.perf_counter()
        result = (run_fast(over, args, section) if args.fast else
                  run_one(over, args.n, args.seed, args.landmarks, args.quality, args.scene))
        doc = json.loads(args.out.read_text()) if args.out.is_file() else {}  # another run may have written
        runs = doc.get("runs", {})
        runs.setdefault(section, {})[name] = {**result, "wall_s": time.perf_counter() - t0}
        write_result(args.out.stem, {"runs": runs}, args.out.parent)
        s = result["summary"]
        if args.photos is not None:
            print(f"{section} {name}: NME {s['nme_io_mean_%']:.3f} %, detector {s['detector_nme_io_mean_%']:.3f} %", flush=True)
            continue
        print(f"{section} {name}: fit {s['vertex_err_mean_mm']:.3f} mm, mean face {s['mean_face_err_mean_mm']:.3f} mm, "
              f"ratio {s['fit_over_mean_face']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
