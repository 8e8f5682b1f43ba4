"""One place for versions: pyproject.toml pins what the venv, the Makefile and the zips use."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from addon import build_wheels, deps

ROOT = Path(__file__).resolve().parents[1]


def test_every_dependency_is_pinned_exactly():
    pins = build_wheels.load_pins()
    assert pins.versions["torch"] == "2.13.0"
    assert {"face-recognition-models", "dlib-bin", "scikit-image", "scipy", "numpy", "pillow"} <= set(pins.bundle)
    assert pins.platforms["linux-x64"] == {"torch": "cpu"}
    assert pins.spec("torch", "linux-x64") == "torch==2.13.0+cpu"
    assert pins.spec("torch", "windows-x64") == "torch==2.13.0"


def test_range_is_rejected(tmp_path):
    bad = tmp_path / "pyproject.toml"
    bad.write_text((ROOT / "pyproject.toml").read_text().replace('"scipy==1.17.1"', '"scipy>=1.11"'))
    with pytest.raises(build_wheels.WheelError, match="scipy>=1.11"):
        build_wheels.load_pins(bad)


def test_makefile_and_addon_read_the_same_versions():
    pins = build_wheels.load_pins()
    makefile = (ROOT / "Makefile").read_text()
    assert re.findall(r'"torch==([0-9.]+)', makefile) == [pins.versions["torch"]] * 2
    assert re.search(r"BPY_NUMPY \?= (\S+)", makefile).group(1) == pins.versions["numpy"]
    # the add-on's opt-in installs (repository layout: read from pyproject.toml)
    repo_pins = deps.pinned_versions()
    assert all(repo_pins[name] == pins.versions[name] for name in repo_pins)
    assert set(deps.REQUIRED.values()) <= set(repo_pins)
    cmd = deps.pip_install_command("/x", ["face_recognition_models", "torch"], python="py")
    assert cmd[-2:] == ["face-recognition-models==0.3.0", "torch==2.13.0"]
    assert deps.cuda_torch_command("/x", python="py")[-1] == "torch==2.13.0"


def test_supported_tags_follow_pips_order():
    tags = [str(t) for t in build_wheels.supported_tags("macos-arm64")]
    assert tags[0] == "cp311-cp311-macosx_14_0_arm64"
    assert "cp311-cp311-macosx_11_0_arm64" in tags and "cp311-cp311-macosx_15_0_arm64" not in tags
    linux = [str(t) for t in build_wheels.supported_tags("linux-x64")]
    assert linux[0] == "cp311-cp311-manylinux_2_28_x86_64" and "cp311-cp311-manylinux_2_34_x86_64" not in linux
    names = ["scipy-1.17.1-cp311-cp311-macosx_12_0_arm64.whl", "scipy-1.17.1-cp311-cp311-macosx_14_0_arm64.whl",
             "scipy-1.17.1-cp311-cp311-win_amd64.whl", "scipy-1.17.0-cp311-cp311-macosx_14_0_arm64.whl"]
    assert build_wheels.best_wheel(names, "scipy", "1.17.1", "macos-arm64").name == names[1]
    assert build_wheels.best_wheel(names, "scipy", "1.17.1", "windows-x64").name == names[2]
    assert build_wheels.best_wheel(names, "scipy", "1.17.1", "linux-x64") is None
