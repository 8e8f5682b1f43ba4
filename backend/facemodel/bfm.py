"""Basel Face Model loaders: Deep3D's ``BFM_model_front.mat``, raw BFM2009
``01_MorphableModel.mat`` (+ Guo et al.'s expression PCA ``Exp_Pca.bin``), BFM2017/2019 ``.h5``.

All return :class:`FaceModelData` in millimetres with 0-based, outward (CCW) triangles.

Units:
- Deep3D ``BFM_model_front.mat`` states no unit. Deep3D divided BFM2009's micrometres by 1e5,
  i.e. decimetres (mean face ~1.5 wide); we pick the power of ten that makes the mean face
  ~150 mm wide (:func:`~.common.guess_unit_scale`, ×100 for this file) and record it in
  ``extras["unit_scale"]``.
- BFM2009 is in micrometres (×1e-3); the mean face width is checked afterwards.
- BFM2017/2019 h5 files state no unit either; same width rule as Deep3D (they come out ×1, mm).

Coefficients: Deep3D's bases are already multiplied by their standard deviations (std None);
BFM2009's ``shapePC`` columns are unit vectors with ``shapeEV`` standard deviations;
BFM2017's ``pcaVariance`` are variances (std = sqrt). Identity/texture coefficients are thus
always in standard deviations. Albedo is mapped to [0,1] (BFM2009/Deep3D store 0–255).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from ..errors import ModelFormatError
from .common import (
    check_extent, check_landmarks, find_landmarks_file, guess_unit_scale, orient_outward, read_landmarks_file,
)
from .model import FaceModelData

__all__ = [
    "load_bfm_mat", "load_bfm_h5", "read_exp_pca_bin", "EXP_PCA_FILE", "EXP_STD_FILE", "EXP_IDX_FILE", "FRONT_IDX_FILE",
    "INFO_FILE",
]

EXP_PCA_FILE = "Exp_Pca.bin"      # Guo et al. (3DFace) expression PCA on BFM's trimmed 53,215 vertices
EXP_STD_FILE = "std_exp.txt"      # its per-component standard deviations
EXP_IDX_FILE = "BFM_exp_idx.mat"  # key trimIndex: 53,215 1-based indices into BFM2009's 53,490 vertices
FRONT_IDX_FILE = "BFM_front_idx.mat"  # key idx: 1-based indices into the 53,215 → 35,709-vertex front face
INFO_FILE = "facemodel_info.mat"  # Deep3D: key keypoints, 68 1-based indices into the front face
_DEEP3D_KEYS = ("meanshape", "idBase", "exBase", "tri", "keypoints")
_BFM09_KEYS = ("shapeMU", "shapePC", "shapeEV", "tl")


def _read_mat(path: Path) -> dict:
    """Variables of a MATLAB file (v4–v7 via scipy; v7.3/HDF5 via h5py, transposed back)."""
    try:
        return {k: v for k, v in scipy.io.loadmat(str(path)).items() if not k.startswith("__")}
    except NotImplementedError:  # v7.3 = HDF5
        try:
            import h5py  # optional: only for MATLAB v7.3 files
        except ImportError as exc:
            raise ModelFormatError(f"{path}: MATLAB v7.3 file; reading it needs h5py (pip install h5py)") from exc
        with h5py.File(path, "r") as fh:
            return {k: np.asarray(fh[k]).T for k in fh.keys() if isinstance(fh[k], h5py.Dataset)}
    except FileNotFoundError as exc:
        raise ModelFormatError(f"{path}: file not found") from exc
    except (ValueError, TypeError, OSError, scipy.io.matlab.MatReadError) as exc:  # MatReadError: truncated, junk
        raise ModelFormatError(f"{path}: not a readable MATLAB .mat file ({exc})") from exc


def _require(arrays: dict, keys, path: Path, what: str) -> None:
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ModelFormatError(
            f"{path}: not a {what}: missing key(s) {', '.join(repr(k) for k in missing)} "
            f"(has {', '.join(sorted(arrays)) or 'nothing'})"
        )


def _basis(columns: np.ndarray, n_verts: int, path: Path, key: str) -> np.ndarray:
    """(3N,K) interleaved xyz columns → (K,N,3) float32."""
    columns = np.asarray(columns, np.float32)
    if columns.ndim == 1:
        columns = columns[:, None]
    if columns.shape[0] != 3 * n_verts:
        raise ModelFormatError(f"{path}: '{key}' has {columns.shape[0]} rows, expected 3×{n_verts}")
    return np.ascontiguousarray(columns.T.reshape(columns.shape[1], n_verts, 3))


def _faces(tri: np.ndarray, n_verts: int, path: Path, key: str, base: int) -> np.ndarray:
    tri = np.asarray(tri)
    if tri.ndim != 2 or 3 not in tri.shape:
        raise ModelFormatError(f"{path}: '{key}' must be (F,3) triangles, got {tri.shape}")
    if tri.shape[1] != 3:
        tri = tri.T
    faces = tri.astype(np.int64) - base
    if faces.min() < 0 or faces.max() >= n_verts:
        raise ModelFormatError(f"{path}: '{key}' index out of range for {n_verts} vertices ({base}-based)")
    return faces


def _landmarks_from_side_file(path: Path, n_verts: int, what: str) -> np.ndarray:
    side = find_landmarks_file(path)
    if side is None:
        raise ModelFormatError(
            f"{path}: {what} has no 68-point landmark vertices; put {path.stem}.landmarks68.txt (or "
            f"landmarks68.json) next to it: 68 0-based vertex indices of the loaded mesh in iBUG order"
        )
    return check_landmarks(read_landmarks_file(side), n_verts, side)


def load_bfm_mat(path: str | Path) -> FaceModelData:
    """Read a BFM ``.mat``: Deep3D ``BFM_model_front.mat`` (key ``meanshape``) or raw BFM2009
    ``01_MorphableModel.mat`` (key ``shapeMU``; siblings ``Exp_Pca.bin``, ``std_exp.txt``,
    ``BFM_exp_idx.mat`` and optional ``BFM_front_idx.mat`` add expressions and the front crop).

    BFM2009 landmarks: with the front crop, Deep3D's ``facemodel_info.mat`` (``keypoints``,
    1-based into the front face) when present; otherwise a ``landmarks68`` side file (0-based
    indices of the loaded, cropped mesh). Guo et al.'s expression mean is not used (as in Deep3D).
    """
    path = Path(path)
    arrays = _read_mat(path)
    if "meanshape" in arrays:
        return _deep3d(arrays, path)
    if "shapeMU" in arrays:
        return _bfm2009(arrays, path)
    raise ModelFormatError(
        f"{path}: not a Basel Face Model .mat: missing key 'meanshape' (Deep3D BFM_model_front.mat) "
        f"or 'shapeMU' (BFM2009 01_MorphableModel.mat) (has {', '.join(sorted(arrays)) or 'nothing'})"
    )


def _deep3d(arrays: dict, path: Path) -> FaceModelData:
    _require(arrays, _DEEP3D_KEYS, path, "Deep3D BFM_model_front.mat")
    mean = np.asarray(arrays["meanshape"], np.float64).reshape(-1, 3)
    n = mean.shape[0]
    scale = guess_unit_scale(mean)
    mean_mm = mean * scale
    check_extent(mean_mm, path, f"×{scale:g} chosen from the data's extent")
    faces = orient_outward(mean_mm, _faces(arrays["tri"], n, path, "tri", base=1))
    tex_mean = tex_basis = None
    if "meantex" in arrays and "texBase" in arrays:
        tex_mean = (np.asarray(arrays["meantex"], np.float32).reshape(-1, 3) / 255.0).astype(np.float32)
        tex_basis = _basis(arrays["texBase"], n, path, "texBase") / 255.0
    region, names = None, ["face"]
    if "skinmask" in arrays and np.asarray(arrays["skinmask"]).size == n:
        region = np.where(np.asarray(arrays["skinmask"]).reshape(-1) > 0, 0, 1).astype(np.uint8)
        names = ["face", "non_skin"]
    return FaceModelData(
        name=path.stem,
        mean=mean_mm.astype(np.float32),
        faces=faces,
        id_basis=_basis(arrays["idBase"], n, path, "idBase") * np.float32(scale),
        exp_basis=_basis(arrays["exBase"], n, path, "exBase") * np.float32(scale),
        landmarks68=check_landmarks(arrays["keypoints"], n, path, base=1),
        tex_mean=tex_mean,
        tex_basis=tex_basis,
        region=region,
        region_names=names,
        face_mask_regions=(0,),
        source=f"Deep3D BFM_model_front.mat ({path.name})",
        license="Basel Face Model 2009 licence (non-commercial research)",
        extras={"unit_scale": np.float32(scale)},
    )


def read_exp_pca_bin(path: Path, n_verts: int) -> tuple[np.ndarray, np.ndarray]:
    """Guo et al.'s ``Exp_Pca.bin`` (the layout Deep3D/3DDFA read): little-endian int32 K, then
    float32 mean (3·n_verts), then float32 components K×(3·n_verts), each component xyz-interleaved
    over BFM's trimmed vertices. Returns (mean (N,3), basis (K,N,3)) in the file's units (µm).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if len(raw) < 4:
        raise ModelFormatError(f"{path}: truncated expression PCA file (no header)")
    k = int(np.frombuffer(raw[:4], "<i4")[0])
    expected = 4 + 4 * 3 * n_verts * (1 + k)
    if k <= 0 or len(raw) != expected:
        raise ModelFormatError(
            f"{path}: {len(raw)} bytes, expected {expected} for {k} components on {n_verts} vertices "
            f"(not Guo et al.'s Exp_Pca.bin for this BFM, or a mismatched {EXP_IDX_FILE})"
        )
    values = np.frombuffer(raw, "<f4", offset=4)
    mean = values[: 3 * n_verts].reshape(n_verts, 3)
    basis = values[3 * n_verts :].reshape(k, n_verts, 3)
    return mean.astype(np.float32), basis.astype(np.float32)


def _bfm2009(arrays: dict, path: Path) -> FaceModelData:
    _require(arrays, _BFM09_KEYS, path, "BFM2009 01_MorphableModel.mat")
    um = 1e-3  # micrometres → mm
    mean_full = np.asarray(arrays["shapeMU"], np.float64).reshape(-1, 3) * um
    n_full = mean_full.shape[0]
    id_full = _basis(arrays["shapePC"], n_full, path, "shapePC")
    id_std = np.asarray(arrays["shapeEV"], np.float32).reshape(-1) * np.float32(um)
    faces_full = _faces(arrays["tl"], n_full, path, "tl", base=1)
    has_tex = all(k in arrays for k in ("texMU", "texPC", "texEV"))
    folder = path.parent

    keep = np.arange(n_full)
    exp_basis = np.zeros((0, n_full, 3), np.float32)
    exp_std = None
    if (folder / EXP_PCA_FILE).is_file():
        for name in (EXP_IDX_FILE, EXP_STD_FILE):
            if not (folder / name).is_file():
                raise ModelFormatError(f"{folder / EXP_PCA_FILE}: needs {name} next to it to align the expression basis")
        idx_arrays = _read_mat(folder / EXP_IDX_FILE)
        _require(idx_arrays, ("trimIndex",), folder / EXP_IDX_FILE, "BFM expression index file")
        trim = np.asarray(idx_arrays["trimIndex"]).reshape(-1).astype(np.int64) - 1
        if trim.min() < 0 or trim.max() >= n_full:
            raise ModelFormatError(f"{folder / EXP_IDX_FILE}: trimIndex out of range 1..{n_full}")
        _exp_mean, exp_basis = read_exp_pca_bin(folder / EXP_PCA_FILE, trim.size)
        exp_basis = exp_basis * np.float32(um)
        try:
            exp_std = np.loadtxt(folder / EXP_STD_FILE, dtype=np.float32).reshape(-1)
        except ValueError as exc:
            raise ModelFormatError(f"{folder / EXP_STD_FILE}: unreadable ({exc})") from exc
        if exp_std.size != exp_basis.shape[0]:
            raise ModelFormatError(
                f"{folder / EXP_STD_FILE}: {exp_std.size} values for {exp_basis.shape[0]} expression components"
            )
        keep = trim
        if (folder / FRONT_IDX_FILE).is_file():
            front_arrays = _read_mat(folder / FRONT_IDX_FILE)
            _require(front_arrays, ("idx",), folder / FRONT_IDX_FILE, "BFM front-face index file")
            front = np.asarray(front_arrays["idx"]).reshape(-1).astype(np.int64) - 1
            if front.min() < 0 or front.max() >= trim.size:
                raise ModelFormatError(f"{folder / FRONT_IDX_FILE}: idx out of range 1..{trim.size}")
            keep, exp_basis = trim[front], exp_basis[:, front]

    # crop vertices to `keep` and keep the triangles whose three corners survive
    remap = np.full(n_full, -1, np.int64)
    remap[keep] = np.arange(keep.size)
    tri = remap[faces_full]
    tri = tri[(tri >= 0).all(1)]
    if tri.shape[0] == 0:
        raise ModelFormatError(f"{path}: no triangle survives the vertex crop; check {EXP_IDX_FILE}/{FRONT_IDX_FILE}")
    mean = mean_full[keep]
    check_extent(mean, path, "micrometres → mm")
    tex_mean = tex_basis = tex_std = None
    if has_tex:
        tex_mean = (np.asarray(arrays["texMU"], np.float32).reshape(-1, 3)[keep] / 255.0).astype(np.float32)
        tex_basis = _basis(arrays["texPC"], n_full, path, "texPC")[:, keep]
        tex_std = np.asarray(arrays["texEV"], np.float32).reshape(-1) / 255.0
    landmarks = None
    if keep.size != n_full and (folder / INFO_FILE).is_file() and (folder / FRONT_IDX_FILE).is_file():
        info = _read_mat(folder / INFO_FILE)
        if "keypoints" in info:
            landmarks = check_landmarks(info["keypoints"], keep.size, folder / INFO_FILE, base=1)
    if landmarks is None:
        landmarks = _landmarks_from_side_file(path, keep.size, "BFM2009")
    return FaceModelData(
        name=path.stem,
        mean=mean.astype(np.float32),
        faces=orient_outward(mean, tri),
        id_basis=np.ascontiguousarray(id_full[:, keep]),
        exp_basis=np.ascontiguousarray(exp_basis),
        landmarks68=landmarks,
        id_std=id_std,
        exp_std=exp_std,
        tex_mean=tex_mean,
        tex_basis=tex_basis,
        tex_std=tex_std,
        source=f"Basel Face Model 2009 ({path.name})" + (" + Guo et al. expression PCA" if exp_std is not None else ""),
        license="Basel Face Model 2009 licence (non-commercial research)",
        extras={"vertex_index": keep.astype(np.int32)},
    )


def load_bfm_h5(path: str | Path) -> FaceModelData:
    """Read a BFM2017/2019 (Scalismo) ``.h5``: ``shape/model/{mean,pcaBasis,pcaVariance}``,
    ``shape/representer/{points,cells}``, optional ``expression/model/...`` and ``color/model/...``.

    The expression model's mean is a mean *deformation* and is added to the shape mean.
    Landmarks come from a ``landmarks68`` side file (BFM ships named 3-D points, not iBUG-68).
    """
    path = Path(path)
    try:
        import h5py  # optional: only for MATLAB v7.3 files
    except ImportError as exc:
        raise ModelFormatError(f"{path}: reading BFM .h5 files needs h5py (pip install 'photohead[formats]')") from exc
    try:
        fh = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with fh:
        def get(key: str, required: bool = True):
            if key not in fh:
                if required:
                    raise ModelFormatError(f"{path}: not a BFM2017/2019 model: missing key '{key}'")
                return None
            return np.asarray(fh[key])

        mean = get("shape/model/mean").astype(np.float64).reshape(-1, 3)
        n = mean.shape[0]
        points = get("shape/representer/points")
        if points.size != 3 * n:
            raise ModelFormatError(f"{path}: shape/representer/points has {points.size // 3} points, mean has {n}")
        cells = get("shape/representer/cells")
        id_basis = _basis(get("shape/model/pcaBasis"), n, path, "shape/model/pcaBasis")
        id_std = np.sqrt(np.maximum(get("shape/model/pcaVariance").astype(np.float32).reshape(-1), 0))
        exp_basis, exp_std = np.zeros((0, n, 3), np.float32), None
        if "expression/model/pcaBasis" in fh:
            exp_basis = _basis(get("expression/model/pcaBasis"), n, path, "expression/model/pcaBasis")
            exp_std = np.sqrt(np.maximum(get("expression/model/pcaVariance").astype(np.float32).reshape(-1), 0))
            exp_mean = get("expression/model/mean", required=False)
            if exp_mean is not None:
                mean = mean + exp_mean.astype(np.float64).reshape(-1, 3)
        tex = None
        if "color/model/mean" in fh:
            tex = (
                get("color/model/mean").astype(np.float32).reshape(-1, 3),
                _basis(get("color/model/pcaBasis"), n, path, "color/model/pcaBasis"),
                np.sqrt(np.maximum(get("color/model/pcaVariance").astype(np.float32).reshape(-1), 0)),
            )
    scale = guess_unit_scale(mean)
    mean_mm = mean * scale
    check_extent(mean_mm, path, f"×{scale:g} chosen from the data's extent")
    faces = orient_outward(mean_mm, _faces(cells, n, path, "shape/representer/cells", base=0))
    return FaceModelData(
        name=path.stem,
        mean=mean_mm.astype(np.float32),
        faces=faces,
        id_basis=id_basis,
        exp_basis=exp_basis,
        landmarks68=_landmarks_from_side_file(path, n, "a BFM .h5 model"),
        id_std=id_std * np.float32(scale),
        exp_std=None if exp_std is None else exp_std * np.float32(scale),
        tex_mean=None if tex is None else tex[0],
        tex_basis=None if tex is None else tex[1],
        tex_std=None if tex is None else tex[2],
        source=f"Basel Face Model 2017/2019 ({path.name})",
        license="Basel Face Model licence (see the model's download terms)",
        extras={"unit_scale": np.float32(scale)},
    )
