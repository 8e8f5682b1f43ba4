"""dlib's 68-point shape predictor (Kazemi & Sullivan's ensemble of regression trees) in numpy.

dlib's own ``shape_predictor(<file>.dat)`` spends about 0.5 s of CPU per process decoding its
100 MB file (holding the GIL). This module reads the same file once with a vectorised parser of
dlib's serialisation, keeps the trained parameters as a small ``.npz`` in the cache folder (keyed
by the source file's size and a sha256 of its ends, written atomically) and evaluates the cascade exactly as
``dlib/image_processing/shape_predictor.h`` does, so its rounded landmarks equal dlib's.

The cascade, per level: the similarity transform from the mean shape to the current shape
(``find_tform_between_shapes``, cast to float), each feature pixel at
``unnormalizing_tform(box)(T·delta + current[anchor])`` rounded to the nearest pixel (an
out-of-image pixel reads 0; an RGB pixel reads ``(r+g+b)//3``), each tree walked on the
differences of two feature pixels (``f[idx1] − f[idx2] > thresh`` goes left) and the leaf
values added in float32, tree after tree. The final shape is mapped to the box and rounded.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import WeightsFormatError
from ..io_utils import atomic_path, atomic_savez, read_npz

__all__ = ["ErtPredictor", "read_shape_predictor", "load_predictor", "predictor_cache_path"]

_FORMAT = 1  # bump when the cached arrays change meaning


@dataclass(frozen=True)
class ErtPredictor:
    """The trained parameters of a dlib ``shape_predictor``.

    initial_shape (P,2) float32, the mean shape in box-normalised units; L cascade levels of T
    trees with S splits (depth D, S = 2**D − 1) and S+1 leaves each, F feature pixels per level:
    idx1, idx2 (L,T,S) int32 feature indices; thresh (L,T,S) float32; leaves (L,T,S+1,P,2) float32;
    anchor (L,F) int32 landmark index; deltas (L,F,2) float32 offsets from that landmark.
    """

    initial_shape: np.ndarray
    idx1: np.ndarray
    idx2: np.ndarray
    thresh: np.ndarray
    leaves: np.ndarray
    anchor: np.ndarray
    deltas: np.ndarray

    def __call__(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """68 landmarks (P,2) int64, whole pixels, for ``box`` = dlib rectangle (left, top, right,
        bottom), inclusive integer pixels, in ``image`` (H,W,3) uint8 RGB or (H,W) uint8 grey —
        the same numbers as ``dlib.shape_predictor(image, dlib.rectangle(*box))``."""
        image = _checked(image)
        h, w = image.shape[:2]
        left, top, right, bottom = (float(v) for v in box)
        scale = np.array([right - left, bottom - top])  # unnormalizing_tform(rect): p → scale·p + offset
        offset = np.array([left, top])
        shape = self.initial_shape.copy()  # (P,2) float32
        levels, trees, splits = self.idx1.shape
        depth = int(np.log2(splits + 1))
        rows = np.arange(trees)
        for lv in range(levels):
            t = _similarity(self.initial_shape, shape)  # (2,2) float32
            d = self.deltas[lv]
            a = shape[self.anchor[lv]]  # (F,2) float32
            px = (t[0, 0] * d[:, 0] + t[0, 1] * d[:, 1]) + a[:, 0]  # float32, dlib's order
            py = (t[1, 0] * d[:, 0] + t[1, 1] * d[:, 1]) + a[:, 1]
            ix = np.floor(scale[0] * px.astype(np.float64) + offset[0] + 0.5).astype(np.int64)
            iy = np.floor(scale[1] * py.astype(np.float64) + offset[1] + 0.5).astype(np.int64)
            inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
            feat = np.zeros(len(d), np.float32)
            feat[inside] = _intensity(image[iy[inside], ix[inside]])
            node = np.zeros(trees, np.int64)
            i1, i2, th = self.idx1[lv], self.idx2[lv], self.thresh[lv]
            for _ in range(depth):
                go_left = (feat[i1[rows, node]] - feat[i2[rows, node]]) > th[rows, node]
                node = 2 * node + np.where(go_left, 1, 2)
            picked = self.leaves[lv, rows, node - splits].reshape(trees, -1)  # (T, 2P) float32
            # current_shape += leaf, tree after tree: a reduction over axis 0 adds the rows in order
            shape = np.add.reduce(np.concatenate([shape.reshape(1, -1), picked]), axis=0).reshape(-1, 2)
        out = scale * shape.astype(np.float64) + offset
        return np.floor(out + 0.5).astype(np.int64)


_SMALL = tuple(n for n in ErtPredictor.__dataclass_fields__ if n != "leaves")  # the .npz; leaves: .npy


def _checked(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected an (H,W,3) or (H,W) uint8 image, got {image.shape} {image.dtype}")
    return image


def _intensity(pixels: np.ndarray) -> np.ndarray:
    """dlib's pixel intensity (N,) of pixels (N,3) RGB or (N,) grey uint8: RGB as the integer
    mean (r+g+b)//3."""
    if pixels.ndim == 1:
        return pixels
    return pixels.astype(np.uint16).sum(axis=1) // 3


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """dlib's ``find_similarity_transform(src → dst).get_m()`` cast to float32 (2,2).

    Umeyama in float64 on float32 points (P,2); for 2-D the SVD's rotation·scale is closed form:
    with cov = mean((dst−μd)(src−μs)ᵀ) = [[a,b],[c,d]], c·R = [[a+d, b−c],[c−b, a+d]] / σ²_src."""
    s = src.astype(np.float64)
    d = dst.astype(np.float64)
    s = s - s.mean(axis=0)
    d = d - d.mean(axis=0)
    n = len(s)
    var = (s * s).sum() / n
    cov = d.T @ s / n  # (2,2)
    p = cov[0, 0] + cov[1, 1]
    q = cov[1, 0] - cov[0, 1]
    if var == 0:
        return np.eye(2, dtype=np.float32)
    return (np.array([[p, -q], [q, p]]) / var).astype(np.float32)


# --- dlib's serialisation -------------------------------------------------------------------


def _token_starts(buf: np.ndarray) -> np.ndarray:
    """Offsets of every packed integer in ``buf`` (uint8), a file made only of dlib packed ints
    (header byte: low nibble = number of magnitude bytes; 0x80 = negative).

    Vectorised: one walker per chunk steps through its chunk in lockstep with the others from an
    arbitrary offset; a walker's path joins the true one within a few tokens, so each chunk is then
    repaired by walking the true path from where the previous chunk left it until the two meet."""
    n = len(buf)
    chunk = 1 << 14
    starts = np.arange(0, n, chunk, dtype=np.int64)
    ends = np.minimum(starts + chunk, n)
    mark = np.zeros(n + 9, bool)
    pos = starts.copy()
    exit_pos = np.zeros_like(starts)
    active = np.ones(len(starts), bool)
    while active.any():
        p = pos[active]
        mark[p] = True
        p = p + 1 + (buf[p] & 0x0F)
        pos[active] = p
        done = np.flatnonzero(active)[p >= ends[active]]
        exit_pos[done] = pos[done]
        active[done] = False
    for k in range(1, len(starts)):  # repair each chunk's head from the previous chunk's true exit
        p = int(exit_pos[k - 1])
        lo = int(starts[k])
        while p < ends[k] and not mark[p]:
            p += 1 + (int(buf[p]) & 0x0F)
        first = p  # where the true path meets this chunk's walker
        mark[lo:min(first, n)] = False
        q = int(exit_pos[k - 1])
        while q < first:
            mark[q] = True
            q += 1 + (int(buf[q]) & 0x0F)
        if first >= ends[k]:  # never met inside the chunk: continue the true path instead
            exit_pos[k] = first
    return np.flatnonzero(mark[:n])


def _decode_ints(buf: np.ndarray) -> np.ndarray:
    """Every packed integer of ``buf`` (uint8) as int64, in file order."""
    at = _token_starts(buf)
    head = buf[at]
    size = head & 0x0F
    if (head & 0x70).any() or (size > 8).any() or at[-1] + 1 + size[-1] != len(buf):
        raise WeightsFormatError("not a dlib shape predictor file (bad integer stream); "
                                 "reinstall `face-recognition-models`")
    value = np.zeros(len(at), np.int64)
    for n in range(1, 9):  # gather by magnitude length: most are 1 or 3 bytes
        sel = np.flatnonzero(size == n)
        first = at[sel] + 1
        v = np.zeros(len(sel), np.int64)
        for j in range(n):
            v |= buf[first + j].astype(np.int64) << (8 * j)
        value[sel] = v
    negative = (head & 0x80) != 0
    value[negative] = -value[negative]
    return value


class _Cursor:
    def __init__(self, ints: np.ndarray) -> None:
        self.v = ints
        self.i = 0

    def int(self) -> int:
        return int(self.take(1)[0])

    def take(self, n: int) -> np.ndarray:
        if self.i + n > len(self.v):
            raise WeightsFormatError("dlib shape predictor file ends early; reinstall `face-recognition-models`")
        x = self.v[self.i:self.i + n]
        self.i += n
        return x

    def floats(self, n: int) -> np.ndarray:
        """n ``float_details`` (mantissa, exponent) pairs as float32."""
        pair = self.take(2 * n).reshape(n, 2)
        if (np.abs(pair[:, 1]) >= 32000).any():
            raise WeightsFormatError("inf/nan in the dlib shape predictor file")
        return np.ldexp(pair[:, 0].astype(np.float64), pair[:, 1]).astype(np.float32)

    def column(self) -> np.ndarray:
        nr, nc = abs(self.int()), abs(self.int())
        if nc != 1:
            raise WeightsFormatError(f"expected a column vector in the shape predictor, got {nr}x{nc}")
        return self.floats(nr)


def read_shape_predictor(path: str | Path) -> ErtPredictor:
    """Parse dlib's ``shape_predictor`` file (serialisation version 1) into an :class:`ErtPredictor`."""
    path = Path(path)
    c = _Cursor(_decode_ints(np.fromfile(path, np.uint8)))
    if c.int() != 1:
        raise WeightsFormatError(f"{path}: not a version-1 dlib shape_predictor")
    initial = c.column()
    levels = c.int()
    idx1, idx2, thresh, leaves = [], [], [], []
    for _ in range(levels):
        trees = c.int()
        for _ in range(trees):
            ns = c.int()
            sp = c.take(4 * ns).reshape(ns, 4)  # idx1, idx2, mantissa, exponent
            idx1.append(sp[:, 0])
            idx2.append(sp[:, 1])
            thresh.append(np.ldexp(sp[:, 2].astype(np.float64), sp[:, 3]).astype(np.float32))
            nl = c.int()
            block = c.take(nl * (2 + 2 * len(initial))).reshape(nl, -1)
            if (np.abs(block[:, :2]) != [len(initial), 1]).any():
                raise WeightsFormatError(f"{path}: leaf of unexpected size")
            leaves.append(np.ldexp(block[:, 2::2].astype(np.float64), block[:, 3::2]).astype(np.float32))
    n_anchor = c.int()
    anchor = [c.take(c.int()) for _ in range(n_anchor)]
    n_delta = c.int()
    deltas = [c.floats(2 * c.int()).reshape(-1, 2) for _ in range(n_delta)]
    if c.i != len(c.v) or n_anchor != levels or n_delta != levels:
        raise WeightsFormatError(f"{path}: trailing or missing data in the shape predictor")
    trees = len(idx1) // levels
    p = len(initial) // 2
    return ErtPredictor(
        initial_shape=initial.reshape(p, 2),
        idx1=np.stack(idx1).reshape(levels, trees, -1).astype(np.int32),
        idx2=np.stack(idx2).reshape(levels, trees, -1).astype(np.int32),
        thresh=np.stack(thresh).reshape(levels, trees, -1),
        leaves=np.stack(leaves).reshape(levels, trees, -1, p, 2),
        anchor=np.stack(anchor).astype(np.int32),
        deltas=np.stack(deltas).astype(np.float32),
    )


def _file_key(path: Path) -> str:
    """The source file's size and the sha256 of its first and last 64 KiB (hashing all 100 MB
    would cost more than the load it saves)."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 16))
        f.seek(max(0, size - (1 << 16)))
        h.update(f.read(1 << 16))
    return f"{size}-{h.hexdigest()[:16]}"


def predictor_cache_path(source: Path) -> Path:
    """``<cache>/weights/<stem>-ert<format>-<size>-<sha256[:16]>.npz`` for the dlib file ``source``
    (the small arrays; the leaf values, 65 MB, sit beside it as ``….leaves.npy``)."""
    from ..facemodel.search import cache_dir  # lazy: keeps this module's imports light

    return cache_dir().parent / "weights" / f"{source.stem}-ert{_FORMAT}-{_file_key(source)}.npz"


def _read_cache(path: Path) -> ErtPredictor | None:
    """The cached predictor, or None when a file is missing or unreadable. The leaves are
    memory-mapped: a prediction touches one leaf per tree, so only those pages are read."""
    arrays = read_npz(path, _SMALL)
    if arrays is None:
        return None
    try:
        leaves = np.load(path.with_suffix(".leaves.npy"), mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if leaves.shape[:2] != arrays["idx1"].shape[:2] or leaves.dtype != np.float32:
        return None
    return ErtPredictor(leaves=leaves, **arrays)


def load_predictor(source: str | Path) -> ErtPredictor | None:
    """The predictor of dlib file ``source``: from the cache (a few milliseconds), else parsed from
    ``source`` (seconds, once) and cached. None when the cache cannot be written (the caller then
    uses dlib's own predictor)."""
    source = Path(source)
    path = predictor_cache_path(source)
    pred = _read_cache(path)
    if pred is not None:
        return pred
    pred = read_shape_predictor(source)
    try:  # leaves first: the .npz, written last, marks a complete cache
        with atomic_path(path.with_suffix(".leaves.npy")) as tmp, open(tmp, "wb") as f:
            np.save(f, pred.leaves)
        atomic_savez(path, {n: getattr(pred, n) for n in _SMALL})
    except OSError:
        return None
    return pred
