"""The quality names, written once (no imports: the Blender add-on's panel lists them without torch).

The settings behind each name are :data:`backend.preset.PRESETS`.
"""
from __future__ import annotations

DRAFT = "draft"
DEFAULT = "default"
HIGH = "high"

# name → one-line description (CLI help, the add-on's Quality menu), fastest first
QUALITIES: dict[str, str] = {
    DRAFT: "Fastest, coarser texture and detail",
    DEFAULT: "Balanced",
    HIGH: "Slowest, finest texture and detail",
}
QUALITY_NAMES: tuple[str, ...] = tuple(QUALITIES)
