"""A face model from a folder of OBJ blendshapes (same topology in every file).

Layout, without a manifest:
- ``neutral.obj``: the mean shape, its polygons (fan-triangulated) and UVs (if any);
- ``identity*.obj``: identity shapes, ``expression*.obj``: expression shapes, each in natural
  name order (``identity2`` before ``identity10``); basis = shape − neutral, coefficients 1 = the
  full shape (``id_std`` ones). Expression names are the file stems without the
  ``expression`` prefix (``expression_smile.obj`` → ``smile``);
- ``landmarks68.json`` (a list, or ``{"landmarks68": [...]}``) or ``landmarks68.txt``:
  68 0-based vertex indices in iBUG order. Required.

With ``manifest.json`` (keys; all paths relative to the folder)::

    {"neutral": "base.obj", "identity": ["a.obj", ...], "expression": {"smile": "s.obj", ...},
     "identity_std": [...], "unit": "cm", "landmarks68": "lm.txt" | [68 ints], "name": "..."}

``expression`` may also be a list of files (names = stems). Units: ``unit`` (um/mm/cm/dm/m) if
given, else the power of ten that makes the neutral ~150 mm wide. An ICT-FaceKit
``FaceXModel/`` folder (``generic_neutral_mesh.obj`` + ``vertex_indices.json``) is converted
with :mod:`.ict_convert` instead (whatever identity/expression OBJs it holds).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..errors import ModelFormatError
from .common import (
    check_extent, check_landmarks, find_landmarks_file, guess_unit_scale, orient_outward, read_landmarks_file,
    unit_scale,
)
from .ict_convert import ICTConvertSettings, convert_ict, is_ict_folder
from .model import FaceModelData
from .objio import read_obj, read_obj_vertices

__all__ = ["load_obj_folder", "MANIFEST_NAME", "NEUTRAL_NAME"]

MANIFEST_NAME = "manifest.json"
NEUTRAL_NAME = "neutral.obj"


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.stem)]


def _exp_name(stem: str) -> str:
    rest = re.sub(r"^expression[_\-\s]?", "", stem, flags=re.I)
    return stem if not rest or rest.isdigit() else rest


def _manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path}: unreadable manifest ({exc})") from exc
    if not isinstance(doc, dict) or "neutral" not in doc:
        raise ModelFormatError(f"{path}: manifest misses key 'neutral' (the mean-shape OBJ)")
    return doc


def load_obj_folder(path: str | Path) -> FaceModelData:
    """Read a folder of OBJ blendshapes (see the module docstring for the layout)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ModelFormatError(f"{folder}: not a folder of OBJ blendshapes")

    if is_ict_folder(folder):
        return convert_ict(folder, ICTConvertSettings(allow_partial=True))

    doc = _manifest(folder)
    where = folder / MANIFEST_NAME if doc is not None else folder
    if doc is not None:
        neutral_path = folder / doc["neutral"]
        id_paths = [folder / p for p in doc.get("identity", [])]
        exp = doc.get("expression", [])
        if isinstance(exp, dict):
            exp_names, exp_paths = list(exp), [folder / p for p in exp.values()]
        else:
            exp_paths = [folder / p for p in exp]
            exp_names = [p.stem for p in exp_paths]
    else:
        neutral_path = folder / NEUTRAL_NAME
        if not neutral_path.is_file():
            raise ModelFormatError(
                f"{folder}: no {NEUTRAL_NAME} and no {MANIFEST_NAME}; an OBJ model folder needs the neutral "
                f"mesh as {NEUTRAL_NAME} (plus identity*.obj / expression*.obj) or a manifest listing them"
            )
        id_paths = sorted(folder.glob("identity*.obj"), key=_natural_key)
        exp_paths = sorted(folder.glob("expression*.obj"), key=_natural_key)
        exp_names = [_exp_name(p.stem) for p in exp_paths]
    for p in [neutral_path, *id_paths, *exp_paths]:
        if not p.is_file():
            raise ModelFormatError(f"{where}: lists {p.name}, which does not exist")

    neutral = read_obj(neutral_path)
    verts = neutral.vertices
    n = verts.shape[0]
    if doc is not None and "unit" in doc:
        scale, how = unit_scale(str(doc["unit"]), where), f"unit {doc['unit']!r} from the manifest"
    else:
        scale = guess_unit_scale(verts)
        how = f"×{scale:g} chosen from the data's extent"
    mean = verts * scale
    check_extent(mean, neutral_path, how)

    def deltas(paths: list[Path]) -> np.ndarray:
        out = np.zeros((len(paths), n, 3), np.float32)
        for i, p in enumerate(paths):
            v = read_obj_vertices(p)
            if v.shape[0] != n:
                raise ModelFormatError(
                    f"{p}: {v.shape[0]} vertices, but {neutral_path.name} has {n} (blendshapes must share topology)"
                )
            out[i] = (v - verts) * scale
        return out

    id_std = None
    if doc is not None and "identity_std" in doc:
        id_std = np.asarray(doc["identity_std"], np.float32).reshape(-1)
        if id_std.size != len(id_paths):
            raise ModelFormatError(f"{where}: identity_std has {id_std.size} values for {len(id_paths)} identity shapes")

    # landmarks
    lm_spec = doc.get("landmarks68") if doc is not None else None
    if isinstance(lm_spec, list):
        landmarks = check_landmarks(lm_spec, n, where)
    else:
        lm_path = folder / lm_spec if isinstance(lm_spec, str) else find_landmarks_file(folder)
        if lm_path is None or not lm_path.is_file():
            raise ModelFormatError(
                f"{folder}: no landmark file; add landmarks68.json or landmarks68.txt with 68 0-based "
                f"vertex indices of {neutral_path.name} in iBUG order"
            )
        landmarks = check_landmarks(read_landmarks_file(lm_path), n, lm_path)

    faces_raw = neutral.triangles()
    faces = orient_outward(mean, faces_raw)
    flipped = not np.array_equal(faces, faces_raw)
    uv = faces_uv = None
    if neutral.poly_uv is not None:
        uv = neutral.uv.astype(np.float32)
        faces_uv = neutral.triangles(uv=True)
        if flipped:
            faces_uv = faces_uv[:, [0, 2, 1]]
    return FaceModelData(
        name=str(doc.get("name", folder.name)) if doc is not None else folder.name,
        mean=mean.astype(np.float32),
        faces=faces,
        id_basis=deltas(id_paths),
        exp_basis=deltas(exp_paths),
        landmarks68=landmarks,
        uv=uv,
        faces_uv=faces_uv,
        id_std=id_std,
        exp_names=exp_names,
        source=f"OBJ blendshape folder ({folder.name})",
        extras={"unit_scale": np.float32(scale)},
    )
