"""Scene settings of the Photohead panel (``scene.photohead``)."""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy.types import PropertyGroup

from . import backend_module

VIEW_LABEL_ITEMS = [
    ("front", "Front", "The face looks at the camera"),
    ("left", "Left", "The subject's left side faces the camera"),
    ("right", "Right", "The subject's right side faces the camera"),
    ("other", "Other", "Any other angle"),
]
MODE_ITEMS = [
    ("fit", "Fit", "Per-photo optimisation; needs no trained weights"),
    ("predict", "Predict", "Trained networks only (fast); needs a checkpoint folder"),
    ("hybrid", "Hybrid", "Networks initialise the fit; needs a checkpoint folder"),
]
_quality = backend_module("quality")  # torch-free: the names and descriptions only
QUALITY_ITEMS = [(name, name.title(), text) for name, text in _quality.QUALITIES.items()]
_detectors = backend_module("detectors")  # torch-free: the names, descriptions and default only
_DETECTOR_LABELS = {"auto": "Auto (dlib + Face Mesh)", "dlib": "dlib", "mediapipe": "MediaPipe",
                    "face_alignment": "face-alignment"}
DETECTOR_ITEMS = [(name, _DETECTOR_LABELS.get(name, name), text) for name, text in _detectors.DETECTORS.items()]
DEVICE_ITEMS = [
    ("auto", "Auto", "CUDA when available, else CPU"),
    ("cpu", "CPU", "Always the CPU"),
    ("cuda", "CUDA", "An NVIDIA GPU (fails when none is available)"),
]


class PHOTOHEAD_PG_photo(PropertyGroup):
    """One input photo and which view it shows."""

    filepath: StringProperty(name="Photo", subtype="FILE_PATH")
    label: EnumProperty(name="View", items=VIEW_LABEL_ITEMS, default="front")


class PHOTOHEAD_PG_settings(PropertyGroup):
    """Inputs and options of a reconstruction, plus the status of the last/running job."""

    photos: CollectionProperty(type=PHOTOHEAD_PG_photo)
    active_photo: IntProperty(name="Active Photo", default=0, min=0)
    mode: EnumProperty(name="Mode", items=MODE_ITEMS, default="fit")
    quality: EnumProperty(name="Quality", items=QUALITY_ITEMS, default=_quality.DEFAULT)
    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="auto")
    detector: EnumProperty(name="Landmarks", items=DETECTOR_ITEMS, default=_detectors.DEFAULT_DETECTOR)
    tune_unet: BoolProperty(
        name="Tune U-Net", default=False,
        description="Hybrid: fine-tune the detail U-Net's weights on the photos instead of optimising the "
        "displacement map it predicts (needs detail.pt in the checkpoint folder)",
    )
    dense_mesh: BoolProperty(
        name="Dense Displaced Mesh", default=False,
        description="Bake the detail into a dense whole-head mesh (about 180k vertices, no shape keys) "
        "instead of a base mesh with displacement and normal maps",
    )
    add_cameras: BoolProperty(name="Camera per Photo", default=True, description="Add a camera aligned to each photo")
    set_render: BoolProperty(
        name="Render Size from Photo", default=False,
        description="Set the scene's render size to the first photo's and make its camera the scene camera "
        "(off: the scene's render settings and active camera are left alone)",
    )
    make_pins: BoolProperty(
        name="Landmark Pins", default=True,
        description="After a reconstruction, add a Landmarks object per photo (the 68 points the fit used) to "
        "correct and Refit",
    )
    pack_images: BoolProperty(
        name="Pack Images", default=True,
        description="Pack textures into the .blend (otherwise they are saved next to the saved .blend)",
    )
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    status: StringProperty(name="Status", default="")
    warnings: StringProperty(name="Warnings", default="", description="The last result's warnings, one per line")


classes = (PHOTOHEAD_PG_photo, PHOTOHEAD_PG_settings)


def register() -> None:
    bpy.types.Scene.photohead = bpy.props.PointerProperty(type=PHOTOHEAD_PG_settings)


def unregister() -> None:
    del bpy.types.Scene.photohead
