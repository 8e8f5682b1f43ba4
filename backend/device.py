"""Which torch device a reconstruction runs on."""
from __future__ import annotations

import torch

from .errors import PhotoheadError

__all__ = ["DEVICE_NAMES", "resolve_device"]

DEVICE_NAMES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU. Raises a clear error for an unavailable CUDA."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PhotoheadError("--device cuda requested but no CUDA device is available (use --device cpu or auto)")
    if name not in DEVICE_NAMES:
        raise PhotoheadError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)
