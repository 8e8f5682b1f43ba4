"""How much the landmarks count once the photometric fit has shown how well the model explains
the photo.

The landmark weight is set for real photos, where the Lambertian face model leaves an L_pixel of
8–13 intensity levels after the first photometric stage (faces_dev: median 10.3, 5th percentile
6.3) and the detector's points are the sharper evidence. A photo the model explains far better
(the renders of a face model: 2–7 levels) has its geometry in the shading, and there the
detector's errors, not the shading, would write the identity. Such an item's landmark terms are
scaled by (L_pixel / ``ref``)^``power`` (at most 1); the fit then solves the landmark warm-up
again with that trust and runs its first photometric stage again from there
(:func:`backend.fit.coarse.fit_coarse`). Photos at or above ``ref`` are fitted exactly as before.
Measurements: docs/design.md, "Landmark trust from the photometric residual".
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..camera import Camera

__all__ = ["FOLLOWED", "PhotoTrustSettings", "for_detectors", "landmark_weight", "photo_scale", "photo_trust", "rescheduled", "switched_lens"]


FOLLOWED = 0.5  # below this photo trust the fit leaned on the shading: its landmark residual is no warning sign


@dataclass(frozen=True)
class PhotoTrustSettings:
    """``ref``: the first photometric stage's L_pixel (8-bit levels) from which an item keeps the
    landmarks' full weight (None: off); ``power``: how fast the weight falls below it;
    ``rerun_steps``: the first stage's second run takes this many times its steps (the shading,
    no longer held by the landmarks, has further to go)."""

    ref: float | None = 7.5
    power: float = 5.0
    rerun_steps: float = 3.0


def photo_trust(settings: PhotoTrustSettings, pixel: torch.Tensor) -> torch.Tensor | None:
    """Each item's landmark scale from its L_pixel: pixel (G,) levels → (G,) in (0, 1], or None
    when the rule is off or every item keeps full weight."""
    if settings.ref is None:
        return None
    scale = (pixel.clamp_min(1e-3) / settings.ref).pow(settings.power).clamp(max=1.0)
    return None if bool((scale >= 1.0).all()) else scale


def rescheduled(settings: PhotoTrustSettings, first: tuple[int, int], later: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The photometric (resolution, steps) stages still to run once the trust was lowered: the
    ``first`` stage again with ``rerun_steps`` times its steps, then the ``later`` ones."""
    return [(first[0], round(first[1] * settings.rerun_steps))] + list(later)


def switched_lens(camera: Camera, fallback: Camera, lowered: torch.Tensor) -> tuple[Camera, torch.Tensor]:
    """The crops' camera once the photo trust ``lowered`` (V,) bool some views' landmarks: those
    views see through ``fallback``'s lens (a lens the landmarks picked is no better than they
    are), the others keep theirs. Returns the camera and (V,) bool: the views whose lens changed."""
    V = lowered.numel()
    focal = camera.focal if camera.focal is not None else torch.full((V,), float("inf"), device=lowered.device)
    principal = camera.principal if camera.principal is not None else fallback.principal
    switch = lowered & (fallback.focal.to(focal) != focal)
    if not bool(switch.any()):
        return camera, switch
    focal = torch.where(switch, fallback.focal.to(focal), focal)
    principal = torch.where(switch[:, None], fallback.principal.to(principal), principal)
    return replace(camera, focal=focal, principal=principal), switch


def photo_scale(history: list[dict]) -> float:
    """The photo trust a one-item fit recorded in its ``history`` (1 when the rule left it alone)."""
    return float(next((h["photo_trust"] for h in history if "photo_trust" in h), 1.0))


def landmark_weight(history: list[dict]) -> float:
    """The scale a one-item fit gave its landmark terms in the end: the detectors' trust
    (:func:`.landmark_noise.landmark_trust`, the warm-up's entry) times the photo trust."""
    gap = next((h["landmark_trust"] for h in history if "landmark_trust" in h), 1.0)
    return float(gap) * photo_scale(history)


def for_detectors(settings: PhotoTrustSettings, detectors: list[str]) -> PhotoTrustSettings:
    """The settings for views whose landmarks came from ``detectors`` (each view's
    :attr:`backend.prepare.PreparedView.detector`): off when every view's landmarks were given
    (the user's own points are followed as given; the rule judges a detector's)."""
    return replace(settings, ref=None) if detectors and all(d == "given" for d in detectors) else settings
