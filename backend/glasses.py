"""Eyeglasses kept out of the albedo: a view whose face crop shows glasses has its frames (and
the lenses' glare) replaced by the surrounding skin, like hair over the forehead.

Glasses are on both halves of the face, so :mod:`backend.occlusion`'s mirror cannot help, and
inside the inner face the albedo trusts every colour. Per view, :func:`glasses_cues` measures two
thin-line cues in the 224² face crop (rows of a strip, each row's mean colour, its departure from
a running median over ≈ 0.35 eye widths: a frame is a thin line across the strip, shading and
wrinkles are broad or short): the nose bridge between the inner eye corners, and the temple
strips between the eyes' outer corners and the face outline, where both sides must show a line
at the same height (the temple arms and the rims' outer ends). :func:`wears_glasses` thresholds
their geometric mean; on faces_dev (870 photos, annotation landmarks) the 50 highest are 47
glasses (docs/design.md). Pixels that show no photo (outside it, or in its black bars) are left out
of the rows.

Where a view wears glasses, :func:`glasses_zone` (a band around the eyes from the brows to below
the lower rims, the nose bridge, and the temple arms out past the face outline at eye level; less
the brows, lips and the eyes with a thin margin, :func:`glasses_features`) is handed to
:func:`backend.hair_fill.remove_hair` with :data:`GLASSES_FILL`: texels whose colour departs from
the local skin (darker frames, bright glare, coloured frames) take a fill of the view's
surrounding skin.

Letters: V views, S×S crop pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, median_filter

from .align import _polygon_mask
from .hair_fill import HairFillSettings
from .image_filters import LUMA
from .occlusion import feature_mask

__all__ = ["GlassesSettings", "GlassesCues", "GLASSES_FILL", "glasses_cues", "wears_glasses", "glasses_zone",
           "glasses_features", "view_glasses_scores", "view_glasses_masks"]

# thin frames: a finer local skin, a thinner rim and gap than hair's; pale and thin metal rims
# depart less from the skin than hair does
GLASSES_FILL = HairFillSettings(dark=(0.9, 0.75), bright=(1.15, 1.35), chroma=(0.08, 0.16), local_mm=12.0, rim_mm=1.0,
                                gap_mm=1.0)
# the eyes kept from the fill, grown by these fractions of the eye width sideways and up/down (the
# lashes, lids and make-up; backend.occlusion's 0.35 all round kept the rims' corners)
EYE_MARGIN_SIDE, EYE_MARGIN_UP = 0.08, 0.2
# the brows kept down to this many eye widths below their points (the features' 0.4 kept a frame's
# top bar just under the brows)
BROW_BELOW = 0.2


@dataclass(frozen=True)
class GlassesSettings:
    """- ``threshold``: the geometric mean of the bridge and temple cues (:class:`GlassesCues`)
      at and above which a view wears glasses;
    - ``window``: the running median's length, in eye widths (a line thinner than about half of
      it stands out);
    - ``log_floor``: added to the luminance and colour channels before their logarithm (dark skin's
      noise is not a line);
    - ``chroma``: weight of the chroma departure (log R/G, log B/G) next to the luminance's;
    - ``min_valid``: a row counts when at least this fraction of its pixels lies in the photo."""

    threshold: float = 0.14
    window: float = 0.35
    log_floor: float = 0.03
    chroma: float = 0.5
    min_valid: float = 0.5


@dataclass(frozen=True)
class GlassesCues:
    """A view's cues (dimensionless log-colour departures): ``bridge`` the strongest thin line
    across the nose bridge, ``temple`` the strongest line at one height on both temple strips,
    ``score`` their geometric mean."""

    bridge: float
    temple: float
    score: float


def _line_profile(strip: np.ndarray, valid: np.ndarray, window: int, settings: GlassesSettings) -> np.ndarray:
    """(R,) how much each row of ``strip`` (R,C,3) in [0,1] stands out as a thin line: its mean
    colour over the ``valid`` (R,C) pixels against the rows' running median (``window`` rows),
    |Δ log luminance| + ``chroma`` × |Δ (log R/G, log B/G)|; 0 on rows with too few valid pixels."""
    R, C = valid.shape
    out = np.zeros(R)
    n = valid.sum(1)
    ok = np.flatnonzero(n >= max(1.0, settings.min_valid * C))
    if ok.size < 6:
        return out
    rows = (strip * valid[..., None]).sum(1)[ok] / n[ok, None]  # (R',3)
    eps = settings.log_floor
    lum = np.log(rows @ np.asarray(LUMA, np.float64) + eps)
    chroma = np.log((rows[:, [0, 2]] + eps) / (rows[:, 1:2] + eps))  # (R',2)
    signal = np.concatenate([lum[:, None], chroma], 1)
    dev = signal - median_filter(signal, size=(window, 1), mode="nearest")
    out[ok] = np.abs(dev[:, 0]) + settings.chroma * np.hypot(dev[:, 1], dev[:, 2])
    return out


def _strip(crop: np.ndarray, valid: np.ndarray, x0: float, x1: float, y0: float, y1: float,
           ) -> tuple[np.ndarray, np.ndarray]:
    """The crop's pixels (and their validity) in the box [x0, x1) × [y0, y1), clipped."""
    S = valid.shape[0]
    xa, xb = (int(round(float(np.clip(x, 0, S)))) for x in (min(x0, x1), max(x0, x1)))
    ya, yb = (int(round(float(np.clip(y, 0, S)))) for y in (y0, y1))
    return crop[ya:yb, xa:xb].astype(np.float64), valid[ya:yb, xa:xb]


def _both_sides(a: np.ndarray, b: np.ndarray) -> float:
    """The strongest line two profiles (R,) share at one row (±1 row)."""
    n = min(len(a), len(b))
    if n < 3:
        return 0.0
    a, b = a[:n], b[:n]
    near = lambda x: np.maximum(np.maximum(x, np.roll(x, 1)), np.roll(x, -1))  # noqa: E731
    return float(np.maximum(np.minimum(a, near(b)), np.minimum(near(a), b)).max())


def glasses_cues(crop: np.ndarray, landmarks68: np.ndarray, valid: np.ndarray | None = None,
                 settings: GlassesSettings = GlassesSettings()) -> GlassesCues:
    """The glasses cues of one face crop: crop (S,S,3) float in [0,1], landmarks68 (68,2) crop
    pixels, valid (S,S) bool the pixels inside the photo (None: all)."""
    lm = np.asarray(landmarks68, np.float64)
    valid = np.ones(crop.shape[:2], bool) if valid is None else np.asarray(valid, bool)
    eye_w = 0.5 * (np.linalg.norm(lm[39] - lm[36]) + np.linalg.norm(lm[45] - lm[42]))
    window = max(3, int(round(settings.window * eye_w)) | 1)
    gap = lm[42, 0] - lm[39, 0]
    eye_y = 0.5 * (lm[39, 1] + lm[42, 1])
    # the bridge: between the inner eye corners, from above the inner brows to below the corners
    s, v = _strip(crop, valid, lm[39, 0] + 0.2 * gap, lm[42, 0] - 0.2 * gap,
                  min(lm[21, 1], lm[22, 1]) - 0.1 * gap, eye_y + 0.2 * gap)
    bridge = float(_line_profile(s, v, window, settings).max()) if s.shape[0] >= 6 and s.shape[1] >= 2 else 0.0
    # the temples: from the face outline to the outer eye corner, brow height to below the corner
    profiles = []
    for outline, corner, sign in ((lm[0], lm[36], 1.0), (lm[16], lm[45], -1.0)):
        s, v = _strip(crop, valid, outline[0] + sign * 0.1 * eye_w, corner[0] - sign * 0.35 * eye_w,
                      corner[1] - 0.6 * eye_w, corner[1] + 0.5 * eye_w)
        profiles.append(_line_profile(s, v, window, settings) if s.shape[0] >= 6 and s.shape[1] >= 2 else np.zeros(1))
    temple = _both_sides(*profiles)
    return GlassesCues(bridge=bridge, temple=temple, score=float(np.sqrt(bridge * temple)))


def wears_glasses(cues: GlassesCues, settings: GlassesSettings = GlassesSettings()) -> bool:
    """Whether the cues say glasses (their geometric mean at or above ``settings.threshold``)."""
    return cues.score >= settings.threshold


def glasses_zone(landmarks68: np.ndarray, size: int, soft_px: float = 0.0) -> np.ndarray:
    """Where glasses lie in a face crop: from just above the brows (17–26) down to 1.2 eye widths
    below each eye, the nose bridge and the top of the nose between, sideways to the face outline
    (0–2, 14–16), and a band at the eyes' outer corners' height (−0.6 to +0.5 eye widths)
    continued past the outline (the temple arms). landmarks68 (68,2) in the crop's pixels; the
    brows, eyes and lips are taken out by the caller (:func:`backend.occlusion.feature_mask`).
    Returns (size,size) float32 in [0,1] (``soft_px``: Gaussian σ of the edge, pixels)."""
    lm = np.asarray(landmarks68, np.float64)
    eye_w = 0.5 * (np.linalg.norm(lm[39] - lm[36]) + np.linalg.norm(lm[45] - lm[42]))
    up = lm[17:27].mean(0) - lm[8]
    up /= max(float(np.hypot(*up)), 1e-9)
    side = lm[16] - lm[0]
    side /= max(float(np.hypot(*side)), 1e-9)
    down = -up * 1.2 * eye_w
    lid = lambda eye: eye[[4, 5]].mean(0)  # noqa: E731  the lower lid's middle
    below_r, below_l = lid(lm[36:42]) + down, lid(lm[42:48]) + down
    brows = lm[17:27] + 0.15 * eye_w * up
    band = np.concatenate([lm[0:3][::-1], brows, lm[14:17][::-1],
                           [below_l + 0.6 * eye_w * side, below_l, lm[29], below_r, below_r - 0.6 * eye_w * side]])
    out = _polygon_mask(band, size, size)
    far = 4.0 * size
    for corner, sign in ((lm[36], -1.0), (lm[45], 1.0)):  # the temple arms, out past the outline
        hi, lo = corner + 0.6 * eye_w * up, corner - 0.5 * eye_w * up
        out |= _polygon_mask(np.stack([hi, hi + sign * far * side, lo + sign * far * side, lo]), size, size)
    mask = out.astype(np.float32)
    return gaussian_filter(mask, sigma=float(soft_px)).astype(np.float32) if soft_px > 0 else mask


def glasses_features(landmarks68: np.ndarray, size: int, soft_px: float = 0.0) -> np.ndarray:
    """The features the glasses fill keeps, in a face crop: :func:`backend.occlusion.feature_mask`
    with the eyes grown by ``EYE_MARGIN_SIDE`` eye widths at their corners and ``EYE_MARGIN_UP``
    above and below (a frame passes close to the eyes' corners) and the brows down to
    ``BROW_BELOW`` eye widths below their points. landmarks68 (68,2) in the crop's
    pixels. Returns (size,size) float32 in [0,1]."""
    return feature_mask(landmarks68, size, soft_px, eye_margin=(EYE_MARGIN_SIDE, EYE_MARGIN_UP), brow_below=BROW_BELOW)


def view_glasses_scores(views, settings: GlassesSettings = GlassesSettings()) -> list[float]:
    """Each view's :attr:`GlassesCues.score` over its crop (:class:`backend.prepare.PreparedView`),
    the pixels that show no photo (outside it, or in its black bars) left out."""
    return [glasses_cues(v.crop, v.crop_landmarks, v.shown() > 0, settings).score for v in views]


def view_glasses_masks(views, soft_px: float = 0.0, settings: GlassesSettings = GlassesSettings()
                       ) -> np.ndarray | None:
    """Each view's :func:`glasses_zone` and :func:`glasses_features` where its score
    (:func:`view_glasses_scores`) reaches ``settings.threshold``, zeros elsewhere: (V,2,S,S)
    float32 over the views' crops, or None when no view wears glasses."""
    wears = [score >= settings.threshold for score in view_glasses_scores(views, settings)]
    if not any(wears):
        return None
    S = views[0].crop.shape[0]
    return np.stack([np.stack([glasses_zone(v.crop_landmarks, S, soft_px), glasses_features(v.crop_landmarks, S, soft_px)])
                     if w else np.zeros((2, S, S), np.float32) for v, w in zip(views, wears)])
