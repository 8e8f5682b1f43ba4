"""Networks: the stage-1 face encoder, the stage-2 detail U-Net and the UV albedo basis.

Each takes a config dataclass (``EncoderConfig``, ``UNetConfig``) that a checkpoint stores,
so :func:`build_encoder` / :func:`build_unet` rebuild the architecture from a plain dict.
"""
from __future__ import annotations

from .albedo import AlbedoBasis
from .encoder import (EXP_RANGE, EncoderConfig, FaceEncoder, clamp_expression, count_parameters, decompose,
                      frontal_pose_for_crop)
from .unet import DetailUNet, UNetConfig

__all__ = [
    "EncoderConfig", "FaceEncoder", "decompose", "EXP_RANGE", "clamp_expression", "frontal_pose_for_crop", "count_parameters",
    "UNetConfig", "DetailUNet", "build_encoder", "build_unet", "AlbedoBasis",
]


def build_encoder(config: EncoderConfig | dict) -> FaceEncoder:
    """A randomly initialised encoder from a config (or its ``to_dict()``)."""
    return FaceEncoder(config if isinstance(config, EncoderConfig) else EncoderConfig.from_dict(config))


def build_unet(config: UNetConfig | dict) -> DetailUNet:
    """A freshly initialised U-Net from a config (or its ``to_dict()``)."""
    return DetailUNet(config if isinstance(config, UNetConfig) else UNetConfig.from_dict(config))
