"""Operators: add/remove photos, Reconstruct (a thin modal shell over :class:`job.Job`), Cancel.

The job logic lives in plain functions (:func:`start_job`, :func:`finish_job`) that tests call
directly, because timers and modal operators do not run in the bpy module.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import bpy
from bpy.props import CollectionProperty, IntProperty, StringProperty
from bpy.types import Operator, OperatorFileListElement

from . import backend_module, preferences
from .job import CANCELLED, DONE, Job, JobState
from .worker import DEFAULT_RECONSTRUCT

IMAGE_GLOB = "*.jpg;*.jpeg;*.png;*.bmp;*.tif;*.tiff;*.webp"
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class JobStartError(Exception):
    """The job cannot start (no photos, missing file, mode not available); the message says why."""


class _Runtime:
    """The one running job of this Blender session (set while a Reconstruct is running)."""

    job: Job | None = None
    previews = None  # bpy.utils.previews collection for the photo thumbnails (set by register)


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


def start_job(
    settings,
    prefs=None,
    reconstruct: str = DEFAULT_RECONSTRUCT,
    python_paths: Sequence[str] = (),
) -> Job:
    """Check the panel's inputs and start a worker. Raises :class:`JobStartError` or ``OSError``."""
    photos = [bpy.path.abspath(p.filepath) for p in settings.photos]
    if not photos:
        raise JobStartError("Add at least one photo first")
    absent = [p for p in photos if not os.path.isfile(p)]
    if absent:
        raise JobStartError(f"Photo not found: {absent[0]}")
    config = job_config(settings, prefs)
    env = {}
    if prefs is not None and prefs.model_dir:
        existing = os.environ.get("PHOTOHEAD_MODEL_PATH", "")
        env["PHOTOHEAD_MODEL_PATH"] = os.pathsep.join(p for p in (bpy.path.abspath(prefs.model_dir), existing) if p)
    job = Job(photos, config, reconstruct=reconstruct,
              python_paths=[*preferences.python_paths(), *python_paths], env=env)
    job.start()
    _Runtime.job = job
    settings.progress, settings.status = 0.0, "Starting…"
    return job


def build_options(context, settings, photo_paths: Sequence[str], name: str = "Photohead"):
    """Scene build options from the panel settings (``photo_paths``: the job's photos, per view)."""
    from .scene import BuildOptions

    blend_dir = os.path.dirname(bpy.data.filepath) if bpy.data.filepath else None
    return BuildOptions(
        name=name, dense=settings.dense_mesh, cameras=settings.add_cameras, pack_images=settings.pack_images,
        image_dir=blend_dir, photo_paths=list(photo_paths),
        collection=context.collection, scene=context.scene,
    )


def finish_job(context, job: Job, state: JobState, settings) -> tuple[set[str], str, bpy.types.Object | None]:
    """Apply a finished job on the main thread, in one step.

    Returns ``(report type, message, head object or None)``. On error or cancel nothing is
    added to the scene. Always cleans up the job folder.
    """
    try:
        if state.status == CANCELLED:
            return {"WARNING"}, "Reconstruction cancelled", None
        if state.status != DONE:
            kind = f" ({state.error_type})" if state.error_type else ""
            return {"ERROR"}, f"Reconstruction failed{kind}: {state.message}", None
        from .scene import build_head_objects

        try:
            head = backend_module("export").load_head(state.result_path)
            options = build_options(context, settings, job.images)
            if options.dense and head.displacement is None:
                options.dense = False  # reported below: the detail stage produced no displacement
            obj = build_head_objects(head, options)
        except (backend_module("errors").PhotoheadError, ImportError, ValueError, OSError, RuntimeError) as exc:
            return {"ERROR"}, f"Could not build the head: {exc}", None
        note = " (no detail in the result: built the base mesh)" if settings.dense_mesh and not options.dense else ""
        warnings = f"; warnings: {'; '.join(head.warnings)}" if head.warnings else ""
        return {"INFO"}, f"Reconstructed {obj.name}{note}{warnings}", obj
    finally:
        job.cleanup()
        if _Runtime.job is job:
            _Runtime.job = None


def _update_status(settings, report_type: set[str], message: str) -> None:
    settings.progress = 1.0 if "INFO" in report_type else 0.0
    settings.status = message


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
        paths = [p for p in paths if Path(p).suffix.lower() in IMAGE_EXTENSIONS]
        if not paths:
            self.report({"ERROR"}, "No image files selected (JPEG, PNG, BMP, TIFF or WebP)")
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


class PHOTOHEAD_OT_reconstruct(Operator):
    """Reconstruct a head from the photos in a background process"""

    bl_idname = "photohead.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {"REGISTER", "UNDO"}

    # Injectable for tests and experiments: the worker's reconstruct function and import paths.
    job_function: StringProperty(default=DEFAULT_RECONSTRUCT, options={"HIDDEN", "SKIP_SAVE"})
    job_python_path: StringProperty(default="", options={"HIDDEN", "SKIP_SAVE"})

    _job: Job | None = None
    _timer = None

    @classmethod
    def poll(cls, context):
        if running_job() is not None:
            cls.poll_message_set("A reconstruction is already running")
            return False
        if not context.scene.photohead.photos:
            cls.poll_message_set("Add at least one photo")
            return False
        return True

    def _start(self, context) -> bool:
        extra = [p for p in self.job_python_path.split(os.pathsep) if p]
        try:
            self._job = start_job(context.scene.photohead, preferences.get_preferences(context), self.job_function, extra)
        except (JobStartError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return False
        return True

    def _finish(self, context, state: JobState):
        settings = context.scene.photohead
        report_type, message, _ = finish_job(context, self._job, state, settings)
        _update_status(settings, report_type, message)
        self.report(report_type, message)
        return {"FINISHED"} if "INFO" in report_type else {"CANCELLED"}

    def execute(self, context):
        """Blocking run (background mode / scripts): start, wait, apply."""
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
        if event.type == "ESC" and event.value == "PRESS":
            self._job.cancel()
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
                _Runtime.job = None


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


classes = (PHOTOHEAD_OT_add_photos, PHOTOHEAD_OT_remove_photo, PHOTOHEAD_OT_reconstruct, PHOTOHEAD_OT_cancel)
