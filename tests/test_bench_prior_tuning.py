"""benchmarks.bench_prior_tuning: its settings parser, the patched preset and the table (no fits)."""
from __future__ import annotations

import json

from backend.preset import PRESETS
from benchmarks.bench_prior_tuning import main, parse_spec, patched_preset, table


def test_spec_and_patched_preset():
    name, over = parse_spec("p1=prior_scale:1.0,w_exp:5,id_ball:None,pixel:2.6")
    assert name == "p1" and over == {"prior_scale": 1.0, "w_exp": 5.0, "id_ball": None, "pixel": 2.6}
    preset = patched_preset("default", over)
    coarse = preset.coarse
    assert coarse.prior_scale == 1.0 and coarse.id_ball is None
    assert coarse.weights.w_exp == 5.0 and coarse.weights.pixel == 2.6 and coarse.weights.landmark == 1.0
    assert coarse.photo_schedule == PRESETS["default"].coarse.photo_schedule and preset.detail == PRESETS["default"].detail
    assert parse_spec("current=") == ("current", {})


def test_table_and_bad_fields(tmp_path, capsys):
    run = {"over": {"prior_scale": 1.0}, "summary": {
        "faces": 10, "reconstructed": 9, "vertex_err_mean_mm": 4.5, "mean_face_err_mean_mm": 4.0,
        "fit_over_mean_face": 1.125, "neutral_err_mean_mm": 3.2, "mean_face_neutral_err_mean_mm": 3.4,
        "lm_err_px224_mean": 3.9, "detector_err_px224_mean": 4.5}}
    text = table({"runs": {"detector_seed100_n10": {"p1": run}}})
    assert "| p1 | prior_scale 1 | 4.50 | 4.00 | 1.12 | 3.20 / 3.40 | 3.90 | 4.50 | 9/10 |" in text
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"runs": {"s": {"p1": run}}}))
    assert main(["--table", str(path)]) == 0 and "**s**" in capsys.readouterr().out
    assert main(["x=prior:1"]) == 2 and "prior" in capsys.readouterr().err
