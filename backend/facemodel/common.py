"""Helpers shared by the face-model loaders: units, winding, landmark side files."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import ModelFormatError

__all__ = [
    "UNIT_TO_MM", "FACE_WIDTH_MM", "unit_scale", "guess_unit_scale", "check_extent", "orient_outward",
    "read_landmarks_file", "find_landmarks_file", "landmark_override_file", "check_landmarks",
]

UNIT_TO_MM = {"um": 1e-3, "µm": 1e-3, "micrometre": 1e-3, "mm": 1.0, "cm": 10.0, "dm": 100.0, "m": 1000.0}
FACE_WIDTH_MM = 150.0
# a loaded mesh's width (x extent) must land in this range: face masks (~100 mm) to heads with shoulders
_WIDTH_RANGE_MM = (60.0, 600.0)


def unit_scale(unit: str, path: Path) -> float:
    """Millimetres per unit of ``unit`` ("um", "mm", "cm", "dm", "m")."""
    try:
        return UNIT_TO_MM[unit.strip().lower()]
    except KeyError:
        raise ModelFormatError(f"{path}: unknown unit {unit!r} (use one of {', '.join(sorted(UNIT_TO_MM))})") from None


def guess_unit_scale(points: np.ndarray) -> float:
    """The power of ten that makes the mesh width (x extent) closest to a face's ~150 mm.

    Used for formats that do not state their unit (Deep3D's ``BFM_model_front.mat`` is in
    decimetres: width ≈ 1.5 → ×100). Returns millimetres per file unit.
    """
    width = float(np.ptp(np.asarray(points)[:, 0]))
    if not math.isfinite(width) or width <= 0:
        return 1.0
    return float(10.0 ** round(math.log10(FACE_WIDTH_MM / width)))


def check_extent(points_mm: np.ndarray, path: Path, how: str) -> None:
    """Raise :class:`ModelFormatError` when a mesh's width in mm is not a plausible face/head."""
    width = float(np.ptp(points_mm[:, 0]))
    lo, hi = _WIDTH_RANGE_MM
    if not (lo <= width <= hi):
        raise ModelFormatError(
            f"{path}: mean shape is {width:.4g} mm wide after unit conversion ({how}); a face is ~{FACE_WIDTH_MM:g} mm. "
            f"The file's unit is not what the format promises; convert it or state the unit explicitly"
        )


def orient_outward(mean: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Return ``faces`` (F,3) flipped if needed so they wind counter-clockwise seen from outside.

    Test: the signed volume of the triangles seen from the vertex centroid (Σ det[a−c, b−c, d−c]).
    For a closed head or an open face mask (whose centroid lies behind the surface) outward
    normals give a positive volume. The flip is all-or-nothing: consistent input stays consistent.
    """
    faces = np.asarray(faces, np.int64)
    v = np.asarray(mean, np.float64)
    v = v - v.mean(0)
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    volume = float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum())
    return faces[:, [0, 2, 1]] if volume < 0 else faces


def read_landmarks_file(path: Path) -> np.ndarray:
    """68 vertex indices (0-based) from a ``.json`` (a list, or {"landmarks68": [...]}) or text file."""
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(path.read_text(encoding="utf-8"))
            values = doc.get("landmarks68") if isinstance(doc, dict) else doc
            if values is None:
                raise ModelFormatError(f"{path}: JSON object misses key 'landmarks68'")
            arr = np.asarray(values, np.float64)
        else:
            arr = np.asarray(path.read_text(encoding="utf-8").replace(",", " ").split(), np.float64)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelFormatError(f"{path}: unreadable landmark file ({exc}); expected 68 vertex indices") from exc
    return arr.reshape(-1)


def find_landmarks_file(model_path: Path) -> Path | None:
    """The model's own side file (:func:`landmark_override_file`), else ``landmarks68.{json,txt}``
    next to a model file (inside it, for a folder)."""
    own = landmark_override_file(model_path)
    if own is not None:
        return own
    folder = model_path if model_path.is_dir() else model_path.parent
    for name in ("landmarks68.json", "landmarks68.txt"):
        if (folder / name).is_file():
            return folder / name
    return None


def landmark_override_file(model_path: Path) -> Path | None:
    """``<model>.landmarks68.{json,txt}`` beside a model file (``<stem>``) or folder (``<name>``):
    the user's own choice of landmark vertices, e.g. written by ``training.landmark_convention``.
    It replaces whatever list the model carries (loaders read it first when they need a side
    file: :func:`find_landmarks_file`)."""
    stem = model_path.name if model_path.is_dir() else model_path.stem
    for suffix in (".landmarks68.json", ".landmarks68.txt"):
        candidate = model_path.parent / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def check_landmarks(values, n_verts: int, path: Path, base: int = 0) -> np.ndarray:
    """Validate 68 vertex indices (``base`` 0 or 1) and return them 0-based, (68,) int64."""
    arr = np.asarray(values, np.float64).reshape(-1)
    if arr.size != 68:
        raise ModelFormatError(f"{path}: expected 68 landmark vertex indices, got {arr.size}")
    if not np.all(arr == np.round(arr)):
        raise ModelFormatError(f"{path}: landmark indices must be integers")
    idx = arr.astype(np.int64) - base
    if idx.min() < 0 or idx.max() >= n_verts:
        raise ModelFormatError(f"{path}: landmark index out of range ({base}..{n_verts - 1 + base}, {base}-based)")
    return idx
