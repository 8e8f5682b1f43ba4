"""UV albedo bases for face models without a texture model (ICT-FaceKit has none).

The stage-1 encoder regresses ``n_tex`` albedo coefficients; with a UV basis the albedo is a
UV image ``mean + Σ_k x_k·basis_k`` sampled by the renderer through the model's UVs. Lives in
the backend because inference (:mod:`backend.predict`) rebuilds the same basis from a
checkpoint's model card; :mod:`training.albedo_basis` re-exports it for the trainers.

Two ways to build one:

- :meth:`AlbedoBasis.lowfreq` (default, no data needed): a constant skin tone, 3 global colour
  modes (R, G, B offsets, std 0.08) and low-frequency 2-D cosine patterns of brightness over each
  UV tile (std 0.04). A stand-in until a learnt basis exists.
- :meth:`AlbedoBasis.from_textures`: PCA of unwrapped UV textures (e.g. from coarse fits of the
  training photos), modes scaled to unit-variance coefficients.
"""
from __future__ import annotations

import math

import torch
from torch import nn

SKIN_RGB = (0.72, 0.53, 0.44)


class AlbedoBasis(nn.Module):
    """``forward(tex (B,K)) -> (B, H, W, 3)`` UV albedo in [0,1], top row v = 1.

    Buffers: ``mean`` (H,W,3), ``basis`` (K,H,W,3) per unit coefficient. ``W = H·tiles`` for
    UDIM models (ICT: 2 tiles, rendered with ``u_range = (0, 2)``).
    """

    def __init__(self, mean: torch.Tensor, basis: torch.Tensor):
        super().__init__()
        if mean.ndim != 3 or mean.shape[-1] != 3 or basis.ndim != 4 or basis.shape[1:] != mean.shape:
            raise ValueError(f"AlbedoBasis needs mean (H,W,3) and basis (K,H,W,3), got {tuple(mean.shape)}, {tuple(basis.shape)}")
        self.register_buffer("mean", mean.float().contiguous())
        self.register_buffer("basis", basis.float().contiguous())

    @property
    def n_tex(self) -> int:
        return self.basis.shape[0]

    @property
    def uv_size(self) -> int:
        return self.mean.shape[0]

    def forward(self, tex: torch.Tensor) -> torch.Tensor:
        if tex.shape[-1] != self.n_tex:
            raise ValueError(f"tex has {tex.shape[-1]} coefficients, the basis has {self.n_tex}")
        return (self.mean + torch.einsum("bk,khwc->bhwc", tex.to(self.basis.dtype), self.basis)).clamp(0.0, 1.0)

    @classmethod
    def lowfreq(cls, k: int = 10, size: int = 128, tiles: int = 1, color_std: float = 0.08,
                pattern_std: float = 0.04, skin: tuple[float, float, float] = SKIN_RGB) -> "AlbedoBasis":
        """Constant skin tone + ``min(k,3)`` colour modes + ``k−3`` cosine brightness patterns per tile."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        H, W = size, size * tiles
        mean = torch.tensor(skin).expand(H, W, 3).clone()
        modes = []
        for c in range(min(k, 3)):
            m = torch.zeros(H, W, 3)
            m[..., c] = color_std
            modes.append(m)
        v = (torch.arange(H) + 0.5) / H
        u = ((torch.arange(W) + 0.5) / size) % 1.0  # repeats per tile
        freqs = [(a, b) for n in range(1, 64) for a in range(n + 1) for b in (n - a,)]
        for a, b in freqs[: max(0, k - 3)]:
            pattern = torch.cos(math.pi * a * u)[None, :] * torch.cos(math.pi * b * v)[:, None]
            modes.append(pattern_std * pattern[..., None].expand(H, W, 3))
        basis = torch.stack(modes) if modes else torch.zeros(0, H, W, 3)
        return cls(mean, basis)

    @classmethod
    def from_textures(cls, textures: torch.Tensor, k: int, valid: torch.Tensor | None = None) -> "AlbedoBasis":
        """PCA basis from N UV textures (N,H,W,3) in [0,1]; ``valid`` (N,H,W) marks seen texels.

        Unseen texels are filled with the per-texel mean of the seen ones before the PCA
        (simple, biased where few views see a texel). Modes are scaled by their std.
        """
        N, H, W, _ = textures.shape
        x = textures.double()
        if valid is not None:
            w = valid.double()[..., None]
            mean = (x * w).sum(0) / w.sum(0).clamp_min(1.0)
            x = torch.where(w > 0, x, mean)
        else:
            mean = x.mean(0)
        centred = (x - mean).reshape(N, -1)
        _, s, vh = torch.linalg.svd(centred, full_matrices=False)
        k = min(k, vh.shape[0])
        std = s[:k] / math.sqrt(max(N - 1, 1))
        basis = (vh[:k] * std[:, None]).reshape(k, H, W, 3)
        return cls(mean.float(), basis.float())
