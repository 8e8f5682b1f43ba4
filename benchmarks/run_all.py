"""Run every benchmark (``make bench``); each writes benchmarks/results/<name>.json, then the
timing report collects them: ``photohead evaluate timing``."""
from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("bench_render", "bench_detect", "bench_identity", "bench_facemodel_io", "bench_multiview", "bench_fit", "bench_addon", "bench_train", "bench_predict",
              "bench_mean_face")


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        try:
            module.main([]) if "argv" in module.main.__code__.co_varnames else module.main()
        except Exception as exc:  # report and go on with the other benchmarks
            print(f"{name} failed: {exc!r}", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
