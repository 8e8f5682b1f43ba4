"""Issue 29: the fit / predict / hybrid comparison (``benchmarks.bench_modes``), its generated
docs tables, and ``training/gpu_check.sh``'s argument checks."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmarks import bench_modes, doc_tables

ROOT = Path(__file__).resolve().parents[1]


def test_scaled_schedule_scales_every_stage():
    from backend.preset import resolve_preset

    base = resolve_preset("default").coarse  # 150 landmark steps, 60 at 112², 20 at 224²
    assert base.landmark_steps == 150 and base.photo_schedule == ((112, 60), (224, 20))
    half = bench_modes.scaled_schedule(base, 0.5)
    assert half.landmark_steps == 75 and half.photo_schedule == ((112, 30), (224, 10))
    tiny = bench_modes.scaled_schedule(base, 0.001)
    assert tiny.landmark_steps == 1 and tiny.photo_schedule == ((112, 1), (224, 1))


def test_steps_to_reach_interpolates_the_fit_curve():
    steps, errs = [0, 100, 200], [4.0, 2.0, 1.0]
    assert doc_tables._steps_to_reach(steps, errs, 3.0) == pytest.approx(50.0)
    assert doc_tables._steps_to_reach(steps, errs, 1.5) == pytest.approx(150.0)
    assert doc_tables._steps_to_reach(steps, errs, 5.0) == 0.0  # the start is already as good
    assert doc_tables._steps_to_reach(steps, errs, 0.5) is None  # fit never gets there


def _doc() -> dict:
    row = lambda mode, quality, v: {  # noqa: E731
        "mode": mode, "quality": quality,
        "synthetic": {"vertex_err_mean_mm": v, "vertex_err_narrow_face_mean_mm": v - 0.5, "nme_interocular_mean_%": 1.0,
                      "cpu_s_per_face": 7.5},
        "landmarks": {"nme_io_mean_%": 3.25, "cpu_s_per_photo": 8.0, "detector_nme_io_mean_%": 3.0}}
    return {"created_utc": "2026-12-04T22:00:00", "machine": {"cpu_count": 2}, "checkpoints": "test", "synthetic_n": 2,
            "landmarks_n": 2, "mean_face": {"vertex_err_mean_mm": 4.28, "vertex_err_narrow_face_mean_mm": 3.6},
            "rows": [row("fit", "default", 1.63), row("predict", "default", 3.9), row("hybrid", "default", 1.7)],
            "curve": {"faces": 2, "scales": [0.5, 1.0], "steps": {"0.5": 125, "1.0": 250},
                      "vertex_err_mean_mm": {"fit": {"0.0": 4.0, "0.5": 2.0, "1.0": 1.0},
                                             "hybrid": {"0.0": 3.0, "0.5": 1.5, "1.0": 0.9}},
                      "cpu_s_per_face": {"fit": {"0.5": 3.0, "1.0": 6.0}, "hybrid": {"0.5": 3.1, "1.0": 6.1}}}}


def test_modes_table_has_one_row_per_mode_and_the_mean_face():
    lines = doc_tables.modes(_doc())
    body = [ln for ln in lines if ln.startswith("| ") and "mode |" not in ln]
    assert [ln.split(" | ")[0] for ln in body] == ["| mean face (no reconstruction)", "| fit", "| predict", "| hybrid"]
    assert "| 4.28 | 3.6 |" in body[0] and "| 1.63 | 1.13 | 1 | 7.5 | 3.25 | 8 |" in body[1]
    assert "dlib's own NME on the same photos (the fit's input): 3 %" in lines[0]


def test_hybrid_curve_says_how_many_fit_steps_the_start_saves():
    lines = doc_tables.hybrid_curve(_doc())
    assert "| start (no fit step) | 0 | 4 | – | 3 | – |" in lines
    # hybrid at 0.5× (1.5 mm): fit reaches 1.5 mm half way from 125 (2.0 mm) to 250 (1.0 mm) steps
    assert lines[-1] == ("hybrid: 0.5× (125 steps): fit needs 188 steps for the same error; 1× (250 steps): fit needs "
                         "more than the default schedule.")


def test_gpu_check_refuses_bad_arguments_before_any_work(tmp_path):
    script = ROOT / "training" / "gpu_check.sh"
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr
    r = subprocess.run(["bash", str(script), "pack", str(tmp_path / "missing")], capture_output=True, text=True)
    assert r.returncode == 2 and "is not a folder" in r.stderr
