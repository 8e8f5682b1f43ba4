"""Issue 29, item 2: the evaluation suites run the trained networks (``--mode predict|hybrid
--checkpoints DIR``), and a validation hook runs them during training, logs them and keeps
best.pt by a declared metric. Tiny networks trained for a few steps on synthetic faces."""
from __future__ import annotations

import json
import math
import shutil

import pytest

from test_training import _tiny


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, face_model):
    from training.coarse import run

    root = tmp_path_factory.mktemp("tiny")
    res = run(_tiny(root / "coarse", **{"loop.steps": 2, "loop.ckpt_every": 2, "loop.image_every": 0}))
    folder = root / "ckpt"
    folder.mkdir()
    shutil.copy(res.last_checkpoint, folder / "coarse.pt")
    return folder


@pytest.mark.slow
def test_evaluate_synthetic_runs_predict_mode_with_checkpoints(tmp_path, tiny_ckpt):
    from backend.cli import main

    out = tmp_path / "eval"
    assert main(["evaluate", "synthetic", "--n", "1", "--quality", "draft", "--threads", "1", "--mode", "predict",
                 "--checkpoints", str(tiny_ckpt), "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    s = res["summary"]
    assert s["mode"] == "predict" and res["config"]["checkpoints"] == str(tiny_ckpt) and s["reconstructed"] == 1
    assert 0 < s["vertex_err_mean_mm"] < 50 and math.isfinite(s["lm_err_px224_mean"])


def test_evaluate_refuses_network_modes_without_checkpoints_before_work(tmp_path, capsys):
    from backend.cli import main

    for extra in ([], ["--checkpoints", str(tmp_path / "none")]):
        assert main(["evaluate", "synthetic", "--n", "1", "--mode", "hybrid", "--out", str(tmp_path / "o"), *extra]) == 2
        assert "coarse.pt" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_validation_hook_keeps_best_by_the_declared_metric(tmp_path, face_model, monkeypatch):
    import training.validation as val_mod
    from backend.checkpoint import load_checkpoint
    from training.coarse import run
    from training.config import ConfigError

    # the declared metric goes down, then up: best.pt must stay at the step with the lowest value
    values, seen = iter([5.0, 3.0, 4.0]), []

    def scripted(self, step, model):
        seen.append((step, model.training))
        return {"synthetic/vertex_err_mean_mm": next(values), "synthetic/faces": 1.0}

    monkeypatch.setattr(val_mod.SuiteValidation, "__call__", scripted)
    ev = {"eval.every": 1, "loop.ckpt_every": 3, "loop.image_every": 0}
    res = run(_tiny(tmp_path / "run", **{"loop.steps": 3, **ev}))
    assert [s for s, _ in seen] == [1, 2, 3]
    assert [s for s, v in res.val_history if "synthetic/faces" in v] == [1, 2, 3]
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["step"] == 2 and best["model_card"]["best"] == {"metric": "synthetic/vertex_err_mean_mm",
                                                                "value": 3.0, "step": 2}
    assert load_checkpoint(tmp_path / "run" / "last.pt")["extra"]["best"]["step"] == 2  # kept for a resume
    with pytest.raises(ConfigError, match="eval.metric"):
        run(_tiny(tmp_path / "bad", **{**ev, "eval.metric": "landmarks/nme_io_mean_%"}))
    with pytest.raises(ConfigError, match="not found"):
        run(_tiny(tmp_path / "bad", **{**ev, "eval.landmarks": str(tmp_path / "nowhere")}))
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_validation_hook_runs_the_synthetic_and_landmark_suites(tmp_path, face_model, faces_dev):
    from evaluation.readers import read_landmarks_json
    from training.coarse import run

    marks = tmp_path / "marks"  # two annotated dev photos (read in place)
    marks.mkdir()
    names = sorted(p.name for p in (faces_dev / "images").glob("*.jpg"))[:2]
    for name in names:
        (marks / name).symlink_to(faces_dev / "images" / name)
    pts = read_landmarks_json(faces_dev / "landmarks.json")
    (marks / "landmarks.json").write_text(json.dumps({n: pts[n].tolist() for n in names}))
    res = run(_tiny(tmp_path / "run", **{"loop.steps": 1, "eval.every": 1, "eval.synthetic_n": 1,
                                         "eval.landmarks": str(marks), "eval.landmarks_n": 1, "loop.image_every": 0}))
    (step, values), = [(s, v) for s, v in res.val_history if "synthetic/reconstructed" in v]
    assert step == 1 and values["synthetic/reconstructed"] == 1 and values["landmarks/photos"] == 1
    assert 0 < values["synthetic/vertex_err_mean_mm"] < 50 and math.isfinite(values["landmarks/nme_io_mean_%"])
    assert (tmp_path / "run" / "best.pt").exists() and (tmp_path / "run" / "eval_ckpt" / "coarse.pt").exists()
