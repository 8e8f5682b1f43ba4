"""The lens of a photo that names none (no ``--focal-35mm``, no EXIF focal): chosen among a few
35-mm-equivalent focal lengths by the coarse fit's landmark warm-up (:mod:`backend.fit.landmark_solve`),
solved through each; the one whose warm-up loss (L_lm + R_param, + the dense term) ends lowest wins.
The search walks downhill from 50 mm along the candidates (ordered by 1/focal) and stops where both
neighbours cost more: the exhaustive search's pick whenever the costs fall then rise, in about
half the solves; the winner's solved warm-up goes on to the real fit (:mod:`backend.fit.warmup_reuse`).

Perspective changes the landmarks' proportions (a near camera enlarges the nose against the
ears), so true landmarks pick a focal near the photo's; a detector's noise makes the pick
uncertain (evidence: docs/design.md, "Camera").
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from .facemodel import FaceModel
from .fit.coarse import CoarseFitConfig, CoarseFitResult, fit_coarse
from .fit.warmup_reuse import WarmupSolution
from .prepare import PreparedView, dense_targets, detector_gaps, mesh68_targets, views_camera

__all__ = ["CANDIDATES_35MM", "ESTIMATE_WITHOUT_LENS", "estimate_focal", "estimate_focal_warmups", "lowest_downhill",
           "warmup_cost"]

CANDIDATES_35MM = (math.inf, 135.0, 85.0, 50.0, 35.0, 24.0)  # mm, 35-mm equivalent (∞: orthographic)
START_35MM = 50.0  # where the downhill search starts (the picks' middle)
# Whether reconstruct estimates the lens of photos without one (else backend.lens.DEFAULT_FOCAL_35MM).
ESTIMATE_WITHOUT_LENS = True


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


def lowest_downhill(cost: Callable[[int], float], n: int, start: int) -> int:
    """The index in 0..n-1 of the lowest ``cost(i)``, walking downhill from ``start``: right while
    the next costs less, else left while the next costs no more; each cost asked at most once.
    Argmin's answer (its first lowest on ties) whenever the costs fall, then rise."""
    best, low = start, cost(start)
    i = start + 1
    while i < n and (c := cost(i)) < low:
        best, low, i = i, c, i + 1
    if best == start:
        i = start - 1
        while i >= 0 and (c := cost(i)) <= low:
            best, low, i = i, c, i - 1
    return best


def estimate_focal_warmups(model: FaceModel, views: list[PreparedView], config: CoarseFitConfig, device: torch.device,
                           candidates: tuple[float, ...] = CANDIDATES_35MM, start: float = START_35MM,
                           ) -> tuple[list[PreparedView], list[WarmupSolution | None]]:
    """The views, each whose lens came from the default (``focal_source`` "none") given the
    candidate focal (mm, ordered by 1/focal) with the lowest warm-up loss (:func:`lowest_downhill`
    from ``start``) and ``focal_source`` "estimated", the others as they are; and per view the
    winner's solved warm-up (None for the others), for ``fit_coarse(warmup=...)``.
    ``config``: the coarse fit's (its warm-up settings are used, nothing rendered)."""
    warm = replace(config, photo_schedule=(), identity=False, parts=replace(config.parts, enabled=False))
    out, solutions = [], []
    for view in views:  # a loop over photos: each view's lens on its own
        if view.focal_source != "none":
            out.append(view)
            solutions.append(None)
            continue
        fits: dict[int, CoarseFitResult] = {}

        def cost(i: int, view=view, fits=fits) -> float:
            fits[i] = warmup_fit(model, replace(view, focal_35mm=candidates[i]), warm, device)
            return _final_cost(fits[i], warm)

        pick = lowest_downhill(cost, len(candidates), candidates.index(start) if start in candidates else 0)
        out.append(replace(view, focal_35mm=candidates[pick], focal_source="estimated"))
        solutions.append(fits[pick].warmup)
    return out, solutions


def estimate_focal(model: FaceModel, views: list[PreparedView], config: CoarseFitConfig, device: torch.device,
                   candidates: tuple[float, ...] = CANDIDATES_35MM) -> list[PreparedView]:
    """The views with estimated lenses, as :func:`estimate_focal_warmups` (without the warm-ups)."""
    return estimate_focal_warmups(model, views, config, device, candidates)[0]
