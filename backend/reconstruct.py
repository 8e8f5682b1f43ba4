"""The one public entry point: photos → :class:`~backend.head.Head`.

:func:`reconstruct` checks its inputs, then runs the stages in order, each in its own module:

1. prepare (:mod:`.prepare`): read each photo, detect the face and its 68 landmarks, crop to 224²;
2. coarse (:mod:`.modes`): the face model's identity, expression, pose and light, all views jointly
   (fitted with the paper's stage-1 losses, predicted by the encoder, or both, per mode);
3. detail (:mod:`.modes`, :mod:`.fit.detail`): the UV displacement map (when enabled);
4. texture (:mod:`.texture`): the photos de-lit into the UV albedo;
5. assemble (:mod:`.assemble`): the :class:`~backend.head.Head`, poses in original-photo pixels.

The quality name resolves once to a :class:`~backend.preset.Preset`; the mode to a strategy
(:func:`backend.modes.mode_for`).
"""
from __future__ import annotations

import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .assemble import assemble_head, with_detail
from .detect import BACKENDS as DETECTOR_BACKENDS
from .detect import DetectSettings
from .detectors import DEFAULT_DETECTOR
from .detect.combined import MISSING_MEDIAPIPE, MediaPipeMissingWarning, mediapipe_available
from .detect.fa_backend import find_fa_weights
from .detect.mediapipe_nets import MEDIAPIPE_FILES, find_mediapipe_file
from .determinism import deterministic
from .device import resolve_device
from .errors import NoFaceError, PhotoheadError
from .facemodel import FaceModel, load_default, load_model
from .focal_search import ESTIMATE_WITHOUT_LENS, estimate_focal_warmups, fallback_views, lens_fell_back
from .fit.coarse import CoarseFitConfig, CoarseFitResult
from .fit.detail import DetailFitResult, fit_detail
from .fit.photo_trust import FOLLOWED as PHOTO_FOLLOWED, for_detectors, landmark_weight, photo_scale
from .fit.view_weights import landmarks_followed, view_weight_report
from .glasses import view_glasses_scores
from .head import Head
from .identity import identity_features, load_identity_net
from .modes import Mode, mode_for
from .image_io import load_image
from .multiview import identity_outliers
from .multiview_detect import retry_face
from .prepare import PreparedView, dense_targets, detail_inputs, detector_gaps, mesh68_targets, prepare_view, views_camera
from .preset import Preset, resolve_preset
from .progress import CancelToken, ProgressFn, Stage, check_cancel
from .quality import DEFAULT
from .texture import delit_albedo, face_tile_mirror, uv_face_coverage
from .trust import assess, view_evidence
from .validate import check_face_index, check_focal_35mm, check_labels, check_model_path, check_photos

__all__ = ["ReconstructConfig", "reconstruct", "load_face_model"]


@dataclass
class ReconstructConfig:
    """Everything a reconstruction needs besides the photos.

    - ``mode``: ``fit`` (per-image analysis-by-synthesis, no weights), ``predict`` (trained
      encoder + U-Net), ``hybrid`` (predict initialises fit).
    - ``quality``: fit schedule and UV resolution preset (:mod:`backend.preset`).
    - ``device``: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
    - ``model``: face model file (default: ICT on the search path).
    - ``face``: which detected face (0 = most confident) in each photo.
    - ``detector``: the landmark detector, ``auto`` (the default: dlib's points checked by Face
      Mesh, :mod:`backend.detect.combined`; dlib alone with a warning when MediaPipe's weights
      are missing), ``dlib``, ``mediapipe`` (BlazeFace + Face Mesh in PyTorch,
      :mod:`backend.detect.mediapipe_backend`; its files from `photohead models fetch
      mediapipe`, or ``detector_weights`` a folder holding them) or ``face_alignment``
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
    - ``step_graphs``: the fits' steps replayed as CUDA graphs (:mod:`backend.fit.step_graph`;
      None: on CUDA only; False: plain eager steps everywhere).
    - ``focal_35mm``: every photo's 35-mm-equivalent focal length (mm; ``inf``: an orthographic
      camera); None: each photo's EXIF FocalLengthIn35mmFilm, else the default
      (:data:`backend.lens.DEFAULT_FOCAL_35MM`: orthographic). The fit sees the head through that lens.
    """

    mode: str = "fit"  # a name of backend.modes.MODES
    quality: str = DEFAULT  # a name of backend.quality.QUALITIES
    device: str = "auto"
    model: str | None = None
    face: int = 0
    detector: str = DEFAULT_DETECTOR
    detector_weights: str | None = None
    detail: bool = True
    identity: bool = True
    checkpoints: str | None = None
    shared_expression: bool = True
    seed: int = 0
    deterministic: bool = True
    labels: list[str] = field(default_factory=list)
    tune_unet: bool = False
    step_graphs: bool | None = None
    focal_35mm: float | None = None


def load_face_model(path: str | None) -> FaceModel:
    """The face model from ``path`` (any supported format) or the default on the search path."""
    return load_model(path) if path else load_default()


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
    detects = landmarks is None or len(landmarks) < len(images) or any(lm is None for lm in landmarks)
    mode, preset = _checked(config, detects)
    check_labels(config.labels, len(images))
    check_photos(images, decode=False)  # regular files, sizes from the headers: before the model loads
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    with deterministic(device) if config.deterministic else nullcontext():
        return _run(device, images, config, mode, preset, progress, cancel, landmarks, t0)


def _checked(config: ReconstructConfig, detects: bool) -> tuple[Mode, Preset]:
    """The mode's strategy and the quality's preset, after the checks of the options that need
    no photo (``detects``: a detector will run, so its weights must be there)."""
    mode = mode_for(config)
    preset = resolve_preset(config.quality)
    if config.detector not in DETECTOR_BACKENDS:
        raise PhotoheadError(f"unknown detector {config.detector!r}: use {' or '.join(DETECTOR_BACKENDS)}")
    if config.detector == "face_alignment" and detects:
        find_fa_weights(config.detector_weights)  # its weights before any work: a clear error, nothing fitted
    if config.detector == "mediapipe" and detects:
        for name in MEDIAPIPE_FILES:  # its weights before any work, as for face_alignment
            find_mediapipe_file(name, config.detector_weights)
    check_face_index(config.face)
    check_model_path(config.model)
    check_focal_35mm(config.focal_35mm)
    return mode, preset


def _run(
    device: torch.device, images: Sequence[str | Path | np.ndarray], config: ReconstructConfig, mode: Mode,
    preset: Preset, progress: ProgressFn | None, cancel: CancelToken | None,
    landmarks: Sequence[np.ndarray | None] | None, t0: float,
) -> Head:
    """:func:`reconstruct` after its checks, on ``device``, in ``mode`` with ``config.quality``'s
    ``preset`` (``t0``: its start, for the timings): prepare → coarse → detail → texture → assemble."""
    timings: dict[str, float] = {}
    warn_list: list[str] = []
    model = load_face_model(config.model).to(device)
    mode.load(model, device)
    timings["load_s"] = time.perf_counter() - t0
    check_cancel(cancel)

    # prepare
    views = _prepare_views(images, config, landmarks, progress, cancel, warn_list)
    timings["detect_s"] = time.perf_counter() - t0

    # coarse
    fit_cfg = mode.coarse_config(replace(preset.coarse, identity=config.identity,
                                         shared_expression=config.shared_expression, step_graphs=config.step_graphs,
                                         photo_trust=for_detectors(preset.coarse.photo_trust, [v.detector for v in views])))
    warmups: list = [None]
    if ESTIMATE_WITHOUT_LENS and mode.name != "predict":  # photos without a lens: the warm-up picks one
        views, warmups = estimate_focal_warmups(model, views, fit_cfg, device)
    identity = _identity_adapter(device) if (fit_cfg.identity or len(views) > 1) else None
    if identity is not None and len(views) > 1:
        warn_list.extend(_identity_warnings(identity, views, device))
    t1 = time.perf_counter()
    to_t = lambda a: torch.from_numpy(np.stack(a)).float().to(device)  # noqa: E731
    crops224 = to_t([v.crop for v in views])
    fit = mode.coarse(model, crops224, to_t([v.crop_landmarks for v in views]), to_t([v.skin_mask for v in views]),
                      fit_cfg, identity if fit_cfg.identity else None, Stage(progress, 0.1, 0.75, cancel), cancel,
                      dense=dense_targets(views, device), mesh68=mesh68_targets(views, device),
                      gaps=detector_gaps(views, device), camera=views_camera(views, device=device),
                      warmup=warmups[0] if len(views) == 1 else None,  # one view: the estimate's winner, solved
                      fallback_camera=views_camera(fallback_views(views), device=device))
    if lens_fell_back(fit.history):  # the shading overruled the landmarks that picked the lens
        views = fallback_views(views)
    timings[mode.coarse_timing] = time.perf_counter() - t1
    check_cancel(cancel)

    # detail
    detail = None
    skipped = mode.detail_skipped() if config.detail else None
    if skipped:
        warn_list.append(skipped)
    elif config.detail:
        t3 = time.perf_counter()
        plan = mode.detail_plan(model, fit, crops224, replace(preset.detail, step_graphs=config.step_graphs))
        crops, masks, face_masks = detail_inputs(views, plan.config.render_size)
        detail = fit_detail(
            model, fit, crops.to(device), masks.to(device), plan.config, init=plan.init,
            report_mask=face_masks.to(device), progress=Stage(progress, 0.75, 0.95, cancel), cancel=cancel,
            net=plan.net, net_input=plan.net_input, mirror=face_tile_mirror(model, plan.config.uv_size),
        )
        timings[plan.timing] = time.perf_counter() - t3

    return _texture_and_assemble(model, device, fit, detail, views, config, preset, fit_cfg, progress, warn_list,
                                 timings, t0)


def _texture_and_assemble(
    model: FaceModel, device: torch.device, fit: CoarseFitResult, detail: DetailFitResult | None,
    views: list[PreparedView], config: ReconstructConfig, preset: Preset, fit_cfg: CoarseFitConfig,
    progress: ProgressFn | None, warn_list: list[str], timings: dict[str, float], t0: float,
) -> Head:
    """The texture and assemble stages of one head (also each head of a batch, :mod:`backend.batch`)."""
    if detail is not None and not bool(torch.isfinite(detail.displacement).all()):  # never a NaN head
        warn_list = warn_list + ["the detail stage failed numerically: the head has no fine detail (please report "
                                 "the photo)"]
        detail = None
    # texture: the photos de-lit into UV (also with a texture model, whose per-vertex albedo is coarse)
    if progress:
        progress(0.96, "building the UV albedo")
    t2 = time.perf_counter()
    albedo, view_weights = delit_albedo(model, fit, views, preset.albedo_res, device, detail)
    timings["albedo_s"] = time.perf_counter() - t2

    # assemble
    head = assemble_head(model, fit, views, config.mode, config.quality, albedo)
    if detail is not None:
        head = with_detail(head, detail, model.uv_tiles)
    head.view_weights = view_weights
    head.metrics["uv_face_coverage"] = uv_face_coverage(model, view_weights)
    head.metrics["glasses_score"] = max(view_glasses_scores(views))  # backend.glasses: frames out at ≥ 0.14
    followed = landmarks_followed(fit.history, len(views))  # side views of a set: judged by their view weights
    if photo_scale(fit.history) < PHOTO_FOLLOWED:  # the shading overruled the landmarks (.fit.photo_trust)
        followed = [False] * len(views)
    evidence = [replace(view_evidence(Path(v.name).name if len(views) > 1 else "", r.landmarks68, r.detected68,
                                      float(r.pose[2]), v.mesh68, v.presence, v.detector_disagreement,
                                      fitted68_3d=r.landmarks68_3d, face_detector=v.face_detector,
                                      face_score=v.face_score),
                        landmarks_followed=f)
                for v, r, f in zip(views, head.views, followed)]
    photo_error = next((h["pixel"] for h in reversed(fit.history) if "pixel" in h), None)
    trust_metrics, trust_warn = assess(evidence, head.id_coeffs, fit_cfg.id_ball, photo_error=photo_error)
    weight_metrics, weight_warn = view_weight_report(fit.view_weights, [Path(v.name).name for v in views],
                                                     fit_cfg.view_weights)
    head.metrics.update(trust_metrics | weight_metrics)
    head.metrics["trust_landmark_weight"] = landmark_weight(fit.history)
    head.warnings.extend(warn_list + weight_warn + trust_warn)
    timings["total_s"] = time.perf_counter() - t0
    head.timings.update(timings)
    if progress:
        progress(1.0, "done")
    return head


def _prepare_views(
    images: Sequence[str | Path | np.ndarray], config: ReconstructConfig, landmarks: Sequence[np.ndarray | None] | None,
    progress: ProgressFn | None, cancel: CancelToken | None, warn_list: list[str],
) -> list[PreparedView]:
    """Each photo prepared (:func:`backend.prepare.prepare_view`); with several photos one without
    a face is skipped with a warning in ``warn_list``. Raises :class:`NoFaceError` when none has one."""
    views: dict[int, PreparedView] = {}
    lost: dict[int, NoFaceError] = {}
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
                views[i] = prepare_view(img, config.face, label, i, given, config.detector, detect_settings,
                                        focal_35mm=config.focal_35mm)
            if views[i].faces_note:
                warn_list.append(views[i].faces_note)
        except NoFaceError as exc:
            if len(images) == 1:
                raise
            lost[i] = exc
    if views and lost and config.face == 0:  # a second look, from the other photos' faces
        views |= _retried_views(images, config, lost, list(views.values()), detect_settings, warn_list)
    warn_list.extend(f"skipped: {exc}" for i, exc in lost.items() if i not in views)
    if not views:
        raise NoFaceError("no face found in any of the photos: " + "; ".join(warn_list))
    return [views[i] for i in sorted(views)]


def _retried_views(
    images: Sequence[str | Path | np.ndarray], config: ReconstructConfig, lost: dict[int, NoFaceError],
    found: list[PreparedView], detect_settings: DetectSettings, warn_list: list[str],
) -> dict[int, PreparedView]:
    """The photos ``lost`` (index → why) whose face :func:`.multiview_detect.retry_face` finds
    from the ``found`` views' face boxes, prepared, each with a warning in ``warn_list``."""
    boxes = np.stack([v.face_box for v in found])
    sizes = np.array([[v.image.shape[1], v.image.shape[0]] for v in found])
    out: dict[int, PreparedView] = {}
    for i in lost:
        rgb = load_image(images[i])
        retry = retry_face(rgb, boxes, sizes, config.detector, detect_settings)
        if retry is None:
            continue
        face, how = retry
        label = config.labels[i] if i < len(config.labels) else ""
        out[i] = prepare_view(images[i], config.face, label, i, None, config.detector, detect_settings, found=face,
                              focal_35mm=config.focal_35mm)  # the photo's own name and lens (EXIF) with it
        name = Path(out[i].name).name
        warn_list.append(f"photo {name!r}: no face found at first; found on a second look ({how}): check its "
                         f"landmarks in preview.png")
    return out


def _identity_adapter(device: torch.device) -> Callable | None:
    """(images (B,S,S,3) [0,1], landmarks (B,68,2) px) → features, or None (with a warning) when
    the identity network's weights are missing."""
    try:
        net = load_identity_net().to(device)
    except PhotoheadError as exc:
        warnings.warn(f"identity loss disabled: {exc}", stacklevel=2)
        return None

    def features(images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return identity_features(images.permute(0, 3, 1, 2), landmarks, net=net)

    return features


def _identity_warnings(identity: Callable, views: list[PreparedView], device: torch.device) -> list[str]:
    """Warnings naming photos that do not look like the same person as the others."""
    with torch.no_grad():
        crops = torch.from_numpy(np.stack([v.crop for v in views])).float().to(device)
        lms = torch.from_numpy(np.stack([v.crop_landmarks for v in views])).float().to(device)
        return identity_outliers(identity(crops, lms), [Path(v.name).name for v in views])
