"""Interpolation, texture sampling, SH shading and the render() convenience (incl. the face model)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.camera import Camera, default_pose
from backend.lighting import sh_ambient, sh_directional
from backend.render import (
    RenderSettings, interpolate, rasterize, render, sample_texture, shade_lambertian,
)
from backend.render.primitives import grid_mesh, uv_sphere


def test_interpolate_vertex_and_face_varying_attributes():
    # Quad split in two; the face-varying attribute differs per face at the shared vertices.
    sv = torch.tensor([[[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [6.0, 6.0, 0.0], [0.0, 6.0, 0.0]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    fr = rasterize(sv, faces, 7, 7)
    per_vertex = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    seam_vals = torch.tensor([[10.0], [20.0], [30.0], [100.0], [300.0], [400.0]])
    seam_faces = torch.tensor([[0, 1, 2], [3, 4, 5]])  # face 1 has its own copies
    a = interpolate(per_vertex, fr.face_idx, fr.bary, faces)
    b = interpolate(seam_vals, fr.face_idx, fr.bary, seam_faces)
    c = interpolate(seam_vals[seam_faces], fr.face_idx, fr.bary)  # per-corner form (F,3,C)
    torch.testing.assert_close(b, c)
    assert a.shape == (1, 7, 7, 1)
    torch.testing.assert_close(a[0, 0, 6, 0], torch.tensor(2.0))  # vertex 1 at (x=6, y=0)
    torch.testing.assert_close(b[0, 6, 0, 0], torch.tensor(400.0))  # vertex 3, face 1's copy
    torch.testing.assert_close(b[0, 0, 6, 0], torch.tensor(20.0))
    on_face1 = fr.face_idx[0] == 1
    assert (b[0][on_face1] >= 100.0 - 1e-4).all() and (b[0][fr.face_idx[0] == 0] <= 30.0 + 1e-4).all()
    # Batched attributes against batch-1 fragments broadcast.
    batched = torch.stack([per_vertex, 2 * per_vertex])
    ab = interpolate(batched, fr.face_idx, fr.bary, faces)
    torch.testing.assert_close(ab[1], 2 * a[0])


def test_sample_texture_hits_texel_centres_and_u_range():
    tex = torch.arange(2 * 4 * 8, dtype=torch.float32).view(4, 8, 2)  # 4 rows, 8 columns
    # Texel (i, j) centre: u = (j+0.5)/8 · 2 (two tiles), v = 1 − (i+0.5)/4.
    i, j = torch.meshgrid(torch.arange(4), torch.arange(8), indexing="ij")
    uv = torch.stack([(j + 0.5) / 8 * 2, 1 - (i + 0.5) / 4], -1)[None].float()
    out = sample_texture(tex, uv, u_range=(0.0, 2.0))
    torch.testing.assert_close(out[0], tex)
    # Half-way between two texels: their mean; outside clamps to the edge.
    mid = sample_texture(tex, torch.tensor([[[[2.0 / 8 * 2, 1 - 0.5 / 4]]]]), u_range=(0.0, 2.0))
    torch.testing.assert_close(mid[0, 0, 0], (tex[0, 1] + tex[0, 2]) / 2)
    edge = sample_texture(tex, torch.tensor([[[[-1.0, 2.0]]]]), u_range=(0.0, 2.0))
    torch.testing.assert_close(edge[0, 0, 0], tex[0, 0])


def test_shading_of_known_normals():
    n = torch.tensor([[[[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]]])
    amb = shade_lambertian(n, sh_ambient(0.6))
    torch.testing.assert_close(amb, torch.full_like(amb, 0.6))
    light = sh_directional(torch.tensor([[0.0, 0.0, 1.0]]), intensity=1.0)
    s = shade_lambertian(n, light)[0, 0, :, 0]
    # Order-2 SH of the clamped cosine: Σ_l A_l(2l+1)/(4π)·P_l(cos γ) =
    # 1/4 + 1/2·cos γ + 5/16·P2(cos γ): facing 1.0625, opposite 0.0625, sideways 0.09375.
    torch.testing.assert_close(s, torch.tensor([1.0625, 0.0625, 0.09375]))


def test_render_sphere_normals_and_lambert():
    verts, faces, _, _ = uv_sphere(60.0, 32, 64)
    cam = Camera(96, 96)
    pose = default_pose(1, cam)
    pose[0, 0] = 0.6  # 36 px radius
    r = render(verts[None], faces, pose, cam, sh_directional(torch.tensor([[0.0, 0.0, 1.0]]), 1.0),
               vertex_colors=torch.ones(verts.shape[0], 3))
    assert r.image.shape == (1, 96, 96, 3) and r.alpha.shape == (1, 96, 96)
    centre = r.normals[0, 47, 47]
    assert centre[2] > 0.99
    # Pixel right of centre: the normal points right (+X camera).
    assert r.normals[0, 47, 75, 0] > 0.6
    # Brightness falls off from the centre towards the limb.
    assert r.image[0, 47, 47, 0] > r.image[0, 47, 70, 0] > r.image[0, 47, 80, 0]
    assert (r.image[0][~r.mask[0]] == 0).all()


def test_given_model_space_normals_turn_with_the_pose():
    """``normals`` (model space) shade like the mesh's own normals under a rotated pose, and a
    constant given normal shades the whole sphere as one flat patch."""
    from backend.lighting import vertex_normals

    verts, faces, _, _ = uv_sphere(60.0, 24, 48)
    cam = Camera(64, 64)
    pose = default_pose(1, cam)
    pose[0, 0] = 0.4
    pose[0, 1:4] = torch.tensor([0.3, -0.7, 0.2])
    sh = sh_directional(torch.tensor([[0.3, 0.5, 1.0]]), 1.0)
    own = render(verts[None], faces, pose, cam, sh)
    given = render(verts[None], faces, pose, cam, sh, normals=vertex_normals(verts[None], faces))
    torch.testing.assert_close(given.image, own.image, atol=1e-5, rtol=0)
    flat = render(verts[None], faces, pose, cam, sh, normals=torch.tensor([[0.0, 0.0, 1.0]]).expand(verts.shape[0], 3))
    lit = flat.image[0][flat.mask[0]]
    assert (lit - lit[0]).abs().max() < 1e-5 and (own.image[0][own.mask[0]] - lit[0]).abs().max() > 0.2


def test_render_perspective_plane_is_perspective_correct():
    """A plane tilted in depth: the texture's u at each pixel must follow the projective map."""
    verts, faces, uv = grid_mesh(2, size=200.0)
    cam = Camera(64, 64, "perspective")
    pose = default_pose(1, cam)
    pose[0, 2] = 1.0  # yaw 57°: strong foreshortening
    pose[0, 6] = -400.0
    tex = torch.linspace(0, 1, 256).view(1, 256, 1).expand(4, 256, 3).contiguous()  # colour = u
    r = render(verts[None], faces, pose, cam, None, texture=tex, uv=uv, faces_uv=faces)
    # Recover u by intersecting each pixel's ray with the plane (analytic), compare.
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    f, c = pose[0, 0], 31.5
    d = torch.stack([(xs - c) / f, -(ys - c) / f, -torch.ones_like(xs)], -1)  # ray dir, camera frame
    ry = pose[0, 2]
    n = torch.tensor([math.sin(ry), 0.0, math.cos(ry)])  # plane normal after yaw
    p0 = torch.tensor([0.0, 0.0, -400.0])
    t = (p0 @ n) / (d @ n)
    hit = d * t[..., None] - p0
    local_x = hit[..., 0] * math.cos(ry) - hit[..., 2] * math.sin(ry)
    u = local_x / 200.0 + 0.5
    m = r.mask[0] & (u > 0.02) & (u < 0.98)
    assert m.sum() > 500
    err = (r.image[0, ..., 0][m] - u[m]).abs()
    assert err.max() < 0.01


def _face_render(face_model, size: int, yaw: float = 0.35):
    cam = Camera(size, size)
    pose = default_pose(1, cam)
    pose[0, 2] = yaw
    Ht = 128
    yy, xx = torch.meshgrid(torch.arange(Ht), torch.arange(2 * Ht), indexing="ij")
    skin = torch.tensor([0.78, 0.57, 0.47])
    checker = (((yy // 8) + (xx // 8)) % 2).float()[..., None]
    tex = skin * (0.85 + 0.15 * checker)
    tex[:, Ht:] = torch.tensor([0.35, 0.25, 0.2])  # hair/neck tile darker
    sh = sh_directional(torch.tensor([[0.6, 0.4, 1.0]]), intensity=0.75, ambient=0.35)
    return render(face_model.mean[None], face_model.faces, pose, cam, sh, texture=tex, uv=face_model.uv,
                  faces_uv=face_model.faces_uv, settings=RenderSettings(u_range=(0.0, 2.0), background=(1.0, 1.0, 1.0)))


def test_render_face_model_looks_like_a_face(face_model, tmp_path):
    r = _face_render(face_model, 128)
    from PIL import Image

    img = (r.image[0].clamp(0, 1) * 255).byte().numpy()
    Image.fromarray(img).save(tmp_path / "face.png")
    Image.fromarray(((r.normals[0] * 0.5 + 0.5) * 255).byte().numpy()).save(tmp_path / "normals.png")
    cover = r.mask.float().mean().item()
    assert 0.4 < cover < 0.9
    # The nose tip is the nearest point of a frontal-ish face: smallest depth near the centre.
    tip = face_model.mean[face_model.landmarks68[30]]
    depth = r.depth[0].masked_fill(~r.mask[0], float("inf"))
    iy, ix = np.unravel_index(int(depth.argmin()), depth.shape)
    assert abs(ix - 64) < 25 and abs(iy - (63.5 - tip[1].item() * 128 / 230)) < 25
    # Lit from the viewer's upper right: the right half of the face is brighter than the left.
    face = r.mask[0] & (r.normals[0, ..., 2] > 0.3)
    lum = r.image[0].mean(-1)
    right = lum[:, 64:][face[:, 64:]].mean()
    left = lum[:, :64][face[:, :64]].mean()
    assert right > left + 0.03
    assert (r.image[0][~r.mask[0]] == 1.0).all()
    assert np.isfinite(img).all() and img[r.mask[0].numpy()].std() > 5


REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "images" / "render_reference.png"


def _reference_image(face_model) -> np.ndarray:
    """Two views (frontal, yaw 0.5) of the mean ICT head, checker-textured, SH-lit: (192,384,3) uint8."""
    views = [_face_render(face_model, 192, yaw).image[0] for yaw in (0.0, 0.5)]
    return (torch.cat(views, 1).clamp(0, 1) * 255).round().byte().numpy()


def test_render_matches_committed_reference(face_model, tmp_path):
    """Regenerate with PHOTOHEAD_UPDATE_REFERENCE=1 after an intended change (and look at it)."""
    from PIL import Image

    img = _reference_image(face_model)
    Image.fromarray(img).save(tmp_path / "render_reference.png")
    if os.environ.get("PHOTOHEAD_UPDATE_REFERENCE") == "1":
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(REFERENCE, optimize=True)
    ref = np.asarray(Image.open(REFERENCE).convert("RGB"))
    assert ref.shape == img.shape
    diff = np.abs(ref.astype(np.int16) - img.astype(np.int16))
    assert diff.mean() < 0.5 and (diff > 8).mean() < 0.002


def test_render_is_differentiable_wrt_sh_pose_and_texture(face_model):
    cam = Camera(48, 48)
    pose = default_pose(1, cam).requires_grad_(True)
    sh = sh_directional(torch.tensor([[0.3, 0.2, 1.0]]), 0.8, 0.2).requires_grad_(True)
    tex = torch.rand(8, 16, 3, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    r = render(face_model.mean[None], face_model.faces, pose, cam, sh, texture=tex, uv=face_model.uv,
               faces_uv=face_model.faces_uv, settings=RenderSettings(u_range=(0.0, 2.0)))
    r.image.sum().backward()
    assert sh.grad.abs().sum() > 0 and tex.grad.abs().sum() > 0 and pose.grad[0, 1:4].abs().sum() > 0


def test_render_rejects_partial_texture_args(face_model):
    cam = Camera(16, 16)
    with pytest.raises(ValueError, match="faces_uv"):
        render(face_model.mean[None], face_model.faces, default_pose(1, cam), cam, texture=torch.ones(4, 4, 3))
