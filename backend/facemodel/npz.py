"""Loader for Photohead's own ``.npz`` face-model format (ICT-FaceKit converted; see the
model folder's README for the array spec)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelFormatError
from ..io_utils import atomic_savez
from ..validate import one_line
from .model import FaceModelData
from .npz_cache import read_cached, write_cached

REQUIRED_KEYS = ("mean", "id_basis", "exp_basis", "faces", "landmarks68")


def _str(value) -> str:
    return str(value.item() if getattr(value, "shape", None) == () else value)


def load_npz(path: str | Path) -> FaceModelData:
    """Read a Photohead/ICT ``.npz`` model. Raises :class:`ModelFormatError` on a foreign file."""
    path = Path(path)
    loaded = read_cached(path)  # an uncompressed copy from an earlier load (npz_cache), else the file
    if loaded is None:
        loaded = _read_arrays(path)
        write_cached(path, loaded)
    return _model_data(path, loaded)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a model ``.npz``, checked for the required keys and pickled objects."""
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFormatError(f"{path}: not a readable .npz face model ({exc})") from exc
    with arrays:
        missing = [k for k in REQUIRED_KEYS if k not in arrays.files]
        if missing:
            raise ModelFormatError(
                f"{path}: not a Photohead face model: missing key(s) {', '.join(missing)} "
                f"(has {', '.join(arrays.files) or 'nothing'})"
            )
        loaded = {}
        for key in arrays.files:  # each array once: an NpzFile decompresses the member again on every access
            try:
                loaded[key] = arrays[key]
            except ValueError:  # an object array: reading it would unpickle
                raise ModelFormatError(
                    f"{path}: array '{key}' holds pickled Python objects, which Photohead never loads: "
                    "re-save the model with numeric arrays"
                ) from None
    return loaded


def _model_data(path: Path, loaded: dict[str, np.ndarray]) -> FaceModelData:
    """:class:`FaceModelData` from a model file's arrays, their shapes checked."""
    get = loaded.get
    mean = get("mean")
    if mean.ndim != 2 or mean.shape[1] != 3:
        raise ModelFormatError(f"{path}: 'mean' must be (V,3), got {mean.shape}")
    V = mean.shape[0]
    for key in ("id_basis", "exp_basis"):
        if get(key).ndim != 3 or get(key).shape[1:] != (V, 3):
            raise ModelFormatError(f"{path}: '{key}' must be (K,{V},3), got {get(key).shape}")
    region_names = [str(s) for s in get("region_names")] if get("region_names") is not None else ["face"]
    face_regions = tuple(i for i, n in enumerate(region_names) if n.startswith("face"))
    extras = {
        k: get(k)
        for k in ("jawline_right", "jawline_left", "jawline_right_ext", "jawline_left_ext", "fitting_verts", "rigid_verts", "quads", "quads_uv")
        if get(k) is not None
    }
    name = _str(get("name")) if get("name") is not None else path.stem
    try:  # dtype conversions: e.g. faces stored as strings
        return FaceModelData(
            name=name,
            mean=mean.astype(np.float32),
            faces=get("faces").astype(np.int64),
            id_basis=get("id_basis"),
            exp_basis=get("exp_basis"),
            landmarks68=get("landmarks68").astype(np.int64),
            uv=get("uv"),
            faces_uv=get("faces_uv"),
            id_std=get("id_std"),
            exp_std=get("exp_std"),
            exp_names=[str(s) for s in get("exp_names")] if get("exp_names") is not None else [],
            tex_mean=get("tex_mean"),
            tex_basis=get("tex_basis"),
            tex_std=get("tex_std"),
            region=get("region"),
            region_names=region_names,
            face_mask_regions=face_regions or (0,),
            source=_str(get("source")) if get("source") is not None else "",
            license=_str(get("license")) if get("license") is not None else "",
            extras=extras,
        )
    except (ValueError, TypeError) as exc:
        raise ModelFormatError(f"{path}: an array has the wrong type ({one_line(exc)})") from None


def save_npz(data: FaceModelData, path: str | Path) -> Path:
    """Write ``data`` in the Photohead npz format, atomically. Returns the path."""
    arrays = {
        "name": np.array(data.name),
        "mean": np.asarray(data.mean, np.float32),
        "id_basis": np.asarray(data.id_basis, np.float32),
        "exp_basis": np.asarray(data.exp_basis, np.float32),
        "faces": np.asarray(data.faces, np.int32),
        "landmarks68": np.asarray(data.landmarks68, np.int32),
        "exp_names": np.array(data.exp_names or [f"exp{i:03d}" for i in range(len(data.exp_basis))]),
        "region_names": np.array(data.region_names),
        "unit": np.array("mm"),
        "source": np.array(data.source),
        "license": np.array(data.license),
    }
    optional = {
        "uv": data.uv, "faces_uv": data.faces_uv, "id_std": data.id_std, "exp_std": data.exp_std,
        "tex_mean": data.tex_mean, "tex_basis": data.tex_basis, "tex_std": data.tex_std, "region": data.region,
    }
    arrays.update({k: np.asarray(v) for k, v in optional.items() if v is not None})
    arrays.update({k: np.asarray(v) for k, v in data.extras.items()})
    path = Path(path)
    atomic_savez(path, arrays)
    return path
