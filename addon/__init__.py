"""Photohead Blender extension: photos in, detailed 3D heads out.

This module stays free of bpy and of heavy imports: the worker process (``<pkg>.worker``)
and the build script (``python -m addon.build``) import it too. ``register``/``unregister``
load the bpy modules lazily.

The same code runs in two layouts:
- installed extension: ``bl_ext.<repo>.photohead`` with the backend at ``.backend``;
- repository: the ``addon`` package with the backend as the top-level ``backend`` package.
:func:`backend_module` hides the difference.
"""
from __future__ import annotations

import importlib
from types import ModuleType


def backend_module(submodule: str = "") -> ModuleType:
    """The backend package, or ``backend.<submodule>``, wherever it lives.

    Tries the copy shipped inside the extension (``<this package>.backend``) first, then the
    top-level ``backend`` package of the repository/virtual environment.
    """
    suffix = f".{submodule}" if submodule else ""
    try:
        importlib.import_module(".backend", __package__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.backend":
            raise  # the bundled backend exists but one of its own imports is missing
        return importlib.import_module(f"backend{suffix}")
    return importlib.import_module(f".backend{suffix}", __package__)


def register() -> None:
    """Blender entry point: register properties, operators, panel and preferences."""
    from . import registration  # lazy: the worker and addon.build import this package without bpy

    registration.register()


def unregister() -> None:
    """Blender entry point: undo :func:`register`."""
    from . import registration  # lazy: the worker and addon.build import this package without bpy

    registration.unregister()
