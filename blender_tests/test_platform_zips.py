"""Every platform zip: Blender's validator (4.2's and 5.0's), its wheels against pip's own choice
for that platform and CPython 3.11, and the versions against pyproject.toml."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from addon import build, build_wheels  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PINS = build_wheels.load_pins()


def _blender_ext_clis() -> list[Path]:
    """blender_ext.py of the bpy in this process and of the clean bpy 4.2 (when made)."""
    # Once Blender has started, ``bpy.__file__`` names its scripts/modules copy, not the package
    # in site-packages, so look on the import path (the running bpy's site-packages is on it).
    found = []
    for entry in (*sys.path, ROOT / ".venv-bpy42" / "lib" / "python3.11" / "site-packages"):
        site = Path(entry)
        if site.is_dir():
            found += sorted(p.resolve() for p in site.glob("bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    return list(dict.fromkeys(found))


@pytest.fixture(scope="session")
def platform_zips(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("zips")
    return {p: build.build_platform(p, dist=base, stage_root=base / "stage", cache=ROOT / "dist" / "wheelcache")
            for p in sorted(PINS.platforms)}


def _zip_wheels(path: Path) -> tuple[dict, list[str]]:
    with zipfile.ZipFile(path) as zf:
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
        names = [n.split("/", 1)[1] for n in zf.namelist() if n.startswith("wheels/")]
    return manifest, names


def test_platforms_are_the_issue_ones():
    # torch 2.13.0 ships no macOS x86-64 wheel, hence no macos-x64 zip (pyproject.toml)
    assert sorted(PINS.platforms) == ["linux-x64", "macos-arm64", "windows-x64"]


def test_each_zip_passes_blenders_validator(platform_zips):
    clis = _blender_ext_clis()
    assert clis
    for platform, path in platform_zips.items():
        for cli in clis:
            proc = subprocess.run([sys.executable, str(cli), "validate", str(path)],
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0 and "Success" in proc.stdout, (platform, cli, proc.stdout + proc.stderr)


def test_zip_contents_and_manifest(platform_zips):
    spec = importlib.util.spec_from_file_location("blender_ext", _blender_ext_clis()[0])
    blender_ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(blender_ext)
    for platform, path in platform_zips.items():
        manifest, wheels = _zip_wheels(path)
        assert path.name == f"photohead-{manifest['version']}-{platform.replace('-', '_')}.zip"
        assert manifest["platforms"] == [platform]
        assert sorted(manifest["wheels"]) == sorted(f"./wheels/{w}" for w in wheels)
        # Blender's own rule for which wheel runs on which platform
        assert all(blender_ext.blender_platform_compatible_with_wheel_platform_from_filepath(platform, w)
                   for w in wheels), (platform, wheels)
        versions = {}
        for w in wheels:
            name, version, _, _ = build_wheels.parse_wheel_filename(w)
            versions[name] = str(version)
        assert {n: v.split("+")[0] for n, v in versions.items()} == {n: PINS.versions[n] for n in versions}
        assert set(PINS.bundle) <= set(versions)
        assert not any(n.startswith("nvidia") or n in ("triton", "cuda-toolkit") for n in versions)
        assert versions["torch"] == ("2.13.0+cpu" if platform == "linux-x64" else "2.13.0")
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            assert json.loads(zf.read("versions.json")) == PINS.versions
        assert {"models/ict_facekit/ict_head.npz", "models/ict_facekit/ict_parts.npz", "models/ict_facekit/LICENSE",
                "__init__.py",
                "backend/reconstruct.py"} <= names
        assert not {"build.py", "build_wheels.py"} & names
        assert not [n for n in names if n.startswith(("training/", "evaluation/")) or "__pycache__" in n]


@pytest.mark.parametrize("platform", sorted(PINS.platforms))
def test_wheels_are_what_pip_picks(platform, platform_zips, tmp_path):
    """pip's own choice (``install --dry-run --report``) among the index's files for that platform.

    pip evaluates markers for this machine (Linux x86-64, Python 3.11), so for linux-x64 it also
    resolves the dependencies: nothing beyond the zip's wheels (no nvidia-*) may come in."""
    _, wheels = _zip_wheels(platform_zips[platform])
    ours = {w for w in wheels if build_wheels.parse_wheel_filename(w)[0] not in PINS.from_sdist}
    specs = [PINS.spec(build_wheels.parse_wheel_filename(w)[0], platform) for w in sorted(ours)]
    host = platform == "linux-x64" and sys.platform == "linux" and sys.version_info[:2] == (3, 11)
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
           *([] if host else ["--no-deps"]),
           "--report", str(tmp_path / "report.json"), "--target", str(tmp_path / "t"),
           *build_wheels.pip_target_options(platform), *specs]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    picked = {unquote(item["download_info"]["url"].rsplit("/", 1)[-1]) for item in report["install"]}
    assert picked == ours


def test_markers_follow_the_target_platform():
    """pip evaluates markers for the machine it runs on; the build uses the zip's platform."""
    from packaging.requirements import Requirement

    req = Requirement('nvidia-nccl-cu13==2.29.7; platform_system == "Linux"')
    assert req.marker.evaluate(build_wheels.marker_environment("linux-x64"))
    assert not req.marker.evaluate(build_wheels.marker_environment("windows-x64"))
    assert not req.marker.evaluate(build_wheels.marker_environment("macos-arm64"))


def test_unpinned_dependency_stops_the_build(tmp_path, platform_zips):
    text = (ROOT / "pyproject.toml").read_text()
    bad = tmp_path / "pyproject.toml"
    bad.write_text(text.replace('    "lazy-loader==0.6",\n', ""))
    with pytest.raises(build_wheels.WheelError, match="lazy.loader"):
        build_wheels.resolve(build_wheels.load_pins(bad), "linux-x64", ROOT / "dist" / "wheelcache")
