"""Trust evidence and warnings from a fit's own numbers (backend.trust)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from backend.trust import TrustSettings, assess, view_evidence


def _layout() -> np.ndarray:
    pts = np.random.default_rng(0).uniform(0, 100, size=(68, 2))
    pts[36], pts[45] = [30.0, 40.0], [70.0, 40.0]  # outer eye corners 40 px apart
    return pts


def test_a_fit_that_matches_its_landmarks_is_trusted():
    det = _layout()
    ev = view_evidence("", det + 0.8, det, math.radians(20), mesh68=det - 1.0, presence=0.99)
    assert ev.landmark_residual == pytest.approx(0.8 * math.sqrt(2) / 40)
    assert ev.mesh_disagreement == pytest.approx(1.8 * math.sqrt(2) / 40)
    metrics, warn = assess([ev], np.full(100, 0.5), id_ball=1.7)
    assert warn == []
    assert metrics["trust_identity_norm"] == pytest.approx(0.5) and metrics["trust_yaw_deg"] == pytest.approx(20)
    assert metrics["trust_presence"] == 0.99


def test_each_kind_of_evidence_warns_once():
    det = _layout()
    pasted = det + [0.3 * 40, 0.0]  # the fit followed a layout 30 % of the eye distance off the mesh
    views = [
        view_evidence("left.jpg", det + [4.0, 0.0], det, math.radians(80)),  # residual 10 %, yaw 80°
        view_evidence("right.jpg", pasted, pasted, 0.0, mesh68=det, presence=0.5),
    ]
    metrics, warn = assess(views, np.full(100, 1.7), id_ball=1.7)
    text = "\n".join(warn)
    assert len(warn) == 5, warn
    assert "left.jpg: the fitted face misses its landmarks by 10 %" in text
    assert "left.jpg: the head is turned 80°" in text
    assert "right.jpg: the fitted face is 30 % of the eye distance away from Face Mesh" in text
    assert "right.jpg: Face Mesh is unsure" in text
    assert "identity is at the edge" in text
    assert metrics["trust_landmark_residual"] == pytest.approx(0.1)
    assert metrics["trust_mesh_disagreement"] == pytest.approx(0.3)
    assert "trust_presence" in metrics
    _, none = assess(views, np.full(100, 1.7), id_ball=1.7,
                     settings=TrustSettings(max_landmark_residual=1, max_mesh_disagreement=1, min_presence=0,
                                            max_yaw_deg=90, id_ball_fraction=2))
    assert none == []
