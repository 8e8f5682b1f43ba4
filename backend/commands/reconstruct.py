"""``photohead reconstruct PHOTO [PHOTO ...] -o OUT``: photos → head.obj/.mtl, albedo.png, head.glb,
params.json, preview.png (and head.blend with ``--blend``). Several photos are one person
(multi-view); with ``--each`` every photo is its own head in ``OUT/<photo name>/`` (a batch: a
photo that fails is reported and skipped, ``OUT/batch.json`` lists what happened to each)."""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..errors import PhotoheadError
from ..export import write_outputs
from ..io_utils import atomic_write_text
from ..detectors import DEFAULT_DETECTOR, DETECTOR_NAMES, DETECTORS
from ..quality import DEFAULT, QUALITY_NAMES
from ..threads import apply_process_policy, fit_threads, set_intra_op_threads
from ..validate import check_face_index, check_focal_35mm, check_output_dir, check_photos, estimate_output_bytes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="reconstruct a head from one or more photos of one person")
    p.add_argument("photos", nargs="*", help="photo files (JPEG/PNG/TIFF...); several photos = multi-view")
    p.add_argument("-o", "--out", required=True, help="output folder (written atomically)")
    p.add_argument("--sample", choices=("grace_hopper", "astronaut"), help="use a package-shipped sample photo")
    p.add_argument("--mode", default="fit", choices=("fit", "predict", "hybrid"))
    p.add_argument("--quality", default=DEFAULT, choices=QUALITY_NAMES)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--detail-mesh-levels", type=int, choices=(0, 1, 2, 3),
                   help="head_detailed.obj: split each coarse triangle into 4^N (default: from the detail map's "
                        "resolution, 2 at default quality = 357k triangles; 3 = 1.4 M, for high quality's 512² map)")
    p.add_argument("--no-cuda-graphs", action="store_true",
                   help="CUDA: run the fits' steps one kernel at a time instead of replaying them as CUDA graphs")
    p.add_argument("--nondeterministic", action="store_true",
                   help="CUDA: skip what makes runs bit-identical (faster; runs then differ by ~0.2 mm)")
    p.add_argument("--model", help="face model file (default: ICT-FaceKit on the model search path)")
    p.add_argument("--face", type=int, default=0, help="which detected face to use (0 = most confident)")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTOR_NAMES,
                   help="landmark detector: " + "; ".join(f"{k}: {v}" for k, v in DETECTORS.items()) +
                        f" (default {DEFAULT_DETECTOR})")
    p.add_argument("--detector-weights", help="face_alignment: folder with 2DFAN4*.zip and s3fd*.pth "
                                              "(default: torch hub's checkpoints); mediapipe: folder with its "
                                              ".tflite files (default: mediapipe/ on the model search path)")
    p.add_argument("--focal-35mm", metavar="MM",
                   help="the photos' 35-mm-equivalent focal length (e.g. 26 for a phone's main camera; inf: "
                        "orthographic; default: each photo's EXIF, else orthographic)")
    p.add_argument("--no-detail", action="store_true", help="skip the detail (displacement) stage")
    p.add_argument("--no-identity", action="store_true", help="fit without the identity loss L_id")
    p.add_argument("--per-view-expression", action="store_true", help="multi-view: one expression per photo")
    p.add_argument("--labels", help="comma-separated view labels, one per photo (front,left,right...)")
    p.add_argument("--checkpoints", help="folder with coarse.pt/detail.pt for --mode predict/hybrid")
    p.add_argument("--tune-unet", action="store_true",
                   help="hybrid mode: the detail stage fine-tunes the U-Net's weights on the photos instead of "
                        "optimising the displacement map it predicts")
    p.add_argument("--blend", action="store_true", help="also write OUT/head.blend (needs the bpy module)")
    p.add_argument("--each", action="store_true",
                   help="batch: reconstruct every photo on its own into OUT/<photo name>/ (failures are skipped and "
                        "listed in OUT/batch.json; exit code 1 if some failed, 2 if all did)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for the fit (default: $PHOTOHEAD_THREADS, else 1: a fit gains little from "
                        "more, and one thread shares the machine fairly)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="--each on the CPU: photos reconstructed in parallel (default: one per core, "
                        "as memory allows); each job gets its share of the cores")
    p.add_argument("--batch-size", type=int, metavar="B",
                   help="--each in fit mode: photos fitted together as one batch (default on a GPU: as its free "
                        "memory allows, up to 32; on the CPU photos run in parallel processes instead)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(handler=run)


def _progress_printer(quiet: bool):
    last = [-1]
    tty = sys.stderr.isatty()

    def progress(fraction: float, message: str) -> None:
        if quiet:
            return
        pct = int(fraction * 100)
        if tty and pct != last[0]:
            print(f"\r[{pct:3d}%] {message:<60}", end="", file=sys.stderr, flush=True)
        elif not tty and pct // 10 != last[0] // 10:
            print(f"[{pct:3d}%] {message}", file=sys.stderr, flush=True)
        last[0] = pct

    return progress


def run(args: argparse.Namespace) -> int:
    from ..reconstruct import ReconstructConfig  # lazy: torch loads after cli.main's thread policy
    from ..samples import sample_photo  # lazy: matplotlib and scikit-image load only for --sample

    images: list = list(args.photos)
    if args.sample:
        images.append(sample_photo(args.sample)[1])
    if not images:
        raise PhotoheadError("no photo given: pass photo files or --sample grace_hopper")
    # before any work (backend.validate): where the results go, --face, the photos
    need = estimate_output_bytes(args.quality, 1 if args.each else len(images), not args.no_detail)
    check_output_dir(args.out, need * (len(images) if args.each else 1), "batch folder" if args.each else "output folder")
    check_face_index(args.face)
    focal_35mm = check_focal_35mm(args.focal_35mm)
    if not args.each:  # --each names and skips a bad photo (reconstruct checks each one)
        check_photos(images, decode=False)  # headers only: each photo is decoded once, before its detection
    try:
        threads = fit_threads(args.threads)
    except ValueError as exc:
        raise PhotoheadError(str(exc)) from None
    if threads is not None and threads < 1:
        raise PhotoheadError(f"--threads {threads}: give a whole number of threads, 1 or more")
    set_intra_op_threads(threads)
    config = ReconstructConfig(
        mode=args.mode, quality=args.quality, device=args.device, model=args.model, face=args.face,
        detector=args.detector, detector_weights=args.detector_weights,
        detail=not args.no_detail, identity=not args.no_identity, checkpoints=args.checkpoints,
        shared_expression=not args.per_view_expression, deterministic=not args.nondeterministic,
        labels=[s.strip() for s in args.labels.split(",")] if args.labels else [],
        tune_unet=args.tune_unet, step_graphs=False if args.no_cuda_graphs else None, focal_35mm=focal_35mm,
    )
    if args.jobs is not None and not args.each:
        raise PhotoheadError("--jobs runs the photos of a batch in parallel: use it with --each")
    if args.batch_size is not None and not args.each:
        raise PhotoheadError("--batch-size fits the photos of a batch together: use it with --each")
    if args.each:
        if args.labels:
            raise PhotoheadError("--labels name the views of one person; with --each every photo is its own head")
        return _run_each(args, images, [Path(p).stem for p in args.photos] + ([args.sample] if args.sample else []), config)
    _reconstruct_into(args, images, config, Path(args.out))
    return 0


def _unique(stems: list[str]) -> list[str]:
    """The stems with ``_2``, ``_3``... added to repeats: one output folder per photo."""
    names: list[str] = []
    for stem in stems:
        name, k = stem, 2
        while name in names:
            name, k = f"{stem}_{k}", k + 1
        names.append(name)
    return names


def _run_each(args: argparse.Namespace, images: list, stems: list[str], config) -> int:
    """``--each``: one head per photo in OUT/<stem>/; a failing photo is reported and skipped.

    On the CPU the photos run in parallel worker processes (``--jobs``), each with its share of
    the cores: a fit gains little from a second thread, so two one-thread fits finish sooner
    than two two-thread fits one after the other. Each photo's head is the one a single run
    with the same thread count gives (``backend.threads`` says what the count changes)."""
    out = Path(args.out)
    if _batched(args, config, len(images)):
        return _run_each_batched(args, images, stems, config)
    jobs, threads = _each_plan(args, config, len(images))
    # Parallel workers print nothing of their own (their lines would interleave); one line a photo here.
    worker_args = args if jobs == 1 else argparse.Namespace(**{**vars(args), "quiet": True})
    tasks = [(worker_args, image, config, out / name, name) for name, image in zip(_unique(stems), images)]
    if jobs == 1:
        results = (_each_photo(*task) for task in tasks)
        pool = None
    else:
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_each_worker_init, initargs=(threads,))
        results = pool.map(_each_photo, *zip(*tasks))
    rows = []
    try:
        for name, row in zip((t[4] for t in tasks), results):
            _report_row(args, name, row, jobs > 1)
            rows.append(row)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return _finish_batch(args, rows, {"jobs": jobs, "threads_per_job": threads})


def _report_row(args: argparse.Namespace, name: str, row: dict, one_line: bool) -> None:
    if "error" in row:
        print(f"photohead: error: {name}: {row['error']}", file=sys.stderr)
    elif one_line and not args.quiet:
        print(f"{name}: {row['seconds']:.1f} s → {row['out']}")


def _finish_batch(args: argparse.Namespace, rows: list[dict], how: dict) -> int:
    """OUT/batch.json (``rows`` and ``how`` the photos ran) and the exit code of --each."""
    out = Path(args.out)
    failed = sum("error" in r for r in rows)
    if not any("out" in r for r in rows):  # nothing was made: leave no folder behind
        raise PhotoheadError(f"none of the {len(rows)} photos could be reconstructed (each is named above)")
    atomic_write_text(out / "batch.json", json.dumps({"photos": rows, "failed": failed, **how}, indent=1) + "\n")
    if not args.quiet:
        print(f"batch: {len(rows) - failed} of {len(rows)} photos reconstructed → {out} (batch.json)")
    return 1 if failed else 0


def _batched(args: argparse.Namespace, config, n_photos: int) -> bool:
    """Whether --each fits its photos in batches (:mod:`backend.batch`): ``--batch-size`` given, or
    fit mode on a GPU; parallel processes (``--jobs``) otherwise."""
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise PhotoheadError(f"--batch-size {args.batch_size}: give a whole number of photos, 1 or more")
        if args.jobs is not None:
            raise PhotoheadError("--jobs (parallel CPU processes) or --batch-size (one batch on the device), not both")
        if config.mode != "fit":
            raise PhotoheadError(f"--batch-size batches fits: mode {config.mode!r} runs photo by photo, leave it out")
        return True
    return args.jobs is None and config.mode == "fit" and n_photos > 1 and _uses_cuda(config.device)


def _run_each_batched(args: argparse.Namespace, images: list, stems: list[str], config) -> int:
    """--each with the photos fitted in batches (:func:`backend.batch.reconstruct_each`); each
    photo's outputs are written atomically into OUT/<stem>/ as one by one."""
    from ..batch import reconstruct_each  # lazy: torch loads after cli.main's thread policy

    out = Path(args.out)
    t = time.perf_counter()
    names = _unique(stems)
    rows: list[dict] = [{"photo": str(image) if isinstance(image, (str, Path)) else name}
                        for name, image in zip(names, images)]
    todo = []
    for i, name in enumerate(names):  # every output folder checked before any work
        try:
            check_output_dir(out / name)
            todo.append(i)
        except PhotoheadError as exc:
            rows[i]["error"] = str(exc)
    heads = reconstruct_each([images[i] for i in todo], config, args.batch_size,
                             progress=_progress_printer(args.quiet))
    if not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    fit_s = (time.perf_counter() - t) / max(1, len(todo))
    batch_size = 1
    for i, head in zip(todo, heads):
        row, written = rows[i], []
        if isinstance(head, PhotoheadError):
            row["error"] = str(head)
            continue
        batch_size = max(batch_size, int(head.timings.get("batch_size", 1)))
        t1 = time.perf_counter()
        try:
            _write_head(args, head, out / names[i], written, quiet=True)
        except PhotoheadError as exc:
            row["error"] = str(exc)
        if written:
            row["out"] = str(written[0])
            row["seconds"] = round(fit_s + time.perf_counter() - t1, 2)
    for name, row in zip(names, rows):
        _report_row(args, name, row, True)
    return _finish_batch(args, rows, {"jobs": 1, "threads_per_job": args.threads, "batch_size": batch_size})


# Peak resident memory of one reconstruction (benchmarks/results/fit.json: ≤ 1.2 GB per photo).
_PHOTO_PEAK_BYTES = 1.5 * 2**30


def _each_plan(args: argparse.Namespace, config, n_photos: int) -> tuple[int, int | None]:
    """(worker processes, intra-op threads per worker or None for torch's default) for --each."""
    if args.jobs is not None and args.jobs < 1:
        raise PhotoheadError(f"--jobs {args.jobs}: give a whole number of processes, 1 or more")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if args.jobs is not None:
        jobs = min(args.jobs, n_photos)
    elif _uses_cuda(config.device) or n_photos < 2:
        jobs = 1  # one GPU: the photos take turns on it
    else:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = cores * _PHOTO_PEAK_BYTES
        jobs = max(1, min(cores, n_photos, int(free // _PHOTO_PEAK_BYTES)))
    if jobs == 1:
        return 1, fit_threads(args.threads)
    return jobs, args.threads or max(1, cores // jobs)


def _uses_cuda(device: str) -> bool:
    if device == "cuda":
        return True
    if device != "auto":
        return False
    import torch  # lazy: the command line sets the thread policy before torch loads

    return torch.cuda.is_available()


def _each_worker_init(threads: int | None) -> None:
    """A --each worker process: the thread policy before torch loads, then its thread share."""
    apply_process_policy()
    set_intra_op_threads(threads)


def _each_photo(args: argparse.Namespace, image, config, out: Path, name: str) -> dict:
    """Reconstruct one photo of a batch into ``out``; the batch.json row (error instead of raising)."""
    t = time.perf_counter()
    row = {"photo": str(image) if isinstance(image, (str, Path)) else name}
    written: list[Path] = []
    try:
        check_output_dir(out)  # before any work on this photo
        _reconstruct_into(args, [image], config, out, written)
        row["seconds"] = round(time.perf_counter() - t, 2)
    except PhotoheadError as exc:
        row["error"] = str(exc)
    if written:  # the outputs, also when a later step (head.blend) failed
        row["out"] = str(written[0])
    return row


def _reconstruct_into(args: argparse.Namespace, images: list, config, out: Path, written: list | None = None) -> None:
    """Reconstruct ``images`` as one head and write every output (and head.blend) into ``out``;
    ``written`` gets ``out`` appended once the outputs are there (before head.blend)."""
    from ..reconstruct import reconstruct  # lazy: torch loads after cli.main's thread policy

    t0 = time.perf_counter()
    head = reconstruct(images, config, progress=_progress_printer(args.quiet))
    if not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    _write_head(args, head, out, written, t0=t0)


def _write_head(args: argparse.Namespace, head, out: Path, written: list | None = None, quiet: bool = False,
                t0: float | None = None) -> None:
    """Every output of ``head`` (and head.blend) into ``out``; ``written`` as :func:`_reconstruct_into`'s.
    ``quiet``: no listing (batches print one line a photo); ``t0``: when the reconstruction began."""
    # lazy: torch loads after cli.main's thread policy
    from ..preview_render import render_preview, render_turntable, render_uv_maps

    previews = {f"preview{'' if i == 0 else f'_view{i}'}": render_preview(head, i) for i in range(len(head.views))}
    # the head from −90° to +90° (textured and shaded) and its UV maps, for every run
    previews["preview_turntable"] = render_turntable(head)
    previews["preview_uv"] = render_uv_maps(head)  # missing maps show as "n/a" panels
    if head.view_weights is not None and len(head.views) > 1:
        from ..texture import coverage_image  # lazy: torch loads after cli.main's thread policy

        previews["coverage"] = coverage_image(head.view_weights)
    paths = write_outputs(head, out, previews=previews, dense_levels=args.detail_mesh_levels)
    if written is not None:
        written.append(out)
    for w in head.warnings:
        print(f"photohead: warning: {w}", file=sys.stderr)
    if args.blend:
        result = subprocess.run([sys.executable, "-m", "addon.blendfile", str(out)], capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["unknown error"]
            raise PhotoheadError(f"writing head.blend failed: {tail[0]}")
        paths["blend"] = out / "head.blend"
    if not args.quiet and not quiet:
        print(f"reconstructed {len(head.views)} view(s) in {time.perf_counter() - t0:.1f} s → {out}")
        width = max(map(len, paths), default=0)
        for key, path in sorted(paths.items()):
            print(f"  {key:>{width}}: {path}")
