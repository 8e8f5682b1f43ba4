"""Hands in the photo: MediaPipe's palm detector ported to PyTorch, and the hand region it implies.

A hand in front of the face is skin-coloured, so no colour test keeps it out of the albedo
(:mod:`backend.occlusion`); a detector does. ``palm_detection_lite.tflite`` (from the same
pinned mediapipe wheel as the face models, :mod:`.mediapipe_fetch`) is a BlazeFace-style SSD:
(1,3,192,192) RGB in [0, 1] of the letterboxed photo → 2016 anchors, each a box and 7 keypoints
(0 the wrist centre, 2 the middle finger's base, …), decoded and merged exactly as the face
detector's (:class:`~.mediapipe_nets.BlazeFace`, :func:`~.mediapipe_nets.weighted_nms`; options of
MediaPipe's ``palm_detection_cpu`` graph). A palm becomes its hand's region by MediaPipe's own
rule (``palm_detection_detection_to_roi``): the box, rotated so the wrist → middle-finger axis
points up, shifted half its height towards the fingers and scaled ×2.6 to a square
(:func:`hand_regions`). That square is MediaPipe's crop for the hand landmark model: it holds
the whole hand with a margin, so :func:`hand_mask` draws a tighter shape in it.

The palm file is optional: without it (an install fetched before hands were added)
:func:`detect_palms` finds nothing and the pipeline runs as before.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from skimage.draw import polygon

from ..errors import WeightsNotFoundError
from .base import small_to_orig
from .mediapipe_backend import _to_photo, detector_input
from .mediapipe_nets import BlazeFaceSpec, find_mediapipe_file, load_blazeface, weighted_nms

__all__ = ["PALM", "Palm", "detect_palms", "hand_mask", "hand_outlines", "hand_regions", "region_corners"]

# MediaPipe's palm_detection_cpu graph: 192² input, SSD strides 8, 16, 16, 16 with the
# interpolated anchor (2016 anchors), min score 0.5, weighted NMS at IoU 0.3.
PALM = BlazeFaceSpec("palm_detection_lite.tflite", 192, (8, 16, 16, 16), True, 0.5)
WRIST, MIDDLE_BASE = 0, 2  # palm keypoints of the hand's axis
ROI_SCALE, ROI_SHIFT = 2.6, -0.5  # palm box → hand region (palm_detection_detection_to_roi)
# The mask inside the region (fractions of its side, region frame: x across the hand, y from the
# fingers' end (−½) to the wrist (+½)): the hand fills about the middle 70 % of MediaPipe's crop.
MASK_HALF_WIDTH, MASK_TOP, MASK_BOTTOM = 0.36, -0.40, 0.42


@dataclass(frozen=True)
class Palm:
    """One palm: ``score`` probability, ``box`` (4,) x0,y0,x1,y1 and ``keypoints`` (7,2) x,y, photo pixel centres."""

    score: float
    box: np.ndarray
    keypoints: np.ndarray


def detect_palms(image: np.ndarray, folder: str | Path | None = None, spec: BlazeFaceSpec = PALM) -> list[Palm]:
    """Palms in ``image`` (H,W,3) uint8 RGB, best first; [] when ``palm_detection_lite.tflite`` is not
    installed (``photohead models fetch mediapipe`` adds it): hands are then simply not seen.

    The photo is letterboxed once into the detector's 192² input (reduced with antialiasing
    first when larger than 384 px)."""
    try:
        net = load_blazeface(spec, folder)
    except WeightsNotFoundError:
        return []
    x, tf, s = detector_input(np.ascontiguousarray(image), spec)
    with torch.no_grad():
        scores, boxes, kps = net((x + 1.0) * 0.5)  # the palm model reads RGB in [0, 1]
    n = spec.input_size
    out = []
    for score, box, kp in weighted_nms(scores[0].double().numpy(), boxes[0].double().numpy() * n,
                                       kps[0].double().numpy() * n, spec.min_score, spec.iou):
        pts = small_to_orig(_to_photo(np.concatenate([box.reshape(2, 2), kp])[None], tf)[0], s)
        out.append(Palm(score, pts[:2].reshape(4), pts[2:]))
    return out


def hand_regions(palms: list[Palm]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's hand region of each palm: (centre (N,2) px, side (N,) px, angle (N,) rad).

    The region's y axis runs from the fingers to the wrist: in the photo it points along
    (−sin a, cos a), so a = 0 is a hand with its fingers up."""
    if not palms:
        return np.zeros((0, 2)), np.zeros(0), np.zeros(0)
    box = np.stack([p.box for p in palms])
    kp = np.stack([p.keypoints for p in palms])
    d = kp[:, MIDDLE_BASE] - kp[:, WRIST]
    angle = np.pi / 2 - np.arctan2(-d[:, 1], d[:, 0])
    angle = np.arctan2(np.sin(angle), np.cos(angle))
    size = box[:, 2:] - box[:, :2]  # (N,2) w, h
    c, s = np.cos(angle), np.sin(angle)
    shift = ROI_SHIFT * size[:, 1]
    centre = 0.5 * (box[:, :2] + box[:, 2:]) + np.stack([-s * shift, c * shift], 1)
    return centre, ROI_SCALE * size.max(1), angle


def region_corners(centre: np.ndarray, side: np.ndarray, angle: np.ndarray, x: tuple[float, float] = (-0.5, 0.5),
                   y: tuple[float, float] = (-0.5, 0.5)) -> np.ndarray:
    """Corners (N,4,2) photo px of the part x × y (fractions of the side, region frame) of each region."""
    local = np.array([[x[0], y[0]], [x[1], y[0]], [x[1], y[1]], [x[0], y[1]]])  # (4,2)
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    lx, ly = local[None, :, 0] * side[:, None], local[None, :, 1] * side[:, None]
    return centre[:, None] + np.stack([c * lx - s * ly, s * lx + c * ly], -1)


def hand_outlines(palms: list[Palm]) -> np.ndarray:
    """Each palm's hand outline (N,4,2) photo px: the part of its region the hand fills."""
    return region_corners(*hand_regions(palms), (-MASK_HALF_WIDTH, MASK_HALF_WIDTH), (MASK_TOP, MASK_BOTTOM))


def hand_mask(outlines: np.ndarray, crop_from_image: np.ndarray, size: int) -> np.ndarray | None:
    """The hands of ``outlines`` (N,4,2) photo px drawn in a crop (size², ``crop_from_image``
    (2,3) photo → crop px): (size,size) float32 in {0, 1}, None when no hand reaches the crop."""
    mask = np.zeros((size, size), bool)
    M = np.asarray(crop_from_image, np.float64)
    for quad in np.asarray(outlines, np.float64).reshape(-1, 4, 2):
        q = quad @ M[:, :2].T + M[:, 2]
        rr, cc = polygon(q[:, 1], q[:, 0], shape=(size, size))
        mask[rr, cc] = True
    return mask.astype(np.float32) if mask.any() else None
