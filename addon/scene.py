"""A :class:`~backend.head.Head` → Blender objects (bpy + numpy, no torch).

:func:`build_head_objects` is the single code path used by the add-on and by
``photohead reconstruct --blend`` (through ``addon.blendfile``). It creates every datablock
first and links the objects into the scene only at the very end; on any error it removes
what it created, so the scene is never left with half a head.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import bpy
import numpy as np
from mathutils import Matrix

from . import backend_module
from .parts_scene import build_part_objects
from .photos import upright_photo

# numpy-only backend modules (no torch in Blender's process): the dense mesh, params, camera frames
_export = backend_module("export")
_geometry = backend_module("geometry")
MM_TO_M = _export.MM_TO_M
# Model space (mm, +Y up, +Z towards the camera) → Blender (m, +Z up, the face looks along −Y).
_MODEL_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
VIEW_LABELS = ("front", "left", "right", "other")


def model_to_blender(points: np.ndarray, scale: float = MM_TO_M) -> np.ndarray:
    """The one axis/unit conversion: (..., 3) model mm → (..., 3) Blender metres.

    ``(x, y, z) → (x, −z, y)·scale``; pass ``scale=1`` for directions.
    """
    return (np.asarray(points, np.float64) @ _MODEL_TO_BLENDER.T) * scale


@dataclass
class BuildOptions:
    """How a Head becomes objects.

    - ``name``: base name of the objects (Blender adds .001 etc. on clashes);
    - ``dense``: build the whole head with its detail baked into the geometry
      (``backend.geometry``; needs ``head.displacement``), else the coarse mesh with
      shape keys and normal/displacement maps;
    - ``cameras``: a camera per view aligned to its photo (the photo as its background; the
      first camera becomes the scene camera only when the scene has none);
    - ``set_render``: also set the scene's render size to the first photo's and make its
      camera the scene camera. Off by default: the artist's render settings are left alone
      (the cameras fit the photo's height into the frame, so the overlay holds for any
      render size at least as wide as the photo's aspect);
    - ``pack_images``: pack the textures into the .blend; otherwise save them as files into
      ``image_dir`` (required then: normally the folder of the .blend);
    - ``photo_paths``: candidate photo files for the camera backgrounds; each view takes the
      one whose path is the view's own (``view.name``), else the only one with its file name,
      else ``view.name`` itself when that file exists, else its stored ``view.image``;
    - ``collection``: where to link the objects (default: the scene's collection).
    """

    name: str = "Photohead"
    dense: bool = False
    cameras: bool = True
    pack_images: bool = True
    image_dir: str | None = None
    photo_paths: Sequence[str] = ()
    set_render: bool = False
    collection: Any = None
    scene: Any = None


@dataclass
class _Created:
    """Datablocks created so far, removed again on error."""

    items: list[tuple[Any, Any]] = field(default_factory=list)

    def add(self, collection, block):
        self.items.append((collection, block))
        return block

    def remove_all(self) -> None:
        for collection, block in reversed(self.items):
            if block.name in collection and collection[block.name] == block:
                collection.remove(block)
        self.items.clear()


def build_head_objects(head, options: BuildOptions | None = None) -> bpy.types.Object:
    """Create the objects for ``head`` and link them into the scene. Returns the head mesh object.

    The head's parent is an empty named after ``options.name`` (one per reconstruction); the
    view cameras are its children too. The head object holds the fit parameters as JSON in
    ``obj["photohead"]``.
    """
    options = options or BuildOptions()
    if options.dense and head.displacement is None:
        raise ValueError("this reconstruction has no detail (detail stage off): build the base mesh instead")
    if not options.pack_images and not options.image_dir:
        raise ValueError("images must be packed or saved into a folder: save the .blend first or enable Pack Images")
    scene = options.scene or bpy.context.scene
    collection = options.collection or scene.collection
    created = _Created()
    try:
        root = created.add(bpy.data.objects, bpy.data.objects.new(options.name, None))
        root.empty_display_type = "PLAIN_AXES"
        root.empty_display_size = 0.05
        root["photohead_root"] = True
        head_obj = _build_head(head, options, created)
        head_obj.parent = root
        part_objs = build_part_objects(head, head_obj, options.name, created, model_to_blender, _mesh_from_arrays,
                                       shape_keys=not options.dense)
        cameras = []
        if options.cameras:
            for index, view in enumerate(head.views):
                cam = _build_camera(view, index, options, created)
                cam.parent = root
                cameras.append(cam)
    except Exception:  # whatever failed, leave no half-built datablocks behind
        created.remove_all()
        raise
    # Link everything in one step.
    for obj in (root, head_obj, *part_objs, *cameras):
        collection.objects.link(obj)
    if cameras and options.set_render:
        width, height = head.views[0].image_size
        scene.render.resolution_x, scene.render.resolution_y = int(width), int(height)
        scene.render.resolution_percentage = 100
        scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
        scene.camera = cameras[0]
    elif cameras and scene.camera is None:
        scene.camera = cameras[0]
    return head_obj


# -- mesh ----------------------------------------------------------------------------------
def _build_head(head, options: BuildOptions, created: _Created) -> bpy.types.Object:
    dense = options.dense
    if dense:
        verts, faces, uv, faces_uv = _export.detailed_mesh_arrays(head)  # head_detailed.obj's mesh and UVs
        loop_uv = uv[faces_uv.ravel()]
    else:
        base = head.neutral if head.exp_basis is not None else head.vertices
        verts = np.asarray(base, np.float64)
        faces = np.asarray(head.faces, np.int64)
        loop_uv = head.export_uv[np.asarray(head.faces_uv, np.int64).ravel()]
    mesh = created.add(bpy.data.meshes, _mesh_from_arrays(f"{options.name} Head", model_to_blender(verts), faces, loop_uv))
    obj = created.add(bpy.data.objects, bpy.data.objects.new(f"{options.name} Head", mesh))
    if not dense and head.exp_basis is not None:
        _add_shape_keys(obj, head)
    mesh.materials.append(_build_material(head, options, created, with_detail_maps=not dense))
    obj["photohead"] = json.dumps({**_export.params_dict(head), "mesh": "dense" if dense else "coarse"})
    return obj


def _mesh_from_arrays(name: str, verts_m: np.ndarray, faces: np.ndarray, loop_uv: np.ndarray) -> bpy.types.Mesh:
    """Triangle mesh: verts (V,3) m, faces (F,3) int, loop_uv (3F,2) in [0,1]²."""
    mesh = bpy.data.meshes.new(name)
    n_faces = len(faces)
    mesh.vertices.add(len(verts_m))
    mesh.vertices.foreach_set("co", verts_m.astype(np.float32).ravel())
    mesh.loops.add(3 * n_faces)
    mesh.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    mesh.polygons.add(n_faces)
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * n_faces, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    layer = mesh.uv_layers.new(name="UVMap")
    layer.uv.foreach_set("vector", np.asarray(loop_uv, np.float32).ravel())
    mesh.polygons.foreach_set("use_smooth", np.ones(n_faces, dtype=bool))
    mesh.update()
    return mesh


def _add_shape_keys(obj: bpy.types.Object, head) -> None:
    """Basis = neutral; one key per expression blendshape, valued by the fitted coefficients."""
    obj.shape_key_add(name="Basis", from_mix=False)
    neutral = np.asarray(head.neutral, np.float64)
    coeffs = np.asarray(head.exp_coeffs, np.float64).ravel()
    for k, name in enumerate(head.exp_names):
        key = obj.shape_key_add(name=str(name), from_mix=False)
        key.data.foreach_set("co", model_to_blender(neutral + head.exp_basis[k]).astype(np.float32).ravel())
        value = float(coeffs[k]) if k < len(coeffs) else 0.0
        key.slider_min = min(0.0, math.floor(value))
        key.slider_max = max(1.0, math.ceil(value))
        key.value = value


# -- material and images ---------------------------------------------------------------------
def _build_material(head, options: BuildOptions, created: _Created, with_detail_maps: bool) -> bpy.types.Material:
    mat = created.add(bpy.data.materials, bpy.data.materials.new(f"{options.name} Skin"))
    if mat.node_tree is None:  # Blender < 5.0: a new material has no node tree until use_nodes
        mat.use_nodes = True
    tree = mat.node_tree
    nodes, links = tree.nodes, tree.links
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    out.location = (600, 0)
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.location = (250, 0)
    bsdf.inputs["Roughness"].default_value = 0.55
    bsdf.inputs["Subsurface Weight"].default_value = 0.05
    links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    uvmap = nodes.new("ShaderNodeUVMap")
    uvmap.uv_map = "UVMap"
    uvmap.location = (-700, 0)

    def texture(image, y: float, label: str) -> bpy.types.Node:
        node = nodes.new("ShaderNodeTexImage")
        node.image, node.label, node.location = image, label, (-400, y)
        links.new(uvmap.outputs["UV"], node.inputs["Vector"])
        return node

    if head.albedo is not None:
        img = _image(f"{options.name} Albedo", head.albedo, options, created, data=False)
        links.new(texture(img, 300, "Albedo").outputs["Color"], bsdf.inputs["Base Color"])
    else:
        bsdf.inputs["Base Color"].default_value = (0.8, 0.6, 0.5, 1.0)
    if with_detail_maps and head.normal_map is not None:
        img = _image(f"{options.name} Normal", head.normal_map, options, created, data=True)
        normal = nodes.new("ShaderNodeNormalMap")
        normal.space, normal.uv_map, normal.location = "TANGENT", "UVMap", (0, -250)
        links.new(texture(img, 0, "Normal map").outputs["Color"], normal.inputs["Color"])
        links.new(normal.outputs["Normal"], bsdf.inputs["Normal"])
    if with_detail_maps and head.displacement is not None:
        img = _image(f"{options.name} Displacement", head.displacement, options, created, data=True, hdr=True)
        disp = nodes.new("ShaderNodeDisplacement")
        disp.location = (250, -450)
        disp.space = "OBJECT"
        disp.inputs["Midlevel"].default_value = 0.0
        # the float image holds millimetres (``displacement_scale_mm`` only normalises the 16-bit PNG)
        disp.inputs["Scale"].default_value = MM_TO_M
        links.new(texture(img, -350, "Displacement (mm)").outputs["Color"], disp.inputs["Height"])
        links.new(disp.outputs["Displacement"], out.inputs["Displacement"])
        mat.displacement_method = "BOTH"
    return mat


def _image(name: str, array: np.ndarray, options: BuildOptions, created: _Created, data: bool, hdr: bool = False):
    """UV image from (H,W) or (H,W,C) float array stored top row first; packed or saved."""
    arr = np.asarray(array, np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    height, width, channels = arr.shape
    rgba = np.ones((height, width, 4), np.float32)
    rgba[..., :3] = arr[..., :3] if channels >= 3 else arr[..., :1]
    image = created.add(bpy.data.images, bpy.data.images.new(name, width, height, alpha=False, float_buffer=hdr, is_data=data))
    image.pixels.foreach_set(rgba[::-1].ravel())  # Blender stores the bottom row first
    image.file_format = "OPEN_EXR" if hdr else "PNG"
    if options.pack_images:
        image.pack()
    else:
        stem = image.name.lower().replace(" ", "_")  # unique: Blender numbers clashing names
        path = Path(options.image_dir) / f"{stem}{'.exr' if hdr else '.png'}"
        image.filepath_raw = str(path)
        image.save()
        image.source = "FILE"
        image.filepath = str(path)
    return image


# -- cameras -------------------------------------------------------------------------------------
def _build_camera(view, index: int, options: BuildOptions, created: _Created) -> bpy.types.Object:
    """A camera whose image is the view's photo: pixels of the photo ↔ pixels of the render."""
    width, height = (int(s) for s in view.image_size)
    frame = _geometry.camera_frame(view.pose, view.projection)
    label = view.label or (VIEW_LABELS[0] if index == 0 else f"view{index}")
    cam_data = created.add(bpy.data.cameras, bpy.data.cameras.new(f"{options.name} {label}"))
    # The photo's height spans the frame's height (VERTICAL fit): for any render size whose aspect is
    # at least the photo's, the background (FIT) and the projection agree pixel for pixel.
    cam_data.sensor_fit = "VERTICAL"
    if frame.projection == "orthographic":
        cam_data.type = "ORTHO"
        cam_data.ortho_scale = height / frame.f * MM_TO_M  # f: pixels per mm
    else:  # perspective: f in pixels
        cam_data.type = "PERSP"
        cam_data.sensor_height = 24.0
        cam_data.lens = frame.f * 24.0 / height
    cam_data.clip_start = 0.01
    cam_data.clip_end = 10.0
    # Blender camera axes (x right, y up, looking along −z) = the frame's axes.
    axes = model_to_blender(frame.axes, scale=1.0).T  # columns: the camera's x/y/z axes in Blender
    location = model_to_blender(frame.eye)
    photo_path = match_photo(view.name, options.photo_paths)
    photo = _photo_image(view, index, options, created, photo_path)
    if photo is not None:
        cam_data.show_background_images = True
        background = cam_data.background_images.new()
        background.image = photo
        background.frame_method = "FIT"
        background.alpha = 0.6
    cam = created.add(bpy.data.objects, bpy.data.objects.new(f"{options.name} Camera {label}", cam_data))
    matrix = Matrix.Identity(4)
    for r in range(3):
        for c in range(3):
            matrix[r][c] = float(axes[r, c])
        matrix[r][3] = float(location[r])
    cam.matrix_world = matrix
    cam["photohead_view"] = index
    cam["photohead_image_size"] = [width, height]
    cam["photohead_photo"] = photo_path or view.name  # the landmark pins of this photo attach here
    # the pins' plane: halfway between the camera and the head
    cam["photohead_pin_depth"] = 0.5 * float(np.linalg.norm(location))  # the head sits near the origin
    return cam


def match_photo(view_name: str, candidates: Sequence[str]) -> str | None:
    """The photo file of a view named ``view_name`` (the path it was reconstructed from).

    Matched by the view's own path, never by position (a skipped photo shifts the views):
    the candidate with the same absolute path, else the only candidate with the same file
    name, else ``view_name`` itself when that file exists; None when nothing matches.
    """
    if not view_name:
        return None
    target = os.path.normcase(os.path.abspath(view_name))
    files = [str(c) for c in candidates if c and os.path.isfile(c)]
    same = [c for c in files if os.path.normcase(os.path.abspath(c)) == target]
    if same:
        return same[0]
    base = os.path.basename(view_name.replace("\\", "/"))
    named = {os.path.normcase(os.path.abspath(c)) for c in files if os.path.basename(c) == base}
    if len(named) == 1:
        return next(c for c in files if os.path.basename(c) == base)
    return view_name if os.path.isfile(view_name) else None


def _photo_image(view, index: int, options: BuildOptions, created: _Created, path: str | None):
    """The view's photo as a Blender image (from its file ``path`` when known, else from view.image)."""
    if path:  # upright as the backend fitted it (a file's EXIF orientation: addon.photos)
        image = created.add(bpy.data.images, upright_photo(path, reuse=False))
        if options.pack_images and image.packed_file is None:
            image.pack()
        return image
    if view.image is not None:
        pixels = np.asarray(view.image, np.float32) / 255.0
        return _image(f"{options.name} Photo {index}", pixels, options, created, data=False)
    return None
