"""The .tflite reader and its PyTorch executor on a tiny model built here, byte by byte."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from backend.detect.tflite import densify, parse_tflite
from backend.detect.tflite_torch import TFLiteNet
from backend.errors import WeightsFormatError


class _Writer:
    """A minimal FlatBuffers writer (children after parents, so every uoffset points forward).

    Objects: ``("table", {field: (fmt, value) | object})``, ``("vec", numpy array)``,
    ``("str", text)``, ``("tables", [table, ...])``.
    """

    def __init__(self) -> None:
        self.buf = bytearray()

    def _align(self, n: int, extra: int = 0) -> None:
        while (len(self.buf) + extra) % n:
            self.buf += b"\0"

    def finish(self, root) -> bytes:
        self.buf = bytearray(8)
        self.buf[4:8] = b"TFL3"
        struct.pack_into("<I", self.buf, 0, self.write(root))
        return bytes(self.buf)

    def write(self, obj) -> int:
        kind, value = obj
        if kind in ("vec", "str"):
            data = value.encode() + b"\0" if kind == "str" else np.ascontiguousarray(value).tobytes()
            count = len(value) if kind == "str" else value.size
            self._align(16, 4)
            pos = len(self.buf)
            self.buf += struct.pack("<I", count) + data
            return pos
        if kind == "tables":
            self._align(4)
            pos = len(self.buf)
            self.buf += struct.pack("<I", len(value)) + bytes(4 * len(value))
            for i, child in enumerate(value):
                slot = pos + 4 + 4 * i
                struct.pack_into("<I", self.buf, slot, self.write(child) - slot)
            return pos
        nf = max(value) + 1 if value else 0
        self._align(2)
        vt = len(self.buf)
        self.buf += struct.pack("<HH", 4 + 2 * nf, 8 + 8 * nf) + bytes(2 * nf)
        self._align(8)
        pos = len(self.buf)
        self.buf += struct.pack("<i", pos - vt) + bytes(4 + 8 * nf)
        refs = []
        for k, v in value.items():
            struct.pack_into("<H", self.buf, vt + 4 + 2 * k, 8 + 8 * k)
            if isinstance(v[0], str) and v[0] in ("table", "vec", "str", "tables"):
                refs.append((pos + 8 + 8 * k, v))
            else:
                struct.pack_into("<" + v[0], self.buf, pos + 8 + 8 * k, v[1])
        for slot, child in refs:
            struct.pack_into("<I", self.buf, slot, self.write(child) - slot)
        return pos


def _vec(values, dtype) -> tuple:
    return ("vec", np.asarray(values, dtype))


def _tensor(shape, ttype: int, buffer: int, name: str, sparsity=None) -> tuple:
    fields = {0: _vec(shape, "<i4"), 1: ("b", ttype), 2: ("I", buffer), 3: ("str", name)}
    if sparsity is not None:
        fields[6] = sparsity
    return ("table", fields)


def _op(code: int, inputs, outputs, options=None) -> tuple:
    fields = {0: ("I", code), 1: _vec(inputs, "<i4"), 2: _vec(outputs, "<i4")}
    if options is not None:
        fields[3] = ("B", 1)
        fields[4] = ("table", options)
    return ("table", fields)


def _tiny_model(rng):
    """DEQUANTIZE(fp16) → CONV_2D 3×3/2 SAME + bias + RELU → DEPTHWISE 3×3 with DENSIFY'd CSR
    weights → PRELU → PAD (channels) → RESHAPE. Returns (bytes, numpy weights)."""
    w = rng.normal(size=(3, 3, 3, 2)).astype(np.float16)  # OHWI
    bias = rng.normal(size=3).astype(np.float32)
    dw = rng.normal(size=(1, 3, 3, 3)).astype(np.float32)
    dw[0, :, :, 1] = 0.0  # channel 1 pruned, the others partly
    dw[0, 0, 0, 0] = dw[0, 2, 1, 2] = 0.0
    alpha = rng.uniform(0.1, 0.5, size=(1, 1, 3)).astype(np.float32)
    pads = np.array([[0, 0], [0, 0], [0, 0], [0, 2]], np.int32)
    # CSR over the last axis: rows = the 9 (h, w) positions, columns = channels
    rows = dw.reshape(9, 3)
    segments = np.concatenate([[0], np.cumsum((rows != 0).sum(1))]).astype(np.int32)
    indices = np.concatenate([np.flatnonzero(r) for r in rows]).astype(np.uint8)
    sparsity = ("table", {
        0: _vec([0, 1, 2, 3], "<i4"),
        2: ("tables", [("table", {0: ("b", 0), 1: ("i", 1)}), ("table", {0: ("b", 0), 1: ("i", 3)}),
                       ("table", {0: ("b", 0), 1: ("i", 3)}),
                       ("table", {0: ("b", 1), 2: ("B", 1), 3: ("table", {0: _vec(segments, "<i4")}),
                                  4: ("B", 3), 5: ("table", {0: _vec(indices, "u1")})})]),
    })
    buffers = [np.zeros(0, np.uint8), w, bias, dw[dw != 0], alpha, pads]
    tensors = [
        _tensor([1, 5, 5, 2], 0, 0, "input"), _tensor([3, 3, 3, 2], 1, 1, "w16"), _tensor([3, 3, 3, 2], 0, 0, "w"),
        _tensor([3], 0, 2, "bias"), _tensor([1, 3, 3, 3], 0, 0, "conv"), _tensor([1, 3, 3, 3], 0, 0, "dw"),
        _tensor([1, 3, 3, 3], 0, 0, "dwout"), _tensor([1, 1, 3], 0, 4, "alpha"), _tensor([1, 3, 3, 3], 0, 0, "prelu"),
        _tensor([4, 2], 2, 5, "pads"), _tensor([1, 3, 3, 5], 0, 0, "pad"), _tensor([1, 9, 5], 0, 0, "out"),
        _tensor([1, 3, 3, 3], 0, 3, "dw_sparse", sparsity),
    ]
    ops = [
        _op(0, [1], [2]),
        _op(1, [0, 2, 3], [4], {0: ("b", 0), 1: ("i", 2), 2: ("i", 2), 3: ("b", 1)}),
        _op(5, [12], [5]),
        _op(2, [4, 5, -1], [6], {0: ("b", 0), 1: ("i", 1), 2: ("i", 1), 3: ("i", 1), 4: ("b", 0)}),
        _op(3, [6, 7], [8]),
        _op(4, [8, 9], [10]),
        _op(6, [10], [11], {0: _vec([1, 9, 5], "<i4")}),
    ]
    codes = [("table", {0: ("b", c), 3: ("i", c)}) for c in (6, 3, 4, 54, 34, 124, 22)]
    subgraph = ("table", {0: ("tables", tensors), 1: _vec([0], "<i4"), 2: _vec([11], "<i4"),
                          3: ("tables", ops), 4: ("str", "main")})
    model = ("table", {0: ("I", 3), 1: ("tables", codes), 2: ("tables", [subgraph]), 3: ("str", "tiny"),
                       4: ("tables", [("table", {0: _vec(b.reshape(-1).view(np.uint8), "u1")}) for b in buffers])})
    return _Writer().finish(model), (w.astype(np.float32), bias, dw, alpha)


def _same(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """TF SAME padding of (H,W,C), odd pixel after."""
    out = -(-x.shape[0] // s)
    total = max((out - 1) * s + k - x.shape[0], 0)
    return np.pad(x, ((total // 2, total - total // 2), (total // 2, total - total // 2), (0, 0)))


def _reference(x: np.ndarray, w, bias, dw, alpha) -> np.ndarray:
    """The tiny model in plain numpy loops (NHWC, one image)."""
    xp = _same(x, 3, 2)
    conv = np.zeros((3, 3, 3))
    for i in range(3):
        for j in range(3):
            conv[i, j] = np.einsum("hwc,ohwc->o", xp[2 * i:2 * i + 3, 2 * j:2 * j + 3], w) + bias
    conv = np.maximum(conv, 0)
    cp = _same(conv, 3, 1)
    d = np.zeros((3, 3, 3))
    for i in range(3):
        for j in range(3):
            d[i, j] = np.einsum("hwc,hwc->c", cp[i:i + 3, j:j + 3], dw[0])
    p = np.where(d >= 0, d, d * alpha[0, 0])
    p = np.concatenate([p, np.zeros((3, 3, 2))], -1)
    return p.reshape(9, 5)


def test_tiny_model_parses_and_runs_like_numpy():
    rng = np.random.default_rng(3)
    data, (w, bias, dw, alpha) = _tiny_model(rng)
    model = parse_tflite(data, "tiny")
    assert model.description == "tiny" and model.name == "main" and model.version == 3
    assert [o.op for o in model.operators] == ["DEQUANTIZE", "CONV_2D", "DENSIFY", "DEPTHWISE_CONV_2D", "PRELU",
                                               "PAD", "RESHAPE"]
    assert model.tensors[1].data.dtype == np.float16 and model.tensors[1].data.shape == (3, 3, 3, 2)
    sparse = model.tensors[12]
    assert sparse.sparse and sparse.data.size == int((dw != 0).sum())
    np.testing.assert_array_equal(densify(sparse), dw)

    net = TFLiteNet(model)
    assert net.output_names == ("out",)
    x = rng.normal(size=(2, 5, 5, 2)).astype(np.float32)
    with torch.no_grad():
        (out,) = net(torch.from_numpy(x).permute(0, 3, 1, 2))
    assert out.shape == (2, 9, 5)
    for b in range(2):
        np.testing.assert_allclose(out[b].numpy(), _reference(x[b], w, bias, dw, alpha), atol=1e-5)


def test_bad_files_raise_format_errors():
    data, _ = _tiny_model(np.random.default_rng(0))
    with pytest.raises(WeightsFormatError, match="not a TFLite model"):
        parse_tflite(b"\0" * 4 + b"XXXX" + data[8:], "bad")
    with pytest.raises(WeightsFormatError):
        parse_tflite(data[: len(data) // 3], "truncated")


def test_unsupported_operator_is_named():
    data, _ = _tiny_model(np.random.default_rng(0))
    # turn the PAD operator code (34) into SPLIT (49): the port must refuse it by name
    model = parse_tflite(data, "tiny")
    ops = list(model.operators)
    from dataclasses import replace

    ops[5] = replace(ops[5], op="SPLIT")
    with pytest.raises(WeightsFormatError, match="SPLIT"):
        TFLiteNet(replace(model, operators=ops))
