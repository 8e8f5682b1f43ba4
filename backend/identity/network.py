"""The frozen face-recognition network for L_id: dlib's ResNet (``dlib_face_recognition_resnet_model_v1``)
ported to PyTorch, and its weight loading (dlib file → cached ``.pt``).

Layer mapping, dlib (``dnn_face_recognition_ex.cpp``, read input → output) → :class:`IdentityNet`:

=====================================================  ==============================================
dlib                                                   PyTorch
=====================================================  ==============================================
``input_rgb_image_sized<150>`` (mean RGB in the file)  ``(255·x − mean_rgb) / 256`` (x RGB in [0,1])
``con<32,7,7,2,2>`` (padding 0) + ``affine``           ``stem``: Conv2d(3,32,7,s2,p0), affine folded in
``relu``, ``max_pool<3,3,2,2>`` (padding 0)            ReLU, MaxPool2d(3, 2)
``ares<N>``: ``relu<add_prev1<block<N,1,tag1>>>``      :class:`_Block` (down=False): relu(x + F(x))
``ares_down<N>``: ``relu<add_prev2<avg_pool<2,2,2,2,   :class:`_Block` (down=True):
skip1<tag2<block<N,2,tag1>>>>>>``                      relu(avgpool2(x) ⊕ F(x))
``block<N,s>``: ``affine<con<N,3,3,1,1,relu<affine<    F = conv2(relu(conv1(x))): conv1 3×3 stride s
con<N,3,3,s,s>>>>>``                                   (padding 1 if s=1 else 0), conv2 3×3 p1; each
                                                       ``affine`` (test-time batch norm) folded in
levels 4..0: 3×ares<32>; ares_down<64>+3×ares<64>;      ``blocks[0..13]``
ares_down<128>+2×ares<128>; ares_down<256>+2×ares<256>;
ares_down<256>
``avg_pool_everything``                                mean over H, W
``fc_no_bias<128>`` (``out = x·W``, W (256,128))       Linear(256, 128, bias=False), weight = Wᵀ
``loss_metric``                                        none: the descriptor is the fc output (not
                                                       normalised); same person ⇔ distance < 0.6
=====================================================  ==============================================

``⊕`` is dlib's ``add_prev`` on tensors of different sizes: both are zero-padded at the end of
each dimension (channels, rows, columns) to the larger size, then added — the channel count
doubles in each ``ares_down``, and at 8→4 vs 8→3 the spatial sizes differ as well (a 150² chip
flows 72, 35, 35, 17, 8, 4|3, 2|1 pixels wide). Convolutions are cross-correlations, as in
PyTorch. ``affine`` ``out = γ·x + β`` per channel is folded into the preceding convolution
(``W' = γW``, ``b' = γb + β``) at load time.

Weights: :func:`load_identity_net` reads ``models/dlib_face_recognition_resnet_model_v1.dat`` from
the ``face-recognition-models`` package (found with ``importlib``; the package is not imported),
converts it once into ``<cache>/weights/dlib_face_recognition_resnet_model_v1.pt`` and later
loads that with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import importlib.util
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsFormatError, WeightsNotFoundError
from ..facemodel.search import cache_dir
from ..io_utils import atomic_path
from .dlib_format import DlibLayer, DlibNet, read_dlib_net

__all__ = [
    "IdentityNet",
    "load_identity_net",
    "dlib_weights_path",
    "convert_dlib_weights",
    "weights_cache_path",
    "CHIP_SIZE",
    "FEATURE_DIM",
    "SAME_PERSON_THRESHOLD",
]

CHIP_SIZE = 150
FEATURE_DIM = 128
SAME_PERSON_THRESHOLD = 0.6  # dlib's decision threshold on the Euclidean descriptor distance
DLIB_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
_CACHE_FORMAT = "photohead-identity-dlib-resnet/1"

# (output channels, downsampling) of each residual block, input side first.
_BLOCKS: tuple[tuple[int, bool], ...] = (
    (32, False), (32, False), (32, False),
    (64, True), (64, False), (64, False), (64, False),
    (128, True), (128, False), (128, False),
    (256, True), (256, False), (256, False),
    (256, True),
)


def _padded_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib ``add_prev`` on (B,C,H,W) tensors of possibly different C, H, W: zero-pad both at the
    end of each dimension to the larger size, then add."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class _Block(nn.Module):
    """dlib ``ares``/``ares_down``: relu(shortcut(x) ⊕ conv2(relu(conv1(x)))), affines folded in."""

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_padded_add(y, shortcut))


class IdentityNet(nn.Module):
    """dlib's face-recognition ResNet in PyTorch: aligned 150² RGB chips → 128-D descriptors.

    Frozen after loading (:func:`load_identity_net` calls ``requires_grad_(False)`` and ``eval()``);
    gradients still flow to the input chips. The module docstring gives the layer mapping.
    Device and dtype follow ``.to()``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean_rgb", torch.tensor([122.782, 117.001, 104.298]))
        self.stem = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        blocks, cin = [], 32
        for cout, down in _BLOCKS:
            blocks.append(_Block(cin, cout, down))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(cin, FEATURE_DIM, bias=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """chips (B,3,150,150) float RGB in [0,1] (framed like ``dlib.get_face_chip(img, shape, 150,
        0.25)``; other sizes run but are outside what the net was trained on) → (B,128) descriptors,
        same dtype/device. Euclidean distance < 0.6 ⇔ same person (dlib's convention)."""
        if chips.ndim != 4 or chips.shape[1] != 3:
            raise ValueError(f"chips must be (B,3,H,W) RGB, got shape {tuple(chips.shape)}")
        x = (chips * 255.0 - self.mean_rgb.to(chips.dtype).view(1, 3, 1, 1)) / 256.0
        x = x.contiguous(memory_format=torch.channels_last)  # ~2× faster convolutions on CPU
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))


# ------------------------------------------------------------------------------------------
# weights: dlib file → state dict


def _fold(con: DlibLayer, affine: DlibLayer) -> tuple[np.ndarray, np.ndarray]:
    gamma, beta = affine.params["gamma"].astype(np.float64), affine.params["beta"].astype(np.float64)
    w = con.params["weight"].astype(np.float64) * gamma[:, None, None, None]
    b = con.params["bias"].astype(np.float64) * gamma + beta
    return w.astype(np.float32), b.astype(np.float32)


def _state_dict_from_dlib(net: DlibNet, source: str) -> dict[str, torch.Tensor]:
    """Walk the parsed layers against the fixed architecture; return an IdentityNet state dict."""
    layers = list(net.layers)
    pos = 0

    def take(kind: str, what: str, **expect: object) -> DlibLayer:
        nonlocal pos
        if pos >= len(layers):
            raise WeightsFormatError(f"{source}: ends before {what}; not dlib's face-recognition ResNet")
        layer = layers[pos]
        bad = [k for k, v in expect.items() if layer.config.get(k) != v]
        if layer.kind != kind or bad:
            raise WeightsFormatError(
                f"{source}: layer {pos} is {layer.kind} {layer.config}, expected {kind} {expect} ({what}); "
                f"this file is not dlib's face-recognition ResNet (dnn_face_recognition_ex.cpp)"
            )
        pos += 1
        return layer

    if net.input_size != (CHIP_SIZE, CHIP_SIZE):
        raise WeightsFormatError(f"{source}: input size {net.input_size}, expected 150×150")
    sd: dict[str, torch.Tensor] = {"mean_rgb": torch.tensor(net.input_mean_rgb, dtype=torch.float32)}
    con = take("con", "stem conv", num_filters=32, kernel=(7, 7), stride=(2, 2), padding=(0, 0))
    w, b = _fold(con, take("affine", "stem affine"))
    sd["stem.weight"], sd["stem.bias"] = torch.from_numpy(w), torch.from_numpy(b)
    take("relu", "stem relu")
    take("max_pool", "stem max pool", kernel=(3, 3), stride=(2, 2), padding=(0, 0))
    for i, (cout, down) in enumerate(_BLOCKS):
        s, p = (2, 0) if down else (1, 1)
        c1 = take("con", f"block {i} conv1", num_filters=cout, kernel=(3, 3), stride=(s, s), padding=(p, p))
        w1, b1 = _fold(c1, take("affine", f"block {i} affine1"))
        take("relu", f"block {i} relu1")
        c2 = take("con", f"block {i} conv2", num_filters=cout, kernel=(3, 3), stride=(1, 1), padding=(1, 1))
        w2, b2 = _fold(c2, take("affine", f"block {i} affine2"))
        if down:
            take("avg_pool", f"block {i} shortcut pool", kernel=(2, 2), stride=(2, 2), padding=(0, 0))
        take("add_prev", f"block {i} add")
        take("relu", f"block {i} relu2")
        for name, arr in (("conv1.weight", w1), ("conv1.bias", b1), ("conv2.weight", w2), ("conv2.bias", b2)):
            sd[f"blocks.{i}.{name}"] = torch.from_numpy(arr)
    take("avg_pool", "global average pool", kernel=(0, 0), stride=(1, 1))
    fc = take("fc", "descriptor layer", num_outputs=FEATURE_DIM, num_inputs=256, bias_mode=1)
    sd["fc.weight"] = torch.from_numpy(np.ascontiguousarray(fc.params["weight"]))
    if pos != len(layers):
        raise WeightsFormatError(f"{source}: {len(layers) - pos} unexpected layers after the descriptor layer")
    return sd


def dlib_weights_path() -> Path:
    """Path of ``dlib_face_recognition_resnet_model_v1.dat`` inside the installed
    ``face-recognition-models`` package (located without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / "models" / DLIB_MODEL_FILE
        if path.exists():
            return path
    raise WeightsNotFoundError(
        f"the identity network weights ({DLIB_MODEL_FILE}) were not found: install them with "
        f"`pip install face-recognition-models`, or pass another network's weights file to "
        f"load_identity_net(weights=...)."
    )


def weights_cache_path(source: Path) -> Path:
    """Where the converted ``.pt`` of a dlib file is cached (``<cache>/weights/<stem>.pt``)."""
    return cache_dir().parent / "weights" / (source.stem + ".pt")


def convert_dlib_weights(source: str | os.PathLike) -> dict[str, object]:
    """Parse a dlib ``.dat`` file into the cache document ``{"format", "source", "source_size",
    "state_dict"}`` (float32 tensors)."""
    source = Path(source)
    state = _state_dict_from_dlib(read_dlib_net(source), str(source))
    return {"format": _CACHE_FORMAT, "source": source.name, "source_size": source.stat().st_size,
            "state_dict": state}


def _load_cached(source: Path) -> dict[str, torch.Tensor]:
    """State dict of a dlib file, from the ``.pt`` cache when it matches the file, else parsed
    (and the cache written; a cache folder that cannot be written only costs a warning)."""
    cache = weights_cache_path(source)
    if cache.exists():
        try:
            doc = torch.load(cache, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            warnings.warn(f"ignoring unreadable identity-net cache {cache} (re-converting): "
                          f"{str(exc).splitlines()[0]}", stacklevel=3)
            doc = None
        if (isinstance(doc, dict) and doc.get("format") == _CACHE_FORMAT
                and doc.get("source") == source.name and doc.get("source_size") == source.stat().st_size):
            return doc["state_dict"]
    doc = convert_dlib_weights(source)
    try:
        with atomic_path(cache) as tmp:
            torch.save(doc, tmp)
    except OSError as exc:
        warnings.warn(f"could not cache the converted identity net at {cache}: {exc}", stacklevel=3)
    return doc["state_dict"]  # type: ignore[return-value]


def load_identity_net(weights: str | os.PathLike | None = None) -> IdentityNet:
    """The frozen identity network (eval mode, ``requires_grad_(False)``, CPU float32, channels-last
    convolution weights).

    ``weights``: None → dlib's model from ``face-recognition-models`` (converted once, cached);
    a dlib ``.dat`` file of the same architecture (e.g. a retrained dlib net); or a ``.pt`` file
    holding an :class:`IdentityNet` state dict (or a cache document with a ``"state_dict"``).
    Raises :class:`WeightsNotFoundError` when the file is missing, :class:`WeightsFormatError`
    when it does not fit the architecture.
    """
    if weights is None:
        state = _load_cached(dlib_weights_path())
        source = "face-recognition-models"
    else:
        path = Path(weights).expanduser()
        source = str(path)
        if not path.is_file():
            raise WeightsNotFoundError(f"identity network weights file {path} does not exist")
        if path.suffix.lower() == ".dat":
            state = _load_cached(path)
        else:
            try:
                doc = torch.load(path, map_location="cpu", weights_only=True)
            except (RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError) as exc:
                raise WeightsFormatError(
                    f"{path}: not a PyTorch weights file readable with weights_only=True "
                    f"({str(exc).splitlines()[0]})"
                ) from exc
            state = doc.get("state_dict", doc) if isinstance(doc, dict) else None
            if not isinstance(state, dict):
                raise WeightsFormatError(f"{path}: expected an IdentityNet state dict")
    with torch.device("meta"):  # skip the random initialisation: every tensor is assigned below
        net = IdentityNet()
    try:
        net.load_state_dict(state, assign=True)
    except RuntimeError as exc:
        raise WeightsFormatError(f"{source}: weights do not fit IdentityNet: {exc}") from exc
    net = net.to(dtype=torch.float32, memory_format=torch.channels_last)
    return net.requires_grad_(False).eval()
