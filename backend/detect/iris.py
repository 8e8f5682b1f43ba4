"""The irises in the photo: MediaPipe's Iris model ported to PyTorch, in MediaPipe's eye regions.

``iris_landmark.tflite`` (from the same pinned mediapipe wheel as the face models,
:mod:`.mediapipe_fetch`) reads a 64² RGB eye crop in [0, 1] (``TfLiteConverterCalculator``
``zero_center: false``) and gives 71 eye-contour and brow points and 5 iris points (0 the iris's
centre, 1–4 on its rim), x, y, z in crop pixels. The crop is MediaPipe's (``iris_landmark_cpu``
and ``iris_landmark_landmarks_to_roi``): the eye's two corners (Face Mesh 33, 133 for the eye at
image left, 362, 263 for the eye at image right; iBUG 36, 39 and 42, 45 serve the same) give the
centre (their middle), the angle that levels them, and the side, 2.3 × the longer side of their
box (``square_long``); the edges are replicated (``BORDER_REPLICATE``). The model was trained on
the eye at image left (the subject's right eye), so the eye at image right is read mirrored
(``IS_RIGHT_EYE`` flips the crop and its points back).

:func:`detect_irises` returns each eye's points in photo pixels; :func:`iris_radius_px` the iris's
radius seen in the photo; :func:`iris_confident` whether the points look like an iris in an open
eye. The file is optional: without it (an install fetched before the irises were added)
:func:`detect_irises` returns None and :mod:`backend.gaze` finds the irises as before.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import WeightsNotFoundError
from .base import small_to_orig
from .mediapipe_backend import crop_points_to_photo, crop_transform, reduced_for_region, sample_crops
from .mediapipe_nets import find_mediapipe_file, load_tflite_net

__all__ = ["IRIS_FILE", "IRIS_SIZE", "EyeLandmarks", "IrisLandmarks", "detect_irises", "eye_regions", "iris_corners",
           "iris_confident", "iris_crops", "iris_radius_px", "load_iris_landmarks"]

IRIS_FILE = "iris_landmark.tflite"
IRIS_SIZE = 64  # the model's input side
N_CONTOUR, N_IRIS = 71, 5
ROI_SCALE = 2.3  # the eye region's side over the corners' box's longer side (iris_landmark_landmarks_to_roi)
CORNERS_68 = ((36, 39), (42, 45))  # iBUG-68 corners of the eye at image left, at image right
CORNERS_MESH = ((33, 133), (362, 263))  # Face Mesh's (MediaPipe's iris graph)
# Face Mesh's corners lie this much farther apart than the detector's iBUG ones (median over 80
# faces_dev eyes, 10–90 %: 1.01–1.15); the model's radius follows the region's size by about half
# of it, so iBUG corners are widened by it when the photo has no Face Mesh
MESH_OVER_68 = 1.08
# iris_confident: the rim points' distances from the centre agree within this ratio, the iris's
# diameter is this fraction of the eye's width (corner to corner; adults ≈ 0.4, a child's ≈ 0.5),
# and its centre lies within the eye contour's box grown by this many iris radii
MIN_ROUND = 0.6
IRIS_OF_EYE = (0.25, 0.8)
CENTRE_REACH = 0.5


class IrisLandmarks(nn.Module):
    """MediaPipe's Iris model (``iris_landmark.tflite``). ``forward(x)``: x (B,3,64,64) float32 RGB
    in [0, 1] (an eye crop, the subject's right eye or a mirrored left one) → ``(contour (B,71,3),
    iris (B,5,3))``: x, y in crop pixels (0 = left/top edge, 64 = right/bottom edge), z in the same
    units (relative depth); iris 0 the centre, 1–4 on the rim."""

    def __init__(self, net) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        contour, iris = self.net(x)  # (B,213), (B,15)
        return contour.reshape(x.shape[0], N_CONTOUR, 3), iris.reshape(x.shape[0], N_IRIS, 3)


def load_iris_landmarks(folder: str | Path | None = None) -> IrisLandmarks:
    """The Iris model (frozen, eval, CPU float32); the parsed graph is cached per file."""
    return IrisLandmarks(load_tflite_net(find_mediapipe_file(IRIS_FILE, folder))).eval()


@dataclass(frozen=True)
class EyeLandmarks:
    """The Iris model's points for E eyes in photo pixel centres: ``iris`` (E,5,2) (0 the centre,
    1–4 on the rim), ``contour`` (E,71,2) eye contour and brow, ``transforms`` (E,2,3) the crops
    read (crop continuous px → photo px; the eye at image right mirrored)."""

    iris: np.ndarray
    contour: np.ndarray
    transforms: np.ndarray


def eye_regions(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's eye regions: corners (E,2,2) px, each eye's corner at image left then at image
    right → (centre (E,2) px, side (E,) px, angle (E,) rad; the crop's x axis along (cos a, sin a))."""
    c = np.asarray(corners, np.float64)
    d = c[:, 1] - c[:, 0]
    return c.mean(1), ROI_SCALE * np.abs(d).max(1), np.arctan2(d[:, 1], d[:, 0])


def iris_corners(landmarks68: np.ndarray, dense: np.ndarray | None = None) -> np.ndarray:
    """(2,2,2) px the corners :func:`detect_irises` reads the eyes between, each eye at image left
    first: Face Mesh's (dense (468,2+) px, as MediaPipe's graph), else the iBUG corners of
    landmarks68 (68,2) px widened about their middle by :data:`MESH_OVER_68`."""
    if dense is not None:
        return np.stack([np.asarray(dense, np.float64)[list(c), :2] for c in CORNERS_MESH])
    c = np.stack([np.asarray(landmarks68, np.float64)[list(k), :2] for k in CORNERS_68])  # (2,2,2)
    mid = c.mean(1, keepdims=True)
    return mid + MESH_OVER_68 * (c - mid)


def _mirrored(tf: np.ndarray, size: int) -> np.ndarray:
    """The crop map (N,2,3) composed with x → size − x (a horizontally mirrored crop)."""
    out = tf.copy()
    out[:, :, 0] = -tf[:, :, 0]
    out[:, :, 2] = tf[:, :, 2] + size * tf[:, :, 0]
    return out


def iris_crops(image: np.ndarray, corners: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The model's inputs for eyes with corners (E,2,2) px (eye 0 at image left, eye 1 at image
    right; :func:`eye_regions`) in image (H,W,3) uint8: ``(x (E,3,64,64) float32 in [0, 1], transforms
    (E,2,3) crop → reduced-photo px, scales (E,))``; the eye at image right is mirrored."""
    image = np.ascontiguousarray(image)
    centre, side, angle = eye_regions(corners)
    crops, tfs, scales = [], [], []
    for e in range(len(side)):
        small, s = reduced_for_region(image, float(side[e]), IRIS_SIZE)
        c = (centre[e] + 0.5) * s - 0.5
        tf = crop_transform(c[None], np.array([side[e] * s]), angle[e : e + 1], IRIS_SIZE)
        if e % 2 == 1:
            tf = _mirrored(tf, IRIS_SIZE)
        crops.append(sample_crops(small, tf, IRIS_SIZE, "border"))
        tfs.append(tf[0])
        scales.append(s)
    return torch.cat(crops), np.stack(tfs), np.asarray(scales)


def detect_irises(image: np.ndarray, corners: np.ndarray, folder: str | Path | None = None) -> EyeLandmarks | None:
    """The Iris model on the two eyes of image (H,W,3) uint8 RGB with corners (2,2,2) px (the eye at
    image left, then at image right; each corner at image left first: iBUG 36, 39 and 42, 45 or
    Face Mesh 33, 133 and 362, 263). None when ``iris_landmark.tflite`` is not installed
    (``photohead models fetch mediapipe`` adds it)."""
    try:
        net = load_iris_landmarks(folder)
    except WeightsNotFoundError:
        return None
    x, tfs, scales = iris_crops(image, corners)
    with torch.no_grad():
        contour, iris = net(x)
    pts = torch.cat([iris[..., :2], contour[..., :2]], 1).double().numpy()  # (E,76,2) crop px
    photo = np.stack([small_to_orig(p, s) for p, s in zip(crop_points_to_photo(pts, tfs), scales)])
    full = tfs.copy()  # crop → original photo px
    full[:, :, :2] /= scales[:, None, None]
    full[:, :, 2] = (tfs[:, :, 2] + 0.5) / scales[:, None] - 0.5
    return EyeLandmarks(iris=photo[:, :N_IRIS], contour=photo[:, N_IRIS:], transforms=full)


def iris_radius_px(iris: np.ndarray) -> np.ndarray:
    """(E,) each iris's radius in photo px from its points (E,5,2): half the longer of the two rim
    diameters (1–3, 2–4; an iris seen at an angle is an ellipse whose long axis is its true size)."""
    p = np.asarray(iris, np.float64)
    return 0.5 * np.maximum(np.linalg.norm(p[:, 1] - p[:, 3], axis=1), np.linalg.norm(p[:, 2] - p[:, 4], axis=1))


def iris_confident(iris: np.ndarray, contours: np.ndarray) -> np.ndarray:
    """(E,) bool: the iris points (E,5,2) px look like an iris of the eye with iBUG contour
    (E,6,2) px (36–41 or 42–47: corners at 0 and 3): the rim points about equally far from the
    centre (:data:`MIN_ROUND`), a diameter of :data:`IRIS_OF_EYE` of the eye's width (corner to
    corner), the centre within the contour's box grown by :data:`CENTRE_REACH` iris radii."""
    p = np.asarray(iris, np.float64)
    c = np.asarray(contours, np.float64)
    dist = np.linalg.norm(p[:, 1:] - p[:, :1], axis=2)  # (E,4)
    round_ = dist.min(1) >= MIN_ROUND * dist.max(1)
    r = iris_radius_px(p)
    width = np.linalg.norm(c[:, 3] - c[:, 0], axis=1)
    size = (2 * r >= IRIS_OF_EYE[0] * width) & (2 * r <= IRIS_OF_EYE[1] * width)
    lo, hi = c.min(1) - CENTRE_REACH * r[:, None], c.max(1) + CENTRE_REACH * r[:, None]
    near = np.all((p[:, 0] >= lo) & (p[:, 0] <= hi), axis=1)
    return round_ & size & near & np.isfinite(p).all((1, 2))
