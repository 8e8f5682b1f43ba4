"""``photohead train prepare``: photos → the sharded training cache (:mod:`training.data`).

One process (``--data.workers`` processes on this machine)::

    python -m training.prepare --data /data/celeba --cache runs/cache224 [--data.layout=celeba --data.split=train]

Several machines or a torchrun launch (each rank writes only its own shards)::

    torchrun --nproc_per_node 4 -m training.prepare --data /data/celeba --cache runs/cache224
    python -m training.prepare --data /data/ffhq --cache runs/cache224 --rank=3 --world=8   # e.g. a job array

Layouts (``--data.layout``, ``auto`` picks from the folder's contents):

- ``celeba``: ``img_align_celeba/`` with the official partition ``list_eval_partition.txt``
  (``<file> <0|1|2>``: train, val, test; looked up in the root, ``Eval/`` and ``Anno/``; the
  ``.csv`` variant ``image_id,partition`` too). ``--data.split`` train (default), val, test or all.
- ``ffhq``: ``images1024x1024/`` (or ``thumbnails128x128/``, or the root), PNGs named by index
  (``00000.png``…, flat or in thousand-folders). FFHQ's metadata marks 00000–59999 as training
  and 60000–69999 as validation; ``--data.split`` train (default), val or all.
- ``folder``: every image below the root (recursive); only ``all``.

Work is split into shards of ``--data.shard_size`` photos; rank ``r`` of ``W`` processes the
shards ``s`` with ``s mod W = r``, each in one process: one writer per shard, no photo
preprocessed twice. A shard whose ``.json`` exists is finished and skipped, so a rerun resumes.
When every shard is done (whichever rank finishes last) the cache gets ``report.json`` (counts)
and ``rejects.json`` (``[{"photo", "reason"}]``, reasons as :data:`training.data.REJECT_REASONS`).
The trainers then read the cache with ``--cache`` (``--data`` may be left out).
"""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal

from tqdm import tqdm

from backend.errors import PhotoheadError
from backend.io_utils import atomic_write_text

from .config import ConfigError, DataConfig, help_text, parse_args
from .data import (
    IMAGE_EXTENSIONS, REJECT_REASONS, DetectFn, PreprocessSettings, _process_shard, _shard_paths, find_images,
)

LAYOUTS = ("folder", "celeba", "ffhq")
CELEBA_SPLITS = {"train": 0, "val": 1, "test": 2}
FFHQ_TRAIN = 60_000  # FFHQ images 00000–59999 are its training split, 60000–69999 validation


class PrepareError(PhotoheadError, ValueError):
    """A photo source or cache that cannot be prepared as asked (message says what to do)."""


@dataclass
class PrepareConfig:
    """``python -m training.prepare`` (see the module doc).

    - ``data``: the trainers' data settings (``data.data`` source folder, ``data.cache``,
      ``data.crop_size``, ``data.layout``, ``data.split``, ``data.shard_size``, rejection limits,
      ``data.workers`` processes on this machine).
    - ``detector``: :func:`backend.detect.detect` backend. ``limit``: only the first N photos (0: all).
    - ``rank`` / ``world``: this process's share (-1 / 0: from torchrun's ``RANK`` /
      ``WORLD_SIZE``, else 0 / 1). ``progress``: a progress bar on rank 0.
    """

    data: DataConfig = field(default_factory=DataConfig)
    detector: str = "dlib"
    limit: int = 0
    rank: int = -1
    world: int = 0
    progress: bool = True


# -- sources -------------------------------------------------------------------------------------------
def detect_layout(root: Path) -> str:
    """``celeba``, ``ffhq`` or ``folder`` from what ``root`` holds."""
    if (root / "img_align_celeba").is_dir() or _celeba_partition_file(root) is not None:
        return "celeba"
    if any((root / d).is_dir() for d in ("images1024x1024", "thumbnails128x128")) or (root / "ffhq-dataset-v2.json").exists():
        return "ffhq"
    return "folder"


def _celeba_partition_file(root: Path) -> Path | None:
    for sub in ("", "Eval", "Anno", "img_align_celeba"):
        for name in ("list_eval_partition.txt", "list_eval_partition.csv"):
            if (root / sub / name).is_file():
                return root / sub / name
    return None


def _read_celeba_partition(path: Path) -> list[tuple[str, int]]:
    rows = []
    for k, line in enumerate(path.read_text().splitlines()):
        parts = line.replace(",", " ").split()
        if not parts or (k == 0 and parts[0] == "image_id"):
            continue
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) not in (0, 1, 2):
            raise PrepareError(f"{path}:{k + 1}: expected '<file> <0|1|2>', got {line!r}")
        rows.append((parts[0], int(parts[1])))
    return rows


def list_photos(root: str | Path, layout: str = "auto", split: str = "auto") -> list[str]:
    """The photos of ``root`` for ``layout`` / ``split`` (see the module doc), sorted paths.

    Raises :class:`PrepareError` for a missing folder, an unknown or inapplicable layout or split,
    or a CelebA folder without its partition file.
    """
    root = Path(root)
    if not root.is_dir():
        raise PrepareError(f"photo folder {root} not found")
    layout = detect_layout(root) if layout == "auto" else layout
    if layout not in LAYOUTS:
        raise PrepareError(f"unknown layout {layout!r}: use one of auto, {', '.join(LAYOUTS)}")
    if split == "auto":
        split = "all" if layout == "folder" else "train"
    if layout == "folder":
        if split != "all":
            raise PrepareError(f"a plain folder has no {split!r} split: use --data.split=all (or a celeba/ffhq layout)")
        return [str(p) for p in find_images(root)]
    if layout == "celeba":
        part = _celeba_partition_file(root)
        if part is None:
            raise PrepareError(f"{root}: CelebA's list_eval_partition.txt not found (root, Eval/ or Anno/); "
                               "download it with the images or use --data.layout=folder")
        images = root / "img_align_celeba" if (root / "img_align_celeba").is_dir() else root
        if split not in (*CELEBA_SPLITS, "all"):
            raise PrepareError(f"CelebA split must be train, val, test or all, got {split!r}")
        rows = _read_celeba_partition(part)
        return sorted(str(images / f) for f, s in rows if split == "all" or s == CELEBA_SPLITS[split])
    # ffhq
    if split not in ("train", "val", "all"):
        raise PrepareError(f"FFHQ split must be train, val or all, got {split!r}")
    images = next((root / d for d in ("images1024x1024", "thumbnails128x128") if (root / d).is_dir()), root)
    files = [p for p in sorted(images.rglob("*")) if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    keep = []
    for p in files:
        if not p.stem.isdigit():
            raise PrepareError(f"{p}: FFHQ photos are named by index (00000.png …); use --data.layout=folder")
        if split == "all" or (int(p.stem) < FFHQ_TRAIN) == (split == "train"):
            keep.append(str(p))
    return keep


# -- the sharded cache -----------------------------------------------------------------------------------
def _write_manifest(cache: Path, files: list[str], settings: PreprocessSettings, source: dict) -> PreprocessSettings:
    """Create ``manifest.json`` or check the existing one; returns the settings to use (a cache
    keeps its own shard size). Raises :class:`PrepareError` when the cache holds other photos or
    another crop size."""
    mpath = cache / "manifest.json"
    if mpath.exists():
        old = json.loads(mpath.read_text())
        if old["files"] != files or old["settings"]["crop_size"] != settings.crop_size:
            raise PrepareError(
                f"cache {cache} was made from other photos or settings (crop {old['settings']['crop_size']}, "
                f"{len(old['files'])} photos; asked: crop {settings.crop_size}, {len(files)} photos): delete it or "
                "pass another --cache")
        if old["settings"]["shard_size"] != settings.shard_size:
            settings = replace(settings, shard_size=int(old["settings"]["shard_size"]))
        return settings
    manifest = {"root": source.get("root", ""), "source": source, "files": files, "settings": asdict(settings)}
    atomic_write_text(mpath, json.dumps(manifest))  # every rank writes the same bytes: a race is harmless
    return settings


def shards_of(n_shards: int, rank: int, world: int) -> list[int]:
    """The shards rank ``rank`` of ``world`` writes (round robin: one writer per shard)."""
    return [s for s in range(n_shards) if s % world == rank]


def finished_shards(cache: Path, n_shards: int) -> list[int]:
    return [s for s in range(n_shards) if _shard_paths(cache, s)["json"].exists()]


def write_reports(cache: Path, files: list[str], n_shards: int, settings: PreprocessSettings) -> dict:
    """``report.json`` (counts) and ``rejects.json`` (photo, reason) from the finished shards."""
    summaries = [json.loads(_shard_paths(cache, s)["json"].read_text()) for s in range(n_shards)]
    rejects = sorted((i, reason) for sm in summaries for reason, idx in sm["rejected"].items() for i in idx)
    atomic_write_text(cache / "rejects.json",
                      json.dumps([{"photo": files[i], "reason": r} for i, r in rejects], indent=1) + "\n")
    report = {
        "images": len(files),
        "kept": sum(s["kept"] for s in summaries),
        "rejected": {r: sum(len(s["rejected"].get(r, [])) for s in summaries) for r in REJECT_REASONS},
        "shards": n_shards,
        "settings": asdict(settings),
    }
    atomic_write_text(cache / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def prepare_cache(
    files: list[str], cache: str | Path, settings: PreprocessSettings = PreprocessSettings(), *,
    detect_fn: DetectFn | None = None, rank: int = 0, world: int = 1, source: dict | None = None,
    progress: Callable[[int, int], None] | None = None, wait: bool = False, poll_s: float = 2.0,
    shard_fn: Callable[..., dict] = _process_shard,
) -> dict | None:
    """Preprocess this rank's shards of ``files`` into ``cache`` (resumable). Returns the report
    when every shard is finished (written here if this rank finished last), else None; with
    ``wait`` it waits (polling the cache) for the other ranks' shards first.

    ``progress(photos_done, photos_total)``: this rank's photos (per photo in one process, per
    shard with ``settings.workers`` > 1). ``detect_fn`` replaces :func:`backend.detect.detect`
    (picklable when ``workers`` > 1). ``shard_fn(job, tick=None)`` makes one shard from
    ``job = (cache, shard, files, start, settings, detect_fn)`` (default: read and preprocess the
    photos; :mod:`training.synth` renders faces instead).
    """
    if not 0 <= rank < world:
        raise PrepareError(f"rank {rank} is not in 0..{world - 1}")
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    settings = _write_manifest(cache, files, settings, source or {})
    size = settings.shard_size
    n_shards = math.ceil(len(files) / size)
    mine = shards_of(n_shards, rank, world)
    todo = [s for s in mine if not _shard_paths(cache, s)["json"].exists()]
    total = sum(len(files[s * size:(s + 1) * size]) for s in mine)
    done = total - sum(len(files[s * size:(s + 1) * size]) for s in todo)
    if progress:
        progress(done, total)
    jobs = [(cache, s, files[s * size:(s + 1) * size], s * size, settings, detect_fn) for s in todo]
    if settings.workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            def tick(_: int = 0) -> None:
                nonlocal done
                done += 1
                if progress:
                    progress(done, total)

            shard_fn(job, tick)
    else:
        with mp.get_context("spawn").Pool(min(settings.workers, len(jobs))) as pool:
            for summary in pool.imap_unordered(shard_fn, jobs):
                done += len(files[summary["shard"] * size:(summary["shard"] + 1) * size])
                if progress:
                    progress(done, total)
    while wait and len(finished_shards(cache, n_shards)) < n_shards:
        time.sleep(poll_s)
    if len(finished_shards(cache, n_shards)) < n_shards:
        return None
    return write_reports(cache, files, n_shards, settings)


def distributed_share(rank: int = -1, world: int = 0) -> tuple[int, int]:
    """(rank, world) given, or from torchrun's environment, or (0, 1)."""
    world = world if world > 0 else int(os.environ.get("WORLD_SIZE", "1"))
    rank = rank if rank >= 0 else int(os.environ.get("RANK", "0"))
    return rank, world


def settings_from(data: DataConfig, crop_size: int, detector: str = "dlib", limit: int = 0) -> PreprocessSettings:
    return PreprocessSettings(crop_size=crop_size, min_face_px=data.min_face_px, min_score=data.min_score,
                              detector=detector, shard_size=data.shard_size, workers=data.workers, limit=limit)


def run(cfg: PrepareConfig, detect_fn: DetectFn | None = None) -> dict | None:
    """List the photos of ``cfg.data`` and prepare this rank's shards (see :func:`prepare_cache`)."""
    if not cfg.data.data:
        raise PrepareError("no photos: pass --data DIR (a photo folder, CelebA or FFHQ root)")
    if not cfg.data.cache:
        raise PrepareError("no cache folder: pass --cache DIR (the trainers read it with the same --cache)")
    rank, world = distributed_share(cfg.rank, cfg.world)
    files = list_photos(cfg.data.data, cfg.data.layout, cfg.data.split)
    if cfg.limit:
        files = files[:cfg.limit]
    if not files:
        raise PrepareError(f"no photos found in {cfg.data.data} (layout {cfg.data.layout}, split {cfg.data.split})")
    settings = settings_from(cfg.data, cfg.data.crop_size, cfg.detector, cfg.limit)
    source = {"root": str(Path(cfg.data.data).resolve()), "layout": cfg.data.layout, "split": cfg.data.split}
    bar = None
    if cfg.progress and rank == 0:
        bar = tqdm(desc=f"prepare (rank {rank}/{world})", unit="photo", dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    t0 = time.perf_counter()
    try:
        report = prepare_cache(files, cfg.data.cache, settings, detect_fn=detect_fn, rank=rank, world=world,
                               source=source, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    if report is None:
        print(f"rank {rank}/{world}: my shards are done in {elapsed:.0f} s; the other ranks' are not finished yet")
    else:
        print(f"{report['kept']} of {report['images']} photos kept in {cfg.data.cache}; rejected {report['rejected']} "
              f"(list: {Path(cfg.data.cache) / 'rejects.json'})")
    return report


def command_main(defaults, run_fn: Callable, doc: str, name: str, argv: list[str] | None) -> int:
    """A cache command's ``main``: ``--help`` prints ``doc`` and every key; bad input is one
    line on stderr and exit code 2."""
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(doc + "\n" + help_text(defaults))
        return 0
    try:
        run_fn(parse_args(defaults, argv))
    except (ConfigError, PrepareError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    return command_main(PrepareConfig(), run, __doc__, "prepare", argv)


if __name__ == "__main__":
    sys.exit(main())
