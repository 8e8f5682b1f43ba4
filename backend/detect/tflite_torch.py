"""Run a parsed TFLite graph as a PyTorch module: the same architecture, the same weights.

:class:`TFLiteNet` is built from a :class:`~backend.detect.tflite.TFLiteModel`: constant
sub-graphs (``DEQUANTIZE`` of float16 weights, ``DENSIFY`` of sparse ones) are folded at build
time; the remaining ops become a fixed list of steps whose weights are registered as buffers
in PyTorch's layouts (convolution OHWI → OIHW, depthwise 1HW(C·M) → (C·M)1HW). Activations
flow as NCHW float tensors inside (4-D TFLite tensors are NHWC: shape-sensitive ops such as
RESHAPE, CONCATENATION and PAD translate their axes); the module takes (B,C,H,W) and returns
each graph output in TFLite's layout with batch B. TFLite's SAME padding (extra pixel at the
end when the total is odd) is applied explicitly.

Supported ops: CONV_2D, DEPTHWISE_CONV_2D, ADD, MUL, PAD, RELU, RELU6, PRELU, LOGISTIC,
MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE, CONCATENATION, RESIZE_BILINEAR, DEPTH_TO_SPACE, MEAN,
FULLY_CONNECTED (and the constant-only DEQUANTIZE / DENSIFY). Any other op raises :class:`WeightsFormatError` at build.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsFormatError
from .tflite import TFLiteModel, TFLiteOperator, densify

__all__ = ["TFLiteNet", "SUPPORTED_OPS"]

SUPPORTED_OPS = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "PAD", "RELU", "RELU6", "PRELU", "LOGISTIC", "MAX_POOL_2D",
    "AVERAGE_POOL_2D", "RESHAPE", "CONCATENATION", "RESIZE_BILINEAR", "DEPTH_TO_SPACE", "MEAN", "FULLY_CONNECTED",
)
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def _act(x: torch.Tensor, code: int) -> torch.Tensor:
    """TFLite fused activation (0 none, 1 RELU, 2 RELU_N1_TO_1, 3 RELU6, 4 TANH)."""
    if code == 0:
        return x
    if code == 1:
        return F.relu(x)
    if code == 2:
        return x.clamp(-1.0, 1.0)
    if code == 3:
        return x.clamp(0.0, 6.0)
    if code == 4:
        return torch.tanh(x)
    raise WeightsFormatError(f"tflite: unsupported fused activation {code}")


def _same_pad(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite SAME padding for one axis: (before, after), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _nchw_const(a: np.ndarray) -> np.ndarray:
    """A constant operand in NHWC broadcasting form → NCHW broadcasting form (4-D result)."""
    a = np.asarray(a, np.float32)
    a = a.reshape((1,) * (4 - a.ndim) + a.shape) if a.ndim < 4 else a
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


class TFLiteNet(nn.Module):
    """A TFLite graph's subgraph 0 as a module. ``forward(x)`` with x (B,C,H,W) float32 returns
    a list of the graph outputs, each in TFLite's layout (NHWC for 4-D) with leading batch B.

    ``output_names`` lists the outputs' tensor names in the same order.
    """

    def __init__(self, model: TFLiteModel) -> None:
        super().__init__()
        consts: dict[int, np.ndarray] = {}
        for t in model.tensors:
            if t.data is not None:
                consts[t.index] = densify(t) if t.sparse else t.data
        self._steps: list[tuple[str, tuple[int, ...], tuple[int, ...], dict]] = []
        self._nbuf = 0
        for op in model.operators:
            if all(i in consts for i in op.inputs if i >= 0):
                consts.update(self._fold(op, consts))
                continue
            if op.op not in SUPPORTED_OPS:
                raise WeightsFormatError(
                    f"tflite: operator {op.op} is not supported by the PyTorch port (supported: {', '.join(SUPPORTED_OPS)})")
            self._steps.append((op.op, op.inputs, op.outputs, self._params(op, consts, model)))
        self.input_index = model.inputs[0]
        self.output_index = tuple(model.outputs)
        self.output_names = tuple(model.tensors[i].name for i in model.outputs)
        self.input_shape = model.tensors[model.inputs[0]].shape  # NHWC

    # -- build time ---------------------------------------------------------------------------
    @staticmethod
    def _fold(op: TFLiteOperator, consts: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        if op.op in ("DEQUANTIZE", "DENSIFY"):
            return {op.outputs[0]: np.asarray(consts[op.inputs[0]], np.float32)}
        raise WeightsFormatError(f"tflite: cannot fold constant operator {op.op}")

    def _buffer(self, array: np.ndarray) -> str:
        name = f"w{self._nbuf}"
        self._nbuf += 1
        self.register_buffer(name, torch.from_numpy(np.array(array, np.float32)))
        return name

    def _params(self, op: TFLiteOperator, consts: dict[int, np.ndarray], model: TFLiteModel) -> dict:
        o, kind = op.options, op.op
        p: dict = {}
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = consts[op.inputs[1]]
            bias = consts.get(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            p["same"] = o.scalar(0, "b") == 0
            p["stride"] = (o.scalar(2, "i"), o.scalar(1, "i"))  # (h, w)
            if kind == "CONV_2D":
                p["act"] = o.scalar(3, "b")
                p["dilation"] = (o.scalar(5, "i", 1), o.scalar(4, "i", 1))
                p["weight"] = self._buffer(w.transpose(0, 3, 1, 2))  # OHWI → OIHW
                p["groups"] = 1
            else:
                p["act"] = o.scalar(4, "b")
                p["dilation"] = (o.scalar(6, "i", 1), o.scalar(5, "i", 1))
                p["weight"] = self._buffer(w.transpose(3, 0, 1, 2))  # 1HW(CM) → (CM)1HW
                c_in = model.tensors[op.inputs[0]].shape[3]
                p["groups"] = c_in
            p["bias"] = None if bias is None else self._buffer(bias)
        elif kind in ("ADD", "MUL"):
            p["act"] = o.scalar(0, "b") if o is not None else 0
            p["const"] = {j: self._buffer(_nchw_const(consts[i]) if len(model.tensors[op.inputs[1 - j]].shape) == 4
                                          else consts[i])
                          for j, i in enumerate(op.inputs) if i in consts}
        elif kind == "PAD":
            pads = np.asarray(consts[op.inputs[1]], np.int64)
            if pads.shape == (4, 2):  # NHWC → F.pad order (W, H, C)
                p["pad"] = tuple(int(v) for v in (*pads[2], *pads[1], *pads[3]))
                if pads[0].any():
                    raise WeightsFormatError("tflite: PAD of the batch axis is unsupported")
            else:
                p["pad"] = tuple(int(v) for v in pads[::-1].reshape(-1))
        elif kind == "PRELU":
            a = consts[op.inputs[1]]
            p["alpha"] = self._buffer(_nchw_const(a))
        elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            p["same"] = o.scalar(0, "b") == 0
            p["stride"] = (o.scalar(2, "i"), o.scalar(1, "i"))
            p["kernel"] = (o.scalar(4, "i"), o.scalar(3, "i"))
            p["act"] = o.scalar(5, "b")
        elif kind == "RESHAPE":
            shape = model.tensors[op.outputs[0]].shape
            p["shape"] = tuple(int(s) for s in shape[1:])
        elif kind == "CONCATENATION":
            nd = len(model.tensors[op.outputs[0]].shape)
            axis = o.scalar(0, "i") % nd
            p["axis"] = _NHWC_TO_NCHW_AXIS[axis] if nd == 4 else axis
            p["act"] = o.scalar(1, "b")
        elif kind == "RESIZE_BILINEAR":
            p["size"] = tuple(int(v) for v in consts[op.inputs[1]])
            p["align_corners"] = bool(o.scalar(2, "B")) if o is not None else False
            p["half_pixel"] = bool(o.scalar(3, "B")) if o is not None else False
            if not (p["align_corners"] or p["half_pixel"]):
                raise WeightsFormatError("tflite: RESIZE_BILINEAR without align_corners or half_pixel_centers")
        elif kind == "DEPTH_TO_SPACE":
            p["block"] = o.scalar(0, "i")
        elif kind == "MEAN":  # ReducerOptions: keep_dims[0]
            nd = len(model.tensors[op.inputs[0]].shape)
            axes = [int(a) % nd for a in np.asarray(consts[op.inputs[1]]).reshape(-1)]
            p["dims"] = tuple(sorted(_NHWC_TO_NCHW_AXIS[a] if nd == 4 else a for a in axes))
            p["keep"] = bool(o.scalar(0, "B")) if o is not None else False
            if p["keep"] and nd != 4:
                raise WeightsFormatError("tflite: MEAN with keep_dims is supported on 4-D tensors only")
        elif kind == "FULLY_CONNECTED":  # options: fused_activation_function[0] weights_format[1] keep_num_dims[2]
            p["act"] = o.scalar(0, "b") if o is not None else 0
            if o is not None and (o.scalar(1, "b") or o.scalar(2, "B")):
                raise WeightsFormatError("tflite: FULLY_CONNECTED with shuffled weights or keep_num_dims is unsupported")
            p["weight"] = self._buffer(consts[op.inputs[1]])  # (out, in)
            has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
            p["bias"] = self._buffer(consts[op.inputs[2]]) if has_bias else None
        return p

    # -- run time -----------------------------------------------------------------------------
    def _conv(self, x: torch.Tensor, p: dict) -> torch.Tensor:
        w = getattr(self, p["weight"])
        if p["same"]:
            ph = _same_pad(x.shape[2], w.shape[2], p["stride"][0], p["dilation"][0])
            pw = _same_pad(x.shape[3], w.shape[3], p["stride"][1], p["dilation"][1])
            if any(ph + pw):
                x = F.pad(x, (*pw, *ph))
        b = None if p["bias"] is None else getattr(self, p["bias"])
        return _act(F.conv2d(x, w, b, p["stride"], 0, p["dilation"], p["groups"]), p["act"])

    def _pool(self, x: torch.Tensor, p: dict, kind: str) -> torch.Tensor:
        if p["same"]:
            ph = _same_pad(x.shape[2], p["kernel"][0], p["stride"][0], 1)
            pw = _same_pad(x.shape[3], p["kernel"][1], p["stride"][1], 1)
            if any(ph + pw):
                if kind != "MAX_POOL_2D":
                    raise WeightsFormatError("tflite: AVERAGE_POOL_2D with SAME padding is unsupported")
                x = F.pad(x, (*pw, *ph), value=float("-inf"))
        f = F.max_pool2d if kind == "MAX_POOL_2D" else F.avg_pool2d
        return _act(f(x, p["kernel"], p["stride"]), p["act"])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B,C,H,W) float32 → the graph outputs (TFLite layout, batch B)."""
        vals: dict[int, torch.Tensor] = {self.input_index: x}
        batch = x.shape[0]
        for kind, ins, outs, p in self._steps:
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                y = self._conv(vals[ins[0]], p)
            elif kind in ("ADD", "MUL"):
                a, b = (getattr(self, p["const"][j]) if j in p["const"] else vals[ins[j]] for j in range(2))
                y = _act(a + b if kind == "ADD" else a * b, p["act"])
            elif kind == "PAD":
                y = F.pad(vals[ins[0]], p["pad"])
            elif kind == "RELU":
                y = F.relu(vals[ins[0]])
            elif kind == "RELU6":
                y = vals[ins[0]].clamp(0.0, 6.0)
            elif kind == "LOGISTIC":
                y = torch.sigmoid(vals[ins[0]])
            elif kind == "PRELU":
                v = vals[ins[0]]
                y = torch.where(v >= 0, v, v * getattr(self, p["alpha"]))
            elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
                y = self._pool(vals[ins[0]], p, kind)
            elif kind == "RESHAPE":
                v = vals[ins[0]]
                if v.ndim == 4:
                    v = v.permute(0, 2, 3, 1)
                y = v.reshape(batch, *p["shape"])
                if y.ndim == 4:
                    y = y.permute(0, 3, 1, 2)
            elif kind == "CONCATENATION":
                y = _act(torch.cat([vals[i] for i in ins], p["axis"]), p["act"])
            elif kind == "RESIZE_BILINEAR":
                y = F.interpolate(vals[ins[0]], size=p["size"], mode="bilinear", align_corners=p["align_corners"])
            elif kind == "DEPTH_TO_SPACE":
                v, r = vals[ins[0]], p["block"]
                bsz, c, h, w = v.shape
                y = v.reshape(bsz, r, r, c // (r * r), h, w).permute(0, 3, 4, 1, 5, 2).reshape(bsz, c // (r * r), h * r, w * r)
            elif kind == "MEAN":
                y = vals[ins[0]].mean(dim=p["dims"], keepdim=p["keep"])
            elif kind == "FULLY_CONNECTED":
                v = vals[ins[0]]
                w = getattr(self, p["weight"])
                v = (v.permute(0, 2, 3, 1) if v.ndim == 4 else v).reshape(-1, w.shape[1])  # TFLite's row-major flatten
                y = _act(F.linear(v, w, None if p["bias"] is None else getattr(self, p["bias"])), p["act"])
            else:  # pragma: no cover - rejected at build time
                raise WeightsFormatError(f"tflite: operator {kind} unsupported")
            vals[outs[0]] = y
        out = []
        for i in self.output_index:
            v = vals[i]
            out.append(v.permute(0, 2, 3, 1) if v.ndim == 4 else v)
        return out
