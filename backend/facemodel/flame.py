"""FLAME ``generic_model.pkl`` loader that needs neither chumpy nor Python 2.

FLAME's pickle holds chumpy ``Ch`` objects (``shapedirs``) and a scipy sparse
``J_regressor``. A restricted :class:`pickle.Unpickler` maps every ``chumpy.*`` class to
:class:`_ChumpyStandIn`, which keeps the wrapped ndarray (the ``x`` entry of its state), and
refuses any class outside a short allow-list (numpy arrays, scipy sparse matrices), so a
foreign pickle cannot run code.

Result: ``mean`` = ``v_template`` (m → mm, ×1000), ``id_basis`` = the first ``n_shape`` (300)
``shapedirs`` components, ``exp_basis`` = the rest (100), as FLAME's betas / psi (taken as
is: no extra std scaling), ``faces`` = ``f``. Pose data (``J_regressor``, ``weights``,
``kintree_table``, ``posedirs``) are kept in ``extras`` (posedirs in mm) for callers that pose
the jaw/neck; the linear model itself is FLAME at zero pose.

Landmarks: FLAME's 68-point embedding is a separate file (barycentric coordinates in
triangles). Pass it as ``landmark_embedding`` or put it next to the model; accepted:
DECA's ``landmark_embedding.npy`` (``full_lmk_faces_idx``/``full_lmk_bary_coords``, 68
points), a pickle/npz/npy with ``lmk_face_idx`` + ``lmk_b_coords`` for 68 points, or a plain
``landmarks68.{txt,json}`` of vertex indices. Each embedded point becomes the triangle
corner with the largest barycentric weight (≤ one edge's length from the true point).
FLAME's own ``flame_static_embedding.pkl`` has only the 51 inner points (no jaw contour,
which FLAME makes pose-dependent); it is refused with that explanation, and without any
embedding loading fails with :class:`ModelFormatError`: the fitting needs all 68.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.sparse

from ..errors import ModelFormatError
from .common import check_extent, check_landmarks, find_landmarks_file, orient_outward, read_landmarks_file
from .model import FaceModelData

__all__ = ["load_flame_pkl", "read_flame_pickle", "load_landmark_embedding", "EMBEDDING_NAMES"]

M_TO_MM = 1000.0
EMBEDDING_NAMES = ("landmark_embedding.npy", "flame_landmark_embedding_68.pkl", "landmarks68.json", "landmarks68.txt")
_REQUIRED = ("v_template", "shapedirs", "f")


class _ChumpyStandIn:
    """Takes the place of any chumpy class while unpickling; keeps its state dict."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.state: dict = {}

    def __setstate__(self, state) -> None:
        if isinstance(state, tuple):  # (dict, slotstate)
            state = state[0] or {}
        self.state = dict(state) if isinstance(state, dict) else {}

    def array(self) -> np.ndarray | None:
        value = self.state.get("x")
        return np.asarray(value) if value is not None else None


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"),
    ("__builtin__", "set"), ("builtins", "set"), ("__builtin__", "frozenset"), ("builtins", "frozenset"),
    ("_codecs", "encode"),  # protocol-2 pickles written by Python 3 carry bytes this way
}
_SPARSE = {"csc_matrix", "csr_matrix", "coo_matrix"}


class _FlameUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module.startswith("scipy.sparse") and name in _SPARSE:
            return getattr(scipy.sparse, name)
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in a FLAME pickle")


def _plain(value):
    """Stand-ins → ndarray; sparse matrices stay sparse; everything else as is."""
    if isinstance(value, _ChumpyStandIn):
        arr = value.array()
        if arr is None:
            raise ModelFormatError(f"chumpy object without an 'x' array (state keys: {sorted(value.state)})")
        return arr
    return value


def read_flame_pickle(path: str | Path) -> dict:
    """Unpickle a FLAME/SMPL-style model file without chumpy (py2 pickles: latin1)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            obj = _FlameUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError as exc:
        raise ModelFormatError(f"{path}: file not found") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as exc:
        raise ModelFormatError(f"{path}: not a readable FLAME pickle ({exc})") from exc
    if not isinstance(obj, dict):
        raise ModelFormatError(f"{path}: expected a dict of FLAME arrays, got {type(obj).__name__}")
    try:
        return {str(k): _plain(v) for k, v in obj.items()}
    except ModelFormatError as exc:
        raise ModelFormatError(f"{path}: {exc}") from exc


def _read_npy(path: Path) -> dict:
    """A ``.npy``: numeric arrays directly; DECA's dict-in-an-object-array through the
    restricted unpickler (never ``allow_pickle=True``)."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            _shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            _shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ModelFormatError(f"{path}: unsupported .npy version {version}")
        if dtype != object:
            fh.seek(0)
            return {"landmarks68": np.load(fh, allow_pickle=False)}
        arr = _FlameUnpickler(fh, encoding="latin1").load()
    arr = np.asarray(arr)
    value = arr.item() if arr.shape == () else arr
    if not isinstance(value, dict):
        raise ModelFormatError(f"{path}: expected a dict of landmark arrays in the object array")
    return {str(k): _plain(v) for k, v in value.items()}


def _embedding_arrays(path: Path) -> dict:
    suffix = path.suffix.lower()
    try:
        if suffix == ".pkl":
            return read_flame_pickle(path)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if suffix == ".npy":
            return _read_npy(path)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelFormatError(f"{path}: unreadable landmark embedding ({exc})") from exc
    return {"landmarks68": read_landmarks_file(path)}


def load_landmark_embedding(path: str | Path, faces: np.ndarray, n_verts: int) -> np.ndarray:
    """68 vertex indices (0-based) from a FLAME landmark embedding or a plain index file."""
    path = Path(path)
    arrays = _embedding_arrays(path)
    if "landmarks68" in arrays:
        return check_landmarks(arrays["landmarks68"], n_verts, path)
    for face_key, bary_key in (("full_lmk_faces_idx", "full_lmk_bary_coords"), ("lmk_face_idx", "lmk_b_coords")):
        if face_key in arrays and bary_key in arrays:
            tri = np.asarray(arrays[face_key], np.int64).reshape(-1)
            bary = np.asarray(arrays[bary_key], np.float64).reshape(-1, 3)
            if tri.size == 51:
                raise ModelFormatError(
                    f"{path}: a 51-point static embedding (no jaw contour; FLAME makes it pose-dependent). "
                    f"Use a 68-point embedding, e.g. DECA's landmark_embedding.npy, or a landmarks68.txt"
                )
            if tri.size != 68 or bary.shape[0] != 68:
                raise ModelFormatError(f"{path}: '{face_key}' has {tri.size} points, expected 68")
            if tri.min() < 0 or tri.max() >= faces.shape[0]:
                raise ModelFormatError(f"{path}: '{face_key}' out of range for {faces.shape[0]} triangles")
            corner = bary.argmax(1)
            return faces[tri, corner].astype(np.int64)
    raise ModelFormatError(
        f"{path}: no landmark embedding found: missing key 'full_lmk_faces_idx' (DECA) or 'lmk_face_idx' "
        f"(has {', '.join(sorted(arrays)) or 'nothing'})"
    )


def load_flame_pkl(
    path: str | Path,
    landmark_embedding: str | Path | None = None,
    n_shape: int = 300,
) -> FaceModelData:
    """Read FLAME ``generic_model.pkl`` (see the module docstring for units, split and landmarks)."""
    path = Path(path)
    arrays = read_flame_pickle(path)
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise ModelFormatError(
            f"{path}: not a FLAME model: missing key(s) {', '.join(repr(k) for k in missing)} "
            f"(has {', '.join(sorted(arrays)) or 'nothing'})"
        )
    template = np.asarray(arrays["v_template"], np.float64)
    dirs = np.asarray(arrays["shapedirs"], np.float64)
    if template.ndim != 2 or template.shape[1] != 3:
        raise ModelFormatError(f"{path}: 'v_template' must be (V,3), got {template.shape}")
    n = template.shape[0]
    if dirs.ndim != 3 or dirs.shape[:2] != (n, 3):
        raise ModelFormatError(f"{path}: 'shapedirs' must be ({n},3,K), got {dirs.shape}")
    mean = template * M_TO_MM
    check_extent(mean, path, "metres → mm")
    faces = np.asarray(arrays["f"], np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= n:
        raise ModelFormatError(f"{path}: 'f' must be (F,3) 0-based triangles on {n} vertices")
    k_shape = min(n_shape, dirs.shape[2])
    basis = np.ascontiguousarray(np.transpose(dirs, (2, 0, 1)) * M_TO_MM).astype(np.float32)

    if landmark_embedding is None:
        for name in EMBEDDING_NAMES:
            if (path.parent / name).is_file():
                landmark_embedding = path.parent / name
                break
        else:
            side = find_landmarks_file(path)
            landmark_embedding = side
    if landmark_embedding is None:
        raise ModelFormatError(
            f"{path}: FLAME has no 68-point landmarks built in; pass a landmark embedding or put one of "
            f"{', '.join(EMBEDDING_NAMES)} next to the model (FLAME's 51-point flame_static_embedding.pkl "
            f"lacks the jaw contour)"
        )
    landmarks = load_landmark_embedding(landmark_embedding, faces, n)  # barycentrics refer to the file's winding
    faces = orient_outward(mean, faces)

    extras = {}
    for key in ("weights", "kintree_table"):
        if key in arrays and isinstance(arrays[key], np.ndarray):
            extras[key] = np.asarray(arrays[key])
    if "posedirs" in arrays and isinstance(arrays["posedirs"], np.ndarray):
        extras["posedirs"] = (np.asarray(arrays["posedirs"]) * M_TO_MM).astype(np.float32)
    if "J_regressor" in arrays:
        reg = arrays["J_regressor"]
        extras["J_regressor"] = np.asarray(reg.toarray() if hasattr(reg, "toarray") else reg, np.float32)
    return FaceModelData(
        name=path.stem,
        mean=mean.astype(np.float32),
        faces=faces,
        id_basis=basis[:k_shape],
        exp_basis=basis[k_shape:],
        landmarks68=landmarks,
        exp_names=[f"flame_exp{i:03d}" for i in range(basis.shape[0] - k_shape)],
        source=f"FLAME ({path.name})",
        license="FLAME licence (non-commercial research; see flame.is.tue.mpg.de)",
        extras=extras,
    )
