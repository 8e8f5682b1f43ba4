"""The layers, read from the source (an AST walk, nothing imported): ``backend`` computes and imports
no layer above it; ``training`` and ``evaluation`` compose the backend through its public names;
the add-on reaches the backend only through its one loader, ``addon.backend_module``. Each
failure names file:line and the import."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABOVE_BACKEND = ("bpy", "mathutils", "addon", "training", "evaluation")


def _imports(folder: str):
    """(file:line, absolute module, imported names) of every import under ``folder``; relative
    imports are resolved against the file's package."""
    for path in sorted((ROOT / folder).rglob("*.py")):
        rel = path.relative_to(ROOT)
        package = list(rel.parent.parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(rel))):
            where = f"{rel}:{node.lineno}" if hasattr(node, "lineno") else str(rel)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield where, alias.name, ()
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, node.module] if node.module else base)
                yield where, module, tuple(a.name for a in node.names)


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def test_imports_are_resolved_to_absolute_modules():
    coarse = {(m, names) for w, m, names in _imports("backend") if w.startswith("backend/fit/coarse.py:")}
    assert ("backend.camera", ("Camera", "project", "scale_pose")) in coarse  # from ..camera import ...
    assert ("backend.fit.pose_init", ("INNER_LANDMARKS", "fit_orthographic_pose")) in coarse  # from .pose_init
    scene = {(m, names) for w, m, names in _imports("addon") if w.startswith("addon/scene.py:")}
    assert ("addon", ("backend_module",)) in scene  # from . import backend_module


def test_backend_imports_no_layer_above_it():
    bad = [f"{w}: {m}" for w, m, _ in _imports("backend") if _top(m) in ABOVE_BACKEND]
    assert not bad, "backend imports a layer above it:\n" + "\n".join(bad)


def test_training_and_evaluation_use_only_public_backend_names():
    bad = []
    for folder in ("training", "evaluation"):
        for where, module, names in _imports(folder):
            if _top(module) != "backend":
                continue
            private = [p for p in module.split(".") if p.startswith("_")] + [n for n in names if n.startswith("_")]
            if private:
                bad.append(f"{where}: from {module} import {', '.join(names)}")
    assert not bad, "private backend names used above the backend:\n" + "\n".join(bad)


def test_addon_reaches_the_backend_only_through_its_loader():
    bad = [f"{w}: {m}" for w, m, _ in _imports("addon") if _top(m) == "backend" or m.startswith("addon.backend")]
    assert not bad, "the add-on imports the backend directly (use addon.backend_module):\n" + "\n".join(bad)
    loader = ast.parse((ROOT / "addon" / "__init__.py").read_text(encoding="utf-8"))
    assert "backend_module" in {n.name for n in loader.body if isinstance(n, ast.FunctionDef)}


# The extension zip bundles only these third-party packages (pyproject's [tool.photohead.extension]);
# matplotlib is a dev dependency, read only for the package's sample photos (backend/samples.py).
DEV_ONLY = {"matplotlib": {"backend/samples.py"}, "h5py": None, "tensorboard": None}


def test_backend_needs_no_dev_only_package_outside_its_optional_corners():
    """A module-level import of a package the zip does not carry breaks every reconstruction in
    Blender (a matplotlib import in the parts texture did); optional ones must be lazy."""
    bad = []
    for path in sorted((ROOT / "backend").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            for mod in mods:
                allowed = DEV_ONLY.get(_top(mod), ())
                if _top(mod) in DEV_ONLY and (allowed is None or rel not in allowed):
                    bad.append(f"{rel}:{node.lineno}: {mod}")
    assert not bad, "module-level import of a package the extension zip does not bundle:\n" + "\n".join(bad)
