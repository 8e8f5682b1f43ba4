"""Turntable and UV-map previews (backend.preview_render) on heads built from the face model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.head import Head
from backend.preview_render import (
    BACKGROUND, TURNTABLE_YAWS, diverging_colours, head_mesh, render_head, render_turntable, render_uv_maps,
    turntable_poses, turntable_renders,
)

SIZE = 96  # panel size for the tests, pixels
RED, BLUE = (0.9, 0.1, 0.1), (0.1, 0.1, 0.9)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def model_head(model, res: int = 32, dense_res: int | None = None) -> Head:
    """The model's mean face as a Head whose albedo is red on the face tile and blue elsewhere;
    with ``dense_res`` also a flat (zero displacement) dense face tile of that many texels per side."""
    tiles = model.uv_tiles
    albedo = np.empty((res, res * tiles, 3), np.float32)
    albedo[:, :res] = RED
    albedo[:, res:] = BLUE
    v = model.mean.cpu().numpy().astype(np.float32)
    head = Head(
        model_name=model.name, vertices=v, neutral=v, faces=model.faces.cpu().numpy().astype(np.int32),
        uv=model.uv.cpu().numpy().astype(np.float32), faces_uv=model.faces_uv.cpu().numpy().astype(np.int32),
        id_coeffs=np.zeros(1, np.float32), exp_coeffs=np.zeros(1, np.float32), exp_names=[], uv_tiles=tiles,
        albedo=albedo,
    )
    if dense_res:
        from backend.detail import dense_topology, displace
        from backend.uvmaps import face_tile_layout, uv_position_map

        layout = face_tile_layout(model.cpu(), dense_res)
        coarse = uv_position_map(model.mean.cpu()[None].float(), model.faces.cpu(), layout)
        topo = dense_topology(layout, coarse)
        surface = displace(coarse, torch.zeros(1, 1, dense_res, dense_res), layout, topo)
        head.dense_vertices = surface.dense_verts[0].numpy()
        head.dense_faces = topo.faces.numpy().astype(np.int32)
        head.dense_uv = topo.uv.numpy()
        head.displacement = np.zeros((dense_res, dense_res * tiles), np.float32)
        head.normal_map = np.full((dense_res, dense_res * tiles, 3), (0.5, 0.5, 1.0), np.float32)
    return head


def _red(images: np.ndarray) -> np.ndarray:
    """(Y,H,W) bool: pixels showing the face tile (red albedo)."""
    im = images.astype(np.int32)
    return (im[..., 0] > im[..., 2] + 40) & (im[..., 0] > im[..., 1] + 40)


def test_turntable_strip_shape_and_side_views(face_model):
    head = model_head(face_model)
    strip = render_turntable(head, size=SIZE)
    assert strip.shape == (2 * SIZE, len(TURNTABLE_YAWS) * SIZE, 3) and strip.dtype == np.uint8
    images, masks = turntable_renders(head, TURNTABLE_YAWS, SIZE)
    assert images.shape == (5, SIZE, SIZE, 3) and masks.shape == (5, SIZE, SIZE)
    # every panel shows a head of similar size (one scale for all yaws)
    area = masks.mean((1, 2))
    assert (area > 0.2).all() and area.max() < 1.6 * area.min(), area
    # the face tile (red) is centred at 0° and on the image's right at +90° (face towards +x), left at −90°
    red = _red(images)
    xs = np.arange(SIZE)
    centre_x = [(red[i] * xs).sum() / max(red[i].sum(), 1) for i in range(5)]
    assert abs(centre_x[2] - (SIZE - 1) / 2) < 0.05 * SIZE, centre_x
    assert centre_x[4] > 0.55 * SIZE and centre_x[0] < 0.45 * SIZE, centre_x
    assert centre_x[0] < centre_x[1] < centre_x[2] < centre_x[3] < centre_x[4], centre_x
    # the profile at ±90°: far less red than the front, and the two sides mirror each other
    assert red[0].sum() < 0.8 * red[2].sum() and red[4].sum() < 0.8 * red[2].sum()
    mirror_iou = (masks[0] & masks[4][:, ::-1]).sum() / (masks[0] | masks[4][:, ::-1]).sum()
    self_iou = (masks[4] & masks[4][:, ::-1]).sum() / (masks[4] | masks[4][:, ::-1]).sum()
    assert mirror_iou > 0.95 and self_iou < mirror_iou - 0.1, (mirror_iou, self_iou)
    # background where nothing was drawn
    bg = round(BACKGROUND * 255)
    assert (np.abs(images[~masks].astype(int) - bg) <= 1).all()


def test_turntable_poses_centre_the_head(face_model):
    verts = face_model.mean.cpu()[None].float()
    pose = turntable_poses(verts, (-90.0, 0.0, 90.0), 100)
    from backend.camera import Camera, project

    xy = project(verts.expand(3, -1, -1), pose, Camera(100, 100))[..., :2]
    lo, hi = xy.amin(1), xy.amax(1)
    torch.testing.assert_close((lo + hi) / 2, torch.full((3, 2), 49.5), atol=1.5, rtol=0)
    assert float((hi - lo).max()) <= 90.5  # fill 0.9 of the panel


def test_detailed_render_has_no_crack_and_shows_the_displacement(face_model):
    """With a zero displacement the detailed head (the lattice of head_detailed.obj, closed)
    renders like the coarse mesh: no crack anywhere; a displacement shows."""
    from backend.camera import Camera
    from backend.lighting import sh_directional

    head = model_head(face_model, dense_res=128)
    coarse = model_head(face_model)
    for h in (head, coarse):
        h.albedo = np.full_like(h.albedo, 0.8)
    pose = turntable_poses(head_mesh(coarse)[0], (0.0, 60.0), 128)
    cam = Camera(128, 128)
    light = sh_directional(torch.tensor([[0.0, 0.3, 1.0]]).expand(2, 3), 0.8, 0.1)
    img, mask = render_head(head, pose, cam, light, background=(0.0, 1.0, 0.0))
    ref, ref_mask = render_head(coarse, pose, cam, light, background=(0.0, 1.0, 0.0))
    assert head_mesh(head)[1].shape[0] == 4 * face_model.faces.shape[0]  # the detailed mesh (128² map: 1 level)
    assert int((mask ^ ref_mask).sum()) <= 0.002 * int(ref_mask.sum())
    # a crack would show the green background or the unlit inside: much darker red
    bad = (ref[..., 0] - img[..., 0] > 0.25) & ref_mask
    assert int(bad.sum()) <= 0.002 * int(ref_mask.sum()), int(bad.sum())
    # bands on the face tile change the face's shading
    bands = head.displacement.copy()
    bands[:, :128] = 1.5 * np.sin(np.arange(128) * 2 * np.pi / 16)[:, None]
    head.displacement = bands
    waves, _ = render_head(head, pose, cam, light, background=(0.0, 1.0, 0.0))
    changed = (waves - img).abs().amax(-1) > 0.05
    assert int(changed[0].sum()) > 0.1 * int(mask[0].sum())


def test_uv_panel_shape_and_content(face_model):
    head = model_head(face_model, res=32, dense_res=32)
    rng = np.random.default_rng(0)
    head.displacement = rng.normal(size=head.displacement.shape).astype(np.float32) * 0.5
    w = np.zeros((3, 32, 64), np.float32)
    w[0, :, :10], w[1, :, 10:20], w[2, :, 20:32] = 1.0, 1.0, 1.0
    head.view_weights = w
    panel = render_uv_maps(head, height=48)
    assert panel.shape == (96, 192, 3) and panel.dtype == np.uint8
    cover = panel[48:, 96:].astype(int)  # bottom right: coverage, red | green | blue columns then black
    assert cover[30, 4, 0] > 200 and cover[30, 20, 1] > 200 and cover[30, 35, 2] > 200
    assert cover[30, 60:].max() == 0
    # without the optional maps: same shape, grey placeholders
    bare = model_head(face_model, res=32)
    assert render_uv_maps(bare, height=48).shape == (96, 192, 3)


def test_diverging_colours():
    c = diverging_colours(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), 1.0)
    assert c.shape == (5, 3)
    np.testing.assert_allclose(c[0], c[1])  # saturates
    assert c[2].min() > 0.9  # zero → white
    assert c[3, 0] > c[3, 2] + 0.2 and c[1, 2] > c[1, 0] + 0.2  # + red, − blue
    assert diverging_colours(np.zeros((2, 4)), 0.0).shape == (2, 4, 3)  # a zero limit does not divide by zero


def test_shared_pass_one_and_model_normals_render_the_same_turntable(face_model):
    """render_turntable's shortcuts (one rasteriser pass 1 for the textured and the grey row, the
    mesh's normals computed once in model space) change no pixel's coverage and shading by at
    most one 8-bit level, against each render computing its own."""
    from backend.camera import Camera
    from backend.lighting import vertex_normals
    from backend.preview_render import head_visibility

    head = model_head(face_model)
    mesh = head_mesh(head)
    pose = turntable_poses(head_mesh(head, detailed=False)[0], TURNTABLE_YAWS, SIZE)
    visible = head_visibility(mesh, pose, Camera(SIZE, SIZE))
    normals = vertex_normals(mesh[0], mesh[1])
    for textured in (True, False):
        own, own_mask = turntable_renders(head, TURNTABLE_YAWS, SIZE, textured=textured, mesh=mesh)
        shared, shared_mask = turntable_renders(head, TURNTABLE_YAWS, SIZE, textured=textured, mesh=mesh,
                                                visible=visible, normals=normals)
        assert np.array_equal(own_mask, shared_mask) and own_mask.mean() > 0.2
        diff = np.abs(own.astype(int) - shared.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01
