"""Face models (3DMMs): the :class:`FaceModel` and one loader per file format."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import ModelFormatError
from ..validate import check_model_arrays
from .bfm import load_bfm_h5, load_bfm_mat
from .common import check_landmarks, landmark_override_file, read_landmarks_file
from .flame import load_flame_pkl
from .model import FaceModel, FaceModelData
from .npz import load_npz
from .objdir import load_obj_folder
from .parts import load_parts_npz, match_parts, parts_file_for
from .search import DEFAULT_MODEL, cache_dir, find_model, search_path

__all__ = [
    "FaceModel", "FaceModelData", "load_model", "load_model_data", "load_default",
    "find_model", "search_path", "cache_dir", "DEFAULT_MODEL",
]


def load_model_data(path: str | Path) -> FaceModelData:
    """Read any supported model file/folder into :class:`FaceModelData` (format by name). An npz
    model's parts (eyes, teeth, ...) come from :func:`.parts.parts_file_for` beside it when present. A
    ``<model>.landmarks68.json`` (or ``.txt``) beside it replaces the model's landmark vertices
    (:func:`.common.landmark_override_file`)."""
    path = Path(path)
    data = _load_format(path)
    check_model_arrays(data, path)  # dtypes, shapes, index ranges: one line here, not an IndexError mid-fit
    parts_path = parts_file_for(path)
    if data.parts is None and path.suffix.lower() == ".npz" and parts_path.is_file():
        parts = match_parts(load_parts_npz(parts_path), data.mean.shape[0], data.id_basis.shape[0],
                            list(data.exp_names), str(parts_path))
        data = dataclasses.replace(data, parts=parts)
    override = landmark_override_file(path)
    if override is None:
        return data
    ids = check_landmarks(read_landmarks_file(override), data.mean.shape[0], override)
    return dataclasses.replace(data, landmarks68=ids, landmarks_file=str(override))


def _load_format(path: Path) -> FaceModelData:
    name = path.name.lower()
    if path.is_dir():
        return load_obj_folder(path)
    if name.endswith(".npz"):
        return load_npz(path)
    if name.endswith(".mat"):
        return load_bfm_mat(path)
    if name.endswith((".h5", ".hdf5")):
        return load_bfm_h5(path)
    if name.endswith(".pkl"):
        return load_flame_pkl(path)
    raise ModelFormatError(
        f"{path}: unknown face model format (expected .npz, BFM .mat/.h5, FLAME .pkl or a folder of OBJ blendshapes)"
    )


def load_model(path: str | Path) -> FaceModel:
    """Load a face model file into a :class:`FaceModel` (CPU; move it with ``.to()``)."""
    return FaceModel(load_model_data(path))


def load_default(explicit: str | Path | None = None) -> FaceModel:
    """The default model (ICT-FaceKit npz) from ``explicit``/``$PHOTOHEAD_MODEL``/search path."""
    return load_model(find_model(DEFAULT_MODEL, explicit))
