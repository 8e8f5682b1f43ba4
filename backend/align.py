"""Landmark-based similarity alignment to the canonical 224² crop, its inverse, and a skin mask.

Frames: image pixels (x right, y down, 0-based pixel centres) of the ORIGINAL photo and crop
pixels of the ``size × size`` crop, same convention. Every transform is a (2,3) float64
matrix ``M`` with ``[x_crop, y_crop] = M @ [x_img, y_img, 1]`` (``crop_from_image``) and its
inverse ``image_from_crop``, so anything computed in the crop can be reported in the photo.

Canonical template: the ICT-FaceKit neutral mean face's 68 landmark vertices (MIT licence),
projected frontally (x = X mm, y = −Y mm), shifted 12.5 mm down and scaled 1 px/mm at 224 px.
In the crop this puts the brows at y ≈ 61, the eyes at y ≈ 90, the chin at y ≈ 200 and the
jaw corners at x ≈ 38…186: the whole face with chin and ~60 px of forehead visible, like
Deep3D's 224² crops. The similarity is fitted on the inner points (brows, nose, eyes, mouth:
17–67) because a 3D model's jaw vertices follow the 3-D contour, not the 2-D outline that
detectors mark.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.spatial import ConvexHull
from skimage.draw import polygon

__all__ = [
    "CROP_SIZE", "TEMPLATE_68_MM", "INNER_POINTS", "MIRROR_68", "AlignSettings", "Alignment", "canonical_landmarks",
    "estimate_similarity", "invert_affine", "align_face", "points_to_crop", "points_to_image",
    "warp_to_crop", "photo_content_box", "crop_valid_mask", "face_mask", "inner_face_mask", "feature_polygons",
]

CROP_SIZE = 224  # pixels of the canonical crop the fits and networks work on

# ICT-FaceKit mean face (ict_head.npz `mean[landmarks68]`, ICT's own landmark vertices: the fit
# re-assigns some to the 300-W convention, backend.facemodel.landmarks, but this crop framing
# stays as drawn), frontal: x = X, y = −Y, in mm, rounded to 0.01 mm. Point order: iBUG 68
# (36–41 = the subject's right eye, at image left).
TEMPLATE_68_MM = np.array([
    [-73.63, -36.76], [-72.76, -14.91], [-69.38, 4.61], [-65.57, 23.56], [-57.24, 44.87],
    [-43.02, 62.07], [-30.51, 69.12], [-15.37, 72.58], [0.00, 75.67], [15.37, 72.58],
    [30.51, 69.12], [43.02, 62.07], [57.24, 44.87], [65.57, 23.56], [69.38, 4.61],
    [72.76, -14.91], [73.63, -36.76],
    [-58.15, -51.99], [-49.33, -59.77], [-37.93, -62.55], [-24.15, -61.92], [-11.72, -59.08],
    [11.72, -59.08], [24.15, -61.92], [37.93, -62.55], [49.33, -59.77], [58.15, -51.99],
    [0.00, -37.41], [0.00, -26.34], [0.00, -16.12], [0.00, -4.06],
    [-12.53, 11.45], [-6.02, 11.38], [0.00, 12.03], [6.02, 11.38], [12.53, 11.45],
    [-44.59, -34.32], [-38.69, -38.75], [-27.81, -39.36], [-18.44, -32.52], [-27.29, -30.85],
    [-38.56, -30.72],
    [18.44, -32.52], [27.81, -39.36], [38.69, -38.75], [44.59, -34.32], [38.56, -30.72],
    [27.29, -30.85],
    [-25.35, 35.20], [-17.02, 27.77], [-7.28, 24.22], [0.00, 24.83], [7.28, 24.22],
    [17.02, 27.77], [25.35, 35.20], [18.01, 40.56], [10.34, 43.02], [0.00, 43.77],
    [-10.34, 43.02], [-18.01, 40.56],
    [-22.09, 34.90], [-9.96, 32.97], [0.00, 33.24], [9.96, 32.97], [22.09, 34.90],
    [10.69, 33.80], [0.00, 34.00], [-10.69, 33.80],
], dtype=np.float64)

INNER_POINTS = np.arange(17, 68)

JAW = np.arange(0, 17)
BROWS = np.arange(17, 27)
RIGHT_EYE = np.arange(36, 42)  # subject's right, image left
LEFT_EYE = np.arange(42, 48)
INNER_MOUTH = np.arange(60, 68)


# iBUG-68 point that each point becomes in the mirror image (the subject's right ↔ left; midline
# points map to themselves): jaw 0↔16, brows 17↔26, nose wings 31↔35, eyes 36↔45 / 37↔44 / 40↔47,
# mouth corners 48↔54, inner lips 60↔64, 61↔63, 65↔67.
MIRROR_68 = tuple(list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30, 35, 34, 33, 32, 31]
                  + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
                  + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65])


@dataclass(frozen=True)
class AlignSettings:
    """Where the template sits in the crop.

    - ``size``: crop side in pixels (224 for the paper's networks).
    - ``px_per_mm``: template scale at size 224 (scaled with ``size``); 1.0 px/mm puts the
      ICT outer eye corners 89 px apart.
    - ``shift_y_mm``: template shift down, mm (positive leaves more forehead room).
    - ``fit_points``: ``"inner"`` (17–67, default, see module doc) or ``"all"`` 68 points.
    """

    size: int = 224
    px_per_mm: float = 1.0
    shift_y_mm: float = 12.5
    fit_points: str = "inner"

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"crop size must be ≥ 16 px, got {self.size}")
        if self.fit_points not in ("inner", "all"):
            raise ValueError(f"fit_points must be 'inner' or 'all', got {self.fit_points!r}")


@dataclass(frozen=True, eq=False)
class Alignment:
    """A photo → crop similarity. ``crop_from_image``/``image_from_crop``: (2,3) float64;
    ``size``: crop side (px); ``scale``: crop px per image px; ``rotation``: radians,
    angle of the image x axis in the crop (positive = clockwise on screen, y points down)."""

    crop_from_image: np.ndarray
    image_from_crop: np.ndarray
    size: int

    @property
    def scale(self) -> float:
        return float(np.hypot(self.crop_from_image[0, 0], self.crop_from_image[1, 0]))

    @property
    def rotation(self) -> float:
        return float(np.arctan2(self.crop_from_image[1, 0], self.crop_from_image[0, 0]))


def canonical_landmarks(settings: AlignSettings | None = None) -> np.ndarray:
    """The 68-point template in crop pixels, (68,2) float64."""
    st = settings or AlignSettings()
    k = st.px_per_mm * st.size / 224.0
    c = (st.size - 1) / 2.0
    return (TEMPLATE_68_MM + np.array([0.0, st.shift_y_mm])) * k + c


def estimate_similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares similarity (uniform scale, rotation, translation; no reflection) mapping
    ``src`` (N,2) onto ``dst`` (N,2), N ≥ 2. Returns M (2,3) float64 with dst ≈ M @ [src, 1].

    Closed form with complex numbers: z' = a·z + b, a = Σw(d−d̄)·conj(s−s̄) / Σw|s−s̄|².
    Raises ``ValueError`` for mismatched shapes, non-finite points or coincident ``src``.
    """
    s = np.asarray(src, np.float64)
    d = np.asarray(dst, np.float64)
    if s.ndim != 2 or s.shape[1] != 2 or s.shape != d.shape or len(s) < 2:
        raise ValueError(f"src and dst must both be (N,2) with N ≥ 2, got {s.shape} and {d.shape}")
    if not (np.isfinite(s).all() and np.isfinite(d).all()):
        raise ValueError("landmarks contain NaN or infinite values")
    w = np.ones(len(s)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if w.shape != (len(s),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be (N,) non-negative with a positive sum, got shape {w.shape}")
    zs = s[:, 0] + 1j * s[:, 1]
    zd = d[:, 0] + 1j * d[:, 1]
    ms = (w * zs).sum() / w.sum()
    md = (w * zd).sum() / w.sum()
    den = (w * np.abs(zs - ms) ** 2).sum()
    if den <= 1e-12 * max(1.0, np.abs(ms) ** 2):
        raise ValueError("source points coincide: cannot estimate a similarity")
    a = (w * (zd - md) * np.conj(zs - ms)).sum() / den
    b = md - a * ms
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def invert_affine(M: np.ndarray) -> np.ndarray:
    """Inverse of a (2,3) affine map, (2,3) float64. Raises ``ValueError`` when singular."""
    M = np.asarray(M, np.float64)
    if M.shape != (2, 3):
        raise ValueError(f"expected a (2,3) matrix, got {M.shape}")
    A, t = M[:, :2], M[:, 2]
    det = np.linalg.det(A)
    if abs(det) < 1e-12:
        raise ValueError("affine map is singular (zero scale)")
    Ai = np.linalg.inv(A)
    return np.concatenate([Ai, -(Ai @ t)[:, None]], axis=1)


def _apply(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.asarray(pts, np.float64)
    if p.shape[-1] != 2:
        raise ValueError(f"points must have shape (...,2), got {p.shape}")
    M = np.asarray(M, np.float64)
    return p @ M[:, :2].T + M[:, 2]


def points_to_crop(pts_image: np.ndarray, crop_from_image: np.ndarray) -> np.ndarray:
    """Image pixels (...,2) → crop pixels (...,2) with ``crop_from_image`` (2,3)."""
    return _apply(crop_from_image, pts_image)


def points_to_image(pts_crop: np.ndarray, image_from_crop: np.ndarray) -> np.ndarray:
    """Crop pixels (...,2) → original image pixels (...,2) with ``image_from_crop`` (2,3)."""
    return _apply(image_from_crop, pts_crop)


def align_face(landmarks68: np.ndarray, settings: AlignSettings | None = None) -> Alignment:
    """Similarity taking the detected 68 landmarks (68,2 image pixels) onto the template."""
    st = settings or AlignSettings()
    lm = np.asarray(landmarks68, np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected (68,2) landmarks, got {lm.shape}")
    idx = INNER_POINTS if st.fit_points == "inner" else np.arange(68)
    M = estimate_similarity(lm[idx], canonical_landmarks(st)[idx])
    return Alignment(crop_from_image=M, image_from_crop=invert_affine(M), size=st.size)


def _footprint(image: np.ndarray, crop_from_image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the photo down to the crop's footprint (+2 px) and fold the offset into the matrix,
    so warping cost does not grow with the photo's size. Returns a view and the new (2,3)."""
    M = np.asarray(crop_from_image, np.float64)
    h, w = image.shape[:2]
    corners = points_to_image(np.array([[-1.0, -1.0], [size, -1.0], [-1.0, size], [size, size]]), invert_affine(M))
    x0 = int(np.clip(np.floor(corners[:, 0].min()) - 2, 0, w - 1))
    y0 = int(np.clip(np.floor(corners[:, 1].min()) - 2, 0, h - 1))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()) + 3, x0 + 1, w))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()) + 3, y0 + 1, h))
    if x0 == 0 and y0 == 0 and x1 == w and y1 == h:
        return image, M
    shifted = M.copy()
    shifted[:, 2] += M[:, :2] @ np.array([x0, y0], np.float64)
    return image[y0:y1, x0:x1], shifted


def _prefilter(image: np.ndarray, crop_from_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """When the crop shrinks the photo by ≥ 2×, box-reduce it by the integer factor k first
    (bilinear sampling alone would alias) and fold the reduction into the matrix."""
    M = np.asarray(crop_from_image, np.float64)
    scale = np.sqrt(abs(np.linalg.det(M[:, :2])))
    k = int(np.floor(1.0 / scale)) if scale > 0 else 1
    if k < 2 or min(image.shape[:2]) < 2 * k:
        return image, M

    small = np.asarray(Image.fromarray(np.ascontiguousarray(image)).reduce(k))
    # reduced px = (x + 0.5)/k − 0.5  ⇒  x = k·x_r + (k − 1)/2
    image_from_small = np.array([[k, 0.0, (k - 1) / 2.0], [0.0, k, (k - 1) / 2.0], [0, 0, 1]])
    M3 = np.vstack([M, [0, 0, 1]]) @ image_from_small
    return small, M3[:2]


def warp_to_crop(image: np.ndarray, crop_from_image: np.ndarray, size: int = 224, fill: float = 0.0) -> np.ndarray:
    """Resample ``image`` (H,W,3) or (H,W) uint8 into the crop, bilinear.

    Returns (size,size,3) or (size,size) float32 in [0,1]; crop pixels whose sample falls
    outside the photo blend towards ``fill`` (constant border). Strong reductions (≥ 2×)
    are box-filtered first to avoid aliasing.
    """
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError(f"warp_to_crop expects an (H,W[,C]) uint8 image, got {img.dtype} {img.shape}")
    img, M = _footprint(img, crop_from_image, size)
    img, M = _prefilter(img, M)
    h, w = img.shape[:2]
    Minv = invert_affine(M)
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    x = Minv[0, 0] * u + Minv[0, 1] * v + Minv[0, 2]
    y = Minv[1, 0] * u + Minv[1, 1] * v + Minv[1, 2]
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    src = img.reshape(h, w, -1)
    out = np.zeros((size, size, src.shape[2]), np.float32)
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        val = src[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)].astype(np.float32) / 255.0
        val = np.where(inside[..., None], val, np.float32(fill))
        out += wgt[..., None] * val
    lo, hi = min(0.0, fill), max(1.0, fill)
    np.clip(out, lo, hi, out=out)  # float32 rounding of the weights can overshoot 1 by 1e-7
    return out if img.ndim == 3 else out[..., 0]


BAR_DARK = 6  # a border row or column no brighter than this (uint8, every pixel and channel) is a black bar


def photo_content_box(image: np.ndarray, dark: int = BAR_DARK) -> np.ndarray:
    """(4,) x0, y0, x1, y1 photo px (pixel edges: the whole photo is -0.5, -0.5, W-0.5, H-0.5):
    what the photo shows, without the black bars along its borders (letterboxing, a screenshot's
    or a dataset's padding: whole rows or columns no brighter than ``dark``). A photo that is
    all bars keeps its whole box. image (H,W,3) or (H,W) uint8."""
    img = np.asarray(image)
    h, w = img.shape[:2]
    bar = (img.max(2) if img.ndim == 3 else img) <= dark
    rows, cols = bar.all(1), bar.all(0)

    def run(flags: np.ndarray) -> int:  # how many leading entries are True
        return int(np.argmin(flags)) if not flags.all() else len(flags)

    top, bottom, left, right = run(rows), run(rows[::-1]), run(cols), run(cols[::-1])
    if top + bottom >= h or left + right >= w:
        return np.array([-0.5, -0.5, w - 0.5, h - 0.5])
    return np.array([left - 0.5, top - 0.5, w - right - 0.5, h - bottom - 0.5])


def crop_valid_mask(image_shape: tuple[int, ...], crop_from_image: np.ndarray, size: int = 224,
                    box: np.ndarray | None = None, margin_px: float = 0.0) -> np.ndarray:
    """(size,size) bool: crop pixels whose centre maps inside the photo (``image_shape`` (H,W,...)),
    or inside ``box`` (4,) x0, y0, x1, y1 photo px (:func:`photo_content_box`) shrunk by
    ``margin_px`` crop pixels (so crop pixels whose bilinear sample reaches a bar's black are out)."""
    h, w = image_shape[:2]
    x0, y0, x1, y1 = (-0.5, -0.5, w - 0.5, h - 0.5) if box is None else np.asarray(box, np.float64)
    m = margin_px / max(float(np.sqrt(abs(np.linalg.det(np.asarray(crop_from_image)[:, :2])))), 1e-12)  # in photo px
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    pts = points_to_image(np.stack([u, v], -1), invert_affine(crop_from_image))
    return (pts[..., 0] >= x0 + m) & (pts[..., 0] <= x1 - m) & (pts[..., 1] >= y0 + m) & (pts[..., 1] <= y1 - m)


# Brow band around iBUG's brow points (which trace the brow's upper edge), in eye widths
# (≈ 30 mm): the hair lies mostly below the points. Lips: the outer contour grown outwards.
BROW_ABOVE, BROW_BELOW, BROW_ENDS, LIP_MARGIN = 0.15, 0.4, 0.15, 0.1


def feature_polygons(landmarks68: np.ndarray, brow_below: float = BROW_BELOW) -> list[np.ndarray]:
    """Polygons (P,2) in the landmarks' pixels covering the two brows (down to ``brow_below`` eye
    widths below their points) and the lips (outer contour 48–59 grown by ``LIP_MARGIN`` eye
    widths), from 68 iBUG landmarks."""
    lm = np.asarray(landmarks68, np.float64)
    eye_w = 0.5 * (np.linalg.norm(lm[39] - lm[36]) + np.linalg.norm(lm[45] - lm[42]))
    up = lm[BROWS].mean(0) - lm[8]
    up /= max(float(np.hypot(*up)), 1e-9)
    polys = []
    for brow in (lm[17:22], lm[22:27]):
        along = brow[-1] - brow[0]
        along /= max(float(np.hypot(*along)), 1e-9)
        ends = np.concatenate([brow[:1] - BROW_ENDS * eye_w * along, brow, brow[-1:] + BROW_ENDS * eye_w * along])
        polys.append(np.concatenate([ends + BROW_ABOVE * eye_w * up, (ends - brow_below * eye_w * up)[::-1]]))
    lips = lm[48:60]
    centre = lips.mean(0)
    radial = lips - centre
    radial /= np.linalg.norm(radial, axis=1, keepdims=True).clip(1e-9)
    polys.append(lips + LIP_MARGIN * eye_w * radial)
    return polys


def _polygon_mask(poly: np.ndarray, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    rr, cc = polygon(poly[:, 1], poly[:, 0], shape=(height, width))
    mask[rr, cc] = True
    return mask


def face_mask(
    landmarks68: np.ndarray, height: int, width: int, forehead: float = 0.35, soft_px: float = 0.0,
    exclude_eyes: bool = True, exclude_mouth: bool = True, exclude_features: bool = False,
) -> np.ndarray:
    """Skin mask for the photometric loss from 68 landmarks (pixels of the frame of size H×W).

    Convex hull of the jaw and the brows raised towards the forehead by ``forehead`` × the
    brow-to-chin distance (along the face's up direction), minus the eyes and the inner
    mouth. ``exclude_features`` also removes the brows and the lips (:func:`feature_polygons`):
    not skin, and their colour edges are what a smooth albedo cannot hold, so the detail stage
    would turn them into ridges. ``soft_px`` > 0 blurs the edges (Gaussian σ in pixels).
    Returns (H,W) float32 in [0,1].
    """
    lm = np.asarray(landmarks68, np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise ValueError(f"expected finite (68,2) landmarks, got {lm.shape}")
    chin = lm[8]
    brow_mid = lm[BROWS].mean(0)
    up = brow_mid - chin
    length = float(np.hypot(*up))
    if length < 1e-6:
        raise ValueError("degenerate landmarks: brows coincide with the chin")
    raised = lm[BROWS] + forehead * up
    pts = np.concatenate([lm[JAW], lm[BROWS], raised])
    hull = pts[ConvexHull(pts).vertices]
    mask = _polygon_mask(hull, height, width)
    holes = []
    if exclude_eyes:
        holes += [lm[RIGHT_EYE], lm[LEFT_EYE]]
    if exclude_mouth:
        holes.append(lm[INNER_MOUTH])
    if exclude_features:
        holes += feature_polygons(lm)
    for hole in holes:
        mask &= ~_polygon_mask(hole, height, width)
    out = mask.astype(np.float32)
    if soft_px > 0:
        out = gaussian_filter(out, sigma=float(soft_px)).astype(np.float32)
    return out


def inner_face_mask(landmarks68: np.ndarray, height: int, width: int, soft_px: float = 0.0) -> np.ndarray:
    """The inner face: the convex hull of the jaw and the brows, eyes and mouth included, no
    forehead band (where brows, eyes and lips are expected, and only skin and hair meet outside
    it). Returns (H,W) float32 in [0,1]; ``soft_px`` as :func:`face_mask`."""
    return face_mask(landmarks68, height, width, forehead=0.0, soft_px=soft_px, exclude_eyes=False, exclude_mouth=False)
