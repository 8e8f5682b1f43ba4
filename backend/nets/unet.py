"""Stage-2 detail network: a pix2pix U-Net from the unwrapped UV pair to a displacement map.

Input (B, 6, S, S): the photo and the coarse (stage-1) texture unwrapped into the same UV
layout (RGB in [0,1] each, invisible texels masked to 0), S a power of two ≥ 32 (paper 256).
Output (B, 1, S, S): displacement in mm along the coarse surface normal,
``max_mm · tanh(·)``; the last layer starts at ~0 so an untrained net adds no detail.

Structure (pix2pix "unet_256" generalised): log2(S) down-convolutions (4×4, stride 2;
LeakyReLU 0.2 before all but the first; norm on all but the first and the innermost) down
to 1×1, channels ``ngf·min(2^i, 8)``; mirrored up-convolutions (ReLU, 4×4 transposed
conv, norm) each concatenated with the encoder feature of the same size (skip connection).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

Norm = Literal["batch", "instance", "none"]


@dataclass
class UNetConfig:
    """Architecture of the detail U-Net (stored in checkpoints to rebuild it).

    - ``in_channels``: 6 (unwrapped photo RGB + unwrapped coarse texture RGB).
    - ``size``: UV side S the net is built for (power of two ≥ 32; paper 256). The net
      accepts exactly this size (its depth is log2(S)).
    - ``ngf``: channels of the first layer (pix2pix 64); deeper layers ``ngf·min(2^i, 8)``.
    - ``norm``: ``"batch"`` (pix2pix), ``"instance"`` or ``"none"``.
    - ``dropout``: dropout in the three innermost up-blocks. pix2pix uses 0.5 as its GAN noise
      source; with no GAN here the default is 0 (deterministic training and inference).
    - ``max_mm``: displacement bound (mm) of the ``max_mm · tanh`` output.
    - ``out_init_std``: std of the last layer's weights (≈0: initial displacement ≈ 0).
    """

    in_channels: int = 6
    size: int = 256
    ngf: int = 64
    norm: Norm = "batch"
    dropout: float = 0.0
    max_mm: float = 3.0
    out_init_std: float = 1e-4

    def __post_init__(self) -> None:
        if self.size < 32 or self.size & (self.size - 1):
            raise ValueError(f"UNetConfig.size must be a power of two >= 32, got {self.size}")
        if self.norm not in ("batch", "instance", "none"):
            raise ValueError(f"UNetConfig.norm must be 'batch', 'instance' or 'none', got {self.norm!r}")
        if self.max_mm <= 0:
            raise ValueError(f"UNetConfig.max_mm must be > 0, got {self.max_mm}")

    @property
    def depth(self) -> int:
        return int(math.log2(self.size))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        return cls(**d)


def _norm(kind: str, c: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(c)
    if kind == "instance":
        return nn.InstanceNorm2d(c, affine=True)
    return nn.Identity()


class DetailUNet(nn.Module):
    """``forward(x (B,6,S,S), mask (B,1,S,S) | None) -> displacement (B,1,S,S) mm``."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        n = config.depth
        ch = [config.ngf * min(2**i, 8) for i in range(n)]
        self.down = nn.ModuleList()
        for i in range(n):
            c_in = config.in_channels if i == 0 else ch[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=False)]
            use_norm = 0 < i < n - 1 and config.norm != "none"
            layers.append(nn.Conv2d(c_in, ch[i], 4, 2, 1, bias=not use_norm or config.norm == "instance"))
            if use_norm:
                layers.append(_norm(config.norm, ch[i]))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()  # self.up[j] maps level j+1 → level j (j = n-1 is innermost)
        for j in range(n):
            c_in = ch[j] if j == n - 1 else 2 * ch[j]
            if j == 0:
                self.out_conv = nn.ConvTranspose2d(c_in, 1, 4, 2, 1)
                self.up.append(nn.Sequential(nn.ReLU(inplace=False), self.out_conv))
                continue
            c_out = ch[j - 1]
            layers = [nn.ReLU(inplace=False), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=config.norm != "batch")]
            layers.append(_norm(config.norm, c_out))
            if config.dropout > 0 and j >= n - 3:
                layers.append(nn.Dropout(config.dropout))
            self.up.append(nn.Sequential(*layers))
        self._init_weights()

    def _init_weights(self) -> None:
        if next(self.parameters()).is_meta:  # shapes only (validate.check_architecture): on meta,
            return  # normal_ runs a torch._refs decomposition that imports torch._dynamo (≈ 1.2 s)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)  # pix2pix init
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.out_conv.weight, 0.0, self.config.out_init_std)
        nn.init.zeros_(self.out_conv.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B,C,S,S) float; mask (B,1,S,S) in {0,1} zeroes invisible texels of the input.

        Returns (B,1,S,S) displacement in mm, bounded by ±``max_mm``.
        """
        cfg = self.config
        if x.ndim != 4 or x.shape[1] != cfg.in_channels or x.shape[-2:] != (cfg.size, cfg.size):
            raise ValueError(
                f"DetailUNet expects (B,{cfg.in_channels},{cfg.size},{cfg.size}) input, got {tuple(x.shape)}"
            )
        if mask is not None:
            x = x * mask
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        n = len(self.down)
        y = skips[-1]
        for j in range(n - 1, -1, -1):
            if j < n - 1:
                y = torch.cat([y, skips[j]], 1)
            y = self.up[j](y)
        return cfg.max_mm * torch.tanh(y)
