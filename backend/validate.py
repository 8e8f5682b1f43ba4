"""Checks that run before any expensive step: the output location, the photos, a face model's
arrays and checkpoints.

Each check raises a :class:`~backend.errors.PhotoheadError` subclass whose message is one line
naming the file and what is wrong (the CLI prints it and exits with code 2, having written
nothing). The checks read headers, metadata and memory-mapped tensors; they never fit anything:
milliseconds (a photo is decoded once, so a truncated file is caught here, not mid-run).
Rationale and the measured numbers behind the limits: docs/reliability.md.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageReadError, ModelFormatError, ModelNotFoundError, PhotoheadError, WeightsFormatError
from .image_io import load_image
from .quality import DEFAULT, DRAFT, HIGH

__all__ = [
    "MIN_PHOTO_SIDE", "OutputLocationError", "one_line", "max_photo_pixels", "check_output_dir", "check_writable",
    "estimate_output_bytes", "is_result_folder", "check_photo", "check_photos", "check_face_index", "check_labels", "check_model_path",
    "check_model_arrays", "check_tensor_sizes", "check_state_shapes",
]

# Shortest photo side accepted (px): the detector's smallest face is 64 px across
# (backend.detect.DEFAULT_MIN_SIZE), so a smaller photo cannot hold one.
MIN_PHOTO_SIDE = 64

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class OutputLocationError(PhotoheadError):
    """The output folder cannot take the results (empty name, a file, read-only, full, foreign files)."""


def one_line(text: Any) -> str:
    """``text`` as one line: ANSI escapes removed, whitespace runs (newlines, tabs) collapsed.

    torch's refusal of an unsafe pickle spans several lines (with colour codes in some versions);
    only its informative part is kept (``WeightsUnpickler error: ...``, or the paragraph naming
    the refused global).
    """
    s = _ANSI.sub("", str(text))
    marker = "WeightsUnpickler error:"
    if marker in s:
        s = s[s.index(marker):].split("\n\n")[0]
    elif s.lstrip().startswith("Weights only load failed"):  # keep the paragraph naming the reason
        middle = [p for p in re.split(r"\n\s*\n", s)[1:] if p.strip() and not p.strip().startswith("Check the documentation")]
        s = "refused by torch.load(weights_only=True): " + (middle[0] if middle else "unsupported content")
    return " ".join(s.split())


# -- output location ------------------------------------------------------------------------------
# One result folder for the ICT model, from a measured draft folder (docs/reliability.md): the
# parts that do not depend on the UV maps (head.glb's morph targets, head.npz, head.obj), bytes per
# albedo texel over all UV maps, and head_detailed.obj per quality (4× per lattice level).
_MESH_BYTES = 16e6
_PER_ALBEDO_TEXEL = 40.0  # bytes per albedo texel, all maps together (float32 copies dominate)
_DENSE_BYTES = {DRAFT: 9e6, DEFAULT: 36e6, HIGH: 145e6}
_SAFETY = 1.5


def estimate_output_bytes(quality: str = DEFAULT, views: int = 1, detail: bool = True) -> int:
    """A generous estimate (×1.5) of one result folder's size in bytes for ``quality`` (its
    albedo resolution from :data:`backend.preset.PRESETS`)."""
    from .preset import PRESETS  # lazy: the command line validates before torch loads (thread policy)

    res = PRESETS[quality].albedo_res if quality in PRESETS else 1024
    total = _MESH_BYTES + _PER_ALBEDO_TEXEL * res * res * 2 + views * 2e6
    if detail:
        total += _DENSE_BYTES.get(quality, _DENSE_BYTES[HIGH])
    return int(total * _SAFETY)


def is_result_folder(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier Photohead result (``params.json``) or batch (``batch.json``)."""
    for name, fmt in (("params.json", "photohead.params"), ("batch.json", None)):
        path = folder / name
        if path.is_file():
            if fmt is None:
                return True
            try:
                return json.loads(path.read_text(encoding="utf-8")).get("format") == fmt
            except (OSError, ValueError, AttributeError):
                return False
    return False


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def check_writable(path: Path, what: str = "output folder") -> Path:
    """Probe that ``path`` (a folder, existing or not) can be created or replaced: an empty folder
    is made and removed in its parent (or nearest existing ancestor), where the results' temporary
    folder will go. Returns that ancestor. Raises :class:`OutputLocationError` (read-only, no
    permission, no space, a file in the way)."""
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise OutputLocationError(f"{path}: cannot create the {what}: {base} is not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".photohead-probe.", dir=base)
        os.rmdir(probe)
    except OSError as exc:
        reason = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                  errno.EPERM: "not permitted", errno.ENOSPC: "no space left on the device"}.get(exc.errno, exc.strerror)
        raise OutputLocationError(f"{path}: cannot write the {what} in {base} ({reason})") from None
    return base


def check_output_dir(out: str | os.PathLike, need_bytes: int = 0, what: str = "output folder") -> Path:
    """Check that ``out`` can become a result folder; return it as a Path.

    Refused: an empty name (``Path("")`` is the current folder), an existing file, a
    folder holding files that are not an earlier Photohead result (they could be replaced), a
    location where nothing can be created (read-only, no permission: probed by creating and
    removing an empty folder where the results' temporary folder goes), and a disk with less
    than ``need_bytes`` free. Nothing is left behind.
    """
    text = os.fspath(out)
    if not str(text).strip():
        raise OutputLocationError(f"the {what} name is empty: pass -o DIR (a new or earlier result folder)")
    path = Path(text)
    if os.path.lexists(path) and not path.is_dir():
        kind = "a file" if path.is_file() else "not a folder"
        raise OutputLocationError(f"{path}: the {what} exists and is {kind}: choose a new folder name")
    if path.is_dir():
        entries = [e.name for e in os.scandir(path) if not e.name.startswith(".")]
        if entries and not is_result_folder(path):
            raise OutputLocationError(
                f"{path}: the {what} holds files that are not a Photohead result (e.g. {sorted(entries)[0]}): "
                "choose a new or empty folder"
            )
    base = check_writable(path, what)
    if need_bytes > 0:
        free = shutil.disk_usage(base).free
        if free < need_bytes:
            raise OutputLocationError(
                f"{path}: the results need about {need_bytes / 1e6:.0f} MB but only {free / 1e6:.1f} MB are free "
                f"on the disk holding {base}: free space or choose another folder"
            )
    return path


# -- photos ------------------------------------------------------------------------------------------
def max_photo_pixels() -> int:
    """Largest photo accepted (pixels): Pillow's decompression-bomb limit (2 × MAX_IMAGE_PIXELS,
    179 MP by default), above which it refuses to decode."""
    return int(2 * (Image.MAX_IMAGE_PIXELS or 89_478_485))


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_photo(path: str | os.PathLike, decode: bool = True) -> tuple[int, int]:
    """Check one photo file before any work; return its upright (width, height) in pixels.

    A FIFO, device or socket is refused from ``stat`` alone (opening a FIFO to read would wait
    for a writer forever). The header gives the size: above :func:`max_photo_pixels` is refused
    before decoding, below :data:`MIN_PHOTO_SIDE` on the short side too. ``decode`` then decodes
    the whole photo (:func:`backend.image_io.load_image`: EXIF orientations 1–8, 16-bit, CMYK,
    palette and alpha are converted), so a truncated file fails here. Raises
    :class:`~backend.errors.ImageReadError`.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        broken = " (a symbolic link to a missing file)" if os.path.islink(p) else ""
        raise ImageReadError(f"{p}: no such photo file{broken}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageReadError(f"{p}: symbolic link loop: point it at a photo file") from None
        raise ImageReadError(f"{p}: cannot read the photo ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError(f"{p}: is a folder, not a photo file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError(f"{p}: is {_kind(st.st_mode)}, not a photo file: save the photo to a file first")
    if st.st_size == 0:
        raise ImageReadError(f"{p}: the photo file is empty (0 bytes)")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # sizes are checked below
            try:
                with Image.open(p) as img:
                    w, h = img.size
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        w = h = None  # maybe a 16-bit RGB TIFF Pillow cannot open: load_image tries tifffile
    except PermissionError:
        raise ImageReadError(f"{p}: permission denied reading the photo") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"{p}: not a readable image ({one_line(exc)})") from None
    if w is not None:
        _check_size(p, w, h)
    if decode or w is None:
        try:
            h, w = load_image(p).shape[:2]
        except ImageReadError as exc:
            raise ImageReadError(one_line(exc)) from None
        _check_size(p, w, h)
    return int(w), int(h)


def _check_size(name: Any, w: int, h: int) -> None:
    limit = max_photo_pixels()
    if w * h > limit:
        raise ImageReadError(
            f"{name}: the photo is {w}×{h} px ({w * h / 1e6:.0f} MP), more than the {limit / 1e6:.0f} MP "
            "Photohead decodes (decompression-bomb limit): downscale it"
        )
    if min(w, h) < MIN_PHOTO_SIDE:
        raise ImageReadError(
            f"{name}: the photo is {w}×{h} px; Photohead needs at least {MIN_PHOTO_SIDE} px on the short side "
            f"(a face at least {MIN_PHOTO_SIDE} px across)"
        )


def check_photos(images: Iterable[Any], decode: bool = True) -> None:
    """:func:`check_photo` for each path; arrays are checked for layout and size only."""
    for i, image in enumerate(images):
        if isinstance(image, (str, os.PathLike)):
            check_photo(image, decode)
        elif isinstance(image, np.ndarray):
            if image.ndim not in (2, 3) or image.size == 0:
                raise ImageReadError(f"image #{i}: array of shape {image.shape}; expected (H,W) or (H,W,C)")
            _check_size(f"image #{i}", image.shape[1], image.shape[0])
        else:
            raise ImageReadError(f"image #{i}: a {type(image).__name__}; pass a file path or an (H,W,3) array")


def check_face_index(face: Any) -> int:
    """``--face N``: an integer ≥ 0 (its upper bound is the number of faces found, checked after detection)."""
    if isinstance(face, bool) or not isinstance(face, (int, np.integer)) or face < 0:
        raise PhotoheadError(f"--face must be 0 or more (0 = the largest face), got {face!r}")
    return int(face)


def check_labels(labels: Sequence[str], n_photos: int) -> None:
    """``--labels``: none, or one per photo."""
    if labels and len(labels) != n_photos:
        raise PhotoheadError(f"--labels gives {len(labels)} label(s) for {n_photos} photo(s): give one per photo, in order")


def check_model_path(path: str | os.PathLike | None) -> None:
    """``--model``: when given, an existing file or folder (the format is checked when it loads)."""
    if path is not None and str(path).strip() and not os.path.exists(path):
        raise ModelNotFoundError(f"{path}: no such face model file or folder (--model)")


# -- face model arrays ---------------------------------------------------------------------------
def _array(path: Path, name: str, value: Any, shape: Sequence[int | None], kind: str) -> np.ndarray | None:
    """``value`` as an array of ``shape`` (None: any size) and ``kind`` ('f' real, 'i' integer)."""
    if value is None:
        return None
    a = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if a.dtype == object:
        raise ModelFormatError(f"{path}: '{name}' holds Python objects, not numbers: re-save the model with numeric arrays")
    if len(a.shape) != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        want = "(" + ",".join("N" if s is None else str(s) for s in shape) + ")"
        raise ModelFormatError(f"{path}: '{name}' must have shape {want}, got {a.shape}")
    numeric = np.issubdtype(a.dtype, np.integer) if kind == "i" else np.issubdtype(a.dtype, np.number)
    if not numeric and not (kind == "i" and np.issubdtype(a.dtype, np.floating)):
        raise ModelFormatError(f"{path}: '{name}' has dtype {a.dtype}; expected {'integers' if kind == 'i' else 'numbers'}")
    if kind == "i" and np.issubdtype(a.dtype, np.floating) and a.size and not np.array_equal(a, np.round(a)):
        raise ModelFormatError(f"{path}: '{name}' must hold whole numbers (indices), got fractions")
    if kind == "f" and np.issubdtype(a.dtype, np.inexact) and not np.isfinite(a).all():
        raise ModelFormatError(f"{path}: '{name}' holds NaN or infinite values")
    return a


def _indices(path: Path, name: str, a: np.ndarray | None, bound: int, of: str) -> None:
    if a is None or a.size == 0:
        return
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= bound:
        raise ModelFormatError(f"{path}: '{name}' indices run {lo}..{hi} but there are {bound} {of} (valid 0..{bound - 1})")


def check_model_arrays(data: Any, path: str | os.PathLike) -> None:
    """Check a :class:`~backend.facemodel.FaceModelData`'s arrays: dtypes, shapes, finite values
    and every index range (faces, UV faces, landmarks), so a bad file fails at load with its name
    instead of an IndexError deep in a fit. Raises :class:`~backend.errors.ModelFormatError`."""
    p = Path(path)
    mean = _array(p, "mean", data.mean, (None, 3), "f")
    V = mean.shape[0]
    if V < 3:
        raise ModelFormatError(f"{p}: the mean shape has {V} vertices; a face model needs a mesh")
    id_basis = _array(p, "id_basis", data.id_basis, (None, V, 3), "f")
    exp_basis = _array(p, "exp_basis", data.exp_basis, (None, V, 3), "f")
    faces = _array(p, "faces", data.faces, (None, 3), "i")
    if faces.shape[0] == 0:
        raise ModelFormatError(f"{p}: 'faces' is empty; a face model needs triangles")
    _indices(p, "faces", faces, V, "vertices")
    _indices(p, "landmarks68", _array(p, "landmarks68", data.landmarks68, (68,), "i"), V, "vertices")
    uv = _array(p, "uv", data.uv, (None, 2), "f")
    faces_uv = _array(p, "faces_uv", data.faces_uv, (faces.shape[0], 3), "i")
    if (uv is None) != (faces_uv is None):
        raise ModelFormatError(f"{p}: 'uv' and 'faces_uv' come together; the file has only one of them")
    if uv is not None:
        _indices(p, "faces_uv", faces_uv, uv.shape[0], "UV coordinates")
    _array(p, "id_std", data.id_std, (id_basis.shape[0],), "f")
    _array(p, "exp_std", data.exp_std, (exp_basis.shape[0],), "f")
    tex_basis = _array(p, "tex_basis", data.tex_basis, (None, V, 3), "f")
    if tex_basis is not None:
        _array(p, "tex_mean", data.tex_mean, (V, 3), "f")
        _array(p, "tex_std", data.tex_std, (tex_basis.shape[0],), "f")
    _array(p, "region", data.region, (V,), "i")


# -- checkpoints -------------------------------------------------------------------------------------
def _tensors(obj: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    import torch  # lazy: the command line validates before torch loads (thread policy)

    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}[{i}]")


def check_tensor_sizes(ckpt: Any, path: str | os.PathLike) -> None:
    """Every tensor of a checkpoint loaded with ``mmap=True`` must fit in the file: a tensor
    declaring more elements than the file holds (e.g. a stride-0 view of a 15 GB "layer") is
    refused before anything copies it. Raises :class:`~backend.errors.WeightsFormatError`."""
    size = os.path.getsize(path)
    for name, t in _tensors(ckpt):
        nbytes = t.numel() * t.element_size()
        if nbytes > size:
            raise WeightsFormatError(
                f"{path}: tensor '{name}' declares {tuple(t.shape)} = {nbytes / 1e9:.3g} GB but the file holds "
                f"{size / 1e6:.3g} MB: not a checkpoint written by Photohead's trainers"
            )


def check_state_shapes(state: Mapping[str, Any], expected: Mapping[str, Any], path: str | os.PathLike,
                       what: str = "the network") -> None:
    """A checkpoint's state dict against ``expected`` {name: shape} (e.g. a model built on the
    ``meta`` device, so nothing was allocated): same keys, same shapes. One line naming the first
    differences. Raises :class:`~backend.errors.WeightsFormatError`."""
    if not isinstance(state, Mapping):
        raise WeightsFormatError(f"{path}: its 'model' entry is a {type(state).__name__}, not a state dict")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [(k, tuple(getattr(state[k], "shape", ())), tuple(expected[k])) for k in expected
             if k in state and tuple(getattr(state[k], "shape", ())) != tuple(expected[k])]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        k, got, want = wrong[0]
        parts.append(f"{len(wrong)} of another shape (e.g. {k}: {got}, expected {want})")
    raise WeightsFormatError(f"{path}: does not fit {what}: weights {'; '.join(parts)}")


def check_architecture(ckpt: Mapping[str, Any], build: Any, path: str | os.PathLike, what: str) -> None:
    """Build the network a checkpoint describes (``build(ckpt["arch"])``) on the ``meta`` device,
    so a huge declared width allocates nothing, and compare its weights' names and shapes with the
    checkpoint's (whose tensors :func:`check_tensor_sizes` bounded by the file size). Raises
    :class:`~backend.errors.WeightsFormatError` before the real network is allocated."""
    import torch  # lazy: the command line validates before torch loads (thread policy)

    try:
        with torch.device("meta"):
            net = build(ckpt["arch"])
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError) as exc:
        raise WeightsFormatError(f"{path}: its architecture description is not one this code builds ({one_line(exc)})") from None
    check_state_shapes(ckpt.get("model"), {k: v.shape for k, v in net.state_dict().items()}, path, what)


FOCAL_RANGE_MM = (8.0, 2000.0)  # 35-mm-equivalent focal lengths accepted (mm), besides ∞ (orthographic)


def check_focal_35mm(value: float | None, what: str = "--focal-35mm") -> float | None:
    """``value`` (mm, 35-mm equivalent; ``inf``: orthographic; None: not given) checked; raises
    :class:`PhotoheadError` with what to pass instead."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise PhotoheadError(f"{what} {value!r}: give a focal length in mm (35-mm equivalent), e.g. 26 or 50") from None
    lo, hi = FOCAL_RANGE_MM
    if not (math.isinf(f) and f > 0) and not lo <= f <= hi:
        raise PhotoheadError(f"{what} {value!r}: give a 35-mm-equivalent focal length between {lo:g} and {hi:g} mm "
                             "(or inf for an orthographic camera)")
    return f
