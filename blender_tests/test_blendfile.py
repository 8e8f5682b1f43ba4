"""``python -m addon.blendfile OUT_DIR`` (the path behind ``photohead reconstruct --blend``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from .conftest import ROOT  # noqa: E402


def test_blendfile_cli_writes_head_blend(addon, fake_head, tmp_path):
    from backend.export import save_head

    save_head(fake_head, tmp_path / "head.npz")
    proc = subprocess.run([sys.executable, "-m", "addon.blendfile", str(tmp_path), "--no-pack"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-2000:]
    blend = tmp_path / "head.blend"
    assert blend.is_file() and not list(tmp_path.glob(".*.tmp.blend"))
    assert (tmp_path / "photohead_albedo.png").is_file()  # --no-pack: textures next to the .blend
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    heads = [o for o in bpy.data.objects if "photohead" in o.keys()]
    assert len(heads) == 1 and len(heads[0].data.vertices) == fake_head.vertices.shape[0]
    assert json.loads(heads[0]["photohead"])["quality"] == "draft"
    albedo = next(n.image for n in heads[0].data.materials[0].node_tree.nodes if n.label == "Albedo")
    assert albedo.packed_file is None and tuple(albedo.size) == (64, 32)


def test_blendfile_cli_reports_missing_head(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "addon.blendfile", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "head.npz" in proc.stderr
