"""The lens of a photo that names none (no ``--focal-35mm``, no EXIF focal): chosen among a few
35-mm-equivalent focal lengths by the coarse fit's landmark warm-up (:mod:`backend.fit.landmark_solve`),
solved through each; the one whose warm-up loss (L_lm + R_param, + the dense term) ends lowest wins.

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
from .fit.coarse import CoarseFitConfig, fit_coarse
from .prepare import PreparedView, dense_targets, mesh68_targets, views_camera

__all__ = ["CANDIDATES_35MM", "ESTIMATE_WITHOUT_LENS", "estimate_focal", "warmup_cost"]

CANDIDATES_35MM = (math.inf, 135.0, 85.0, 50.0, 35.0, 24.0)  # mm, 35-mm equivalent (∞: orthographic)
# Whether reconstruct estimates the lens of photos without one (else backend.lens.DEFAULT_FOCAL_35MM).
ESTIMATE_WITHOUT_LENS = True


def warmup_cost(model: FaceModel, view: PreparedView, config: CoarseFitConfig, device: torch.device) -> float:
    """The landmark warm-up's final loss for one view through its ``focal_35mm`` (no rendering)."""
    t = lambda a: torch.from_numpy(np.asarray(a))[None].float().to(device)  # noqa: E731
    fit = fit_coarse(model, t(view.crop), t(view.crop_landmarks), t(view.skin_mask), config,
                     camera=views_camera([view], device=device), dense=dense_targets([view], device),
                     mesh68=mesh68_targets([view], device))
    h, w = fit.history[0], config.weights
    return (w.landmark * h["landmark"] + w.reg * config.prior_scale * h["reg"]
            + w.landmark * config.dense_weight * h.get("dense", 0.0))


def estimate_focal(model: FaceModel, views: list[PreparedView], config: CoarseFitConfig, device: torch.device,
                   candidates: tuple[float, ...] = CANDIDATES_35MM) -> list[PreparedView]:
    """The views, each whose lens came from the default (``focal_source`` "none") given the
    candidate focal (mm) with the lowest warm-up loss and ``focal_source`` "estimated"; the others
    as they are. ``config``: the coarse fit's (its warm-up settings are used, nothing rendered)."""
    warm = replace(config, photo_schedule=(), identity=False, parts=replace(config.parts, enabled=False))
    out = []
    for view in views:  # a loop over photos: each view's lens on its own
        if view.focal_source != "none":
            out.append(view)
            continue
        costs = [warmup_cost(model, replace(view, focal_35mm=f), warm, device) for f in candidates]
        out.append(replace(view, focal_35mm=candidates[int(np.argmin(costs))], focal_source="estimated"))
    return out
