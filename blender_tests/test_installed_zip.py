"""The artist's path: the linux zip installed into a clean bpy (4.2 LTS and 5.0) with no network.

Each clean bpy is a venv holding only bpy and Blender's numpy (``make bpy-venvs``). The child
process (installed_zip_child.py) runs under ``unshare -n`` without ``PYTHONPATH`` or a model
path, so the worker can only import what the zip installed and find the model the zip carries.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.blender

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("installed_zip_child.py")
CLEAN_BPY = {"4.2": ROOT / ".venv-bpy42", "5.0": ROOT / ".venv-bpy50"}
N_EXPRESSIONS = 53  # ICT-FaceKit's expression blendshapes


@pytest.fixture(scope="session")
def linux_zip(tmp_path_factory) -> Path:
    """The linux-x64 zip, wheels from dist/wheelcache (downloaded once)."""
    from addon import build

    base = tmp_path_factory.mktemp("linux-zip")
    return build.build_platform("linux-x64", dist=base, stage_root=base / "stage", cache=ROOT / "dist" / "wheelcache")


@pytest.fixture(scope="session")
def grace_hopper(tmp_path_factory) -> Path:
    import matplotlib.cbook

    path = tmp_path_factory.mktemp("photo") / "grace_hopper.jpg"
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh, open(path, "wb") as out:
        shutil.copyfileobj(fh, out)
    return path


def _offline_prefix() -> list[str]:
    """``unshare -n`` (a network namespace with only loopback) where it works, else nothing."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.mark.parametrize("version", sorted(CLEAN_BPY))
def test_linux_zip_in_clean_blender(version, linux_zip, grace_hopper, tmp_path):
    python = CLEAN_BPY[version] / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no clean bpy {version} at {CLEAN_BPY[version]} (make bpy-venvs)")
    prefix = _offline_prefix()
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PHOTOHEAD_MODEL_PATH", "PHOTOHEAD_MODEL", "VIRTUAL_ENV")
           and not k.lower().endswith("_proxy")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), PHOTOHEAD_CACHE=str(home / "cache"),
               BLENDER_USER_RESOURCES=str(tmp_path / "blender"), OMP_NUM_THREADS="2")
    if not prefix:  # no namespace: at least send any HTTP(S) to a closed local port
        env.update(http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9", no_proxy="")
    out = tmp_path / "report.json"
    proc = subprocess.run([*prefix, str(python), str(CHILD), str(linux_zip), str(grace_hopper), str(out)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1500)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    shutil.rmtree(tmp_path / "blender", ignore_errors=True)  # ~1.2 GB of unpacked wheels
    print(json.dumps({k: report.get(k) for k in ("bpy", "install_s", "job_s", "finish")}))

    assert report["bpy"].startswith(version)
    if prefix:
        assert report["interfaces"] == ["lo"]
    assert report["install_result"] == ["FINISHED"]
    assert report["missing"] == []
    # the worker imports the zip's packages and backend, nothing of the development checkout
    probe = report["probe"]
    assert "modules" in probe, probe
    wheels_dir = Path(report["wheels_dir"]).resolve()
    installed = Path(report["addon_file"]).resolve().parent
    for name, file in probe["modules"].items():
        where = Path(file).resolve()
        if name == "numpy":  # Blender's own numpy (the venv's) or the bundled wheel
            assert where.is_relative_to(CLEAN_BPY[version].resolve()) or where.is_relative_to(wheels_dir), file
        elif name.startswith("photohead."):
            assert where.is_relative_to(installed), file
        else:
            assert where.is_relative_to(wheels_dir), (name, file)
    dev = [p for p in probe["sys_path"] if p and (Path(p).resolve().is_relative_to(ROOT)
                                                     or Path(p).resolve().is_relative_to(Path(sys.prefix).resolve()))]
    assert all(Path(p).resolve().is_relative_to(CLEAN_BPY[version].resolve()) for p in dev), dev
    assert probe["torch"] == "2.13.0+cpu" and not probe["cuda"] and probe["matmul"] == 64.0

    # a photo with no face fails cleanly; a cancel at once stops the worker; neither adds objects
    assert report["failed"][:2] == ["FAILED", ["ERROR"]] and "face" in report["failed"][2].lower(), report["failed"]
    assert report["failed"][3] and report["cancelled"][0] == "CANCELLED" and report["cancelled"][3], report
    assert report["objects_after_failures"] == 0
    assert report["job"]["status"] == "DONE", report["job"]
    # the blank photo was skipped: the one camera shows grace_hopper, not the photo list's first
    assert [Path(p).name for p in report["camera_backgrounds"]] == [grace_hopper.name], report["camera_backgrounds"]
    assert report["finish"][0] == ["WARNING"] and "skipped: no face found in blank.png" in report["finish"][1], report["finish"]
    # the default detector (auto) ran with the MediaPipe files the zip carries: no fetch warning
    assert {"face_detection_short_range.tflite", "face_landmark.tflite", "LICENSE"} <= set(report["mediapipe_files"])
    assert "models fetch mediapipe" not in report["finish"][1], report["finish"]
    head = report["reopened"]
    assert head["material"] and head["base_color_linked"]
    assert head["images"], head
    assert all(img["packed"] and min(img["size"]) >= 128 for img in head["images"].values()), head["images"]
    assert head["shape_keys"][0] == "Basis" and len(head["shape_keys"]) == 1 + N_EXPRESSIONS
    assert len(head["parts"]) >= 4, head["parts"]  # eyes, teeth, ... from the zip's ict_parts.npz
