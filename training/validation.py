"""The evaluation suites as a validation hook during training (``--eval.every=N``).

Every ``eval.every`` steps rank 0 writes the networks being trained into ``<out>/eval_ckpt/``
(``coarse.pt``; stage 2 adds ``detail.pt`` beside a copy of its stage-1 checkpoint), runs
:func:`evaluation.suites.run_synthetic` (``eval.synthetic_n`` faces, seed 0, the true 2-D
landmarks) and, with ``eval.landmarks``, :func:`evaluation.suites.run_landmarks` (a seeded random
sample of ``eval.landmarks_n`` annotated photos) in predict or hybrid mode, and returns their
numeric summaries as ``{"<suite>/<key>": value}``. The trainer logs them (``eval/...``) and keeps
``best.pt`` by ``eval.metric`` (see :func:`training.loop.train`). The same subsets every time, so
the curves compare steps of one run; they are small and say little about a model's accuracy:
evaluate a finished model with ``photohead evaluate ... --mode predict --checkpoints DIR``.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

from torch import nn

from backend.checkpoint import save_checkpoint
from backend.reconstruct import reconstruct
from evaluation.suites import run_landmarks, run_synthetic

from .config import ConfigError, SuiteEvalConfig

__all__ = ["SuiteValidation"]


class SuiteValidation:
    """``hook(step, model) -> {"synthetic/<key>": float, "landmarks/<key>": float}`` (rank 0).

    ``stage``: ``coarse`` (``model`` is the encoder) or ``detail`` (the U-Net; ``coarse_ckpt`` the
    frozen stage-1 checkpoint). ``model_card``: the card the trainer writes into checkpoints (the
    face model and albedo basis predict mode needs; may be set later as ``card``). The settings
    are checked when it is made, before the trainer writes anything."""

    def __init__(self, cfg: SuiteEvalConfig, stage: str, out_dir: str | Path, model_card: dict | None = None,
                 coarse_ckpt: str | Path | None = None):
        if stage not in ("coarse", "detail"):
            raise ValueError(f"stage must be 'coarse' or 'detail', got {stage!r}")
        if stage == "detail" and not coarse_ckpt:
            raise ConfigError("the detail stage's validation needs its stage-1 checkpoint (--coarse)")
        if cfg.landmarks and not Path(cfg.landmarks).is_dir():
            raise ConfigError(f"--eval.landmarks folder {cfg.landmarks} not found (annotated photos)")
        suite = cfg.metric.partition("/")[0]
        if suite not in ("synthetic", "landmarks") or (suite == "landmarks" and not cfg.landmarks):
            raise ConfigError(f"--eval.metric {cfg.metric!r} must be synthetic/<key>, or landmarks/<key> with "
                             "--eval.landmarks set")
        self.cfg, self.stage, self.card = cfg, stage, dict(model_card or {})
        self.folder = Path(out_dir) / "eval_ckpt"
        self.coarse_ckpt = Path(coarse_ckpt) if coarse_ckpt else None

    def metric_improves(self, value: float, best: float | None) -> bool:
        """Whether ``value`` of the declared metric beats ``best`` (None: nothing yet)."""
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best if self.cfg.higher_is_better else value < best

    def __call__(self, step: int, model: nn.Module) -> dict[str, float]:
        self.folder.mkdir(parents=True, exist_ok=True)
        card = {**self.card, "steps": int(step)}
        if self.stage == "coarse":
            save_checkpoint(self.folder / "coarse.pt", model=model, step=step, model_card=card)
        else:
            if not (self.folder / "coarse.pt").exists():
                shutil.copyfile(self.coarse_ckpt, self.folder / "coarse.pt")
            save_checkpoint(self.folder / "detail.pt", model=model, step=step, model_card=card)
        was_training = model.training
        model.eval()
        try:
            # the pipeline passed in: the suite then skips its fit-based extras (oracle detail fit, dlib's error)
            common = dict(quality=self.cfg.quality, seed=0, mode=self.cfg.mode, checkpoints=self.folder,
                          reconstruct_fn=lambda images, config: reconstruct(images, config))
            out = _numbers("synthetic", run_synthetic(n=self.cfg.synthetic_n, detail=self.stage == "detail", **common))
            if self.cfg.landmarks:
                out.update(_numbers("landmarks", run_landmarks(self.cfg.landmarks, n=self.cfg.landmarks_n,
                                                               sample="random", per_item=False, **common)))
        finally:
            model.train(was_training)
        return out


def _numbers(suite: str, results: dict) -> dict[str, float]:
    return {f"{suite}/{k}": float(v) for k, v in results["summary"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
