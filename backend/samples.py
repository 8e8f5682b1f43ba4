"""Public sample photos shipped by installed packages (used by the demo and tests)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.cbook
import numpy as np
from PIL import Image
from skimage import data

from .errors import ImageReadError

SAMPLES = ("grace_hopper", "astronaut")


def sample_photo(name: str) -> tuple[str, np.ndarray]:
    """(display name, (H,W,3) uint8) of a package-shipped public-domain photo.

    ``grace_hopper``: matplotlib's sample data; ``astronaut``: scikit-image's (NASA, public domain).
    """
    if name == "grace_hopper":
        path = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
        return str(path), np.asarray(Image.open(path).convert("RGB"))
    if name == "astronaut":
        return "astronaut.png", data.astronaut()
    raise ImageReadError(f"unknown sample photo {name!r}: choose one of {', '.join(SAMPLES)}")
