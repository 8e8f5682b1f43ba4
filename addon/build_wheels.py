"""The wheels of each extension zip (build time only; not shipped, no bpy).

Versions come from ``pyproject.toml``, the one place they are pinned: ``[project] dependencies``
for the bundled packages, ``[tool.photohead.extension]`` for what those need in turn and for a
platform's local build (torch ``+cpu`` on Linux). :func:`resolve` walks each wheel's
``Requires-Dist`` with the markers of the *target* platform (pip evaluates them for the machine
it runs on), so a dependency that is not pinned stops the build instead of drifting.

Wheels are fetched once into a cache folder with ``pip download --no-deps --only-binary=:all:
--platform ... --python-version 3.11``; a rebuild finds them there and needs no network.
"""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from packaging import tags
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYTHON = (3, 11)  # Blender 4.2 to 5.0
PYTHON_FULL = "3.11.9"
# Blender platform → (pip --platform tags, best first; marker environment of that platform).
# Blender 4.2+ needs glibc 2.28 on Linux; torch 2.13's macOS wheel needs macOS 14.
_LINUX_TAGS = tuple(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)) + (
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "linux-x64": _LINUX_TAGS,
    "windows-x64": ("win_amd64",),
    "macos-arm64": tuple(tags.mac_platforms((14, 0), "arm64")),
    "macos-x64": tuple(tags.mac_platforms((11, 0), "x86_64")),
}
_MARKERS: dict[str, dict[str, str]] = {
    "linux-x64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix"},
    "windows-x64": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64", "os_name": "nt"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64", "os_name": "posix"},
    "macos-x64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "x86_64", "os_name": "posix"},
}


class WheelError(RuntimeError):
    """A pin is missing or conflicts, or a wheel could not be fetched or built."""


@dataclass(frozen=True)
class Pins:
    """The versions from pyproject.toml (names canonicalised, e.g. ``scikit-image``)."""

    versions: dict[str, str]  # every pinned distribution → exact version
    bundle: tuple[str, ...]  # distributions a zip starts from
    from_sdist: frozenset[str]  # built here from the sdist
    platforms: dict[str, dict[str, str]] = field(default_factory=dict)  # platform → {name: local label}

    def spec(self, name: str, platform: str) -> str:
        """``name==version[+local]`` for one platform."""
        version = self.versions[name]
        local = self.platforms.get(platform, {}).get(name)
        return f"{name}=={version}+{local}" if local else f"{name}=={version}"


def _exact(line: str, where: str) -> tuple[str, str]:
    req = Requirement(line)
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
        raise WheelError(f"{where}: {line!r} is not pinned with '=='")
    return canonicalize_name(req.name), specs[0].version


def load_pins(pyproject: Path = ROOT / "pyproject.toml") -> Pins:
    """Read the pins; raises :class:`WheelError` on a range or an unknown bundled name."""
    with open(pyproject, "rb") as fh:
        data = tomllib.load(fh)
    ext = data["tool"]["photohead"]["extension"]
    versions = dict(_exact(line, "[project] dependencies") for line in data["project"]["dependencies"])
    for line in ext.get("dependency-pins", []):
        name, version = _exact(line, "dependency-pins")
        if versions.setdefault(name, version) != version:
            raise WheelError(f"{name} is pinned twice: {versions[name]} and {version}")
    bundle = tuple(canonicalize_name(n) for n in ext["bundle"])
    unpinned = [n for n in bundle if n not in versions]
    if unpinned:
        raise WheelError(f"bundled but not in [project] dependencies: {unpinned}")
    platforms = {p: {canonicalize_name(k): v for k, v in cfg.get("local-versions", {}).items()}
                 for p, cfg in ext["platforms"].items()}
    unknown = sorted(set(platforms) - set(PLATFORM_TAGS))
    if unknown:
        raise WheelError(f"unknown Blender platforms {unknown}; known: {sorted(PLATFORM_TAGS)}")
    return Pins(versions, bundle, frozenset(canonicalize_name(n) for n in ext.get("build-from-sdist", [])), platforms)


def supported_tags(platform: str) -> list[tags.Tag]:
    """Wheel tags CPython 3.11 accepts on ``platform``, best first (pip's order)."""
    plats = list(PLATFORM_TAGS[platform])
    return [*tags.cpython_tags(PYTHON, abis=["cp311"], platforms=plats),
            *tags.compatible_tags(PYTHON, "cp311", plats)]


def marker_environment(platform: str) -> dict[str, str]:
    """The PEP 508 marker values of Blender's Python on ``platform``."""
    env = default_environment()
    env.update(python_version="3.11", python_full_version=PYTHON_FULL, implementation_name="cpython",
               implementation_version=PYTHON_FULL, platform_python_implementation="CPython",
               platform_release="", platform_version="", **_MARKERS[platform])
    return env


def best_wheel(files, name: str, version: str, platform: str) -> Path | None:
    """Among ``files``, the wheel of ``name==version`` pip would take on ``platform``, or None."""
    rank = {tag: i for i, tag in enumerate(supported_tags(platform))}
    best, best_rank = None, len(rank)
    for path in files:
        path = Path(path)
        if path.suffix != ".whl":
            continue
        wname, wversion, _, wtags = parse_wheel_filename(path.name)
        if wname != name or wversion != Version(version):
            continue
        score = min((rank[t] for t in wtags if t in rank), default=len(rank))
        if score < best_rank:
            best, best_rank = path, score
    return best


def pip_target_options(platform: str) -> list[str]:
    """pip options selecting binary wheels for ``platform`` and CPython 3.11."""
    opts = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    for plat in PLATFORM_TAGS[platform]:
        opts += ["--platform", plat]
    return opts


def pip_download_command(spec: str, platform: str, dest: Path) -> list[str]:
    """``pip download`` of one pinned wheel for ``platform``, no dependencies."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", *pip_target_options(platform), "-d", str(dest), spec]


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines()
                         if not line.startswith("WARNING: Location"))[-1500:]
        raise WheelError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def fetch(pins: Pins, name: str, platform: str, cache: Path) -> Path:
    """The wheel of pinned ``name`` for ``platform``: from ``cache``, else downloaded/built into it."""
    version = pins.spec(name, platform).split("==", 1)[1]
    cache.mkdir(parents=True, exist_ok=True)
    found = best_wheel(cache.iterdir(), name, version, platform)
    if found is not None:
        return found
    if name in pins.from_sdist:
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-binary", name, "-w", str(cache),
              f"{name}=={version}"], f"building the {name} wheel from its sdist")
    else:
        _run(pip_download_command(pins.spec(name, platform), platform, cache), f"pip download {name} for {platform}")
    found = best_wheel(cache.iterdir(), name, version, platform)
    if found is None:
        raise WheelError(f"no {platform} wheel of {name}=={version} for CPython 3.11 in {cache}")
    return found


def wheel_requirements(path: Path) -> list[Requirement]:
    """``Requires-Dist`` of a wheel (all of them, markers not yet evaluated)."""
    with zipfile.ZipFile(path) as zf:
        meta = next(n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(zf.read(meta).decode("utf-8"))
    return [Requirement(r) for r in headers.get_all("Requires-Dist") or []]


def resolve(pins: Pins, platform: str, cache: Path) -> list[Path]:
    """Every wheel a zip for ``platform`` needs: the bundle and, recursively, what each requires
    there. Raises :class:`WheelError` for an unpinned dependency or a pin outside a requirement."""
    env = marker_environment(platform)
    wheels: dict[str, Path] = {}
    todo = list(pins.bundle)
    while todo:
        name = todo.pop(0)
        if name in wheels:
            continue
        wheels[name] = fetch(pins, name, platform, cache)
        for req in wheel_requirements(wheels[name]):
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            dep = canonicalize_name(req.name)
            if dep not in pins.versions:
                raise WheelError(f"{name} needs {req} on {platform}: pin it in pyproject.toml "
                                 "[tool.photohead.extension] dependency-pins")
            if not req.specifier.contains(pins.versions[dep], prereleases=True):
                raise WheelError(f"{name} needs {req}, but {dep} is pinned to {pins.versions[dep]}")
            todo.append(dep)
    return [wheels[n] for n in sorted(wheels)]
