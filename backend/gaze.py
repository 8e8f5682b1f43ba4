"""The gaze from one photo: where each iris sits inside its detected eye contour, turned into
the eyeball's yaw and pitch (:func:`backend.head_parts.eye_rotation`) with the fitted pose.

1. The iris centre: where MediaPipe's Iris model (:mod:`backend.detect.iris`, when its file is
   installed; passed in as ``irises``) gives a confident iris
   (:func:`~backend.detect.iris.iris_confident`), its centre, averaged with the darkness's (below)
   when the two lie within :data:`FUSE_GAP` iris radii (a disc sliding onto a lid or a shadow
   lies farther); else :func:`locate_irises`: each eye's patch is resampled into the eye's own
   frame (x along the corners 36→39 / 42→45, the eye's width 48 patch pixels); inside the contour polygon the
   darkness (1 − luma, stretched between its 5th and 95th percentiles) minus
   :data:`DARK_LEVEL` is correlated with a disc of the iris's radius (known in pixels from the
   fitted scale) less half its surround (to 1.4 radii): the sclera below or beside the disc counts
   against it, so the iris's visible rim places it even when a lid hides the rest (the contour's
   median as the level counted the sclera as 0 and let the disc slide down: a 15° look up came
   back as 9°). The iris centre is the soft-argmax of that score over centres inside the contour
   grown by half an iris radius (a plateau, as when both lids cut the iris, gives its middle).
2. :func:`solve_gaze`: the iris centre is moved from the detected contour into the fitted
   model's contour (the same place relative to the corners: the fit's small misregistration
   cancels), and (yaw, pitch) is solved so that the iris rim's centre
   (``EyeFrame.centre + limbus·axis``, turned) projects there (Gauss–Newton, 8 steps).
3. :func:`iris_size`: the Iris model's iris radius (px, :func:`~backend.detect.iris.iris_radius_px`)
   over the eye's scale (px per mm of the fitted head), combined over the seen eyes and clamped
   to :data:`~backend.head_parts.IRIS_RANGE_MM`: the head's iris size.
4. :func:`combine_eyes`: each eye is weighted by how open it is (:func:`eye_weights`); an eye
   that is shut or seen edge-on takes the other eye's gaze; two seen eyes keep their weighted
   mean yaw and at most :data:`VERGENCE_LIMIT` each from it (converging eyes; a larger difference
   is the detector's noise) and share their mean pitch; narrow eyes scale the gaze towards
   looking ahead; angles are clamped to :data:`YAW_LIMIT`, :data:`PITCH_LIMIT`.

Cost: two 62×38 patches and a 2×2 solve, a few milliseconds of CPU (the Iris model: two 64² crops).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from skimage.measure import points_in_poly

from .camera import Camera, project
from .detect.iris import EyeLandmarks, iris_confident, iris_radius_px
from .head_parts import EYEBALLS, IRIS_RADIUS_MM, IRIS_RANGE_MM, EyeFrame, eye_rotation
from .image_filters import LUMA

__all__ = ["YAW_LIMIT", "PITCH_LIMIT", "VERGENCE_LIMIT", "GazeEstimate", "gaze_rotation", "locate_irises", "solve_gaze",
           "eye_weights", "combine_eyes", "estimate_gaze", "best_view", "iris_size"]

YAW_LIMIT = math.radians(35.0)    # the eyes turn about ±45° at most; ±35° covers a look aside
PITCH_LIMIT = math.radians(25.0)
VERGENCE_LIMIT = math.radians(5.0)
SHUT, OPEN = 0.25, 0.55  # an eye's opening (contour height / iris diameter): shut below, fully trusted above
CONTOURS = (slice(36, 42), slice(42, 48))  # iBUG-68: the subject's right eye, left eye
FUSE_GAP = 0.5  # the Iris model's and the darkness's centres within this many iris radii: their mean
DARK_LEVEL = 0.45  # stretched darkness counted as iris above, sclera/skin below (see locate_irises)
RING, RING_WEIGHT = 1.4, 0.5  # the disc's surround (radii) and its weight against the disc
SOFTNESS = 0.1  # soft-argmax temperature, a fraction of the score's best-minus-median
CENTRE_REACH = 0.5  # candidate iris centres: inside the contour grown by this many iris radii
PATCH_W, PATCH_H = 62, 38  # the patch spans 1.3 × 0.8 eye widths
EYE_PX = 48.0              # patch pixels per eye width


def _eye_frame_2d(contour: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mid (2,), ex (2,), ey (2,), width): the eye's 2-D frame from its 6 contour points (n,2),
    x from corner 0 to corner 3, y perpendicular (down in the image for an upright face)."""
    a, b = contour[0].astype(np.float64), contour[3].astype(np.float64)
    width = float(max(np.linalg.norm(b - a), 1e-6))
    ex = (b - a) / width
    return (a + b) / 2.0, ex, np.array([-ex[1], ex[0]]), width


def locate_irises(image: np.ndarray, contours: np.ndarray, radius_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Iris centres in one photo. image (H,W,3) uint8 RGB; contours (E,6,2) each eye's 68-point
    contour (x right, y down, photo pixels); radius_px (E,) the iris's radius in pixels.

    Returns (centres (E,2) photo pixels, opening (E,) the contour's height over the iris's
    diameter: < 0.25 is a shut eye)."""
    contours = np.asarray(contours, np.float64)
    E = len(contours)
    H, W = image.shape[:2]
    u = (np.arange(PATCH_W) - (PATCH_W - 1) / 2.0) / EYE_PX  # eye widths
    v = (np.arange(PATCH_H) - (PATCH_H - 1) / 2.0) / EYE_PX
    grids, masks, frames = [], [], []
    for e in range(E):
        mid, ex, ey, width = _eye_frame_2d(contours[e])
        pts = mid + width * (u[None, :, None] * ex + v[:, None, None] * ey)  # (h,w,2) photo px
        grids.append(pts)
        local = (contours[e] - mid) @ np.stack([ex, ey], 1) / width * EYE_PX  # contour in patch px from the centre
        uv = np.stack(np.meshgrid(u * EYE_PX, v * EYE_PX), -1).reshape(-1, 2)
        masks.append(points_in_poly(uv, local).reshape(PATCH_H, PATCH_W))
        frames.append((mid, ex, ey, width))
    grid = torch.from_numpy(np.stack(grids)).float()  # (E,h,w,2) photo px
    norm = torch.stack([(grid[..., 0] + 0.5) / W * 2 - 1, (grid[..., 1] + 0.5) / H * 2 - 1], -1)
    img = torch.from_numpy(np.ascontiguousarray(image)).float().permute(2, 0, 1)[None] / 255.0  # (1,3,H,W)
    patch = torch.nn.functional.grid_sample(img.expand(E, -1, -1, -1), norm, align_corners=False,
                                            padding_mode="border")  # (E,3,h,w)
    luma = (patch * torch.tensor(LUMA)[None, :, None, None]).sum(1)  # (E,h,w)
    mask = torch.from_numpy(np.stack(masks))  # (E,h,w) bool
    centres = np.zeros((E, 2))
    opening = np.zeros(E)
    for e in range(E):
        mid, ex, ey, width = frames[e]
        r = float(radius_px[e]) / width * EYE_PX  # iris radius in patch px
        c = contours[e]
        height = 0.5 * (np.linalg.norm(c[1] - c[5]) + np.linalg.norm(c[2] - c[4]))
        opening[e] = height / max(2.0 * float(radius_px[e]), 1e-6)
        if mask[e].sum() < 8 or r < 0.5:
            centres[e] = mid
            opening[e] = 0.0
            continue
        dark = 1.0 - luma[e]
        inside = dark[mask[e]]
        lo, hi = torch.quantile(inside, 0.05), torch.quantile(inside, 0.95)
        dark = ((dark - lo) / (hi - lo).clamp_min(1e-3)).clamp(0, 1)
        signal = (dark - DARK_LEVEL) * mask[e]  # (h,w): iris > 0 > sclera
        k = int(math.ceil(RING * r))
        yy, xx = torch.meshgrid(torch.arange(-k, k + 1.0), torch.arange(-k, k + 1.0), indexing="ij")
        dist = (xx**2 + yy**2).sqrt()
        disc = (dist <= r).float()  # (2k+1, 2k+1)
        ring = ((dist > r) & (dist <= RING * r)).float()
        kernel = disc - RING_WEIGHT * ring * disc.sum() / ring.sum().clamp_min(1.0)
        score = torch.nn.functional.conv2d(signal[None, None], kernel[None, None], padding=k)[0, 0]  # (h,w)
        grow = max(1, int(round(CENTRE_REACH * r)))  # an iris centre may sit a little under a lid
        valid = torch.nn.functional.max_pool2d(mask[e][None, None].float(), 2 * grow + 1, 1, grow)[0, 0] > 0
        best = score[valid].max()
        spread = (best - score[valid].median()).clamp_min(1e-6)
        weight = torch.where(valid, torch.exp((score - best) / (SOFTNESS * spread)), torch.zeros_like(score))
        weight = weight / weight.sum()
        py = float((weight.sum(1) * torch.arange(PATCH_H, dtype=weight.dtype)).sum())
        px = float((weight.sum(0) * torch.arange(PATCH_W, dtype=weight.dtype)).sum())
        centres[e] = np.asarray(grid[e, 0, 0]) + (px * ex + py * ey) * width / EYE_PX
    return centres, opening


def gaze_rotation(angles: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) ``Ry(yaw) @ Rx(pitch)`` for angles (..., 2) (yaw, pitch) radians: the torch twin
    of :func:`backend.head_parts.eye_rotation` (differentiable, batched)."""
    yaw, pitch = angles[..., 0], angles[..., 1]
    cy, sy, cp, sp = yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin()
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)
    ry = torch.stack([torch.stack([cy, zero, sy], -1), torch.stack([zero, one, zero], -1),
                      torch.stack([-sy, zero, cy], -1)], -2)
    rx = torch.stack([torch.stack([one, zero, zero], -1), torch.stack([zero, cp, -sp], -1),
                      torch.stack([zero, sp, cp], -1)], -2)
    return ry @ rx


def _iris_points(frames: list[EyeFrame], angles: torch.Tensor) -> torch.Tensor:
    """(B,E,3) the iris rims' centres of eyeballs ``frames`` turned by angles (B,E,2) (yaw, pitch)."""
    centre = torch.tensor(np.stack([f.centre for f in frames]), dtype=angles.dtype)  # (E,3)
    arm = torch.tensor(np.stack([f.limbus * f.axis for f in frames]), dtype=angles.dtype)  # (E,3)
    return centre + (gaze_rotation(angles) @ arm[..., None])[..., 0]


def solve_gaze(frames: list[EyeFrame], targets: np.ndarray, pose: np.ndarray, camera: Camera,
               steps: int = 8) -> np.ndarray:
    """(E,2) (yaw, pitch) radians that put each eye's turned iris centre at targets (E,2) photo px,
    for eyeballs ``frames`` (model mm) seen in the view pose (7,) of ``camera``; unclamped."""
    pose_t = torch.tensor(np.asarray(pose, np.float64)[None])
    target = torch.tensor(np.asarray(targets, np.float64))
    angles = torch.zeros(len(frames), 2, dtype=torch.float64)
    h = 1e-4
    probe = torch.tensor([[0.0, 0.0], [h, 0.0], [0.0, h]], dtype=torch.float64)  # (3,2)
    for _ in range(steps):
        trial = angles[None] + probe[:, None]  # (3,E,2)
        xy = project(_iris_points(frames, trial).reshape(1, -1, 3), pose_t, camera)[0, :, :2].reshape(3, -1, 2)
        J = torch.stack([(xy[1] - xy[0]) / h, (xy[2] - xy[0]) / h], -1)  # (E,2 px, 2 angles)
        step = torch.linalg.lstsq(J, (target - xy[0])[..., None], driver="gelsd").solution[..., 0]
        angles = angles + step.clamp(-0.3, 0.3)
    return angles.numpy()


def eye_weights(opening: np.ndarray, width: np.ndarray) -> np.ndarray:
    """(E,) how far each eye's iris is trusted, in [0,1]: 0 for a shut eye (``opening``, the contour's
    height over the iris's diameter, below :data:`SHUT`) or one seen edge-on (``width``, the eye's
    width in iris radii, below 2.5; about 5 seen from the front), rising linearly to 1 at
    :data:`OPEN` (a narrow eye's lashes and lid shadow move the dark disc)."""
    w = np.clip((np.asarray(opening, np.float64) - SHUT) / (OPEN - SHUT), 0.0, 1.0)
    return np.where((np.asarray(width) > 2.5) & (np.asarray(opening) > SHUT), w, 0.0)


def combine_eyes(angles: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(E,2) the gaze to keep from per-eye estimates angles (E,2) (yaw, pitch) and their weights
    (E,) in [0,1] (:func:`eye_weights`): the weighted mean, each seen eye's yaw at most
    :data:`VERGENCE_LIMIT` from it (unseen eyes: the mean), one pitch; all scaled by the largest
    weight (narrow eyes: towards looking ahead; 0 when no eye is seen); clamped to the limits."""
    angles = np.asarray(angles, np.float64)
    weight = np.clip(np.nan_to_num(np.asarray(weight, np.float64)), 0.0, 1.0)
    weight = np.where(np.isfinite(angles).all(1), weight, 0.0)
    if weight.max() <= 0:
        return np.zeros_like(angles)
    angles = np.nan_to_num(angles)
    mean = (weight[:, None] * angles).sum(0) / weight.sum()
    seen = weight > 0
    yaw = np.where(seen, mean[0] + np.clip(angles[:, 0] - mean[0], -VERGENCE_LIMIT, VERGENCE_LIMIT), mean[0])
    out = np.stack([yaw, np.full(len(angles), mean[1])], 1) * weight.max()  # eyes do not diverge vertically
    return np.stack([np.clip(out[:, 0], -YAW_LIMIT, YAW_LIMIT), np.clip(out[:, 1], -PITCH_LIMIT, PITCH_LIMIT)], 1)


@dataclass(frozen=True)
class GazeEstimate:
    """What :func:`estimate_gaze` found, per eyeball in :data:`backend.head_parts.EYEBALLS` order:
    ``angles`` (2,2) float32 radians (yaw, pitch), the gaze to use; ``iris`` (2,2) the iris
    centres (photo px); ``radius`` (2,) the iris's radius (px); ``weight`` (2,) how far each
    eye was trusted (:func:`eye_weights`); ``seen`` (2,) bool: weight > 0 (the eye is open and not
    seen edge-on: its iris was measured); ``model`` (2,) bool: the iris centre and radius are the
    Iris model's (else the darkness's and the default size's); ``iris_mm``: the iris's radius
    (:func:`iris_size`), None when no seen eye had the model's."""

    angles: np.ndarray
    iris: np.ndarray
    radius: np.ndarray
    weight: np.ndarray
    model: np.ndarray | None = None
    iris_mm: float | None = None

    @property
    def seen(self) -> np.ndarray:
        return self.weight > 0


def best_view(estimates: list[GazeEstimate]) -> int:
    """Index of the estimate whose eyes were trusted most (summed weights), the first on ties:
    the photo a multi-view head takes its gaze and iris colour from."""
    return max(range(len(estimates)), key=lambda i: (float(np.sum(estimates[i].weight)), -i))


def iris_size(radius_mm: np.ndarray, trusted: np.ndarray) -> float | None:
    """The head's iris radius (mm) from each eye's, radius_mm (E,), where ``trusted`` (E,) bool: their
    mean (two eyes that disagree are each off by about as much: faces_dev, looked at), clamped to
    :data:`~backend.head_parts.IRIS_RANGE_MM`; None when no eye is trusted."""
    r = np.asarray(radius_mm, np.float64)[np.asarray(trusted, bool) & np.isfinite(radius_mm)]
    return None if r.size == 0 else float(np.clip(r.mean(), *IRIS_RANGE_MM))


def _ahead() -> GazeEstimate:
    E = len(EYEBALLS)
    return GazeEstimate(np.zeros((E, 2), np.float32), np.zeros((E, 2)), np.zeros(E), np.zeros(E))


def estimate_gaze(image: np.ndarray, detected68: np.ndarray, fitted68: np.ndarray, pose: np.ndarray, camera: Camera,
                  eyes: dict[str, EyeFrame], irises: EyeLandmarks | None = None) -> GazeEstimate:
    """The gaze from one photo (:class:`GazeEstimate`): image (H,W,3) uint8; detected68 (68,2)
    the detector's landmarks and fitted68 (68,2) the fitted model's, photo pixels; pose (7,) the
    view's pose for ``camera`` (the photo's size); eyes {eyeball name: :class:`EyeFrame`} of the
    fitted head (model mm); ``irises``: the Iris model's points for these eyes
    (:func:`backend.detect.iris.detect_irises` between :func:`~backend.detect.iris.iris_corners`;
    None: the darkness alone, the default iris size). Looking ahead (zeros, nothing seen) without
    both eyeballs."""
    if any(name not in eyes for name in EYEBALLS):
        return _ahead()
    frames = [eyes[name] for name in EYEBALLS]
    detected = np.asarray(detected68, np.float64)
    fitted = np.asarray(fitted68, np.float64)
    # which contour belongs to which eyeball: the nearer projected centre
    pose_t = torch.tensor(np.asarray(pose, np.float64)[None])
    centres = project(torch.tensor(np.stack([f.centre for f in frames]))[None], pose_t, camera)[0, :, :2].numpy()
    mids = np.stack([fitted[c].mean(0) for c in CONTOURS])  # (2,2)
    order = [int(np.argmin(np.linalg.norm(mids - centres[e], axis=1))) for e in range(len(frames))]
    if order[0] == order[1]:
        return _ahead()
    # the iris's radius in pixels: a 1-mm step across the view direction, projected
    ones = torch.tensor(np.stack([f.centre for f in frames] + [f.centre + np.cross(f.axis, [0.0, 1.0, 0.0]) for f in frames]))
    xy = project(ones[None], pose_t, camera)[0, :, :2].numpy()
    px_per_mm = np.linalg.norm(xy[len(frames):] - xy[: len(frames)], axis=1)
    px_per_mm = np.maximum(px_per_mm, np.max(px_per_mm) * 0.3)  # an eye seen edge-on: the other's scale
    det_contours = np.stack([detected[CONTOURS[o]] for o in order])
    default_px = IRIS_RADIUS_MM * px_per_mm  # (E,) the model's iris radius in photo px
    iris, opening = locate_irises(image, det_contours, default_px)
    radius = default_px
    model = np.zeros(len(frames), bool)
    if irises is not None:  # the Iris model where it looks like an iris
        pts = np.asarray(irises.iris, np.float64)[order]  # (E,5,2) per eyeball
        model = iris_confident(pts, det_contours)
        r = iris_radius_px(pts)
        near = np.linalg.norm(pts[:, 0] - iris, axis=1) < FUSE_GAP * r
        centre = np.where(near[:, None], 0.5 * (pts[:, 0] + iris), pts[:, 0])
        iris = np.where(model[:, None], centre, iris)
        radius = np.where(model, r, radius)
    targets = np.zeros((len(frames), 2))
    widths = np.zeros(len(frames))
    for e, o in enumerate(order):
        mid_d, ex_d, ey_d, w_d = _eye_frame_2d(detected[CONTOURS[o]])
        mid_f, ex_f, ey_f, w_f = _eye_frame_2d(fitted[CONTOURS[o]])
        a, b = (iris[e] - mid_d) @ ex_d / w_d, (iris[e] - mid_d) @ ey_d / w_d
        targets[e] = mid_f + w_f * (a * ex_f + b * ey_f)
        widths[e] = w_d / default_px[e]  # the eye's width in iris radii (about 5 seen frontally)
    angles = solve_gaze(frames, targets, pose, camera)
    weight = eye_weights(opening, widths)
    return GazeEstimate(angles=combine_eyes(angles, weight).astype(np.float32), iris=iris, radius=radius, weight=weight,
                        model=model, iris_mm=iris_size(radius / px_per_mm, model & (weight > 0)))
