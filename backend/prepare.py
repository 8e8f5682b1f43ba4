"""Photo preparation: read a photo, find its face and 68 landmarks, and crop it to the fits'
224² frame (:mod:`backend.align`), with its masks; the same framing re-sampled at other sizes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .align import CROP_SIZE, align_face, crop_valid_mask, face_mask, photo_content_box, points_to_crop, warp_to_crop
from .camera import Camera
from .detect import DetectSettings, detect_one
from .detectors import DEFAULT_DETECTOR
from .detect.base import Face
from .detect.hands import detect_hands, hand_mask, hand_outline, hands_at_face
from .detect.mediapipe_68 import mesh_to_68
from .errors import PhotoheadError
from .hair_strands import strand_mask
from .side_hair import side_detail_mask
from .image_io import load_image
from .lens import crop_camera, exif_focal_35mm, focal_source
from .skin import skin_mask

__all__ = ["PreparedView", "prepare_view", "reframe", "hand_crop_mask", "detail_inputs", "dense_targets", "mesh68_targets", "detector_gaps",
           "views_camera"]


@dataclass
class PreparedView:
    """One photo ready for fitting: the photo, its detection and its 224² crop."""

    name: str
    image: np.ndarray  # (H,W,3) uint8
    detected68: np.ndarray  # (68,2) photo px
    face_box: np.ndarray
    crop_from_image: np.ndarray  # (2,3)
    image_from_crop: np.ndarray  # (2,3)
    crop: np.ndarray  # (S,S,3) float32 [0,1]
    crop_landmarks: np.ndarray  # (68,2) crop px
    face_mask: np.ndarray  # (S,S) float32 landmark face mask (brows, lips and all): texture, reports
    skin_mask: np.ndarray  # (S,S) float32 the fit's photometric mask (backend.skin.skin_mask), 0 on hands
    # both masks are 0 where the crop shows no photo: outside it, or in its black bars (content_box)
    label: str = ""
    detector: str = ""  # what gave detected68: "dlib", "face_alignment", "mediapipe", "auto" (a blend) or "given"
    faces_note: str = ""  # several faces found: one line listing each (index, box, score), else ""
    mesh68: np.ndarray | None = None  # (68,2) photo px: Face Mesh's 68 points, when it ran
    presence: float | None = None  # Face Mesh's face-presence probability, when it ran
    face_detector: str = ""  # what found the face (Face.detector: "hog", "mmod", "blazeface-short", "blazeface-weak", ...)
    face_score: float | None = None  # that detector's confidence (comparable only within one detector); None: given
    detector_disagreement: float | None = None  # auto: dlib vs Face Mesh 68 points, mesh eye distances
    dense: np.ndarray | None = None  # (468,3) Face Mesh's points (x, y photo px; z relative depth), when it ran
    exif_focal_35mm: float | None = None  # the photo's EXIF FocalLengthIn35mmFilm (mm), when it has one
    focal_35mm: float = math.inf  # the lens the fit sees it through (mm, 35-mm equivalent; ∞: orthographic)
    focal_source: str = "none"  # where focal_35mm came from: given, exif, none (backend.lens.focal_source) or
                                   # estimated, standard (backend.focal_search)
    hands: list[np.ndarray] | None = None  # outlines (P,2) photo px of the hands at the face (backend.detect.hands)
    content_box: np.ndarray | None = None  # (4,) x0, y0, x1, y1 photo px: the photo without its black bars

    def shown(self, size: int = CROP_SIZE) -> np.ndarray:
        """(size,size) float32 in {0, 1}: the pixels of the view's crop at ``size``² (its framing,
        :func:`reframe`) that show the photo's content, not what lies outside it or in its black bars."""
        return _shown(self.image.shape, reframe(self, size)[0], size, self.content_box)

    def crop_dense(self) -> np.ndarray | None:
        """Face Mesh's points in the 224² crop (468,2) px, or None without them."""
        return None if self.dense is None else points_to_crop(self.dense[:, :2], self.crop_from_image)


def prepare_view(
    image: str | Path | np.ndarray, face: int = 0, label: str = "", index: int = 0, landmarks68: np.ndarray | None = None,
    detector: str = DEFAULT_DETECTOR, detect_settings: DetectSettings | None = None, found: Face | None = None,
    focal_35mm: float | None = None,
) -> PreparedView:
    """Read, detect (``detector``, :func:`backend.detect.detect_one`), align one photo. Raises
    NoFaceError / FaceTooSmallError / ImageReadError.

    ``landmarks68`` (68,2) photo pixels (iBUG order), when given, replace the detector (e.g.
    landmarks from another tool, or ground truth in evaluations); the box is their bounds.
    ``focal_35mm``: the photo's lens (mm, 35-mm equivalent; ∞: orthographic), None: its EXIF, else
    the default (:func:`backend.lens.focal_source`).
    ``found``, when given, is the face already detected in the photo (a retry,
    :mod:`backend.multiview_detect`).
    """
    name = str(image) if isinstance(image, (str, Path)) else f"image #{index}"
    rgb = load_image(image)
    if landmarks68 is not None:
        lm = np.asarray(landmarks68, np.float64)
        if lm.shape != (68, 2) or not np.isfinite(lm).all():
            raise PhotoheadError(f"{Path(name).name}: given landmarks must be 68 finite (x, y) points, got shape {lm.shape}")
        found = Face(box=np.concatenate([lm.min(0), lm.max(0)]), landmarks=lm, score=1.0, backend="given")
    elif found is None:
        found = detect_one(rgb, face=face, name=Path(name).name, backend=detector, settings=detect_settings)
    align = align_face(found.landmarks)
    exif = exif_focal_35mm(image)
    focal = focal_source(focal_35mm, exif)
    crop = warp_to_crop(rgb, align.crop_from_image, CROP_SIZE)  # float32 in [0,1]
    crop_lm = points_to_crop(found.landmarks, align.crop_from_image)
    content = photo_content_box(rgb)  # letterbox or padding bars: no face there, whatever the mask says
    shown = _shown(rgb.shape, align.crop_from_image, CROP_SIZE, content)
    mask = face_mask(crop_lm, CROP_SIZE, CROP_SIZE, soft_px=1.0) * shown
    # hands at the face ([] without the hand models' files): kept out of the fits' masks and the albedo
    hands = [hand_outline(h.points) for h in hands_at_face(detect_hands(rgb), found.landmarks)] or None
    return PreparedView(
        name=name, image=rgb, detected68=np.asarray(found.landmarks, np.float64), face_box=np.asarray(found.box, np.float64),
        crop_from_image=align.crop_from_image, image_from_crop=align.image_from_crop, crop=crop,
        crop_landmarks=crop_lm, face_mask=mask, skin_mask=_off_hands(skin_mask(crop, crop_lm, CROP_SIZE) * shown, hands,
                                                                    align.crop_from_image), label=label,
        detector=found.backend, faces_note=found.note,
        mesh68=None if found.dense is None else mesh_to_68(found.dense), presence=found.presence,
        face_detector=found.detector, face_score=None if found.backend == "given" else float(found.score),
        detector_disagreement=found.disagreement,
        dense=None if found.dense is None else np.asarray(found.dense, np.float64),
        exif_focal_35mm=exif, focal_35mm=focal[0], focal_source=focal[1], hands=hands, content_box=content,
    )


def _shown(shape: tuple[int, ...], crop_from_image: np.ndarray, size: int, content: np.ndarray | None) -> np.ndarray:
    """(size,size) float32 in {0, 1}: crop pixels that show the photo's content (``content``:
    :func:`backend.align.photo_content_box`; None: the whole photo), one crop pixel in from its
    edge, so no sample mixes in the black outside."""
    return crop_valid_mask(shape, crop_from_image, size, box=content, margin_px=1.0).astype(np.float32)


def _off_hands(mask: np.ndarray, hands: list[np.ndarray] | None, crop_from_image: np.ndarray) -> np.ndarray:
    """``mask`` (S,S) with the hands (outlines (P,2) photo px) taken out (the same array when none reaches it)."""
    drawn = None if hands is None else hand_mask(hands, crop_from_image, mask.shape[0])
    return mask if drawn is None else mask * (1.0 - drawn)


def hand_crop_mask(view: PreparedView, size: int = CROP_SIZE) -> np.ndarray | None:
    """The view's hands (:attr:`PreparedView.hands`) in its crop at ``size``² ((size,size)
    float32 in {0, 1}), None when it has none or none reaches the crop."""
    if view.hands is None:
        return None
    return hand_mask(view.hands, view.crop_from_image if size == CROP_SIZE else reframe(view, size)[0], size)


def views_camera(views: list[PreparedView], size: int = CROP_SIZE, device=None) -> Camera:
    """The views' ``size``² crop camera through each photo's lens (``focal_35mm``,
    :func:`backend.lens.crop_camera`)."""
    cam = crop_camera([v.focal_35mm for v in views], [(v.image.shape[1], v.image.shape[0]) for v in views],
                      [v.crop_from_image for v in views], CROP_SIZE, device)
    return cam if size == CROP_SIZE else cam.resized(size, size)


def reframe(view: PreparedView, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The view's crop framing at ``size``² instead of 224² (pixel-centre convention): returns
    (crop_from_image (2,3), the detected landmarks in that crop (68,2))."""
    k = size / CROP_SIZE
    M = view.crop_from_image * k
    M[:, 2] += 0.5 * k - 0.5
    return M, view.crop_landmarks * k + 0.5 * k - 0.5


def detail_inputs(views: list[PreparedView], size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The views' crops re-sampled from the photos at ``size``² (same framing as the 224² crop;
    at 224² they are the views' own), their skin masks (:func:`backend.skin.skin_mask`) and their plain
    landmark face masks (brows, lips and all), on which the photometric error is reported; the
    skin masks are 0 on the hands (:attr:`PreparedView.hands`: a hand is no relief) and on hair
    strands over the forehead (:func:`backend.hair_strands.strand_mask`: no ridges from a fringe) and
    on the hair and the grazing rim beside the cheeks (:func:`backend.side_hair.side_detail_mask`).
    Returns crops (V,size,size,3) in [0,1], skin masks and face masks (V,size,size)."""
    crops, skins, faces = [], [], []
    for view in views:
        M, lm = reframe(view, size)
        crop = view.crop if size == CROP_SIZE else warp_to_crop(view.image, M, size)
        crops.append(crop)
        if size == CROP_SIZE:
            skin, face = view.skin_mask, view.face_mask
        else:
            shown = view.shown(size)
            skin = _off_hands(skin_mask(crop, lm, size) * shown, view.hands, M)
            face = face_mask(lm, size, size, soft_px=size / CROP_SIZE) * shown
        skin = skin * (1.0 - strand_mask(crop, lm, skin, face))
        skins.append(skin * (1.0 - side_detail_mask(crop, lm, skin)))
        faces.append(face)
    return tuple(torch.from_numpy(np.stack(x)) for x in (crops, skins, faces))


def dense_targets(views: list[PreparedView], device: torch.device) -> torch.Tensor | None:
    """Face Mesh's points of the views (V,468,2) crop px, for the fit's dense term; NaN rows for
    views without them or whose 68 points are dlib's (``auto`` kept them: there Face Mesh's less
    precise points only pull the fit away, docs/mediapipe.md); None when no view has a row."""
    dense = [v.crop_dense() if v.detector == "mediapipe" else None for v in views]
    if all(d is None for d in dense):
        return None
    rows = [np.full((len(next(d for d in dense if d is not None)), 2), np.nan) if d is None else d for d in dense]
    return torch.from_numpy(np.stack(rows)).float().to(device)


def mesh68_targets(views: list[PreparedView], device: torch.device) -> torch.Tensor | None:
    """Face Mesh's 68 points of the views (V,68,2) crop px, the second opinion on each view's
    landmarks that the fit's noise weights read (:mod:`backend.fit.landmark_noise`); NaN rows for
    views without them; None when no view has them."""
    if all(v.mesh68 is None for v in views):
        return None
    rows = [np.full((68, 2), np.nan) if v.mesh68 is None else points_to_crop(v.mesh68, v.crop_from_image) for v in views]
    return torch.from_numpy(np.stack(rows)).float().to(device)


def detector_gaps(views: list[PreparedView], device: torch.device) -> torch.Tensor | None:
    """Each view's dlib–Face Mesh disagreement (V,) (``auto``; NaN for views without one), the
    evidence of the fit's landmark trust (:func:`backend.fit.landmark_noise.landmark_trust`);
    None when no view has one."""
    if all(v.detector_disagreement is None for v in views):
        return None
    gaps = [np.nan if v.detector_disagreement is None else v.detector_disagreement for v in views]
    return torch.tensor(gaps, dtype=torch.float32, device=device)
