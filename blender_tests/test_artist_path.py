"""What an artist meets first: skipped photos, Esc, Repeat Last, a failed scene build, unsaved
files, the scene's render settings, and importing a result folder."""
from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from .conftest import FAKE, ROOT, landmark_pixels  # noqa: E402
from .conftest import photo_settings as _settings  # noqa: E402
from .conftest import scene_state as _scene_state  # noqa: E402

TIMEOUT_S = 120


def _run(addon, settings, function: str, **kwargs):
    job = addon.operators.start_job(settings, None, reconstruct=f"{FAKE}:{function}", python_paths=[str(ROOT)], **kwargs)
    state = job.wait(timeout=TIMEOUT_S)
    return state, addon.operators.finish_job(bpy.context, job, state, settings)


@pytest.fixture(scope="module")
def second_photo(tmp_path_factory):
    """A second photo of another size (200×260, grace mirrored) to tell the cameras apart."""
    from PIL import Image, ImageOps

    import matplotlib.cbook

    path = tmp_path_factory.mktemp("photos2") / "second.png"
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        ImageOps.mirror(Image.open(fh).convert("RGB")).resize((200, 260)).save(path)
    return path


def test_skipped_photo_leaves_each_camera_with_its_own_photo(addon, photo_path, second_photo, face_model):
    """The first photo is skipped (no face): the one camera must show the second photo, not the
    first one by position."""
    settings = _settings(photo_path, second_photo)
    state, (report, message, obj) = _run(addon, settings, "fake_skip_first")
    assert report == {"WARNING"}, message  # the artist sees a warning, not a plain note
    assert "skipped" in message
    assert settings.warnings.startswith("skipped: no face found in") and "\n" not in settings.warnings
    assert list(obj.parent["photohead_warnings"]) == [settings.warnings]
    cams = [c for c in obj.parent.children if c.type == "CAMERA"]
    assert len(cams) == 1
    image = cams[0].data.background_images[0].image
    assert bpy.path.abspath(image.filepath) == str(second_photo)
    assert tuple(image.size) == (200, 260)
    assert tuple(cams[0]["photohead_image_size"]) == (200, 260)


def test_match_photo_by_path_then_name(scene_mod, photo_path, second_photo, tmp_path):
    match = scene_mod.match_photo
    assert match(str(second_photo), [str(photo_path), str(second_photo)]) == str(second_photo)
    copy = tmp_path / "second.png"
    shutil.copy(second_photo, copy)
    assert match("/gone/second.png", [str(photo_path), str(copy)]) == str(copy)  # by file name
    assert match("/gone/second.png", [str(second_photo), str(copy)]) is None  # two candidates: ambiguous
    assert match(str(second_photo), []) == str(second_photo)  # the view's own file
    assert match("/gone/third.png", [str(photo_path)]) is None


def _area(kind: str, regions):
    return SimpleNamespace(type=kind, regions=regions)


def _region(kind: str, x: int, y: int, w: int, h: int, category="Photohead"):
    return SimpleNamespace(type=kind, x=x, y=y, width=w, height=h, active_panel_category=category)


def test_esc_cancels_only_over_the_panel(addon):
    assert {"type", "x", "y", "width", "height", "active_panel_category"} <= set(bpy.types.Region.bl_rna.properties.keys())
    over = addon.operators.event_over_panel
    screen = SimpleNamespace(areas=[
        _area("PROPERTIES", [_region("WINDOW", 0, 0, 300, 800)]),
        _area("VIEW_3D", [_region("WINDOW", 300, 0, 1300, 800), _region("UI", 1600, 0, 320, 800)]),
    ])
    ctx = SimpleNamespace(screen=screen)
    assert over(ctx, SimpleNamespace(mouse_x=1700, mouse_y=400))  # the Photohead sidebar
    assert not over(ctx, SimpleNamespace(mouse_x=800, mouse_y=400))  # the viewport: e.g. cancelling a grab
    assert not over(ctx, SimpleNamespace(mouse_x=100, mouse_y=400))  # another editor
    screen.areas[1].regions[1].active_panel_category = "Item"  # the sidebar shows another tab
    assert not over(ctx, SimpleNamespace(mouse_x=1700, mouse_y=400))
    assert not over(SimpleNamespace(screen=None), SimpleNamespace(mouse_x=1700, mouse_y=400))


def test_job_operators_are_not_repeatable(addon):
    """Repeat Last (Shift+R) and the redo panel call ``execute``, which waits for the job: the job
    operators are not REGISTER, so neither can reach them; Ctrl+Z still undoes a result (UNDO)."""
    ops = addon.operators
    for cls in (ops.PHOTOHEAD_OT_reconstruct, ops.PHOTOHEAD_OT_detect_landmarks):
        assert "REGISTER" not in cls.bl_options and "UNDO" in cls.bl_options
    assert "REGISTER" in ops.PHOTOHEAD_OT_import_result.bl_options  # quick and safe to redo


def test_failed_scene_build_keeps_the_result(addon, photo_path, monkeypatch):
    """A scene build that breaks (here: an AttributeError as Blender 4.2 raised) keeps the fit in a
    result folder, reports where, adds nothing; importing the folder then builds the head."""
    import importlib

    scene = importlib.import_module(f"{addon.__name__}.scene")
    real_build = scene.build_head_objects

    def broken(head, options=None):
        raise AttributeError("'NoneType' object has no attribute 'nodes'")

    settings = _settings(photo_path)
    before = _scene_state()
    monkeypatch.setattr(scene, "build_head_objects", broken)
    state, (report, message, obj) = _run(addon, settings, "fake_reconstruct")
    assert state.status == "DONE" and report == {"ERROR"} and obj is None
    assert "AttributeError" in message and "kept in" in message
    kept = message.split("kept in ")[1].split(" (File")[0]
    assert _scene_state() == before
    from backend.export import load_head

    assert len(load_head(f"{kept}/head.npz").views) == 1
    monkeypatch.setattr(scene, "build_head_objects", real_build)
    head = addon.operators.import_result(bpy.context, settings, kept)
    assert head.type == "MESH" and len(head.data.shape_keys.key_blocks) == 54
    shutil.rmtree(kept)


def test_failure_after_the_mesh_leaves_no_half_built_head(addon, photo_path, monkeypatch):
    """The landmark pins are the last step of a build: when they fail, the head goes too."""
    settings = _settings(photo_path)
    before = _scene_state()

    def broken(*args, **kwargs):
        raise RuntimeError("pins broke")

    monkeypatch.setattr(addon.operators, "attach_pins", broken)
    state, (report, message, obj) = _run(addon, settings, "fake_reconstruct")
    assert report == {"ERROR"} and "pins broke" in message and obj is None
    assert _scene_state() == before
    shutil.rmtree(message.split("kept in ")[1].split(" (File")[0])


def test_unpacked_images_on_an_unsaved_file_are_refused_before_the_run(addon, photo_path):
    settings = _settings(photo_path)
    settings.pack_images = False
    assert not bpy.data.filepath
    with pytest.raises(addon.operators.JobStartError, match="save the .blend first"):
        addon.operators.start_job(settings, None, reconstruct=f"{FAKE}:fake_reconstruct", python_paths=[str(ROOT)])
    assert addon.operators.running_job() is None


def test_render_settings_and_active_camera_are_left_alone(addon, photo_path, face_model):
    """A 16:9 scene with its own camera keeps both; the photo still overlays the head through the
    new camera (its height fills the frame). Render Size from Photo sets them when asked."""
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 1280, 720, 50
    own = bpy.data.objects.new("My Camera", bpy.data.cameras.new("My Camera"))
    scene.collection.objects.link(own)
    scene.camera = own
    settings = _settings(photo_path)
    _, (report, message, obj) = _run(addon, settings, "fake_reconstruct")
    assert report == {"INFO"}, message
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage) == (1280, 720, 50)
    assert scene.camera == own
    cam = next(c for c in obj.parent.children if c.type == "CAMERA")
    assert cam.data.background_images[0].frame_method == "FIT"
    view = json.loads(obj["photohead"])["views"][0]
    px = landmark_pixels(scene, obj, cam, face_model.landmarks68.numpy())
    assert np.abs(px - np.asarray(view["landmarks68"])).max() < 1.0
    settings.set_render = True
    _, (report, message, obj) = _run(addon, settings, "fake_reconstruct")
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage) == (240, 300, 100)
    assert scene.camera.parent == obj.parent


def test_import_result_folder(addon, fake_head, photo_path, tmp_path, face_model):
    """A folder written by ``photohead reconstruct`` (write_outputs) imports with its photo found in
    the folder, from the folder, its head.npz or its params.json; other folders are refused."""
    import dataclasses

    from backend.export import write_outputs

    head = dataclasses.replace(fake_head, views=[dataclasses.replace(v, name="/elsewhere/grace.png", image=None)
                                                 for v in fake_head.views])
    out = tmp_path / "result"
    write_outputs(head, out)
    shutil.copy(photo_path, out / "grace.png")
    settings = bpy.context.scene.photohead
    assert addon.operators.menu_import in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()  # File > Import
    assert bpy.ops.photohead.import_result(filepath=str(out / "params.json")) == {"FINISHED"}
    obj = next(o for o in bpy.context.scene.objects if o.type == "MESH" and o.get("photohead"))
    assert obj.parent.name == "Photohead result"
    cam = next(c for c in obj.parent.children if c.type == "CAMERA")
    assert bpy.path.abspath(cam.data.background_images[0].image.filepath) == str(out / "grace.png")
    assert np.abs(landmark_pixels(bpy.context.scene, obj, cam, face_model.landmarks68.numpy())
                  - head.views[0].landmarks68).max() < 1.0
    pins = [o for o in bpy.context.scene.objects if o.get("photohead_pins")]
    assert len(pins) == 1 and pins[0].parent == cam
    second = addon.operators.import_result(bpy.context, settings, str(out))
    assert second != obj and len([o for o in bpy.data.objects if o.get("photohead")]) == 2
    with pytest.raises(addon.operators.JobStartError, match="No head.npz"):
        addon.operators.import_result(bpy.context, settings, str(tmp_path))
    (out / "head.npz").unlink()
    with pytest.raises(RuntimeError, match="No head.npz"):
        bpy.ops.photohead.import_result(filepath=str(out / "params.json"))
