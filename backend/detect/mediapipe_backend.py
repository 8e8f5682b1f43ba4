"""MediaPipe backend: BlazeFace → rotated face crop → Face Mesh → 468 points and the 68 of iBUG.

The pipeline follows MediaPipe's ``face_landmark_front`` graph for still images:

1. The photo is letterboxed into the detector's square input (black borders, RGB in [-1, 1]);
   short-range BlazeFace runs first, the full-range model only when it finds nothing.
2. Each detection becomes a region of interest: centred on its box, side 1.5 × the box's
   longer side, rotated so the eye keypoints are level.
3. That region is resampled to 192² (edge pixels replicated, RGB in [0, 1]) and Face Mesh gives
   468 points; ``mesh_passes`` > 1 recentres the region on the previous points (as MediaPipe's
   tracking does: landmark box, eye corners 33/263 level, ×1.5) and runs the mesh again.
4. The 68 iBUG points are fixed weighted sums of mesh points (:mod:`.mediapipe_68`).

Coordinates are pixel centres (DESIGN.md); the networks' outputs are read as continuous
coordinates (0 = the crop's left edge). Photos larger than twice a network's input are first
reduced with an antialiased resize, so the bilinear crop samples no aliasing.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from .base import WEAK_DETECTOR, DetectSettings, Face, downscale_for_detection, small_to_orig
from .mediapipe_68 import mesh_to_68
from .mediapipe_nets import FULL_RANGE, MESH_SIZE, SHORT_RANGE, BlazeFaceSpec, load_blazeface, load_face_mesh, weighted_nms

__all__ = ["MeshResult", "crop_points_to_photo", "crop_transform", "detect_mediapipe", "detector_input", "mesh_faces_in_boxes",
           "mesh_in_rois", "reduced_for_region", "roi_from_points", "sample_crops", "weak_mesh_faces", "WEAK_DETECTOR"]

ROI_SCALE = 1.5  # MediaPipe's RectTransformationCalculator scale for both ROIs
MESH_EYE_CORNERS = (33, 263)  # the subject's right / left outer eye corners in Face Mesh
MIN_PRESENCE = 0.5  # MediaPipe's face-presence threshold
# auto's last try near profile: BlazeFace candidates down to this probability, each kept only when
# Face Mesh finds a face in it (presence ≥ MIN_PRESENCE) (docs/mediapipe.md, renders at 65–80° yaw)
WEAK_MIN_SCORE = 0.1


def crop_transform(centre: np.ndarray, side: np.ndarray, angle: np.ndarray, size: int) -> np.ndarray:
    """Affine maps (N,2,3) from crop pixels (continuous: 0 = left edge, ``size`` = right edge) to
    photo pixel centres, for square regions: centre (N,2) px, side (N,) px, angle (N,) radians
    (the crop's x axis points along (cos a, sin a) in the photo, y down)."""
    c, s = np.cos(angle), np.sin(angle)
    k = np.asarray(side, np.float64) / size
    m = np.empty((len(k), 2, 3))
    m[:, 0, 0], m[:, 0, 1] = c * k, -s * k
    m[:, 1, 0], m[:, 1, 1] = s * k, c * k
    m[:, :, 2] = np.asarray(centre, np.float64) - 0.5 * size * (m[:, :, 0] + m[:, :, 1])
    return m


def sample_crops(image: np.ndarray, transforms: np.ndarray, size: int, border: str) -> torch.Tensor:
    """Bilinear crops (N,3,size,size) float32 in [0, 1] of image (H,W,3) uint8.

    transforms (N,2,3): crop continuous px → photo pixel centres (:func:`crop_transform`);
    border ``"zeros"`` (black) or ``"border"`` (edge replicated).
    """
    h, w = image.shape[:2]
    img = torch.from_numpy(np.array(image, np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    t = torch.from_numpy(np.asarray(transforms, np.float64))
    j = torch.arange(size, dtype=torch.float64) + 0.5  # crop pixel centres, continuous
    gy, gx = torch.meshgrid(j, j, indexing="ij")
    grid = torch.stack([gx, gy, torch.ones_like(gx)], -1)  # (S,S,3)
    src = torch.einsum("nij,yxj->nyxi", t, grid)  # (N,S,S,2) photo pixel centres
    norm = torch.stack([(2 * src[..., 0] + 1) / w - 1, (2 * src[..., 1] + 1) / h - 1], -1).float()
    return F.grid_sample(img.expand(len(t), -1, -1, -1), norm, mode="bilinear", padding_mode=border,
                         align_corners=False)


def crop_points_to_photo(points: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Crop points (N,P,2) continuous px → photo pixel centres (N,P,2)."""
    return np.einsum("nij,npj->npi", transforms[:, :, :2], points) + transforms[:, None, :, 2]


def reduced_for_region(image: np.ndarray, side: float, size: int) -> tuple[np.ndarray, float]:
    """The photo, antialias-reduced when a ``side``-px region would shrink more than 2× into ``size``."""
    if side <= 2 * size:
        return image, 1.0
    longest = max(image.shape[:2])
    return downscale_for_detection(image, max(64, int(math.ceil(longest * 2 * size / side))))


def detector_input(image: np.ndarray, spec: BlazeFaceSpec) -> tuple[torch.Tensor, np.ndarray, float]:
    """The letterboxed detector input of image (H,W,3) uint8: ``(x (1,3,S,S) in [-1, 1], transform
    (1,2,3) input continuous px → reduced-photo pixel centres, s)`` where the reduced photo is
    the original scaled by ``s`` (:func:`backend.detect.base.downscale_for_detection`)."""
    h, w = image.shape[:2]
    small, s = reduced_for_region(image, max(h, w), spec.input_size)
    sh, sw = small.shape[:2]
    tf = crop_transform(np.array([[(sw - 1) / 2, (sh - 1) / 2]]), np.array([float(max(sh, sw))]), np.zeros(1),
                        spec.input_size)
    return sample_crops(small, tf, spec.input_size, "zeros") * 2 - 1, tf, s


def _detect_boxes(image: np.ndarray, spec: BlazeFaceSpec, folder) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """BlazeFace on the letterboxed photo: [(score, box (4,) px, keypoints (6,2) px)], best first."""
    x, tf, s = detector_input(image, spec)
    with torch.no_grad():
        scores, boxes, kps = load_blazeface(spec, folder)(x)
    n = spec.input_size
    dets = weighted_nms(scores[0].double().numpy(), boxes[0].double().numpy() * n, kps[0].double().numpy() * n,
                        spec.min_score, spec.iou)
    out = []
    for score, box, kp in dets:
        pts = small_to_orig(crop_points_to_photo(np.concatenate([box.reshape(2, 2), kp])[None], tf)[0], s)
        out.append((score, pts[:2].reshape(4), pts[2:]))
    return out


def roi_from_points(points: np.ndarray, right_eye: np.ndarray, left_eye: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's region from a point set: (centre (N,2), side (N,), angle (N,)).

    points (N,P,2) px: their axis-aligned box gives the centre and the longer side (×1.5);
    right_eye, left_eye (N,2): the angle that levels them (the subject's right eye at image left).
    """
    lo, hi = points.min(1), points.max(1)
    d = left_eye - right_eye
    return 0.5 * (lo + hi), ROI_SCALE * (hi - lo).max(1), np.arctan2(d[:, 1], d[:, 0])


class MeshResult:
    """Face Mesh on N regions: ``points`` (N,468,3) photo px (z: relative depth, px scale),
    ``presence`` (N,), ``transforms`` (N,2,3) the crops used (:func:`crop_transform`)."""

    def __init__(self, points: np.ndarray, presence: np.ndarray, transforms: np.ndarray) -> None:
        self.points, self.presence, self.transforms = points, presence, transforms


def mesh_in_rois(image: np.ndarray, centre: np.ndarray, side: np.ndarray, angle: np.ndarray, folder=None) -> MeshResult:
    """Face Mesh in square regions (centre (N,2) px, side (N,) px, angle (N,) rad) of image (H,W,3) uint8."""
    n = len(side)
    pts = np.empty((n, 468, 3))
    presence = np.empty(n)
    tfs = np.empty((n, 2, 3))
    mesh = load_face_mesh(folder)
    for i in range(n):  # photos differ in reduction per face; faces are few
        small, s = reduced_for_region(image, float(side[i]), MESH_SIZE)
        c = (np.asarray(centre[i], np.float64) + 0.5) * s - 0.5
        tf = crop_transform(c[None], np.array([side[i] * s]), np.array([angle[i]]), MESH_SIZE)
        with torch.no_grad():
            p, pr = mesh(sample_crops(small, tf, MESH_SIZE, "border"))
        p = p[0].double().numpy()
        xy = small_to_orig(crop_points_to_photo(p[None, :, :2], tf)[0], s)
        tfs[i] = crop_transform(centre[i][None], side[i:i + 1], angle[i:i + 1], MESH_SIZE)[0]
        pts[i, :, :2] = xy
        pts[i, :, 2] = p[:, 2] * side[i] / MESH_SIZE
        presence[i] = float(pr[0])
    return MeshResult(pts, presence, tfs)


def detect_mediapipe(image: np.ndarray, settings: DetectSettings) -> list[Face]:
    """All faces in ``image`` (H,W,3) uint8 RGB, unsorted; coordinates in original pixels.

    Each :class:`Face` has ``dense`` (468,3) and ``presence``; ``score`` is BlazeFace's
    probability, ``detector`` "blazeface-short" or "blazeface-full". Faces whose mesh presence is
    below 0.5 are dropped, as MediaPipe does.
    """
    image = np.ascontiguousarray(image)
    folder = settings.weights_dir if settings.weights_dir else None
    detector = "blazeface-short"
    dets = _detect_boxes(image, SHORT_RANGE, folder)
    if not dets:
        dets, detector = _detect_boxes(image, FULL_RANGE, folder), "blazeface-full"
    dets = dets[: settings.max_faces]
    if not dets:
        return []
    boxes = np.stack([d[1] for d in dets])
    kps = np.stack([d[2] for d in dets])
    d = kps[:, 1] - kps[:, 0]
    return mesh_faces_in_boxes(image, boxes, np.array([d[0] for d in dets]), detector, settings,
                               np.arctan2(d[:, 1], d[:, 0]))


def mesh_faces_in_boxes(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, detector: str,
                        settings: DetectSettings, angle: np.ndarray | None = None,
                        passes: int | None = None, min_presence: float = MIN_PRESENCE) -> list[Face]:
    """Face Mesh in face boxes (N,4) px (any detector's; ``angle`` (N,) rad levels the eyes, 0 when
    unknown): region 1.5 × the box's longer side, then ``passes`` (default
    ``settings.mesh_passes``) − 1 recentred passes. Returns the faces whose presence is ≥
    ``min_presence`` (MediaPipe's 0.5), with ``score`` from ``scores`` (N,)."""
    folder = settings.weights_dir if settings.weights_dir else None
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    w = (boxes[:, 2:] - boxes[:, :2]).max(1)
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    result = mesh_in_rois(image, centre, ROI_SCALE * w, np.zeros(len(w)) if angle is None else angle, folder)
    for _ in range((passes or settings.mesh_passes) - 1):
        p = result.points[:, :, :2]
        result = mesh_in_rois(image, *roi_from_points(p, p[:, MESH_EYE_CORNERS[0]], p[:, MESH_EYE_CORNERS[1]]), folder)
    faces = []
    for i, box in enumerate(boxes):
        if result.presence[i] < min_presence:
            continue
        faces.append(Face(box=box, landmarks=mesh_to_68(result.points[i]), score=float(scores[i]), backend="mediapipe",
                          detector=detector, dense=result.points[i], presence=float(result.presence[i])))
    return faces


def weak_mesh_faces(image: np.ndarray, settings: DetectSettings, passes: int = 3) -> list[Face]:
    """Faces among BlazeFace's weak candidates (full range, then short; probability ≥
    :data:`WEAK_MIN_SCORE`), verified by Face Mesh (``passes`` passes, the first unlevelled:
    near profile the eye keypoints are unreliable): for photos where neither BlazeFace at its own
    threshold nor dlib finds the face. ``detector`` :data:`WEAK_DETECTOR`."""
    image = np.ascontiguousarray(image)
    folder = settings.weights_dir if settings.weights_dir else None
    for spec in (FULL_RANGE, SHORT_RANGE):
        dets = _detect_boxes(image, replace(spec, min_score=WEAK_MIN_SCORE), folder)[: settings.max_faces]
        if dets:
            faces = mesh_faces_in_boxes(image, np.stack([d[1] for d in dets]), np.array([d[0] for d in dets]),
                                        WEAK_DETECTOR, settings, passes=passes)
            if faces:
                return faces
    return []
