"""``photohead train synth``: a training cache of rendered faces with known coefficients.

    python -m training.synth --cache runs/synth64 --n 2000 --data.crop_size=64 [--seed 0] [--size 256]
    torchrun --nproc_per_node 4 -m training.synth --cache runs/synth224 --n 200000

Training data whose terms allow shipping what it trains: faces of the face model
(:func:`evaluation.synthetic.make_face`: identity ~ N(0, 1), expressions, skin albedo with brows
and lips, SH light, yaw within ±40°, pitch, roll, grey backgrounds, ``--size``² renders by the
project renderer), each aligned and masked exactly as a photo is (:func:`training.data.process_image`,
with the true 68 landmarks in the annotators' convention in place of the detector). The cache
has the layout :mod:`training.prepare` writes, plus each face's true ``id`` and ``exp`` in its
shard's ``meta.npz``; the trainers read it with ``--cache``, and ``--supervised=W`` adds
W·L_param (mean squared error of the regressed identity and expression coefficients) to stage 1.

Shard ``s`` renders its faces from seed ``seed·1_000_003 + s`` alone, so shards are independent:
rank r of W renders the shards s with s mod W = r, a rerun skips finished shards, and the
same ``--n``/``--seed``/``--size`` always give the same faces. The photo names in the manifest
(``synthetic/s<seed>/r<size>/<index>``) record how each was made.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from backend.facemodel import load_default
from evaluation.synthetic import SyntheticSettings, make_faces

from .config import DataConfig
from .data import PreprocessSettings, _shard_paths, process_image, write_shard
from .prepare import PrepareError, command_main, distributed_share, prepare_cache

SEED_STRIDE = 1_000_003


@dataclass
class SynthConfig:
    """``python -m training.synth`` (see the module doc). ``data``: ``data.cache`` (required),
    ``data.crop_size``, ``data.shard_size``, ``data.workers``, ``data.min_face_px``; ``n`` faces
    rendered at ``size``² from ``seed``; ``model``: face model file ("" = default);
    ``rank``/``world`` as in :class:`training.prepare.PrepareConfig`."""

    data: DataConfig = field(default_factory=lambda: DataConfig(shard_size=250))
    n: int = 1000
    seed: int = 0
    size: int = 256
    model: str = ""
    rank: int = -1
    world: int = 0
    progress: bool = True


def face_names(n: int, seed: int, size: int) -> list[str]:
    return [f"synthetic/s{seed}/r{size}/{i:07d}" for i in range(n)]


def _parse(name: str) -> tuple[int, int, int]:
    _, s, r, i = name.split("/")
    return int(s[1:]), int(r[1:]), int(i)


def _render_shard(job: tuple, tick: Callable[[], None] | None = None) -> dict:
    """:func:`training.prepare.prepare_cache`'s ``shard_fn``: render, align and write one shard."""
    cache, shard, names, start, settings, model_path = job
    paths = _shard_paths(cache, shard)
    if paths["json"].exists():
        return json.loads(paths["json"].read_text())
    seed, size, _ = _parse(names[0])
    model = load_default(model_path or None)
    torch.manual_seed(seed * SEED_STRIDE + shard)
    faces = make_faces(model, len(names), seed=seed * SEED_STRIDE + shard, settings=SyntheticSettings(size=size))
    results, ids, exps = [], [], []
    for k, face in enumerate(faces):
        truth = face.contour68 if face.contour68 is not None else face.landmarks68
        out = process_image(face.image, lambda _img, lm=truth: [(lm, 1.0)], settings)
        results.append((start + k, out))
        if not isinstance(out, str):
            ids.append(face.id)
            exps.append(face.exp)
        if tick:
            tick()
    extra = {"id": np.asarray(ids, np.float32).reshape(len(ids), model.n_id),
             "exp": np.asarray(exps, np.float32).reshape(len(exps), model.n_exp)}
    return write_shard(cache, shard, settings.crop_size, results, extra)


def run(cfg: SynthConfig) -> dict | None:
    """Render this rank's shards of ``cfg.n`` faces into ``cfg.data.cache``; the report when all are done."""
    if not cfg.data.cache:
        raise PrepareError("no cache folder: pass --cache DIR (the trainers read it with the same --cache)")
    if cfg.n < 1 or cfg.size < 64:
        raise PrepareError(f"--n must be ≥ 1 and --size ≥ 64, got {cfg.n} and {cfg.size}")
    rank, world = distributed_share(cfg.rank, cfg.world)
    names = face_names(cfg.n, cfg.seed, cfg.size)
    settings = PreprocessSettings(crop_size=cfg.data.crop_size, min_face_px=cfg.data.min_face_px, detector="truth",
                                  shard_size=cfg.data.shard_size, workers=cfg.data.workers)
    bar = None
    if cfg.progress and rank == 0:
        bar = tqdm(desc=f"synth (rank {rank}/{world})", unit="face", dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total, bar.n = total, done
            bar.refresh()

    t0 = time.perf_counter()
    try:
        report = prepare_cache(names, cfg.data.cache, settings, detect_fn=cfg.model or None, rank=rank, world=world,
                               source={"synthetic": {"n": cfg.n, "seed": cfg.seed, "size": cfg.size,
                                                     "model": cfg.model}},
                               progress=progress, shard_fn=_render_shard)
    finally:
        if bar is not None:
            bar.close()
    if report is not None:
        print(f"{report['kept']} of {report['images']} faces in {cfg.data.cache} ({time.perf_counter() - t0:.0f} s)")
    return report


def main(argv: list[str] | None = None) -> int:
    return command_main(SynthConfig(), run, __doc__, "synth", argv)


if __name__ == "__main__":
    sys.exit(main())
