"""The extension zip: contents, generated manifest, Blender's own validator; layering of addon/."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

ROOT = Path(__file__).resolve().parents[1]


def _blender_ext_cli() -> Path:
    path = Path(bpy.__file__).resolve().parents[2] / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not path.is_file():
        pytest.skip(f"blender_ext.py not found at {path}")
    return path


def test_zip_layout_and_manifest(extension_zip):
    with zipfile.ZipFile(extension_zip) as zf:
        names = set(zf.namelist())
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert {"__init__.py", "worker.py", "job.py", "scene.py", "blendfile.py", "backend/__init__.py",
            "backend/head.py", "backend/export.py", "backend/reconstruct.py"} <= names
    assert "build.py" not in names
    assert not [n for n in names if "evaluat" in n or n.startswith(("training/", "tests/", "benchmarks/"))]
    assert "backend/commands/evaluate.py" not in names and "backend/quality.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert manifest["schema_version"] == "1.0.0"
    assert manifest["id"] == "photohead"
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert "files" in manifest["permissions"]
    import backend

    assert manifest["version"] == backend.__version__
    assert extension_zip.name == f"photohead-{backend.__version__}.zip"


def test_blender_ext_validate(extension_zip):
    cli = _blender_ext_cli()
    proc = subprocess.run([sys.executable, str(cli), "validate", str(extension_zip)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout


def test_unknown_manifest_key_is_rejected(tmp_path):
    from addon import build

    bad = tmp_path / "manifest.toml"
    bad.write_text((ROOT / "manifest.toml").read_text() .replace('type = "add-on"', 'type = "add-on"\ncolour = "red"'))
    with pytest.raises(build.ManifestError, match="colour"):
        build.read_manifest(bad)


def test_addon_light_modules_import_without_bpy_or_torch():
    code = ("import sys, addon, addon.job, addon.worker, addon.deps, addon.build; "
            "bad = [m for m in ('bpy', 'torch', 'numpy') if m in sys.modules]; "
            "assert not bad, bad; "
            "assert addon.backend_module('head').__name__ == 'backend.head'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_deps_pip_command():
    from addon import deps

    cmd = deps.pip_install_command("/x/site-packages", ["dlib", "PIL"], python="py")
    pins = deps.pinned_versions()
    assert cmd == ["py", "-m", "pip", "install", "--upgrade", "--target", "/x/site-packages",
                   f"dlib-bin=={pins['dlib-bin']}", f"pillow=={pins['pillow']}"]
    with pytest.raises(ValueError, match="not a Photohead dependency"):
        deps.pip_install_command("/x", ["requests"])
    assert deps.missing_packages() == []  # the dev venv has everything
