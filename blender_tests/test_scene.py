"""build_head_objects on a fake Head (in-process): conversion, rollback, files, save/reload, render."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from .conftest import landmark_pixels  # noqa: E402


def _datablock_counts() -> tuple:
    return (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.materials), len(bpy.data.images),
            len(bpy.data.cameras), len(bpy.data.shape_keys))


def test_model_to_blender_axes(scene_mod):
    conv = scene_mod.model_to_blender
    np.testing.assert_allclose(conv(np.array([[1000.0, 2000.0, 3000.0]])), [[1.0, -3.0, 2.0]])
    np.testing.assert_allclose(conv(np.eye(3), scale=1.0), [[1, 0, 0], [0, 0, 1], [0, -1, 0]])


def test_head_faces_front_and_is_in_metres(scene_mod, fake_head, face_model):
    obj = scene_mod.build_head_objects(fake_head, scene_mod.BuildOptions(cameras=False))
    co = np.zeros(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    assert 0.25 < co[:, 2].max() - co[:, 2].min() < 0.45  # an ICT head with neck, in metres, Z up
    landmarks = co[face_model.landmarks68.numpy()]
    assert landmarks[:, 1].mean() < (co[:, 1].min() + co[:, 1].max()) / 2 - 0.03  # the face looks along −Y
    assert landmarks[19, 2] > landmarks[8, 2]  # brow above chin
    assert not [o for o in bpy.context.scene.objects if o.type == "CAMERA"]


def test_rollback_on_error(scene_mod, fake_head):
    before = _datablock_counts()
    broken = dataclasses.replace(fake_head, exp_basis=fake_head.exp_basis[:, :100])  # wrong vertex count
    with pytest.raises((RuntimeError, ValueError)):
        scene_mod.build_head_objects(broken, scene_mod.BuildOptions())
    assert _datablock_counts() == before
    assert not bpy.context.scene.objects


def test_dense_mesh_is_the_whole_head_with_its_detail(scene_mod, fake_head):
    from backend.geometry import detailed_head_mesh, subdivision_levels

    obj = scene_mod.build_head_objects(fake_head, scene_mod.BuildOptions(dense=True, cameras=False))
    mesh = detailed_head_mesh(fake_head)
    assert len(obj.data.vertices) == len(mesh.verts) and len(obj.data.polygons) == len(mesh.faces)
    levels = subdivision_levels(fake_head.uv, fake_head.faces_uv, fake_head.displacement.shape[0])
    assert len(obj.data.polygons) == 4 ** levels * len(fake_head.faces) and obj.data.shape_keys is None
    co = np.zeros(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    np.testing.assert_allclose(co.reshape(-1, 3), scene_mod.model_to_blender(mesh.verts), atol=1e-6)
    uv = np.zeros(len(obj.data.loops) * 2, np.float32)
    obj.data.uv_layers["UVMap"].uv.foreach_get("vector", uv)
    assert 0.0 <= uv.min() and uv.max() <= 1.0 and uv.max() > 0.9  # both tiles, squeezed into [0,1]
    nodes = {n.bl_idname for n in obj.data.materials[0].node_tree.nodes}
    assert "ShaderNodeNormalMap" not in nodes and "ShaderNodeDisplacement" not in nodes
    assert "ShaderNodeTexImage" in nodes  # the albedo, on the coarse mesh's UV layout
    assert json.loads(obj["photohead"])["mesh"] == "dense"
    with pytest.raises(ValueError, match="no detail"):
        scene_mod.build_head_objects(dataclasses.replace(fake_head, displacement=None), scene_mod.BuildOptions(dense=True))


def test_unpacked_images_saved_next_to_blend(scene_mod, fake_head, tmp_path):
    with pytest.raises(ValueError, match="save the .blend first"):
        scene_mod.build_head_objects(fake_head, scene_mod.BuildOptions(pack_images=False))
    obj = scene_mod.build_head_objects(
        fake_head, scene_mod.BuildOptions(pack_images=False, image_dir=str(tmp_path), cameras=False))
    assert (tmp_path / "photohead_albedo.png").is_file()
    assert (tmp_path / "photohead_displacement.exr").is_file()
    images = [n.image for n in obj.data.materials[0].node_tree.nodes if n.bl_idname == "ShaderNodeTexImage"]
    assert all(img.packed_file is None for img in images)


def test_survives_save_and_reload(scene_mod, fake_head, photo_path, face_model, tmp_path):
    obj = scene_mod.build_head_objects(fake_head, scene_mod.BuildOptions(photo_paths=[str(photo_path)]))
    name = obj.name
    path = tmp_path / "head.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert name not in bpy.data.objects
    bpy.ops.wm.open_mainfile(filepath=str(path))
    obj = bpy.data.objects[name]
    assert len(obj.data.shape_keys.key_blocks) == 54
    assert obj.data.shape_keys.key_blocks["mouthSmile_L"].value == pytest.approx(0.6)
    assert json.loads(obj["photohead"])["model"] == fake_head.model_name
    img = next(n.image for n in obj.data.materials[0].node_tree.nodes if n.label == "Albedo")
    assert tuple(img.size) == (64, 32) and img.has_data
    scene = bpy.context.scene
    px = landmark_pixels(scene, obj, scene.camera, face_model.landmarks68.numpy())
    assert np.abs(px - fake_head.views[0].landmarks68).max() < 1.0


def _cycles_with_sun(samples: int, background: float, sun_rotation: tuple[float, float, float]):
    """The current scene set to render with Cycles on the CPU, a grey world and one sun of
    energy 4. Returns the scene."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    world = bpy.data.worlds.new("World")
    world.color = (background,) * 3
    scene.world = world
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.data.energy = 4.0
    sun.rotation_euler = sun_rotation
    scene.collection.objects.link(sun)
    return scene


def test_cycles_preview(scene_mod, fake_head, photo_path, tmp_path):
    """Render a tiny Cycles preview through the view camera; the head covers the frame centre."""
    scene_mod.build_head_objects(fake_head, scene_mod.BuildOptions(photo_paths=[str(photo_path)], set_render=True))
    scene = _cycles_with_sun(samples=4, background=0.0, sun_rotation=(0.9, 0.0, 0.4))
    scene.render.resolution_percentage = 40  # 96×120
    scene.render.filepath = str(tmp_path / "preview.png")
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(str(tmp_path / "preview.png"))
    w, h = img.size
    px = np.array(img.pixels[:]).reshape(h, w, 4)[..., :3]
    centre = px[h // 3: 2 * h // 3, w // 3: 2 * w // 3].mean()
    assert (w, h) == (96, 120)
    assert centre > 0.1  # lit skin, not the black background


def test_perspective_view_camera(scene_mod, fake_head, face_model):
    """A perspective pose (f in pixels, t in mm) also maps the landmarks onto the photo."""
    import torch

    from backend.camera import Camera, project

    width, height = 300, 240
    pose = np.array([2.0 * height, 0.1, 0.3, -0.05, 12.0, -8.0, -700.0], np.float32)
    screen = project(torch.from_numpy(fake_head.vertices)[None].float(), torch.from_numpy(pose)[None],
                     Camera(width, height, "perspective"))[0].numpy()
    lms = screen[face_model.landmarks68.numpy(), :2]
    view = dataclasses.replace(fake_head.views[0], projection="perspective", pose=pose, image_size=(width, height),
                               landmarks68=lms)
    obj = scene_mod.build_head_objects(dataclasses.replace(fake_head, views=[view]), scene_mod.BuildOptions())
    scene = bpy.context.scene
    assert scene.camera.data.type == "PERSP"
    px = landmark_pixels(scene, obj, scene.camera, face_model.landmarks68.numpy())
    assert np.abs(px - lms).max() < 1.0


def test_displacement_material_moves_the_surface_by_the_maps_millimetres(scene_mod, fake_head):
    """The displacement image holds millimetres; the material must turn them into metres whatever
    ``displacement_scale_mm`` (the 16-bit PNG's normalisation, ≥ 1 mm) says: a 2.5 mm map
    displaces 2.5 mm, not 2.5 × 2.5."""
    disp = np.zeros_like(fake_head.displacement)
    disp[10:20, 10:20] = 2.5
    head = dataclasses.replace(fake_head, displacement=disp, displacement_scale_mm=2.5)
    obj = scene_mod.build_head_objects(head, scene_mod.BuildOptions(cameras=False))
    nodes = obj.data.materials[0].node_tree.nodes
    node = next(n for n in nodes if n.bl_idname == "ShaderNodeDisplacement")
    image = node.inputs["Height"].links[0].from_node.image
    assert node.inputs["Midlevel"].default_value == 0.0
    peak_m = max(image.pixels[:]) * node.inputs["Scale"].default_value  # height × scale, along the normal
    assert peak_m == pytest.approx(2.5e-3, rel=1e-4)


def _detail_maps_for(head, face_model, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A displacement (bands and bumps, mm) over the face tile and the tangent-space normal map
    our pipeline derives from it on ``head``'s mesh, padded to the whole UV layout."""
    import torch

    from backend.detail import dense_topology, displace, tangent_normal_map
    from backend.uvmaps import face_tile_layout, uv_position_map

    layout = face_tile_layout(face_model, size)
    pos = uv_position_map(torch.from_numpy(head.vertices)[None], face_model.faces, layout)
    y, x = np.mgrid[0:size, 0:size] / size
    disp = 0.8 * np.sin(2 * np.pi * 9 * y) * np.cos(2 * np.pi * 6 * x) + 0.6 * np.sin(2 * np.pi * 14 * (x + 0.5 * y))
    disp = torch.from_numpy(disp.astype(np.float32))[None, None] * layout.valid[:, None]
    surface = displace(pos, disp, layout, dense_topology(layout, pos))
    normal = tangent_normal_map(surface, layout.valid)[0].numpy()
    tiles = head.uv_tiles
    pad = lambda m, fill: np.concatenate([m, np.broadcast_to(fill, (size, size * (tiles - 1)) + m.shape[2:])], 1)  # noqa: E731
    return (pad(disp[0, 0].numpy(), 0.0).astype(np.float32),
            pad(normal, np.array([0.5, 0.5, 1.0], np.float32)).astype(np.float32))


def _render_detail_shading(scene_mod, head, source: str, flip_green: bool = False) -> np.ndarray:
    """Grey Cycles render (sun from above the face) of ``head`` shaded only by its displacement
    (as bump) or only by its normal map. Returns (H,W) luminance."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if flip_green:
        nm = head.normal_map.copy()
        nm[..., 1] = 1.0 - nm[..., 1]
        head = dataclasses.replace(head, normal_map=nm)
    obj = scene_mod.build_head_objects(head, scene_mod.BuildOptions(cameras=False))
    mat = obj.data.materials[0]
    tree = mat.node_tree
    bsdf = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    out = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    for link in list(bsdf.inputs["Base Color"].links):
        tree.links.remove(link)
    bsdf.inputs["Base Color"].default_value = (0.7, 0.7, 0.7, 1.0)
    drop = bsdf.inputs["Normal"] if source == "displacement" else out.inputs["Displacement"]
    for link in list(drop.links):
        tree.links.remove(link)
    mat.displacement_method = "BUMP"
    # sun from above, in front: the shading follows the +v slopes
    scene = _cycles_with_sun(samples=8, background=0.05, sun_rotation=(0.3, 0.0, 0.0))
    scene.render.resolution_x, scene.render.resolution_y = 160, 200
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    co = np.zeros(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    centre = co.reshape(-1, 3).mean(0)
    cam.location = (float(centre[0]), float(centre[1]) - 0.55, float(centre[2]) + 0.05)
    cam.rotation_euler = (np.pi / 2, 0.0, 0.0)
    cam.data.lens = 70
    scene.render.filepath = str(Path(bpy.app.tempdir) / f"detail_{source}_{flip_green}.png")
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(scene.render.filepath)
    w, h = img.size
    px = np.array(img.pixels[:], np.float64).reshape(h, w, 4)[::-1, :, :3]
    return px.mean(-1)


def test_normal_map_shades_like_the_displacement_it_comes_from(scene_mod, fake_head, face_model):
    """The exported tangent-space normal map (our frame: +X along +u, +Y along +v) and the
    displacement map must light the same relief in Blender: the fine shading of the two
    renders agrees (high-pass correlation), and a normal map with its green channel flipped
    (DirectX convention) does not."""
    from scipy.ndimage import gaussian_filter

    disp, normal = _detail_maps_for(fake_head, face_model)
    head = dataclasses.replace(fake_head, displacement=disp, displacement_scale_mm=float(max(1.0, np.abs(disp).max())),
                               normal_map=normal)
    bump = _render_detail_shading(scene_mod, head, "displacement")
    mapped = _render_detail_shading(scene_mod, head, "normal")
    flipped = _render_detail_shading(scene_mod, head, "normal", flip_green=True)
    fine = lambda img: img - gaussian_filter(img, 3.0)  # noqa: E731
    lit = (bump > 0.05) & (mapped > 0.05)
    assert lit.mean() > 0.1
    corr = lambda a, b: float(np.corrcoef(fine(a)[lit], fine(b)[lit])[0, 1])  # noqa: E731
    agree, disagree = corr(bump, mapped), corr(bump, flipped)
    print(f"normal map vs displacement shading: {agree:.3f}, green flipped: {disagree:.3f}")
    assert agree > 0.8, (agree, disagree)
    assert disagree < agree - 0.25, (agree, disagree)  # measured: 0.99 vs 0.64


@pytest.mark.parametrize("suffix", [".gif", ".avif"])
def test_a_photo_blender_cannot_read_still_shows_behind_its_camera(scene_mod, photo_path, tmp_path, suffix):
    """The backend reads GIF and AVIF (Pillow); Blender 5.0 loads both as an empty 0×0 image (4.2
    reads GIF), so the camera had no background. The backend's pixels become a packed image
    instead (addon.photos), and no empty image is left in the file."""
    from PIL import Image

    from backend.image_io import load_image

    from .fake_jobs import make_head

    other = tmp_path / ("grace" + suffix)
    Image.open(photo_path).convert("RGB").save(other)
    probe = bpy.data.images.load(str(other))
    unreadable = tuple(probe.size) == (0, 0)  # what this Blender makes of it
    bpy.data.images.remove(probe)
    if suffix == ".avif" or bpy.app.version >= (5, 0, 0):
        assert unreadable
    head = make_head([str(other)])
    obj = scene_mod.build_head_objects(head, scene_mod.BuildOptions(photo_paths=[str(other)]))
    image = [c for c in obj.parent.children if c.type == "CAMERA"][0].data.background_images[0].image
    assert tuple(image.size) == (240, 300) and (image.packed_file is not None or not unreadable)
    pixels = np.asarray(image.pixels[:], np.float32).reshape(300, 240, 4)[::-1, :, :3]  # top row first
    assert np.abs(pixels - load_image(other) / 255.0).max() < 1e-3
    assert not [i for i in bpy.data.images if tuple(i.size) == (0, 0)]


def test_a_photo_stored_turned_shows_upright_behind_its_camera(scene_mod, fake_head, photo_path, tmp_path):
    """A phone photo stored sideways with an EXIF orientation tag: Blender ignores the tag, the
    backend fits the upright photo; the camera's background is the upright photo (addon.photos),
    so the head lies on the face (before: the stored, sideways pixels, 300×240)."""
    from PIL import Image

    upright = Image.open(photo_path).convert("RGB")  # 240×300, what fake_head was fitted to
    turned = tmp_path / "turned" / photo_path.name  # the same name: matched to the view by name
    turned.parent.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    upright.transpose(Image.Transpose.ROTATE_90).save(turned, exif=exif)
    assert bpy.data.images.load(str(turned)).size[:] == (300, 240)  # Blender: as stored
    obj = scene_mod.build_head_objects(fake_head, scene_mod.BuildOptions(photo_paths=[str(turned)]))
    cams = [c for c in obj.parent.children if c.type == "CAMERA"]
    image = cams[0].data.background_images[0].image
    assert tuple(image.size) == (240, 300)
    pixels = np.asarray(image.pixels[:], np.float32).reshape(300, 240, 4)[::-1, :, :3]  # top row first
    want = np.asarray(upright, np.float32) / 255.0
    assert np.abs(pixels - want).mean() < 0.01
