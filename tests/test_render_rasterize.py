"""Rasteriser: analytic coverage, barycentrics, depth order, gradients, reference twin, devices."""
from __future__ import annotations

import math

import pytest
import torch

from backend.camera import Camera, default_pose, project
from backend.render import (
    RasterSettings, interpolate, rasterize, rasterize_reference, sample_texture,
)
from backend.render.primitives import grid_mesh, uv_sphere


def _tri(points, z=0.0, dtype=torch.float32):
    v = torch.tensor([[x, y, z] for x, y in points], dtype=dtype)
    return v[None], torch.tensor([[0, 1, 2]])


def test_single_triangle_exact_coverage_and_barycentrics():
    sv, faces = _tri([(1, 1), (7, 1), (1, 7)], z=3.0)
    fr = rasterize(sv, faces, 10, 10)
    ys, xs = torch.meshgrid(torch.arange(10), torch.arange(10), indexing="ij")
    expected = (xs >= 1) & (ys >= 1) & (xs + ys <= 8)  # edges inclusive
    assert torch.equal(fr.mask[0], expected)
    assert fr.mask.sum() == 28
    assert (fr.face_idx[0][~expected] == -1).all()
    b = fr.bary[0][expected]
    torch.testing.assert_close(b.sum(-1), torch.ones(28))
    # Analytic barycentrics: b1 = (x−1)/6, b2 = (y−1)/6.
    torch.testing.assert_close(b[:, 1], (xs[expected] - 1) / 6.0)
    torch.testing.assert_close(b[:, 2], (ys[expected] - 1) / 6.0)
    torch.testing.assert_close(fr.bary[0, 1, 1], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(fr.depth[0][expected], torch.tensor(3.0))
    assert (fr.depth[0][~expected] == 0).all() and (fr.bary[0][~expected] == 0).all()


def test_quad_two_triangles_cover_each_pixel_once():
    # Square x∈[2,5], y∈[1,3] (pixel centres, inclusive): 4×3 = 12 pixels.
    sv = torch.tensor([[[2.0, 1.0, 1.0], [5.0, 1.0, 1.0], [5.0, 3.0, 1.0], [2.0, 3.0, 1.0]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    fr = rasterize(sv, faces, 6, 8)
    assert fr.mask.sum() == 12
    assert fr.mask[0, 1:4, 2:6].all()
    # On the shared diagonal (equal depth) the lower face index wins.
    diag = torch.tensor([[1, 2], [3, 5]])
    assert (fr.face_idx[0, diag[:, 0], diag[:, 1]] == 0).all()
    assert fr.face_idx[0, 3, 2] == 1 and fr.face_idx[0, 1, 5] == 0
    torch.testing.assert_close(fr.bary.sum(-1)[fr.mask], torch.ones(12))
    # Interpolating vertex positions returns the pixel centre.
    pos = interpolate(sv[..., :2], fr.face_idx, fr.bary, faces)
    ys, xs = torch.meshgrid(torch.arange(6.0), torch.arange(8.0), indexing="ij")
    torch.testing.assert_close(pos[0][fr.mask[0]], torch.stack([xs, ys], -1)[fr.mask[0]])


@pytest.mark.parametrize("near_first", [True, False])
def test_depth_order_of_overlapping_triangles(near_first):
    a = [[0.0, 0.0], [9.0, 0.0], [0.0, 9.0]]
    b = [[9.0, 9.0], [0.0, 9.0], [9.0, 0.0]]
    za, zb = (1.0, 2.0) if near_first else (2.0, 1.0)
    sv = torch.tensor([[p + [za] for p in a] + [p + [zb] for p in b]])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    fr = rasterize(sv, faces, 10, 10)
    # Overlap = the anti-diagonal x + y = 9 (covered by both).
    overlap = torch.tensor([[i, 9 - i] for i in range(10)])
    winner = fr.face_idx[0, overlap[:, 0], overlap[:, 1]]
    assert (winner == (0 if near_first else 1)).all()
    assert fr.mask.all()
    torch.testing.assert_close(fr.depth[0, overlap[:, 0], overlap[:, 1]], torch.full((10,), 1.0))


def test_tilted_triangle_depth_is_interpolated_and_ties_go_to_lower_index():
    sv = torch.tensor([[[0.0, 0.0, 0.0], [8.0, 0.0, 8.0], [0.0, 8.0, 0.0]]])
    faces = torch.tensor([[0, 1, 2], [0, 1, 2]])  # duplicated: exact tie everywhere
    fr = rasterize(sv, faces, 9, 9)
    assert (fr.face_idx[fr.mask] == 0).all()
    ys, xs = torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij")
    torch.testing.assert_close(fr.depth[0][fr.mask[0]], xs[fr.mask[0]])  # z = x on this plane


def test_culling_outside_degenerate_and_backfaces():
    sv = torch.tensor([[[20.0, 20.0, 0.0], [30.0, 20.0, 0.0], [20.0, 30.0, 0.0],  # off-image
                        [1.0, 1.0, 0.0], [3.0, 3.0, 0.0], [5.0, 5.0, 0.0],  # zero area
                        [1.0, 1.0, 0.0], [8.0, 1.0, 0.0], [1.0, 8.0, 0.0]]])  # positive screen area = back face
    faces = torch.arange(9).view(3, 3)
    fr = rasterize(sv, faces, 10, 10)
    assert set(fr.face_idx.unique().tolist()) == {-1, 2}
    culled = rasterize(sv, faces, 10, 10, RasterSettings(cull_backfaces=True))
    assert not culled.mask.any()
    front = rasterize(sv[:, [6, 8, 7]], torch.tensor([[0, 1, 2]]), 10, 10, RasterSettings(cull_backfaces=True))
    assert front.mask.sum() == fr.mask.sum() == 36


@pytest.mark.parametrize("size,radius", [(64, 24.0), (160, 60.0)])
def test_sphere_silhouette_area(size, radius):
    verts, faces, _, _ = uv_sphere(radius, 48, 96)
    sv = verts.clone()
    sv[:, 0] += (size - 1) / 2.0 + 0.25
    sv[:, 1] = (size - 1) / 2.0 - verts[:, 1]
    sv[:, 2] = -verts[:, 2]
    fr = rasterize(sv[None], faces, size, size)
    # A polygonal sphere is slightly smaller than its circumscribed one: compare with πr²
    # and with the exact area of its 96-gon equator, allowing pixel-count noise.
    area = fr.mask.sum().item()
    polygon = 0.5 * 96 * radius**2 * math.sin(2 * math.pi / 96)
    assert abs(area - math.pi * radius**2) / (math.pi * radius**2) < 0.01
    assert abs(area - polygon) / polygon < 0.008
    # Only front faces are visible (z towards the camera means depth < 0 on the visible half).
    assert (fr.depth[fr.mask] <= 1e-4).all()


def _random_mesh(seed, B=2, V=80, F=60, H=24, W=32, z_lo=0.0):
    g = torch.Generator().manual_seed(seed)
    sv = torch.rand(B, V, 3, generator=g, dtype=torch.float64)
    sv = sv * torch.tensor([W + 8.0, H + 8.0, 10.0], dtype=torch.float64) - torch.tensor([4.0, 4.0, -z_lo], dtype=torch.float64)
    faces = torch.randint(0, V, (F, 3), generator=g)
    return sv, faces


@pytest.mark.parametrize(
    "settings",
    [RasterSettings(), RasterSettings(cull_backfaces=True), RasterSettings(perspective_correct=True)],
    ids=["plain", "cull", "perspective"],
)
def test_fast_matches_reference_on_random_meshes(settings):
    for seed in range(3):
        sv, faces = _random_mesh(seed, z_lo=1.0)
        sv32 = sv.float()
        fast = rasterize(sv32, faces, 24, 32, settings)
        ref = rasterize_reference(sv32, faces, 24, 32, settings)
        same = fast.face_idx == ref.face_idx
        assert same.float().mean() >= 0.998, f"seed {seed}: {(~same).sum()} pixels differ"
        both = same & fast.mask
        torch.testing.assert_close(fast.bary[both], ref.bary[both], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast.depth[both], ref.depth[both], atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(fast.bary.sum(-1)[fast.mask], torch.ones(int(fast.mask.sum())), atol=1e-5, rtol=0)


def test_reference_gradients_match_fast():
    sv, faces = _random_mesh(7, B=1)
    attrs = torch.randn(1, sv.shape[1], 2, dtype=torch.float64)
    grads = []
    for fn in (rasterize, rasterize_reference):
        v = sv.clone().requires_grad_(True)
        fr = fn(v, faces, 24, 32)
        (interpolate(attrs, fr.face_idx, fr.bary, faces).square().sum() + fr.depth.sum()).backward()
        grads.append(v.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_chunking_does_not_change_results():
    sv, faces = _random_mesh(3, F=200)
    a = rasterize(sv, faces, 24, 32)
    b = rasterize(sv, faces, 24, 32, RasterSettings(max_candidates=7))
    assert torch.equal(a.face_idx, b.face_idx)
    torch.testing.assert_close(a.bary, b.bary)


def _tiny_mesh():
    # Two triangles well inside a 12×12 image; no pixel centre within 0.05 px of an edge.
    v = torch.tensor([[[1.3, 1.2, 2.0], [9.6, 2.1, 3.0], [2.2, 9.7, 1.0], [10.4, 10.3, 2.5]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    return v, faces


@pytest.mark.parametrize("perspective", [False, True])
def test_gradcheck_interpolated_values(perspective):
    v0, faces = _tiny_mesh()
    attrs = torch.tensor([[0.1, 1.0], [0.7, -0.5], [1.3, 0.2], [-0.4, 0.9]], dtype=torch.float64)
    settings = RasterSettings(perspective_correct=perspective)

    def f(v):
        fr = rasterize(v, faces, 12, 12, settings)
        return interpolate(attrs, fr.face_idx, fr.bary, faces), fr.depth

    assert torch.autograd.gradcheck(f, (v0.clone().requires_grad_(True),), eps=1e-6, atol=1e-6)


def test_image_loss_finite_difference_wrt_translation():
    """d(loss)/d(tx) by autograd vs central differences, through texture sampling (float64)."""
    verts, faces, uv = grid_mesh(9, size=100.0, dtype=torch.float64)
    cam = Camera(48, 40)
    tex_y, tex_x = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    texture = torch.stack([torch.sin(6 * tex_x), torch.cos(5 * tex_y), tex_x * tex_y], -1).double()
    target = torch.rand(1, 40, 48, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    base = default_pose(1, cam, dtype=torch.float64)
    base[0, 0] = 0.3  # 30 px wide plane: silhouette inside the image

    def loss(tx: torch.Tensor) -> torch.Tensor:
        pose = torch.cat([base[:, :4], tx.view(1, 1), base[:, 5:]], 1)
        fr = rasterize(project(verts[None], pose, cam), faces, 40, 48)
        uv_pix = interpolate(uv, fr.face_idx, fr.bary, faces)
        img = sample_texture(texture, uv_pix, mask=fr.mask)
        return (img - target).square().sum()

    tx = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(loss(tx), tx)
    h = 1e-5
    with torch.no_grad():
        fd = (loss(tx + h) - loss(tx - h)) / (2 * h)
    assert abs(grad.item()) > 1e-3
    assert abs(grad.item() - fd.item()) <= 1e-5 * max(1.0, abs(fd.item()))


def test_batch_is_independent():
    sv, faces = _random_mesh(11, B=3)
    batched = rasterize(sv, faces, 24, 32)
    for b in range(3):
        single = rasterize(sv[b : b + 1], faces, 24, 32)
        assert torch.equal(batched.face_idx[b], single.face_idx[0])
        torch.testing.assert_close(batched.bary[b], single.bary[0])


def test_rejects_bad_inputs():
    sv, faces = _tri([(1, 1), (7, 1), (1, 7)])
    with pytest.raises(ValueError, match=r"\(B,V,3\)"):
        rasterize(sv[0], faces, 8, 8)
    with pytest.raises(ValueError, match=r"\(F,3\)"):
        rasterize(sv, faces.view(-1), 8, 8)
    with pytest.raises(ValueError, match="floating"):
        rasterize(sv.long(), faces, 8, 8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_cpu_and_cuda_give_identical_results(face_model):
    cam = Camera(224, 224)
    pose = default_pose(2, cam)
    pose[1, 2] = 0.6
    verts = face_model.mean[None].expand(2, -1, -1)
    sv = project(verts, pose, cam)
    attrs = torch.randn(verts.shape[1], 3, generator=torch.Generator().manual_seed(0))
    out = {}
    for dev in ("cpu", "cuda"):
        v = sv.to(dev).clone().requires_grad_(True)
        fr = rasterize(v, face_model.faces.to(dev), 224, 224)
        val = interpolate(attrs.to(dev), fr.face_idx, fr.bary, face_model.faces.to(dev))
        val.square().sum().backward()
        out[dev] = (fr.face_idx.cpu(), fr.bary.detach().cpu(), fr.depth.detach().cpu(), v.grad.cpu())
    assert torch.equal(out["cpu"][0], out["cuda"][0])
    for a, b in zip(out["cpu"][1:], out["cuda"][1:]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    small = sv[:1].cuda() * 0.25  # 56-px face in a 64² image
    ref = rasterize_reference(small, face_model.faces.cuda()[:3000], 64, 64)
    fast = rasterize(small, face_model.faces.cuda()[:3000], 64, 64)
    assert (ref.face_idx == fast.face_idx).float().mean() > 0.99


@pytest.mark.slow
def test_large_mesh_bounded_memory():
    """~200k triangles at 1024²: runs in chunks and covers the expected square."""
    verts, faces, _ = grid_mesh(318, size=900.0)
    sv = verts.clone()
    sv[:, 0] += 511.5
    sv[:, 1] = 511.5 - verts[:, 1]
    fr = rasterize(sv[None], faces, 1024, 1024, RasterSettings(max_candidates=1 << 20))
    assert faces.shape[0] >= 200_000
    assert abs(fr.mask.sum().item() - 900 * 900) <= 10


def test_rejects_out_of_range_faces():
    sv, _ = _tri([(1, 1), (7, 1), (1, 7)])
    with pytest.raises(ValueError, match="faces index vertices"):
        rasterize(sv, torch.tensor([[0, 1, 3]]), 8, 8)


def test_face_range_check_reruns_for_a_modified_tensor_or_another_mesh():
    """The check is remembered per faces tensor (a fit rasterises the same faces every step and
    reading their range stalls a GPU), but not past an in-place change or another vertex count."""
    sv, _ = _tri([(1, 1), (7, 1), (1, 7)])
    faces = torch.tensor([[0, 1, 2]])
    assert rasterize(sv, faces, 8, 8).mask.any()
    assert rasterize(sv, faces, 8, 8).mask.any()  # remembered
    with pytest.raises(ValueError, match="faces index vertices 0..2 but screen_verts has 2"):
        rasterize(sv[:, :2], faces, 8, 8)
    faces[0, 2] = 3
    with pytest.raises(ValueError, match="faces index vertices 0..3"):
        rasterize(sv, faces, 8, 8)
