"""``photohead evaluate``: accuracy and timing reports.

- ``photohead evaluate synthetic [--n N] [--detail] [--landmarks truth|detector] [--scene
  classic|realistic] [--detector D]``: random faces with known shape/pose/light, rendered and
  reconstructed (vertex error mm beside the mean face's, landmark error in 224²-crop pixels and
  NME, yaw error, displacement correlation with ``--detail``).
- ``photohead evaluate landmarks DIR [--n N] [--sample random] [--time-budget S] [--examples]``:
  68-point NME (inter-ocular and box) of the fit and of the detector on annotated photos
  (``landmarks.json`` or per-image ``.pts``/``.json``), failure rate, region and yaw tables,
  fit-vs-detector agreement.
- ``photohead evaluate scans DIR [--n N] [--radius MM] [--rigid]``: scan-to-mesh error (MICC
  protocol; layout in ``evaluation.suites``).
- ``photohead evaluate depth DIR [--n N] [--synthetic N]``: depth error against ground-truth depth
  registered to each photo (FRGC2 protocol: min-max scaled, fixed mask; layout in
  ``evaluation.depth``).
- ``photohead evaluate timing [--results DIR]``: the benchmark results with machine info.

Common options: ``--out DIR`` (default ``out/eval/<suite>``), ``--quality``, ``--seed``;
synthetic, landmarks and depth also take ``--mode fit|predict|hybrid --checkpoints DIR`` (the
trained networks, docs/training.md) and run the same protocol with them. Each
suite writes ``results.json``, ``report.md`` and plots into ``--out`` and prints the summary.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backend.detectors import DEFAULT_DETECTOR, DETECTOR_NAMES
from backend.quality import DEFAULT, QUALITY_NAMES

from .readers import DEPTH_LAYOUT
from .report import write_report

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


def _set_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None):
        import torch  # lazy: photohead's parser stays free of torch

        torch.set_num_threads(args.threads)


def _finish(results: dict, out: Path, title: str) -> int:
    sys.stderr.write("\n")
    results.setdefault("command", "photohead " + " ".join(sys.argv[1:]))
    written = write_report(results, out, title)
    width = max((len(k) for k in results.get("summary", {})), default=0)
    for key, value in results.get("summary", {}).items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {text}")
    print(f"report: {written['markdown']}")
    return 0


def _synthetic(args: argparse.Namespace) -> int:
    _set_threads(args)
    from .suites import run_synthetic  # lazy: photohead's parser stays free of torch

    _check_mode(args)
    results = run_synthetic(n=args.n or 10, quality=args.quality, seed=args.seed, detail=args.detail,
                            landmarks=args.landmarks, time_budget_s=args.time_budget, progress=_progress,
                            mode=args.mode, checkpoints=args.checkpoints, scene=args.scene, detector=args.detector,
                            focal=args.focal)
    return _finish(results, args.out or Path("out/eval/synthetic"), "Synthetic faces")


def _landmarks(args: argparse.Namespace) -> int:
    _set_threads(args)
    from .suites import run_landmarks  # lazy: photohead's parser stays free of torch

    _check_mode(args)
    results = run_landmarks(args.dir, n=args.n, quality=args.quality, seed=args.seed, sample=args.sample,
                            time_budget_s=args.time_budget, examples=args.examples,
                            per_item=not args.aggregate_only, progress=_progress, detector=args.detector,
                            mode=args.mode, checkpoints=args.checkpoints)
    return _finish(results, args.out or Path("out/eval/landmarks"), f"Landmarks: {Path(args.dir).name}")


def _scans(args: argparse.Namespace) -> int:
    _set_threads(args)
    from .suites import run_scans  # lazy: photohead's parser stays free of torch

    expected = None
    if args.known_answer:
        from backend.facemodel import load_default  # lazy: photohead's parser stays free of torch

        from .synthetic import write_known_answer_scans  # lazy: photohead's parser stays free of torch

        expected = write_known_answer_scans(load_default(), args.dir, seed=args.seed)
    results = run_scans(args.dir, n=args.n, quality=args.quality, seed=args.seed, radius_mm=args.radius,
                        with_scale=not args.rigid, progress=_progress)
    if expected is not None:
        results["expected"] = expected
        results["description"] += (" Known-answer check of the harness (evaluation.synthetic."
                                   "write_known_answer_scans: the mean head vs itself under known similarities), "
                                   "not a reconstruction result.")
    return _finish(results, args.out or Path("out/eval/scans"), f"Scans: {args.dir}")


def _depth(args: argparse.Namespace) -> int:
    _set_threads(args)
    from .depth import run_depth, write_synthetic_depth_set  # lazy: photohead's parser stays free of torch

    if args.synthetic:
        from backend.facemodel import load_default  # lazy: photohead's parser stays free of torch

        write_synthetic_depth_set(load_default(), args.dir, n=args.synthetic, seed=args.seed)
    _check_mode(args)
    results = run_depth(args.dir, n=args.n, quality=args.quality, seed=args.seed, progress=_progress,
                        mode=args.mode, checkpoints=args.checkpoints)
    if args.synthetic:
        results["description"] += (f" Subjects: {args.synthetic} synthetic renders of the face model with their true "
                                   "depth (evaluation.depth.write_synthetic_depth_set), fitted from their true 68 landmarks "
                                   "(their photo.pts), with a fixed mask of the landmark face outline; not FRGC2.")
    return _finish(results, args.out or Path("out/eval/depth"), f"Depth: {args.dir}")


def _timing(args: argparse.Namespace) -> int:
    from .suites import run_timing  # lazy: photohead's parser stays free of torch

    return _finish(run_timing(args.results), args.out or Path("out/eval/timing"), "Timing")


def _check_mode(args: argparse.Namespace) -> None:
    from .suites import check_mode  # lazy: photohead's parser stays free of torch

    check_mode(args.mode, args.checkpoints)


def _network(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=("fit", "predict", "hybrid"), default="fit",
                   help="reconstruct by fitting (default) or with the trained networks (predict, hybrid)")
    p.add_argument("--checkpoints", type=Path, default=None, metavar="DIR",
                   help="folder with coarse.pt (and optionally detail.pt) for --mode predict/hybrid")


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
    p.add_argument("--quality", choices=QUALITY_NAMES, default=DEFAULT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="torch intra-op threads (default: torch's); 1 is far faster on a machine shared with other jobs")


def register(subparsers) -> None:
    """Add ``evaluate`` and its suites to the ``photohead`` parser."""
    ev = subparsers.add_parser("evaluate", help="accuracy and timing reports",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    suites = ev.add_subparsers(dest="suite", required=True)
    p = suites.add_parser("synthetic", help="random rendered faces with known answers")
    _common(p)
    _network(p)
    p.add_argument("--detail", action="store_true", help="add UV detail and evaluate the detail stage")
    p.add_argument("--landmarks", choices=("truth", "detector"), default="truth",
                   help="landmarks given to the fit: the true ones (default: measures the fit) or the detector's "
                        "on the render")
    p.add_argument("--scene", choices=("classic", "realistic", "realistic_cycles"), default=None,
                   help="renders: classic (bald, no eyes, orthographic, one white light), realistic (eyes, teeth, "
                        "hair, a perspective lens, coloured lights, busy background) or realistic_cycles (the same, "
                        "path-traced by Blender's Cycles through bpy); default realistic with --landmarks detector, "
                        "classic otherwise")
    p.add_argument("--detector", choices=DETECTOR_NAMES, default=DEFAULT_DETECTOR,
                   help="with --landmarks detector: the reconstruction's landmark detector")
    p.add_argument("--focal", choices=("known", "unknown"), default=None,
                   help="unknown: the renders carry no lens (the reconstruction estimates one); known: each render "
                        "carries its true lens, as a photo's EXIF (default: known for orthographic scenes, unknown "
                        "for perspective ones)")
    p.add_argument("--time-budget", type=float, default=None, metavar="S",
                   help="stop starting new faces after S seconds (the report says how many ran)")
    p.set_defaults(handler=_synthetic)
    p = suites.add_parser("landmarks", help="68-point NME on annotated photos")
    p.add_argument("dir", type=Path, help="folder with photos and landmarks.json or .pts files")
    _common(p)
    _network(p)
    p.add_argument("--sample", choices=("first", "random"), default="first",
                   help="which --n photos: the first by name or a random sample (--seed)")
    p.add_argument("--time-budget", type=float, default=None, metavar="S",
                   help="stop starting new photos after S seconds (the report says how many ran)")
    p.add_argument("--examples", action="store_true",
                   help="also write landmark overlays of the photos (off: keep research-only photos out of reports)")
    p.add_argument("--detector", choices=DETECTOR_NAMES, default=DEFAULT_DETECTOR,
                   help="the reconstruction's landmark detector (face_alignment, mediapipe: their weights on disk)")
    p.add_argument("--aggregate-only", action="store_true",
                   help="no per-photo rows in results.json (for reports published from research-only data)")
    p.set_defaults(handler=_landmarks)
    p = suites.add_parser("scans", help="scan-to-mesh error (MICC protocol)", description=SCANS_LAYOUT,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", type=Path, help="folder of <subject>/scan.obj (+ head.npz or photos)")
    _common(p)
    p.add_argument("--radius", type=float, default=95.0, help="crop radius around the nose tip, mm")
    p.add_argument("--rigid", action="store_true", help="ICP without isotropic scale")
    p.add_argument("--known-answer", action="store_true",
                   help="first write synthetic scans with known answers into DIR (checks the harness itself)")
    p.set_defaults(handler=_scans)
    p = suites.add_parser("depth", help="depth error against registered ground truth (FRGC2 protocol)",
                          description="Depth error (FRGC2 protocol as the paper reports it: the prediction's depth "
                                      "min-max scaled to the ground truth inside a fixed mask).\nFolder layout:\n"
                                      + DEPTH_LAYOUT, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", type=Path, help="folder of <subject>/depth.npy or *.abs (+ one photo or head.npz)")
    _common(p)
    _network(p)
    p.add_argument("--synthetic", type=_positive_int, default=None, metavar="N",
                   help="first write N synthetic subjects (renders of the face model with their true depth) into DIR")
    p.set_defaults(handler=_depth)
    p = suites.add_parser("timing", help="collect benchmarks/results/*.json")
    _common(p)
    p.add_argument("--results", type=Path, default=None, help="benchmark results folder")
    p.set_defaults(handler=_timing)
