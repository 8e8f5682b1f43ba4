"""Write a .blend for a saved Head: ``python -m addon.blendfile OUT_DIR [--dense] [--no-cameras] [--no-pack]``.

Loads ``OUT_DIR/head.npz`` (``backend.export.load_head``), builds the objects with
:func:`addon.scene.build_head_objects` in an empty scene and saves ``OUT_DIR/head.blend``
atomically (temporary name, then rename). Used by ``photohead reconstruct --blend``; needs the
bpy module (or run it with Blender's Python).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import backend_module


def result_photo_candidates(out_dir: str | os.PathLike, head) -> list[str]:
    """Where a result folder's photos may be: copied into the folder, or at their own paths."""
    out_dir = Path(out_dir)
    names = [Path(v.name.replace("\\", "/")).name for v in head.views if v.name]
    return [str(out_dir / n) for n in names] + [v.name for v in head.views if v.name]


def write_blend(
    out_dir: str | os.PathLike, dense: bool = False, cameras: bool = True, pack_images: bool = True,
    head_file: str = "head.npz", blend_file: str = "head.blend",
) -> Path:
    """Build the scene for ``out_dir/head_file`` and save ``out_dir/blend_file``. Returns its path."""
    import bpy  # lazy: only the process that writes the .blend has bpy

    from .scene import BuildOptions, build_head_objects  # lazy: bpy (scene) only here

    out_dir = Path(out_dir).resolve()
    head = backend_module("export").load_head(out_dir / head_file)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    build_head_objects(head, BuildOptions(
        dense=dense and head.displacement is not None, cameras=cameras, pack_images=pack_images,
        image_dir=str(out_dir), photo_paths=result_photo_candidates(out_dir, head),
        set_render=True,  # a new scene: its render size and camera are the first photo's
    ))
    target = out_dir / blend_file
    tmp = out_dir / f".{target.stem}.tmp.blend"
    try:
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp), check_existing=False, compress=True, copy=True)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m addon.blendfile", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder holding head.npz; head.blend is written there")
    parser.add_argument("--dense", action="store_true", help="bake the detail into a dense whole-head mesh (when the head has detail)")
    parser.add_argument("--no-cameras", dest="cameras", action="store_false", help="no camera per photo")
    parser.add_argument("--no-pack", dest="pack", action="store_false", help="save textures as files next to the .blend")
    args = parser.parse_args(argv)
    errors = backend_module("errors")
    try:
        print(write_blend(args.out_dir, dense=args.dense, cameras=args.cameras, pack_images=args.pack))
    except (errors.PhotoheadError, OSError, ValueError) as exc:
        print(f"addon.blendfile: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
