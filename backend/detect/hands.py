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
(:func:`hand_regions`). That square, resampled to 224² (RGB in [0, 1], edges replicated), is
the input of the hand landmark model (``hand_landmark_lite.tflite``: 21 points in crop pixels and
the hand-presence probability, MEAN and FULLY_CONNECTED ops). As in MediaPipe, a palm whose
presence is below 0.5 is dropped: the palm detector alone fires on ears, chins and mouths of
large faces (docs/mediapipe.md). :func:`detect_hands` returns the hands kept;
:func:`hand_outline` is the convex hull of a hand's 21 points grown by about half a finger's
width, and :func:`hand_mask` draws outlines in a crop.

The files are optional: without them (an install fetched before hands were added)
:func:`detect_hands` finds nothing and the pipeline runs as before.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import ConvexHull
from skimage.draw import polygon
from torch import nn

from ..errors import WeightsNotFoundError
from .base import small_to_orig
from .mediapipe_backend import crop_points_to_photo, crop_transform, detector_input, reduced_for_region, sample_crops
from .mediapipe_nets import BlazeFaceSpec, find_mediapipe_file, load_blazeface, load_tflite_net, weighted_nms

__all__ = ["HAND_LANDMARK_FILE", "HAND_SIZE", "PALM", "Hand", "HandLandmarks", "Palm", "detect_hands", "detect_palms",
           "hand_mask", "hand_outline", "hand_regions", "hands_at_face", "load_hand_landmarks", "region_corners"]

# MediaPipe's palm_detection_cpu graph: 192² input, SSD strides 8, 16, 16, 16 with the
# interpolated anchor (2016 anchors), min score 0.5, weighted NMS at IoU 0.3.
PALM = BlazeFaceSpec("palm_detection_lite.tflite", 192, (8, 16, 16, 16), True, 0.5)
WRIST, MIDDLE_BASE = 0, 2  # palm keypoints of the hand's axis
ROI_SCALE, ROI_SHIFT = 2.6, -0.5  # palm box → hand region (palm_detection_detection_to_roi)
HAND_LANDMARK_FILE = "hand_landmark_lite.tflite"
HAND_SIZE = 224  # the hand landmark model's input side
N_HAND = 21  # hand landmarks: 0 wrist, 1–4 thumb, 5–8 index, 9–12 middle, 13–16 ring, 17–20 little finger
MIN_PRESENCE = 0.5  # MediaPipe's hand-presence threshold
INDEX_BASE, MIDDLE_BASE_21 = 5, 9  # their distance is about a finger's width
# A hand in front of a face spans about its width; ears, which the two models can take for a
# hand, a third of it (faces_dev: hands 0.52–1.02, ears 0.28–0.31 of the jaw width 0–16).
MIN_FACE_FRACTION = 0.4
# A hand in front of a face reaches in from outside it (wrist, palm or fingers beyond the jaw and
# brows); a mouth, chin or nose taken for a hand lies inside (faces_dev, 51 kept hands: the 46
# real ones have ≥ 33 % of their points outside, the 5 false ones ≤ 10 %).
MIN_OUTSIDE_FACE = 0.2
FINGER_HALF_WIDTH = 0.6  # the outline grows by this × |p5 − p9| (about a finger's width)


@dataclass(frozen=True)
class Palm:
    """One palm: ``score`` probability, ``box`` (4,) x0,y0,x1,y1 and ``keypoints`` (7,2) x,y, photo pixel centres."""

    score: float
    box: np.ndarray
    keypoints: np.ndarray


@dataclass(frozen=True)
class Hand:
    """One hand: ``palm`` (its detection), ``points`` (21,3) photo px (x, y; z relative depth, px
    scale, smaller = nearer) and ``presence`` probability."""

    palm: Palm
    points: np.ndarray
    presence: float


class HandLandmarks(nn.Module):
    """MediaPipe's hand landmark model (``hand_landmark_lite.tflite``). ``forward(x)``: x
    (B,3,224,224) float32 RGB in [0, 1] (a hand crop) → ``(points (B,21,3), presence (B,))``: x, y
    in crop pixels (0 = left/top edge, 224 = right/bottom edge), z in the same units; presence the
    hand-presence probability."""

    def __init__(self, net) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        points, presence, _, _ = self.net(x)  # (B,63), (B,1) sigmoid already, handedness, world points
        return points.reshape(x.shape[0], N_HAND, 3), presence.reshape(x.shape[0])


def load_hand_landmarks(folder: str | Path | None = None) -> HandLandmarks:
    """The hand landmark model (frozen, eval, CPU float32); the parsed graph is cached per file."""
    return HandLandmarks(load_tflite_net(find_mediapipe_file(HAND_LANDMARK_FILE, folder))).eval()


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
        pts = small_to_orig(crop_points_to_photo(np.concatenate([box.reshape(2, 2), kp])[None], tf)[0], s)
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


def detect_hands(image: np.ndarray, folder: str | Path | None = None) -> list[Hand]:
    """Hands in ``image`` (H,W,3) uint8 RGB: each palm (:func:`detect_palms`) whose hand landmark
    model, run in MediaPipe's hand region, gives presence ≥ 0.5. [] when either file is not
    installed (``photohead models fetch mediapipe`` adds them)."""
    image = np.ascontiguousarray(image)
    try:
        net = load_hand_landmarks(folder)
    except WeightsNotFoundError:
        return []
    palms = detect_palms(image, folder)
    out = []
    for palm, centre, side, angle in zip(palms, *hand_regions(palms)):
        small, s = reduced_for_region(image, float(side), HAND_SIZE)
        c = (np.asarray(centre, np.float64) + 0.5) * s - 0.5
        tf = crop_transform(c[None], np.array([side * s]), np.array([angle]), HAND_SIZE)
        with torch.no_grad():
            p, presence = net(sample_crops(small, tf, HAND_SIZE, "border"))
        if float(presence[0]) < MIN_PRESENCE:
            continue
        p = p[0].double().numpy()
        pts = np.empty((N_HAND, 3))
        pts[:, :2] = small_to_orig(crop_points_to_photo(p[None, :, :2], tf)[0], s)
        pts[:, 2] = p[:, 2] * side / HAND_SIZE
        out.append(Hand(palm, pts, float(presence[0])))
    return out


def hands_at_face(hands: list[Hand], landmarks68: np.ndarray) -> list[Hand]:
    """The hands as large as a hand at the face's distance and reaching in from outside it: the
    largest distance between two of their points is at least :data:`MIN_FACE_FRACTION` × the
    face's width, and at least :data:`MIN_OUTSIDE_FACE` of their points lie outside the face's
    outline (landmarks68 (68,2) px: jaw points 0 to 16, then the brows 26 to 17)."""
    from skimage.measure import points_in_poly

    lm = np.asarray(landmarks68, np.float64)
    width = float(np.linalg.norm(lm[16] - lm[0]))
    face = np.concatenate([lm[0:17], lm[26:16:-1]])
    keep = []
    for hand in hands:
        xy = hand.points[:, :2]
        large = np.linalg.norm(xy[:, None] - xy[None], axis=-1).max() >= MIN_FACE_FRACTION * width
        if large and 1.0 - points_in_poly(xy, face).mean() >= MIN_OUTSIDE_FACE:
            keep.append(hand)
    return keep


def hand_outline(points: np.ndarray) -> np.ndarray:
    """A hand's outline (P,2) photo px, counter-clockwise: the convex hull of its 21 points
    (21,2+) grown by :data:`FINGER_HALF_WIDTH` × the index–middle knuckle distance (the points
    run along the fingers' middles)."""
    xy = np.asarray(points, np.float64)[:, :2]
    r = FINGER_HALF_WIDTH * np.linalg.norm(xy[INDEX_BASE] - xy[MIDDLE_BASE_21])
    t = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)
    grown = (xy[:, None] + r * np.stack([np.cos(t), np.sin(t)], -1)[None]).reshape(-1, 2)
    return grown[ConvexHull(grown).vertices]


def hand_mask(outlines, crop_from_image: np.ndarray, size: int) -> np.ndarray | None:
    """The hands of ``outlines`` (polygons (P,2) photo px) drawn in a crop (size²,
    ``crop_from_image`` (2,3) photo → crop px): (size,size) float32 in {0, 1}, None when no hand
    reaches the crop."""
    mask = np.zeros((size, size), bool)
    M = np.asarray(crop_from_image, np.float64)
    for outline in outlines:
        q = np.asarray(outline, np.float64) @ M[:, :2].T + M[:, 2]
        rr, cc = polygon(q[:, 1], q[:, 0], shape=(size, size))
        mask[rr, cc] = True
    return mask.astype(np.float32) if mask.any() else None
