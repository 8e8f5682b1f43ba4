"""The pictures of docs/addon.md, made through the add-on's own code paths with the bpy module.

    python -m benchmarks.addon_images [--quality default] [--out docs/images]

Registers the repository's ``addon`` package in a headless bpy session and drives what the
panel's buttons do (``operators.start_job`` / ``finish_job``, the same worker process) on
matplotlib's public-domain grace_hopper photo:

1. ``addon_detect.png``: Detect Landmarks: the Landmarks object over the photo (pre-fit camera);
2. ``addon_first_head.png``: Reconstruct: the head (3/4 view, Cycles) | seen through its photo
   camera over the photo, with the pins;
3. ``addon_refit.png``: three pins moved (red; chin down, mouth corners out), Refit: the mouth
   and chin before | after through the camera, the fit's landmarks at those points in blue;
4. ``addon_multiview_fix.png`` / ``addon_multiview.png``: three views rendered from the first
   head (``evaluation.multiview_real.render_frames``, yaw −50°, 0°, +50°) added as photos, Detect
   Landmarks, Reconstruct: the −50° view's dlib points are off and so is its fit; its pins set
   onto the face's points (what the artist drags them to), Refit: that view before | after, then
   every view's camera over its photo, with its pins.

Renders: Cycles on the CPU (Workbench/EEVEE need a GPU context headless). Pins are drawn by a
Skin modifier on a copy of each Landmarks object (green; moved pins red). Each PNG < 300 KB.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MOVED = (8, 48, 54)
SHIFT = np.array([[0.0, 16.0], [-14.0, 0.0], [14.0, 0.0]])  # px: chin down, mouth corners out


def _run(ops, settings, task: str, refit: bool = False, keep: list | None = None):
    """What the panel's button does, waited for (background mode). ``keep``: gets the job's
    backend Head appended (reconstruct only), read before the job folder goes."""
    import bpy

    job = ops.start_job(settings, None, task=task, refit=refit)
    state = job.wait(timeout=3600)
    if keep is not None and state.result_path:
        from backend.export import load_head

        keep.append(load_head(state.result_path))
    report, message, obj = ops.finish_job(bpy.context, job, state, settings)
    print(f"{task}{' (refit)' if refit else ''}: {message}", flush=True)
    if "ERROR" in report:
        raise RuntimeError(message)
    return obj


def _setup_render(scene, samples: int = 24) -> None:
    import bpy

    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"
    if scene.world is None:
        scene.world = bpy.data.worlds.new("World")
    scene.world.color = (0.55, 0.55, 0.55)
    if "Key" not in bpy.data.objects:
        sun = bpy.data.objects.new("Key", bpy.data.lights.new("Key", "SUN"))
        sun.data.energy = 2.5
        sun.rotation_euler = (0.9, 0.0, 0.5)
        scene.collection.objects.link(sun)


GREEN, RED, BLUE = (0.1, 1.0, 0.2), (1.0, 0.1, 0.1), (0.15, 0.45, 1.0)


def _pin_markers(pins_obj, moved: tuple[int, ...] = (), lines: bool = True, colour_points=RED) -> list:
    """Renderable copies of a Landmarks object: tubes along its edges (Skin modifier), green, with
    the ``moved`` points as balls. Returns the new objects (delete them after rendering)."""
    import bpy

    from addon import pins

    made = []
    for name, ids, colour, radius in (("lines", None, GREEN, 1.1), ("moved", moved, colour_points, 3.5)):
        if (ids is not None and not ids) or (ids is None and not lines):
            continue
        mesh = pins_obj.data.copy()
        if ids is not None:  # one detached point per moved pin
            co = [tuple(mesh.vertices[i].co) for i in ids]
            mesh = bpy.data.meshes.new(f"{pins_obj.name} {name}")
            mesh.from_pydata(co, [], [])
        obj = bpy.data.objects.new(f"{pins_obj.name} {name}", mesh)
        obj.parent = pins_obj.parent
        obj.matrix_parent_inverse = pins_obj.matrix_parent_inverse
        obj.location, obj.scale = pins_obj.location, pins_obj.scale
        skin = obj.modifiers.new("Skin", "SKIN")
        skin.use_smooth_shade = True
        roots = {0} if ids is not None else {a for a, _, _ in pins.CONTOURS}  # one root per connected part
        for i, v in enumerate(mesh.skin_vertices[0].data):
            v.radius = (radius, radius)
            v.use_root = i in roots or ids is not None
        mat = bpy.data.materials.new(f"pins {name}")
        tree = mat.node_tree
        tree.nodes.clear()
        emit = tree.nodes.new("ShaderNodeEmission")
        emit.inputs["Color"].default_value = (*colour, 1.0)
        emit.inputs["Strength"].default_value = 2.0
        out = tree.nodes.new("ShaderNodeOutputMaterial")
        tree.links.new(emit.outputs["Emission"], out.inputs["Surface"])
        mesh.materials.append(mat)
        bpy.context.scene.collection.objects.link(obj)
        made.append(obj)
    return made


def _render(scene, camera, size: tuple[int, int], path: Path, hide=(), samples: int = 24) -> np.ndarray:
    """Render ``camera`` at ``size`` (w, h) to an (H,W,4) float array in [0,1] (top row first)."""
    import bpy

    scene.cycles.samples = samples
    scene.camera = camera
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    hidden = [o for o in hide if not o.hide_render]
    for obj in hidden:
        obj.hide_render = True
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    for obj in hidden:
        obj.hide_render = False
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGBA"), np.float32) / 255.0


def _photo(photo: Path, size: tuple[int, int]) -> np.ndarray:
    """(H,W,3) float [0,1]: the photo scaled to ``size``."""
    from PIL import Image

    return np.asarray(Image.open(photo).convert("RGB").resize(size, Image.LANCZOS), np.float32) / 255.0


def _over(base: np.ndarray, render: np.ndarray, opacity: float) -> np.ndarray:
    """``render`` (H,W,4) composited over ``base`` (H,W,3), both float [0,1]."""
    alpha = render[..., 3:] * opacity
    return base * (1 - alpha) + render[..., :3] * alpha


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def _save(image: np.ndarray, path: Path, max_kb: int = 300) -> None:
    """PNG with an adaptive palette when the full-colour file would pass ``max_kb``."""
    from PIL import Image

    img = Image.fromarray(image)
    img.save(path, optimize=True)
    if path.stat().st_size > max_kb * 1024:
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    print(f"{path} ({path.stat().st_size // 1024} KB)", flush=True)


def _side_by_side(images: list[np.ndarray], gap: int = 8) -> np.ndarray:
    height = max(i.shape[0] for i in images)
    padded = [np.pad(i, ((0, height - i.shape[0]), (0, gap), (0, 0)), constant_values=255) for i in images]
    return np.concatenate(padded, 1)[:, :-gap]


def _three_quarter_camera(scene, head_obj):
    """A perspective camera looking at the head from its front-right, a little above."""
    import bpy
    from mathutils import Vector

    co = np.array([v.co[:] for v in head_obj.data.vertices])
    centre = head_obj.matrix_world @ Vector(((co.min(0) + co.max(0)) / 2).tolist())
    cam = bpy.data.objects.new("Doc camera", bpy.data.cameras.new("Doc camera"))
    cam.data.lens = 85
    cam.location = centre + Vector((0.45, -0.75, 0.06))
    cam.rotation_euler = (centre - cam.location).to_track_quat("-Z", "Y").to_euler()
    scene.collection.objects.link(cam)
    return cam


def _view_cameras(root) -> list:
    return sorted((c for c in root.children if c.type == "CAMERA"), key=lambda c: c["photohead_view"])


def _through_camera(scene, cam, pins_obj, photo: Path, out: Path, name: str, scale: float, moved=(), hide=(),
                    opacity: float = 0.6, fitted: np.ndarray | None = None) -> np.ndarray:
    """Head (if any) and pins seen through a photo camera, over the photo; ``fitted`` (68,2): the
    fit's landmarks, drawn as blue balls at the ``moved`` ids."""
    import bpy

    from addon import pins

    width, height = (int(s) for s in cam["photohead_image_size"])
    size = (int(round(width * scale)), int(round(height * scale)))
    image = _photo(photo, size)
    markers = _pin_markers(pins_obj, moved) if pins_obj is not None else []
    if fitted is not None:
        fit_obj = pins.create_pins("fitted", fitted, cam, "", "fit", scene.collection)
        markers += _pin_markers(fit_obj, moved, lines=False, colour_points=BLUE)
        markers.append(fit_obj)
    try:
        meshes = [o for o in scene.objects if o.type == "MESH" and o not in markers and not o.get("photohead_pins")]
        if meshes:  # the head, see-through
            image = _over(image, _render(scene, cam, size, out / name, hide=[*markers, *hide]), opacity)
        if markers:  # the pins, opaque, on top
            others = [o for o in scene.objects if o.type == "MESH" and o not in markers]
            image = _over(image, _render(scene, cam, size, out / f"pins_{name}", hide=others, samples=4), 1.0)
    finally:
        for obj in markers:
            bpy.data.objects.remove(obj)
    return _to_uint8(image)


def _zoom(image: np.ndarray, factor: float) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((int(w * factor), int(h * factor)), Image.LANCZOS))


def make_images(quality: str, out: Path, work: Path) -> None:
    import bpy
    import matplotlib.cbook

    sys.path.insert(0, str(ROOT))
    import addon

    addon.register()
    from addon import operators as ops
    from addon import pins

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    photo = work / "grace_hopper.jpg"
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh, open(photo, "wb") as dst:
        shutil.copyfileobj(fh, dst)
    settings = scene.photohead
    settings.photos.add().filepath = str(photo)
    settings.quality, settings.device = quality, "cpu"
    _setup_render(scene)

    # 1. Detect Landmarks
    marks = _run(ops, settings, "detect")
    _save(_through_camera(scene, marks.parent, marks, photo, work, "detect.png", 0.75), out / "addon_detect.png")

    # 2. Reconstruct
    first: list = []
    head = _run(ops, settings, "reconstruct", keep=first)
    cam = _view_cameras(head.parent)[0]
    doc_cam = _three_quarter_camera(scene, head)
    beauty = _render(scene, doc_cam, (384, 450), work / "beauty.png", hide=[marks])
    beauty_rgb = (np.clip(beauty[..., :3] * beauty[..., 3:] + (1 - beauty[..., 3:]) * 0.93, 0, 1) * 255).astype(np.uint8)
    overlay = _through_camera(scene, cam, marks, photo, work, "overlay.png", 0.75)
    _save(_side_by_side([beauty_rgb, overlay]), out / "addon_first_head.png")

    # 3. move three pins, Refit
    pixels = pins.pins_pixels(marks)
    pixels[list(MOVED)] += SHIFT
    pins.set_pins_pixels(marks, pixels)
    fitted = lambda obj: np.asarray(json.loads(obj["photohead"])["views"][0]["landmarks68"])  # noqa: E731
    before = _through_camera(scene, cam, marks, photo, work, "before.png", 1.0, moved=MOVED, opacity=0.85,
                             fitted=fitted(head))
    head = _run(ops, settings, "reconstruct", refit=True)
    cam = _view_cameras(head.parent)[0]
    after = _through_camera(scene, cam, marks, photo, work, "after.png", 1.0, moved=MOVED, opacity=0.85,
                            fitted=fitted(head))
    lo, hi = pixels.min(0).astype(int), pixels.max(0).astype(int)
    top = int(pixels[[31, 35], 1].mean()) - 10  # from the nostrils down
    crop = lambda img: img[max(top, 0): hi[1] + 25, max(lo[0] - 15, 0): hi[0] + 15]  # noqa: E731
    _save(_side_by_side([_zoom(crop(before), 1.5), _zoom(crop(after), 1.5)]), out / "addon_refit.png")

    # 4. multi-view: three views rendered from this head, as photos
    from backend.facemodel import load_default
    from evaluation.multiview_real import FrameSettings, render_frames
    from PIL import Image

    frames = render_frames(first[0], load_default(), FrameSettings())
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    _setup_render(scene)
    settings = scene.photohead
    settings.quality, settings.device = quality, "cpu"
    paths = []
    for image, label in zip(frames.images, ("left", "front", "right")):  # yaw −50° shows the subject's left
        path = work / f"view_{label}.png"
        Image.fromarray(image).save(path)
        item = settings.photos.add()
        item.filepath, item.label = str(path), label
        paths.append(path)
    _run(ops, settings, "detect")
    head = _run(ops, settings, "reconstruct")

    def side_view(head, name: str) -> np.ndarray:
        cam = _view_cameras(head.parent)[0]
        return _through_camera(scene, cam, pins.find_pins(str(paths[0]), scene), paths[0], work, name, 0.8)

    side_before = side_view(head, "mv_before.png")
    # the artist drags the side view's pins onto the face: here, where the face's points are
    pins.set_pins_pixels(pins.find_pins(str(paths[0]), scene), frames.landmarks68[0])
    head = _run(ops, settings, "reconstruct", refit=True)
    _save(_side_by_side([side_before, side_view(head, "mv_after.png")]), out / "addon_multiview_fix.png")
    panels = []
    for cam in _view_cameras(head.parent):
        photo_path = Path(cam["photohead_photo"])
        pins_obj = pins.find_pins(str(photo_path), scene)
        panels.append(_through_camera(scene, cam, pins_obj, photo_path, work, f"mv_{photo_path.stem}.png", 0.8))
    _save(_side_by_side(panels), out / "addon_multiview.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.addon_images", description=__doc__.splitlines()[0])
    parser.add_argument("--quality", default="default", choices=("draft", "default", "high"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="photohead-addon-images-") as work:
        make_images(args.quality, args.out, Path(work))
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
