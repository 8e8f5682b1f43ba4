"""backend.cross: torch.linalg.cross's values and gradients, bit for bit, on the CPU."""
import pytest
import torch

from backend.cross import cross
from backend.lighting import vertex_normals


@pytest.mark.parametrize("shape", [(1, 20011, 3), (2, 64, 64, 3), (5, 3)])
def test_cross_equals_torch_bit_for_bit(shape):
    gen = torch.Generator().manual_seed(len(shape))
    a = (torch.randn(shape, generator=gen) * 40).requires_grad_()
    b = (torch.randn(shape, generator=gen) * 0.01).requires_grad_()  # unequal scales: the rounding shows
    g = torch.randn(shape, generator=gen)
    want = torch.linalg.cross(a, b, dim=-1)
    got = cross(a, b)
    # a separate multiply and subtract differs from the kernel in about a quarter of the components
    assert torch.equal(got, want)
    assert all(torch.equal(x, y) for x, y in zip(torch.autograd.grad(got, (a, b), g),
                                                  torch.autograd.grad(want, (a, b), g)))
    with torch.no_grad():
        assert torch.equal(cross(a, b), want)


def test_cross_handles_one_input_without_gradient_and_broadcasting():
    a = torch.randn(100, 3, requires_grad=True)
    b = torch.randn(100, 3)
    (ga,) = torch.autograd.grad(cross(a, b).sum(), (a,))
    (want,) = torch.autograd.grad(torch.linalg.cross(a, b, dim=-1).sum(), (a,))
    assert torch.equal(ga, want)
    c = torch.tensor([0.0, 0.0, 1.0])  # broadcast: torch.linalg.cross itself
    assert torch.equal(cross(torch.tensor([[1.0, 0.0, 0.0]]), c.expand(1, 3)), torch.tensor([[0.0, -1.0, 0.0]]))


def test_vertex_normals_of_a_tetrahedron():
    verts = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]])
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    n = vertex_normals(verts, faces)[0]
    # vertex 3: (0,−1,0)·1 + (−1,0,0)·1 + (1,1,1)/√3·√3 (face normals × twice their areas)
    assert torch.allclose(n[3], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)
    assert torch.allclose(n.norm(dim=-1), torch.ones(4))


def test_corner_major_ids_are_kept_per_faces_tensor():
    from backend.device_constants import _CORNER_MAJOR, corner_major

    faces = torch.tensor([[0, 1, 2], [2, 1, 3]])
    ids = corner_major(faces)
    assert ids.tolist() == [0, 2, 1, 1, 2, 3] and corner_major(faces) is ids
    faces[1, 0] = 4  # modified in place: computed again
    assert corner_major(faces).tolist() == [0, 4, 1, 1, 2, 3]
    key = id(faces)
    del faces
    assert key not in _CORNER_MAJOR  # gone with its tensor


def test_cross_does_not_import_sympy():
    """torch.broadcast_shapes's first call imports sympy (0.28 s of every process); cross must not."""
    import subprocess
    import sys

    code = ("import sys, torch; from backend.cross import cross; a = torch.randn(4, 3, requires_grad=True); "
            "cross(a, torch.randn(4, 3)).sum().backward(); print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
