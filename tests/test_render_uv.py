"""UV-space rasterisation, position/normal maps and unwrapping a photo into UV."""
from __future__ import annotations

import torch

from backend.camera import Camera, default_pose
from backend.lighting import sh_ambient
from backend.render import (
    RenderSettings, UnwrapSettings, UVRasterCache, normal_map, position_map, rasterize_uv, render, unwrap_image,
)
from backend.render.primitives import grid_mesh, uv_sphere


def test_uv_raster_of_a_plane_gives_linear_position_map():
    verts, faces, uv = grid_mesh(5, size=100.0)
    frags = rasterize_uv(uv, faces, 16, 32)
    assert frags.face_idx.shape == (1, 16, 32)
    assert frags.mask.all()  # [0,1]² fully covered
    pm = position_map(verts[None], faces, frags)[0]
    # Texel (i, j) centre: u = (j+0.5)/32, v = 1 − (i+0.5)/16 → x = 100(u − ½), y = 100(v − ½).
    i, j = torch.meshgrid(torch.arange(16.0), torch.arange(32.0), indexing="ij")
    torch.testing.assert_close(pm[..., 0], 100 * ((j + 0.5) / 32 - 0.5), atol=1e-3, rtol=0)
    torch.testing.assert_close(pm[..., 1], 100 * (0.5 - (i + 0.5) / 16), atol=1e-3, rtol=0)
    nm = normal_map(verts[None], faces, frags)[0]
    torch.testing.assert_close(nm, torch.tensor([0.0, 0.0, 1.0]).expand(16, 32, 3))


def test_uv_tiles_select_their_triangles(face_model):
    face_tile = rasterize_uv(face_model.uv, face_model.faces_uv, 64, 64, (0.0, 1.0))
    head_tile = rasterize_uv(face_model.uv, face_model.faces_uv, 64, 64, (1.0, 2.0))
    both = rasterize_uv(face_model.uv, face_model.faces_uv, 64, 128, (0.0, 2.0))
    n_face_tris = 18460  # README: triangles 0–18459 use u ∈ [0,1]
    f = face_tile.face_idx[face_tile.mask]
    h = head_tile.face_idx[head_tile.mask]
    assert (f < n_face_tris).all() and (h >= n_face_tris).all()
    assert face_tile.mask.float().mean() > 0.85 and 0.4 < head_tile.mask.float().mean() < 0.9
    # Side by side they agree with the separate tiles (up to edge-on texels).
    same = (both.face_idx[:, :, :64] == face_tile.face_idx).float().mean()
    assert same > 0.97


def test_uv_cache_reuses_and_invalidates():
    _, faces, uv = grid_mesh(4)
    cache = UVRasterCache()
    a = cache.get(uv, faces, 8, 8)
    assert cache.get(uv, faces, 8, 8) is a
    assert cache.get(uv, faces, 16, 8) is not a
    uv.mul_(0.5)  # in-place edit: a new entry
    b = cache.get(uv, faces, 8, 8)
    assert b is not a and b.mask.sum() < a.mask.sum()


def test_unwrap_recovers_rendered_texture(face_model):
    Ht = 64
    yy, xx = torch.meshgrid(torch.arange(Ht), torch.arange(2 * Ht), indexing="ij")
    checker = (((yy // 8) + (xx // 8)) % 2).float()
    tex = torch.stack([0.2 + 0.6 * checker, 0.3 + 0.4 * (xx < Ht).float(), 0.5 * yy / Ht], -1)
    cam = Camera(160, 160)
    pose = default_pose(1, cam)
    pose[0, 2] = 0.5  # yaw: one cheek turned away
    r = render(face_model.mean[None], face_model.faces, pose, cam, sh_ambient(1.0), texture=tex, uv=face_model.uv,
               faces_uv=face_model.faces_uv, settings=RenderSettings(u_range=(0.0, 2.0)))
    uvf = rasterize_uv(face_model.uv, face_model.faces_uv, Ht, 2 * Ht, (0.0, 2.0))
    un = unwrap_image(r.image, face_model.mean[None], face_model.faces, pose, cam, uvf, fragments=r.fragments)
    vis = un.visible[0]
    assert 0.2 < vis.float().mean() < 0.5
    err = (un.texture[0] - tex).abs().sum(-1)[vis]
    assert err.median() < 1e-3 and err.quantile(0.75) < 0.1
    assert (un.cosine[0][vis] > 0).all() and (un.texture[0][~vis] == 0).all()
    # The face tile is mostly seen; the back of the head (camera-space z < −70 mm) never.
    assert vis[8:56, 8:56].float().mean() > 0.6
    from backend.camera import to_camera_space

    cam_z = position_map(to_camera_space(face_model.mean[None], pose, "orthographic"), face_model.faces, uvf)[0, ..., 2]
    back = uvf.mask[0] & (cam_z / pose[0, 0] < -70.0)
    assert back.sum() > 200 and not vis[back].any()
    # Some texels face the camera but hide behind other geometry (nose, cheek): the depth test drops them.
    occluded = uvf.mask[0] & (un.cosine[0] > 0.2) & ~vis
    assert occluded.sum() > 10
    # Without a given depth buffer the same visibility comes out.
    un2 = unwrap_image(r.image, face_model.mean[None], face_model.faces, pose, cam, uvf)
    assert torch.equal(un2.visible, un.visible)


def test_unwrap_sphere_sees_the_front_hemisphere_only():
    verts, faces, uv, faces_uv = uv_sphere(50.0, 24, 48)
    cam = Camera(64, 64, "perspective")
    pose = default_pose(1, cam)
    pose[0, 6] = -300.0
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    uvf = rasterize_uv(uv, faces_uv, 32, 64)
    assert uvf.mask.float().mean() > 0.95  # pole rows are triangles: half-covered
    un = unwrap_image(image, verts[None], faces, pose, cam, uvf, settings=UnwrapSettings(min_cosine=0.05))
    # Seen from +Z at 300 mm the visible cap is cos(angle from +Z) > r/d = 1/6.
    pm = position_map(verts[None], faces, uvf)[0]
    cos_z = pm[..., 2] / 50.0
    assert not un.visible[0][cos_z < 1.0 / 6.0 - 0.05].any()
    assert un.visible[0][(cos_z > 0.35) & uvf.mask[0]].float().mean() > 0.98
