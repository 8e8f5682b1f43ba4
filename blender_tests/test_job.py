"""The reconstruction job in a worker process, with fake reconstruct functions, applied to the scene."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from .conftest import FAKE, ROOT, landmark_pixels  # noqa: E402
from .conftest import photo_settings as _settings  # noqa: E402
from .conftest import scene_state as _scene_state  # noqa: E402

TIMEOUT_S = 120


def _run(addon, settings, function: str, cancel_after: float | None = None):
    job = addon.operators.start_job(settings, None, reconstruct=f"{FAKE}:{function}", python_paths=[str(ROOT)])
    assert addon.operators.running_job() is job
    if cancel_after is not None:
        while job.poll().fraction < cancel_after and not job.state.finished:
            time.sleep(0.05)
        job.cancel()
    state = job.wait(timeout=TIMEOUT_S)
    workdir = job.workdir
    result = addon.operators.finish_job(bpy.context, job, state, settings)
    assert addon.operators.running_job() is None
    assert not workdir.exists(), "the job folder must be cleaned up"
    return state, result


def test_fake_job_builds_the_head(addon, photo_path, face_model):
    settings = _settings(photo_path)
    state, (report, message, obj) = _run(addon, settings, "fake_reconstruct")
    assert state.status == "DONE", state.message
    assert report == {"INFO"} and obj.name in message
    # objects: parent empty with head + one camera
    root = obj.parent
    assert root is not None and root.type == "EMPTY"
    assert sorted(c.type for c in root.children) == ["CAMERA", "MESH"]
    assert all(o.name in bpy.context.scene.objects for o in (root, *root.children))
    # mesh, UVs, shape keys
    mesh = obj.data
    assert len(mesh.vertices) == face_model.n_verts
    assert len(mesh.polygons) == face_model.n_faces
    assert mesh.uv_layers.active.name == "UVMap"
    uv = np.zeros(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers.active.uv.foreach_get("vector", uv)
    assert 0.0 <= uv.min() and uv.max() <= 1.0 and uv.reshape(-1, 2)[:, 0].max() > 0.5  # both tiles squeezed in
    keys = mesh.shape_keys.key_blocks
    assert len(keys) == 1 + 53 and keys[0].name == "Basis"
    assert keys["jawOpen"].value == pytest.approx(0.35) and keys["eyeBlink_L"].value == pytest.approx(0.8)
    assert keys["browDown_L"].value == 0.0
    assert all(p.use_smooth for p in mesh.polygons[:10])
    # fit parameters
    params = json.loads(obj["photohead"])
    assert params["views"][0]["image_size"] == [240, 300] and len(params["views"][0]["pose"]) == 7
    # material: albedo → Base Color, normal map → Normal, displacement → output
    mat = mesh.materials[0]
    links = {(l.from_node.bl_idname, l.to_node.bl_idname, l.to_socket.name) for l in mat.node_tree.links}
    assert ("ShaderNodeTexImage", "ShaderNodeBsdfPrincipled", "Base Color") in links
    assert ("ShaderNodeNormalMap", "ShaderNodeBsdfPrincipled", "Normal") in links
    assert ("ShaderNodeDisplacement", "ShaderNodeOutputMaterial", "Displacement") in links
    images = {n.label: n.image for n in mat.node_tree.nodes if n.bl_idname == "ShaderNodeTexImage"}
    assert tuple(images["Albedo"].size) == (64, 32)
    assert images["Normal map"].colorspace_settings.name == "Non-Color"
    assert images["Displacement (mm)"].is_float and images["Displacement (mm)"].packed_file is not None
    # camera: the photo behind it, landmarks land on the view's landmarks68
    cam = next(c for c in root.children if c.type == "CAMERA")
    assert bpy.context.scene.camera == cam and cam.data.type == "ORTHO"  # the scene had none
    assert cam.data.background_images[0].image.size[:] == (240, 300)
    assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y) == (1920, 1080)  # untouched
    lms = np.asarray(params["views"][0]["landmarks68"])
    px = landmark_pixels(bpy.context.scene, obj, cam, face_model.landmarks68.numpy())
    assert np.abs(px - lms).max() < 1.0


def test_cancel_leaves_the_scene_unchanged(addon, photo_path):
    settings = _settings(photo_path)
    before = _scene_state()
    state, (report, message, obj) = _run(addon, settings, "fake_slow", cancel_after=0.001)
    assert state.status == "CANCELLED"
    assert report == {"WARNING"} and "cancelled" in message and obj is None
    assert _scene_state() == before


def test_no_face_error_is_reported_and_scene_unchanged(addon, photo_path):
    settings = _settings(photo_path)
    before = _scene_state()
    state, (report, message, obj) = _run(addon, settings, "fake_no_face")
    assert state.status == "FAILED" and state.error_type == "NoFaceError"
    assert report == {"ERROR"} and "no face found in grace.png" in message and obj is None
    assert _scene_state() == before


def test_broken_job_function_fails_cleanly(addon, photo_path):
    settings = _settings(photo_path)
    state, (report, message, _) = _run(addon, settings, "does_not_exist")
    assert state.status == "FAILED" and "does_not_exist" in message and report == {"ERROR"}


def test_operator_reports_errors(addon, photo_path):
    """The operator (blocking in background mode) passes the job's error to self.report."""
    _settings(photo_path)
    before = _scene_state()
    with pytest.raises(RuntimeError, match="no face found"):
        bpy.ops.photohead.reconstruct(job_function=f"{FAKE}:fake_no_face", job_python_path=str(ROOT))
    assert _scene_state() == before
    assert "no face found" in bpy.context.scene.photohead.status
    assert bpy.ops.photohead.reconstruct(job_function=f"{FAKE}:fake_reconstruct", job_python_path=str(ROOT)) == {"FINISHED"}
    heads = [o for o in bpy.data.objects if o.get("photohead")]
    assert len(heads) == 1 and bpy.context.scene.photohead.status.startswith("Reconstructed")


def test_repo_layout_job_rejects_unknown_config(photo_path):
    """The repo's own ``addon`` package runs the worker too (``python -m addon.worker``)."""
    from addon.job import Job

    job = Job([photo_path], {"quality": "draft", "resolution": 4}, reconstruct=f"{FAKE}:fake_reconstruct",
              python_paths=[str(ROOT)])
    job.start()
    try:
        state = job.wait(timeout=TIMEOUT_S)
    finally:
        job.cleanup()
    assert state.status == "FAILED" and state.error_type == "ValueError"
    assert "unknown ReconstructConfig fields ['resolution']" in state.message
    assert not job.workdir.exists()
