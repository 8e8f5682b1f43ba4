"""Landmark pins: a *Landmarks* mesh object per photo, its 68 vertices on the photo plane seen
through that photo's camera, edited with Blender's own tools (Edit Mode, G, snapping...).

The object is a child of the photo's camera. Its mesh holds the points in *centred photo
pixels* ``(x − (W−1)/2, (H−1)/2 − y, 0)`` (x right, y down in the photo), and its own
transform (location ``(0, 0, −depth)``, uniform scale = metres per pixel on that plane)
puts them on the plane ``depth`` metres in front of the camera, so seen through the camera
every vertex lies on its photo pixel. :func:`pins_pixels` reads them back through the
object's transform relative to the camera (not through world space, whose float32 matrices
would blur the round trip), for orthographic and perspective cameras alike.

Edges follow the 68-point contours (jaw, brows, nose, eyes, lips) so the points read as a face.
"""
from __future__ import annotations

import os
from typing import Sequence

import bpy
import numpy as np

from .photos import upright_photo

PIN_DEPTH_M = 0.5  # default distance of the pin plane in front of its camera (orthographic: any)
PRE_FIT_FRAME_HEIGHT_M = 0.3  # frame height of a photo camera made before any fit
# iBUG 68 contours: (first, last, closed)
CONTOURS = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False), (31, 35, False),
            (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))
PIN_EDGES = tuple(
    (i, i + 1) for a, b, _ in CONTOURS for i in range(a, b)
) + tuple((b, a) for a, b, closed in CONTOURS if closed) + ((30, 33),)


class PinsError(ValueError):
    """A Landmarks object cannot be read (not 68 vertices, no camera); the message says what to do."""


def pixels_to_co(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(68,2) photo pixels → (68,3) mesh coordinates (centred pixels, y up, z 0)."""
    pts = np.asarray(points, np.float64)
    out = np.zeros((len(pts), 3))
    out[:, 0] = pts[:, 0] - (width - 1) / 2.0
    out[:, 1] = (height - 1) / 2.0 - pts[:, 1]
    return out


def _pixel_scale(cam_data, height: int) -> tuple[float, bool]:
    """(metres per pixel of the frame: orthographic, or the focal length in pixels: perspective,
    is_orthographic). The camera fits the photo's height to its frame (sensor_fit VERTICAL)."""
    if cam_data.type == "ORTHO":
        return cam_data.ortho_scale / height, True
    return cam_data.lens / cam_data.sensor_height * height, False


def camera_image_size(cam_obj) -> tuple[int, int]:
    """The photo size a Photohead camera was made for (``cam["photohead_image_size"]``)."""
    size = cam_obj.get("photohead_image_size")
    if size is None:
        raise PinsError(f"{cam_obj.name} is not a Photohead photo camera (no photohead_image_size)")
    return int(size[0]), int(size[1])


def place_on_camera(obj, cam_obj) -> None:
    """Make ``obj`` (a Landmarks object) a child of ``cam_obj`` whose transform puts its
    centred-pixel mesh onto that camera's photo plane."""
    width, height = camera_image_size(cam_obj)
    depth = float(cam_obj.get("photohead_pin_depth", PIN_DEPTH_M))
    scale, ortho = _pixel_scale(cam_obj.data, height)
    metres_per_px = scale if ortho else depth / scale
    obj.parent = cam_obj
    obj.matrix_parent_inverse.identity()
    obj.location = (0.0, 0.0, -depth)
    obj.rotation_mode = "XYZ"
    obj.rotation_euler = (0.0, 0.0, 0.0)
    obj.scale = (metres_per_px,) * 3
    obj["photohead_image_size"] = [width, height]


def create_pins(name: str, points: np.ndarray, cam_obj, photo: str, source: str, collection) -> bpy.types.Object:
    """A Landmarks object with ``points`` (68,2) photo pixels on ``cam_obj``'s photo plane,
    linked into ``collection``. ``source``: "dlib", "face_alignment", "placeholder", "fit"..."""
    width, height = camera_image_size(cam_obj)
    mesh = bpy.data.meshes.new(name)
    try:
        co = pixels_to_co(points, width, height)
        mesh.vertices.add(len(co))
        mesh.vertices.foreach_set("co", co.astype(np.float32).ravel())
        mesh.edges.add(len(PIN_EDGES))
        mesh.edges.foreach_set("vertices", np.asarray(PIN_EDGES, np.int32).ravel())
        mesh.update()
        obj = bpy.data.objects.new(name, mesh)
    except Exception:  # leave no orphan mesh behind
        bpy.data.meshes.remove(mesh)
        raise
    obj.show_in_front = True
    obj.display_type = "WIRE"
    obj["photohead_pins"] = True
    obj["photohead_photo"] = photo
    obj["photohead_pins_source"] = source
    place_on_camera(obj, cam_obj)
    collection.objects.link(obj)
    return obj


def set_pins_pixels(obj, points: np.ndarray) -> None:
    """Move ``obj``'s 68 vertices to ``points`` (68,2) photo pixels (Object Mode)."""
    width, height = (int(s) for s in obj["photohead_image_size"])
    obj.data.vertices.foreach_set("co", pixels_to_co(points, width, height).astype(np.float32).ravel())
    obj.data.update()


def pins_pixels(obj) -> np.ndarray:
    """(68,2) float64 photo pixels of a Landmarks object's vertices, as seen through its
    parent camera (the edit-mode state when it is being edited). Raises :class:`PinsError`."""
    cam = obj.parent
    if cam is None or cam.type != "CAMERA":
        raise PinsError(f"{obj.name} must be a child of its photo's camera (re-run Detect Landmarks)")
    if obj.mode == "EDIT":
        obj.update_from_editmode()
    mesh = obj.data
    if len(mesh.vertices) != 68:
        raise PinsError(f"{obj.name} has {len(mesh.vertices)} vertices; it needs the 68 landmarks "
                        "(delete it and re-run Detect Landmarks)")
    width, height = camera_image_size(cam)
    co = np.zeros(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    local = np.asarray(obj.matrix_parent_inverse, np.float64) @ np.asarray(obj.matrix_basis, np.float64)
    p = co.reshape(-1, 3).astype(np.float64) @ local[:3, :3].T + local[:3, 3]  # camera-local metres
    scale, ortho = _pixel_scale(cam.data, height)
    if ortho:
        x, y = p[:, 0] / scale, p[:, 1] / scale
    else:
        if (p[:, 2] >= 0).any():
            raise PinsError(f"{obj.name}: some points are behind the camera {cam.name}")
        x, y = scale * p[:, 0] / -p[:, 2], scale * p[:, 1] / -p[:, 2]
    return np.stack([x + (width - 1) / 2.0, (height - 1) / 2.0 - y], 1)


def photo_camera(name: str, photo: str, width: int, height: int, index: int, collection, pack: bool = True):
    """A camera for a photo before any fit: orthographic, looking along +Y from −1 m (Blender's
    front view), one per photo side by side along X, the photo as its background."""
    data = bpy.data.cameras.new(name)
    data.type = "ORTHO"
    data.sensor_fit = "VERTICAL"
    data.ortho_scale = PRE_FIT_FRAME_HEIGHT_M
    data.clip_start, data.clip_end = 0.01, 10.0
    image = None
    if photo and os.path.isfile(photo):
        image = upright_photo(photo)  # as the backend sees it (a phone photo's EXIF orientation)
        if pack and image.packed_file is None:
            image.pack()
        data.show_background_images = True
        background = data.background_images.new()
        background.image, background.frame_method, background.alpha = image, "FIT", 0.8
    cam = bpy.data.objects.new(name, data)
    cam.location = (index * PRE_FIT_FRAME_HEIGHT_M * width / height * 1.2, -1.0, 0.0)
    cam.rotation_euler = (np.pi / 2, 0.0, 0.0)
    cam["photohead_image_size"] = [int(width), int(height)]
    cam["photohead_photo"] = photo
    cam["photohead_pre_fit"] = True
    collection.objects.link(cam)
    return cam


def find_pins(photo: str, scene) -> bpy.types.Object | None:
    """The Landmarks object of ``photo`` (absolute path) in ``scene``, if any."""
    target = os.path.normcase(os.path.abspath(photo))
    for obj in scene.objects:
        if obj.get("photohead_pins") and os.path.normcase(os.path.abspath(obj.get("photohead_photo", ""))) == target:
            return obj
    return None


def given_landmarks(photos: Sequence[str], scene) -> list[np.ndarray | None] | None:
    """Per photo: its pins' (68,2) pixels, or None without pins; None when no photo has pins."""
    found = [find_pins(p, scene) for p in photos]
    if not any(found):
        return None
    return [None if obj is None else pins_pixels(obj) for obj in found]
