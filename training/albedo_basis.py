"""UV albedo bases for face models without a texture model (ICT-FaceKit has none).

The implementation lives in :mod:`backend.nets.albedo` (inference rebuilds the basis from a
checkpoint's model card, and the backend never imports ``training``); re-exported here for
the trainers. See that module for :meth:`AlbedoBasis.lowfreq` and :meth:`AlbedoBasis.from_textures`.
"""
from __future__ import annotations

from backend.nets.albedo import SKIN_RGB, AlbedoBasis

__all__ = ["AlbedoBasis", "SKIN_RGB"]
