"""Panel/list/preferences draw code against a recording layout checked with UILayout's RNA."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from .conftest import PACKAGE  # noqa: E402

_FUNCS = bpy.types.UILayout.bl_rna.functions
_SUBLAYOUTS = {"row", "column", "box", "split", "column_flow", "grid_flow"}


class RecordingLayout:
    """Stands in for UILayout: checks method names and keyword names against the RNA."""

    def __init__(self, calls: list):
        self.__dict__["calls"] = calls

    def __setattr__(self, name, value):
        assert name in bpy.types.UILayout.bl_rna.properties, f"UILayout has no property {name!r}"

    def __getattr__(self, name):
        assert name in _FUNCS, f"UILayout has no function {name!r}"
        params = {p.identifier for p in _FUNCS[name].parameters}

        def call(*args, **kwargs):
            unknown = set(kwargs) - params
            assert not unknown, f"UILayout.{name}() has no parameters {unknown}"
            self.calls.append((name, args, kwargs))
            return RecordingLayout(self.calls) if name in _SUBLAYOUTS else SimpleNamespace()

        return call


def _draw_panel(addon) -> list:
    calls: list = []
    addon.ui.PHOTOHEAD_PT_main.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
    return calls


def test_panel_draw_idle_and_running(addon, photo_path):
    settings = bpy.context.scene.photohead
    settings.photos.add().filepath = str(photo_path)
    calls = _draw_panel(addon)
    ops = [c[1][0] for c in calls if c[0] == "operator"]
    assert "photohead.reconstruct" in ops and "photohead.cancel" not in ops
    labels = [c[2].get("text", "") for c in calls if c[0] == "label"]
    assert any("checkpoint folder" in t for t in labels)  # predict/hybrid greyed out with the reason
    addon.operators._Runtime.job = SimpleNamespace()
    try:
        settings.progress, settings.status = 0.4, "fitting"
        calls = _draw_panel(addon)
    finally:
        addon.operators._Runtime.job = None
    ops = [c[1][0] for c in calls if c[0] == "operator"]
    assert "photohead.cancel" in ops and "photohead.reconstruct" not in ops
    progress = [c[2] for c in calls if c[0] == "progress"]
    assert progress and progress[0]["factor"] == pytest.approx(0.4) and progress[0]["text"] == "fitting"
    settings.status, settings.warnings = "Reconstructed Photohead", "head turned 80°\nidentity at its bound"
    try:
        calls = _draw_panel(addon)
    finally:
        settings.warnings = ""
    warned = [c[2]["text"] for c in calls if c[0] == "label" and c[2].get("icon") == "ERROR"]
    assert warned == ["head turned 80°", "identity at its bound"]  # one line each, with the warning icon


def test_list_and_preferences_draw(addon, photo_path):
    settings = bpy.context.scene.photohead
    item = settings.photos.add()
    item.filepath = str(photo_path)
    calls: list = []
    layout = RecordingLayout(calls)
    addon.ui.PHOTOHEAD_UL_photos.draw_item(None, bpy.context, layout, settings, item, 0, settings, "active_photo", 0)
    assert any(c[0] == "label" and c[2].get("text") == "grace.png" for c in calls)
    prefs = bpy.context.preferences.addons[PACKAGE].preferences
    calls.clear()
    addon.preferences.PHOTOHEAD_AP_preferences.draw(SimpleNamespace(layout=layout, **{
        k: getattr(prefs, k) for k in ("model_dir", "checkpoints_dir")}), bpy.context)
    assert any("All required Python packages found" in c[2].get("text", "") for c in calls if c[0] == "label")


def test_hybrid_mode_offers_tuning_the_unet(addon, photo_path, tmp_path):
    """The Tune U-Net switch shows in hybrid mode only (with a usable checkpoint folder) and
    reaches the job's ReconstructConfig fields."""
    from backend.reconstruct import ReconstructConfig

    (tmp_path / "coarse.pt").write_bytes(b"")
    prefs = bpy.context.preferences.addons[PACKAGE].preferences
    settings = bpy.context.scene.photohead
    settings.photos.add().filepath = str(photo_path)
    prefs.checkpoints_dir = str(tmp_path)
    try:
        def shows_switch() -> bool:
            return any(c[0] == "prop" and c[1][1:] == ("tune_unet",) for c in _draw_panel(addon))

        settings.mode, settings.tune_unet = "hybrid", True
        assert shows_switch()  # greyed out, with the reason, and refused at start without detail.pt
        labels = [c[2].get("text", "") for c in _draw_panel(addon) if c[0] == "label"]
        assert any("needs detail.pt" in t for t in labels)
        with pytest.raises(addon.operators.JobStartError, match="detail.pt"):
            addon.operators.job_config(settings, prefs)
        (tmp_path / "detail.pt").write_bytes(b"")
        assert not any("needs detail.pt" in c[2].get("text", "") for c in _draw_panel(addon) if c[0] == "label")
        for mode, shown in (("fit", False), ("predict", False), ("hybrid", True)):
            settings.mode = mode
            assert shows_switch() == shown, mode
            config = addon.operators.job_config(settings, prefs)
            assert config.get("tune_unet", False) == shown, mode
            assert ReconstructConfig(**config).tune_unet == shown
        settings.tune_unet = False
        assert "tune_unet" not in addon.operators.job_config(settings, prefs)
    finally:
        prefs.checkpoints_dir = ""


def test_landmark_detector_choice_reaches_the_job(addon, photo_path, tmp_path):
    """The panel's Landmarks choice (and the preferences' face-alignment weights folder, only when
    that detector is chosen) become the job's ReconstructConfig fields."""
    from backend.reconstruct import ReconstructConfig

    prefs = bpy.context.preferences.addons[PACKAGE].preferences
    settings = bpy.context.scene.photohead
    settings.photos.add().filepath = str(photo_path)
    assert any(c[0] == "prop" and c[1][1:] == ("detector",) for c in _draw_panel(addon))
    assert settings.detector == "auto"  # the default: dlib checked by Face Mesh
    config = addon.operators.job_config(settings, prefs)
    assert config["detector"] == "auto" and "detector_weights" not in config
    prefs.fa_weights_dir = str(tmp_path)
    try:
        assert "detector_weights" not in addon.operators.job_config(settings, prefs)  # auto ignores the folder
        settings.detector = "face_alignment"
        config = addon.operators.job_config(settings, prefs)
        made = ReconstructConfig(**config)
        assert made.detector == "face_alignment" and made.detector_weights == str(tmp_path)
    finally:
        prefs.fa_weights_dir = ""
        settings.detector = "auto"
