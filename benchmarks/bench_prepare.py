"""Preprocessing speed of ``photohead train prepare`` (photos/s per worker process).

    python -m benchmarks.bench_prepare [--n 120] [--workers 1,2] [--photos ../shared/data/faces_dev/images]

Prepares ``--n`` photos of the dev set (sorted names, after one warm-up photo) into a fresh
cache at 224², once per worker count, with the default dlib detector, one torch/OpenMP thread per
process. The one-worker run is in-process and warm (imports and dlib's models loaded on the
warm-up photo): steady state per core; it also times the detector (detection + 68 landmarks)
against the rest (decoding, alignment warp, skin mask, writing). Runs with more workers include
starting the processes and loading the models in each. Writes ``benchmarks/results/prepare.json``.
The dev photos are research-only: the cache goes to a temporary folder and is deleted.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from .common import write_result

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces_dev" / "images"


class _TimedDetect:
    """The default detector, timing its calls (in-process runs only)."""

    def __init__(self):
        from training.data import _default_detect

        self.fn, self.seconds, self.calls = _default_detect("dlib"), 0.0, 0

    def __call__(self, image):
        t = time.perf_counter()
        out = self.fn(image)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=DEV)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from training.data import PreprocessSettings, find_images
    from training.prepare import prepare_cache

    files = [str(p) for p in find_images(args.photos)][: args.n + 1]
    warm, files = files[0], files[1:]
    runs = []
    for w in (int(x) for x in args.workers.split(",")):
        detect = None
        if w == 1:  # in-process: imports and dlib's models loaded on a photo left out of the timing
            from training.data import _read_image, process_image

            detect = _TimedDetect()
            process_image(_read_image(Path(warm)), detect, PreprocessSettings(crop_size=args.crop))
            detect.seconds, detect.calls = 0.0, 0
        st = PreprocessSettings(crop_size=args.crop, workers=w, shard_size=max(1, -(-len(files) // (4 * w))))
        with tempfile.TemporaryDirectory() as cache:
            t = time.perf_counter()
            report = prepare_cache(files, cache, st, detect_fn=detect)
            seconds = time.perf_counter() - t
        run = {"workers": w, "photos": len(files), "kept": report["kept"], "seconds": round(seconds, 2),
               "photos_per_s": round(len(files) / seconds, 2), "photos_per_s_per_worker": round(len(files) / seconds / w, 2)}
        if detect is not None:
            run["detect_s_per_photo"] = round(detect.seconds / max(detect.calls, 1), 4)
            run["other_s_per_photo"] = round((seconds - detect.seconds) / len(files), 4)
        runs.append(run)
        print(run, flush=True)
    if not args.no_write:
        write_result("prepare", {"source": f"first {len(files)} faces_dev photos, {args.crop}² crops, dlib", "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
