"""Add-on preferences: model and checkpoint folders, dependency check and pip install."""
from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy.types import AddonPreferences, Operator

from . import deps

CHECKPOINT_FILE = "coarse.pt"  # what predict/hybrid need at least in the checkpoint folder
DETAIL_CHECKPOINT_FILE = "detail.pt"  # the stage-2 U-Net: predict's detail, hybrid's Tune U-Net


def get_preferences(context=None):
    """This add-on's preferences, or None when it is not enabled as an add-on."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def site_packages_dir(create: bool = False) -> str | None:
    """The extension's own site-packages folder (installed extension only, else None)."""
    if not __package__.startswith("bl_ext."):
        return None
    return bpy.utils.extension_path_user(__package__, path="site-packages", create=create)


def wheels_site_packages() -> str:
    """Where Blender unpacks the wheels of installed extensions (it appends this to ``sys.path``)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return bpy.utils.user_resource("EXTENSIONS", path=f".local/lib/{version}/site-packages")


def python_paths() -> list[str]:
    """Extra import folders for the worker, first wins: the extension's own site-packages (opt-in
    pip installs, e.g. CUDA torch), then the bundled wheels Blender unpacked."""
    folders = [site_packages_dir(), wheels_site_packages()]
    return [f for f in folders if f and Path(f).is_dir()]


@functools.lru_cache(maxsize=1)
def _missing_cached(paths: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(deps.missing_packages(paths))


def missing_packages(refresh: bool = False) -> list[str]:
    """Missing Python packages (cached; ``refresh`` re-checks)."""
    if refresh:
        _missing_cached.cache_clear()
    return list(_missing_cached(tuple(python_paths())))


def _checkpoint_folder(prefs) -> Path | None:
    """The preferences' checkpoint folder as an absolute path, None when unset."""
    folder = getattr(prefs, "checkpoints_dir", "") if prefs is not None else ""
    return Path(bpy.path.abspath(folder)) if folder else None


def checkpoint_status(prefs) -> tuple[bool, str]:
    """(usable, reason) for predict/hybrid modes."""
    path = _checkpoint_folder(prefs)
    if path is None:
        return False, "Predict/Hybrid need a checkpoint folder (set it in the add-on preferences)"
    if not (path / CHECKPOINT_FILE).is_file():
        return False, f"No {CHECKPOINT_FILE} in the checkpoint folder {path}"
    return True, ""


def has_detail_checkpoint(prefs) -> bool:
    """Whether the checkpoint folder holds the stage-2 U-Net (``detail.pt``)."""
    path = _checkpoint_folder(prefs)
    return path is not None and (path / DETAIL_CHECKPOINT_FILE).is_file()


class PHOTOHEAD_AP_preferences(AddonPreferences):
    bl_idname = __package__

    model_dir: StringProperty(
        name="Face Model Folder", subtype="DIR_PATH",
        description="Folder holding ict_facekit/ict_head.npz (added to the model search path)",
    )
    checkpoints_dir: StringProperty(
        name="Checkpoint Folder", subtype="DIR_PATH",
        description="Folder with trained coarse.pt / detail.pt, needed by the Predict and Hybrid modes",
    )
    fa_weights_dir: StringProperty(
        name="Face-Alignment Weights", subtype="DIR_PATH",
        description="Folder with face-alignment's 2DFAN4*.zip and s3fd*.pth, for the face-alignment landmarks "
        "(Photohead never downloads them; default: torch hub's checkpoints)",
    )

    def draw(self, context) -> None:
        layout = self.layout
        layout.prop(self, "model_dir")
        layout.prop(self, "checkpoints_dir")
        layout.prop(self, "fa_weights_dir")
        box = layout.box()
        missing = missing_packages()
        row = box.row()
        if missing:
            row.label(text="Missing Python packages: " + ", ".join(missing), icon="ERROR")
        else:
            row.label(text="All required Python packages found", icon="CHECKMARK")
        row.operator("photohead.check_dependencies", text="", icon="FILE_REFRESH")
        if missing:
            col = box.column()
            if not bpy.app.online_access:
                col.label(text="Installing needs online access: Preferences > System > Network", icon="INFO")
            col.operator("photohead.install_dependencies", icon="IMPORT")
            col.label(text=f"Installs into {site_packages_dir() or 'the extension folder'}")
        elif sys.platform.startswith("linux") and site_packages_dir() is not None:
            op = box.operator("photohead.install_dependencies", text="Install CUDA Torch (NVIDIA GPU, several GB)")
            op.cuda_torch = True


class PHOTOHEAD_OT_check_dependencies(Operator):
    """Look again for the Python packages Photohead needs"""

    bl_idname = "photohead.check_dependencies"
    bl_label = "Check Dependencies"

    def execute(self, context):
        missing = missing_packages(refresh=True)
        self.report({"INFO"}, "Missing: " + ", ".join(missing) if missing else "All dependencies found")
        return {"FINISHED"}


class PHOTOHEAD_OT_install_dependencies(Operator):
    """Install the missing Python packages with pip into the extension's own folder"""

    bl_idname = "photohead.install_dependencies"
    bl_label = "Install Missing Packages"

    cuda_torch: BoolProperty(name="CUDA Torch", description="Install the CUDA build of torch (opt-in, Linux)")

    _proc: subprocess.Popen | None = None
    _timer = None

    def execute(self, context):
        if not bpy.app.online_access:
            self.report({"ERROR"}, "Online access is off: allow it in Preferences > System > Network, then retry")
            return {"CANCELLED"}
        missing = missing_packages(refresh=True)
        if not missing and not self.cuda_torch:
            self.report({"INFO"}, "All dependencies already installed")
            return {"FINISHED"}
        target = site_packages_dir(create=True)
        if target is None:
            self.report({"ERROR"}, "Dependencies can only be installed for the installed extension")
            return {"CANCELLED"}
        log_path = Path(target).parent / "pip-install.log"
        try:
            with open(log_path, "w", encoding="utf-8") as log:
                cmd = deps.cuda_torch_command(target) if self.cuda_torch else deps.pip_install_command(target, missing)
                self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        except OSError as exc:
            self.report({"ERROR"}, f"Could not start pip: {exc}")
            return {"CANCELLED"}
        self._log_path = log_path
        if context.window is None:  # headless: wait here
            self._proc.wait()
            return self._done(context)
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        what = "CUDA torch" if self.cuda_torch else ", ".join(missing)
        self.report({"INFO"}, f"Installing {what} (see {log_path})")
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER" or self._proc.poll() is None:
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        return self._done(context)

    def _done(self, context):
        missing = missing_packages(refresh=True)
        if self._proc.returncode != 0 or missing:
            self.report({"ERROR"}, f"pip failed (exit code {self._proc.returncode}); still missing: "
                                   f"{', '.join(missing) or 'nothing'}; log: {self._log_path}")
            return {"CANCELLED"}
        self.report({"INFO"}, "Dependencies installed")
        return {"FINISHED"}


classes = (PHOTOHEAD_AP_preferences, PHOTOHEAD_OT_check_dependencies, PHOTOHEAD_OT_install_dependencies)
