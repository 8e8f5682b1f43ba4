"""Reader for dlib's ``serialize()`` byte format, enough to load a DNN face-recognition model.

Written from dlib's format description (``dlib/serialize.h``, ``dlib/float_details.h``,
``dlib/dnn/tensor.h``, ``dlib/dnn/core.h``, ``layers.h``, ``input.h``, ``loss.h``); no dlib code
is used. Encodings:

- integer: one header byte ``b`` (``b & 0x0F`` = number of magnitude bytes, ``b & 0x80`` = negative),
  then the magnitude, little-endian. Zero is ``01 00``.
- bool: one ASCII byte, ``'1'`` or ``'0'``.
- string: integer length, then the bytes.
- float/double (``float_details``): integer mantissa (64-bit), integer exponent (16-bit); the
  value is ``mantissa * 2**exponent``; exponent 32000/32001/32002 mean +inf/-inf/nan.
- tensor: integer version (2), integers num_samples, k, nr, nc, then ``n*k*nr*nc`` float32
  little-endian IEEE values (row-major, NCHW).
- alias_tensor (a view into a layer's ``params``): integer version (1), n, k, nr, nc.

A network ``loss<L_n<...L_1<input>>>`` is written outside-in: the loss wrapper's version and
the loss details, then the version of every ``add_layer`` (2), ``add_tag_layer`` /
``add_skip_layer`` (1) from the top down to the layer holding the input (3), then the input
layer's details, and then — innermost first — each computational layer's details followed by
three bools and three (empty) tensors (x_grad, cached_output, params_grad; the version-3
wrapper of the input layer adds its sample-expansion-factor integer). Tag and skip
layers write nothing of their own after their version: the network's wiring is in the C++
type, not in the file, so :mod:`.network` fixes the architecture and checks every layer read
against it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import WeightsFormatError

__all__ = ["DlibLayer", "DlibNet", "DlibReader", "read_dlib_net"]

_FLOAT_SPECIAL = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}


class DlibReader:
    """Sequential reader over the bytes of a dlib-serialized object."""

    def __init__(self, data: bytes, name: str = "<bytes>") -> None:
        self.data = data
        self.pos = 0
        self.name = name

    def _fail(self, what: str) -> WeightsFormatError:
        return WeightsFormatError(
            f"{self.name}: {what} at byte {self.pos} — not a dlib DNN file of the expected kind "
            f"(or truncated). Re-install `face-recognition-models` or pass the right weights file."
        )

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self._fail(f"unexpected end of file reading {n} bytes")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def int(self) -> int:
        """A variable-length integer (dlib ``pack_int``)."""
        head = self._take(1)[0]
        size, negative = head & 0x0F, bool(head & 0x80)
        if head & 0x70 or size > 8:
            self.pos -= 1
            raise self._fail(f"bad integer header byte 0x{head:02x}")
        value = int.from_bytes(self._take(size), "little", signed=False)
        return -value if negative else value

    def bool(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            self.pos -= 1
            raise self._fail(f"bad bool byte {ch!r}")
        return ch == b"1"

    def string(self) -> str:
        n = self.int()
        if n < 0 or n > 4096:
            raise self._fail(f"implausible string length {n}")
        return self._take(n).decode("latin-1")

    def float(self) -> float:
        """A ``float_details``-encoded float or double."""
        mantissa = self.int()
        exponent = self.int()
        if exponent in _FLOAT_SPECIAL:
            return _FLOAT_SPECIAL[exponent]
        return float(mantissa) * 2.0 ** exponent

    def tensor(self) -> np.ndarray:
        """A ``tensor``/``resizable_tensor``: float32 array of shape (n, k, nr, nc)."""
        version = self.int()
        if version != 2:
            raise self._fail(f"unsupported tensor version {version}")
        shape = tuple(self.int() for _ in range(4))
        if any(s < 0 for s in shape):
            raise self._fail(f"negative tensor shape {shape}")
        count = int(np.prod(shape))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        """An ``alias_tensor`` (a shape only): (n, k, nr, nc)."""
        version = self.int()
        if version != 1:
            raise self._fail(f"unsupported alias_tensor version {version}")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]

    def expect_string(self, *allowed: str) -> str:
        start = self.pos
        s = self.string()
        if s not in allowed:
            self.pos = start
            raise self._fail(f"expected one of {allowed}, found {s!r}")
        return s


@dataclass
class DlibLayer:
    """One computational layer read from the file.

    ``kind``: "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc".
    ``params``: named float32 arrays (con: weight (O,I,kh,kw), bias (O,); affine: gamma (C,),
    beta (C,); fc: weight (out,in), bias (out,) or absent). ``config``: ints (num_filters,
    kernel (kh,kw), stride (sy,sx), padding (py,px), mode, ...).
    """

    kind: str
    params: dict[str, np.ndarray] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)


@dataclass
class DlibNet:
    """A parsed dlib DNN: loss and input details and the layers, input side first."""

    loss: str
    loss_config: dict[str, float]
    input_kind: str
    input_mean_rgb: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[DlibLayer]
    versions: list[int]


def _read_con(r: DlibReader) -> DlibLayer:
    params = r.tensor().reshape(-1)
    num_filters, kh, kw, sy, sx, py, px = (r.int() for _ in range(7))
    f_shape = r.alias_tensor()
    b_shape = r.alias_tensor()
    lr_mult = [r.float() for _ in range(4)]  # learning-rate / weight-decay multipliers (unused)
    n_w = int(np.prod(f_shape))
    n_b = int(np.prod(b_shape))
    if f_shape[0] != num_filters or (f_shape[2], f_shape[3]) != (kh, kw) or n_w + n_b != params.size:
        raise r._fail(f"con_ layer shapes disagree (filters {f_shape}, biases {b_shape}, params {params.size})")
    return DlibLayer(
        "con",
        {"weight": params[:n_w].reshape(f_shape).copy(), "bias": params[n_w:].copy()},
        {"num_filters": num_filters, "kernel": (kh, kw), "stride": (sy, sx), "padding": (py, px),
         "multipliers": lr_mult},
    )


def _read_affine(r: DlibReader) -> DlibLayer:
    params = r.tensor().reshape(-1)
    g_shape = r.alias_tensor()
    b_shape = r.alias_tensor()
    mode = r.int()  # 0 = CONV_MODE (per channel), 1 = FC_MODE (per element)
    n_g = int(np.prod(g_shape))
    if n_g != int(np.prod(b_shape)) or 2 * n_g != params.size:
        raise r._fail(f"affine_ layer shapes disagree (gamma {g_shape}, beta {b_shape}, params {params.size})")
    return DlibLayer("affine", {"gamma": params[:n_g].copy(), "beta": params[n_g:].copy()},
                     {"mode": mode, "shape": g_shape})


def _read_pool(r: DlibReader, kind: str) -> DlibLayer:
    nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
    return DlibLayer(kind, {}, {"kernel": (nr, nc), "stride": (sy, sx), "padding": (py, px)})


def _read_fc(r: DlibReader) -> DlibLayer:
    num_outputs = r.int()
    num_inputs = r.int()
    params = r.tensor().reshape(-1)
    w_shape = r.alias_tensor()
    b_shape = r.alias_tensor()
    bias_mode = r.int()  # 0 = FC_HAS_BIAS, 1 = FC_NO_BIAS
    lr_mult = [r.float() for _ in range(4)]
    n_w = int(np.prod(w_shape))
    if (w_shape[0], w_shape[1]) != (num_inputs, num_outputs) or n_w + int(np.prod(b_shape)) != params.size:
        raise r._fail(f"fc_ layer shapes disagree (weights {w_shape}, params {params.size})")
    # dlib computes out = x · W with W (num_inputs, num_outputs); store it PyTorch-style (out, in).
    layer_params = {"weight": params[:n_w].reshape(num_inputs, num_outputs).T.copy()}
    if bias_mode == 0:
        layer_params["bias"] = params[n_w:].copy()
    return DlibLayer("fc", layer_params, {"num_outputs": num_outputs, "num_inputs": num_inputs,
                                          "bias_mode": bias_mode, "multipliers": lr_mult})


_LAYER_READERS = {
    "con_4": _read_con,
    "affine_": _read_affine,
    "relu_": lambda r: DlibLayer("relu"),
    "max_pool_2": lambda r: _read_pool(r, "max_pool"),
    "avg_pool_2": lambda r: _read_pool(r, "avg_pool"),
    "add_prev_": lambda r: DlibLayer("add_prev"),
    "fc_2": _read_fc,
}


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse a dlib DNN file ``loss_metric<... input_rgb_image_sized<N>>`` into a :class:`DlibNet`.

    Supports the layer kinds of dlib's face-recognition ResNet (con, affine, relu, max/avg pool,
    add_prev, fc). Raises :class:`WeightsFormatError` on anything else or on trailing bytes.
    """
    path = Path(path)
    r = DlibReader(path.read_bytes(), name=str(path))
    if r.int() != 1:
        raise r._fail("unexpected add_loss_layer version")
    loss = r.expect_string("loss_metric_2", "loss_metric_")
    loss_config = {"margin": r.float(), "distance_threshold": r.float()}
    versions = []
    while True:
        v = r.int()
        versions.append(v)
        if v == 3:  # the add_layer wrapping the input layer
            break
        if v not in (1, 2) or len(versions) > 10000:
            raise r._fail(f"unexpected layer wrapper version {v}")
    input_kind = r.expect_string("input_rgb_image_sized", "input_rgb_image")
    mean_rgb = (r.float(), r.float(), r.float())
    size = (r.int(), r.int()) if input_kind == "input_rgb_image_sized" else (0, 0)
    layers = []
    while not r.at_end():
        start = r.pos
        name = r.string()
        reader = _LAYER_READERS.get(name)
        if reader is None:
            r.pos = start
            raise r._fail(f"unsupported layer {name!r}")
        layers.append(reader(r))
        for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, output disabled
            r.bool()
        for _ in range(3):  # x_grad, cached_output, params_grad / grad_final
            r.tensor()
        if not layers[:-1]:  # the version-3 wrapper of the input layer also stores
            r.int()  # its sample expansion factor
    n_add_layers = versions.count(2) + versions.count(3)
    if len(layers) != n_add_layers:
        raise WeightsFormatError(
            f"{path}: read {len(layers)} layers but the file declares {n_add_layers}; the file is corrupt"
        )
    return DlibNet(loss, loss_config, input_kind, mean_rgb, size, layers, versions)
