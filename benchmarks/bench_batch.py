"""Throughput of ``photohead reconstruct --each``: photos per second, one by one and in parallel.

    python -m benchmarks.bench_batch [--photos 4] [--quality draft] [--jobs 1,2]

The photos are grace_hopper and astronaut, alternately mirrored and shifted so no two are the
same file. Each ``--jobs`` value runs the whole batch in a fresh process (the command line's own
thread policy and thread split); the throughput counts the whole command, model loading included.
Writes ``benchmarks/results/batch_<device>.json``.
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


def write_photos(folder: Path, n: int) -> list[Path]:
    """``n`` distinct photos of the two package samples (mirrored / shifted variants)."""
    base = [sample_photo("grace_hopper")[1], sample_photo("astronaut")[1]]
    paths = []
    for i in range(n):
        img = base[i % 2]
        if (i // 2) % 2:
            img = img[:, ::-1]
        img = np.roll(img, 8 * (i // 4), axis=1)
        paths.append(folder / f"photo{i:03d}.png")
        Image.fromarray(np.ascontiguousarray(img)).save(paths[-1])
    return paths


def run_batch(photos: list[Path], out: Path, quality: str, jobs: int, device: str) -> dict:
    """Wall time of one ``reconstruct --each`` command and what its batch.json says."""
    cmd = [sys.executable, "-m", "backend.cli", "reconstruct", *map(str, photos), "-o", str(out), "--each",
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
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--quality", default="draft")
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        photos = write_photos(Path(tmp), args.photos)
        for jobs in (int(j) for j in args.jobs.split(",")):
            cases[f"{args.quality}_jobs{jobs}"] = res = run_batch(photos, Path(tmp) / f"out{jobs}", args.quality,
                                                                  jobs, args.device)
            print(f"{args.quality} jobs={jobs}: {json.dumps(res)}", flush=True)
    targets = {"gpu_draft_photos_per_s": 10.0, "gpu_default_photos_per_s": 3.0}
    write_result(f"batch_{args.device}", {"photos": args.photos, "quality": args.quality, "cases": cases,
                                          "targets": targets}, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
