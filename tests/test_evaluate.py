"""Evaluation harness: reports, suites with injected reconstructions, synthetic data, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from backend.cli import main
from backend.errors import NoFaceError
from backend.evaluate import metrics as M
from backend.evaluate.report import write_report
from backend.evaluate.suites import run_landmarks, run_scans, run_synthetic, run_timing
from backend.evaluate.synthetic import SyntheticSettings, make_faces
from backend.export import save_head, vertex_normals_np
from backend.head import Head, ViewResult


def make_head(model, vertices, landmarks68=None, pose=None, detected68=None) -> Head:
    lm = np.zeros((68, 2)) if landmarks68 is None else landmarks68
    view = ViewResult(name="x", image_size=(64, 64), pose=np.zeros(7) if pose is None else pose, sh=np.zeros(27),
                      exp=np.zeros(model.n_exp), landmarks68=lm, detected68=lm if detected68 is None else detected68)
    return Head(model_name=model.name, vertices=np.asarray(vertices, np.float32), neutral=model.mean.numpy(),
                faces=model.faces.numpy(), uv=model.uv.numpy(), faces_uv=model.faces_uv.numpy(),
                id_coeffs=np.zeros(model.n_id), exp_coeffs=np.zeros(model.n_exp), exp_names=list(model.exp_names),
                uv_tiles=model.uv_tiles, views=[view])


def test_write_report(tmp_path):
    results = {"suite": "x", "summary": {"nme_%": 3.25, "n": 4, "bad": float("nan")},
               "tables": {"bins": [{"bin": "0-30", "n": 2, "mean": 0.5}, {"bin": "a|b", "n": 1}]},
               "plots": {"hist": {"kind": "hist", "values": np.array([1.0, 2.0, np.nan])},
                         "cdf": {"kind": "cdf", "values": [0.1, 0.3]}},
               "per_item": [{"v": np.float32(1.5)}], "images": {"ex": np.full((10, 20, 3), 7, np.uint8)}}
    out = write_report(results, tmp_path / "r", "Test report")
    doc = json.loads(out["json"].read_text())
    assert doc["summary"] == {"nme_%": 3.25, "n": 4, "bad": None} and doc["per_item"] == [{"v": 1.5}]
    assert "images" not in doc and np.asarray(Image.open(out["ex"]))[0, 0, 0] == 7
    md = out["markdown"].read_text()
    assert md.startswith("# Test report") and "| nme_% | 3.25 |" in md
    assert "| 0-30 | 2 | 0.5 |" in md and "a\\|b" in md and "![hist](hist.png)" in md
    for name in ("hist", "cdf"):
        img = np.asarray(Image.open(out[name]))
        assert img.shape[0] > 100 and img.std() > 0


def test_synthetic_faces(face_model):
    settings = SyntheticSettings(size=96, texture_size=32, detail=True)
    a = make_faces(face_model, 2, seed=3, settings=settings)
    b = make_faces(face_model, 2, seed=3, settings=settings)
    np.testing.assert_array_equal(a[0].image, b[0].image)  # deterministic
    for face in a:
        assert face.image.shape == (96, 96, 3) and face.image.dtype == np.uint8
        assert 0.15 < face.mask.mean() < 0.9
        assert abs(face.yaw_deg) <= 40.0 and face.displacement.shape == (32, 64)
        # landmarks inside the image and on covered pixels
        xy = np.rint(face.landmarks68).astype(int)
        assert (xy >= 0).all() and (xy < 96).all()
        assert face.mask[xy[:, 1], xy[:, 0]].mean() > 0.9
        assert np.degrees(face.pose[2]) == pytest.approx(face.yaw_deg, abs=1e-4)
        # the expression and the detail are the only differences from the identity-only shape
        np.testing.assert_allclose(face.neutral, face_model(torch.from_numpy(face.id)[None])[0].numpy(), atol=1e-4)
        assert np.abs(face.vertices - face.neutral).max() > 1.0
        # the silhouette contour differs from the fixed jaw vertices only on the jaw, and lies outward
        np.testing.assert_array_equal(face.contour68[17:], face.landmarks68[17:])
        assert face.contour68[0, 0] <= face.landmarks68[0, 0] + 1e-6 and face.contour68[16, 0] >= face.landmarks68[16, 0] - 1e-6


def test_run_synthetic_with_oracle(face_model):
    settings = SyntheticSettings(size=96, texture_size=32)
    truth = {f.image.tobytes(): f for f in make_faces(face_model, 3, seed=7, settings=settings)}

    def oracle(images, config):
        face = truth[images[0].tobytes()]
        if face is list(truth.values())[2]:
            raise NoFaceError("no face found")
        head = make_head(face_model, face.vertices + 2.0, face.landmarks68, face.pose)
        head.neutral = face.neutral * 1.1
        return head

    res = run_synthetic(n=3, seed=7, model=face_model, settings=settings, reconstruct_fn=oracle)
    s = res["summary"]
    assert s["reconstructed"] == 2 and s["faces"] == 3
    assert s["vertex_err_mean_mm"] < 1e-3 and s["nme_interocular_mean_%"] < 1e-6 and s["yaw_err_mean_deg"] < 1e-4
    assert "error" in res["per_item"][2] and s["neutral_err_mean_mm"] < 1e-3

    def noisy(images, config):
        face = truth[images[0].tobytes()]
        return make_head(face_model, face.vertices + np.array([0.0, 0.0, 1.0]) * (face.vertices[:, :1] > 0),
                         face.landmarks68 + 1.0, face.pose)

    s2 = run_synthetic(n=3, seed=7, model=face_model, settings=settings, reconstruct_fn=noisy)["summary"]
    assert 0.2 < s2["vertex_err_mean_mm"] < 1.0 and s2["nme_interocular_mean_%"] > 0.5


def test_run_landmarks(tmp_path):
    rng = np.random.default_rng(0)
    entries = {}
    for i in range(4):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / f"f{i}.png")
        lm = rng.uniform(0, 100, (68, 2))
        lm[36], lm[45] = [10.0, 40.0], [60.0, 40.0]  # inter-ocular 50 px
        entries[f"f{i}.png"] = {"landmarks": lm.tolist()}
    (tmp_path / "landmarks.json").write_text(json.dumps({"images": entries}))
    offsets = {"f0.png": 1.0, "f1.png": 2.0, "f2.png": 6.0}  # → NME 2 %, 4 %, 12 %; f3: no face

    class FakeModel:
        name, n_exp = "fake", 0

    def fake(images, config):
        name = images[0].rsplit("/", 1)[-1]
        if name not in offsets:
            raise NoFaceError(f"{name}: no face")
        gt = np.asarray(entries[name]["landmarks"])
        pose = np.array([1.0, 0.0, np.radians(45.0 if name == "f2.png" else 10.0), 0, 0, 0, 0])
        view = ViewResult(name=name, image_size=(32, 32), pose=pose, sh=np.zeros(27), exp=np.zeros(0),
                          landmarks68=gt + np.array([0.0, offsets[name]]), detected68=gt)
        return Head(model_name="fake", vertices=np.zeros((3, 3)), neutral=np.zeros((3, 3)),
                    faces=np.zeros((1, 3), int), uv=np.zeros((3, 2)), faces_uv=np.zeros((1, 3), int),
                    id_coeffs=np.zeros(0), exp_coeffs=np.zeros(0), exp_names=[], views=[view])

    res = run_landmarks(tmp_path, reconstruct_fn=fake)
    s = res["summary"]
    assert s["photos"] == 4 and s["no_face"] == 1
    assert s["nme_io_mean_%"] == pytest.approx(6.0)
    assert s["failure_rate_io_%"] == pytest.approx(50.0)  # f2 (12 %) and f3 (no face)
    assert s["detector_nme_io_mean_%"] == pytest.approx(0.0)
    bins = res["tables"]["NME (bbox) by fitted |yaw|"]
    assert [b["n"] for b in bins] == [2, 1, 0, 3]
    assert res["images"]["examples"].shape == (256, 3 * 256, 3)  # three photos with a face
    assert run_landmarks(tmp_path, n=1, reconstruct_fn=fake)["summary"]["photos"] == 1


@pytest.fixture(scope="module")
def scans_dir(face_model, tmp_path_factory):
    """Two synthetic scans of the mean head under known similarities: (a) scale 1.1 and every
    vertex offset 1 mm along its normal with a random sign (a uniform outward offset would be
    partly absorbed by the ICP's scale/translation; a zero-mean one cannot be), (b) scale 1.25
    without offset. Predictions: the mean head."""
    root = tmp_path_factory.mktemp("scans")
    verts = face_model.mean.numpy().astype(np.float64)
    faces = face_model.faces.numpy()
    normals = vertex_normals_np(verts, faces).astype(np.float64)
    lm_idx = face_model.landmarks68.numpy()
    sign = np.random.default_rng(0).choice([-1.0, 1.0], len(verts))[:, None]
    cases = {"a_offset": (1.1, verts + sign * normals), "b_scaled": (1.25, verts)}
    R = np.array([[0.98, -0.17, 0.0], [0.17, 0.98, 0.0], [0.0, 0.0, 1.0]])
    R, _ = np.linalg.qr(R)
    R *= np.sign(np.diag(R))  # proper rotation close to the one above
    for name, (s, shape) in cases.items():
        sub = root / name
        sub.mkdir()
        scan = M.apply_similarity(shape, s, R, np.array([5.0, -20.0, 300.0]))
        text = "".join(f"v {x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in scan)
        text += "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces)
        (sub / "scan.obj").write_text(text)
        (sub / "scan.json").write_text(json.dumps({"landmarks68": scan[lm_idx].tolist()}))
        save_head(make_head(face_model, verts), sub / "head.npz")
    return root


def test_run_scans_known_answers(scans_dir, face_model):
    res = run_scans(scans_dir, model=face_model)
    item = res["per_item"][0]
    assert item["subject"] == "a_offset"
    assert item["p2plane_median_mm"] == pytest.approx(1.0, abs=0.05)
    assert item["p2plane_mean_mm"] == pytest.approx(1.0, abs=0.1)  # inward points at lips/eyelids see the far side
    assert item["p2p_median_mm"] == pytest.approx(1.0, abs=0.05)
    assert item["icp_scale"] == pytest.approx(1 / 1.1, rel=5e-3)
    scaled = res["per_item"][1]
    assert scaled["subject"] == "b_scaled"
    assert scaled["icp_scale"] == pytest.approx(1 / 1.25, rel=1e-3)
    assert scaled["p2plane_mean_mm"] < 0.02 and scaled["p2p_mean_mm"] < 0.02


def test_run_timing_and_cli(tmp_path, scans_dir, face_model):
    results = tmp_path / "results"
    results.mkdir()
    doc = {"name": "render", "created_utc": "2026-01-01T00:00:00+00:00",
           "machine": {"processor": "x86_64", "cpu_count": 2, "torch": "2.13"},
           "cases": {"256px": {"median_s": 0.5, "min_s": 0.4, "mean_s": 0.55, "max_s": 0.7, "repeats": 5},
                     "nested": {"cuda": {"median_s": 0.01, "repeats": 3}}}}
    (results / "render.json").write_text(json.dumps(doc))
    res = run_timing(results)
    rows = res["tables"]["timings (s)"]
    assert [(r["benchmark"], r["case"], r["median_s"]) for r in rows] == [
        ("render", "cases/256px", 0.5), ("render", "cases/nested/cuda", 0.01)]
    assert res["tables"]["machines"][0]["cpu_count"] == 2
    out = tmp_path / "report"
    assert main(["evaluate", "timing", "--results", str(results), "--out", str(out)]) == 0
    assert "cases/nested/cuda" in (out / "report.md").read_text()
    assert main(["evaluate", "scans", str(scans_dir), "--n", "1", "--out", str(tmp_path / "s")]) == 0
    got = json.loads((tmp_path / "s" / "results.json").read_text())
    assert got["summary"]["p2plane_mean_mm"] == pytest.approx(1.0, abs=0.1)
    assert (tmp_path / "s" / "p2plane.png").exists()
    rigid = run_scans(scans_dir, n=1, with_scale=False, model=face_model)["per_item"][0]
    assert rigid["icp_scale"] == 1.0 and rigid["p2plane_mean_mm"] > 1.2  # a scale error ICP may not remove
