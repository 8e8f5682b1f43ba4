"""MediaPipe's face detector (BlazeFace) and Face Mesh as PyTorch modules, weights from their ``.tflite``.

The ``.tflite`` files come from the ``mediapipe==0.10.14`` wheel (Apache-2.0), installed with
``photohead models fetch mediapipe`` into ``<model cache>/mediapipe/`` (any ``mediapipe/`` folder on
the model search path works); they are read by :mod:`.tflite` and run by
:class:`~.tflite_torch.TFLiteNet`. Neither mediapipe, TensorFlow nor protobuf is needed.

- :class:`BlazeFace`: (B,3,S,S) RGB in [-1, 1] (S = 128 short range, 192 full range) → per-anchor
  scores, boxes and 6 keypoints (right eye, left eye, nose tip, mouth, right ear, left ear; the
  subject's right is at image left), decoded as MediaPipe's ``TensorsToDetectionsCalculator`` does
  (SSD anchors of ``SsdAnchorsCalculator``, fixed anchor size). :func:`weighted_nms` merges them.
- :class:`FaceMesh`: (B,3,192,192) RGB in [0, 1] (a face crop: see :mod:`.mediapipe_backend`)
  → 468 points (x, y, z) in crop pixels and the face-presence probability.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import WeightsNotFoundError
from ..facemodel.search import search_path
from .tflite import read_tflite
from .tflite_torch import TFLiteNet

__all__ = [
    "BlazeFace", "BlazeFaceSpec", "FaceMesh", "FULL_RANGE", "HAND_FILES", "IRIS_FILES", "MEDIAPIPE_FILES", "MEDIAPIPE_FOLDER", "SHORT_RANGE",
    "find_mediapipe_file", "load_blazeface", "load_face_mesh", "load_tflite_net", "ssd_anchors", "weighted_nms",
]

MEDIAPIPE_FOLDER = "mediapipe"
# The files this port reads, with their sha256 inside the pinned mediapipe 0.10.14 wheel.
MEDIAPIPE_FILES = {
    "face_detection_short_range.tflite": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    "face_detection_full_range_sparse.tflite": "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    "face_landmark.tflite": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
}
# Optional files (fetched with the face ones; an install without them works, without hands: .hands).
HAND_FILES = {
    "palm_detection_lite.tflite": "e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18",
    "hand_landmark_lite.tflite": "048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6",
}
# Optional too (an install without it finds the irises by their darkness: backend.gaze; .iris)
IRIS_FILES = {
    "iris_landmark.tflite": "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
}
N_MESH = 468
MESH_SIZE = 192


@dataclass(frozen=True)
class BlazeFaceSpec:
    """One BlazeFace model and MediaPipe's decoding options for it (``face_detection*.pbtxt``).

    - ``input_size``: S of the (S,S) input; ``strides``: SSD layer strides (one anchor set per
      layer, layers of equal stride share cells); ``interpolated``: whether each layer adds the
      interpolated-scale anchor (2 anchors per layer instead of 1).
    - ``min_score``: detections below this probability are dropped; ``iou``: weighted NMS overlap.
    """

    file: str
    input_size: int
    strides: tuple[int, ...]
    interpolated: bool
    min_score: float
    iou: float = 0.3


SHORT_RANGE = BlazeFaceSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), True, 0.5)
FULL_RANGE = BlazeFaceSpec("face_detection_full_range_sparse.tflite", 192, (4,), False, 0.6)


def ssd_anchors(spec: BlazeFaceSpec) -> np.ndarray:
    """Anchor centres (N,2) float32 x, y in [0, 1] of the input, in the network's output order."""
    out = []
    layer = 0
    while layer < len(spec.strides):
        per_cell = 0
        last = layer
        while last < len(spec.strides) and spec.strides[last] == spec.strides[layer]:
            per_cell += 2 if spec.interpolated else 1
            last += 1
        n = -(-spec.input_size // spec.strides[layer])
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        cells = np.stack([xs.reshape(-1), ys.reshape(-1)], 1)
        out.append(np.repeat(cells, per_cell, 0))
        layer = last
    return np.concatenate(out).astype(np.float32)


class BlazeFace(nn.Module):
    """BlazeFace with MediaPipe's decoding. ``forward(x)``: x (B,3,S,S) float32 RGB in [-1, 1] →
    ``(scores (B,N) probability, boxes (B,N,4) x0,y0,x1,y1, keypoints (B,N,K,2) x,y)``, coordinates
    as fractions of the input (0 = left/top edge, 1 = right/bottom edge); K = 6 for the face
    models, 7 for MediaPipe's palm detector (same SSD decoding, :mod:`.hands`)."""

    def __init__(self, net: TFLiteNet, spec: BlazeFaceSpec) -> None:
        super().__init__()
        self.net = net
        self.spec = spec
        self.register_buffer("anchors", torch.from_numpy(ssd_anchors(spec)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raw, logits = self.net(x)  # (B,N,16), (B,N,1)
        if raw.shape[1] != self.anchors.shape[0]:
            raise ValueError(f"BlazeFace gave {raw.shape[1]} anchors, expected {self.anchors.shape[0]}")
        s = float(self.spec.input_size)
        centre = raw[..., 0:2] / s + self.anchors
        half = 0.5 * raw[..., 2:4] / s
        boxes = torch.cat([centre - half, centre + half], -1)
        k = (raw.shape[-1] - 4) // 2  # 6 face keypoints, 7 palm keypoints
        keypoints = raw[..., 4 : 4 + 2 * k].reshape(*raw.shape[:2], k, 2) / s + self.anchors[:, None, :]
        scores = torch.sigmoid(logits[..., 0].clamp(-100.0, 100.0))
        return scores, boxes, keypoints


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of box (4,) with boxes (N,4), x0,y0,x1,y1."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, min_score: float,
                 iou: float) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's weighted non-maximum suppression for one image.

    scores (N,), boxes (N,4), keypoints (N,K,2). Candidates ≥ ``min_score`` are taken best
    first; each absorbs the remaining ones overlapping it by IoU > ``iou``, and its box and
    keypoints become their score-weighted mean (its score stays). Returns [(score, box (4,),
    keypoints (K,2))], best first.
    """
    keep = np.flatnonzero(scores >= min_score)
    order = keep[np.argsort(-scores[keep], kind="stable")]
    out = []
    while order.size:
        overlap = _iou(boxes[order[0]], boxes[order])
        overlap[0] = np.inf  # the candidate itself, even a zero-area one
        members = order[overlap > iou]
        w = scores[members][:, None]
        box = (boxes[members] * w).sum(0) / w.sum()
        kps = (keypoints[members] * w[:, :, None]).sum(0) / w.sum()
        out.append((float(scores[order[0]]), box, kps))
        order = order[overlap <= iou]
    return out


class FaceMesh(nn.Module):
    """Face Mesh (``face_landmark.tflite``). ``forward(x)``: x (B,3,192,192) float32 RGB in [0, 1]
    → ``(points (B,468,3), presence (B,))``: x, y in crop pixels (0 = left/top edge, 192 =
    right/bottom edge), z in the same units (relative depth, smaller = nearer the camera),
    presence the face-presence probability (MediaPipe rejects a crop below 0.5)."""

    def __init__(self, net: TFLiteNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mesh, flag = self.net(x)  # (B,1,1,1404), (B,1,1,1)
        return mesh.reshape(x.shape[0], N_MESH, 3), torch.sigmoid(flag.reshape(x.shape[0]))


def find_mediapipe_file(name: str, folder: str | Path | None = None) -> Path:
    """Locate one MediaPipe ``.tflite`` (``folder``, else ``mediapipe/`` on the model search path).

    Raises :class:`WeightsNotFoundError` saying how to install it.
    """
    dirs = [Path(folder)] if folder is not None else [d / MEDIAPIPE_FOLDER for d in search_path()]
    for d in dirs:
        if (d / name).is_file():
            return d / name
    raise WeightsNotFoundError(
        f"MediaPipe weights {name} not found in {', '.join(str(d) for d in dirs)}: run "
        "`photohead models fetch mediapipe` (downloads the pinned mediapipe wheel, ~36 MB, keeps 7 files)"
    )


@functools.lru_cache(maxsize=8)  # every file of the set (6) stays parsed: one head asks for some twice
def load_tflite_net(path: Path) -> TFLiteNet:
    """The graph of one ``.tflite`` file as a frozen PyTorch module (eval, CPU float32), parsed
    once per file: the shared core of every MediaPipe model's loader."""
    return TFLiteNet(read_tflite(path)).eval().requires_grad_(False)


def load_blazeface(spec: BlazeFaceSpec = SHORT_RANGE, folder: str | Path | None = None) -> BlazeFace:
    """The detector for ``spec`` (frozen, eval, CPU float32); the parsed graph is cached per file."""
    return BlazeFace(load_tflite_net(find_mediapipe_file(spec.file, folder)), spec).eval()


def load_face_mesh(folder: str | Path | None = None) -> FaceMesh:
    """Face Mesh (frozen, eval, CPU float32); the parsed graph is cached per file."""
    return FaceMesh(load_tflite_net(find_mediapipe_file("face_landmark.tflite", folder))).eval()
