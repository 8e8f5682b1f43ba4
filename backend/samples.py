"""Public sample photos shipped by installed packages (used by the demo and tests)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ImageReadError

SAMPLES = ("grace_hopper", "astronaut")


def sample_photo(name: str) -> tuple[str, np.ndarray]:
    """(display name, (H,W,3) uint8) of a package-shipped public-domain photo.

    ``grace_hopper``: matplotlib's sample data; ``astronaut``: scikit-image's (NASA, public domain).
    """
    if name == "grace_hopper":
        import matplotlib.cbook
        from PIL import Image

        path = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
        return str(path), np.asarray(Image.open(path).convert("RGB"))
    if name == "astronaut":
        from skimage import data

        return "astronaut.png", data.astronaut()
    raise ImageReadError(f"unknown sample photo {name!r}: choose one of {', '.join(SAMPLES)}")
