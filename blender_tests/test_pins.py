"""Landmark pins: a Landmarks object per photo on its camera's photo plane, Detect Landmarks,
the pins as given landmarks of a reconstruction, Refit."""
from __future__ import annotations

import dataclasses
import importlib
import json
import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from .conftest import FAKE, PACKAGE, ROOT  # noqa: E402
from .conftest import photo_settings as _settings  # noqa: E402

TIMEOUT_S = 120
MOVED = (8, 48, 54)  # chin, mouth corners
SHIFT = np.array([[0.0, 12.0], [-10.0, 0.0], [10.0, 0.0]])  # px: chin down, mouth wider


@pytest.fixture
def pins_mod(addon):
    return importlib.import_module(f"{PACKAGE}.pins")


def _world_pixels(pins_obj, cam) -> np.ndarray:
    """(N,2) photo pixels of the pins' vertices projected through ``cam`` in world space (the scene
    renders at the photo's size)."""
    from bpy_extras.object_utils import world_to_camera_view

    scene = bpy.context.scene
    width, height = (int(s) for s in cam["photohead_image_size"])
    scene.render.resolution_x, scene.render.resolution_y = width, height
    bpy.context.view_layer.update()  # matrix_world of the new child
    out = []
    for v in pins_obj.data.vertices:
        ndc = world_to_camera_view(scene, cam, pins_obj.matrix_world @ v.co)
        out.append((ndc.x * width - 0.5, (1.0 - ndc.y) * height - 0.5))
    return np.asarray(out)


@pytest.mark.parametrize("projection", ["orthographic", "perspective"])
def test_pin_pixel_round_trip(scene_mod, pins_mod, fake_head, projection):
    """photo pixels → Landmarks vertices → photo pixels is exact (1e-4 px), and seen through the
    camera in world space the vertices lie on those pixels."""
    head = fake_head
    if projection == "perspective":
        view = dataclasses.replace(head.views[0], projection="perspective",
                                   pose=np.array([2.0 * 300, 0.1, 0.3, -0.05, 12.0, -8.0, -700.0], np.float32))
        head = dataclasses.replace(head, views=[view])
    obj = scene_mod.build_head_objects(head, scene_mod.BuildOptions(cameras=True))
    cam = next(c for c in obj.parent.children if c.type == "CAMERA")
    rng = np.random.default_rng(0)
    pixels = head.views[0].detected68 + rng.uniform(-30, 30, (68, 2))
    pixels[0] = (0.0, 0.0)
    pixels[1] = (239.0, 299.0)  # the photo's corners
    pins = pins_mod.create_pins("Landmarks test", pixels, cam, "grace.png", "dlib", bpy.context.collection)
    assert len(pins.data.vertices) == 68 and len(pins.data.edges) == len(pins_mod.PIN_EDGES) == 64
    back = pins_mod.pins_pixels(pins)
    assert np.abs(back - pixels).max() < 1e-4
    assert np.abs(_world_pixels(pins, cam) - pixels).max() < 1e-2  # float32 world matrices
    moved = pixels + 3.25
    pins_mod.set_pins_pixels(pins, moved)
    assert np.abs(pins_mod.pins_pixels(pins) - moved).max() < 1e-4
    # on the plane between camera and head, so the pins draw over the face
    bpy.context.view_layer.update()
    depth = -(cam.matrix_world.inverted() @ pins.matrix_world.translation).z
    head_depth = -(cam.matrix_world.inverted() @ obj.matrix_world.translation).z
    assert 0.3 * head_depth < depth < 0.7 * head_depth
    if projection == "orthographic":  # a grab along the view axis keeps the pixel
        pins.data.vertices[0].co.z += 50.0
        assert np.abs(pins_mod.pins_pixels(pins)[0] - moved[0]).max() < 1e-4


def _run(addon, settings, function: str, task: str = "reconstruct", refit: bool = False):
    job = addon.operators.start_job(settings, None, reconstruct=f"{FAKE}:{function}", python_paths=[str(ROOT)],
                                    task=task, refit=refit)
    state = job.wait(timeout=TIMEOUT_S)
    assert state.status == "DONE", state.message
    return addon.operators.finish_job(bpy.context, job, state, settings)


@pytest.fixture(scope="module")
def noface_photo(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("noface") / "noface.png"
    Image.new("RGB", (320, 240), (90, 120, 160)).save(path)
    return path


def _pins():
    return sorted((o for o in bpy.context.scene.objects if o.get("photohead_pins")), key=lambda o: o.name)


def test_detect_landmarks_makes_pins_for_every_photo(addon, pins_mod, photo_path, noface_photo):
    """Detection only: a Landmarks object per photo on a camera showing that photo; the photo
    without a face gets the mean layout in its middle. Detecting again updates them in place."""
    from backend.detect.photos import placeholder_landmarks

    from .fake_jobs import make_head

    settings = _settings(photo_path, noface_photo)
    report, message, first = _run(addon, settings, "fake_detect", task="detect")
    assert report == {"WARNING"} and "noface.png" in message
    grace, noface = sorted(_pins(), key=lambda o: o["photohead_photo"] != str(photo_path))
    assert first == grace
    assert np.abs(pins_mod.pins_pixels(grace) - make_head([str(photo_path)]).views[0].detected68).max() < 1e-4
    assert np.abs(pins_mod.pins_pixels(noface) - placeholder_landmarks(320, 240)).max() < 1e-4
    assert noface["photohead_pins_source"] == "placeholder"
    for pins, size in ((grace, (240, 300)), (noface, (320, 240))):
        cam = pins.parent
        assert cam.type == "CAMERA" and cam.get("photohead_pre_fit") and tuple(cam["photohead_image_size"]) == size
        assert bpy.path.abspath(cam.data.background_images[0].image.filepath) == pins["photohead_photo"]
    pins_mod.set_pins_pixels(grace, pins_mod.pins_pixels(grace) + 5.0)
    count = len(bpy.data.objects)
    _run(addon, settings, "fake_detect", task="detect")
    assert len(bpy.data.objects) == count
    assert np.abs(pins_mod.pins_pixels(grace) - make_head([str(photo_path)]).views[0].detected68).max() < 1e-4


def test_pins_are_the_given_landmarks_and_refit_replaces_the_head(addon, pins_mod, photo_path):
    """Moved pins reach the reconstruction as given landmarks (the fake echoes them into the view's
    detected68, detector "given"); the pins then sit on the fitted camera at the same pixels;
    Refit fits again and replaces the earlier head."""
    settings = _settings(photo_path)
    _run(addon, settings, "fake_detect", task="detect")
    (pins,) = _pins()
    pixels = pins_mod.pins_pixels(pins)
    pixels[list(MOVED)] += SHIFT
    pins_mod.set_pins_pixels(pins, pixels)
    report, message, head = _run(addon, settings, "fake_reconstruct")
    assert report == {"INFO"} and message.startswith("Reconstructed")
    view = json.loads(head["photohead"])["views"][0]
    assert np.abs(np.asarray(view["detected68"]) - pixels).max() < 1e-3 and view["detector"] == "given"
    assert _pins() == [pins] and pins.parent.parent == head.parent  # moved onto the fitted camera
    assert not [o for o in bpy.data.objects if o.get("photohead_pre_fit")]
    assert np.abs(pins_mod.pins_pixels(pins) - pixels).max() < 1e-4
    first_root = head.parent.name
    pixels[MOVED[0]] += (0.0, 4.0)
    pins_mod.set_pins_pixels(pins, pixels)
    report, message, head2 = _run(addon, settings, "fake_reconstruct", refit=True)
    assert report == {"INFO"} and message.startswith("Refitted")
    assert first_root not in bpy.data.objects
    new = {head2.parent, *head2.parent.children_recursive}
    assert [o.name for o in bpy.context.scene.objects if o not in new and not o.get("photohead_pins")] == []
    assert [o for o in bpy.data.objects if o.get("photohead")] == [head2]
    assert json.loads(head2["photohead"])["views"][0]["detected68"][MOVED[0]] == pytest.approx(pixels[MOVED[0]], abs=1e-3)
    assert _pins() == [pins] and pins.parent.parent == head2.parent


def test_refit_needs_pins(addon, photo_path):
    settings = _settings(photo_path)
    with pytest.raises(addon.operators.JobStartError, match="Refit needs Landmarks"):
        addon.operators.start_job(settings, None, reconstruct=f"{FAKE}:fake_reconstruct", refit=True)
    assert addon.operators.running_job() is None


def test_reconstruct_without_pins_makes_them_from_the_fit(addon, pins_mod, photo_path):
    """A plain Reconstruct leaves a Landmarks object per photo (the points the fit followed) on
    its camera, ready to correct and Refit; the panel then offers Refit."""
    from .test_ui import _draw_panel

    settings = _settings(photo_path)
    _, _, head = _run(addon, settings, "fake_reconstruct")
    (pins,) = _pins()
    view = json.loads(head["photohead"])["views"][0]
    assert np.abs(pins_mod.pins_pixels(pins) - np.asarray(view["detected68"])).max() < 1e-4
    ops = [(c[1][0], c[2].get("text")) for c in _draw_panel(addon) if c[0] == "operator"]
    assert ("photohead.reconstruct", "Refit") in ops and ("photohead.detect_landmarks", None) in ops
    assert ("photohead.import_result", "Import Result…") in ops
    settings.make_pins = False
    bpy.data.objects.remove(pins)
    _run(addon, settings, "fake_reconstruct")
    assert not _pins()
