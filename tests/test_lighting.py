"""SH lighting and mesh normals: analytic values."""
from __future__ import annotations

import math

import torch

from backend.lighting import (
    SH_DIM, face_normals, sh_ambient, sh_basis, sh_directional, sh_shading, vertex_normals,
)
from backend.render.primitives import grid_mesh, uv_sphere


def test_sh_basis_is_orthonormal_on_the_sphere():
    # Monte-Carlo-free check: a fine Fibonacci sphere integrates Y_i·Y_j to δ_ij.
    n = 20000
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (1 + 5**0.5) * i
    r = (1 - z * z).sqrt()
    dirs = torch.stack([r * phi.cos(), r * phi.sin(), z], -1)
    Y = sh_basis(dirs)
    gram = Y.T @ Y * (4 * math.pi / n)
    torch.testing.assert_close(gram, torch.eye(9, dtype=torch.float64), atol=2e-3, rtol=0)


def test_ambient_light_shades_to_its_value():
    normals = torch.nn.functional.normalize(torch.randn(2, 5, 7, 3), dim=-1)
    sh = sh_ambient(torch.tensor([0.2, 0.5, 0.9]), batch=2)
    assert sh.shape == (2, SH_DIM)
    out = sh_shading(normals, sh)
    torch.testing.assert_close(out, torch.tensor([0.2, 0.5, 0.9]).expand(2, 5, 7, 3))


def test_directional_light_follows_the_order2_clamped_cosine():
    d = torch.tensor([[0.0, 1.0, 0.0]])
    sh = sh_directional(d, intensity=2.0)
    gamma = torch.linspace(0, math.pi, 7)
    normals = torch.stack([gamma.sin(), gamma.cos(), torch.zeros_like(gamma)], -1)[None]
    c = gamma.cos()
    expected = 2.0 * (0.25 + 0.5 * c + 5.0 / 16.0 * 0.5 * (3 * c * c - 1))
    torch.testing.assert_close(sh_shading(normals, sh)[0, :, 1], expected, atol=1e-5, rtol=1e-5)
    # Brightest facing the light; order-2 SH rings a little (slightly negative) behind it.
    s = sh_shading(normals, sh)[0, :, 0]
    assert s.argmax() == 0 and s.min() > -0.1 * s.max()


def test_normals_of_sphere_and_plane():
    verts, faces, _, _ = uv_sphere(3.0, 16, 32)
    n = vertex_normals(verts[None], faces)[0]
    cos = (n * verts / 3.0).sum(-1)
    assert cos.min() > 0.999 and torch.allclose(n.norm(dim=-1), torch.ones(len(n)))
    pv, pf, _ = grid_mesh(4)
    torch.testing.assert_close(face_normals(pv[None], pf)[0], torch.tensor([0.0, 0.0, 1.0]).expand(pf.shape[0], 3))
    # A vertex used by no face gets a zero normal.
    extra = torch.cat([pv, torch.tensor([[5.0, 5.0, 5.0]])])[None]
    assert vertex_normals(extra, pf)[0, -1].abs().sum() == 0


def test_device_constants_are_made_once_with_the_values_asked():
    from backend.device_constants import constant

    a = constant((1.0, 2.0 / 3.0), torch.device("cpu"), torch.float32)
    assert a is constant((1.0, 2.0 / 3.0), torch.device("cpu"), torch.float32)  # no new copy per call
    assert torch.equal(a, torch.tensor([1.0, 2.0 / 3.0], dtype=torch.float32))
    b = constant((1.0, 2.0 / 3.0), torch.device("cpu"), torch.float64)
    assert b.dtype == torch.float64 and b[1].item() == 2.0 / 3.0


def test_vertex_and_face_normals_of_a_batch_equal_the_per_slice_formula_to_the_bit():
    """The normals gather and scatter the flattened (B·V,3) rows (fast on the CPU); the values and
    gradients are those of the plain ``verts[:, faces]`` / ``index_add`` along dim 1 formula, bit
    for bit, for every batch element (duplicate indices and unused vertices included)."""
    from backend.lighting import face_normals, vertex_normals

    g = torch.Generator().manual_seed(3)
    faces = torch.rand(150, 60, generator=g).argsort(-1)[:, :3]  # 3 distinct of vertices 0..59; 60..79 unused
    verts = torch.randn(3, 80, 3, generator=g).requires_grad_()
    probe_v, probe_f = torch.randn(3, 80, 3, generator=g), torch.randn(3, 150, 3, generator=g)

    def reference(v, which):
        v0, v1, v2 = (v[:, faces[:, i]] for i in range(3))
        fn = torch.cross(v1 - v0, v2 - v0, dim=-1)
        if which == "face":
            return torch.nn.functional.normalize(fn, dim=-1, eps=1e-12)
        n = torch.zeros_like(v).index_add(1, faces.t().reshape(-1), fn.repeat(1, 3, 1))
        return torch.nn.functional.normalize(n, dim=-1, eps=1e-12)

    for which, fn, probe in (("vertex", vertex_normals, probe_v), ("face", face_normals, probe_f)):
        got, want = fn(verts, faces), reference(verts, which)
        assert torch.equal(got, want), which
        (g_got,) = torch.autograd.grad((got * probe).sum(), verts)
        (g_want,) = torch.autograd.grad((want * probe).sum(), verts)
        assert torch.equal(g_got, g_want), which
    normals = vertex_normals(verts, faces)
    assert normals[:, 60:].abs().max() == 0 and normals[:, :60].norm(dim=-1).min() > 0.999
