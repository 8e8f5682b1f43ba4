"""Convert ICT-FaceKit's ``FaceXModel/`` folder into Photohead's npz face model (numpy only).

Input (ICT Face Model Light, MIT): ``generic_neutral_mesh.obj``, ``identity000..099.obj``,
one OBJ per expression named in ``vertex_indices.json`` (key ``expressions``), and
``vertex_indices.json`` itself. Every OBJ is the full 26,719-vertex ICT mesh in centimetres.

Output: the spec in ``ict_facekit/README.md`` next to ``ict_head.npz``:
- keeps ICT geometry #0 *Face* and #1 *Head and Neck*: vertices 0–11247 and polygons
  0–11143, a prefix of ICT's order (so ICT vertex indices < 11248 are unchanged);
- centimetres → millimetres (×10); ``id_basis[i] = identity{i:03d} − neutral``,
  ``exp_basis[j] = expression_j − neutral``; ``id_std`` all ones (the modes are pre-scaled);
- quads kept (``quads``/``quads_uv``) and triangulated as 2q = (a,b,c), 2q+1 = (a,c,d);
- UVs: only the texture coordinates the kept polygons use, renumbered in their original order;
- ``landmarks68`` = ``idx_to_landmark_verts`` from ``vertex_indices.json`` *unchanged*: ICT lists
  its 68 landmarks in Multi-PIE order, which is the iBUG-68 order (0–16 jaw, 17–26 brows,
  27–35 nose, 36–47 eyes, 48–67 mouth), so the mapping is the identity. Verified against the
  shipped npz and geometrically (left/right pairs mirror in x, features in vertical order);
- ``jawline_*``: ICT's alternative contour vertices, published in ICT's README (not in the
  JSON), copied below as data;
- ``fitting_verts`` = ``idx_to_fitting_verts``; ``rigid_verts`` = ``idx_to_rigid_verts`` that
  fall in the kept subset (order kept);
- the other 15 geometries (eyes, sockets, gums, teeth, lashes) go into ``FaceModelData.parts``
  (:mod:`.parts`; written as ``ict_parts.npz`` beside the head: float16 identity deltas, global
  vertex ids, ICT's UVs and materials);
- ``region``: 0 ``face_narrow`` (ICT narrow face area, vertices 0–6705), 1 ``face_outer``
  (rest of ICT's full face area, 6706–9408), 2 ``head_neck`` (9409–11247).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelFormatError
from ..progress import CancelToken, ProgressFn, check_cancel
from .model import FaceModelData
from .npz import save_npz
from .objio import read_obj, read_obj_vertices
from .parts import ict_parts_from_obj, parts_file_for, save_parts_npz

__all__ = [
    "ICT_REPOSITORY", "ICT_COMMIT", "ICT_SOURCE", "ICT_NEUTRAL", "ICT_INDEX_FILE", "ICTConvertSettings",
    "ict_file_names", "convert_ict", "convert_ict_to_npz", "is_ict_folder",
]

ICT_REPOSITORY = "https://github.com/ICT-VGL/ICT-FaceKit"
ICT_COMMIT = "da5f95a607f5e6b37755b38d3385d7f2853732e5"
ICT_SOURCE = f"{ICT_REPOSITORY}@{ICT_COMMIT} (FaceXModel, ICT Face Model Light)"
ICT_NEUTRAL = "generic_neutral_mesh.obj"
ICT_INDEX_FILE = "vertex_indices.json"

N_VERTS_FULL = 26719          # whole ICT mesh (all 17 geometries)
N_POLYS_FULL = 26384
N_UV_FULL = 28911
N_VERTS = 11248               # geometries #0 Face + #1 Head and Neck
N_POLYS = 11144
N_IDENTITY = 100
FACE_NARROW_END = 6706        # ICT "narrow face area" = vertices 0..6705
FACE_FULL_END = 9409          # ICT "full face area" = geometry #0 = vertices 0..9408
CM_TO_MM = 10.0

# ICT-FaceKit README, "Facial Landmarks" (vertex indices, 0-based; MIT-licensed data).
JAWLINE_RIGHT = (1278, 1272, 12, 1834, 243, 781, 2199, 1447)
JAWLINE_LEFT = (3661, 4390, 3022, 2484, 4036, 2253, 3490, 3496)
JAWLINE_RIGHT_EXT = (1280, 1278, 1275, 1272, 1248, 12, 820, 1834, 1902, 243, 844, 781, 1673, 2199, 801, 1447, 800)
JAWLINE_LEFT_EXT = (3041, 3661, 3042, 4390, 3880, 3022, 3085, 2484, 4102, 4036, 3061, 2253, 3466, 3490, 3493, 3496, 3498)

REGION_NAMES = ("face_narrow", "face_outer", "head_neck")


@dataclass
class ICTConvertSettings:
    """What to convert.

    - ``n_identity``: identity modes to read (``identity000`` .. ``identity{n-1:03d}``); None = all 100.
    - ``expressions``: expression names to read (OBJ stems); None = every name in
      ``vertex_indices.json['expressions']`` (53), in that order.
    - ``allow_partial``: with None above, take only the identity/expression OBJs that exist
      (identities must still be contiguous from 000). Off by default: a full conversion fails
      loudly when a file is missing. A partial model says so in its ``source`` string.
    - ``source``/``license``: the strings stored in the npz.
    """

    n_identity: int | None = None
    expressions: Sequence[str] | None = None
    allow_partial: bool = False
    source: str = ICT_SOURCE
    license: str = "MIT"


def ict_file_names(index: dict, n_identity: int = N_IDENTITY) -> list[str]:
    """Every file of a full ``FaceXModel/`` conversion: neutral, identities, expressions, index JSON."""
    return (
        [ICT_NEUTRAL]
        + [f"identity{i:03d}.obj" for i in range(n_identity)]
        + [f"{name}.obj" for name in index["expressions"]]
        + [ICT_INDEX_FILE]
    )


def is_ict_folder(path: str | Path) -> bool:
    """True when ``path`` looks like ICT's ``FaceXModel/`` (neutral OBJ + vertex_indices.json)."""
    path = Path(path)
    return (path / ICT_NEUTRAL).is_file() and (path / ICT_INDEX_FILE).is_file()


def _read_index(src: Path) -> dict:
    path = src / ICT_INDEX_FILE
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelFormatError(f"{path}: missing; {src} is not an ICT-FaceKit FaceXModel folder") from exc
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path}: unreadable ICT vertex index file ({exc})") from exc
    if not isinstance(index, dict):
        raise ModelFormatError(f"{path}: expected a JSON object with ICT's index lists")
    for key in ("expressions", "idx_to_landmark_verts", "idx_to_fitting_verts", "idx_to_rigid_verts"):
        if key not in index:
            raise ModelFormatError(f"{path}: missing key '{key}' (not ICT-FaceKit's vertex_indices.json)")
    if len(index["idx_to_landmark_verts"]) != 68:
        count = len(index["idx_to_landmark_verts"])
        raise ModelFormatError(f"{path}: 'idx_to_landmark_verts' has {count} entries, expected 68")
    return index


def _subset_indices(values: Sequence[int], what: str, path: Path, require_all: bool) -> np.ndarray:
    arr = np.asarray(values, np.int64)
    inside = (arr >= 0) & (arr < N_VERTS)
    if require_all and not inside.all():
        raise ModelFormatError(f"{path}: {what} has vertices outside ICT's face/head subset 0..{N_VERTS - 1}")
    return arr[inside].astype(np.int32)


def _check_shape(verts: np.ndarray, path: Path) -> None:
    if verts.shape != (N_VERTS_FULL, 3):
        raise ModelFormatError(
            f"{path}: has {verts.shape[0]} vertices, expected ICT's {N_VERTS_FULL} (wrong file or ICT version)"
        )
    if not np.isfinite(verts).all():
        raise ModelFormatError(f"{path}: has non-finite vertex coordinates")


def convert_ict(
    src_dir: str | Path,
    settings: ICTConvertSettings | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> FaceModelData:
    """Read ICT's ``FaceXModel/`` folder into :class:`FaceModelData` (mm, face/head subset).

    Raises :class:`ModelFormatError` naming the file on a missing/foreign input.
    """
    src = Path(src_dir)
    settings = settings or ICTConvertSettings()
    if not src.is_dir():
        raise ModelFormatError(f"{src}: not a folder (expected ICT-FaceKit's FaceXModel/ folder)")
    index = _read_index(src)
    index_path = src / ICT_INDEX_FILE

    # identity and expression files to read
    if settings.n_identity is not None:
        identity_files = [src / f"identity{i:03d}.obj" for i in range(settings.n_identity)]
    elif settings.allow_partial:
        identity_files = []
        while (src / f"identity{len(identity_files):03d}.obj").is_file() and len(identity_files) < N_IDENTITY:
            identity_files.append(src / f"identity{len(identity_files):03d}.obj")
    else:
        identity_files = [src / f"identity{i:03d}.obj" for i in range(N_IDENTITY)]
    if settings.expressions is not None:
        exp_names = list(settings.expressions)
    elif settings.allow_partial:
        exp_names = [n for n in index["expressions"] if (src / f"{n}.obj").is_file()]
    else:
        exp_names = list(index["expressions"])
    wanted = [src / ICT_NEUTRAL] + identity_files + [src / f"{n}.obj" for n in exp_names]
    missing = [p.name for p in wanted if not p.is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ModelFormatError(
            f"{src}: missing ICT file(s) {shown}; fetch the whole FaceXModel folder "
            f"(`photohead models fetch ict`) or convert a partial folder explicitly"
        )

    total = len(wanted)
    report = progress or (lambda fraction, message: None)
    report(0.0, f"reading {ICT_NEUTRAL}")
    neutral = read_obj(src / ICT_NEUTRAL)
    _check_shape(neutral.vertices, src / ICT_NEUTRAL)
    if neutral.counts.size != N_POLYS_FULL:
        raise ModelFormatError(f"{src / ICT_NEUTRAL}: has {neutral.counts.size} polygons, expected {N_POLYS_FULL}")
    try:
        quads = neutral.polygons(0, N_POLYS)
        quads_uv_full = neutral.polygons(0, N_POLYS, uv=True)
    except ValueError as exc:
        raise ModelFormatError(
            f"{src / ICT_NEUTRAL}: polygons 0..{N_POLYS - 1} are not all UV-mapped quads ({exc})"
        ) from exc
    if quads.shape[1] != 4 or quads.max() >= N_VERTS:
        raise ModelFormatError(f"{src / ICT_NEUTRAL}: polygons 0..{N_POLYS - 1} must be quads on vertices < {N_VERTS}")
    uv_used, quads_uv = np.unique(quads_uv_full, return_inverse=True)
    quads_uv = quads_uv.reshape(quads_uv_full.shape)
    neutral_cm = neutral.vertices

    mean = (neutral_cm[:N_VERTS] * CM_TO_MM).astype(np.float32)

    def delta(path: Path) -> np.ndarray:  # (26719,3) mm, the whole ICT mesh
        verts = read_obj_vertices(path)
        _check_shape(verts, path)
        return (verts - neutral_cm) * CM_TO_MM

    n_parts = N_VERTS_FULL - N_VERTS  # eyes, sockets, teeth, lashes (backend.facemodel.parts)
    id_basis = np.zeros((len(identity_files), N_VERTS, 3), np.float32)
    parts_id = np.zeros((len(identity_files), n_parts, 3), np.float16)
    for i, path in enumerate(identity_files):
        check_cancel(cancel)
        report((1 + i) / total, f"reading {path.name}")
        full = delta(path)
        id_basis[i], parts_id[i] = full[:N_VERTS], full[N_VERTS:]
    exp_basis = np.zeros((len(exp_names), N_VERTS, 3), np.float32)
    parts_exp = np.zeros((len(exp_names), n_parts, 3), np.float32)
    for j, name in enumerate(exp_names):
        check_cancel(cancel)
        report((1 + len(identity_files) + j) / total, f"reading {name}.obj")
        full = delta(src / f"{name}.obj")
        exp_basis[j], parts_exp[j] = full[:N_VERTS], full[N_VERTS:]

    faces = np.stack([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]], axis=1).reshape(-1, 3)
    faces_uv = np.stack([quads_uv[:, [0, 1, 2]], quads_uv[:, [0, 2, 3]]], axis=1).reshape(-1, 3)
    region = np.full(N_VERTS, 2, np.uint8)
    region[:FACE_FULL_END] = 1
    region[:FACE_NARROW_END] = 0
    extras = {
        "quads": quads.astype(np.int32),
        "quads_uv": quads_uv.astype(np.int32),
        "jawline_right": np.asarray(JAWLINE_RIGHT, np.int32),
        "jawline_left": np.asarray(JAWLINE_LEFT, np.int32),
        "jawline_right_ext": np.asarray(JAWLINE_RIGHT_EXT, np.int32),
        "jawline_left_ext": np.asarray(JAWLINE_LEFT_EXT, np.int32),
        "fitting_verts": _subset_indices(index["idx_to_fitting_verts"], "idx_to_fitting_verts", index_path, True),
        "rigid_verts": _subset_indices(index["idx_to_rigid_verts"], "idx_to_rigid_verts", index_path, False),
    }
    partial = len(identity_files) != N_IDENTITY or exp_names != list(index["expressions"])
    source = settings.source + (
        f" [partial: {len(identity_files)} identity modes, {len(exp_names)} expressions]" if partial else ""
    )
    parts = ict_parts_from_obj(
        neutral, src / ICT_NEUTRAL, (neutral_cm[N_VERTS:] * CM_TO_MM).astype(np.float32), parts_id, parts_exp,
        exp_names, source, settings.license,
    )
    report(1.0, "converted")
    return FaceModelData(
        name="ict_head",
        mean=mean,
        faces=faces.astype(np.int64),
        id_basis=id_basis,
        exp_basis=exp_basis,
        landmarks68=_subset_indices(index["idx_to_landmark_verts"], "idx_to_landmark_verts", index_path, True),
        uv=neutral.uv[uv_used].astype(np.float32),
        faces_uv=faces_uv.astype(np.int64),
        id_std=np.ones(len(identity_files), np.float32),
        exp_std=None,
        exp_names=exp_names,
        region=region,
        region_names=list(REGION_NAMES),
        face_mask_regions=(0, 1),
        source=source,
        license=settings.license,
        extras=extras,
        parts=parts,
    )


def convert_ict_to_npz(
    src_dir: str | Path,
    out_path: str | Path,
    settings: ICTConvertSettings | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Convert ``src_dir`` (ICT ``FaceXModel/``) and write ``out_path`` atomically, with the parts
    (eyes, sockets, teeth, lashes) in :func:`.parts.parts_file_for` beside it. Returns the path."""
    data = convert_ict(src_dir, settings, progress, cancel)
    save_parts_npz(data.parts, parts_file_for(out_path))
    return save_npz(data, out_path)
