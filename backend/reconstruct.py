"""The one public entry point: photos → :class:`~backend.head.Head`.

Pipeline (fit mode): read each photo → detect the face and its 68 landmarks → similarity crop
to 224² (:mod:`.align`) → coarse fit of the face model with the paper's stage-1 losses
(:mod:`.fit.coarse`, all views jointly) → poses re-expressed in original-photo pixels → UV
albedo: the photo unwrapped into UV, divided by the fitted SH shading (delit), falling back on
the fitted low-resolution albedo where no view sees the surface → detail stage (when enabled).

``mode="predict"``: the trained networks replace both fits (:mod:`.predict`: one encoder pass,
one U-Net pass; the detail surface is built from the predicted displacement without
optimisation); ``mode="hybrid"``: the predictions initialise ``fit_coarse`` and ``fit_detail``.
Both read ``config.checkpoints`` (``coarse.pt``, optional ``detail.pt``).
"""
from __future__ import annotations

import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
import torch

from .align import align_face, face_mask, inner_face_mask, points_to_crop, points_to_image, warp_to_crop
from .skin import skin_mask, skin_weight
from .camera import Camera, project, scale_pose
from .determinism import deterministic
from .detect import BACKENDS as DETECTOR_BACKENDS
from .detect.combined import MISSING_MEDIAPIPE, MediaPipeMissingWarning, mediapipe_available
from .detect.mediapipe_68 import mesh_to_68
from .detect import DetectSettings, detect_one
from .errors import NoFaceError, PhotoheadError, WeightsNotFoundError
from .facemodel import FaceModel, load_default, load_model
from .fit.coarse import CoarseFitResult, fit_coarse
from .fit.detail import DetailFitResult, fit_detail
from .fit.pose_init import fit_orthographic_pose
from .head import Head, ViewResult
from .head_parts import attach_parts
from .parts_texture import eye_colours
from .trust import assess, view_evidence
from .image_io import load_image
from .preset import Preset, resolve_preset
from .progress import CancelToken, ProgressFn, Stage, check_cancel
from .quality import DEFAULT
from .validate import check_face_index, check_labels, check_model_path, check_photos

Mode = Literal["fit", "predict", "hybrid"]

CROP_SIZE = 224


@dataclass
class ReconstructConfig:
    """Everything a reconstruction needs besides the photos.

    - ``mode``: ``fit`` (per-image analysis-by-synthesis, no weights), ``predict`` (trained
      encoder + U-Net), ``hybrid`` (predict initialises fit).
    - ``quality``: fit schedule and UV resolution preset (:mod:`backend.preset`).
    - ``device``: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
    - ``model``: face model file (default: ICT on the search path).
    - ``face``: which detected face (0 = most confident) in each photo.
    - ``detector``: the landmark detector, ``dlib`` (offline default), ``mediapipe`` (BlazeFace +
      Face Mesh in PyTorch, :mod:`backend.detect.mediapipe_backend`; its files from `photohead
      models fetch mediapipe`, or ``detector_weights`` a folder holding them), ``auto`` (dlib's
      points checked by Face Mesh, :mod:`backend.detect.combined`; dlib alone with a warning
      when MediaPipe's weights are missing) or ``face_alignment``
      (needs the face-alignment package and its weights on disk: ``detector_weights``, a folder, or
      torch hub's checkpoints; :mod:`backend.detect.fa_backend`).
    - ``detail``: run the detail (stage-2) fit.
    - ``identity``: use the identity loss L_id (needs the identity network's weights).
    - ``checkpoints``: folder with ``coarse.pt`` / ``detail.pt`` for predict/hybrid.
    - ``shared_expression``: multi-view: one expression for all photos.
    - ``seed``: random seed. A fit gives the same bits for the same photo, seed and machine (CPU:
      and thread count; CUDA: and GPU model) (:mod:`backend.determinism`).
    - ``deterministic``: that promise. Free on the CPU; on CUDA it costs time, and off, two
      runs differ by about 0.2 mm.
    - ``labels``: optional per-photo view labels (front/left/right...).
    - ``tune_unet``: hybrid mode's detail stage optimises a copy of the U-Net's weights per
      photo (the displacement stays the network's output) instead of starting the map from its
      prediction and optimising the map (the paper's network fine-tuned on one photo; needs
      ``detail.pt``).
    """

    mode: Mode = "fit"
    quality: str = DEFAULT  # a name of backend.quality.QUALITIES
    device: str = "auto"
    model: str | None = None
    face: int = 0
    detector: str = "dlib"
    detector_weights: str | None = None
    detail: bool = True
    identity: bool = True
    checkpoints: str | None = None
    shared_expression: bool = True
    seed: int = 0
    deterministic: bool = True
    labels: list[str] = field(default_factory=list)
    tune_unet: bool = False


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
    skin_mask: np.ndarray  # (S,S) float32 the fit's photometric mask (backend.skin.skin_mask)
    label: str = ""
    detector: str = ""  # what gave detected68: "dlib", "face_alignment", "mediapipe" or "given"
    faces_note: str = ""  # several faces found: one line listing each (index, box, score), else ""
    mesh68: np.ndarray | None = None  # (68,2) photo px: Face Mesh's 68 points, when it ran
    presence: float | None = None  # Face Mesh's face-presence probability, when it ran


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU. Raises a clear error for an unavailable CUDA."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PhotoheadError("--device cuda requested but no CUDA device is available (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise PhotoheadError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def load_face_model(path: str | None) -> FaceModel:
    """The face model from ``path`` (any supported format) or the default on the search path."""
    return load_model(path) if path else load_default()


def prepare_view(
    image: str | Path | np.ndarray, face: int = 0, label: str = "", index: int = 0, landmarks68: np.ndarray | None = None,
    detector: str = "dlib", detect_settings: DetectSettings | None = None,
) -> PreparedView:
    """Read, detect (``detector``, :func:`backend.detect.detect_one`), align one photo. Raises
    NoFaceError / FaceTooSmallError / ImageReadError.

    ``landmarks68`` (68,2) photo pixels (iBUG order), when given, replace the detector (e.g.
    landmarks from another tool, or ground truth in evaluations); the box is their bounds.
    """
    name = str(image) if isinstance(image, (str, Path)) else f"image #{index}"
    rgb = load_image(image)
    if landmarks68 is not None:
        from .detect.base import Face

        lm = np.asarray(landmarks68, np.float64)
        if lm.shape != (68, 2) or not np.isfinite(lm).all():
            raise PhotoheadError(f"{Path(name).name}: given landmarks must be 68 finite (x, y) points, got shape {lm.shape}")
        found = Face(box=np.concatenate([lm.min(0), lm.max(0)]), landmarks=lm, score=1.0, backend="given")
    else:
        found = detect_one(rgb, face=face, name=Path(name).name, backend=detector, settings=detect_settings)
    align = align_face(found.landmarks)
    crop = warp_to_crop(rgb, align.crop_from_image, CROP_SIZE)  # float32 in [0,1]
    crop_lm = points_to_crop(found.landmarks, align.crop_from_image)
    mask = face_mask(crop_lm, CROP_SIZE, CROP_SIZE, soft_px=1.0)
    return PreparedView(
        name=name, image=rgb, detected68=np.asarray(found.landmarks, np.float64), face_box=np.asarray(found.box, np.float64),
        crop_from_image=align.crop_from_image, image_from_crop=align.image_from_crop, crop=crop,
        crop_landmarks=crop_lm, face_mask=mask, skin_mask=skin_mask(crop, crop_lm, CROP_SIZE), label=label,
        detector=found.backend, faces_note=found.note,
        mesh68=None if found.dense is None else mesh_to_68(found.dense), presence=found.presence,
    )


def _identity_adapter(device: torch.device) -> Callable | None:
    """(images (B,S,S,3) [0,1], landmarks (B,68,2) px) → features, or None when unavailable."""
    try:
        from .identity import identity_features, load_identity_net
    except ImportError:
        return None
    try:
        net = load_identity_net().to(device)
    except PhotoheadError as exc:
        warnings.warn(f"identity loss disabled: {exc}", stacklevel=2)
        return None

    def features(images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return identity_features(images.permute(0, 3, 1, 2), landmarks, net=net)

    return features


def image_frame_pose(verts: torch.Tensor, pose_crop: torch.Tensor, view: PreparedView) -> torch.Tensor:
    """Re-express a crop-frame orthographic pose in original-photo pixels (exact: the crop is a
    similarity of the photo). verts (1,N,3) mm; pose_crop (1,7). Returns (1,7)."""
    crop_xy = project(verts, pose_crop, Camera(CROP_SIZE, CROP_SIZE))[0, :, :2].double().cpu().numpy()
    img_xy = points_to_image(crop_xy, view.image_from_crop)
    h, w = view.image.shape[:2]
    sub = verts[0, :: max(1, verts.shape[1] // 2000)].double().cpu()
    img_sub = torch.from_numpy(img_xy[:: max(1, verts.shape[1] // 2000)])
    pose = fit_orthographic_pose(sub[None], img_sub[None], Camera(w, h))
    return pose.to(pose_crop.dtype)


def delit_albedo(
    model: FaceModel,
    fit: CoarseFitResult,
    views: list[PreparedView],
    resolution: int,
    device: torch.device,
    detail: DetailFitResult | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """High-resolution UV albedo from the photos.

    Each view's face (re-cropped at 512² for resolution) is unwrapped into UV and divided by
    that view's fitted SH shading (delit; with ``detail`` the face tile uses the detailed
    normals, so wrinkle shading is not baked in twice). Per-texel confidence
    (:func:`backend.blend.per_view_confidence`: visibility × facing × distance to the
    silhouette × resolution × the photo's skin mask, so hair, hats and background never land on
    the head) is multiplied, outside the inner face, by the photo's skin weight
    (:func:`backend.skin.skin_weight`: skin colour likelihood, connected to the face) and by a
    robust term that down-weights colours far from the view's median skin colour (a hat brim or
    hair on the forehead band). Several
    views are gain-equalised on their overlap and blended with a Laplacian pyramid (no seams);
    texels no view sees get the median delit skin colour with a soft transition, so scalp and
    neck match the face. Only the texels some view can face are unwrapped, and only those with
    confidence are delit (the rest of the layout never reaches the result).

    Returns (albedo (R, R·tiles, 3) float32 in [0,1] top row v = 1, weights (V,R,R·tiles)).
    """
    from .blend import (
        equalize_views, facing_texels, multiband_blend, per_view_confidence, scatter_texels, silhouette_distance,
        texel_subset,
    )
    from .camera import to_camera_space
    from .lighting import sh_shading, vertex_normals
    from .render import Unwrapped, interpolate, rasterize, unwrap_image

    V, tiles = len(views), model.uv_tiles
    H, W = resolution, resolution * tiles
    size = 512  # photo re-sampling (px), finer than the face tile's texels across the face
    k = size / CROP_SIZE

    crops = torch.from_numpy(np.stack([warp_to_crop(v.image, reframe(v, size)[0], size) for v in views])).to(device)
    # photo-space masks are drawn in the 224² crop and sampled at the same (normalised) points:
    # the landmark face mask (its blur is 2.3 px of the re-crop), and the inner face (jaw +
    # brows hull, where eyes, brows and lips are expected; σ = 4 px of the re-crop) used below
    faces = torch.from_numpy(np.stack([v.face_mask for v in views])).to(device)
    inner = torch.from_numpy(np.stack([inner_face_mask(v.crop_landmarks, CROP_SIZE, CROP_SIZE, soft_px=4.0 / k)
                                       for v in views])).to(device)
    pose = scale_pose(fit.pose, k)
    cam = Camera(size, size)
    screen_frags = rasterize(project(fit.verts, pose, cam), model.faces, size, size)
    cam_normals = vertex_normals(to_camera_space(fit.verts, pose, "orthographic"), model.faces)  # (V,N,3)
    # unwrap the T texels some view can face (the rest of the head is invisible in every view)
    frags, facing = facing_texels(model.uv, model.faces_uv, model.faces, cam_normals, H, W, (0.0, float(tiles)))
    part = unwrap_image(crops, fit.verts, model.faces, pose, cam, frags, fragments=screen_frags)  # (V,1,T,...)
    un = Unwrapped(*(scatter_texels(x[:, 0], facing, H, W)  # (V,H,W,...): zero/False off the T texels
                     for x in (part.texture, part.visible, part.cosine, part.screen)))
    dist = silhouette_distance(screen_frags.mask, screen_frags.depth, 4.0 * k)
    weight = per_view_confidence(un, dist, image_weight=faces)  # (V,H,W)

    # delight only the T' texels some view has confidence in: (V,T',...) from here on
    keep = (weight.flatten(1, 2).index_select(1, facing) > 0).any(0).nonzero().squeeze(1)
    used, sub = facing[keep], texel_subset(frags, keep)  # (T',) flat texels, their fragments

    def at_used(maps: torch.Tensor) -> torch.Tensor:  # (V,H,W,...) → (V,T',...)
        return maps.flatten(1, 2).index_select(1, used)

    normals = interpolate(cam_normals, sub.face_idx, sub.bary, model.faces)[:, 0]
    normals = torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)  # (V,T',3) camera space
    if detail is not None:
        full = scatter_texels(normals, used, H, W)
        full = torch.cat([_with_detail_normals(full[i : i + 1], detail, fit.pose[i : i + 1], i) for i in range(V)])
        normals = at_used(full)
    shading = sh_shading(normals, fit.sh).clamp_min(0.05)
    delit = (at_used(un.texture) / shading).clamp(0.0, 1.0)  # (V,T',3)
    conf = at_used(weight)  # (V,T')
    # Outside the inner face only skin belongs on the head: there the confidence is multiplied by
    # the photo's skin weight (backend.skin: colour likelihood, connected to the face; brows and
    # lips kept, their tops reach into the band) and by a robust term that down-weights delit
    # colours far from the view's median skin colour, so a hat brim, a cap badge or hair on the
    # forehead band does not land on the head (the robust term alone let grace_hopper's cap badge
    # through at weight 0.6: a gold speck on the scalp).
    grid = (at_used(un.screen)[:, :, None, :2] + 0.5) * (2.0 / size) - 1.0  # (V,T',1,2)

    def sample(maps: torch.Tensor) -> torch.Tensor:  # (V,224,224) photo-space → (V,T')
        return torch.nn.functional.grid_sample(maps[:, None], grid.to(maps.dtype), align_corners=False)[:, 0, :, 0]

    inner_at = sample(inner)
    skin_at = sample(torch.from_numpy(np.stack([skin_weight(v.crop, v.crop_landmarks, CROP_SIZE, exclude_features=False)
                                                for v in views])).to(device))
    for i in range(V):  # a loop over views
        core = conf[i] > 0.5
        if core.any():
            median = delit[i][core].median(0).values
            robust = torch.exp(-((delit[i] - median) ** 2).sum(-1) / (2 * 0.2**2))
            conf[i] = conf[i] * torch.maximum(robust * skin_at[i], inner_at[i])
    weight = scatter_texels(conf, used, H, W)
    delit = scatter_texels(delit, used, H, W)  # (V,H,W,3), zero where no view has weight
    if V > 1:
        delit = torch.as_tensor(equalize_views(delit, weight).maps)
    # texels of zero coverage get the fill colour below: no need to fill them in the blend
    blended, coverage = multiband_blend(delit, weight, fill=False)
    blended, coverage = torch.as_tensor(blended), torch.as_tensor(coverage)
    seen = coverage > 0.25
    colour = blended[seen].median(0).values if seen.any() else torch.tensor([0.62, 0.47, 0.40], device=blended.device)
    w = texture_opacity(coverage, facing)[..., None]
    out = blended * w + colour.view(1, 1, 3) * (1.0 - w)
    return out.clamp(0.0, 1.0).cpu().numpy().astype(np.float32), weight.cpu().numpy().astype(np.float32)


# width (Gaussian σ, texels of a 512² tile ≈ 0.57 mm on ICT's face tile) of the texture's edge feather
FEATHER_TEXELS_512 = 6.0


def texture_opacity(coverage: torch.Tensor, texels: torch.Tensor) -> torch.Tensor:
    """Opacity of the photo texture over the fill colour, from the blended confidence.

    Full wherever the summed confidence is a fair fraction (0.3), fading over the low-confidence
    rim (not a linear mix everywhere), and never faster than a feather of σ ≈ 3.4 mm
    (``FEATHER_TEXELS_512`` at 512 texels per tile, scaled with H) that ends at the confident
    region's edge: where the skin weight stops at a hairline or a hat the confidence falls within
    a texel or two, and the photo was cut out against the fill colour with a rim of hair-tinted
    texels. The feather only lowers the opacity and is a blur normalised over the ``texels`` (T,)
    (flat indices) some view may face (:func:`backend.detail.masked_lowpass`), so UV island
    borders do not fade. coverage (H,W) ≥ 0. Returns (H,W) in [0,1].
    """
    from .blend import smoothstep
    from .detail import masked_lowpass

    H, W = coverage.shape
    w = smoothstep(coverage / 0.3)
    inside = torch.zeros(H * W, device=w.device, dtype=w.dtype)
    inside[texels] = 1.0
    feather = masked_lowpass(w.view(1, 1, H, W), inside.view(1, 1, H, W), FEATHER_TEXELS_512 * H / 512)[0, 0]
    return torch.minimum(w, smoothstep(2.0 * feather - 1.0))


def _with_detail_normals(normals: torch.Tensor, detail: DetailFitResult, pose: torch.Tensor, view: int) -> torch.Tensor:
    """Replace the face tile of a camera-space UV normal map (1,H,H·tiles,3) by the detailed
    normals (rotated from model to camera space and resampled)."""
    from .camera import euler_to_rotation

    H = normals.shape[1]
    R = euler_to_rotation(pose[:, 1:4])[0]
    n_model = detail.surface.normals[view : view + 1]  # (1,S,S,3)
    valid = detail.layout.valid[:, None].float()
    n_cam = (n_model @ R.T).permute(0, 3, 1, 2)
    n_up = torch.nn.functional.interpolate(n_cam, size=(H, H), mode="bilinear", align_corners=False)
    v_up = torch.nn.functional.interpolate(valid, size=(H, H), mode="bilinear", align_corners=False)
    face = normals[:, :, :H].permute(0, 3, 1, 2)
    mixed = torch.nn.functional.normalize(face * (1 - v_up) + n_up * v_up, dim=1, eps=1e-12)
    out = normals.clone()
    out[:, :, :H] = mixed.permute(0, 2, 3, 1) * (face.norm(dim=1, keepdim=True) > 0).permute(0, 2, 3, 1)
    return out


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
    landmark face masks (brows, lips and all), on which the photometric error is reported.
    Returns crops (V,size,size,3) in [0,1], skin masks and face masks (V,size,size)."""
    crops, skins, faces = [], [], []
    for view in views:
        M, lm = reframe(view, size)
        crop = view.crop if size == CROP_SIZE else warp_to_crop(view.image, M, size)
        crops.append(crop)
        skins.append(view.skin_mask if size == CROP_SIZE else skin_mask(crop, lm, size))
        faces.append(view.face_mask if size == CROP_SIZE else face_mask(lm, size, size, soft_px=size / CROP_SIZE))
    return tuple(torch.from_numpy(np.stack(x)) for x in (crops, skins, faces))


def reconstruct(
    images: Sequence[str | Path | np.ndarray],
    config: ReconstructConfig | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    landmarks: Sequence[np.ndarray | None] | None = None,
) -> Head:
    """Reconstruct one head from one or more photos of the same person.

    ``landmarks``: optional per-photo (68,2) landmarks in photo pixels (None entries are
    detected as usual).

    images: paths or (H,W,3) uint8 RGB arrays. Raises :class:`~backend.errors.PhotoheadError`
    subclasses with actionable messages (no face, unreadable file, missing model ...).
    """
    config = config or ReconstructConfig()
    if not images:
        raise PhotoheadError("no photos given")
    if config.mode not in ("fit", "predict", "hybrid"):
        raise PhotoheadError(f"unknown mode {config.mode!r}: use fit, predict or hybrid")
    if config.mode != "fit" and not config.checkpoints:
        raise WeightsNotFoundError(
            f"mode {config.mode!r} needs trained networks: pass --checkpoints DIR (a folder with coarse.pt and "
            "optionally detail.pt, see docs/training.md) or use --mode fit"
        )
    preset = resolve_preset(config.quality)
    if config.detector not in DETECTOR_BACKENDS:
        raise PhotoheadError(f"unknown detector {config.detector!r}: use {' or '.join(DETECTOR_BACKENDS)}")
    detects = landmarks is None or len(landmarks) < len(images) or any(lm is None for lm in landmarks)
    if config.detector == "face_alignment" and detects:
        from .detect.fa_backend import find_fa_weights

        find_fa_weights(config.detector_weights)  # its weights before any work: a clear error, nothing fitted
    if config.detector == "mediapipe" and detects:
        from .detect.mediapipe_nets import MEDIAPIPE_FILES, find_mediapipe_file

        for name in MEDIAPIPE_FILES:  # its weights before any work, as for face_alignment
            find_mediapipe_file(name, config.detector_weights)
    if config.tune_unet and config.mode != "hybrid":
        raise PhotoheadError(f"tuning the U-Net is part of hybrid mode, not {config.mode!r}: use --mode hybrid")
    check_face_index(config.face)
    check_labels(config.labels, len(images))
    check_model_path(config.model)
    check_photos(images, decode=False)  # regular files, sizes from the headers: before the model loads
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    with deterministic(device) if config.deterministic else nullcontext():
        return _reconstruct_on(device, images, config, preset, progress, cancel, landmarks, t0)


def _reconstruct_on(
    device: torch.device, images: Sequence[str | Path | np.ndarray], config: ReconstructConfig, preset: Preset,
    progress: ProgressFn | None, cancel: CancelToken | None, landmarks: Sequence[np.ndarray | None] | None, t0: float,
) -> Head:
    """:func:`reconstruct` after its checks, on ``device`` with ``config.quality``'s ``preset`` (``t0``: its
    start, for the timings)."""
    timings: dict[str, float] = {}
    warn_list: list[str] = []
    model = load_face_model(config.model).to(device)
    predictor = None
    if config.mode != "fit":
        from .predict import load_predictor

        predictor = load_predictor(config.checkpoints, device, model)
        if config.tune_unet and config.detail and not predictor.has_detail:
            raise WeightsNotFoundError(
                f"tuning the U-Net needs detail.pt in {config.checkpoints} (train stage 2, docs/training.md)"
            )
    timings["load_s"] = time.perf_counter() - t0
    check_cancel(cancel)

    views: list[PreparedView] = []
    detect_settings = DetectSettings(weights_dir=config.detector_weights)
    detects = landmarks is None or len(landmarks) < len(images) or any(lm is None for lm in landmarks)
    if config.detector == "auto" and detects:
        if not mediapipe_available(config.detector_weights):
            warn_list.append(MISSING_MEDIAPIPE)  # said once in the result, not once per photo
    for i, img in enumerate(images):
        check_cancel(cancel)
        if progress:
            progress(0.02 + 0.08 * i / len(images), f"detecting face in photo {i + 1}/{len(images)}")
        label = config.labels[i] if i < len(config.labels) else ""
        try:
            given = landmarks[i] if landmarks is not None and i < len(landmarks) else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MediaPipeMissingWarning)  # in warn_list already
                views.append(prepare_view(img, config.face, label, i, given, config.detector, detect_settings))
            if views[-1].faces_note:
                warn_list.append(views[-1].faces_note)
        except NoFaceError as exc:
            if len(images) == 1:
                raise
            warn_list.append(f"skipped: {exc}")
    if not views:
        raise NoFaceError("no face found in any of the photos: " + "; ".join(warn_list))
    timings["detect_s"] = time.perf_counter() - t0

    fit_cfg = replace(preset.coarse, identity=config.identity, shared_expression=config.shared_expression)
    if config.mode == "predict":
        fit_cfg = replace(fit_cfg, identity=False)  # no fit: L_id only serves the multi-view outlier check
    identity = _identity_adapter(device) if (fit_cfg.identity or len(views) > 1) else None
    if identity is not None and len(views) > 1:
        from .multiview import identity_outliers

        with torch.no_grad():
            crops = torch.from_numpy(np.stack([v.crop for v in views])).float().to(device)
            lms = torch.from_numpy(np.stack([v.crop_landmarks for v in views])).float().to(device)
            warn_list.extend(identity_outliers(identity(crops, lms), [Path(v.name).name for v in views]))
    if not fit_cfg.identity:
        identity = None
    t1 = time.perf_counter()
    to_t = lambda a: torch.from_numpy(np.stack(a)).float().to(device)  # noqa: E731
    crops224 = to_t([v.crop for v in views])
    predicted = None if predictor is None else predictor.predict_coarse(model, crops224, config.shared_expression)
    if config.mode == "predict":
        fit = predicted
    else:
        fit = fit_coarse(
            model, crops224, to_t([v.crop_landmarks for v in views]), to_t([v.skin_mask for v in views]),
            fit_cfg, identity_net=identity, progress=Stage(progress, 0.1, 0.75, cancel), cancel=cancel,
            init=None if predicted is None else predictor.init_for_fit(predicted),
        )
    timings["coarse_predict_s" if config.mode == "predict" else "coarse_fit_s"] = time.perf_counter() - t1
    check_cancel(cancel)
    detail = None
    if config.detail and config.mode == "predict" and not predictor.has_detail:
        warn_list.append(f"no detail.pt in {config.checkpoints}: detail stage skipped (train stage 2, docs/training.md)")
    elif config.detail:
        t3 = time.perf_counter()
        det_cfg = preset.detail
        crops, masks, face_masks = detail_inputs(views, det_cfg.render_size)
        disp0 = net_input = None
        if config.tune_unet:
            net_input = predictor.detail_input(model, fit, crops224)
        elif predictor is not None and predictor.has_detail:
            disp0 = predictor.predict_detail(model, fit, crops224, size=det_cfg.uv_size)
        if config.mode == "predict":
            det_cfg = replace(det_cfg, steps=0)  # no optimisation: builds the surface of the prediction
        detail = fit_detail(
            model, fit, crops.to(device), masks.to(device), det_cfg, init=disp0, report_mask=face_masks.to(device),
            progress=Stage(progress, 0.75, 0.95, cancel), cancel=cancel,
            net=predictor.unet if net_input is not None else None, net_input=net_input,
        )
        stage = "detail_predict_s" if config.mode == "predict" else "detail_tune_s" if config.tune_unet else "detail_fit_s"
        timings[stage] = time.perf_counter() - t3
    if progress:
        progress(0.96, "building the UV albedo")
    t2 = time.perf_counter()
    # photos de-lit into UV (also with a texture model, whose per-vertex albedo is coarse)
    albedo, view_weights = delit_albedo(model, fit, views, preset.albedo_res, device, detail)
    timings["albedo_s"] = time.perf_counter() - t2

    head = assemble_head(model, fit, views, config, albedo)
    if detail is not None:
        attach_detail(head, detail, model.uv_tiles)
    if view_weights is not None:
        head.view_weights = view_weights
        head.metrics["uv_face_coverage"] = uv_face_coverage(model, view_weights)
    evidence = [view_evidence(Path(v.name).name if len(views) > 1 else "", r.landmarks68, r.detected68,
                              float(r.pose[2]), v.mesh68, v.presence) for v, r in zip(views, head.views)]
    trust_metrics, trust_warn = assess(evidence, head.id_coeffs, fit_cfg.id_ball)
    head.metrics.update(trust_metrics)
    head.warnings.extend(warn_list + trust_warn)
    timings["total_s"] = time.perf_counter() - t0
    head.timings.update(timings)
    if progress:
        progress(1.0, "done")
    return head


def assemble_head(
    model: FaceModel, fit: CoarseFitResult, views: list[PreparedView], config: ReconstructConfig, albedo: np.ndarray | None
) -> Head:
    """Pack the fit into a :class:`Head` with per-view results in original-photo pixels."""
    np32 = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
    neutral = model(fit.id, None)
    results = []
    for i, view in enumerate(views):
        pose_img = image_frame_pose(fit.verts[i : i + 1], fit.pose[i : i + 1], view)
        results.append(
            ViewResult(
                name=view.name, image_size=(view.image.shape[1], view.image.shape[0]),
                pose=np32(pose_img[0]), sh=np32(fit.sh[i]), exp=np32(fit.exp[i]),
                landmarks68=points_to_image(fit.landmarks[i].double().cpu().numpy(), view.image_from_crop).astype(np.float32),
                detected68=view.detected68.astype(np.float32), projection="orthographic",
                face_box=view.face_box.astype(np.float32), crop_from_image=view.crop_from_image.astype(np.float32),
                image=view.image, label=view.label, detector=view.detector,
            )
        )
    head = Head(
        model_name=model.name, vertices=np32(fit.verts[0]), neutral=np32(neutral[0]),
        faces=model.faces.cpu().numpy().astype(np.int32), uv=np32(model.uv),
        faces_uv=model.faces_uv.cpu().numpy().astype(np.int32), id_coeffs=np32(fit.id[0]),
        exp_coeffs=np32(fit.exp[0]), exp_names=list(model.exp_names), exp_basis=np32(model.exp_basis),
        uv_tiles=model.uv_tiles, albedo=albedo, tex_coeffs=None if fit.tex is None else np32(fit.tex[0]),
        views=results, mode=config.mode, quality=config.quality,
    )
    # eyes, sockets, teeth when the model has them; iris and sclera from the first photo's eyes
    colours = eye_colours(views[0].image, views[0].detected68, np32(fit.sh[0])) if model.has_parts else None
    attach_parts(head, model, fit.id[:1], fit.exp[:1], colours)
    return head


def uv_face_coverage(model: FaceModel, weights: np.ndarray) -> float:
    """Fraction of the UV face region (narrow face) that some view sees. weights (V,R,R·tiles)."""
    from .multiview import face_region_coverage, face_region_mask
    from .render import rasterize_uv

    R = weights.shape[1]
    frags = rasterize_uv(model.uv, model.faces_uv, R, weights.shape[2], (0.0, float(model.uv_tiles)))
    return float(face_region_coverage(torch.from_numpy(weights), face_region_mask(model, frags)))


def _tile_pad(face_tile: np.ndarray, tiles: int, fill) -> np.ndarray:
    """Place a face-tile map (S,S,...) at the left of a ``tiles``-wide layout (S,S·tiles,...)."""
    if tiles == 1:
        return face_tile
    pad = np.empty((face_tile.shape[0], face_tile.shape[1] * (tiles - 1)) + face_tile.shape[2:], face_tile.dtype)
    pad[...] = fill
    return np.concatenate([face_tile, pad], 1)


def attach_detail(head: Head, detail: DetailFitResult, tiles: int) -> None:
    """Store the detail stage in ``head``: displacement (mm) and tangent-space normal map over
    the whole UV layout (flat outside the face tile), and the dense mesh of the first view."""
    from .detail import tangent_normal_map

    disp = detail.displacement[0, 0].float().cpu().numpy()
    normal = tangent_normal_map(detail.surface, detail.layout.valid)[0].float().cpu().numpy()
    head.displacement = _tile_pad(disp.astype(np.float32), tiles, 0.0)
    head.displacement_scale_mm = float(max(1.0, np.abs(disp).max()))
    head.normal_map = _tile_pad(normal.astype(np.float32), tiles, np.array([0.5, 0.5, 1.0], np.float32))
    head.dense_vertices = detail.surface.dense_verts[0].float().cpu().numpy()
    head.dense_faces = detail.topology.faces.cpu().numpy().astype(np.int32)
    head.dense_uv = detail.topology.uv.cpu().numpy().astype(np.float32)
    head.metrics["pixel_loss_coarse"] = float(np.mean(detail.pixel_coarse))
    head.metrics["pixel_loss_detail"] = float(np.mean(detail.pixel_detail))
    head.metrics["pixel_loss_skin_coarse"] = float(np.mean(detail.pixel_skin_coarse))
    head.metrics["pixel_loss_skin_detail"] = float(np.mean(detail.pixel_skin_detail))
    if detail.pixel_albedo_only:
        head.metrics["pixel_loss_albedo_only"] = float(np.mean(detail.pixel_albedo_only))
    if detail.pixel_rest_coarse:  # the face mask off the skin: brows, lips, hair, glasses
        head.metrics["pixel_loss_rest_coarse"] = float(np.mean(detail.pixel_rest_coarse))
        head.metrics["pixel_loss_rest_detail"] = float(np.mean(detail.pixel_rest_detail))
        head.metrics["rest_error_share_coarse"] = float(np.mean(detail.rest_share_coarse))
