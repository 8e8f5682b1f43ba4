"""Stage-1 encoder: a face crop → one flat code split into 3DMM, SH light and pose parameters.

Two architectures share one head:

- ``"vgg16"`` (paper): the VGG-Face structure, i.e. VGG-16 — 13 conv3×3 + ReLU layers in 5
  blocks (64, 64 | 128, 128 | 256 ×3 | 512 ×3 | 512 ×3 channels, each block ending in a 2×2
  max-pool), then fc 4096 → fc 4096 → the code. Randomly initialised. ``width`` scales every
  channel count (1.0 = VGG-Face); ``fc_dim`` the hidden fc size.
- ``"light"``: a small ResNet (stem + 4 stages of two basic blocks, GroupNorm, global average
  pooling) for CPU training and tests; ``width`` scales its channels (base 32).

The regressed code is ``offset + scale ⊙ raw``: ``raw`` is the last linear layer's output,
initialised near 0, ``offset`` is the initial prediction (mean face, zero expression, mean
albedo, ambient light of radiance 1, a frontal pose that fills the crop) and ``scale`` brings
each part to unit-ish raw units (e.g. translations in tenths of the crop size). Both are
buffers, so a checkpoint's state dict carries them.
"""
from __future__ import annotations

import contextlib

from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from ..camera import POSE_DIM
from ..lighting import SH_DIM, sh_ambient

Arch = Literal["vgg16", "light"]

#: VGG-16 conv layout: channels per conv in each of the five blocks.
VGG16_BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


@dataclass
class EncoderConfig:
    """Architecture of the stage-1 encoder (stored in checkpoints to rebuild it).

    - ``arch``: ``"vgg16"`` (VGG-Face structure, paper) or ``"light"`` (small ResNet).
    - ``in_size``: input crop side in pixels (paper 224); any size ≥ 32.
    - ``n_id``, ``n_exp``, ``n_tex``: code sizes (face model's ``n_id``/``n_exp``; ``n_tex`` from
      the face model or from a UV albedo basis when the model has none; may be 0).
    - ``width``: channel multiplier (1.0 = VGG-Face widths / light base 32).
    - ``fc_dim``: VGG hidden fc width (4096 in VGG-Face).
    - ``init_pose``: the initial pose (f, rx, ry, rz, tx, ty, tz), see
      :func:`frontal_pose_for_crop`; ``init_light``: ambient radiance of the initial SH.
    - ``pose_scale``: per-pose-entry scale of the raw output (f multiplier fraction, radians,
      pixels as a fraction of ``in_size``, depth); ``sh_scale``, ``coeff_scale`` likewise.
    - ``head_init_std``: std of the last layer's weights (≈0 so the first prediction is the offset).
    """

    arch: Arch = "vgg16"
    in_size: int = 224
    n_id: int = 100
    n_exp: int = 53
    n_tex: int = 0
    width: float = 1.0
    fc_dim: int = 4096
    init_pose: tuple[float, ...] = (224.0 / 230.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    init_light: float = 1.0
    pose_scale: tuple[float, ...] = (0.1, 0.5, 0.5, 0.5, 0.1, 0.1, 1.0)
    sh_scale: float = 1.0
    coeff_scale: float = 1.0
    head_init_std: float = 1e-4

    def __post_init__(self) -> None:
        if self.arch not in ("vgg16", "light"):
            raise ValueError(f"EncoderConfig.arch must be 'vgg16' or 'light', got {self.arch!r}")
        if self.in_size < 32:
            raise ValueError(f"EncoderConfig.in_size must be >= 32, got {self.in_size}")
        if min(self.n_id, self.n_exp, self.n_tex) < 0:
            raise ValueError("EncoderConfig: n_id, n_exp, n_tex must be >= 0")
        self.init_pose = tuple(float(v) for v in self.init_pose)
        self.pose_scale = tuple(float(v) for v in self.pose_scale)
        if len(self.init_pose) != POSE_DIM or len(self.pose_scale) != POSE_DIM:
            raise ValueError(f"EncoderConfig.init_pose and pose_scale need {POSE_DIM} values")

    @property
    def sizes(self) -> dict[str, int]:
        """Code layout, in order: id, exp, tex, sh (27), pose (7)."""
        return {"id": self.n_id, "exp": self.n_exp, "tex": self.n_tex, "sh": SH_DIM, "pose": POSE_DIM}

    @property
    def code_dim(self) -> int:
        return sum(self.sizes.values())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        return cls(**d)


def frontal_pose_for_crop(
    landmarks_mm: torch.Tensor, crop_size: int, landmark_span: float = 0.75, center: tuple[float, float] = (0.5, 0.5)
) -> tuple[float, ...]:
    """Orthographic frontal pose mapping a face's landmarks into a crop.

    landmarks_mm: (68,3) mean-face landmark vertices (model space, mm). The landmarks' larger
    x/y extent spans ``landmark_span`` × ``crop_size`` pixels and their bounding-box centre lands
    at ``center`` (fractions of the crop, x right, y down). Returns the 7 pose values.
    """
    xy = landmarks_mm[:, :2].double()
    lo, hi = xy.min(0).values, xy.max(0).values
    f = landmark_span * crop_size / float((hi - lo).max())
    mid = (lo + hi) / 2
    cx = cy = (crop_size - 1) / 2.0
    # screen x = cx + f·x + tx ; screen y = cy − (f·y + ty)
    tx = center[0] * (crop_size - 1) - cx - f * float(mid[0])
    ty = cy - center[1] * (crop_size - 1) - f * float(mid[1])
    return (f, 0.0, 0.0, 0.0, tx, ty, 0.0)


def _vgg_features(width: float) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    c_in = 3
    for block in VGG16_BLOCKS:
        for c in block:
            c_out = max(8, int(round(c * width)))
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = c_out
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers), c_in


class _BasicBlock(nn.Module):
    """ResNet basic block (two conv3×3, GroupNorm) with a projection shortcut when needed."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        groups = min(8, c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.short = None
        if stride != 1 or c_in != c_out:
            self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.GroupNorm(groups, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return torch.relu(y + (x if self.short is None else self.short(x)))


def _light_features(width: float) -> tuple[nn.Sequential, int]:
    base = max(8, int(round(32 * width)))
    chans = [base, base * 2, base * 4, base * 8]
    layers: list[nn.Module] = [
        nn.Conv2d(3, base, 3, 2, 1, bias=False), nn.GroupNorm(min(8, base), base), nn.ReLU(inplace=True)
    ]
    c_in = base
    for i, c in enumerate(chans):
        layers += [_BasicBlock(c_in, c, 1 if i == 0 else 2), _BasicBlock(c, c, 1)]
        c_in = c
    layers.append(nn.AdaptiveAvgPool2d(1))
    return nn.Sequential(*layers), c_in


class FaceEncoder(nn.Module):
    """Crop → code. ``forward(images (B,3,S,S) in [0,1] RGB) -> code (B, code_dim)``.

    Use :meth:`decompose` to split a code into named parameters.
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        if config.arch == "vgg16":
            self.features, c = _vgg_features(config.width)
            self.pool = nn.AdaptiveAvgPool2d(7)  # identity for 224² input (7×7 after 5 pools)
            hidden = max(16, int(round(config.fc_dim)))
            self.fc = nn.Sequential(
                nn.Flatten(), nn.Linear(c * 49, hidden), nn.ReLU(inplace=True),
                nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            )
            feat_dim = hidden
        else:
            self.features, c = _light_features(config.width)
            self.pool = nn.Identity()
            self.fc = nn.Flatten()
            feat_dim = c
        self.head = nn.Linear(feat_dim, config.code_dim)
        self._init_weights()
        # small constants: on the meta device (shapes only) built on the CPU, as meta ops import torch._dynamo
        with torch.device("cpu") if self.head.weight.is_meta else contextlib.nullcontext():
            offset, scale = self._offset_and_scale()
        self.register_buffer("code_offset", offset)
        self.register_buffer("code_scale", scale)

    def _init_weights(self) -> None:
        if next(self.parameters()).is_meta:  # shapes only (validate.check_architecture): on meta,
            return  # normal_ runs a torch._refs decomposition that imports torch._dynamo (≈ 1.2 s)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.head.weight, 0.0, self.config.head_init_std)
        nn.init.zeros_(self.head.bias)

    def _offset_and_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        n_coef = cfg.n_id + cfg.n_exp + cfg.n_tex
        sh0 = sh_ambient(cfg.init_light)[0]  # (27,)
        pose0 = torch.tensor(cfg.init_pose, dtype=torch.float32)
        offset = torch.cat([torch.zeros(n_coef), sh0, pose0])
        ps = torch.tensor(cfg.pose_scale, dtype=torch.float32)
        pose_scale = ps.clone()
        pose_scale[0] = ps[0] * pose0[0].abs().clamp_min(1e-6)  # f: fraction of the initial scale
        pose_scale[4:6] = ps[4:6] * cfg.in_size  # tx, ty: fraction of the crop
        scale = torch.cat([torch.full((n_coef,), cfg.coeff_scale), torch.full((SH_DIM,), cfg.sh_scale), pose_scale])
        return offset, scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B,3,S,S) float RGB in [0,1], S = ``config.in_size``. Returns (B, code_dim)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"FaceEncoder expects (B,3,H,W) images, got {tuple(images.shape)}")
        x = self.features(images * 2.0 - 1.0)
        raw = self.head(self.fc(self.pool(x)))
        return self.code_offset + self.code_scale * raw

    def decompose(self, code: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split (B, code_dim) into {"id": (B,n_id), "exp": (B,n_exp), "tex": (B,n_tex),
        "sh": (B,27), "pose": (B,7)} (views of ``code``)."""
        return decompose(code, self.config)


def decompose(code: torch.Tensor, config: EncoderConfig) -> dict[str, torch.Tensor]:
    """Split a flat code (B, code_dim) by ``config.sizes`` (see :meth:`FaceEncoder.decompose`)."""
    if code.shape[-1] != config.code_dim:
        raise ValueError(f"code has {code.shape[-1]} values, the encoder config expects {config.code_dim}")
    parts = torch.split(code, list(config.sizes.values()), dim=-1)
    return dict(zip(config.sizes.keys(), parts))


#: Range of ICT-style blendshape weights (0 = neutral, 1 = the full expression). The fit keeps its
#: expression coefficients in it; predict mode and the stage-1 trainer clamp the regressed ones to
#: it, so training and inference build the same mesh (docs/training.md, "Expression range").
EXP_RANGE: tuple[float, float] = (0.0, 1.0)


def clamp_expression(exp: torch.Tensor) -> torch.Tensor:
    """Expression coefficients (B,K_exp) clamped to :data:`EXP_RANGE`: the mesh predict mode
    builds and stage 1 trains on (a plain clamp: no gradient outside the range, where R_param on
    the raw value pulls a coefficient back)."""
    return exp.clamp(*EXP_RANGE)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
