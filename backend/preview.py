"""Image composition helpers for previews (``preview.png`` = input | render | overlay | side view).

Images are (H,W,3) uint8 RGB, pixel coordinates x right, y down, origin at the top-left pixel's
centre. The renders themselves come from ``backend.render``; this module only draws and lays out.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["draw_landmarks", "compose_panels", "resize_to_height", "to_uint8_rgb", "blend", "make_preview"]

FITTED_COLOR = (255, 64, 64)
DETECTED_COLOR = (64, 255, 64)


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """(H,W), (H,W,3) or (H,W,4), uint8 or float in [0,1] → (H,W,3) uint8 (a new array)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H,W), (H,W,3) or (H,W,4) image, got shape {image.shape}")
    image = image[..., :3]
    if image.dtype != np.uint8:
        image = (np.clip(np.nan_to_num(image.astype(np.float32)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.array(image, copy=True)


def draw_landmarks(
    image: np.ndarray, pts: np.ndarray, color: Sequence[int] = (0, 255, 0), radius: int = 2
) -> np.ndarray:
    """Filled discs of ``radius`` pixels at ``pts`` (N,2) (x, y pixels) on a copy of ``image``.

    Points partly or wholly outside the image are clipped. Returns (H,W,3) uint8.
    """
    out = to_uint8_rgb(image)
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(1)]
    if len(pts) == 0:
        return out
    r = max(int(radius), 0)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = (dx * dx + dy * dy) <= r * r + r  # slightly fuller than the exact circle
    ox, oy = dx[disc], dy[disc]  # (D,)
    cx, cy = np.rint(pts[:, 0]).astype(np.int64), np.rint(pts[:, 1]).astype(np.int64)
    xs = (cx[:, None] + ox[None]).reshape(-1)
    ys = (cy[:, None] + oy[None]).reshape(-1)
    h, w = out.shape[:2]
    keep = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    out[ys[keep], xs[keep]] = np.asarray(color, np.uint8)[:3]
    return out


def resize_to_height(image: np.ndarray, height: int) -> np.ndarray:
    """Resize (H,W,3) uint8 to ``height`` rows keeping the aspect ratio (bilinear). Returns uint8."""
    image = to_uint8_rgb(image)
    if height <= 0:
        raise ValueError(f"height must be positive, got {height}")
    h, w = image.shape[:2]
    if h == height:
        return image
    new_w = max(1, int(round(w * height / h)))
    return np.asarray(Image.fromarray(image).resize((new_w, height), Image.BILINEAR))


def compose_panels(
    panels: Sequence[np.ndarray], labels: Sequence[str] | None = None, height: int | None = None
) -> np.ndarray:
    """Side-by-side panels, each resized to ``height`` (default: the first panel's).

    panels: (H_i,W_i,3) uint8 (or float [0,1]); labels: one short text per panel, drawn
    top-left in white on a dark box with PIL's default font. Returns (H, ΣW, 3) uint8.
    """
    if not panels:
        raise ValueError("compose_panels needs at least one panel")
    if labels is not None and len(labels) != len(panels):
        raise ValueError(f"{len(labels)} labels for {len(panels)} panels: give one label per panel")
    height = int(height or np.asarray(panels[0]).shape[0])
    resized = [resize_to_height(p, height) for p in panels]
    canvas = np.concatenate(resized, axis=1)
    if not labels:
        return canvas
    pil = Image.fromarray(canvas)
    draw = ImageDraw.Draw(pil)
    font = ImageFont.load_default()
    x0 = 0
    for panel, label in zip(resized, labels):
        if label:
            left, top, right, bottom = draw.textbbox((x0 + 4, 3), label, font=font)
            draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=(0, 0, 0))
            draw.text((x0 + 4, 3), label, fill=(255, 255, 255), font=font)
        x0 += panel.shape[1]
    return np.asarray(pil)


def blend(image: np.ndarray, render: np.ndarray, alpha: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """``render`` over ``image`` where ``alpha`` (H,W) in [0,1] (bool ok), at ``opacity``.

    image, render: (H,W,3) uint8 or float [0,1] of the same size. Returns (H,W,3) uint8.
    """
    a = to_uint8_rgb(image).astype(np.float32)
    b = to_uint8_rgb(render).astype(np.float32)
    if a.shape != b.shape:
        raise ValueError(f"image {a.shape} and render {b.shape} must have the same size")
    w = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)[..., None] * float(opacity)
    if w.shape[:2] != a.shape[:2]:
        raise ValueError(f"alpha {w.shape[:2]} must match the image {a.shape[:2]}")
    return (a * (1.0 - w) + b * w + 0.5).astype(np.uint8)


def make_preview(
    photo: np.ndarray,
    render: np.ndarray,
    alpha: np.ndarray,
    side: np.ndarray | None = None,
    fitted68: np.ndarray | None = None,
    detected68: np.ndarray | None = None,
    height: int = 512,
) -> np.ndarray:
    """``preview.png``: photo | render | overlay (render blended on the photo, detected landmarks
    green, fitted red) | shaded geometry from the side (when given).

    photo, render: (H,W,3) at the photo's size, alpha (H,W); side: any size; landmarks (68,2)
    photo pixels. Panels are scaled to ``height`` (or the photo's height when smaller).
    Returns (height, ΣW, 3) uint8.
    """
    over = blend(photo, render, alpha)
    radius = max(1, int(round(photo.shape[0] / 256)))
    if detected68 is not None:
        over = draw_landmarks(over, detected68, DETECTED_COLOR, radius)
    if fitted68 is not None:
        over = draw_landmarks(over, fitted68, FITTED_COLOR, radius)
    panels, labels = [photo, render, over], ["input", "render", "overlay"]
    if side is not None:
        panels.append(side)
        labels.append("side")
    return compose_panels(panels, labels, height=min(int(height), int(photo.shape[0])))
