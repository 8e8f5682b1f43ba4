"""Colours of the head's parts from the photo: iris and sclera from the pixels inside the
detected eye contours (68-point landmarks 36–41 and 42–47; the iris from the ring of the irises
located there by :mod:`backend.gaze`), de-lit like the skin's albedo (the photo divided by the
fitted SH shading, here of a camera-facing normal: the eye's front).
Teeth, gums and the mouth interior keep their plain colours (``backend.head_parts.PART_MATERIALS``).
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.measure import points_in_poly

from .lighting import sh_shading

__all__ = ["eye_colours"]

RIGHT_EYE, LEFT_EYE = slice(36, 42), slice(42, 48)  # iBUG-68 eye contours (subject's right, left)
MIN_PIXELS = 12  # fewer pixels inside the contours: keep the default colours
PUPIL_FRACTION = 0.45  # the pupil's radius over the iris's (2.2 / 5.6 mm in the model, and a margin)


def _inside(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H,W) bool: pixel centres inside ``polygon`` (n,2) x,y pixels."""
    x0, y0 = np.floor(polygon.min(0)).astype(int)
    x1, y1 = np.ceil(polygon.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1 + 1, width), min(y1 + 1, height)
    mask = np.zeros((height, width), bool)
    if x1 <= x0 or y1 <= y0:
        return mask
    ys, xs = np.mgrid[y0:y1, x0:x1]
    mask[y0:y1, x0:x1] = points_in_poly(np.stack([xs.ravel(), ys.ravel()], 1), polygon).reshape(xs.shape)
    return mask


def _iris_pixels(img: np.ndarray, mask: np.ndarray, irises: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(n,3) the iris's own pixels: inside the contours and the ring between the pupil and 90 % of
    the iris's radius around each located iris, without the brightest quarter (highlights, sclera
    at the rim) and the darkest 15 % (pupil, lashes)."""
    centres, radii = (np.asarray(a, np.float64) for a in irises)
    ys, xs = np.nonzero(mask)
    ring = np.zeros(len(xs), bool)
    for (cx, cy), r in zip(centres.reshape(-1, 2), radii.reshape(-1)):
        d = np.hypot(xs - cx, ys - cy)
        ring |= (d >= PUPIL_FRACTION * r) & (d <= 0.9 * r)
    pixels = img[ys[ring], xs[ring]]
    order = np.argsort(pixels.mean(1))
    n = len(order)
    return pixels[order[int(0.15 * n) : int(0.75 * n)]]


def eye_colours(image: np.ndarray, landmarks68: np.ndarray, sh: np.ndarray,
                irises: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, tuple[float, float, float]]:
    """{"iris": rgb, "sclera": rgb} (sRGB [0,1], de-lit) from one photo; {} when the eyes are too
    small or closed in it. image (H,W,3) uint8; landmarks68 (68,2) detected, photo pixels
    (x right, y down); sh (27,) the view's fitted light (``backend.lighting`` layout); ``irises``:
    (centres (E,2) px, radii (E,) px) of the irises found in the photo (:mod:`backend.gaze`), or None.

    Inside the two eye contours, pixels are ranked by brightness. The iris is the median of the
    located irises' rings (:func:`_iris_pixels`) when they hold enough pixels, else of the
    contours' darker half without its darkest 15 % (pupil, lashes, lid shadow); the sclera is the
    median of the brightest fifth. Both are divided by the shading of a camera-facing normal."""
    img = np.asarray(image, np.float32) / 255.0
    pts = np.asarray(landmarks68, np.float64)
    mask = _inside(pts[RIGHT_EYE], *img.shape[:2]) | _inside(pts[LEFT_EYE], *img.shape[:2])
    pixels = img[mask]  # (n,3)
    if len(pixels) < MIN_PIXELS:
        return {}
    order = np.argsort(pixels.mean(1))
    n = len(order)
    ring = _iris_pixels(img, mask, irises) if irises is not None and len(irises[1]) else np.zeros((0, 3))
    if len(ring) >= MIN_PIXELS:
        iris = np.median(ring, 0)
    else:
        iris = np.median(pixels[order[int(0.15 * n) : max(int(0.5 * n), int(0.15 * n) + 1)]], 0)
    sclera = np.median(pixels[order[int(0.8 * n) :]], 0)
    with torch.no_grad():
        shading = sh_shading(torch.tensor([[[0.0, 0.0, 1.0]]]), torch.as_tensor(np.asarray(sh, np.float32))[None])
    shade = np.clip(shading.reshape(3).numpy(), 0.05, None)
    iris = np.clip(iris / shade, 0.0, 1.0)
    sclera = np.clip(sclera / shade, 0.0, 1.0)
    lum = float(sclera.mean())
    # a sclera is a light, nearly neutral white: the contour's brightest pixels also catch skin,
    # lids and glasses, so keep a fifth of their tint and a plausible brightness
    sclera = np.clip(np.clip(lum, 0.6, 0.9) * (0.8 + 0.2 * sclera / max(lum, 1e-6)) * np.array([1.0, 0.97, 0.93]), 0.0, 1.0)
    return {"iris": tuple(float(c) for c in iris), "sclera": tuple(float(c) for c in sclera)}
