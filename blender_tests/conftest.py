"""Fixtures for the add-on tests: the built zip installed into a throw-away Blender user folder.

Skips the whole folder when the bpy module is not importable. Every test starts from factory
settings with the extension re-enabled (BLENDER_NOTES: read_factory_settings unregisters it).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models"
EXT_ID = "photohead"
PACKAGE = f"bl_ext.user_default.{EXT_ID}"
FAKE = "blender_tests.fake_jobs"

if SHARED_MODELS.exists() and str(SHARED_MODELS) not in os.environ.get("PHOTOHEAD_MODEL_PATH", ""):
    os.environ["PHOTOHEAD_MODEL_PATH"] = os.pathsep.join(
        p for p in (os.environ.get("PHOTOHEAD_MODEL_PATH", ""), str(SHARED_MODELS)) if p
    )

if importlib.util.find_spec("bpy") is None:
    collect_ignore_glob = ["test_*.py"]
    _USER_DIR = None
else:
    # Blender reads its user folder once, when bpy is first imported: isolate it before that.
    _USER_DIR = tempfile.mkdtemp(prefix="photohead-blender-user-")
    os.environ["BLENDER_USER_RESOURCES"] = _USER_DIR


def pytest_sessionfinish(session, exitstatus):
    if _USER_DIR:
        shutil.rmtree(_USER_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> Path:
    """The extension zip built by addon.build into a temporary dist folder."""
    from addon import build

    base = tmp_path_factory.mktemp("ext")
    return build.build(dist=base / "dist", stage_root=base / "stage")


@pytest.fixture(scope="session")
def installed(extension_zip):
    """Install the zip with Blender's own installer; returns the add-on's package module."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    result = bpy.ops.extensions.package_install_files(
        filepath=str(extension_zip), repo="user_default", enable_on_install=True
    )
    assert result == {"FINISHED"}
    return importlib.import_module(PACKAGE)


@pytest.fixture
def addon(installed):
    """Factory settings + the extension enabled; yields the add-on package module."""
    import addon_utils
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable(PACKAGE, default_set=True)
    assert hasattr(bpy.types.Scene, "photohead"), "the extension did not register"
    yield installed
    job = installed.operators.running_job()
    if job is not None:  # a failed test must not leave a worker behind
        job.cleanup()
        installed.operators._Runtime.job = None


@pytest.fixture(scope="session")
def photo_path(tmp_path_factory) -> Path:
    """matplotlib's grace_hopper.jpg scaled to 240×300 (PNG)."""
    import matplotlib.cbook
    from PIL import Image

    path = tmp_path_factory.mktemp("photos") / "grace.png"
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        Image.open(fh).convert("RGB").resize((240, 300)).save(path)
    return path


@pytest.fixture(scope="session")
def fake_head(photo_path):
    """A Head built in-process by the fake job (same code the fake worker runs)."""
    from backend.errors import ModelNotFoundError

    from .fake_jobs import make_head

    try:
        return make_head([str(photo_path)])
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))


def evaluated_coords(obj) -> np.ndarray:
    """(N,3) float32 vertex positions of ``obj`` after its shape keys and modifiers, object space (m)."""
    import bpy
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        co = np.zeros(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        evaluated.to_mesh_clear()
    return co.reshape(-1, 3)


def landmark_pixels(scene, head_obj, cam_obj, vertex_ids: np.ndarray) -> np.ndarray:
    """(68,2) photo pixels (x right, y down, top-left pixel centre = 0) of evaluated vertices seen
    through a Photohead camera, whatever the scene's render size: the camera fits the photo's
    height to the frame's (sensor_fit VERTICAL), centred."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    co = evaluated_coords(head_obj)
    width, height = (int(s) for s in cam_obj["photohead_image_size"])
    render = scene.render
    frame_width = height * (render.resolution_x * render.pixel_aspect_x) / (render.resolution_y * render.pixel_aspect_y)
    out = []
    for i in vertex_ids:
        ndc = world_to_camera_view(scene, cam_obj, head_obj.matrix_world @ Vector(co[i].tolist()))
        out.append((ndc.x * frame_width - (frame_width - width) / 2 - 0.5, (1.0 - ndc.y) * height - 0.5))
    return np.asarray(out)


@pytest.fixture(scope="session")
def face_model():
    """The default (ICT) face model; skips when it is not on the search path."""
    from backend.errors import ModelNotFoundError
    from backend.facemodel import load_default

    try:
        return load_default()
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def scene_mod(addon):
    """The installed add-on's ``scene`` module (build_head_objects, BuildOptions, model_to_blender)."""
    return importlib.import_module(f"{PACKAGE}.scene")


def scene_state() -> tuple:
    """What a failed or cancelled job must leave unchanged: object names and datablock counts."""
    import bpy

    return (sorted(o.name for o in bpy.data.objects), len(bpy.data.meshes), len(bpy.data.materials),
            len(bpy.data.images), len(bpy.data.cameras))


def photo_settings(*photos):
    """The scene's Photohead settings with these photos (the first labelled front), draft quality."""
    import bpy

    settings = bpy.context.scene.photohead
    for path in photos:
        item = settings.photos.add()
        item.filepath = str(path)
        item.label = "front" if len(settings.photos) == 1 else "other"
    settings.quality = "draft"
    return settings
