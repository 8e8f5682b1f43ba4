"""Reconstruction time and peak memory per photo by quality (issues 6, 7, 9).

    python -m benchmarks.bench_fit [--qualities draft,default] [--views 1,3] [--device cpu] [--threads N]

Each (quality, views) case runs in a fresh subprocess so peak RSS is its own, with the command
line's thread policy (``backend.threads``: one intra-op thread unless ``--threads``). Photo:
matplotlib's grace_hopper.jpg (multi-view: the photo and two mirrored/shifted copies, which
exercises the joint fit and blending; identity-consistent by construction).
Writes benchmarks/results/fit.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from .common import write_result

CHILD = r"""
import json, resource, sys, time
from backend.threads import apply_process_policy, fit_threads, set_intra_op_threads
apply_process_policy()  # as the command line: before torch loads
import numpy as np, torch
from backend.reconstruct import ReconstructConfig, reconstruct
from backend.samples import sample_photo
quality, views, device = sys.argv[1], int(sys.argv[2]), sys.argv[3]
set_intra_op_threads(fit_threads(int(sys.argv[4]) if sys.argv[4] != "cli" else None))
_, img = sample_photo("grace_hopper")
photos = [img, img[:, ::-1].copy(), np.roll(img, 20, axis=1)][:views]
t, c = time.perf_counter(), time.process_time()
head = reconstruct(photos, ReconstructConfig(quality=quality, device=device))
wall, cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "timings": head.timings, "metrics": head.metrics,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "threads": torch.get_num_threads()}))
"""


def run_case(quality: str, views: int, device: str, threads: str = "cli") -> dict:
    """One reconstruction in a fresh process with the command line's thread policy (``threads``:
    "cli" for its default count, or a number); the machine's load as it started is recorded."""
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, "-c", CHILD, quality, str(views), device, threads], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "loadavg_1m_before": load}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--qualities", default="draft,default")
    ap.add_argument("--views", default="1,3")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", default="cli", help="intra-op threads (default: the command line's, backend.threads)")
    ap.add_argument("--out", default="fit")
    args = ap.parse_args(argv)
    cases = {}
    targets = {"coarse_fit_default_1view_s": 10.0, "coarse_peak_rss_mb": 2048, "detail_default_s": 10.0,
               "three_views_vs_one": 2.5, "default_1view_s": 6.0}
    for q in args.qualities.split(","):
        for v in (int(x) for x in args.views.split(",")):
            cases[f"{q}_{v}view"] = res = run_case(q, v, args.device, args.threads)
            print(f"{q:8s} {v} view(s): {json.dumps(res)}", flush=True)
            # after every case: a long run that is stopped keeps what it measured
            write_result(args.out, {"cases": cases, "targets": targets}, device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
