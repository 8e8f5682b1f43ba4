"""A minimal, exact-resume trainer shared by both stages (one code path, 1..N processes).

Single process::

    python -m training.coarse --data DIR --out runs/c1

Distributed (one process per GPU, or per CPU slot with gloo)::

    torchrun --nproc_per_node 4 -m training.coarse --data DIR --out runs/c1

Rank and world size come from the environment torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``); without them the trainer runs as rank 0 of 1. The backend is nccl on CUDA
and gloo on CPU. Every rank seeds ``seed + rank``; only rank 0 logs (tqdm, TensorBoard
scalars and image grids) and writes checkpoints.

Exact resume: a checkpoint holds model, optimizer, scheduler, AMP scaler, the step, the RNG
states (torch, CUDA, numpy, python) of *every* rank and the data-order position. The data order
is a pure function of (seed, step): step ``s`` takes items ``[s·B, (s+1)·B)`` of an endless
stream of per-epoch permutations seeded by ``(seed, epoch)``, rank ``r`` its ``r``-th slice. So a
run resumed from step ``k`` sees the same batches and random draws as the uninterrupted run
and reproduces its loss sequence bit for bit (same world size, device and thread count).

The task (what a step computes) is supplied by the stage: any object with ``model`` (the
trainable ``nn.Module``, checkpointed), ``to(device)`` and
``step(model, batch, want_images) -> StepResult``, whose ``losses`` are the *weighted* terms the
trainer sums into ``total``.
"""
from __future__ import annotations

import logging
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from backend.checkpoint import load_checkpoint, load_weights, restore_training_state, save_checkpoint, unwrap
from backend.errors import PhotoheadError
from backend.io_utils import atomic_path

from .config import LoopConfig, OptimConfig, apply_overrides, flatten, to_dict

log = logging.getLogger("photohead.training")


class RunFolderError(PhotoheadError):
    """The run folder already holds a run and neither resume nor a new folder was asked for."""


@dataclass
class StepResult:
    """What a task's step returns.

    - ``losses``: named, already weighted scalar terms; the trainer optimises their sum.
    - ``metrics``: scalars that are logged but not optimised (e.g. unweighted terms).
    - ``images``: (B,3,H,W) float in [0,1] per name, for TensorBoard grids (only when asked).
    """

    losses: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    images: dict[str, torch.Tensor] = field(default_factory=dict)


class TrainTask(Protocol):
    model: nn.Module

    def to(self, device: torch.device) -> "TrainTask": ...

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], want_images: bool) -> StepResult: ...


@dataclass
class TrainResult:
    """``history``: per-step logged values (rank-averaged) of the steps run in this call;
    ``val_history``: (step, values) of each validation; ``step``: the final step."""

    step: int
    history: list[dict[str, float]]
    val_history: list[tuple[int, dict[str, float]]]
    out_dir: Path
    last_checkpoint: Path | None


# -- distributed helpers (fall back to rank 0 / world 1 without a process group) --------------
@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialized_here: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistEnv:
    """Read rank/world from the environment (torchrun) and start the process group if needed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but CUDA is not available; use --loop.device=cpu")
    dev = torch.device("cuda", local % max(1, torch.cuda.device_count())) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    created = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        created = True
    return DistEnv(rank, world, local, dev, created)


def _all_gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


@dataclass
class _Pending:
    """One step's logged values before they are read: ``values`` device scalars, ``losses`` the
    names of the optimised terms (and ``total``), ``lr`` the learning rate it used."""

    step: int
    values: dict[str, torch.Tensor]
    losses: tuple[str, ...]
    lr: float


def _read_pending(pending: list[_Pending], env: DistEnv) -> list[dict[str, float]]:
    """Steps' device scalars → rank-averaged floats (plus ``lr``): one all-reduce and one host
    read for all of them (every rank holds the same steps)."""
    keys = [sorted(p.values) for p in pending]
    flat = torch.cat([torch.stack([p.values[k].float().reshape(()) for k in ks]) for p, ks in zip(pending, keys)])
    if env.distributed:
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat = flat / env.world_size
    numbers = flat.cpu().tolist()
    rows, i = [], 0
    for p, ks in zip(pending, keys):
        rows.append({**dict(zip(ks, numbers[i:i + len(ks)])), "lr": p.lr})
        i += len(ks)
    return rows


# -- RNG state ---------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """This process's RNG states as checkpoint-safe values (tensors and plain Python)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    npst = state["numpy"]
    np.random.set_state(("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# -- data order ---------------------------------------------------------------------------------
class StepBatchSampler(Sampler[list[int]]):
    """Per-rank index batches for steps ``start_step .. total_steps-1``; a pure function of the step.

    The global batch of step ``s`` is items ``[s·G, (s+1)·G)`` of the endless concatenation of
    per-epoch permutations (``torch.randperm`` seeded by ``seed·1_000_003 + epoch``); rank ``r``
    takes ``[r·b, (r+1)·b)`` of it with ``b = G / world``.
    """

    def __init__(self, n: int, global_batch: int, rank: int, world: int, seed: int, start_step: int, total_steps: int):
        if n <= 0:
            raise ValueError("the training set is empty")
        if global_batch % world:
            raise ValueError(f"batch_size {global_batch} is not divisible by the world size {world}")
        self.n, self.G, self.rank, self.world = n, global_batch, rank, world
        self.b = global_batch // world
        self.seed, self.start, self.total = seed, start_step, total_steps
        self._perm_cache: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perm_cache:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm_cache = {epoch: torch.randperm(self.n, generator=g)}
        return self._perm_cache[epoch]

    def position(self, step: int) -> dict[str, int]:
        """Where step ``step`` starts in the stream: epoch and offset within it."""
        first = step * self.G
        return {"epoch": first // self.n, "offset": first % self.n, "items_seen": first, "n": self.n}

    def indices(self, step: int) -> list[int]:
        first = step * self.G + self.rank * self.b
        out = []
        for k in range(first, first + self.b):
            out.append(int(self._perm(k // self.n)[k % self.n]))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for s in range(self.start, self.total):
            yield self.indices(s)

    def __len__(self) -> int:
        return max(0, self.total - self.start)


# -- images --------------------------------------------------------------------------------------
def make_grid(images: dict[str, torch.Tensor], max_items: int = 8) -> torch.Tensor:
    """Tile named (B,3,H,W) [0,1] batches: one row per name, ``max_items`` columns.

    Returns (3, rows·H, cols·W) float in [0,1] (every row resized to the first's H×W).
    """
    rows = []
    size = None
    for img in images.values():
        img = img.detach().float()[:max_items].clamp(0, 1)
        if img.shape[1] == 1:
            img = img.expand(-1, 3, -1, -1)
        size = size or img.shape[-2:]
        if img.shape[-2:] != size:
            img = torch.nn.functional.interpolate(img, size=tuple(size), mode="bilinear", align_corners=False)
        row = torch.cat(list(img), dim=2)  # (3,H,n·W)
        rows.append(row)
    width = max(r.shape[2] for r in rows)
    rows = [torch.nn.functional.pad(r, (0, width - r.shape[2])) for r in rows]
    return torch.cat(rows, dim=1).cpu()


# -- the loop ---------------------------------------------------------------------------------------
def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _check_finite(values: dict[str, float], step: int, judged: tuple[str, ...]) -> None:
    """Raise FloatingPointError showing every value when one of ``judged`` (the loss terms and
    their total) is not finite at ``step``."""
    if not all(math.isfinite(values[k]) for k in judged):
        shown = ", ".join(f"{k}={v:.6g}" for k, v in values.items())
        raise FloatingPointError(f"non-finite loss at step {step}: {shown}")


def _save(
    out_dir: Path, *, env: DistEnv, model, optimizer, scheduler, scaler, step, cfg: LoopConfig, run_config, model_card,
    sampler: StepBatchSampler, history_tail, best: dict | None = None,
) -> Path | None:
    rngs = _all_gather_objects(rng_state(), env)  # every rank's RNG (collective: all ranks call)
    if not env.is_main:
        return None
    card = dict(model_card or {})
    card["steps"] = int(step)
    extra = {"rng": rngs, "world_size": env.world_size, "data_position": sampler.position(step), "history_tail": history_tail,
             "best": best}
    path = out_dir / f"step_{step:07d}.pt"
    save_checkpoint(
        path, model=model, optimizer=optimizer, scheduler=scheduler, step=step, config=run_config,
        model_card=card, extra=extra, scaler=scaler,
    )
    last = out_dir / "last.pt"
    with atomic_path(last) as tmp:  # last.pt: an atomic hard link (copy where links fail)
        tmp.unlink()
        try:
            os.link(path, tmp)
        except OSError:
            tmp.write_bytes(path.read_bytes())
    olds = sorted(out_dir.glob("step_*.pt"))
    for old in olds[: max(0, len(olds) - max(1, cfg.keep_last))]:
        old.unlink()
    return path


def train(
    task: TrainTask,
    train_set: Dataset,
    *,
    loop: LoopConfig,
    optim: OptimConfig,
    out_dir: str | Path,
    run_config: dict | None = None,
    model_card: dict | None = None,
    val_set: Dataset | None = None,
    resume: str = "",
    init: str = "",
    suite_hook: Any | None = None,
) -> TrainResult:
    """Run (or resume) training of ``task.model`` until ``loop.steps``. See the module docstring.

    ``resume``: "" fresh run (refuses a folder holding ``last.pt``), ``"auto"`` (``last.pt`` if
    present) or a checkpoint path. ``init``: checkpoint whose weights start a fresh run at step 0.
    ``suite_hook``: a :class:`training.validation.SuiteValidation`; every ``suite_hook.cfg.every``
    steps rank 0 runs it, logs its values (``eval/<suite>/<key>``, also in ``val_history``) and
    writes ``best.pt`` when its declared metric improves (the best so far is kept in every
    checkpoint, so a resumed run continues the comparison).
    """
    env = init_distributed(loop.device)
    out_dir = Path(out_dir)
    writer = None
    try:
        seed_everything(loop.seed + env.rank)
        task.to(env.device)
        model = task.model
        optimizer = torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad], lr=optim.lr, betas=tuple(optim.betas),
            weight_decay=optim.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=optim.lr_decay_every, gamma=optim.lr_decay)
        use_amp = loop.amp and env.device.type == "cuda"
        amp_dtype = getattr(torch, loop.amp_dtype)
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

        ckpt_path = check_run_folder(out_dir, resume, init)
        step, ckpt = 0, None
        best: dict | None = None  # {"metric", "value", "step"} of best.pt
        if ckpt_path is not None:
            ckpt = load_checkpoint(ckpt_path, map_location="cpu")
            step = restore_training_state(ckpt, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
            best = (ckpt.get("extra") or {}).get("best")
        elif init:
            load_weights(init, model)
        if env.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)

        ddp_model: nn.Module = model
        if env.distributed:
            ddp_model = nn.parallel.DistributedDataParallel(
                model, device_ids=[env.device.index] if env.device.type == "cuda" else None
            )

        sampler = StepBatchSampler(len(train_set), loop.batch_size, env.rank, env.world_size, loop.seed, step, loop.steps)
        loader = DataLoader(
            train_set, batch_sampler=sampler, num_workers=loop.num_workers,
            pin_memory=env.device.type == "cuda", generator=torch.Generator().manual_seed(loop.seed + env.rank),
            persistent_workers=False,
        )
        batches = iter(loader)  # created before restoring RNG: creating it must not shift the stream
        if ckpt is not None:
            _restore_rng(ckpt, env, loop.seed, step)

        if env.is_main:
            writer = _summary_writer(out_dir)
        bar = None
        if env.is_main and loop.progress:
            bar = tqdm(total=loop.steps, initial=step, desc="train", dynamic_ncols=True)

        history: list[dict[str, float]] = []
        val_history: list[tuple[int, dict[str, float]]] = []
        last_ckpt = None
        t_last, n_last = time.perf_counter(), step
        params = [p for p in model.parameters() if p.requires_grad]
        # the hot path never waits for the device: each step's values stay device tensors until a
        # flush (log step, validation, checkpoint, end) reduces them over ranks and reads them once
        pending: list[_Pending] = []
        flush_every = loop.log_every if loop.log_every > 0 else 100

        def flush() -> None:
            nonlocal t_last, n_last
            if not pending:
                return
            rows = _read_pending(pending, env)
            steps = [p.step for p in pending]
            for p, row in zip(pending, rows):
                _check_finite(row, p.step, p.losses)
                history.append(row)
            pending.clear()
            if env.is_main:
                last_step, last = steps[-1], rows[-1]
                if bar is not None:
                    bar.set_postfix(loss=f"{last['total']:.4g}")
                if writer is not None and loop.log_every > 0:
                    for s_, row in zip(steps, rows):
                        if s_ % loop.log_every == 0:
                            for k, v in row.items():
                                writer.add_scalar(f"train/{k}", v, s_)
                    if last_step % loop.log_every == 0:
                        now = time.perf_counter()
                        writer.add_scalar("train/images_per_s",
                                          (last_step - n_last) * loop.batch_size / max(now - t_last, 1e-9), last_step)
                        t_last, n_last = now, last_step

        while step < loop.steps:
            batch = _to_device(next(batches), env.device)
            want_images = env.is_main and loop.image_every > 0 and (step + 1) % loop.image_every == 0
            model.train()
            amp_ctx = torch.autocast("cuda", dtype=amp_dtype) if use_amp else nullcontext()
            with amp_ctx:
                result = task.step(ddp_model, batch, want_images)
            total = sum(result.losses.values())
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.unscale_(optimizer)  # no-op without float16 loss scaling; clipping needs true gradients
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            if optim.grad_clip > 0:
                torch.nn.utils.clip_grads_with_norm_(params, optim.grad_clip, grad_norm)
            scale = scaler.get_scale() if scaler.is_enabled() else None  # float16 only: reads the scale
            scaler.step(optimizer)
            scaler.update()
            # float16: a step whose gradients overflowed is skipped and the scale drops; the
            # schedule counts the optimizer's steps (no "scheduler before optimizer" warning)
            if scale is None or scaler.get_scale() >= scale:
                scheduler.step()
            step += 1
            values = {k: v.detach() for k, v in {**result.losses, **result.metrics, "total": total}.items()}
            values["grad_norm"] = grad_norm.detach()
            pending.append(_Pending(step, values, (*result.losses, "total"), optimizer.param_groups[0]["lr"]))

            if env.is_main and bar is not None:
                bar.update(1)
            if writer is not None and want_images and result.images:
                writer.add_image("train/grid", make_grid(result.images), step)
            do_val = val_set is not None and loop.val_every > 0 and step % loop.val_every == 0
            do_suite = suite_hook is not None and suite_hook.cfg.every > 0 and step % suite_hook.cfg.every == 0
            do_ckpt = loop.ckpt_every > 0 and (step % loop.ckpt_every == 0 or step == loop.steps)
            if step % flush_every == 0 or do_val or do_suite or do_ckpt or step == loop.steps:
                flush()  # before a checkpoint: non-finite losses raise before their weights are saved
            if do_val:
                if env.is_main:
                    values, images = _validate(task, unwrap(model), val_set, loop, env.device, use_amp)
                    val_history.append((step, values))
                    if writer is not None:
                        for k, v in values.items():
                            writer.add_scalar(f"val/{k}", v, step)
                        if images:
                            writer.add_image("val/grid", make_grid(images), step)
                if env.distributed:
                    dist.barrier()
            if do_suite:
                if env.is_main:
                    values = suite_hook(step, unwrap(model))
                    val_history.append((step, values))
                    if writer is not None:
                        for k, v in values.items():
                            writer.add_scalar(f"eval/{k}", v, step)
                    metric = suite_hook.cfg.metric
                    value = values.get(metric, float("nan"))
                    if suite_hook.metric_improves(value, None if best is None else best["value"]):
                        best = {"metric": metric, "value": value, "step": step}
                        save_checkpoint(out_dir / "best.pt", model=model, optimizer=optimizer, scheduler=scheduler,
                                        step=step, config=run_config, model_card={**(model_card or {}), "steps": step,
                                                                                  "best": best}, scaler=scaler)
                    elif not math.isfinite(value):
                        log.warning("step %d: the evaluation metric %s is %s (known: %s); best.pt not updated",
                                    step, metric, value, ", ".join(sorted(values)))
                if env.distributed:
                    dist.barrier()
            if do_ckpt:
                last_ckpt = _save(
                    out_dir, env=env, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, step=step,
                    cfg=loop, run_config=run_config, model_card=model_card, sampler=sampler, history_tail=history[-1],
                    best=best,
                )
        if bar is not None:
            bar.close()
        if env.distributed:
            # every rank leaves together: a rank tearing gloo down while rank 0 still writes the
            # last checkpoint aborted now and then ("terminate called without an active exception")
            dist.barrier()
        return TrainResult(step, history, val_history, out_dir, last_ckpt)
    finally:
        if writer is not None:
            writer.close()
        if env.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def check_run_folder(out_dir: str | Path, resume: str = "", init: str = "") -> Path | None:
    """The checkpoint a run resumes from (None: a fresh run), checked before anything is written.

    ``resume``: "" fresh run (refused with :class:`RunFolderError` when ``out_dir`` holds
    ``last.pt``), ``"auto"`` (``last.pt`` when present) or a checkpoint path (must exist);
    ``init``: a checkpoint to take weights from (must exist).
    """
    out_dir = Path(out_dir)
    last = out_dir / "last.pt"
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(f"--out {out_dir} is a file, not a run folder: choose another --out")
    if init and not Path(init).is_file():
        raise RunFolderError(f"--init checkpoint {init} not found")
    if resume == "":
        if last.exists():
            raise RunFolderError(
                f"{out_dir} already holds a run ({last.name}): pass --resume=auto to continue it, "
                "--init=PATH to start from its weights in a new --out folder, or choose another --out"
            )
        return None
    if resume == "auto":
        return last if last.exists() else None
    if not Path(resume).is_file():
        raise RunFolderError(f"--resume checkpoint {resume} not found (--resume=auto continues {last} when present)")
    return Path(resume)


#: Settings a resumed run takes from its checkpoint, whatever the command line says: the
#: optimizer's and the LR schedule's state, and the seed of the data order and RNG streams.
RESTORED_ON_RESUME = ("optim.lr", "optim.betas", "optim.weight_decay", "optim.lr_decay", "optim.lr_decay_every",
                      "loop.seed")
_NOT_SETTINGS = ("resume", "init")


def settle_resume_config(cfg: Any, ckpt_path: str | Path) -> Any:
    """``cfg`` for resuming from ``ckpt_path``: the :data:`RESTORED_ON_RESUME` keys set to the
    checkpoint's values, with a warning naming each value given that the checkpoint replaces, and
    one naming the other settings that differ from the checkpoint's (they take effect from the
    checkpoint's step). So ``config.json`` and later checkpoints record what the run really uses."""
    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    old = flatten(ckpt.get("config") or {})
    new = flatten(to_dict(cfg))
    replaced = {k: old[k] for k in RESTORED_ON_RESUME if k in old and k in new and old[k] != new[k]}
    if replaced:
        shown = ", ".join(f"{k}={new[k]!r} → {old[k]!r}" for k in replaced)
        log.warning("resuming from %s: the checkpoint's settings replace those given (%s); to change them start a "
                    "new run with --init=%s", ckpt_path, shown, ckpt_path)
    changed = [k for k in new if k in old and old[k] != new[k] and k not in replaced and k not in _NOT_SETTINGS]
    if changed:
        shown = ", ".join(f"{k}: {old[k]!r} → {new[k]!r}" for k in changed)
        log.warning("resuming from %s at step %s with changed settings (they apply from there): %s",
                    ckpt_path, ckpt.get("step"), shown)
    return apply_overrides(cfg, replaced) if replaced else cfg


def _restore_rng(ckpt: dict, env: DistEnv, seed: int, step: int) -> None:
    extra = ckpt.get("extra", {})
    rngs = extra.get("rng") or []
    if extra.get("world_size") == env.world_size and len(rngs) == env.world_size:
        set_rng_state(rngs[env.rank])
    else:  # a different world size cannot replay the same streams: reseed deterministically
        log.warning("resuming with world size %d (checkpoint: %s): RNG reseeded, not exact",
                    env.world_size, extra.get("world_size"))
        seed_everything(seed + env.rank + 7919 * step)


@torch.no_grad()
def _validate(task: TrainTask, model: nn.Module, val_set: Dataset, loop: LoopConfig, device, use_amp: bool):
    """Mean of the task's losses/metrics over the first ``val_batches`` batches (rank 0, eval mode)."""
    was_training = model.training
    model.eval()
    # own generator: creating the iterator must not draw from the global RNG (exact resume)
    loader = DataLoader(val_set, batch_size=loop.batch_size, shuffle=False, num_workers=0,
                        generator=torch.Generator().manual_seed(0))
    sums: dict[str, float] = {}
    count = 0
    images: dict[str, torch.Tensor] = {}
    try:
        for i, batch in enumerate(loader):
            if i >= max(1, loop.val_batches):
                break
            amp_ctx = torch.autocast("cuda", dtype=getattr(torch, loop.amp_dtype)) if use_amp else nullcontext()
            with amp_ctx:
                result = task.step(model, _to_device(batch, device), i == 0)
            total = sum(result.losses.values())
            for k, v in {**result.losses, **result.metrics, "total": total}.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
            if i == 0:
                images = result.images
    finally:
        model.train(was_training)
    return {k: v / max(count, 1) for k, v in sums.items()}, images


def _summary_writer(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional dependency (tensorboard)
    except ImportError as exc:  # tensorboard is in the [train] extra
        raise ImportError("TensorBoard logging needs the 'tensorboard' package: pip install -e '.[train]'") from exc
    return SummaryWriter(log_dir=str(out_dir / "tb"))

