"""Which Python packages the reconstruction needs, and pinned pip commands (no bpy).

The platform zips bundle every package as wheels, so nothing here runs for a normal install.
Two opt-ins remain, both pinned to the versions the zips were built with: installing packages
found missing (a development zip or a damaged install) and, on Linux with an NVIDIA GPU, the
CUDA build of torch in place of the bundled CPU one.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Sequence

# import name → pip distribution
REQUIRED: dict[str, str] = {
    "torch": "torch",
    "numpy": "numpy",
    "dlib": "dlib-bin",
    "face_recognition_models": "face-recognition-models",  # dlib's landmark and identity weights
    "scipy": "scipy",
    "PIL": "pillow",
    "skimage": "scikit-image",
}
VERSIONS_FILE = "versions.json"  # written into the zip by addon.build: {distribution: version}
_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def pinned_versions() -> dict[str, str]:
    """Distribution → exact version: the zip's ``versions.json``, else the repository's pyproject.toml."""
    pins = Path(__file__).with_name(VERSIONS_FILE)
    if pins.is_file():
        return json.loads(pins.read_text(encoding="utf-8"))
    text = _PYPROJECT.read_text(encoding="utf-8") if _PYPROJECT.is_file() else ""
    return dict(re.findall(r'^\s*"([A-Za-z0-9_.\-]+)==([^"+;\s]+)"', text, re.MULTILINE))


def missing_packages(extra_paths: Sequence[str] = ()) -> list[str]:
    """Import names from :data:`REQUIRED` found neither on ``sys.path`` nor in ``extra_paths``.

    Only locates the packages (``find_spec``); nothing is imported.
    """
    missing = []
    for name in REQUIRED:
        if importlib.util.find_spec(name) is not None:
            continue
        if extra_paths and importlib.machinery.PathFinder.find_spec(name, list(extra_paths)) is not None:
            continue
        missing.append(name)
    return missing


def _pinned(distributions: Sequence[str]) -> list[str]:
    pins = pinned_versions()
    unpinned = [d for d in distributions if d not in pins]
    if unpinned:
        raise ValueError(f"no pinned version for {unpinned}")
    return [f"{d}=={pins[d]}" for d in distributions]


def pip_install_command(target: str, import_names: Sequence[str], python: str | None = None) -> list[str]:
    """``python -m pip install --target TARGET <distribution==pin ...>`` for the given import names."""
    unknown = [n for n in import_names if n not in REQUIRED]
    if unknown:
        raise ValueError(f"not a Photohead dependency: {unknown}; known: {sorted(REQUIRED)}")
    return [python or sys.executable, "-m", "pip", "install", "--upgrade", "--target", str(target),
            *_pinned([REQUIRED[n] for n in import_names])]


def cuda_torch_command(target: str, python: str | None = None) -> list[str]:
    """Opt-in: the pinned torch release as the index's Linux build (CUDA, several GB) into
    ``target``, which the worker puts before the bundled CPU torch."""
    return [python or sys.executable, "-m", "pip", "install", "--upgrade", "--target", str(target),
            *_pinned(["torch"])]
