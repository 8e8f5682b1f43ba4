"""Colours of the head's parts from the photo: iris and sclera from the pixels inside the
detected eye contours (68-point landmarks 36–41 and 42–47; the iris from the ring of the irises
located there by :mod:`backend.gaze`), teeth and mouth interior from the inner-lip contour (60–67)
of an open mouth, all de-lit like the skin's albedo (the photo divided by the fitted SH shading,
here of a camera-facing normal). Every colour then follows the photo's colour balance: a
greyscale photo gives grey parts (:func:`part_colours`; rules in docs/parts.md).
"""
from __future__ import annotations

import numpy as np
import torch
from skimage.measure import points_in_poly

from .head_parts import PART_MATERIALS, srgb_to_linear
from .lighting import sh_shading

__all__ = ["eye_colours", "mouth_opening", "mouth_colours", "face_colourfulness", "follow_colour_balance", "part_colours"]

RIGHT_EYE, LEFT_EYE = slice(36, 42), slice(42, 48)  # iBUG-68 eye contours (subject's right, left)
MIN_PIXELS = 12  # fewer pixels inside the contours: keep the default colours
SCLERA = (0.6, 0.9)  # the exported sclera's brightness (mean of sRGB channels): a light white
SEEN_SCLERA = (0.1, 0.9)  # the previews': the photo's own, bounded
PUPIL_FRACTION = 0.45  # the pupil's radius over the iris's (2.2 / 5.6 mm in the model, and a margin)
INNER_LIPS = slice(60, 68)  # iBUG-68 inner-lip contour
JAW, BROWS = slice(0, 17), slice(26, 16, -1)  # the face outline: jaw, then the brows back across
MOUTH_OPEN = 0.07  # inner-lip area over mouth width²: below it the contour holds mostly lips
MIN_MOUTH_PIXELS = 40  # fewer photo pixels inside the inner lips: keep the default mouth colours
TEETH_MAX_SATURATION = 0.35  # brighter pixels more saturated than this are lips, lipstick or tongue
TEETH_SKIN_SATURATION = 0.8  # or than this times the skin's median (teeth are paler than the skin)
TEETH_SATURATION, TEETH_VALUE = 0.15, (0.6, 0.92)  # the teeth read from a photo are kept in these (the default: 0.15, 0.85)
SOCKET_SATURATION, SOCKET_VALUE = 0.85, (0.02, 0.2)  # and the mouth interior in these
GREY_SATURATION = (0.02, 0.05)  # the face's median saturation: grey parts at or below, full colour at or above
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709, of linear RGB


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


def _shade(sh: np.ndarray) -> np.ndarray:
    """(3,) the SH shading of a camera-facing normal (floored at 0.05): what the photo is divided by."""
    with torch.no_grad():
        shading = sh_shading(torch.tensor([[[0.0, 0.0, 1.0]]]), torch.as_tensor(np.asarray(sh, np.float32))[None])
    return np.clip(shading.reshape(3).numpy().astype(np.float64), 0.05, None)


SATURATION_PIXELS = 250_000  # a larger face's saturation is the median of every k-th pixel, row and column


def _window(image: np.ndarray, points: np.ndarray, dtype=np.float64, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The part of ``image`` (H,W,3) uint8 that holds the pixel centres of ``points`` (n,2) px,
    every ``step``-th pixel of it, as ``dtype`` in [0,1], and ``points`` in its pixels (n,2): only
    the face's pixels are converted, not a 12-megapixel photo's all."""
    x0, y0 = np.maximum(np.floor(points.min(0)).astype(int) - 1, 0)
    x1, y1 = np.ceil(points.max(0)).astype(int) + 2
    window = np.asarray(image[y0:y1:step, x0:x1:step], dtype) / 255.0
    return window, (points - np.array([x0, y0], np.float64)) / step


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
    """{"iris": rgb, "sclera": rgb, "sclera_seen": rgb} (sRGB [0,1], de-lit) from one photo; {}
    when the eyes are too small or closed in it. image (H,W,3) uint8; landmarks68 (68,2) detected,
    photo pixels (x right, y down); sh (27,) the view's fitted light (``backend.lighting`` layout);
    ``irises``: (centres (E,2) px, radii (E,) px) of the irises found in the photo (:mod:`backend.gaze`), or None.

    Inside the two eye contours, pixels are ranked by brightness. The iris is the median of the
    located irises' rings (:func:`_iris_pixels`) when they hold enough pixels, else of the
    contours' darker half without its darkest 15 % (pupil, lashes, lid shadow). Both scleras are
    divided by the shading of a camera-facing normal and keep a fifth of their tint (the brightest
    pixels also catch skin, lids and glasses): "sclera", the median of the brightest fifth kept
    light (:data:`SCLERA`; the exports' albedo, shaded by the renderer that shows them), and
    "sclera_seen", the median of the brightest tenth (narrow eyes leave little sclera in the
    contour) at the photo's brightness (:data:`SEEN_SCLERA`; what the previews paint under the
    lids' shadow, :mod:`backend.eye_shading`)."""
    pts = np.asarray(landmarks68, np.float64)
    if irises is not None:  # the irises' centres with the landmarks, into the eyes' window
        pts = np.concatenate([pts, np.asarray(irises[0], np.float64).reshape(-1, 2)])
    img, pts = _window(image, pts, np.float32)
    if irises is not None:
        pts, irises = pts[:68], (pts[68:], irises[1])
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
    shade = _shade(sh).astype(np.float32)
    iris = np.clip(iris / shade, 0.0, 1.0)
    out = {"iris": iris}
    for name, brightest, bounds in (("sclera", 0.8, SCLERA), ("sclera_seen", 0.9, SEEN_SCLERA)):
        sclera = np.clip(np.median(pixels[order[int(brightest * n) :]], 0) / shade, 0.0, 1.0)
        lum = float(sclera.mean())
        # a fifth of the tint, a warm white
        out[name] = np.clip(lum, *bounds) * (0.8 + 0.2 * sclera / max(lum, 1e-6)) * np.array([1.0, 0.97, 0.93])
    return {k: tuple(float(c) for c in np.clip(v, 0.0, 1.0)) for k, v in out.items()}


def mouth_opening(landmarks68: np.ndarray) -> float:
    """How open the mouth is: the inner-lip polygon's area (68-point 60–67) over the squared
    distance between the mouth corners 60 and 64 (0 for a closed mouth, ~0.15 for a smile showing
    the teeth, 0.3 and more for a gaping mouth). landmarks68 (68,2) pixels."""
    pts = np.asarray(landmarks68, np.float64)
    x, y = pts[INNER_LIPS, 0], pts[INNER_LIPS, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    return area / max(float(np.sum((pts[64] - pts[60]) ** 2)), 1e-9)


def _limit(rgb: np.ndarray, max_saturation: float, value: tuple[float, float]) -> np.ndarray:
    """(3,) ``rgb`` with its HSV value clamped to ``value`` and its saturation to at most
    ``max_saturation`` (hue kept)."""
    v = float(rgb.max())
    rgb = rgb * (np.clip(v, *value) / v) if v > 1e-6 else np.full(3, value[0])  # black: the darkest grey allowed
    v = float(rgb.max())
    saturation = 1.0 - float(rgb.min()) / v
    if saturation > max_saturation:
        rgb = v - (v - rgb) * (max_saturation / saturation)
    return rgb


def mouth_colours(image: np.ndarray, landmarks68: np.ndarray, sh: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """{"teeth": rgb, "socket": rgb} (sRGB [0,1], de-lit) from the inside of the inner lips of one
    photo; {} when the mouth is closed or small in it (:data:`MOUTH_OPEN`, :data:`MIN_MOUTH_PIXELS`);
    no "teeth" when the brightest pixels are too saturated to be teeth (lips, lipstick, a tongue):
    above :data:`TEETH_MAX_SATURATION` or :data:`TEETH_SKIN_SATURATION` times the skin's.
    image (H,W,3) uint8; landmarks68 (68,2) detected, photo pixels; sh (27,) the view's fitted light.

    The pixels are ranked by brightness: teeth = median of the brightest tenth, socket = of the
    darkest quarter, each divided by the shading of a camera-facing normal, then kept in plausible
    ranges (:data:`TEETH_VALUE` lies above :data:`SOCKET_VALUE`: the teeth stay brighter); the
    teeth take the default's hue (never pink), with the photo's value and saturation."""
    img, pts = _window(image, np.asarray(landmarks68, np.float64))
    pixels = img[_inside(pts[INNER_LIPS], *img.shape[:2])]  # (n,3)
    if mouth_opening(pts) < MOUTH_OPEN or len(pixels) < MIN_MOUTH_PIXELS:
        return {}
    order = np.argsort(pixels.mean(1))
    n = len(order)
    shade = _shade(sh)
    teeth = np.median(pixels[order[n - n // 10 :]], 0)  # as photographed: compared with the skin's pixels
    socket = np.median(pixels[order[: n // 4]], 0)
    out = {"socket": _limit(socket / shade, SOCKET_SATURATION, SOCKET_VALUE)}
    skin = _face_saturation(image, landmarks68)
    most = min(TEETH_MAX_SATURATION, max(TEETH_SKIN_SATURATION * (skin or 0.0), 0.05))
    if 1.0 - teeth.min() / max(teeth.max(), 1e-6) <= most:
        teeth = _limit(teeth / shade, TEETH_SATURATION, TEETH_VALUE)
        value, saturation = float(teeth.max()), 1.0 - float(teeth.min() / teeth.max())
        default = np.asarray(PART_MATERIALS["teeth"], np.float64)
        hue = (1.0 - default / default.max()) / (1.0 - default.min() / default.max())  # 1 - rgb/value at saturation 1
        out["teeth"] = value * (1.0 - saturation * hue)  # the photo's value and saturation, the default's hue
    return {k: tuple(float(c) for c in np.clip(v, 0.0, 1.0)) for k, v in out.items()}


def _face_saturation(image: np.ndarray, landmarks68: np.ndarray) -> float | None:
    """The median HSV saturation of the face's pixels (inside the jaw and brows, 68-point 0–26;
    pixels darker than 0.05 left out; a face of more than :data:`SATURATION_PIXELS` pixels
    sampled on a regular grid), None without any. image (H,W,3) uint8; landmarks68 (68,2) px."""
    lm = np.asarray(landmarks68, np.float64)
    outline = np.concatenate([lm[JAW], lm[BROWS]])
    area = float(np.prod(outline.max(0) - outline.min(0) + 1.0))
    img, outline = _window(image, outline, step=max(1, int(np.ceil(np.sqrt(area / SATURATION_PIXELS)))))
    pixels = img[_inside(outline, *img.shape[:2])]
    value = pixels.max(1) if len(pixels) else np.zeros(0)
    pixels, value = pixels[value > 0.05], value[value > 0.05]
    return float(np.median(1.0 - pixels.min(1) / value)) if len(pixels) else None


def face_colourfulness(image: np.ndarray, landmarks68: np.ndarray) -> float:
    """0 for a greyscale photo, 1 for a colour one, linear in between: the face's median saturation
    mapped from :data:`GREY_SATURATION`; a face with no pixels counts as colour (1).
    image (H,W,3) uint8; landmarks68 (68,2) photo pixels."""
    saturation = _face_saturation(image, np.asarray(landmarks68, np.float64))
    if saturation is None:
        return 1.0
    low, high = GREY_SATURATION
    return float(np.clip((saturation - low) / (high - low), 0.0, 1.0))


def _linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


def follow_colour_balance(colours: dict[str, tuple[float, float, float]], colourfulness: float,
                          light: np.ndarray | None = None) -> dict[str, tuple[float, float, float]]:
    """``colours`` (sRGB [0,1] albedos) with the chroma they show under ``light`` (3,) (the colour of
    the fitted light: its shading over its channels' mean; None: white) scaled by ``colourfulness``
    in linear light about their luminance (Rec. 709), then divided by ``light`` again, as the skin's
    albedo is the photo divided by the light. 0 gives colours that look grey of the same luminance
    under ``light`` (greys for a white light), 1 returns ``colours`` as they are."""
    if colourfulness >= 1.0:
        return dict(colours)
    tint = np.ones(3) if light is None else np.asarray(light, np.float64)
    out = {}
    for name, rgb in colours.items():
        lin = srgb_to_linear(np.asarray(rgb) * tint)
        grey = float(lin @ LUMINANCE)
        out[name] = tuple(float(c) for c in np.clip(_linear_to_srgb(grey + colourfulness * (lin - grey)) / tint, 0.0, 1.0))
    return out


def part_colours(eyes: dict[str, tuple[float, float, float]], images: list[np.ndarray],
                 landmarks68: list[np.ndarray], sh: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """Every part material's colour (sRGB [0,1]) for a head fitted to ``images`` (V photos, each
    (H,W,3) uint8, with its detected landmarks (68,2) px and fitted light ``sh`` (V,27)):
    :data:`~backend.head_parts.PART_MATERIALS`, then ``eyes`` (:func:`eye_colours` of the view it
    chose), then teeth and socket from the view with the most open mouth (the first on ties;
    :func:`mouth_colours`), all following the photos' colour balance (:func:`follow_colour_balance`):
    the most colourful view's :func:`face_colourfulness` (a colour view gives the skin's albedo its
    colour), under the views' mean light colour."""
    palette = dict(PART_MATERIALS, **eyes)
    mouth = int(np.argmax([mouth_opening(lm) for lm in landmarks68]))
    palette.update(mouth_colours(images[mouth], landmarks68[mouth], sh[mouth]))
    colourfulness = max(face_colourfulness(img, lm) for img, lm in zip(images, landmarks68))
    light = np.mean([shade / shade.mean() for shade in map(_shade, sh)], 0)
    return follow_colour_balance(palette, colourfulness, light)
