"""Shared fixtures: the default face model, sample photos, the shared dev data."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_MODELS = SHARED / "models"
FACES_DEV = SHARED / "data" / "faces_dev"


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    the CPUs are shared, and two threads contending make fits several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


if SHARED_MODELS.exists() and str(SHARED_MODELS) not in os.environ.get("PHOTOHEAD_MODEL_PATH", ""):
    os.environ["PHOTOHEAD_MODEL_PATH"] = os.pathsep.join(
        p for p in (os.environ.get("PHOTOHEAD_MODEL_PATH", ""), str(SHARED_MODELS)) if p
    )


@pytest.fixture(scope="session")
def face_model():
    """The default (ICT) face model; skips when it is not on the search path."""
    from backend.errors import ModelNotFoundError
    from backend.facemodel import load_default

    try:
        return load_default()
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """matplotlib's public-domain sample photo, (H,W,3) uint8."""
    from PIL import Image
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo (Eileen Collins), (512,512,3) uint8."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def faces_dev() -> Path:
    """The shared development photos (research-only terms): read in place, skip when absent."""
    if not (FACES_DEV / "landmarks.json").exists():
        pytest.skip("faces_dev development set not present")
    return FACES_DEV
