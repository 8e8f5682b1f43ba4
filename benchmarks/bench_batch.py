"""Throughput of ``photohead reconstruct --each``: photos per second one by one, in batches
(:mod:`backend.batch`) and, on the CPU, in parallel processes; and how far a batched photo's
head is from its one-by-one head.

    python -m benchmarks.bench_batch --device cpu --photos 4 --batch-sizes 4 --qualities draft
    python -m benchmarks.bench_batch --device cuda --photos 32 --batch-sizes 8,32 --landmarks lm.json
    python -m benchmarks.bench_batch --device cpu --cli-jobs 1,2     # the command line's --jobs

The photos are grace_hopper and astronaut, shifted sideways by a few pixels each (``--photos``
distinct images; their landmarks shift with them). ``--landmarks`` (JSON {photo: 68×2 px},
``python -m benchmarks.bench_cuda --write-landmarks``) replaces the detector, for a GPU machine
without dlib's predictor. Per quality, in this process after one warm-up reconstruction:

- ``one_by_one``: :func:`backend.reconstruct.reconstruct` per photo (the warm single-photo time;
  ``--single`` N: the first N photos only);
- ``batch<B>``: :func:`backend.batch.reconstruct_each` with batch size B; ``agreement``: per
  photo, the batched head against its one-by-one head (vertex and displacement max / mean mm);
  on CUDA the peak device memory per photo;
- with ``--graphs-off`` also the one-by-one run with ``step_graphs=False`` (CUDA graphs' effect).

Times include texture and assembly, not writing the files; ``cpu_s_per_photo`` (this
process's CPU time) is the measure on a shared CPU, where wall times follow the load. ``--cli-jobs`` runs the whole
command in a fresh process per value (model loading included). Writes
``benchmarks/results/batch_<device>.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from backend.samples import sample_photo

from .common import write_result

BASES = ("grace_hopper", "astronaut")
TARGETS = {"gpu_draft_photos_per_s": 10.0, "gpu_default_photos_per_s": 3.0}


def make_photos(n: int, landmarks: dict[str, list] | None) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """``n`` distinct photos (the samples shifted right by 4 px steps) and their landmarks (None: detect)."""
    photos, lms = [], []
    for i in range(n):
        name = BASES[i % 2]
        shift = 4 * (i // 2)
        photos.append(np.ascontiguousarray(np.roll(sample_photo(name)[1], shift, axis=1)))
        lm = None if landmarks is None else np.asarray(landmarks[name], np.float64) + np.array([shift, 0.0])
        lms.append(lm)
    return photos, lms


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _arrays(head) -> tuple[np.ndarray, np.ndarray | None]:
    disp = None if head.displacement is None else np.asarray(head.displacement, np.float64)
    return np.asarray(head.vertices, np.float64), disp


def agreement(a, b) -> dict:
    """Vertex distance and displacement difference (mm) of two heads of one photo."""
    (va, da), (vb, db) = _arrays(a), _arrays(b)
    dv = np.linalg.norm(va - vb, axis=-1)
    out = {"vertex_max_mm": float(dv.max()), "vertex_mean_mm": float(dv.mean()),
           "identical_bits": bool(np.array_equal(va, vb) and (da is None or np.array_equal(da, db)))}
    if da is not None:
        dd = np.abs(da - db)
        out.update(displacement_max_mm=float(dd.max()), displacement_mean_mm=float(dd.mean()))
    return out


def run_quality(quality: str, device: str, photos, lms, batch_sizes: list[int], graphs_off: bool,
                single: int | None = None) -> dict:
    """One-by-one runs of the first ``single`` photos (all: None) and batched runs of ``photos``
    at ``quality`` in this process."""
    import torch

    from backend.batch import reconstruct_each
    from backend.reconstruct import ReconstructConfig, reconstruct

    config = ReconstructConfig(quality=quality, device=device)
    reconstruct([photos[0]], config, landmarks=[lms[0]])  # warm-up: CUDA start, caches, the model file
    res: dict = {}
    heads = []
    _sync(device)
    t, c = time.perf_counter(), time.process_time()
    for photo, lm in list(zip(photos, lms))[:single]:
        heads.append(reconstruct([photo], config, landmarks=[lm]))
    _sync(device)
    wall = time.perf_counter() - t
    res["one_by_one"] = {"photos": len(heads), "wall_s": wall, "photos_per_s": len(heads) / wall,
                         "seconds_per_photo": wall / len(heads), "cpu_s_per_photo": (time.process_time() - c) / len(heads)}
    print(f"{quality} one by one: {json.dumps(res['one_by_one'])}", flush=True)
    if graphs_off:
        off = ReconstructConfig(quality=quality, device=device, step_graphs=False)
        _sync(device)
        t = time.perf_counter()
        plain = [reconstruct([photo], off, landmarks=[lm]) for photo, lm in zip(photos[:2], lms[:2])]
        _sync(device)
        wall = time.perf_counter() - t
        res["one_by_one_graphs_off"] = {"seconds_per_photo": wall / len(plain),
                                        "agreement": [agreement(h, p) for h, p in zip(heads, plain)]}
        print(f"{quality} graphs off: {json.dumps(res['one_by_one_graphs_off'])}", flush=True)
    for B in batch_sizes:
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        _sync(device)
        t, c = time.perf_counter(), time.process_time()
        out = reconstruct_each(photos, config, batch_size=B, landmarks=lms)
        _sync(device)
        wall = time.perf_counter() - t
        failed = [str(h) for h in out if not hasattr(h, "vertices")]
        case = {"batch_size": B, "wall_s": wall, "photos_per_s": len(photos) / wall, "failed": failed,
                "cpu_s_per_photo": (time.process_time() - c) / len(photos),
                "agreement": [agreement(h, one) for h, one in zip(out, heads) if hasattr(h, "vertices")]}
        if device.startswith("cuda"):
            case["peak_gib_per_photo"] = torch.cuda.max_memory_allocated() / 2**30 / min(B, len(photos))
        worst = {k: max(a[k] for a in case["agreement"]) for k in case["agreement"][0] if k.endswith("_mm")} \
            if case["agreement"] else {}
        case["agreement_worst"] = worst
        res[f"batch{B}"] = case
        print(f"{quality} batch {B}: {wall:.1f} s, {case['photos_per_s']:.2f} photos/s, worst {json.dumps(worst)}",
              flush=True)
    return res


def run_cli(photos: list[np.ndarray], out: Path, quality: str, jobs: int, device: str) -> dict:
    """Wall time of one ``reconstruct --each --jobs`` command and what its batch.json says."""
    files = []
    for i, img in enumerate(photos):
        files.append(out.parent / f"photo{i:03d}.png")
        if not files[-1].exists():
            Image.fromarray(img).save(files[-1])
    cmd = [sys.executable, "-m", "backend.cli", "reconstruct", *map(str, files), "-o", str(out), "--each",
           "--jobs", str(jobs), "--quality", quality, "--device", device, "-q"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
    batch = json.loads((out / "batch.json").read_text())
    return {"wall_s": wall, "photos_per_s": len(photos) / wall, "jobs": batch["jobs"],
            "threads_per_job": batch["threads_per_job"], "failed": batch["failed"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--qualities", default="draft,default")
    ap.add_argument("--batch-sizes", default="4", help="comma-separated batch sizes (0: none)")
    ap.add_argument("--single", type=int, help="photos run one by one (default: all; agreement on these)")
    ap.add_argument("--landmarks", help="JSON {photo: 68×2 px} used in place of the detector")
    ap.add_argument("--graphs-off", action="store_true", help="also time one-by-one fits without CUDA graphs")
    ap.add_argument("--cli-jobs", default="", help="also run the command line's --each with these --jobs values")
    ap.add_argument("--out", help="result name (default batch_<device>)")
    args = ap.parse_args(argv)
    landmarks = json.loads(Path(args.landmarks).read_text()) if args.landmarks else None
    photos, lms = make_photos(args.photos, landmarks)
    sizes = [int(b) for b in args.batch_sizes.split(",") if int(b) > 0]
    qualities = {q: run_quality(q, args.device, photos, lms, sizes, args.graphs_off, args.single)
                 for q in args.qualities.split(",")}
    cli = {}
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in (int(j) for j in args.cli_jobs.split(",") if j):
            for q in args.qualities.split(","):
                cli[f"{q}_jobs{jobs}"] = res = run_cli(photos, Path(tmp) / f"out_{q}_{jobs}", q, jobs, args.device)
                print(f"{q} --jobs {jobs}: {json.dumps(res)}", flush=True)
    write_result(args.out or f"batch_{args.device}", {
        "photos": args.photos, "landmarks": "given" if landmarks else "detected", "qualities": qualities,
        "cli": cli, "targets": TARGETS,
        "conditions": "in-process, after one warm-up reconstruction; texture and assembly included, file "
                      "writing not; agreement = batched head vs the same photo's one-by-one head",
    }, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
