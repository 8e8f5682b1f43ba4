"""Run by test_installed_zip in a clean bpy (only bpy + numpy in its venv), with no network.

``python installed_zip_child.py ZIP PHOTO OUT_JSON``: installs the platform zip with Blender's
own installer, reconstructs PHOTO at draft quality through the add-on's job (worker process),
builds the scene, saves and reopens the .blend, and writes what it found to OUT_JSON.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import bpy

PACKAGE = "bl_ext.user_default.photohead"
# Run in the worker's environment: where every package the reconstruction needs comes from.
PROBE = """
import importlib.util, json, sys
import dlib, numpy, PIL, scipy, skimage, torch
import photohead.backend.reconstruct
mods = {m.__name__: m.__file__ for m in (dlib, numpy, PIL, scipy, skimage, torch, photohead.backend.reconstruct)}
# located, not imported, as the backend does (its __init__ needs pkg_resources, gone from setuptools)
mods["face_recognition_models"] = importlib.util.find_spec("face_recognition_models").origin
x = torch.ones(4, 4) @ torch.ones(4, 4)
print(json.dumps({"modules": mods, "sys_path": sys.path, "torch": torch.__version__,
                  "cuda": torch.cuda.is_available(), "matmul": float(x.sum())}))
"""


def main(zip_path: str, photo: str, out_json: str) -> None:
    report: dict = {"bpy": bpy.app.version_string, "interfaces": _interfaces()}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    t0 = time.perf_counter()
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    report["install_s"] = time.perf_counter() - t0
    report["install_result"] = sorted(result)
    addon = importlib.import_module(PACKAGE)
    report["addon_file"] = addon.__file__
    bundled = Path(addon.__file__).parent / "models" / "mediapipe"
    report["mediapipe_files"] = sorted(p.name for p in bundled.iterdir()) if bundled.is_dir() else []
    prefs_mod = importlib.import_module(f"{PACKAGE}.preferences")
    report["missing"] = prefs_mod.missing_packages(refresh=True)
    report["wheels_dir"] = prefs_mod.wheels_site_packages()

    settings = bpy.context.scene.photohead
    blank = str(Path(out_json).with_name("blank.png"))
    image = bpy.data.images.new("blank", 64, 64)
    image.filepath_raw, image.file_format = blank, "PNG"
    image.save()  # a grey photo with no face
    settings.quality = "draft"
    settings.device = "cpu"
    prefs = bpy.context.preferences.addons[PACKAGE].preferences
    settings.photos.add().filepath = blank
    report["failed"] = _run_job(addon, settings, prefs)
    settings.photos.add().filepath = photo  # the blank photo first: skipped, every later view shifts
    settings.add_cameras = True
    report["cancelled"] = _run_job(addon, settings, prefs, cancel=True)
    report["objects_after_failures"] = len(bpy.data.objects)
    t0 = time.perf_counter()
    job = addon.operators.start_job(settings, prefs)
    probe = subprocess.run([job.python, "-c", PROBE], env=job.worker_env(), capture_output=True, text=True)
    report["probe"] = json.loads(probe.stdout) if probe.returncode == 0 else {"error": probe.stderr[-3000:]}
    state = job.wait(timeout=900)
    report["job_s"] = time.perf_counter() - t0
    report["job"] = {"status": state.status, "message": state.message}
    kind, message, obj = addon.operators.finish_job(bpy.context, job, state, settings)
    report["finish"] = [sorted(kind), message]
    if obj is not None:
        name = obj.name
        report["camera_backgrounds"] = [
            bpy.path.abspath(bg.image.filepath) for cam in bpy.data.objects if cam.type == "CAMERA"
            for bg in cam.data.background_images if bg.image is not None]
        blend = str(Path(out_json).with_suffix(".blend"))
        bpy.ops.wm.save_as_mainfile(filepath=blend)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.ops.wm.open_mainfile(filepath=blend)
        report["reopened"] = _describe(bpy.data.objects[name])
    Path(out_json).write_text(json.dumps(report, indent=1), encoding="utf-8")


def _run_job(addon, settings, prefs, cancel: bool = False) -> list:
    """(status, finish report, message) of a job on the panel's photos, cancelled at once if asked."""
    job = addon.operators.start_job(settings, prefs)
    if cancel:
        job.cancel()
    state = job.wait(timeout=600)
    kind, message, obj = addon.operators.finish_job(bpy.context, job, state, settings)
    return [state.status, sorted(kind), message, obj is None]


def _interfaces() -> list[str]:
    """Network interfaces of this process's namespace (only ``lo`` under ``unshare -n``)."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines)


def _describe(obj) -> dict:
    mat = obj.data.materials[0] if obj.data.materials else None
    images = {}
    if mat is not None and mat.node_tree is not None:
        for node in mat.node_tree.nodes:
            if node.type == "TEX_IMAGE" and node.image is not None:
                img = node.image
                images[node.label or node.name] = {"size": list(img.size), "packed": img.packed_file is not None,
                                                   "colorspace": img.colorspace_settings.name}
    keys = obj.data.shape_keys.key_blocks if obj.data.shape_keys else []
    return {"vertices": len(obj.data.vertices), "material": mat.name if mat else None, "images": images,
            "parts": sorted(child.name for child in obj.children if child.type == "MESH"),
            "shape_keys": [k.name for k in keys], "base_color_linked":
            bool(mat and mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].is_linked)}


if __name__ == "__main__":
    os.environ.pop("PYTHONPATH", None)
    main(*sys.argv[1:4])
