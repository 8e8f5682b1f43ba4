"""Per-photo skin colour likelihood: which pixels of a face crop look like this person's skin.

The paper's photometric loss runs over *visible skin*. The landmark mask (``align.face_mask``)
also covers what lies on the skin inside the face outline: hair fringes, hats, glasses frames.
The coarse albedo soaks up their colour, but their edges reach the detail stage as shading, which
the displacement then turns into bumps. This module scores each pixel against robust skin colour
statistics taken from the mask itself (no trained classifier, so it adapts to any skin tone, white
balance and exposure):

- chroma: log(R/G) and log(B/G) (shading-invariant for a white-ish light) within a few robust
  standard deviations of the mask's median;
- luminance: within a broad factor of the median, so shading and wrinkles stay, while near-black
  hair and blown highlights go;
- connectivity (:func:`connected_to_face`): skin-coloured islands cut off from the face's skin by
  non-skin (a gold cap badge above a dark brim, a tan background patch) are not skin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation, gaussian_filter, label

from .align import AlignSettings, face_mask, inner_face_mask
from .image_filters import LUMA

__all__ = ["SkinSettings", "skin_likelihood", "connected_to_face", "skin_weight", "skin_mask"]

_LUMA = np.array(LUMA)
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class SkinSettings:
    """- ``chroma_sigmas``: full weight within this Mahalanobis distance of the skin chroma,
      falling to 0 at √2 times it;
    - ``luminance_range``: full weight for luminance within these factors of the skin median,
      ramping to 0 over ``ramp`` (natural log units) outside;
    - ``min_chroma_sigma``: floor of the chroma spread (log units), for very even skin;
    - ``blur_px``: Gaussian σ (pixels) applied before the colour ratios;
    - ``min_pixels``: fewer mask pixels than this → no statistics, weight 1 everywhere;
    - ``band_chroma_sigmas``: the stricter chroma limit :func:`skin_weight` applies outside the
      inner face (the forehead band above the brows), where only skin and hair meet: blond hair
      is within 3 robust σ of skin chroma (astronaut's fringe: log B/G −0.37 against −0.16), and
      inside the face that width is needed for blush, nasolabial shadows and lip corners."""

    chroma_sigmas: float = 3.0
    min_chroma_sigma: float = 0.03
    blur_px: float = 1.0
    luminance_range: tuple[float, float] = (0.3, 2.5)
    ramp: float = 0.3
    min_pixels: int = 200
    band_chroma_sigmas: float = 1.5


def skin_likelihood(
    crop: np.ndarray, mask: np.ndarray, settings: SkinSettings = SkinSettings(), band: np.ndarray | None = None,
) -> np.ndarray:
    """Weight in [0,1] per pixel of how much ``crop`` looks like the skin under ``mask``.

    crop (H,W,3) float in [0,1]; mask (H,W) in [0,1] (the landmark skin mask; its fully-set
    pixels give the statistics); band (H,W) in [0,1], optional: where the stricter
    ``settings.band_chroma_sigmas`` limit applies (blended with ``chroma_sigmas`` elsewhere;
    same statistics). Returns (H,W) float32.
    """
    crop = np.asarray(crop, np.float64)
    core = np.asarray(mask) > 0.99
    if core.sum() < settings.min_pixels:
        return np.ones(crop.shape[:2], np.float32)

    eps = 2.0 / 255.0
    smooth = gaussian_filter(crop, sigma=(settings.blur_px, settings.blur_px, 0))  # chroma of dark pixels is noisy
    luminance = smooth @ _LUMA + eps
    chroma = np.log((smooth[..., [0, 2]] + eps) / (smooth[..., 1:2] + eps))  # (H,W,2) log R/G, log B/G
    samples = chroma[core]
    centre = np.median(samples, 0)
    dev = samples - centre
    spread = _MAD_TO_SIGMA * np.median(np.abs(dev), 0) + 1e-6
    inliers = dev[np.all(np.abs(dev) < 3.0 * spread, 1)]  # covariance without hair/hat pixels
    cov = np.cov(inliers.T) if len(inliers) > 2 else np.diag(spread**2)
    cov = cov + np.eye(2) * settings.min_chroma_sigma**2
    d = chroma - centre
    m2 = np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)  # squared Mahalanobis distance

    def chroma_weight(sigmas: float) -> np.ndarray:  # 1 within ``sigmas``, 0 beyond √2 × it
        k2 = sigmas**2
        return np.clip((2.0 * k2 - m2) / k2, 0.0, 1.0)

    w_chroma = chroma_weight(settings.chroma_sigmas)
    if band is not None:
        w_chroma = (1.0 - band) * w_chroma + band * chroma_weight(settings.band_chroma_sigmas)
    r = np.log(luminance / np.median(luminance[core]))
    lo, hi = np.log(settings.luminance_range[0]), np.log(settings.luminance_range[1])
    w_lum = np.clip((r - lo) / settings.ramp + 1.0, 0.0, 1.0) * np.clip((hi - r) / settings.ramp + 1.0, 0.0, 1.0)
    return (w_chroma * w_lum).astype(np.float32)


def connected_to_face(weight: np.ndarray, seed: np.ndarray, threshold: float = 0.5, edge_px: int = 3) -> np.ndarray:
    """``weight`` (H,W) with every region of ``weight > threshold`` (8-connected) that does not
    touch ``seed`` (H,W) bool set to 0: skin-coloured pixels count only when they join the face's
    own skin. The soft rim below the threshold (``edge_px`` pixels) stays with the region it
    borders. An empty seed keeps everything. Returns (H,W) float32."""
    seed = np.asarray(seed, bool)
    if not seed.any():
        return np.asarray(weight, np.float32)
    labels, _ = label(np.asarray(weight) > threshold, structure=np.ones((3, 3), bool))
    ids = np.unique(labels[seed & (labels > 0)])
    keep = binary_dilation(np.isin(labels, ids[ids > 0]), iterations=edge_px)
    return (weight * keep).astype(np.float32)


def skin_weight(crop: np.ndarray, landmarks68: np.ndarray, size: int, exclude_features: bool = True) -> np.ndarray:
    """Skin weight of one face crop: the landmark face mask (``exclude_features``: without the
    brows and lips, :func:`backend.align.feature_polygons`) × :func:`skin_likelihood` (with the
    stricter ``band_chroma_sigmas`` outside the inner face, the jaw and brows hull), keeping only
    the skin connected to the inner face (:func:`connected_to_face`).
    crop (size,size,3) in [0,1]; landmarks68 (68,2) in its pixels. Returns (size,size) float32."""
    # edge blur: 1 px at the fit's crop size (AlignSettings.size), scaled with the crop
    scale = size / AlignSettings().size
    mask = face_mask(landmarks68, size, size, soft_px=scale, exclude_features=exclude_features)
    inner = inner_face_mask(landmarks68, size, size, soft_px=2.0 * scale)
    return connected_to_face(mask * skin_likelihood(crop, mask, band=1.0 - inner), inner > 0.5)


def skin_mask(crop: np.ndarray, landmarks68: np.ndarray, size: int) -> np.ndarray:
    """The photometric loss's mask for one face crop (fit stages and training): the landmark face
    mask without the brows and lips (:func:`backend.align.feature_polygons`), weighted by
    :func:`skin_likelihood` (hair fringes, hats, glasses frames out) and cut to the skin connected
    to the face (:func:`skin_weight`). Their colour edges are what a smooth albedo cannot hold: a
    fit would raise them as ridges. crop (size,size,3) in [0,1]; landmarks68 (68,2) in its pixels.
    Returns (size,size) float32 in [0,1]."""
    return skin_weight(crop, landmarks68, size, exclude_features=True)
