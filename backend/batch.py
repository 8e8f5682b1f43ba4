"""``reconstruct --each`` in batches: the photos of different people fitted B at a time as one
batch (:mod:`backend.fit.batch`), then textured and assembled one by one.

Each photo's head is the one :func:`backend.reconstruct.reconstruct` makes of it alone, within
float rounding (tests/test_batch.py). A photo that cannot be read or has no face is checked and
prepared before any fitting and reported in its slot of the result; it never joins a batch.
On a GPU the batch is what fills the device (a single fit is launch-bound, docs/gpu.md); on the
CPU ``--each`` runs photos in parallel processes instead, and a batch there is for tests.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .determinism import deterministic
from .device import resolve_device
from .errors import PhotoheadError
from .fit.batch import split_coarse, split_detail
from .focal_search import ESTIMATE_WITHOUT_LENS, estimate_focal, fallback_views, lens_fell_back
from .fit.coarse import fit_coarse
from .fit.detail import fit_detail
from .head import Head
from .prepare import PreparedView, dense_targets, detail_inputs, detector_gaps, mesh68_targets, views_camera
from .progress import ProgressFn
from .quality import DEFAULT, DRAFT, HIGH
from .reconstruct import (
    ReconstructConfig, _checked, _identity_adapter, _prepare_views, _texture_and_assemble, load_face_model, reconstruct,
)
from .texture import face_tile_mirror
from .validate import check_photos

__all__ = ["MAX_BATCH", "batch_size_for", "reconstruct_each"]

# Device memory one photo of a batch holds at the fit's peak, by quality (a first estimate with
# headroom, from the CPU's peak resident memory in benchmarks/results/fit.json; benchmarks/
# gpu_check.sh reports the measured peak on a GPU).
_PHOTO_DEVICE_BYTES = {DRAFT: 0.5 * 2**30, DEFAULT: 1.0 * 2**30, HIGH: 3.0 * 2**30}
MAX_BATCH = 32  # past this a GPU fit is no longer launch-bound (docs/gpu.md): larger batches only queue


def batch_size_for(device: torch.device, quality: str, n_photos: int) -> int:
    """Photos per batch on ``device``: from its free memory on CUDA (≤ :data:`MAX_BATCH`), 1 elsewhere."""
    if device.type != "cuda" or n_photos < 2:
        return 1
    free, _ = torch.cuda.mem_get_info(device)
    per = _PHOTO_DEVICE_BYTES.get(quality, _PHOTO_DEVICE_BYTES[HIGH])
    return max(1, min(n_photos, MAX_BATCH, int(0.7 * free // per)))


def reconstruct_each(
    images: Sequence[str | Path | np.ndarray],
    config: ReconstructConfig | None = None,
    batch_size: int | None = None,
    progress: ProgressFn | None = None,
    landmarks: Sequence[np.ndarray | None] | None = None,
) -> list[Head | PhotoheadError]:
    """One head per photo, every photo its own person; fit mode fits ``batch_size`` photos at a
    time as one batch (None: :func:`batch_size_for`); the other modes run photo by photo.

    images: paths or (H,W,3) uint8 RGB arrays; ``landmarks``: optional per-photo (68,2) photo
    pixels. Returns, in the photos' order, each photo's :class:`Head` or the
    :class:`PhotoheadError` that stopped it. Raises PhotoheadError for bad options (before any work).
    """
    config = config or ReconstructConfig()
    if config.labels:
        raise PhotoheadError("labels name the views of one person; here every photo is its own head")
    if batch_size is not None and batch_size < 1:
        raise PhotoheadError(f"batch size {batch_size}: give a whole number of photos, 1 or more")
    given = list(landmarks or []) + [None] * (len(images) - len(landmarks or []))
    mode, preset = _checked(config, any(lm is None for lm in given))
    if mode.name != "fit":  # the network modes predict per photo: nothing to batch
        return [_one(image, config, lm) for image, lm in zip(images, given)]
    t0 = time.perf_counter()
    results: list[Head | PhotoheadError | None] = [None] * len(images)
    prepared: list[tuple[int, PreparedView, list[str]]] = []
    for i, (image, lm) in enumerate(zip(images, given)):  # every photo checked before any fitting
        warn_list: list[str] = []
        try:
            check_photos([image], decode=False)
            prepared.append((i, _prepare_views([image], config, [lm], None, None, warn_list)[0], warn_list))
        except PhotoheadError as exc:
            results[i] = exc
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    B = batch_size or batch_size_for(device, config.quality, len(prepared))
    detect_s = time.perf_counter() - t0
    with deterministic(device) if config.deterministic else nullcontext():
        model = load_face_model(config.model).to(device)
        fit_cfg = replace(preset.coarse, identity=config.identity, shared_expression=config.shared_expression,
                          step_graphs=config.step_graphs)
        identity = _identity_adapter(device) if fit_cfg.identity else None  # None: L_id skipped, as in reconstruct
        for start in range(0, len(prepared), B):
            chunk = prepared[start:start + B]
            if progress:
                progress(start / max(1, len(prepared)), f"fitting photos {start + 1}–{start + len(chunk)} of {len(prepared)}")
            heads = _fit_batch(model, device, [v for _, v, _ in chunk], [w for _, _, w in chunk], config, preset,
                               fit_cfg, identity, detect_s / max(1, len(prepared)))
            for (i, _, _), head in zip(chunk, heads):
                results[i] = head
    if progress:
        progress(1.0, "done")
    return results


def _one(image, config: ReconstructConfig, landmarks: np.ndarray | None) -> Head | PhotoheadError:
    try:
        return reconstruct([image], config, landmarks=None if landmarks is None else [landmarks])
    except PhotoheadError as exc:
        return exc


def _fit_batch(model, device: torch.device, views: list[PreparedView], warn_lists: list[list[str]],
               config: ReconstructConfig, preset, fit_cfg, identity, detect_s: float) -> list[Head]:
    """Coarse and detail fits of ``views`` (one photo each, different people) as one batch, then
    each head's texture and assembly. Timings are the batch's shared out per photo."""
    if ESTIMATE_WITHOUT_LENS:  # photos without a lens: the warm-up picks one (as reconstruct)
        views = estimate_focal(model, views, fit_cfg, device)
    B = len(views)
    groups = torch.arange(B, device=device)
    to_t = lambda a: torch.from_numpy(np.stack(a)).float().to(device)  # noqa: E731
    t1 = time.perf_counter()
    crops224 = to_t([v.crop for v in views])
    fit_all = fit_coarse(model, crops224, to_t([v.crop_landmarks for v in views]), to_t([v.skin_mask for v in views]),
                         fit_cfg, identity if fit_cfg.identity else None, groups=groups,
                         dense=dense_targets(views, device), mesh68=mesh68_targets(views, device),
                         gaps=detector_gaps(views, device), camera=views_camera(views, device=device),
                         fallback_camera=views_camera(fallback_views(views), device=device))
    fits = split_coarse(fit_all, groups)
    views = [fallback_views([v])[0] if lens_fell_back(f.history) else v for v, f in zip(views, fits)]
    timings = {"batch_size": B, "detect_s": detect_s, "coarse_fit_s": (time.perf_counter() - t1) / B}
    details: list = [None] * B
    if config.detail:
        t3 = time.perf_counter()
        crops, masks, face_masks = detail_inputs(views, preset.detail.render_size)
        detail_all = fit_detail(model, fit_all, crops.to(device), masks.to(device),
                                replace(preset.detail, step_graphs=config.step_graphs),
                                report_mask=face_masks.to(device), groups=groups,
                                mirror=face_tile_mirror(model, preset.detail.uv_size))
        details = split_detail(detail_all, groups)
        timings["detail_fit_s"] = (time.perf_counter() - t3) / B
    share = sum(v for k, v in timings.items() if k.endswith("_s"))  # this photo's part of the batch's time
    return [_texture_and_assemble(model, device, fit, detail, [view], config, preset, fit_cfg, None, warn_list,
                                  dict(timings), time.perf_counter() - share)
            for view, fit, detail, warn_list in zip(views, fits, details, warn_lists)]
