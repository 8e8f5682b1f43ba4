"""bench_detail_real's dev-photo order: a seeded sample, or the most open mouths first."""
import numpy as np
import pytest

from benchmarks.bench_detail_real import dev_order, mouth_opening


def _face(gap: float) -> np.ndarray:
    lm = np.zeros((68, 2))
    lm[36], lm[45] = [0.0, 0.0], [50.0, 0.0]  # inter-ocular 50 px
    lm[62], lm[66] = [25.0, 60.0], [25.0, 60.0 + gap]
    return lm


def test_expressive_order_takes_the_widest_mouths_first():
    names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    lms = {"a.jpg": _face(5.0), "b.jpg": _face(20.0), "c.jpg": _face(0.0), "d.jpg": _face(20.0)}
    assert mouth_opening(lms["b.jpg"]) == pytest.approx(0.4) and mouth_opening(lms["c.jpg"]) == 0.0
    assert [names[k] for k in dev_order(names, lms, "expressive", seed=0)] == ["b.jpg", "d.jpg", "a.jpg", "c.jpg"]
    random = dev_order(names, lms, "random", seed=3)
    assert sorted(random) == [0, 1, 2, 3] and random == dev_order(names, lms, "random", seed=3)
    with pytest.raises(ValueError, match="unknown dev order"):
        dev_order(names, lms, "smiles", seed=0)
