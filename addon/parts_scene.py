"""The head's parts (eyes, sockets, teeth, lashes) → Blender objects parented to the head.

One object per part (``backend.head_parts.part_meshes``), one flat Principled material per
part material (socket, teeth, sclera, iris, ...), and the head's shape keys: each part key's
value is driven by the head key of the same name (an averaged-variable driver, no Python
expression), so moving ``jawOpen`` on the head opens the mouth with its teeth and tongue.
Each eyeball's origin is its centre and the fitted gaze is its rotation (X: pitch, Z: yaw), so an
artist turns the eyes by rotating their objects.
"""
from __future__ import annotations

import dataclasses

import bpy
import numpy as np

from . import backend_module


def build_part_objects(head, head_obj, name: str, created, model_to_blender, mesh_from_arrays,
                       shape_keys: bool) -> list:
    """Objects for ``head``'s parts (none without parts), parented to ``head_obj``, not linked
    yet. ``created`` records datablocks for rollback; ``model_to_blender`` / ``mesh_from_arrays``
    are the scene module's converters; ``shape_keys``: add and drive the expression keys."""
    parts = backend_module("head_parts")
    meshes = parts.part_meshes(head, turned=False)
    if not meshes:
        return []
    pivots = parts.eye_pivots(head) if getattr(head, "gaze", None) is not None else {}
    materials = {}
    for index, (mat_name, rgb) in enumerate(zip(head.part_material_names, np.asarray(head.part_material_colors))):
        materials[index] = _flat_material(f"{name} {mat_name}", parts.srgb_to_linear(rgb), mat_name, created)
    objects = []
    for part in meshes:
        pivot = None
        if part.name in pivots:  # an eyeball: mesh around its centre, the gaze as the object's rotation
            pivot = pivots[part.name][0].astype(np.float32)
            part = dataclasses.replace(part, vertices=part.vertices - pivot, neutral=part.neutral - pivot)
        base = part.neutral if shape_keys and part.exp_basis is not None else part.vertices
        mesh = created.add(bpy.data.meshes, mesh_from_arrays(
            f"{name} {part.name}", model_to_blender(base), part.faces, part.uv[part.faces_uv.ravel()]))
        used = [int(m) for m in np.unique(part.material)]
        for m in used:
            mesh.materials.append(materials[m])
        slot = {m: i for i, m in enumerate(used)}
        mesh.polygons.foreach_set("material_index", np.asarray([slot[int(m)] for m in part.material], np.int32))
        obj = created.add(bpy.data.objects, bpy.data.objects.new(f"{name} {part.name}", mesh))
        obj.parent = head_obj
        obj["photohead_part"] = part.name
        if pivot is not None:
            yaw, pitch = (float(a) for a in np.asarray(head.gaze, np.float64)[parts.EYEBALLS.index(part.name)])
            obj.location = tuple(float(c) for c in model_to_blender(pivot))
            obj.rotation_mode = "XYZ"  # X: pitch (+ looks down), Z: yaw (+ looks to the head's left)
            obj.rotation_euler = (pitch, 0.0, yaw)  # model Ry(yaw)·Rx(pitch) in Blender's axes
        if shape_keys and part.exp_basis is not None and head_obj.data.shape_keys is not None:
            _driven_shape_keys(obj, part, head, head_obj, model_to_blender)
        objects.append(obj)
    return objects


def _flat_material(label: str, linear_rgb: np.ndarray, kind: str, created):
    mat = created.add(bpy.data.materials, bpy.data.materials.new(label))
    if mat.node_tree is None:  # Blender < 5.0: a new material has no node tree until use_nodes
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    if bsdf is None:  # the default tree without its shader: make one
        bsdf = mat.node_tree.nodes.new("ShaderNodeBsdfPrincipled")
        out = mat.node_tree.nodes.get("Material Output") or mat.node_tree.nodes.new("ShaderNodeOutputMaterial")
        mat.node_tree.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    colour = (float(linear_rgb[0]), float(linear_rgb[1]), float(linear_rgb[2]), 1.0)
    bsdf.inputs["Base Color"].default_value = colour
    bsdf.inputs["Roughness"].default_value = 0.25 if kind in ("sclera", "iris", "pupil", "teeth") else 0.6
    mat.diffuse_color = colour  # the solid viewport's colour
    return mat


def _driven_shape_keys(obj, part, head, head_obj, model_to_blender) -> None:
    """Basis = the part's neutral; one key per expression, its value driven by the head's key."""
    obj.shape_key_add(name="Basis", from_mix=False)
    head_keys = head_obj.data.shape_keys
    for k, key_name in enumerate(head.exp_names):
        key = obj.shape_key_add(name=str(key_name), from_mix=False)
        key.data.foreach_set("co", model_to_blender(part.neutral + part.exp_basis[k]).astype(np.float32).ravel())
        source = head_keys.key_blocks.get(str(key_name))
        if source is None:
            continue
        key.slider_min, key.slider_max = source.slider_min, source.slider_max
        key.value = source.value
        driver = key.driver_add("value").driver
        driver.type = "AVERAGE"  # the variable's value as is: no Python expression to trust
        var = driver.variables.new()
        var.name = "weight"
        var.type = "SINGLE_PROP"
        var.targets[0].id_type = "KEY"
        var.targets[0].id = head_keys
        var.targets[0].data_path = f'key_blocks["{key_name}"].value'
