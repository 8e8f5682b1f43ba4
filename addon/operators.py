"""Operators: add/remove photos, Detect Landmarks, Reconstruct / Refit (thin modal shells over
:class:`job.Job`), Cancel, Import Result.

The job logic lives in plain functions (:func:`start_job`, :func:`finish_job`,
:func:`import_result`) that tests call directly, because timers and modal operators do not run
in the bpy module.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

import bpy
from bpy.props import BoolProperty, CollectionProperty, IntProperty, StringProperty
from bpy.types import Operator, OperatorFileListElement
from bpy_extras.io_utils import ImportHelper

from . import backend_module, pins, preferences
from .job import CANCELLED, DONE, Job, JobState
from .blendfile import result_photo_candidates

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".avif"}
HEIF_EXTENSIONS = {".heic", ".heif"}  # listed, so a pick of one gets told how to convert it
IMAGE_GLOB = ";".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS | HEIF_EXTENSIONS))


class JobStartError(Exception):
    """The job cannot start (no photos, missing file, mode not available); the message says why."""


class _Runtime:
    """The one running job of this Blender session (set while a job is running)."""

    job: Job | None = None
    replace_roots: tuple[str, ...] = ()  # Refit: the earlier results its head replaces (root empties)
    previews = None  # bpy.utils.previews collection for the photo thumbnails (set by register)


def results_dir() -> Path:
    """Where a result that could not be built into the scene is kept (to import later)."""
    if __package__.startswith("bl_ext."):
        return Path(bpy.utils.extension_path_user(__package__, path="results", create=True))
    return Path(tempfile.gettempdir()) / "photohead-results"


def running_job() -> Job | None:
    """The job currently running, if any."""
    return _Runtime.job


def photo_preview_icon(filepath: str) -> int:
    """Icon id of a photo thumbnail (0 when previews are unavailable)."""
    previews = _Runtime.previews
    if previews is None or not filepath:
        return 0
    path = bpy.path.abspath(filepath)
    if path not in previews:
        if not os.path.isfile(path):
            return 0
        previews.load(path, path, "IMAGE")
    return previews[path].icon_id


def job_config(settings, prefs=None) -> dict:
    """The panel's settings as ``ReconstructConfig`` fields. Raises :class:`JobStartError` when
    predict/hybrid mode has no usable checkpoint folder."""
    config = {
        "mode": settings.mode,
        "quality": settings.quality,
        "device": settings.device,
        "labels": [p.label for p in settings.photos],
        "detector": settings.detector,
    }
    weights = getattr(prefs, "fa_weights_dir", "") if prefs is not None else ""
    if settings.detector == "face_alignment" and weights:
        config["detector_weights"] = bpy.path.abspath(weights)
    if settings.mode != "fit":
        usable, reason = preferences.checkpoint_status(prefs)
        if not usable:
            raise JobStartError(reason)
        config["checkpoints"] = bpy.path.abspath(prefs.checkpoints_dir)
        if settings.mode == "hybrid" and settings.tune_unet:
            if not preferences.has_detail_checkpoint(prefs):
                raise JobStartError(f"Tune U-Net needs {preferences.DETAIL_CHECKPOINT_FILE} in the checkpoint folder")
            config["tune_unet"] = True
    return config


def check_can_build(settings) -> None:
    """Raise :class:`JobStartError` when the result could not be stored: textures not packed
    into a file that was never saved (they are saved next to the .blend)."""
    if not settings.pack_images and not bpy.data.filepath:
        raise JobStartError("Pack Images is off and this file was never saved: save the .blend first "
                            "(the textures are written next to it) or turn Pack Images on")


def start_job(
    settings,
    prefs=None,
    reconstruct: str = "",
    python_paths: Sequence[str] = (),
    task: str = "reconstruct",
    scene=None,
    refit: bool = False,
) -> Job:
    """Check the panel's inputs and start a worker. Raises :class:`JobStartError` or ``OSError``.

    ``task``: "reconstruct" (the photos' Landmarks objects, where there are some, are the
    given landmarks) or "detect" (landmarks only, for the pins). ``refit``: reconstruct from
    the pins and replace the earlier head they belong to (refused without pins).
    """
    photos = [bpy.path.abspath(p.filepath) for p in settings.photos]
    if not photos:
        raise JobStartError("Add at least one photo first")
    absent = [p for p in photos if not os.path.isfile(p)]
    if absent:
        raise JobStartError(f"Photo not found: {absent[0]}")
    scene = scene or bpy.context.scene
    landmarks, replace = None, ()
    if task == "reconstruct":
        check_can_build(settings)
        try:
            landmarks = pins.given_landmarks(photos, scene)
        except pins.PinsError as exc:
            raise JobStartError(str(exc)) from exc
        if refit:
            if landmarks is None:
                raise JobStartError("Refit needs Landmarks objects: run Detect Landmarks or Reconstruct first")
            replace = _result_roots(photos, scene)
    config = job_config(settings, prefs)
    env = {}
    if prefs is not None and prefs.model_dir:
        existing = os.environ.get("PHOTOHEAD_MODEL_PATH", "")
        env["PHOTOHEAD_MODEL_PATH"] = os.pathsep.join(p for p in (bpy.path.abspath(prefs.model_dir), existing) if p)
    job = Job(photos, config, reconstruct=reconstruct,
              python_paths=[*preferences.python_paths(), *python_paths], env=env, task=task, landmarks=landmarks)
    job.start()
    _Runtime.job, _Runtime.replace_roots = job, replace
    settings.progress, settings.status = 0.0, "Starting…"
    return job


def _result_roots(photos: Sequence[str], scene) -> tuple[str, ...]:
    """Names of the result empties whose cameras hold these photos' pins (what a Refit replaces)."""
    roots = []
    for photo in photos:
        obj = pins.find_pins(photo, scene)
        cam = obj.parent if obj is not None else None
        root = cam.parent if cam is not None else None
        if root is not None and root.get("photohead_root") and root.name not in roots:
            roots.append(root.name)
    return tuple(roots)


def build_options(context, settings, photo_paths: Sequence[str], name: str = "Photohead"):
    """Scene build options from the panel settings (``photo_paths``: candidate photo files,
    matched to the views by their own paths)."""
    from .scene import BuildOptions  # lazy: registration stays light

    blend_dir = os.path.dirname(bpy.data.filepath) if bpy.data.filepath else None
    return BuildOptions(
        name=name, dense=settings.dense_mesh, cameras=settings.add_cameras, pack_images=settings.pack_images,
        image_dir=blend_dir, photo_paths=list(photo_paths), set_render=settings.set_render,
        collection=context.collection, scene=context.scene,
    )


def finish_job(context, job: Job, state: JobState, settings) -> tuple[set[str], str, bpy.types.Object | None]:
    """Apply a finished job on the main thread, in one step.

    Returns ``(report type, message, object or None)``: the head object (reconstruct) or the
    first Landmarks object (detect). On error or cancel nothing is added to the scene. A
    reconstruction whose scene build fails keeps its result folder (reported; File > Import >
    Photohead Result reads it); every other job folder is deleted.
    """
    try:
        if state.status == CANCELLED:
            return {"WARNING"}, f"{_task_name(job)} cancelled", None
        if state.status != DONE:
            kind = f" ({state.error_type})" if state.error_type else ""
            return {"ERROR"}, f"{_task_name(job)} failed{kind}: {state.message}", None
        if job.task == "detect":
            return _apply_detection(context, state.result_path, pack=settings.pack_images)
        return _apply_reconstruction(context, job, state, settings)
    finally:
        job.cleanup()
        if _Runtime.job is job:
            _Runtime.job, _Runtime.replace_roots = None, ()


WARNINGS_PREFIX = "; warnings: "  # joins a result's report and its warnings (the status line drops them)


def _task_name(job: Job) -> str:
    return "Landmark detection" if job.task == "detect" else "Reconstruction"


def _apply_reconstruction(context, job: Job, state: JobState, settings):
    """Build the head of a finished reconstruction; keep the result folder when that fails."""
    try:
        head = backend_module("export").load_head(state.result_path)
        obj, note = build_result(context, settings, head, job.images)
    except Exception as exc:  # UI boundary: whatever broke (e.g. another Blender's API), keep the fit
        try:
            kept = job.keep_result(results_dir())
            where = f"; the result is kept in {kept} (File > Import > Photohead Result)"
        except OSError as keep_exc:
            where = f"; the result could not be kept either ({keep_exc})"
        return {"ERROR"}, f"Could not build the head ({type(exc).__name__}: {exc}){where}", None
    replaced = [name for name in _Runtime.replace_roots if name != obj.parent.name]
    for name in replaced:
        remove_result(bpy.data.objects.get(name))
    settings.warnings = "\n".join(head.warnings)
    obj.parent["photohead_warnings"] = list(head.warnings)
    warnings = f"{WARNINGS_PREFIX}{'; '.join(head.warnings)}" if head.warnings else ""
    verb = "Refitted" if replaced else "Reconstructed"
    return ({"WARNING"} if head.warnings else {"INFO"}), f"{verb} {obj.name}{note}{warnings}", obj


def build_result(context, settings, head, photo_paths: Sequence[str], name: str = "Photohead"):
    """The objects of ``head`` in the scene, with its photos' Landmarks objects moved onto (or
    made for) its cameras. Returns (head object, note for the report). Raises on failure,
    leaving the scene as it was."""
    from .scene import build_head_objects  # lazy: registration stays light

    options = build_options(context, settings, photo_paths, name)
    note = ""
    if options.dense and head.displacement is None:
        options.dense = False
        note = " (no detail in the result: built the base mesh)"
    obj = build_head_objects(head, options)
    try:
        attach_pins(context, obj.parent, head, make=settings.make_pins)
    except Exception:  # pins are part of the result: no half-built head either
        remove_result(obj.parent)
        raise
    return obj, note


def attach_pins(context, root, head, make: bool = True) -> list[bpy.types.Object]:
    """Move each photo's Landmarks object onto the result's camera for that photo (the pixels
    stay), or, with ``make``, create it from the view's landmarks (``detected68``: what the fit
    followed). Pre-fit photo cameras left without pins are removed. Returns the pins objects."""
    views = {c.get("photohead_view"): c for c in root.children if c.type == "CAMERA"}
    placed = []
    for index, cam in sorted(views.items()):
        photo = cam.get("photohead_photo", "")
        obj = pins.find_pins(photo, context.scene) if photo else None
        if obj is not None:
            old = obj.parent
            pins.place_on_camera(obj, cam)
            if old is not None and old.get("photohead_pre_fit") and not old.children:
                _remove_objects([old])
        elif make:
            view = head.views[index]
            name = f"Landmarks {os.path.basename(photo) or view.name}"
            obj = pins.create_pins(name, view.detected68, cam, photo, view.detector or "fit", context.collection)
        if obj is not None:
            placed.append(obj)
    return placed


def _apply_detection(context, result_path: str, pack: bool = True):
    """Landmarks objects from a detection job's ``landmarks.json`` (existing ones are updated);
    ``pack``: pack the photos shown by new pre-fit cameras into the .blend."""
    rows = json.loads(Path(result_path).read_text(encoding="utf-8"))
    made, placeholders = [], []
    try:
        for index, row in enumerate(rows):
            photo, (width, height) = row["name"], row["image_size"]
            obj = pins.find_pins(photo, context.scene)
            if obj is not None and tuple(obj["photohead_image_size"]) == (width, height):
                pins.set_pins_pixels(obj, row["landmarks68"])
                obj["photohead_pins_source"] = row["source"]
            else:
                if obj is not None:  # the photo changed size: start again
                    _remove_objects([obj])
                cam = _fitted_camera(photo, context.scene) or pins.photo_camera(
                    f"Photo {os.path.basename(photo)}", photo, width, height, index, context.collection, pack=pack)
                if cam.get("photohead_pre_fit"):
                    made.append(cam)
                obj = pins.create_pins(f"Landmarks {os.path.basename(photo)}", row["landmarks68"], cam, photo,
                                       row["source"], context.collection)
                made.append(obj)
            if row["source"] == "placeholder":
                placeholders.append(os.path.basename(photo))
    except Exception:  # leave no half-made pins behind
        _remove_objects([o for o in made if o.name in bpy.data.objects])
        raise
    first = pins.find_pins(rows[0]["name"], context.scene) if rows else None
    photos = f"{len(rows)} photo{'' if len(rows) == 1 else 's'}"
    if placeholders:
        return ({"WARNING"}, f"Landmarks of {photos}; no face found in {', '.join(placeholders)}: "
                "drag its points onto the face (Edit Mode, through its camera)", first)
    return {"INFO"}, f"Landmarks of {photos}: check them through each photo's camera, then Reconstruct", first


def _fitted_camera(photo: str, scene):
    """A result's camera for ``photo`` in ``scene`` (the newest), if any."""
    target = os.path.normcase(os.path.abspath(photo))
    cams = [o for o in scene.objects if o.type == "CAMERA" and not o.get("photohead_pre_fit")
            and o.get("photohead_photo") and os.path.normcase(os.path.abspath(o["photohead_photo"])) == target]
    return cams[-1] if cams else None


def _remove_objects(objects) -> None:
    """Delete objects and the data only they used (mesh/camera, their materials and images)."""
    for obj in objects:
        data = obj.data
        bpy.data.objects.remove(obj)
        if data is None or data.users:
            continue
        materials = list(getattr(data, "materials", ()))
        if isinstance(data, bpy.types.Mesh):
            bpy.data.meshes.remove(data)
        elif isinstance(data, bpy.types.Camera):
            images = [b.image for b in data.background_images if b.image is not None]
            bpy.data.cameras.remove(data)
            for image in images:
                if not image.users:
                    bpy.data.images.remove(image)
        for mat in materials:
            if mat is None or mat.users:
                continue
            images = [n.image for n in mat.node_tree.nodes if getattr(n, "image", None) is not None] if mat.node_tree else []
            bpy.data.materials.remove(mat)
            for image in images:
                if not image.users:
                    bpy.data.images.remove(image)


def remove_result(root) -> None:
    """Delete a result (its empty, head and cameras) except Landmarks objects and the cameras
    that still hold some."""
    if root is None:
        return
    keep = {o for o in root.children_recursive if o.get("photohead_pins")}
    keep |= {o.parent for o in keep if o.parent is not None}
    doomed = [o for o in [root, *root.children_recursive] if o not in keep]
    for obj in keep:
        if obj.parent is not None and obj.parent in doomed:
            world = obj.matrix_world.copy()
            obj.parent = None
            obj.matrix_world = world
    _remove_objects(sorted(doomed, key=lambda o: len(o.children_recursive)))


def import_result(context, settings, path: str) -> bpy.types.Object:
    """Build a result folder written by ``photohead reconstruct`` (or kept by a failed build) into
    the scene. ``path``: the folder, its ``head.npz`` or its ``params.json``. Returns the head
    object. Raises :class:`JobStartError` for a path without a head file."""
    path = Path(bpy.path.abspath(path))
    folder = path if path.is_dir() else path.parent
    head_file = path if path.suffix == ".npz" else folder / "head.npz"
    if not head_file.is_file():
        raise JobStartError(f"No head.npz in {folder}: pick a folder written by photohead reconstruct "
                            "(params.json alone holds no mesh)")
    check_can_build(settings)
    head = backend_module("export").load_head(head_file)
    photos = [bpy.path.abspath(p.filepath) for p in settings.photos] + result_photo_candidates(folder, head)
    obj, _ = build_result(context, settings, head, photos, name=f"Photohead {folder.name}")
    return obj


def _update_status(settings, report_type: set[str], message: str) -> None:
    settings.progress = 1.0 if report_type & {"INFO", "WARNING"} else 0.0
    settings.status = message.split(WARNINGS_PREFIX)[0]  # the panel lists the warnings on their own lines


def _tag_redraw(context) -> None:
    screen = context.screen
    for area in screen.areas if screen else ():
        if area.type == "VIEW_3D":
            area.tag_redraw()


class PHOTOHEAD_OT_add_photos(Operator):
    """Add photos of one person (several views allowed)"""

    bl_idname = "photohead.add_photos"
    bl_label = "Add Photos"
    bl_options = {"REGISTER", "UNDO"}

    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})
    files: CollectionProperty(type=OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    filepath: StringProperty(subtype="FILE_PATH", options={"HIDDEN", "SKIP_SAVE"})
    filter_glob: StringProperty(default=IMAGE_GLOB, options={"HIDDEN"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        settings = context.scene.photohead
        names = [f.name for f in self.files if f.name]
        paths = [os.path.join(self.directory, n) for n in names] if names else ([self.filepath] if self.filepath else [])
        heif = [Path(p).name for p in paths if Path(p).suffix.lower() in HEIF_EXTENSIONS]
        paths = [p for p in paths if Path(p).suffix.lower() in IMAGE_EXTENSIONS]
        if heif:
            self.report({"WARNING"} if paths else {"ERROR"},
                        f"{', '.join(heif)}: HEIC photos (an iPhone's default) cannot be read: export them as JPEG "
                        f"({backend_module('image_io').HEIF_EXPORT})")
        if not paths:
            if not heif:
                self.report({"ERROR"}, "No image files selected (JPEG, PNG, BMP, TIFF, WebP, GIF or AVIF)")
            return {"CANCELLED"}
        existing = {bpy.path.abspath(p.filepath) for p in settings.photos}
        for path in paths:
            if path in existing:
                continue
            item = settings.photos.add()
            item.filepath = path
            item.label = "front" if len(settings.photos) == 1 else "other"
        settings.active_photo = len(settings.photos) - 1
        return {"FINISHED"}


class PHOTOHEAD_OT_remove_photo(Operator):
    """Remove the selected photo from the list"""

    bl_idname = "photohead.remove_photo"
    bl_label = "Remove Photo"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(default=-1, options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        return len(context.scene.photohead.photos) > 0

    def execute(self, context):
        settings = context.scene.photohead
        index = self.index if self.index >= 0 else settings.active_photo
        if not 0 <= index < len(settings.photos):
            self.report({"ERROR"}, f"No photo at index {index}")
            return {"CANCELLED"}
        settings.photos.remove(index)
        settings.active_photo = max(0, min(settings.active_photo, len(settings.photos) - 1))
        return {"FINISHED"}


def event_over_panel(context, event) -> bool:
    """Whether the mouse is over a 3D viewport's sidebar showing the Photohead tab (where Esc
    cancels the running job; Esc anywhere else belongs to whatever the artist is doing)."""
    screen = context.screen
    for area in screen.areas if screen else ():
        if area.type != "VIEW_3D":
            continue
        for region in area.regions:
            if (region.type == "UI" and region.x <= event.mouse_x < region.x + region.width
                    and region.y <= event.mouse_y < region.y + region.height):
                return getattr(region, "active_panel_category", None) in ("Photohead", None)
    return False


class _JobOperator:
    """Runs a job in the background: a modal timer polls it; Esc over the panel or the Cancel
    button stops it. Not REGISTER: Repeat Last and the redo panel would call ``execute``.
    ``execute`` waits for the job only in background mode (scripts, tests); with a window it
    starts the same modal job as ``invoke``."""

    task = "reconstruct"
    _job: Job | None = None
    _timer = None

    # Injectable for tests and experiments: the worker's function and import paths.
    job_function: StringProperty(default="", options={"HIDDEN", "SKIP_SAVE"})
    job_python_path: StringProperty(default="", options={"HIDDEN", "SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        if running_job() is not None:
            cls.poll_message_set("A job is already running")
            return False
        if not context.scene.photohead.photos:
            cls.poll_message_set("Add at least one photo")
            return False
        return True

    def _start(self, context) -> bool:
        extra = [p for p in self.job_python_path.split(os.pathsep) if p]
        context.scene.photohead.warnings = ""  # the last result's warnings go with it
        try:
            self._job = start_job(context.scene.photohead, preferences.get_preferences(context), self.job_function,
                                  extra, task=self.task, scene=context.scene, refit=getattr(self, "refit", False))
        except (JobStartError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return False
        return True

    def _finish(self, context, state: JobState):
        settings = context.scene.photohead
        report_type, message, _ = finish_job(context, self._job, state, settings)
        _update_status(settings, report_type, message)
        self.report(report_type, message)
        return {"CANCELLED"} if "ERROR" in report_type or state.status == CANCELLED else {"FINISHED"}

    def execute(self, context):
        if context.window is not None and not bpy.app.background:
            return self.invoke(context, None)
        if not self._start(context):
            return {"CANCELLED"}
        return self._finish(context, self._job.wait())

    def invoke(self, context, event):
        if context.window is None:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS" and event_over_panel(context, event):
            self._job.cancel()
            context.scene.photohead.status = "Cancelling…"
            return {"RUNNING_MODAL"}  # this Esc was ours
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = self._job.poll()
        settings = context.scene.photohead
        settings.progress, settings.status = state.fraction, state.message
        _tag_redraw(context)
        if not state.finished:
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        result = self._finish(context, state)
        _tag_redraw(context)
        return result

    def cancel(self, context) -> None:
        """Blender stops the modal (file load, window closed): stop the worker, add nothing."""
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
        if self._job is not None:
            self._job.cancel()
            self._job.cleanup()
            if _Runtime.job is self._job:
                _Runtime.job, _Runtime.replace_roots = None, ()


class PHOTOHEAD_OT_reconstruct(_JobOperator, Operator):
    """Reconstruct a head from the photos in a background process (photos with Landmarks objects use those points)"""

    bl_idname = "photohead.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {"UNDO"}

    refit: BoolProperty(name="Refit", default=False, options={"SKIP_SAVE"},
                        description="Fit again to the Landmarks objects and replace the head they belong to")

    @classmethod
    def description(cls, context, properties):
        if properties.refit:
            return "Fit again to the corrected Landmarks objects and replace the earlier head"
        return cls.__doc__


class PHOTOHEAD_OT_detect_landmarks(_JobOperator, Operator):
    """Find the 68 landmarks of each photo and show them as Landmarks objects to correct before the fit"""

    bl_idname = "photohead.detect_landmarks"
    bl_label = "Detect Landmarks"
    bl_options = {"UNDO"}
    task = "detect"


class PHOTOHEAD_OT_import_result(Operator, ImportHelper):
    """Import a result folder written by photohead reconstruct (head.npz) as a head with its cameras"""

    bl_idname = "photohead.import_result"
    bl_label = "Import Photohead Result"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz;*.json", options={"HIDDEN"})

    def execute(self, context):
        try:
            obj = import_result(context, context.scene.photohead, self.filepath)
        except (JobStartError, backend_module("errors").PhotoheadError, OSError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Imported {obj.name}")
        return {"FINISHED"}


def menu_import(self, context) -> None:
    """File > Import entry."""
    self.layout.operator(PHOTOHEAD_OT_import_result.bl_idname, text="Photohead Result (head.npz)")


class PHOTOHEAD_OT_cancel(Operator):
    """Stop the running reconstruction (nothing is added to the scene)"""

    bl_idname = "photohead.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return running_job() is not None

    def execute(self, context):
        running_job().cancel()
        context.scene.photohead.status = "Cancelling…"
        return {"FINISHED"}


classes = (PHOTOHEAD_OT_add_photos, PHOTOHEAD_OT_remove_photo, PHOTOHEAD_OT_detect_landmarks, PHOTOHEAD_OT_reconstruct,
           PHOTOHEAD_OT_cancel, PHOTOHEAD_OT_import_result)
