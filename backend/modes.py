"""The reconstruction modes, one strategy each: how the coarse and the detail stage get their
answer.

- ``fit`` (:class:`FitMode`): per-photo analysis-by-synthesis (:func:`backend.fit.coarse.fit_coarse`,
  :func:`backend.fit.detail.fit_detail`); needs no trained weights.
- ``predict`` (:class:`PredictMode`): the trained networks only (:mod:`backend.predict`: one encoder
  pass, one U-Net pass; the detail surface is built from the predicted displacement without
  optimisation).
- ``hybrid`` (:class:`HybridMode`): the predictions initialise both fits; with ``tune_unet`` the
  detail stage fine-tunes a copy of the U-Net's weights instead of optimising the map.

Network modes read ``config.checkpoints`` (``coarse.pt``, optional ``detail.pt``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

import torch

from .camera import Camera
from .detail_input import DetailNetInput
from .errors import PhotoheadError, WeightsNotFoundError
from .facemodel import FaceModel
from .fit.coarse import CoarseFitConfig, CoarseFitResult, fit_coarse
from .fit.detail import DetailFitConfig
from .fit.warmup_reuse import WarmupSolution
from .nets import DetailUNet
from .predict import Predictor, load_predictor
from .progress import CancelToken, Stage

if TYPE_CHECKING:  # annotations only: reconstruct imports this module
    from .reconstruct import ReconstructConfig

__all__ = ["Mode", "FitMode", "PredictMode", "HybridMode", "MODES", "DetailPlan", "mode_for"]


@dataclass(frozen=True)
class DetailPlan:
    """How the detail fit starts: its settings, an initial map (1,1,S,S) mm or None, the U-Net to
    tune with its input (hybrid ``tune_unet``) or None, and the timing key it reports under."""

    config: DetailFitConfig
    init: torch.Tensor | None
    net: DetailUNet | None
    net_input: DetailNetInput | None
    timing: str


class Mode:
    """One reconstruction mode: checks, networks and the coarse and detail stages' starts."""

    name = ""
    coarse_timing = ""
    tunes_unet = False  # whether ``config.tune_unet`` applies

    def __init__(self, config: ReconstructConfig):
        self.config = config

    def check(self) -> None:
        """Reject option combinations this mode cannot run, before any work."""
        if self.config.tune_unet and not self.tunes_unet:
            raise PhotoheadError(f"tuning the U-Net is part of hybrid mode, not {self.name!r}: use --mode hybrid")

    def load(self, model: FaceModel, device: torch.device) -> None:
        """Load what the mode needs besides the face model (nothing for ``fit``)."""

    def coarse_config(self, cfg: CoarseFitConfig) -> CoarseFitConfig:
        """The coarse settings this mode runs with."""
        return cfg

    def coarse(
        self, model: FaceModel, crops: torch.Tensor, landmarks: torch.Tensor, skin: torch.Tensor, cfg: CoarseFitConfig,
        identity: Callable | None, progress: Stage, cancel: CancelToken | None, dense: torch.Tensor | None = None,
        mesh68: torch.Tensor | None = None, gaps: torch.Tensor | None = None, camera: Camera | None = None,
        warmup: WarmupSolution | None = None, fallback_camera: Camera | None = None,
    ) -> CoarseFitResult:
        """The coarse answer for crops (V,224,224,3) [0,1], landmarks (V,68,2) crop px, skin (V,224,224),
        dense (V,468,2) crop px Face Mesh points and mesh68 (V,68,2) crop px their 68 (NaN rows: views
        without; None: none), gaps (V,) the detectors' disagreement (NaN: unknown), camera the crops'
        with each view's lens (None: orthographic), warmup the lens estimate's solved landmark warm-up
        (used where it solved this fit's, :mod:`backend.fit.warmup_reuse`), fallback_camera the
        lenses the fit falls back to when the shading overrules the landmarks (:mod:`backend.fit.photo_trust`)."""
        return fit_coarse(model, crops, landmarks, skin, cfg, identity_net=identity, progress=progress, cancel=cancel,
                          dense=dense, mesh68=mesh68, gaps=gaps, camera=camera, warmup=warmup,
                          fallback_camera=fallback_camera)

    def detail_skipped(self) -> str | None:
        """Why the detail stage cannot run in this mode (a warning), or None."""
        return None

    def detail_plan(self, model: FaceModel, fit: CoarseFitResult, crops: torch.Tensor, cfg: DetailFitConfig) -> DetailPlan:
        """How the detail fit starts, given the coarse answer and the 224² crops."""
        return DetailPlan(cfg, None, None, None, "detail_fit_s")


class FitMode(Mode):
    """Per-photo optimisation of both stages; needs no weights."""

    name = "fit"
    coarse_timing = "coarse_fit_s"


class _NetworkMode(Mode):
    """A mode with trained networks (``config.checkpoints``)."""

    predictor: Predictor

    def check(self) -> None:
        if not self.config.checkpoints:
            raise WeightsNotFoundError(
                f"mode {self.name!r} needs trained networks: pass --checkpoints DIR (a folder with coarse.pt and "
                "optionally detail.pt, see docs/training.md) or use --mode fit"
            )
        super().check()

    def load(self, model: FaceModel, device: torch.device) -> None:
        self.predictor = load_predictor(self.config.checkpoints, device, model)


class PredictMode(_NetworkMode):
    """The networks' answers, no optimisation."""

    name = "predict"
    coarse_timing = "coarse_predict_s"

    def coarse_config(self, cfg: CoarseFitConfig) -> CoarseFitConfig:
        return replace(cfg, identity=False)  # no fit: L_id only serves the multi-view outlier check

    def coarse(self, model, crops, landmarks, skin, cfg, identity, progress, cancel, dense=None,
               mesh68=None, gaps=None, camera=None, warmup=None, fallback_camera=None) -> CoarseFitResult:
        return self.predictor.predict_coarse(model, crops, self.config.shared_expression)  # orthographic

    def detail_skipped(self) -> str | None:
        if self.predictor.has_detail:
            return None
        return f"no detail.pt in {self.config.checkpoints}: detail stage skipped (train stage 2, docs/training.md)"

    def detail_plan(self, model, fit, crops, cfg) -> DetailPlan:
        init = self.predictor.predict_detail(model, fit, crops, size=cfg.uv_size)
        # no optimisation: builds the surface of the prediction
        return DetailPlan(replace(cfg, steps=0), init, None, None, "detail_predict_s")


class HybridMode(_NetworkMode):
    """The networks' answers start both fits."""

    name = "hybrid"
    coarse_timing = "coarse_fit_s"
    tunes_unet = True

    def load(self, model: FaceModel, device: torch.device) -> None:
        super().load(model, device)
        if self.config.tune_unet and self.config.detail and not self.predictor.has_detail:
            raise WeightsNotFoundError(
                f"tuning the U-Net needs detail.pt in {self.config.checkpoints} (train stage 2, docs/training.md)"
            )

    def coarse(self, model, crops, landmarks, skin, cfg, identity, progress, cancel, dense=None,
               mesh68=None, gaps=None, camera=None, warmup=None, fallback_camera=None) -> CoarseFitResult:
        predicted = self.predictor.predict_coarse(model, crops, self.config.shared_expression)
        # the encoder's orthographic pose starts the fit through the lens
        return fit_coarse(model, crops, landmarks, skin, cfg, identity_net=identity, progress=progress, cancel=cancel,
                          init=self.predictor.init_for_fit(predicted), dense=dense, mesh68=mesh68, gaps=gaps,
                          camera=camera)

    def detail_plan(self, model, fit, crops, cfg) -> DetailPlan:
        if self.config.tune_unet:
            return DetailPlan(cfg, None, self.predictor.unet, self.predictor.detail_input(model, fit, crops),
                              "detail_tune_s")
        init = self.predictor.predict_detail(model, fit, crops, size=cfg.uv_size) if self.predictor.has_detail else None
        return DetailPlan(cfg, init, None, None, "detail_fit_s")


MODES: dict[str, type[Mode]] = {m.name: m for m in (FitMode, PredictMode, HybridMode)}


def mode_for(config: ReconstructConfig) -> Mode:
    """The strategy of ``config.mode``, checked (raises :class:`PhotoheadError` before any work)."""
    if config.mode not in MODES:
        raise PhotoheadError(f"unknown mode {config.mode!r}: use {', '.join(MODES)}")
    mode = MODES[config.mode](config)
    mode.check()
    return mode
