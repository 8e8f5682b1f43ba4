"""Which Python packages the reconstruction needs, and the pip command to install them (no bpy)."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from typing import Sequence

# import name → pip distribution
REQUIRED: dict[str, str] = {
    "torch": "torch",
    "numpy": "numpy",
    "dlib": "dlib-bin",
    "scipy": "scipy",
    "PIL": "pillow",
    "skimage": "scikit-image",
}


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


def pip_install_command(target: str, import_names: Sequence[str], python: str | None = None) -> list[str]:
    """``python -m pip install --target TARGET <distributions>`` for the given import names."""
    unknown = [n for n in import_names if n not in REQUIRED]
    if unknown:
        raise ValueError(f"not a Photohead dependency: {unknown}; known: {sorted(REQUIRED)}")
    return [python or sys.executable, "-m", "pip", "install", "--upgrade", "--target", str(target),
            *(REQUIRED[n] for n in import_names)]
