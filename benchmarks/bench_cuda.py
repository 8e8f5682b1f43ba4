"""The whole pipeline on a CUDA GPU: times, CPU/CUDA agreement, run-to-run repeatability.

    python -m benchmarks.bench_cuda --write-landmarks lm.json      # here: dlib's landmarks
    python -m benchmarks.bench_cuda --landmarks lm.json            # on the GPU machine

Cases, each in a fresh subprocess (so a cold CUDA start is measured once, and one failure
does not stop the others):

- ``photo_<name>``: grace_hopper and astronaut, default quality, fit mode with detail, run
  three times on CUDA: the first run includes CUDA's start-up, runs two and three (same seed)
  give the warm time and the run-to-run difference (vertices mm, displacement mm, L_pixel;
  ``identical_bits`` is what :mod:`backend.determinism` promises);
- ``cpu_grace_hopper``: the same photo on the CPU → CPU/CUDA vertex and displacement agreement;
- ``free``: grace_hopper three times with ``ReconstructConfig(deterministic=False)``: what
  reproducibility costs, and the run-to-run drift without it;
- ``high``: grace_hopper at high quality on CUDA (warm time);
- ``synthetic``: the synthetic detail suite's first ``--synthetic`` faces on CUDA
  (displacement correlation and dense/coarse error per face, comparable with the CPU suite's
  faces of the same index);
- ``profile``: one warm draft run under ``torch.profiler`` (GPU activity only): GPU busy time
  vs wall time, kernel count and the kernels that take the time (is the fit launch-bound?);
- ``syncs``: the lines of our code that make a warm draft fit wait for the GPU (not in the
  default list: run it with ``--cases syncs``).

``--landmarks`` hands each photo's 68 landmarks to the pipeline in place of the detector (a GPU
machine without dlib's 100 MB predictor); ``--write-landmarks`` makes that file with the
detector. Writes ``benchmarks/results/fit_cuda.json`` (``--out``) and, with ``--copy-to``, a
copy there.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PHOTOS = ("grace_hopper", "astronaut")
# the GPU under test; ``--device cpu`` runs every case on the CPU (a dry run of this script)
GPU = os.environ.get("PHOTOHEAD_BENCH_GPU", "cuda")


def _landmarks(path: str | None, name: str) -> list[np.ndarray] | None:
    if not path:
        return None
    return [np.asarray(json.loads(Path(path).read_text())[name], np.float64)]


def _run(name: str, device: str, quality: str, lm_path: str | None, deterministic: bool = True):
    """One reconstruction; returns (head, wall seconds)."""
    import torch

    from backend.reconstruct import ReconstructConfig, reconstruct
    from backend.samples import sample_photo

    config = ReconstructConfig(quality=quality, device=device, deterministic=deterministic)
    image = sample_photo(name)[1]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    head = reconstruct([image], config, landmarks=_landmarks(lm_path, name))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return head, time.perf_counter() - t


def _summary(head, wall: float) -> dict:
    m = head.metrics
    out = {"wall_s": wall, "timings": {k: head.timings[k] for k in ("coarse_fit_s", "detail_fit_s")
                                       if k in head.timings}}
    if "pixel_loss_coarse" in m and "pixel_loss_detail" in m:
        out.update(pixel_loss_coarse=m["pixel_loss_coarse"], pixel_loss_detail=m["pixel_loss_detail"],
                   face_mask_drop=1.0 - m["pixel_loss_detail"] / m["pixel_loss_coarse"])
    return out


def _arrays(head) -> dict[str, np.ndarray]:
    return {"vertices": np.asarray(head.vertices, np.float64),
            "displacement": np.asarray(head.displacement, np.float64)}


def _difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict:
    dv = np.linalg.norm(a["vertices"] - b["vertices"], axis=-1)
    dd = np.abs(a["displacement"] - b["displacement"])
    x, y = a["displacement"].ravel(), b["displacement"].ravel()
    keep = (np.abs(x) > 0) | (np.abs(y) > 0)
    corr = float(np.corrcoef(x[keep], y[keep])[0, 1]) if keep.sum() > 2 else float("nan")
    return {"identical_bits": bool(np.array_equal(a["vertices"], b["vertices"])
                                   and np.array_equal(a["displacement"], b["displacement"])),
            "vertex_mean_mm": float(dv.mean()), "vertex_max_mm": float(dv.max()),
            "displacement_max_abs_mm": float(dd.max()), "displacement_correlation": corr}


def _repeat(name: str, lm: str | None, deterministic: bool = True, n: int = 3) -> tuple[list[dict], list[dict]]:
    """``n`` default reconstructions of ``name`` in this process: (summaries, arrays)."""
    runs, arrays = [], []
    for _ in range(n):
        head, wall = _run(name, GPU, "default", lm, deterministic)
        runs.append(_summary(head, wall))
        arrays.append(_arrays(head))
    return runs, arrays


def case_photo(name: str, lm: str | None, work: Path) -> dict:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs, arrays = _repeat(name, lm)  # cold, warm, warm again
    flagged = sorted({str(w.message).splitlines()[0][:160] for w in caught if "determinis" in str(w.message)})
    np.savez(work / f"cuda_{name}.npz", **arrays[1])
    return {"cold": runs[0], "warm": runs[1], "warm_again": runs[2], "nondeterministic_ops_flagged": flagged,
            "run_to_run": _difference(arrays[1], arrays[2]), "cold_vs_warm": _difference(arrays[0], arrays[1])}


def case_cpu(lm: str | None, work: Path) -> dict:
    import torch

    head, wall = _run("grace_hopper", "cpu", "default", lm)
    cuda = dict(np.load(work / "cuda_grace_hopper.npz"))
    return {"cpu": _summary(head, wall), "cpu_threads": torch.get_num_threads(),
            "cpu_vs_cuda": _difference(_arrays(head), cuda)}


def case_free(lm: str | None, work: Path) -> dict:
    """grace_hopper with ``deterministic=False``: what reproducibility costs in time, and how far
    two such runs drift apart."""
    runs, arrays = _repeat("grace_hopper", lm, deterministic=False)
    return {"warm": runs[1], "warm_again": runs[2], "run_to_run": _difference(arrays[1], arrays[2]),
            "vs_deterministic": _difference(arrays[1], dict(np.load(work / "cuda_grace_hopper.npz")))}


def case_high(lm: str | None, work: Path) -> dict:
    _run("grace_hopper", GPU, "draft", lm)  # CUDA start-up outside the timed run
    head, wall = _run("grace_hopper", GPU, "high", lm)
    return _summary(head, wall)


def case_synthetic(n: int) -> dict:
    from dataclasses import replace

    from evaluation.suites import run_synthetic
    from backend.reconstruct import reconstruct

    result = run_synthetic(n=n, detail=True, reconstruct_fn=lambda images, config: reconstruct(
        images, replace(config, device=GPU)))
    keys = ("index", "disp_corr", "disp_corr_skin", "dense_err_mm", "dense_coarse_err_mm",
            "vertex_err_narrow_mean_mm", "seconds")
    return {"faces": [{k: f.get(k) for k in keys} for f in result["per_item"]]}


def case_profile(lm: str | None, work: Path) -> dict:
    """Draft quality (the default's stages with fewer steps), GPU activity only: recording every
    CPU op of a default fit costs minutes."""
    from torch.profiler import ProfilerActivity, profile

    _run("grace_hopper", GPU, "draft", lm)  # warm
    activity = ProfilerActivity.CUDA if GPU.startswith("cuda") else ProfilerActivity.CPU
    with profile(activities=[activity]) as prof:
        head, wall = _run("grace_hopper", GPU, "draft", lm)
    stats = prof.key_averages()
    self_us = lambda e: getattr(e, "self_device_time_total", 0) or e.self_cpu_time_total  # noqa: E731
    top = sorted(stats, key=self_us, reverse=True)[:15]
    return {"quality": "draft", "wall_s": wall, "timings": head.timings,
            "busy_s": sum(self_us(e) for e in stats) / 1e6, "events": sum(e.count for e in stats),
            "top_ops": [{"op": e.key[:80], "count": e.count, "self_ms": self_us(e) / 1e3} for e in top]}


def case_syncs(lm: str | None, work: Path) -> dict:
    """Where a warm draft fit makes the CPU wait for the GPU: every synchronising CUDA call,
    counted by the line of our code that made it (``torch.cuda.set_sync_debug_mode("warn")``).
    In a launch-bound fit each one stops the CPU from queueing kernels ahead (docs/gpu.md: 1,277
    on an H200, 567 after caching the constants)."""
    import collections
    import warnings

    import torch

    if not GPU.startswith("cuda"):
        return {"skipped": "needs CUDA"}
    _run("grace_hopper", GPU, "draft", lm)  # warm
    sites: collections.Counter = collections.Counter()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, wall = _run("grace_hopper", GPU, "draft", lm)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    for w in caught:
        if "synchroniz" in str(w.message):
            sites[f"{Path(w.filename).name}:{w.lineno}"] += 1
    return {"quality": "draft", "wall_s": wall, "syncs": sum(sites.values()), "top_sites": sites.most_common(25)}


def _child(case: str, lm: str | None, work: Path, synthetic: int) -> dict:
    if case.startswith("photo_"):
        return case_photo(case[len("photo_"):], lm, work)
    if case == "cpu_grace_hopper":
        return case_cpu(lm, work)
    if case == "free":
        return case_free(lm, work)
    if case == "high":
        return case_high(lm, work)
    if case == "synthetic":
        return case_synthetic(synthetic)
    if case == "profile":
        return case_profile(lm, work)
    if case == "syncs":
        return case_syncs(lm, work)
    raise SystemExit(f"unknown case {case!r}")


def write_landmarks(path: Path) -> None:
    """Each package photo's detected landmarks (68,2 px) → JSON."""
    from backend.detect import detect_one
    from backend.samples import sample_photo

    doc = {name: np.asarray(detect_one(sample_photo(name)[1]).landmarks, float).tolist() for name in PHOTOS}
    path.write_text(json.dumps(doc))
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--landmarks", help="JSON {photo: 68×2 px} used in place of the detector")
    ap.add_argument("--write-landmarks", help="detect the package photos' landmarks into this JSON and exit")
    ap.add_argument("--cases", default="photo_grace_hopper,photo_astronaut,cpu_grace_hopper,free,high,"
                                       "synthetic,profile")
    ap.add_argument("--synthetic", type=int, default=4, help="synthetic faces (the suite's first N)")
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run of every case")
    ap.add_argument("--out", default="fit_cuda")
    ap.add_argument("--copy-to", help="also copy the result JSON into this folder")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.write_landmarks:
        write_landmarks(Path(args.write_landmarks))
        return 0
    if args.child:
        print(json.dumps(_child(args.child, args.landmarks, Path(args.work), args.synthetic)))
        return 0

    import torch

    from .common import write_result

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_cuda needs a CUDA device (--device cpu: a dry run on the CPU)")
    work = Path(tempfile.mkdtemp(prefix="bench_cuda_"))
    cases: dict[str, dict] = {}
    for case in args.cases.split(","):
        cmd = [sys.executable, "-m", "benchmarks.bench_cuda", "--child", case, "--work", str(work),
               "--synthetic", str(args.synthetic)] + (["--landmarks", args.landmarks] if args.landmarks else [])
        env = dict(os.environ, PHOTOHEAD_BENCH_GPU=args.device)
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            cases[case] = {"error": "\n".join(out.stderr.strip().splitlines()[-6:])}
        else:
            cases[case] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{case} ({time.perf_counter() - t:.0f} s): {json.dumps(cases[case])}", flush=True)
    path = write_result(args.out, {"cases": cases, "landmarks": "given (dlib, detected on the CPU machine)"
                                   if args.landmarks else "detected"}, device=args.device)
    if args.copy_to:
        shutil.copy(path, Path(args.copy_to) / path.name)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
