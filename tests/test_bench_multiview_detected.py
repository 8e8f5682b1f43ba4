"""bench_multiview_detected's summary and its generated docs table (no fitting)."""
from __future__ import annotations

import pytest

from benchmarks import doc_tables
from benchmarks.bench_multiview_detected import box_nme, summarize


def _head(mean: float, singles: tuple[float, float, float], joint: float, unweighted: float, nme) -> dict:
    runs = {"single_-50": {"vertex_error_mm": singles[0]}, "single_0": {"vertex_error_mm": singles[1]},
            "single_+50": {"vertex_error_mm": singles[2]}, "joint": {"vertex_error_mm": joint},
            "joint_yaw16": {"vertex_error_mm": 0.5 * (joint + unweighted)}, "joint_unweighted": {"vertex_error_mm": unweighted}}
    return {"mean_face_mm": mean, "detectors": {"auto": {"nme": nme, "runs": runs}}}


def test_summary_counts_wins_over_the_best_single_view_and_lost_views():
    heads = [_head(3.0, (4.0, 2.0, 5.0), 1.5, 2.5, [0.05, 0.03, 0.12]),
             _head(2.0, (3.0, 2.5, 2.2), 2.4, 2.1, [None, 0.02, 0.04])]
    s = summarize(heads, ("auto",))["auto"]
    assert s["best_single_mm"] == pytest.approx((2.0 + 2.2) / 2)
    assert s["vertex_error_mm"]["joint"] == pytest.approx(1.95)
    assert (s["joint_le_best_single"], s["joint_unweighted_le_best_single"]) == (1, 1)
    assert s["lost_views"] == [1, 0, 1]  # no face at −50° in head 2, NME 12 % at +50° in head 1
    assert s["nme_mean_%"][1] == pytest.approx(2.5)
    doc = {"summary": {"auto": s}, "heads": heads, "seed": 0, "quality": "draft", "created_utc": "2026-12-04T23:00"}
    lines = doc_tables.multiview_detected(doc)
    row = next(line for line in lines if line.startswith("| auto"))
    assert s["vertex_error_mm"]["joint_yaw16"] == pytest.approx((2.0 + 2.25) / 2)  # heads' (1.5+2.5)/2, (2.4+2.1)/2
    assert "| 1.95 |" in row and "1 of 2 (unweighted 1, yaw term 16 1)" in row and "| 1 / 0 / 1 |" in row


def test_box_nme_is_the_mean_error_over_the_box_size():
    import numpy as np

    truth = np.array([[0.0, 0.0], [40.0, 10.0]] * 34)
    assert box_nme(truth + [2.0, 0.0], truth) == pytest.approx(2.0 / 20.0)
