"""Optional ``face-alignment`` backend (FAN 2-D landmarks + its S3FD detector).

Used only when its weights are already on disk: never downloads. The package is imported
lazily; the weight check runs first, so a missing package *and* missing weights reports
the weights (the thing the user must fetch by hand on an offline machine).

Weights are looked for (in this order) in ``settings.weights_dir/checkpoints``,
``settings.weights_dir`` and torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``,
default ``~/.cache/torch/hub/checkpoints``), where face-alignment itself caches them:
``2DFAN4-*.zip`` (or ``.pth``) for landmarks and ``s3fd-*.pth`` for the detector.
"""
from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch.hub

from ..errors import DependencyMissingError, WeightsNotFoundError
from .base import DetectSettings, Face

__all__ = ["detect_face_alignment", "find_fa_weights", "hub_checkpoint_dir"]

FAN_GLOBS = ("2DFAN4*.zip", "2DFAN4*.pth", "2DFAN-4*.zip", "2DFAN-4*.pth")
S3FD_GLOBS = ("s3fd*.pth",)


def hub_checkpoint_dir() -> Path:
    """torch hub's checkpoint folder, computed like ``torch.hub.get_dir()`` without importing torch."""
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        xdg = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
        torch_home = os.path.join(xdg, "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def _search_dirs(weights_dir: str | None) -> list[Path]:
    dirs = []
    if weights_dir:
        dirs += [Path(weights_dir) / "checkpoints", Path(weights_dir)]
    dirs.append(hub_checkpoint_dir())
    return dirs


def find_fa_weights(weights_dir: str | None = None) -> tuple[Path, Path]:
    """Locate ``(fan_file, s3fd_file)`` on disk.

    Raises :class:`WeightsNotFoundError` listing every folder searched and the file names
    expected, so the user can copy them there by hand.
    """
    dirs = _search_dirs(weights_dir)

    def first(globs: tuple[str, ...]) -> Path | None:
        for d in dirs:
            if d.is_dir():
                for g in globs:
                    hits = sorted(d.glob(g))
                    if hits:
                        return hits[0]
        return None

    fan, s3fd = first(FAN_GLOBS), first(S3FD_GLOBS)
    missing = [name for name, f in (("2DFAN4-*.zip (landmarks)", fan), ("s3fd-*.pth (detector)", s3fd)) if f is None]
    if missing:
        searched = ", ".join(str(d) for d in dirs)
        raise WeightsNotFoundError(
            f"face_alignment weights not found: missing {' and '.join(missing)}; searched {searched}. "
            "Photohead never downloads them: copy the files from a machine where face-alignment has "
            "run once (its torch hub cache) into one of those folders, pass weights_dir=..., "
            "or use backend='dlib'"
        )
    return fan, s3fd  # type: ignore[return-value]


@contextlib.contextmanager
def _hub_dir(checkpoints: Path) -> Iterator[None]:
    """Point torch hub at ``checkpoints``' parent while face-alignment resolves its files."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(checkpoints.parent))
    try:
        yield
    finally:
        torch.hub.set_dir(old)


@functools.lru_cache(maxsize=2)
def _model(fan: Path, s3fd: Path, device: str, flip_input: bool):
    if fan.parent.name != "checkpoints":
        raise WeightsNotFoundError(
            f"face-alignment only loads its landmark weights from a torch-hub folder: move {fan.name} "
            f"into {fan.parent / 'checkpoints'} (or {hub_checkpoint_dir()})"
        )
    try:
        import face_alignment  # optional dependency (detector face_alignment)
    except ImportError as exc:
        raise DependencyMissingError(
            f"backend='face_alignment' needs the face-alignment package (`pip install face-alignment`): {exc}; "
            "or use backend='dlib'"
        ) from None
    kind = getattr(face_alignment.LandmarksType, "TWO_D", None) or getattr(face_alignment.LandmarksType, "_2D")
    try:
        with _hub_dir(fan.parent):
            return face_alignment.FaceAlignment(
                kind, device=device, flip_input=flip_input, face_detector="sfd",
                face_detector_kwargs={"path_to_detector": str(s3fd)},
            )
    except OSError as exc:  # URLError is an OSError: it tried to download a file it lacks
        raise WeightsNotFoundError(
            f"face-alignment could not load its weights from {fan.parent} without downloading: {exc}"
        ) from None


def detect_face_alignment(image: np.ndarray, settings: DetectSettings, device: str = "cpu") -> list[Face]:
    """All faces in ``image`` (H,W,3) uint8 RGB with face-alignment, unsorted."""
    fan, s3fd = find_fa_weights(settings.weights_dir)
    fa = _model(fan, s3fd, device, settings.flip_average)  # its own flip test: heatmaps of both crops averaged
    out = fa.get_landmarks_from_image(image, return_bboxes=True, return_landmark_score=True)
    landmarks, _lm_scores, boxes = out
    if landmarks is None:
        return []
    faces = []
    for lm, box in zip(landmarks, boxes):
        box = np.asarray(box, np.float64).reshape(-1)
        score = float(box[4]) if box.size > 4 else 1.0  # the S3FD confidence
        faces.append(Face(box=box[:4].copy(), landmarks=np.asarray(lm, np.float64)[:, :2].copy(),
                          score=score, backend="face_alignment", detector="sfd"))
    return faces
