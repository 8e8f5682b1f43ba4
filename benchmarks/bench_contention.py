"""A fit beside a CPU-bound neighbour: how much slower than alone (issue 27).

    python -m benchmarks.bench_contention [--quality default] [--repeats 3] [--policies one] [--alone-policies on,off]

For each thread policy (``one``: what the command line and the add-on do,
:func:`backend.threads.apply_process_policy` before torch loads and
:data:`backend.threads.FIT_THREADS` intra-op threads; ``on``: that wait policy on one thread per
core; ``off``: torch's OpenMP defaults; ``spinN``: torch's defaults with ``GOMP_SPINCOUNT=N``), the grace_hopper
reconstruction runs in a fresh process alone, then beside each neighbour: ``busy`` (one
process spinning in a Python loop) and ``fit`` (another reconstruction, restarted until the
measured one ends). The ratio is the fit's wall time beside the neighbour over its time alone;
one neighbour on a 2-core machine costs a fair share when the ratio stays near 2 or below.
Writes ``benchmarks/results/contention.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

from .common import write_result

CHILD = r"""
import json, sys, time
import os
policy, quality = sys.argv[1], sys.argv[2]
if policy in ("on", "one"):
    from backend.threads import apply_process_policy
    apply_process_policy()
elif policy.startswith("spin"):
    os.environ["GOMP_SPINCOUNT"] = policy[4:]
import torch
if policy == "one":
    from backend.threads import FIT_THREADS
    torch.set_num_threads(FIT_THREADS)
from backend.reconstruct import ReconstructConfig, reconstruct
from backend.samples import sample_photo
_, img = sample_photo("grace_hopper")
t = time.perf_counter(); c = time.process_time()
head = reconstruct([img], ReconstructConfig(quality=quality, device="cpu"))
print(json.dumps({"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                  "threads": torch.get_num_threads(), "timings": head.timings}))
"""

BUSY = "while True:\n    pass\n"
FIT_LOOP = ("import subprocess, sys\n"
            "while True:\n"
            "    subprocess.run([sys.executable, '-c'] + sys.argv[1:], stdout=subprocess.DEVNULL)\n")


def _fit(policy: str, quality: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, policy, quality], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _neighbour(kind: str, policy: str, quality: str) -> subprocess.Popen | None:
    if kind == "alone":
        return None
    if kind == "busy":
        args = [sys.executable, "-c", BUSY]
    else:  # another reconstruction, under the same policy, restarted until killed
        args = [sys.executable, "-c", FIT_LOOP, CHILD, policy, quality]
    # Own session, so that killing the group also ends a reconstruction the loop has started.
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(3.0 if kind == "fit" else 0.5)  # let the neighbour reach its busy part
    return proc


def measure(policy: str, neighbour: str, quality: str, repeats: int) -> dict:
    """Wall and CPU seconds of ``repeats`` fits under one policy beside one neighbour."""
    runs, loads = [], []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0])  # the machine's load as the run starts (1-minute average)
        proc = _neighbour(neighbour, policy, quality)
        try:
            runs.append(_fit(policy, quality))
        finally:
            if proc is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    walls = [r["wall_s"] for r in runs]
    return {"wall_s": statistics.median(walls), "wall_runs_s": walls, "loadavg_1m_before_runs": loads,
            "cpu_s": statistics.median(r["cpu_s"] for r in runs), "threads": runs[0]["threads"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quality", default="default")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--policies", default="one", help="policies measured alone and beside each neighbour")
    ap.add_argument("--alone-policies", default="on,off",
                    help="policies measured alone only (torch's spinning threads take minutes beside a busy loop)")
    ap.add_argument("--neighbours", default="busy,fit")
    ap.add_argument("--out", default="contention")
    args = ap.parse_args(argv)
    cases: dict[str, dict] = {}
    alone_only = [p for p in args.alone_policies.split(",") if p]
    for policy in [p for p in args.policies.split(",") if p] + alone_only:
        alone = measure(policy, "alone", args.quality, args.repeats)
        cases[f"{policy}_alone"] = alone
        print(f"policy {policy:3s} alone: {alone['wall_s']:.1f} s", flush=True)
        for neighbour in ([] if policy in alone_only else args.neighbours.split(",")):
            res = measure(policy, neighbour, args.quality, args.repeats)
            res["ratio"] = res["wall_s"] / alone["wall_s"]
            cases[f"{policy}_{neighbour}"] = res
            print(f"policy {policy:3s} beside {neighbour:4s}: {res['wall_s']:.1f} s ({res['ratio']:.2f}x)", flush=True)
            _write(args, cases)  # after every case: a long run that is stopped keeps what it measured
        _write(args, cases)
    return 0


def _write(args: argparse.Namespace, cases: dict) -> None:
    write_result(args.out, {"quality": args.quality, "repeats": args.repeats, "cases": cases,
                            "targets": {"ratio_one_neighbour_2_cores": 2.2}})


if __name__ == "__main__":
    sys.exit(main())
