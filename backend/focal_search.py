"""The lens of a photo that names none (no ``--focal-35mm``, no EXIF focal): chosen among a few
35-mm-equivalent focal lengths by the coarse fit's landmark warm-up (:mod:`backend.fit.landmark_solve`),
solved through each; the one whose warm-up loss (L_lm + R_param, + the dense term) ends lowest wins.
Each warm-up is the real fit's own (same inputs, the detectors' gaps included), so the winner's
solution goes on to the real fit instead of being solved again (:mod:`backend.fit.warmup_reuse`).
Every candidate is solved: over 1/focal the costs of real photos often have two dips, so a
shorter search would pick other lenses (docs/design.md, "Camera").

Perspective changes the landmarks' proportions (a near camera enlarges the nose against the
ears), so true landmarks pick a focal near the photo's; a detector's noise makes the pick
uncertain (evidence: docs/design.md, "Camera").
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from .facemodel import FaceModel
from .fit.coarse import CoarseFitConfig, CoarseFitResult, fit_coarse
from .fit.warmup_reuse import WarmupSolution
from .prepare import PreparedView, dense_targets, detector_gaps, mesh68_targets, views_camera

__all__ = ["CANDIDATES_35MM", "ESTIMATE_WITHOUT_LENS", "STANDARD_FOCAL_35MM", "estimate_focal", "estimate_focal_warmups",
           "fallback_views", "lens_fell_back", "warmup_cost"]

CANDIDATES_35MM = (math.inf, 135.0, 85.0, 50.0, 35.0, 24.0)  # mm, 35-mm equivalent (∞: orthographic)
# Whether reconstruct estimates the lens of photos without one (else backend.lens.DEFAULT_FOCAL_35MM).
ESTIMATE_WITHOUT_LENS = True
# The lens an estimated view falls back to when the fit's shading overrules its landmarks
# (backend.fit.photo_trust): the estimate is no better than the landmarks it read (docs/design.md, "Camera").
STANDARD_FOCAL_35MM = 50.0


def warmup_fit(model: FaceModel, view: PreparedView, config: CoarseFitConfig, device: torch.device) -> CoarseFitResult:
    """The coarse fit of one view through its ``focal_35mm`` with ``config`` (give it no
    photometric stages: then only the landmark warm-up runs, nothing is rendered), on the inputs
    the real fit gets, so its ``warmup`` is the real fit's to reuse."""
    t = lambda a: torch.from_numpy(np.asarray(a))[None].float().to(device)  # noqa: E731
    return fit_coarse(model, t(view.crop), t(view.crop_landmarks), t(view.skin_mask), config,
                      camera=views_camera([view], device=device), dense=dense_targets([view], device),
                      mesh68=mesh68_targets([view], device), gaps=detector_gaps([view], device))


def _final_cost(fit: CoarseFitResult, config: CoarseFitConfig) -> float:
    h, w = fit.history[0], config.weights
    return (w.landmark * h["landmark"] + w.reg * config.prior_scale * h["reg"]
            + w.landmark * config.dense_weight * h.get("dense", 0.0))


def warmup_cost(model: FaceModel, view: PreparedView, config: CoarseFitConfig, device: torch.device) -> float:
    """The landmark warm-up's final loss for one view through its ``focal_35mm`` (no rendering)."""
    return _final_cost(warmup_fit(model, view, config, device), config)


def estimate_focal_warmups(model: FaceModel, views: list[PreparedView], config: CoarseFitConfig, device: torch.device,
                           candidates: tuple[float, ...] = CANDIDATES_35MM,
                           ) -> tuple[list[PreparedView], list[WarmupSolution | None]]:
    """The views, each whose lens came from the default (``focal_source`` "none") given the
    candidate focal (mm) with the lowest warm-up loss (the first on ties) and ``focal_source``
    "estimated", the others as they are; and per view the winner's solved warm-up (None for the
    others), for ``fit_coarse(warmup=...)``.
    ``config``: the coarse fit's (its warm-up settings are used, nothing rendered)."""
    warm = replace(config, photo_schedule=(), identity=False, parts=replace(config.parts, enabled=False),
                   lid_gap=replace(config.lid_gap, active=False))
    out, solutions = [], []
    for view in views:  # a loop over photos: each view's lens on its own
        if view.focal_source != "none":
            out.append(view)
            solutions.append(None)
            continue
        fits = [warmup_fit(model, replace(view, focal_35mm=f), warm, device) for f in candidates]
        pick = int(np.argmin([_final_cost(fit, warm) for fit in fits]))
        out.append(replace(view, focal_35mm=candidates[pick], focal_source="estimated"))
        solutions.append(fits[pick].warmup)
    return out, solutions


def estimate_focal(model: FaceModel, views: list[PreparedView], config: CoarseFitConfig, device: torch.device,
                   candidates: tuple[float, ...] = CANDIDATES_35MM) -> list[PreparedView]:
    """The views with estimated lenses, as :func:`estimate_focal_warmups` (without the warm-ups)."""
    return estimate_focal_warmups(model, views, config, device, candidates)[0]


def fallback_views(views: list[PreparedView]) -> list[PreparedView]:
    """The views as the fit sees them once their landmarks lose their weight: an estimated lens
    becomes :data:`STANDARD_FOCAL_35MM` (``focal_source`` "standard"); a given or EXIF lens stays."""
    return [replace(v, focal_35mm=STANDARD_FOCAL_35MM, focal_source="standard") if v.focal_source == "estimated" else v
            for v in views]


def lens_fell_back(history: list[dict]) -> bool:
    """Whether a one-item fit switched to its :func:`fallback_views` lenses (its history says so)."""
    return any(h.get("lens_fallback", 0.0) > 0.0 for h in history)
