"""training.albedo_basis: a texture basis from fitted photos, saved into a loadable model file."""
import numpy as np
import torch

from backend.facemodel import load_model
from training.albedo_basis import build, texture_pca


def test_texture_pca_recovers_mean_and_modes():
    rng = np.random.default_rng(0)
    mean = rng.uniform(0.3, 0.7, (50, 3))
    mode = rng.normal(0, 1, (50, 3))
    coeff = rng.normal(0, 0.1, 40)
    x = mean + coeff[:, None, None] * mode
    m, basis = texture_pca(x, np.ones((40, 50), bool), k=3)
    assert np.allclose(m, x.mean(0), atol=1e-6)
    cos = abs((basis[0].ravel() @ mode.ravel()) / np.linalg.norm(basis[0]) / np.linalg.norm(mode))
    assert cos > 0.999
    assert np.linalg.norm(basis[1]) < 1e-6  # rank one


def test_build_writes_a_texture_model(tmp_path, grace_hopper, astronaut, face_model):
    out = build([grace_hopper, astronaut], str(tmp_path / "tex.npz"), k=1, progress=lambda *_: None)
    model = load_model(out)
    assert model.has_texture and model.n_tex == 1 and model.n_verts == face_model.n_verts
    albedo = model.albedo(torch.zeros(1, 1))[0]
    face = model.face_vertex_mask
    assert 0.2 < float(albedo[face].mean()) < 0.9
    # skin: red above blue on the face
    assert float(albedo[face, 0].mean()) > float(albedo[face, 2].mean())
