"""An independent render path for the synthetic suite: Blender's Cycles path tracer through the
``bpy`` module (PyPI ``bpy``; imported here only, lazily).

The same mesh, albedo texture, camera and lights as :func:`evaluation.synthetic.render_face`
(``backend.render``: rasterised, Lambertian, SH-lit), rendered instead with path tracing: soft
shadows, inter-reflection, subsurface scattering in the skin, sRGB texture decoding and the
sRGB view transform. Units: 1 Blender unit = 1 mm. The camera sits at the origin looking down
−Z with +Y up (``backend.camera``'s convention and Blender's); the head is placed by the pose
(rotation, then translation; orthographic poses are turned into an orthographic camera whose
width is ``size / f`` mm, the head 1 m in front of it). Lights: the ambient term becomes the
world colour, each sun a Blender sun of strength π·rgb (a white Lambertian surface facing it then
reflects the radiance ``rgb``, as the SH light shades it).
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from .synthetic_scene import Lights

__all__ = ["cycles_available", "render_cycles", "CYCLES_SAMPLES"]

CYCLES_SAMPLES = 32  # path samples per pixel (no denoiser: deterministic for the scene's seed)


def cycles_available() -> bool:
    """True when the ``bpy`` module can be imported (it brings Cycles)."""
    try:
        import bpy  # noqa: F401
    except ImportError:
        return False
    return True


def _euler_matrix(rx: float, ry: float, rz: float) -> np.ndarray:
    """``backend.camera.euler_to_rotation`` in numpy: Rz·Ry·Rx (3,3)."""
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def render_cycles(
    verts: np.ndarray, faces: np.ndarray, uv: np.ndarray, faces_uv: np.ndarray, texture: np.ndarray, u_tiles: float,
    pose: np.ndarray, projection: str, size: int, lights: Lights, seed: int = 0, samples: int = CYCLES_SAMPLES,
    subsurface: float = 0.15,
) -> tuple[np.ndarray, np.ndarray]:
    """Path-trace one head. verts (N,3) mm model space; faces (F,3); uv (T,2) over u ∈ [0,
    ``u_tiles``]; faces_uv (F,3); texture (Ht,Wt,3) float in [0,1] (sRGB, top row = v 1); pose (7,)
    (``backend.camera``); ``lights`` camera space. Returns (image (size,size,3) uint8 on a black
    background, coverage mask (size,size) bool from the film's alpha)."""
    import bpy  # lazy: an optional renderer

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.cycles.seed = seed
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 1
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.view_settings.view_transform = "Standard"

    # the head: rotated by the pose, then translated (mm)
    R = _euler_matrix(*[float(a) for a in pose[1:4]])
    if projection == "perspective":
        placed = verts @ R.T + pose[4:7]
    else:  # orthographic: pixels → mm at scale f, 1 m in front of the camera
        placed = verts @ R.T + np.array([pose[4] / pose[0], pose[5] / pose[0], -1000.0])
    mesh = bpy.data.meshes.new("head")
    mesh.vertices.add(len(placed))
    mesh.vertices.foreach_set("co", placed.astype(np.float32).ravel())
    mesh.loops.add(3 * len(faces))
    mesh.loops.foreach_set("vertex_index", np.asarray(faces, np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * len(faces), 3, dtype=np.int32))
    mesh.polygons.foreach_set("loop_total", np.full(len(faces), 3, np.int32))
    mesh.update(calc_edges=True)
    corner_uv = np.asarray(uv, np.float64)[np.asarray(faces_uv).ravel()] / np.array([u_tiles, 1.0])
    mesh.uv_layers.new(name="UVMap").uv.foreach_set("vector", corner_uv.astype(np.float32).ravel())
    mesh.shade_smooth()
    obj = bpy.data.objects.new("head", mesh)
    scene.collection.objects.link(obj)

    h, w = texture.shape[:2]
    image = bpy.data.images.new("albedo", w, h, alpha=True)
    rgba = np.concatenate([np.clip(texture, 0, 1), np.ones((h, w, 1))], -1)[::-1]  # bottom row first
    image.pixels.foreach_set(rgba.astype(np.float32).ravel())
    image.pack()
    mat = bpy.data.materials.new("skin")
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    bsdf = nodes["Principled BSDF"]
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.interpolation = "Linear"
    mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.55
    bsdf.inputs["Subsurface Weight"].default_value = subsurface
    bsdf.inputs["Subsurface Radius"].default_value = (1.0, 0.35, 0.2)
    bsdf.inputs["Subsurface Scale"].default_value = 2.0  # mm
    mesh.materials.append(mat)

    # the camera at the origin looking down −Z
    cam_data = bpy.data.cameras.new("camera")
    cam_data.sensor_fit = "HORIZONTAL"
    cam_data.clip_start, cam_data.clip_end = 1.0, 1e5
    if projection == "perspective":
        cam_data.type = "PERSP"
        cam_data.sensor_width = 36.0
        cam_data.lens = float(pose[0]) / size * 36.0
    else:
        cam_data.type = "ORTHO"
        cam_data.ortho_scale = size / float(pose[0])
    camera = bpy.data.objects.new("camera", cam_data)
    scene.collection.objects.link(camera)
    scene.camera = camera

    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    background = world.node_tree.nodes["Background"]
    background.inputs["Color"].default_value = (*lights.ambient, 1.0)
    background.inputs["Strength"].default_value = 1.0
    scene.world = world
    import mathutils  # lazy, with bpy

    for i, (direction, rgb) in enumerate(lights.suns):
        peak = max(max(rgb), 1e-6)
        sun = bpy.data.lights.new(f"sun{i}", "SUN")
        sun.energy = math.pi * peak
        sun.color = tuple(c / peak for c in rgb)
        sun.angle = math.radians(2.0)
        lamp = bpy.data.objects.new(f"sun{i}", sun)
        # a sun shines along its −Z: point its +Z at the light
        lamp.rotation_euler = mathutils.Vector(direction).to_track_quat("Z", "Y").to_euler()
        scene.collection.objects.link(lamp)

    with tempfile.TemporaryDirectory() as tmp:
        scene.render.filepath = str(Path(tmp) / "render.png")
        bpy.ops.render.render(write_still=True)
        from PIL import Image

        with Image.open(scene.render.filepath) as im:
            out = np.asarray(im.convert("RGBA"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    alpha = out[..., 3].astype(np.float32) / 255.0
    rgb_out = np.clip(out[..., :3].astype(np.float32) * alpha[..., None] + 0.5, 0, 255).astype(np.uint8)
    return rgb_out, alpha > 0.5
