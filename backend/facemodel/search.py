"""Where face models are found: explicit path, ``PHOTOHEAD_MODEL``, then the search path
(``PHOTOHEAD_MODEL_PATH`` entries, then the user cache directory)."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelNotFoundError

DEFAULT_MODEL = "ict_facekit/ict_head.npz"


def cache_dir() -> Path:
    """The user cache folder for models (``$XDG_CACHE_HOME/photohead/models``)."""
    base = os.environ.get("PHOTOHEAD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "photohead"
    )
    return Path(base) / "models"


def search_path() -> list[Path]:
    """Folders searched for models, in order."""
    entries = [Path(p) for p in os.environ.get("PHOTOHEAD_MODEL_PATH", "").split(os.pathsep) if p]
    return entries + [cache_dir()]


def find_model(name: str = DEFAULT_MODEL, explicit: str | os.PathLike | None = None) -> Path:
    """Resolve a model file: ``explicit`` or ``$PHOTOHEAD_MODEL`` if given, else ``name`` on the
    search path. Raises :class:`ModelNotFoundError` with instructions when nothing is found."""
    explicit = explicit or os.environ.get("PHOTOHEAD_MODEL")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise ModelNotFoundError(f"face model {path} does not exist (from --model / PHOTOHEAD_MODEL)")
        return path
    for folder in search_path():
        candidate = folder / name
        if candidate.exists():
            return candidate
    searched = ", ".join(str(p) for p in search_path())
    raise ModelNotFoundError(
        f"face model '{name}' not found (searched: {searched}). Get it with `photohead models fetch ict` "
        f"(downloads ICT-FaceKit, MIT, and converts it into {cache_dir()}), or point --model / "
        f"PHOTOHEAD_MODEL at a model file, or add its folder to PHOTOHEAD_MODEL_PATH."
    )
