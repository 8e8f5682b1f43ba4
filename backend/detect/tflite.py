"""A small reader for TensorFlow Lite model files (``.tflite``), enough to port their weights.

Written from the FlatBuffers binary format and TFLite's ``schema.fbs`` (field order of the
tables below); it needs neither the ``flatbuffers`` nor the ``tflite`` package. FlatBuffers in
brief: the file starts with a uint32 offset to the root table; a table starts with an int32
``soffset`` back to its vtable (``vtable = table - soffset``); the vtable holds uint16 sizes and
then one uint16 offset per field (0 = absent, use the schema default). Offsets to sub-tables,
vectors and strings are uint32, relative to where they are stored; a vector (or string) is a
uint32 element count followed by its elements (a vector of tables holds uint32 offsets).

Tables read (schema field indices in brackets)::

    Model:        version[0] operator_codes[1] subgraphs[2] description[3] buffers[4]
    OperatorCode: deprecated_builtin_code[0] custom_code[1] version[2] builtin_code[3]
    SubGraph:     tensors[0] inputs[1] outputs[2] operators[3] name[4]
    Tensor:       shape[0] type[1] buffer[2] name[3] quantization[4] is_variable[5] sparsity[6]
    Operator:     opcode_index[0] inputs[1] outputs[2] builtin_options_type[3]
                  builtin_options[4] custom_options[5]
    Buffer:       data[0] offset[1] size[2]

Operator options are kept as raw tables (:class:`Table`); :mod:`.tflite_torch` reads the few
fields each op needs. Arrays come out in TFLite's own layout (NHWC activations; convolution
weights OHWI, depthwise 1HW(C·M), fully connected (out, in)).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import WeightsFormatError

__all__ = [
    "BUILTIN_OPS", "TENSOR_TYPES", "Table", "densify", "TFLiteModel", "TFLiteOperator", "TFLiteTensor", "read_tflite",
    "parse_tflite",
]

# TensorType enum → numpy dtype (schema.fbs order).
TENSOR_TYPES: dict[int, np.dtype | None] = {
    0: np.dtype("<f4"), 1: np.dtype("<f2"), 2: np.dtype("<i4"), 3: np.dtype("u1"), 4: np.dtype("<i8"),
    5: None, 6: np.dtype("?"), 7: np.dtype("<i2"), 8: np.dtype("<c8"), 9: np.dtype("i1"), 10: np.dtype("<f8"),
}

# BuiltinOperator codes (schema.fbs) of the ops this project may meet; others keep their number.
BUILTIN_OPS: dict[int, str] = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
    5: "DEPTH_TO_SPACE", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC", 17: "MAX_POOL_2D",
    18: "MUL", 19: "RELU", 21: "RELU6", 22: "RESHAPE", 23: "RESIZE_BILINEAR", 25: "SOFTMAX", 28: "TANH",
    32: "CUSTOM", 34: "PAD", 39: "TRANSPOSE", 40: "MEAN", 41: "SUB", 42: "DIV", 45: "STRIDED_SLICE",
    49: "SPLIT", 53: "CAST", 54: "PRELU", 55: "MAXIMUM", 60: "PADV2", 83: "PACK", 97: "RESIZE_NEAREST_NEIGHBOR",
    98: "LEAKY_RELU", 114: "QUANTIZE", 117: "HARD_SWISH", 124: "DENSIFY",
}

_MAGIC = b"TFL3"


class Table:
    """A FlatBuffers table at byte ``pos`` of ``buf``; fields are looked up by schema index."""

    __slots__ = ("buf", "pos", "_vt", "_vt_len")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        _check(buf, pos, 4)
        self._vt = pos - struct.unpack_from("<i", buf, pos)[0]
        _check(buf, self._vt, 4)
        self._vt_len = struct.unpack_from("<H", buf, self._vt)[0]

    def _offset(self, index: int) -> int:
        """Byte offset of field ``index`` inside the table (0 = absent)."""
        slot = 4 + 2 * index
        if slot + 2 > self._vt_len:
            return 0
        return struct.unpack_from("<H", self.buf, self._vt + slot)[0]

    def has(self, index: int) -> bool:
        return self._offset(index) != 0

    def scalar(self, index: int, fmt: str, default=0):
        """A scalar field (``fmt``: a struct code such as ``"i"``, ``"I"``, ``"b"``, ``"B"``, ``"Q"``, ``"f"``)."""
        off = self._offset(index)
        if not off:
            return default
        _check(self.buf, self.pos + off, struct.calcsize(fmt))
        return struct.unpack_from("<" + fmt, self.buf, self.pos + off)[0]

    def _indirect(self, index: int) -> int | None:
        off = self._offset(index)
        if not off:
            return None
        at = self.pos + off
        _check(self.buf, at, 4)
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def table(self, index: int) -> "Table | None":
        at = self._indirect(index)
        return None if at is None else Table(self.buf, at)

    def string(self, index: int) -> str:
        at = self._indirect(index)
        if at is None:
            return ""
        _check(self.buf, at, 4)
        n = struct.unpack_from("<I", self.buf, at)[0]
        _check(self.buf, at + 4, n)
        return self.buf[at + 4:at + 4 + n].decode("utf-8", errors="replace")

    def vector(self, index: int, dtype: str) -> np.ndarray:
        """A vector of scalars as a read-only numpy view (``dtype`` like ``"<i4"``, ``"u1"``)."""
        at = self._indirect(index)
        dt = np.dtype(dtype)
        if at is None:
            return np.zeros(0, dt)
        _check(self.buf, at, 4)
        n = struct.unpack_from("<I", self.buf, at)[0]
        _check(self.buf, at + 4, n * dt.itemsize)
        return np.frombuffer(self.buf, dt, count=n, offset=at + 4)

    def tables(self, index: int) -> list["Table"]:
        """A vector of tables."""
        at = self._indirect(index)
        if at is None:
            return []
        _check(self.buf, at, 4)
        n = struct.unpack_from("<I", self.buf, at)[0]
        _check(self.buf, at + 4, 4 * n)
        out = []
        for i in range(n):
            el = at + 4 + 4 * i
            out.append(Table(self.buf, el + struct.unpack_from("<I", self.buf, el)[0]))
        return out


def _check(buf: bytes, pos: int, n: int) -> None:
    if pos < 0 or pos + n > len(buf):
        raise WeightsFormatError(f"tflite: offset {pos}+{n} outside the {len(buf)}-byte file (corrupt or truncated)")


@dataclass(frozen=True, eq=False)
class TFLiteTensor:
    """One tensor of a subgraph: ``shape`` in TFLite layout, ``data`` when it is a constant."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype | None
    data: np.ndarray | None  # constant contents, reshaped to ``shape``; None for activations
    sparsity: Table | None = None  # SparsityParameters when ``data`` is a sparse (1-D) value list

    @property
    def sparse(self) -> bool:
        return self.sparsity is not None


@dataclass(frozen=True, eq=False)
class TFLiteOperator:
    """One op: its name (``"CONV_2D"``, or the custom code for ``CUSTOM``), tensor indices, options."""

    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Table | None
    options_type: int
    custom_options: bytes = b""


@dataclass(frozen=True, eq=False)
class TFLiteModel:
    """Subgraph 0 of a TFLite model (the one that runs): tensors, ops in execution order, I/O."""

    tensors: list[TFLiteTensor]
    operators: list[TFLiteOperator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    version: int
    description: str = ""
    name: str = ""
    op_names: tuple[str, ...] = field(default=())

    def tensor(self, name: str) -> TFLiteTensor:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)


def parse_tflite(data: bytes, name: str = "<bytes>") -> TFLiteModel:
    """Parse a ``.tflite`` file's bytes (see the module docstring). Raises :class:`WeightsFormatError`."""
    if len(data) < 8 or data[4:8] != _MAGIC:
        raise WeightsFormatError(f"{name}: not a TFLite model (no 'TFL3' identifier); pass a .tflite file")
    try:
        root = Table(data, struct.unpack_from("<I", data, 0)[0])
        version = root.scalar(0, "I")
        codes = []
        for oc in root.tables(1):
            builtin = max(oc.scalar(0, "b"), oc.scalar(3, "i"))  # the deprecated byte caps at 127
            codes.append(oc.string(1) if builtin == 32 else BUILTIN_OPS.get(builtin, f"BUILTIN_{builtin}"))
        buffers = root.tables(4)
        subgraphs = root.tables(2)
        if not subgraphs:
            raise WeightsFormatError(f"{name}: the model has no subgraph")
        sg = subgraphs[0]
        tensors = []
        for i, t in enumerate(sg.tables(0)):
            shape = tuple(int(s) for s in t.vector(0, "<i4"))
            ttype = t.scalar(1, "b")
            dtype = TENSOR_TYPES.get(ttype)
            arr = None
            b = t.scalar(2, "I")
            if 0 < b < len(buffers):
                buf = buffers[b]
                raw = buf.vector(0, "u1")
                offset, size = buf.scalar(1, "Q"), buf.scalar(2, "Q")
                if raw.size == 0 and offset > 1:  # large models keep buffers after the flatbuffer
                    _check(data, offset, size)
                    raw = np.frombuffer(data, np.uint8, count=size, offset=offset)
                if raw.size:
                    if dtype is None:
                        raise WeightsFormatError(f"{name}: constant tensor {t.string(3)!r} of unsupported type {ttype}")
                    arr = raw.view(dtype)
                    if not t.has(6):
                        if arr.size != int(np.prod(shape)):
                            raise WeightsFormatError(
                                f"{name}: tensor {t.string(3)!r} holds {arr.size} values for shape {shape}")
                        arr = arr.reshape(shape)
            tensors.append(TFLiteTensor(i, t.string(3), shape, dtype, arr, sparsity=t.table(6)))
        ops = []
        for o in sg.tables(3):
            idx = o.scalar(0, "I")
            if idx >= len(codes):
                raise WeightsFormatError(f"{name}: operator code {idx} out of range")
            ops.append(TFLiteOperator(
                op=codes[idx], inputs=tuple(int(v) for v in o.vector(1, "<i4")),
                outputs=tuple(int(v) for v in o.vector(2, "<i4")), options=o.table(4),
                options_type=o.scalar(3, "B"), custom_options=bytes(o.vector(5, "u1")),
            ))
        return TFLiteModel(
            tensors=tensors, operators=ops, inputs=tuple(int(v) for v in sg.vector(1, "<i4")),
            outputs=tuple(int(v) for v in sg.vector(2, "<i4")), version=version,
            description=root.string(3), name=sg.string(4), op_names=tuple(codes),
        )
    except (struct.error, ValueError) as exc:
        raise WeightsFormatError(f"{name}: corrupt TFLite flatbuffer ({exc})") from None


def densify(tensor: TFLiteTensor) -> np.ndarray:
    """The dense array of a sparse constant tensor (TFLite ``SparsityParameters``).

    SparsityParameters: traversal_order[0] block_map[1] dim_metadata[2]; DimensionMetadata:
    format[0] (0 dense, 1 CSR) dense_size[1] array_segments_type[2] array_segments[3]
    array_indices_type[4] array_indices[5] (unions of Int32/Uint16/Uint8 vectors, values[0]).
    The stored values are listed in traversal order; dimensions past the tensor's rank are
    blocks of the dimensions named by ``block_map``. Expanded level by level with numpy.
    """
    sp, values = tensor.sparsity, tensor.data
    if sp is None or values is None:
        raise ValueError(f"tensor {tensor.name!r} is not a sparse constant")
    order = [int(v) for v in sp.vector(0, "<i4")]
    block_map = [int(v) for v in sp.vector(1, "<i4")]
    dims = sp.tables(2)
    rank = len(tensor.shape)
    if len(order) != len(dims) or sorted(order) != list(range(len(order))):
        raise WeightsFormatError(f"tflite: tensor {tensor.name!r}: bad sparsity traversal order {order}")
    union_types = {1: "<i4", 2: "<u2", 3: "u1"}

    def index_vector(dm: Table, type_field: int) -> np.ndarray:
        kind = dm.scalar(type_field, "B")
        sub = dm.table(type_field + 1)
        if sub is None or kind not in union_types:
            raise WeightsFormatError(f"tflite: tensor {tensor.name!r}: unsupported sparse index vector type {kind}")
        return sub.vector(0, union_types[kind]).astype(np.int64)

    idx = np.zeros((1, 0), np.int64)  # (N, level) indices of the nodes at this level
    prev = np.zeros(1, np.int64)  # each node's position (segment number) for the next level
    block_size = []
    for level, dm in enumerate(dims):
        if dm.scalar(0, "b") == 0:  # dense
            size = dm.scalar(1, "i")
            if level >= rank:
                block_size.append(size)
            idx = np.concatenate([np.repeat(idx, size, 0), np.tile(np.arange(size), len(prev))[:, None]], 1)
            prev = (prev[:, None] * size + np.arange(size)).reshape(-1)
        else:  # CSR: children of node p are indices[segments[p]:segments[p+1]]
            if level >= rank:
                raise WeightsFormatError(f"tflite: tensor {tensor.name!r}: sparse block dimension unsupported")
            seg, ind = index_vector(dm, 2), index_vector(dm, 4)
            counts = seg[prev + 1] - seg[prev]
            starts = np.repeat(seg[prev], counts)
            pos = starts + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            idx = np.concatenate([np.repeat(idx, counts, 0), ind[pos][:, None]], 1)
            prev = pos
    if len(idx) != values.size:
        raise WeightsFormatError(
            f"tflite: tensor {tensor.name!r}: sparsity describes {len(idx)} values, the buffer holds {values.size}")
    orig = np.zeros((len(idx), rank), np.int64)
    for level in range(rank):
        orig[:, order[level]] = idx[:, level]
    for level in range(rank, len(order)):
        b = order[level] - rank
        orig[:, block_map[b]] = orig[:, block_map[b]] * block_size[b] + idx[:, level]
    dense = np.zeros(tensor.shape, values.dtype)
    dense[tuple(orig.T)] = values.reshape(-1)
    return dense


def read_tflite(path: str | Path) -> TFLiteModel:
    """Read and parse a ``.tflite`` file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsFormatError(f"{path}: cannot read ({exc})") from None
    return parse_tflite(data, str(path))
