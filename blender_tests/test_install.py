"""Installing the zip with Blender's own installer, enabling, and (un)registering repeatedly."""
from __future__ import annotations

from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from .conftest import PACKAGE  # noqa: E402


def test_installed_layout_resolves_bundled_backend(addon):
    assert addon.__name__ == PACKAGE
    assert addon.backend_module().__name__ == f"{PACKAGE}.backend"
    assert addon.backend_module("export").__name__ == f"{PACKAGE}.backend.export"
    from importlib import import_module

    scene = import_module(f"{PACKAGE}.scene")
    assert Path(scene.__file__).parent == Path(addon.__file__).parent
    assert (Path(addon.__file__).parent / "blender_manifest.toml").is_file()


def test_registered_ui(addon):
    assert hasattr(bpy.types, "PHOTOHEAD_PT_main")
    assert bpy.types.PHOTOHEAD_PT_main.bl_category == "Photohead"
    for op in ("add_photos", "remove_photo", "reconstruct", "cancel", "install_dependencies", "check_dependencies"):
        assert hasattr(bpy.ops.photohead, op)
    settings = bpy.context.scene.photohead
    assert (settings.mode, settings.quality, settings.device) == ("fit", "default", "auto")
    prefs = bpy.context.preferences.addons[PACKAGE].preferences
    assert prefs.checkpoints_dir == ""
    usable, reason = addon.preferences.checkpoint_status(prefs)
    assert not usable and "checkpoint folder" in reason


def test_register_unregister_repeatedly(addon):
    import addon_utils

    for _ in range(3):
        addon_utils.disable(PACKAGE, default_set=True)
        assert not hasattr(bpy.types.Scene, "photohead")
        assert not hasattr(bpy.types, "PHOTOHEAD_PT_main")
        addon_utils.enable(PACKAGE, default_set=True)
        assert hasattr(bpy.types.Scene, "photohead")
        assert hasattr(bpy.types, "PHOTOHEAD_PT_main")


def test_add_and_remove_photos(addon, photo_path, tmp_path):
    other = tmp_path / "side.png"
    other.write_bytes(photo_path.read_bytes())
    (tmp_path / "notes.txt").write_text("not a photo")
    res = bpy.ops.photohead.add_photos(directory=str(tmp_path), files=[{"name": "side.png"}, {"name": "notes.txt"}])
    assert res == {"FINISHED"}
    res = bpy.ops.photohead.add_photos(filepath=str(photo_path))
    settings = bpy.context.scene.photohead
    assert [p.filepath for p in settings.photos] == [str(other), str(photo_path)]
    assert [p.label for p in settings.photos] == ["front", "other"]
    addon.operators.photo_preview_icon(str(photo_path))  # icon ids stay 0 headless, but it loads
    assert str(photo_path) in addon.operators._Runtime.previews
    assert addon.operators.photo_preview_icon(str(photo_path) + ".missing") == 0
    bpy.ops.photohead.remove_photo(index=0)
    assert [p.filepath for p in settings.photos] == [str(photo_path)]
    with pytest.raises(RuntimeError, match="No image files"):
        bpy.ops.photohead.add_photos(directory=str(tmp_path), files=[{"name": "notes.txt"}])
    # an iPhone's HEIC photo is listed by the file browser and named with how to convert it
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(100))
    assert "*.heic" in addon.operators.IMAGE_GLOB and "*.gif" in addon.operators.IMAGE_GLOB
    with pytest.raises(RuntimeError, match="IMG_0001.HEIC: HEIC photos .* export them as JPEG"):
        bpy.ops.photohead.add_photos(directory=str(tmp_path), files=[{"name": "IMG_0001.HEIC"}])
    assert [p.filepath for p in settings.photos] == [str(photo_path)]
    gif = tmp_path / "still.gif"
    gif.write_bytes(photo_path.read_bytes())  # the name is what the list goes by
    res = bpy.ops.photohead.add_photos(directory=str(tmp_path), files=[{"name": "still.gif"}, {"name": "IMG_0001.HEIC"}])
    assert res == {"FINISHED"} and [p.filepath for p in settings.photos] == [str(photo_path), str(gif)]


def test_predict_mode_needs_checkpoints(addon, photo_path, tmp_path):
    settings = bpy.context.scene.photohead
    settings.photos.add().filepath = str(photo_path)
    settings.mode = "predict"
    prefs = bpy.context.preferences.addons[PACKAGE].preferences
    with pytest.raises(addon.operators.JobStartError, match="checkpoint folder"):
        addon.operators.start_job(settings, prefs)
    prefs.checkpoints_dir = str(tmp_path)
    usable, reason = addon.preferences.checkpoint_status(prefs)
    assert not usable and "coarse.pt" in reason
    (tmp_path / "coarse.pt").write_bytes(b"")
    assert addon.preferences.checkpoint_status(prefs) == (True, "")
    assert addon.operators.running_job() is None


def test_dependency_install_needs_online_access(addon):
    assert addon.preferences.missing_packages(refresh=True) == []
    if bpy.app.online_access:
        pytest.skip("online access is on here; not installing anything from a test")
    with pytest.raises(RuntimeError, match="Online access is off"):
        bpy.ops.photohead.install_dependencies()
    site = addon.preferences.site_packages_dir()
    assert site is not None and "photohead" in site  # the extension's own user folder


def test_enabling_stays_light(extension_zip, tmp_path):
    """Registering imports neither torch nor the backend (but its import-free lists of quality and
    detector names) nor the scene builder (fresh process)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, bpy, addon_utils\n"
        f"bpy.ops.extensions.package_install_files(filepath={str(extension_zip)!r}, repo='user_default',"
        " enable_on_install=True)\n"
        f"assert {PACKAGE!r} in sys.modules\n"
        f"light = ({PACKAGE!r} + '.backend', {PACKAGE!r} + '.backend.quality', {PACKAGE!r} + '.backend.detectors')\n"
        f"heavy = [m for m in sys.modules if m == 'torch' or m.startswith({PACKAGE!r} + '.backend')"
        f" and m not in light or m == {PACKAGE!r} + '.scene']\n"
        "assert not heavy, heavy\n"
        "print('LIGHT-OK')\n"
    )
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "LIGHT-OK" in proc.stdout, proc.stdout[-1500:] + proc.stderr[-1500:]
