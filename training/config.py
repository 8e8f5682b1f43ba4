"""Training configs: dataclasses whose defaults are the paper's values, plus overrides.

Overrides come from a TOML file (``--config run.toml``; tables for nested configs) and then
``--key=value`` / ``--key value`` command-line arguments (nested keys dotted:
``--optim.lr=3e-4``). Unknown keys are rejected and values are type-checked against the
dataclass annotations. :func:`write_resolved` saves the final config into the run folder, and
every checkpoint carries it too.

The paper's values (its "Training schedule"): Adam, batch 10; stage 1 lr 1e-4 ×0.9 every 5,000
steps for 200,000 steps, L_coarse weights (1.3, 1.0, 1.5, 20) with ω (1.3, 1.0, 1.3); stage 2 lr
2e-3 ×0.98 every 5,000 steps for 20,000 steps, L_fine weights (1.0, 10, 10), w_sn 20, w_sz 10,
w_dn 0.5, w_dz 0.01; CelebA with 1,000 training images held out for validation.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from backend.errors import PhotoheadError
from backend.io_utils import atomic_write_text
from backend.losses import CoarseLossWeights, DetailLossWeights
from backend.quality import DRAFT
from backend.validate import one_line


class ConfigError(ValueError):
    """A config file or command-line override is unknown or of the wrong type."""


@dataclass
class OptimConfig:
    """Adam with step decay: ``lr · lr_decay^(step // lr_decay_every)``.

    ``grad_clip``: largest global L2 norm of the gradients (rescaled above it), 0 = no clipping
    (the paper names none). The norm before clipping is logged as ``train/grad_norm``: pick a
    limit a little above its usual values to cut only the outliers.
    """

    lr: float = 1e-4
    lr_decay: float = 0.9
    lr_decay_every: int = 5000
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float = 0.0


@dataclass
class LoopConfig:
    """The trainer's schedule and bookkeeping (see :mod:`training.loop`).

    - ``steps``: optimizer steps in total; ``batch_size``: *global* batch (split evenly over
      DDP ranks; must be divisible by the world size).
    - ``seed``: base seed; each rank seeds ``seed + rank``.
    - ``log_every`` (scalars), ``image_every`` (image grids), ``val_every`` (validation over
      ``val_batches`` batches), ``ckpt_every`` (atomic checkpoint ``step_XXXXXXX.pt`` +
      ``last.pt``; ``keep_last`` step files kept), 0 disables each.
    - ``num_workers``: DataLoader worker processes per rank.
    - ``device``: ``auto`` (CUDA when present), ``cpu``, ``cuda``.
    - ``amp``: mixed precision (autocast) on CUDA; ignored on CPU. ``amp_dtype``: ``bfloat16``
      (default: fp32's exponent range, no loss scaling needed) or ``float16`` (with a GradScaler,
      whose first steps are skipped while it finds its scale: our losses are O(100), pixel
      distances in 8-bit units and landmark errors in px²).
    - ``progress``: tqdm bar on rank 0.
    """

    steps: int = 200_000
    batch_size: int = 10
    seed: int = 0
    log_every: int = 50
    image_every: int = 1000
    val_every: int = 5000
    val_batches: int = 20
    ckpt_every: int = 5000
    keep_last: int = 3
    num_workers: int = 2
    device: str = "auto"
    amp: bool = True
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"
    progress: bool = True


@dataclass
class DataConfig:
    """Where photos come from and how they are preprocessed (see :mod:`training.data`).

    - ``data``: image folder (CelebA root with ``img_align_celeba/`` or any folder, recursive),
      or ``synthetic`` for faces rendered from the face model with known parameters.
    - ``cache``: preprocessing cache folder ("" → ``<out>/cache``; share it between stages).
    - ``crop_size``: aligned crop side (paper 224). ``val_count``: images held out (paper 1,000).
    - ``min_face_px``: reject faces whose landmark box is smaller; ``min_score``: reject
      detections below this confidence. ``workers``: preprocessing processes.
    - ``synthetic_count``: images in the synthetic set.
    - ``layout``: ``auto``, ``folder``, ``celeba`` (official partition file) or ``ffhq``;
      ``split``: ``auto`` (train for CelebA/FFHQ, all for a folder), ``train``, ``val``, ``test``,
      ``all``; ``shard_size``: photos per cache shard (see :mod:`training.prepare`). With a
      prepared cache (``photohead train prepare``), ``data`` may be left empty.
    """

    data: str = ""
    cache: str = ""
    crop_size: int = 224
    val_count: int = 1000
    min_face_px: float = 60.0
    min_score: float = 0.0
    workers: int = 2
    synthetic_count: int = 64
    layout: Literal["auto", "folder", "celeba", "ffhq"] = "auto"
    split: Literal["auto", "train", "val", "test", "all"] = "auto"
    shard_size: int = 500


@dataclass
class SuiteEvalConfig:
    """The evaluation suites during training (:mod:`training.validation`): every ``every`` steps
    (0 = off) rank 0 saves the current networks to ``<out>/eval_ckpt/`` and runs the synthetic
    suite on ``synthetic_n`` faces and, when ``landmarks`` names a folder of annotated photos,
    the landmark suite on ``landmarks_n`` of them (a fixed seeded sample), in ``mode`` (predict
    or hybrid) at ``quality``. Their summaries are logged to TensorBoard (``eval/<suite>/<key>``);
    ``best.pt`` keeps the checkpoint with the best ``metric`` (``<suite>/<summary key>``, lower is
    better unless ``higher_is_better``)."""

    every: int = 0
    synthetic_n: int = 8
    landmarks: str = ""
    landmarks_n: int = 8
    mode: Literal["predict", "hybrid"] = "predict"
    quality: str = DRAFT
    metric: str = "synthetic/vertex_err_mean_mm"
    higher_is_better: bool = False


@dataclass
class EncoderArchConfig:
    """Stage-1 encoder choice: ``vgg16`` (paper, VGG-Face structure) or ``light``; channel
    ``width`` multiplier; VGG ``fc_dim``."""

    arch: Literal["vgg16", "light"] = "vgg16"
    width: float = 1.0
    fc_dim: int = 4096


@dataclass
class CoarseConfig:
    """Stage 1 (``python -m training.coarse``).

    - ``out``: run folder (config.json, checkpoints, TensorBoard events).
    - ``model``: face model file ("" → the default ICT model on the search path).
    - ``albedo_k``, ``albedo_uv``: size and UV resolution of the albedo basis used when the face
      model has no texture basis (ICT), see :mod:`training.albedo_basis`.
    - ``use_identity``: include L_id (needs the identity network's weights).
    - ``init``: checkpoint to take weights from at step 0 (not a resume).
    - ``resume``: "" (fresh run; refuses a non-empty run folder with a checkpoint), ``auto``
      (``<out>/last.pt`` when present) or a checkpoint path.
    - ``supervised``: weight of L_param, the mean squared error of the regressed identity and
      expression coefficients against the true ones, on data that knows them (synthetic faces:
      ``--data synthetic`` or a ``photohead train synth`` cache); 0 = off (the paper's training).
    """

    out: str = "runs/coarse"
    model: str = ""
    albedo_k: int = 10
    albedo_uv: int = 128
    use_identity: bool = True
    init: str = ""
    resume: str = ""
    supervised: float = 0.0
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderArchConfig = field(default_factory=EncoderArchConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, lr_decay=0.9, lr_decay_every=5000))
    loss: CoarseLossWeights = field(default_factory=CoarseLossWeights)
    eval: SuiteEvalConfig = field(default_factory=SuiteEvalConfig)


@dataclass
class DetailConfig:
    """Stage 2 (``python -m training.detail``): stage 1 frozen, U-Net trained.

    - ``coarse``: stage-1 checkpoint (required).
    - ``uv_size``: UV side of the unwrapped pair and the displacement map (paper 256).
    - ``ngf``, ``norm``, ``max_mm``: U-Net architecture (see ``backend.nets.UNetConfig``).
    """

    out: str = "runs/detail"
    model: str = ""
    coarse: str = ""
    uv_size: int = 256
    ngf: int = 64
    norm: Literal["batch", "instance", "none"] = "batch"
    max_mm: float = 3.0
    init: str = ""
    resume: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(steps=20_000))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-3, lr_decay=0.98, lr_decay_every=5000))
    loss: DetailLossWeights = field(default_factory=DetailLossWeights)
    eval: SuiteEvalConfig = field(default_factory=lambda: SuiteEvalConfig(metric="synthetic/vertex_err_mean_mm"))


# -- overrides -----------------------------------------------------------------------------
def to_dict(cfg: Any) -> dict:
    """A config as a plain, JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type, d: dict) -> Any:
    """Rebuild a config of type ``cls`` from :func:`to_dict` output (type-checked)."""
    return apply_overrides(cls(), d)


def apply_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """A copy of ``cfg`` with ``overrides`` applied.

    ``overrides``: nested dicts (TOML tables) and/or dotted keys (``"optim.lr"``); values are
    typed (TOML / JSON) or strings from the command line (parsed per field type).
    Raises :class:`ConfigError` on an unknown key or a value of the wrong type.
    """
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})
            if not isinstance(nested[head], dict):
                raise ConfigError(f"config key {head!r} set both as a value and as a table")
            nested[head][rest] = value
        elif isinstance(value, dict):
            nested.setdefault(head, {}).update(value)
        else:
            nested[head] = value
    return _apply(cfg, nested, prefix="")


def _apply(cfg: Any, nested: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in nested.items():
        path = prefix + key
        if key not in names:
            raise ConfigError(f"unknown config key {path!r} (known: {', '.join(sorted(prefix + n for n in names))})")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {path!r} is a table; set its fields as {path}.<name>")
            changes[key] = _apply(current, value, path + ".")
        else:
            changes[key] = _coerce(value, hints[key], path)
    return dataclasses.replace(cfg, **changes) if changes else cfg


def _coerce(value: Any, typ: Any, path: str) -> Any:
    """Check / convert ``value`` to the annotated type ``typ`` (strings from the CLI are parsed)."""
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for alt in args:
            if alt is type(None):
                if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
                    return None
                continue
            try:
                return _coerce(value, alt, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError("; ".join(errors) or f"{path}: bad value {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = _parse_literal(value, path, list)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path} needs {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if typ is bool:
        if isinstance(value, str):
            low = value.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path} must be true or false, got {value!r}")
    if typ is int:
        if isinstance(value, str):
            value = _parse_literal(value.replace("_", ""), path, int)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, str):
            value = _parse_literal(value, path, (int, float))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path} must be a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported config type {typ!r}")


def _parse_literal(text: str, path: str, expect: type | tuple[type, ...]) -> Any:
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: cannot parse {text!r} ({exc})") from exc
    if not isinstance(value, expect):
        raise ConfigError(f"{path}: expected {expect}, got {text!r}")
    return value


def load_toml(path: str | Path) -> dict:
    """Read an override file. Raises :class:`ConfigError` when missing or malformed."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc


#: Shorthands: ``--data DIR`` is ``--data.data=DIR``, ``--lr=1e-4`` is ``--optim.lr=1e-4``, ...
ALIASES = {"data": "data.data", "cache": "data.cache", "steps": "loop.steps", "seed": "loop.seed", "lr": "optim.lr",
           "batch_size": "loop.batch_size", "device": "loop.device"}


def parse_args(cfg: Any, argv: list[str]) -> Any:
    """Apply ``--config FILE.toml`` then ``--key=value`` / ``--key value`` arguments to ``cfg``.

    ``--help`` raises :class:`ConfigError` carrying the list of keys and defaults.
    """
    overrides: dict[str, Any] = {}
    files: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            raise ConfigError(help_text(cfg))
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument {arg!r}: use --key=value")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise ConfigError(f"--{key} needs a value (--{key}=VALUE)")
            value = argv[i + 1]
            i += 1
        i += 1
        if key == "config":
            files.append(value)
            continue
        overrides[_resolve_alias(cfg, key)] = value
    for f in files:
        cfg = apply_overrides(cfg, load_toml(f))
    return apply_overrides(cfg, overrides)


def _resolve_alias(cfg: Any, key: str) -> str:
    """``key`` or the key its shorthand stands for: a shorthand applies where its target exists
    and ``key`` is not a plain field of ``cfg`` (``--seed`` is ``loop.seed`` for a trainer,
    ``seed`` itself for ``training.synth``; ``--data`` is ``data.data`` wherever ``data`` is a table)."""
    alias = ALIASES.get(key)
    if alias is None or not hasattr(cfg, alias.partition(".")[0]):
        return key
    if hasattr(cfg, key) and not dataclasses.is_dataclass(getattr(cfg, key)):
        return key
    return alias


def help_text(cfg: Any) -> str:
    """Every ``--key=default`` of a config, one per line."""
    lines = [f"  --{k}={v!r}" for k, v in flatten(to_dict(cfg)).items()]
    short = ", ".join(f"--{a} = --{k}" for a, k in ALIASES.items())
    return ("options (--key=value or --key value; --config FILE.toml first):\n" + "\n".join(lines)
            + f"\nshorthands: {short}")


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dicts → one dict with dotted keys (``{"optim": {"lr": 1}}`` → ``{"optim.lr": 1}``)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def write_resolved(cfg: Any, out_dir: str | Path) -> Path:
    """Write ``config.json`` (the fully resolved config) into the run folder, atomically."""
    return atomic_write_text(Path(out_dir) / "config.json", json.dumps(to_dict(cfg), indent=2) + "\n")


def cli_main(defaults: Any, run: "typing.Callable[[Any], Any]", doc: str, stage: str, argv: list[str] | None = None) -> int:
    """The trainers' ``main``: ``--help`` prints ``doc`` and every config key; otherwise parse
    ``argv`` over ``defaults`` (exit code 2 on a bad key or value) and ``run`` the config."""
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(doc + "\n" + help_text(defaults))
        return 0

    try:
        cfg = parse_args(defaults, argv)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    out = Path(cfg.out) if str(cfg.out).strip() else None
    made_here = out is not None and not out.exists()
    try:
        result = run(cfg)
    except (PhotoheadError, ConfigError) as exc:  # bad input: one line, exit 2, no debris
        if made_here and out.is_dir() and not any(out.glob("*.pt")) and int(os.environ.get("RANK", "0")) == 0:
            shutil.rmtree(out, ignore_errors=True)
        print(f"{stage}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(f"{stage} done at step {result.step}; checkpoint: {result.last_checkpoint}")
    return 0
