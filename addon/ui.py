"""The "Photohead" tab in the 3D viewport sidebar."""
from __future__ import annotations

import bpy
from bpy.types import Panel, UIList

from . import operators, pins, preferences


class PHOTOHEAD_UL_photos(UIList):
    """Photo list row: thumbnail, file name, view label."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        icon_id = operators.photo_preview_icon(item.filepath)
        row = layout.row(align=True)
        name = item.filepath.replace("\\", "/").rsplit("/", 1)[-1] or "(no file)"
        if icon_id:
            row.label(text=name, icon_value=icon_id)
        else:
            row.label(text=name, icon="IMAGE_DATA")
        if pins.find_pins(bpy.path.abspath(item.filepath), context.scene) is not None:
            row.label(text="", icon="PINNED")  # has a Landmarks object
        row.prop(item, "label", text="")


class PHOTOHEAD_PT_main(Panel):
    bl_label = "Photohead"
    bl_idname = "PHOTOHEAD_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Photohead"

    def draw(self, context) -> None:
        layout = self.layout
        settings = context.scene.photohead
        prefs = preferences.get_preferences(context)
        job = operators.running_job()

        layout.label(text="Photos (one person)")
        row = layout.row()
        row.template_list("PHOTOHEAD_UL_photos", "", settings, "photos", settings, "active_photo", rows=3)
        col = row.column(align=True)
        col.operator("photohead.add_photos", text="", icon="ADD")
        col.operator("photohead.remove_photo", text="", icon="REMOVE")
        if 0 <= settings.active_photo < len(settings.photos):
            icon_id = operators.photo_preview_icon(settings.photos[settings.active_photo].filepath)
            if icon_id:
                layout.template_icon(icon_value=icon_id, scale=6.0)

        col = layout.column()
        col.enabled = job is None
        col.label(text="Mode")
        row = col.row(align=True)
        row.prop_enum(settings, "mode", "fit")
        usable, reason = preferences.checkpoint_status(prefs)
        sub = row.row(align=True)
        sub.enabled = usable
        sub.prop_enum(settings, "mode", "predict")
        sub.prop_enum(settings, "mode", "hybrid")
        if not usable:
            col.label(text=reason, icon="INFO")
        elif settings.mode == "hybrid":
            has_unet = preferences.has_detail_checkpoint(prefs)
            sub = col.row()
            sub.enabled = has_unet
            sub.prop(settings, "tune_unet")
            if not has_unet:
                col.label(text=f"Tune U-Net needs {preferences.DETAIL_CHECKPOINT_FILE} in the checkpoint folder",
                          icon="INFO")
        col.prop(settings, "quality")
        col.prop(settings, "device")
        col.prop(settings, "detector")
        box = col.box()
        box.prop(settings, "dense_mesh")
        box.prop(settings, "add_cameras")
        box.prop(settings, "set_render")
        box.prop(settings, "make_pins")
        box.prop(settings, "pack_images")

        missing = preferences.missing_packages()
        if missing:
            layout.label(text="Missing: " + ", ".join(missing) + " (see Preferences)", icon="ERROR")
        if job is not None:
            layout.progress(factor=settings.progress, type="BAR", text=settings.status or "Working…")
            layout.operator("photohead.cancel", icon="CANCEL")
        else:
            photos = [bpy.path.abspath(p.filepath) for p in settings.photos]
            pinned = [pins.find_pins(p, context.scene) for p in photos]
            layout.operator("photohead.detect_landmarks", icon="PINNED")
            row = layout.row(align=True)
            row.operator("photohead.reconstruct", icon="USER")
            if any(o is not None and o.parent is not None and not o.parent.get("photohead_pre_fit") for o in pinned):
                row.operator("photohead.reconstruct", text="Refit", icon="FILE_REFRESH").refit = True
            if settings.status:
                layout.label(text=settings.status)
            for line in filter(None, settings.warnings.split("\n")):
                layout.label(text=line, icon="ERROR")
        layout.operator("photohead.import_result", text="Import Result…", icon="IMPORT")


classes = (PHOTOHEAD_UL_photos, PHOTOHEAD_PT_main)
