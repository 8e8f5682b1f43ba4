"""``photohead evaluate``: accuracy and timing reports.

- ``photohead evaluate synthetic [--n N] [--detail]``: random faces with known shape/pose/light,
  rendered and reconstructed (vertex error mm, landmark NME, yaw error).
- ``photohead evaluate landmarks DIR [--n N]``: 68-point NME (inter-ocular and box) on annotated
  photos (``landmarks.json`` or per-image ``.pts``/``.json``), failure rate, yaw table.
- ``photohead evaluate scans DIR [--n N] [--radius MM] [--rigid]``: scan-to-mesh error (MICC
  protocol; layout in ``backend.evaluate.suites``).
- ``photohead evaluate timing [--results DIR]``: the benchmark results with machine info.

Common options: ``--out DIR`` (default ``out/eval/<suite>``), ``--quality``, ``--seed``. Each
suite writes ``results.json``, ``report.md`` and plots into ``--out`` and prints the summary.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


SCANS_LAYOUT = """Scan-to-mesh error (MICC protocol: crop 95 mm around the nose tip, landmark-initialised
ICP with isotropic scale, point-to-point and point-to-plane distances in mm).

Folder layout:
  DIR/<subject>/scan.obj    ground-truth scan in millimetres
  DIR/<subject>/scan.json   optional {"nose_tip": [x,y,z], "landmarks68": [[x,y,z], ...]}
  DIR/<subject>/head.npz    a saved prediction, or else photos (*.jpg, *.png) to reconstruct
"""


def _progress(fraction: float, message: str) -> None:
    sys.stderr.write(f"\r[{100 * fraction:5.1f}%] {message}\033[K")
    sys.stderr.flush()


def _finish(results: dict, out: Path, title: str) -> int:
    from ..evaluate.report import write_report

    sys.stderr.write("\n")
    written = write_report(results, out, title)
    width = max((len(k) for k in results.get("summary", {})), default=0)
    for key, value in results.get("summary", {}).items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {text}")
    print(f"report: {written['markdown']}")
    return 0


def _synthetic(args: argparse.Namespace) -> int:
    from ..evaluate.suites import run_synthetic

    results = run_synthetic(n=args.n or 10, quality=args.quality, seed=args.seed, detail=args.detail,
                            progress=_progress)
    return _finish(results, args.out or Path("out/eval/synthetic"), "Synthetic faces")


def _landmarks(args: argparse.Namespace) -> int:
    from ..evaluate.suites import run_landmarks

    results = run_landmarks(args.dir, n=args.n, quality=args.quality, seed=args.seed, progress=_progress)
    return _finish(results, args.out or Path("out/eval/landmarks"), f"Landmarks: {args.dir}")


def _scans(args: argparse.Namespace) -> int:
    from ..evaluate.suites import run_scans

    results = run_scans(args.dir, n=args.n, quality=args.quality, seed=args.seed, radius_mm=args.radius,
                        with_scale=not args.rigid, progress=_progress)
    return _finish(results, args.out or Path("out/eval/scans"), f"Scans: {args.dir}")


def _timing(args: argparse.Namespace) -> int:
    from ..evaluate.suites import run_timing

    return _finish(run_timing(args.results), args.out or Path("out/eval/timing"), "Timing")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=_positive_int, default=None, help="number of items (default: synthetic 10, others all)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default out/eval/<suite>)")
    p.add_argument("--quality", choices=("draft", "default", "high"), default="default")
    p.add_argument("--seed", type=int, default=0)


def register(subparsers) -> None:
    """Add ``evaluate`` and its suites to the ``photohead`` parser."""
    ev = subparsers.add_parser("evaluate", help="accuracy and timing reports",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    suites = ev.add_subparsers(dest="suite", required=True)
    p = suites.add_parser("synthetic", help="random rendered faces with known answers")
    _common(p)
    p.add_argument("--detail", action="store_true", help="add UV detail and evaluate the detail stage")
    p.set_defaults(handler=_synthetic)
    p = suites.add_parser("landmarks", help="68-point NME on annotated photos")
    p.add_argument("dir", type=Path, help="folder with photos and landmarks.json or .pts files")
    _common(p)
    p.set_defaults(handler=_landmarks)
    p = suites.add_parser("scans", help="scan-to-mesh error (MICC protocol)", description=SCANS_LAYOUT,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", type=Path, help="folder of <subject>/scan.obj (+ head.npz or photos)")
    _common(p)
    p.add_argument("--radius", type=float, default=95.0, help="crop radius around the nose tip, mm")
    p.add_argument("--rigid", action="store_true", help="ICP without isotropic scale")
    p.set_defaults(handler=_scans)
    p = suites.add_parser("timing", help="collect benchmarks/results/*.json")
    _common(p)
    p.add_argument("--results", type=Path, default=None, help="benchmark results folder")
    p.set_defaults(handler=_timing)
