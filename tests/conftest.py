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
def ict_parts(face_model):
    """The ICT model with its parts (eyes, sockets, teeth); skips without ict_parts.npz."""
    if not face_model.has_parts:
        pytest.skip("the ICT model has no ict_parts.npz beside it")
    return face_model


def head_with_parts(model, ident: torch.Tensor, exp: torch.Tensor, **attach):
    """A :class:`backend.head.Head` of ``model`` for id (1,K_id) and exp (1,K_exp) coefficients,
    its parts attached (``attach``: :func:`backend.head_parts.attach_parts`'s keywords)."""
    from backend.head import Head
    from backend.head_parts import attach_parts

    with torch.no_grad():
        verts, neutral = model(ident, exp)[0].numpy(), model(ident, None)[0].numpy()
    head = Head(model_name=model.name, vertices=verts, neutral=neutral, faces=model.faces.numpy(),
                uv=model.uv.numpy(), faces_uv=model.faces_uv.numpy(), id_coeffs=ident[0].numpy(),
                exp_coeffs=exp[0].numpy(), exp_names=list(model.exp_names),
                exp_basis=model.exp_basis.numpy(), uv_tiles=model.uv_tiles)
    attach_parts(head, model, ident, exp, **attach)
    return head


@pytest.fixture
def layout_cache(monkeypatch, tmp_path) -> Path:
    """An empty cache folder and memory for :mod:`backend.layout_cache` (as in a new install);
    returns the folder."""
    import backend.layout_cache as lc

    monkeypatch.setattr(lc, "_MEMORY", {})
    monkeypatch.setenv("PHOTOHEAD_CACHE", str(tmp_path))
    return tmp_path


def count_calls(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` by a wrapper that appends to the returned list on each call."""
    calls, real = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


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
