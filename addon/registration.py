"""register()/unregister() over one tuple of classes (loaded lazily by the package)."""
from __future__ import annotations

import bpy
import bpy.utils.previews

from . import operators, preferences, props, ui

classes = (*props.classes, *preferences.classes, *operators.classes, *ui.classes)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    props.register()
    bpy.types.TOPBAR_MT_file_import.append(operators.menu_import)
    operators._Runtime.previews = bpy.utils.previews.new()


def unregister() -> None:
    job = operators.running_job()
    if job is not None:
        job.cancel()
        job.cleanup()
        operators._Runtime.job = None
    if operators._Runtime.previews is not None:
        bpy.utils.previews.remove(operators._Runtime.previews)
        operators._Runtime.previews = None
    bpy.types.TOPBAR_MT_file_import.remove(operators.menu_import)
    props.unregister()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
