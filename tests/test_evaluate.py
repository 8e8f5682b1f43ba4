"""Evaluation harness: reports, suites with injected reconstructions, synthetic data, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from backend.cli import main
from backend.errors import NoFaceError
from evaluation import metrics as M
from evaluation.report import write_report
from evaluation.results_page import render_page, write_page
from evaluation.suites import crop_scale, given_landmarks, run_landmarks, run_scans, run_synthetic, run_timing
from evaluation.synthetic import SyntheticSettings, make_faces, write_known_answer_scans
from backend.head import Head, ViewResult


def make_head(model, vertices, landmarks68=None, pose=None, detected68=None, crop_scale_=2.0) -> Head:
    lm = np.zeros((68, 2)) if landmarks68 is None else landmarks68
    view = ViewResult(name="x", image_size=(64, 64), pose=np.zeros(7) if pose is None else pose, sh=np.zeros(27),
                      exp=np.zeros(model.n_exp), landmarks68=lm, detected68=lm if detected68 is None else detected68,
                      crop_from_image=np.array([[crop_scale_, 0.0, 3.0], [0.0, crop_scale_, -1.0]]))
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
        head = make_head(face_model, face.vertices + 2.0, face.contour68, face.pose)
        head.neutral = face.neutral * 1.1
        return head

    res = run_synthetic(n=3, seed=7, model=face_model, settings=settings, reconstruct_fn=oracle)
    s = res["summary"]
    assert s["reconstructed"] == 2 and s["faces"] == 3 and s["no_face"] == 1 and s["landmarks"] == "truth"
    assert s["vertex_err_mean_mm"] < 1e-3 and s["nme_interocular_mean_%"] < 1e-6 and s["yaw_err_mean_deg"] < 1e-4
    assert s["lm_err_px224_mean"] < 1e-9 and s["lm_err_px224_fixed_jaw_mean"] > 0.0  # the jaw conventions differ
    assert "error" in res["per_item"][2] and s["neutral_err_mean_mm"] < 1e-3
    mean_face = np.mean([M.vertex_error(face_model.mean.numpy(), f.vertices, face_model.face_vertex_mask.numpy())["mean"]
                         for f in list(truth.values())[:2]])
    assert s["mean_face_err_mean_mm"] == pytest.approx(mean_face) and s["mean_face_err_mean_mm"] > 1.0
    # the mean face on the same (reconstructed) faces, and the fit / mean face check
    assert s["mean_face_neutral_err_mean_mm"] > 0.5 and s["fit_over_mean_face"] < 1e-3 and s["fit_over_mean_face_met"]
    assert res["config"]["scene"] == "custom" and "mean face" in res["description"]

    def noisy(images, config):
        face = truth[images[0].tobytes()]
        return make_head(face_model, face.vertices + np.array([0.0, 0.0, 1.0]) * (face.vertices[:, :1] > 0),
                         face.contour68 + np.array([3.0, 4.0]), face.pose)  # 5 px in the photo = 10 px at 224²

    seen = []
    res2 = run_synthetic(n=3, seed=7, model=face_model, settings=settings, landmarks="detector", detector="auto",
                         reconstruct_fn=lambda images, config: seen.append(config.detector) or noisy(images, config))
    s2 = res2["summary"]
    assert seen == ["auto"] * 3 and res2["config"]["detector"] == "auto"
    assert 0.2 < s2["vertex_err_mean_mm"] < 1.0 and s2["nme_interocular_mean_%"] > 0.5
    assert s2["fit_over_mean_face"] == pytest.approx(s2["vertex_err_mean_mm"] / s2["mean_face_err_mean_mm"])
    assert s2["lm_err_px224_mean"] == pytest.approx(10.0) and s2["lm_err_px224_inner_mean"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="truth"):
        run_synthetic(n=1, model=face_model, settings=settings, reconstruct_fn=noisy, landmarks="oracle")


def test_given_landmarks_replace_the_detector():
    """Within ``given_landmarks`` the pipeline's own view preparation uses the given points."""
    from backend.prepare import prepare_view

    rng = np.random.default_rng(1)
    lm = np.stack([rng.uniform(60, 140, 68), rng.uniform(50, 150, 68)], -1)
    with given_landmarks(lm):
        view = prepare_view(np.zeros((200, 200, 3), np.uint8))
    np.testing.assert_allclose(view.detected68, lm)
    np.testing.assert_allclose(view.face_box, [*lm.min(0), *lm.max(0)])
    assert crop_scale(type("V", (), {"crop_from_image": view.crop_from_image})()) > 0.0


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
    # issue 6: fit vs detector, as a fraction of the inter-ocular distance (detected68 = gt here)
    assert s["fit_vs_detector_io_mean_%"] == pytest.approx(6.0) and s["fit_vs_detector_io_inner_mean_%"] == pytest.approx(6.0)
    regions = {r["region"]: r for r in res["tables"]["NME (inter-ocular) by region"]}
    assert regions["jaw (0-16)"]["fit_nme_io_%"] == pytest.approx(6.0) and regions["eyes (36-47)"]["detector_nme_io_%"] == 0
    bins = res["tables"]["NME (bbox) by fitted |yaw|"]
    assert [b["n"] for b in bins] == [2, 1, 0, 3]
    assert res["images"] == {}  # no photo overlays unless asked: research-only photos stay out of reports
    res = run_landmarks(tmp_path, reconstruct_fn=fake, examples=True)
    assert res["images"]["examples"].shape == (256, 3 * 256, 3)  # three photos with a face
    assert run_landmarks(tmp_path, n=1, reconstruct_fn=fake)["summary"]["photos"] == 1
    picked = run_landmarks(tmp_path, n=2, sample="random", seed=3, reconstruct_fn=fake)
    assert picked["summary"]["photos"] == 2
    assert [it["image"] for it in picked["per_item"]] == \
        [it["image"] for it in run_landmarks(tmp_path, n=2, sample="random", seed=3, reconstruct_fn=fake)["per_item"]]
    agg = run_landmarks(tmp_path, reconstruct_fn=fake, per_item=False)
    assert agg["per_item"] == [] and agg["summary"]["nme_io_mean_%"] == pytest.approx(6.0)
    assert agg["plots"]["nme_cdf"]["values"][:3] == pytest.approx([2.0, 4.0, 12.0])  # sorted, no photo order
    budget = run_landmarks(tmp_path, reconstruct_fn=fake, time_budget_s=0.0)
    assert budget["summary"]["photos"] == 0 and "Stopped after 0 of 4" in budget["description"]
    detectors = []
    recording = lambda images, config: detectors.append(config.detector) or fake(images, config)  # noqa: E731
    fan = run_landmarks(tmp_path, n=2, reconstruct_fn=recording, detector="face_alignment")
    assert detectors == ["face_alignment"] * 2 and fan["config"]["detector"] == "face_alignment"
    assert "detector's (face_alignment:" in fan["description"]


@pytest.fixture(scope="module")
def scans_dir(face_model, tmp_path_factory):
    """Two synthetic scans of the mean head with known answers (see write_known_answer_scans)."""
    root = tmp_path_factory.mktemp("scans")
    write_known_answer_scans(face_model, root)
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
    (results / "z_list.json").write_text(json.dumps({
        "name": "fit", "note": "loaded machine",
        "results": [{"case": "a", "threads": 2, "forward": {"median_s": 0.2, "repeats": 3}}],
        "cases": {"default_1view": {"wall_s": 10.5, "timings": {"detect_s": 1.0, "coarse_fit_s": 6.0, "total_s": 10.5}}}}))
    res = run_timing(results)
    rows = res["tables"]["timings (s)"]
    assert [(r["benchmark"], r["case"], r["median_s"]) for r in rows] == [
        ("render", "cases/256px", 0.5), ("render", "cases/nested/cuda", 0.01),
        ("fit", "results/a (2 threads)/forward", 0.2), ("fit", "cases/default_1view", 10.5)]
    assert rows[-1]["stages"] == "detect_s 1.00, coarse_fit_s 6.00" and res["tables"]["notes"][0]["note"] == "loaded machine"
    (results / "zz.json").write_text(json.dumps({"name": "fit_cuda", "cases": {"one": {"coarse_fit_s": 4.0, "loss": 2.0}},
                                                 "other": {"ratio": 0.9}}))
    rows = run_timing(results)["tables"]["timings (s)"]
    assert rows[-1] == {"benchmark": "fit_cuda", "case": "cases/one", "median_s": None, "repeats": 1,
                        "stages": "coarse_fit_s 4.00"} and len(rows) == 5
    assert res["tables"]["machines"][0]["cpu_count"] == 2
    out = tmp_path / "report"
    assert main(["evaluate", "timing", "--results", str(results), "--out", str(out)]) == 0
    assert "cases/nested/cuda" in (out / "report.md").read_text()
    assert main(["evaluate", "scans", str(tmp_path / "known"), "--known-answer", "--n", "1", "--threads", "1",
                 "--out", str(tmp_path / "s")]) == 0
    got = json.loads((tmp_path / "s" / "results.json").read_text())
    assert got["summary"]["p2plane_mean_mm"] == pytest.approx(1.0, abs=0.1)
    assert got["expected"]["a_offset: ICP scale"] == pytest.approx(1 / 1.1) and "Known-answer" in got["description"]
    assert (tmp_path / "s" / "p2plane.png").exists()
    rigid = run_scans(scans_dir, n=1, with_scale=False, model=face_model)["per_item"][0]
    assert rigid["icp_scale"] == 1.0 and rigid["p2plane_mean_mm"] > 1.2  # a scale error ICP may not remove


def _fake_results(root):
    """A small docs/results-like folder: synthetic and landmarks reports (scans, timing missing)."""
    machine = {"date_utc": "2026-01-02 03:04", "cpu_count": 2, "processor": "x86_64", "torch": "2.13", "torch_threads": 1}
    docs = {
        "synthetic": {"suite": "synthetic", "machine": machine,
                      "config": {"n": 3, "quality": "default", "seed": 0, "detail": False, "landmarks": "truth"},
                      "summary": {"faces": 3, "reconstructed": 3, "landmarks": "truth", "vertex_err_mean_mm": 1.234,
                                  "lm_err_px224_mean": 0.9, "nme_interocular_mean_%": None}},
        "landmarks": {"suite": "landmarks", "machine": machine,
                      "config": {"folder": "/data/faces_dev", "sample": "random", "quality": "default"},
                      "summary": {"photos": 5, "nme_io_mean_%": 4.5, "detector_nme_io_mean_%": 3.5,
                                  "fit_vs_detector_io_mean_%": 3.2, "fit_vs_detector_io_inner_mean_%": 2.1,
                                  "fit_vs_detector_target_%": 3.0}},
    }
    for suite, doc in docs.items():
        (root / suite).mkdir(parents=True)
        (root / suite / "results.json").write_text(json.dumps(doc))
    return root


def test_results_page_idempotent(tmp_path):
    results = _fake_results(tmp_path / "docs" / "results")
    bench = tmp_path / "bench"
    bench.mkdir()
    page = tmp_path / "docs" / "results.md"
    assert write_page(page, results, bench)
    once = page.read_text()
    assert once.startswith("# Results\n") and "do not edit by hand" in once
    assert not write_page(page, results, bench) and page.read_text() == once  # idempotent
    text = render_page(results, page.parent, bench)
    assert text == once
    assert "1.23" in text and "0.9" in text and "misses" in text and "meets" in text  # 3.2 % vs 3 %; 2.1 %
    assert "Not run: `scans`, `depth`, `timing`" in text and "2026-01-02 03:04 UTC" in text
    assert "1.35 / 1.27 / 1.25" in text and "not measured" in text and "HELEN *training* set" in text
    assert "mean face (no fit)" not in text  # no baseline file: no baseline column
    # each suite's report is linked relative to the page
    (results / "synthetic" / "report.md").write_text("# report\n")
    assert "[results/synthetic/report.md](results/synthetic/report.md)" in render_page(results, page.parent, bench)
    # the mean face on the same faces (count, seed, detail) stands beside ours
    (bench / "mean_face.json").write_text(json.dumps({"created_utc": "2026-01-03T00:00:00+00:00", "variants": {
        "synthetic": {"faces": 3, "seed": 0, "detail": False, "vertex_err_mean_mm": 4.321},
        "synthetic_detail": {"faces": 3, "seed": 0, "detail": True, "vertex_err_mean_mm": 9.0}}}))
    text = render_page(results, page.parent, bench)
    assert "| 1.23 | 4.32 | mm |" in text and "| 9 |" not in text and "bench_mean_face" in text
    # the suite's own baseline (same faces) wins over the file's, with the fit / mean face check
    original = (results / "synthetic" / "results.json").read_text()
    doc = json.loads(original)
    doc["summary"].update({"mean_face_err_mean_mm": 2.0, "fit_over_mean_face": 0.617, "fit_over_mean_face_target": 0.7})
    (results / "synthetic" / "results.json").write_text(json.dumps(doc))
    text = render_page(results, page.parent, bench)
    assert "| 1.23 | 2 | mm |" in text and "| 0.617 |  |  | ≤ 0.7 (met) |" in text
    doc["summary"]["fit_over_mean_face"] = 0.9
    (results / "synthetic" / "results.json").write_text(json.dumps(doc))
    assert "| 0.9 |  |  | ≤ 0.7 (missed) |" in render_page(results, page.parent, bench)
    (results / "synthetic" / "results.json").write_text(original)
    # depth: the mean face's column only beside the same synthetic subjects
    depth = {"suite": "depth", "config": {"seed": 0}, "per_item": [{"subject": "synthetic_000"}, {"subject": "synthetic_001"}],
             "summary": {"subjects": 2, "depth_err_minmax_mean_mm": 2.5, "depth_err_minmax_std_mm": 1.0}}
    (results / "depth").mkdir()
    (results / "depth" / "results.json").write_text(json.dumps(depth))
    baseline = json.loads((bench / "mean_face.json").read_text())
    (bench / "mean_face.json").write_text(json.dumps({**baseline, "depth": {
        "subjects": 2, "seed": 0, "depth_err_minmax_mean_mm": 7.5, "depth_err_minmax_std_mm": 3.0}}))
    assert "| 2.5 ± 1 mm | 7.5 ± 3 mm |" in render_page(results, page.parent, bench)
    depth["per_item"][1]["subject"] = "frgc_0001"
    (results / "depth" / "results.json").write_text(json.dumps(depth))
    assert "7.5 ± 3 mm" not in render_page(results, page.parent, bench)
    from evaluation.results_page import main as page_main

    args = ["--results", str(results), "--out", str(page), "--benchmarks", str(bench)]
    assert page_main([*args, "--check"]) == 1  # the baseline file is new
    assert page_main(args) == 0 and page_main([*args, "--check"]) == 0


def test_ci_size_report(tmp_path, face_model):
    """The whole path at CI size: a tiny synthetic run (injected reconstruction), its report, the README block."""
    settings = SyntheticSettings(size=96, texture_size=32)
    truth = {f.image.tobytes(): f for f in make_faces(face_model, 2, seed=1, settings=settings)}

    def oracle(images, config):
        face = truth[images[0].tobytes()]
        return make_head(face_model, face.vertices, face.contour68, face.pose)

    res = run_synthetic(n=2, seed=1, model=face_model, settings=settings, reconstruct_fn=oracle)
    out = write_report(res, tmp_path / "results" / "synthetic", "Synthetic faces")
    assert (out["json"].parent / "vertex_error.png").is_file() and "examples" in out
    block = render_page(tmp_path / "results")
    assert "2 of 2 random ICT faces" in block and "true 2-D landmarks" in block


@pytest.mark.slow
def test_synthetic_real_fit_smoke(face_model):
    """One real draft-quality reconstruction of a synthetic face from its true landmarks."""
    s = run_synthetic(n=1, quality="draft", seed=0, model=face_model)["summary"]
    assert s["reconstructed"] == 1 and s["vertex_err_mean_mm"] < 4.0 and s["lm_err_px224_mean"] < 4.0


def test_results_page_variants(tmp_path):
    results = _fake_results(tmp_path / "results")
    (results / "synthetic_detector").mkdir()
    doc = json.loads((results / "synthetic" / "results.json").read_text())
    doc["summary"]["landmarks"] = "detector"
    (results / "synthetic_detector" / "results.json").write_text(json.dumps(doc))
    block = render_page(results)
    assert block.index("true 2-D landmarks") < block.index("[`synthetic_detector`]") < block.index("Landmarks on photos")


def test_synthetic_detail_is_visible_and_within_spec(face_model):
    """Detail is drawn as 0.3–1.5 mm bands and bumps in the face tile and shows in the render
    (the face tile is rendered as a dense displaced mesh)."""
    from dataclasses import replace

    plain = SyntheticSettings(size=160, texture_size=128, directional=(0.5, 0.5), ambient=(0.6, 0.6))
    with_detail = replace(plain, detail=True)
    a = make_faces(face_model, 1, seed=3, settings=with_detail)[0]
    b = make_faces(face_model, 1, seed=3, settings=plain)[0]
    d = a.displacement
    assert d.shape == (128, 128 * face_model.uv_tiles)
    assert np.abs(d[:, 128:]).max() == 0  # only the face tile
    assert 0.3 <= np.abs(d).max() <= 1.5
    assert (np.abs(d) > 0.05).mean() > 0.02  # not a few isolated texels
    # same pose, light and albedo: the images differ only by the detail, inside the face
    diff = np.abs(a.image.astype(int) - b.image.astype(int)).sum(-1)
    assert (diff[a.mask] > 6).mean() > 0.02
    assert np.allclose(a.coarse_vertices, b.vertices)


def test_detail_errors_of_a_perfect_and_of_a_flat_answer(face_model):
    from types import SimpleNamespace

    from evaluation.suites import detail_errors
    from evaluation.synthetic import resample_map, true_detail_surface
    from backend.uvmaps import face_tile_layout

    face = make_faces(face_model, 1, seed=1, settings=SyntheticSettings(size=128, texture_size=128, detail=True))[0]
    S = 64
    truth = resample_map(face.displacement[:, :128], S)
    coarse, detailed = true_detail_surface(face_model, face, S)
    texels = face_tile_layout(face_model, S).valid[0].numpy().reshape(-1)
    tiles = face_model.uv_tiles
    mesh = {"faces": face_model.faces.numpy(), "uv": face_model.uv.numpy(), "faces_uv": face_model.faces_uv.numpy(),
            "uv_tiles": tiles}
    perfect = SimpleNamespace(displacement=np.concatenate([truth, np.zeros((S, S * (tiles - 1)))], 1),
                              vertices=face.coarse_vertices, dense_vertices=detailed.reshape(-1, 3)[texels],
                              views=[SimpleNamespace(pose=face.pose)], **mesh)
    e = detail_errors(face_model, perfect, face)
    assert e["disp_corr"] == pytest.approx(1.0, abs=1e-6)
    assert e["disp_corr_image"] == pytest.approx(1.0, abs=1e-6)
    assert e["dense_err_mm"] < 1e-3 < e["dense_coarse_err_mm"]
    # the exported whole head: nearer the truth with its detail than without (at 64² the truth's
    # position map, read between texels, is itself 0.4 mm off; at 256² 0.06 mm)
    assert e["export_err_mm"] < e["export_flat_err_mm"] - 0.02
    # the fit's skin mask covers most of the visible face, not the brows, lips or jaw underside
    assert e["disp_corr_skin"] == pytest.approx(1.0, abs=1e-6)
    assert 0.3 < e["skin_texel_share"] < 0.95 and 0.0 < e["skin_energy_share"] < 1.0
    noise = np.random.default_rng(0).normal(size=perfect.displacement.shape)
    flat = SimpleNamespace(displacement=noise, vertices=face.coarse_vertices, dense_vertices=coarse.reshape(-1, 3)[texels],
                           views=[SimpleNamespace(pose=face.pose)], **mesh)
    e = detail_errors(face_model, flat, face)
    assert abs(e["disp_corr"]) < 0.15 and abs(e["disp_corr_image"]) < 0.15
    assert e["dense_err_mm"] == pytest.approx(e["dense_coarse_err_mm"])
    assert e["export_err_mm"] > e["export_flat_err_mm"] + 0.2  # 1 mm of noise in the geometry
    # the truth seen through a mesh shifted by 2 mm sideways: the texels still match, the pixels less
    shifted = SimpleNamespace(**{**vars(perfect), "vertices": face.coarse_vertices + np.array([2.0, 0.0, 0.0])})
    e = detail_errors(face_model, shifted, face)
    assert e["disp_corr"] == pytest.approx(1.0, abs=1e-6) and e["disp_corr_image"] < 0.9


def test_photo_mask_at_texels_reads_the_crop_through_the_mesh(face_model):
    from evaluation.synthetic import photo_mask_at_texels, visible_face_texels

    face = make_faces(face_model, 1, seed=1, settings=SyntheticSettings(size=128, texture_size=128))[0]
    S, k = 64, 224 / 128
    crop_from_image = np.array([[k, 0.0, 0.0], [0.0, k, 0.0]])  # the whole photo scaled to 224²
    visible = visible_face_texels(face_model, face, S)
    read = lambda mask, A: photo_mask_at_texels(  # noqa: E731
        face_model, face.coarse_vertices, face.pose, 128, 128, mask, A, S)
    ones = np.ones((224, 224))
    assert (read(ones, crop_from_image)[visible] > 0.999).mean() > 0.98  # a few neck texels leave the photo
    assert np.abs(read(ones, crop_from_image + [[0, 0, 1000.0], [0, 0, 0]])).max() == 0  # off the crop
    # the photo's rendered-face mask, upsampled to the crop: every visible texel lands on the face
    from PIL import Image
    face_px = np.asarray(Image.fromarray(face.mask.astype(np.uint8) * 255).resize((224, 224), Image.NEAREST)) > 0
    assert (read(face_px.astype(float), crop_from_image)[visible] > 0.5).mean() > 0.97
    assert (read((~face_px).astype(float), crop_from_image)[visible] > 0.5).mean() < 0.03


def test_true_coarse_fit_redraws_the_photo_in_its_crop(face_model):
    """The oracle's coarse answer (the true shape, pose carried into the 224² crop, light turned
    with the crop, albedo) redraws the crop of a detail-free synthetic photo. The head is rolled,
    so the crop turns the face in-plane to level its eyes; the light left unturned does not fit."""
    from dataclasses import replace

    from backend.camera import Camera
    from evaluation.suites import true_coarse_fit
    from backend.align import CROP_SIZE
    from backend.prepare import prepare_view
    from backend.render import RenderSettings, render

    settings = SyntheticSettings(size=320, texture_size=64, roll_max_deg=30.0, directional=(0.7, 0.7),
                                 ambient=(0.4, 0.4), background=(0.0, 0.0, 0.0))
    face = make_faces(face_model, 1, seed=1, settings=settings)[0]
    assert abs(face.pose[3]) > 0.25  # radians of roll
    view = prepare_view(face.image, landmarks68=face.contour68)
    fit = true_coarse_fit(face_model, face, view)

    def error(f) -> float:
        out = render(f.verts, face_model.faces, f.pose, Camera(CROP_SIZE, CROP_SIZE), f.sh, texture=f.albedo,
                     uv=face_model.uv, faces_uv=face_model.faces_uv,
                     settings=RenderSettings(u_range=(0.0, float(face_model.uv_tiles))))
        inside = torch.from_numpy(view.face_mask > 0.99) & out.mask[0]
        return float((out.image[0] - torch.from_numpy(view.crop)).abs().mean(-1)[inside].mean()) * 255

    turned, unturned = error(fit), error(replace(fit, sh=torch.from_numpy(face.sh)[None]))
    assert turned < 1.0 and unturned > 10 * turned  # 8-bit levels; measured 0.32 and 10.1


def test_oracle_detail_fit_recovers_the_synthetic_detail(face_model):
    """Behind the true coarse face the detail fit (draft) finds the synthetic wrinkles and bumps:
    a clearly positive correlation (0.65 measured), where an unrelated map would score about 0."""
    from dataclasses import replace

    from evaluation.suites import DETAIL_CONDITIONS, oracle_detail_corr

    settings = replace(SyntheticSettings(), **{**DETAIL_CONDITIONS, "size": 320}, texture_size=128)
    face = make_faces(face_model, 1, seed=0, settings=settings)[0]
    assert oracle_detail_corr(face_model, face, "draft") > 0.5


def test_timing_rows_carry_a_later_sections_own_machine(tmp_path):
    """A benchmark file with a section run later on another machine: its rows name that machine,
    on the results page too; the report names the folder, not a path on this machine."""
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "fit_cuda.json").write_text(json.dumps({
        "name": "fit_cuda", "created_utc": "2026-01-01T00:00:00+00:00", "machine": {"gpu": "GPU A", "cpu_count": 16},
        "cases": {"warm": {"wall_s": 6.0}},
        "later": {"created_utc": "2026-02-02T00:00:00+00:00", "machine": {"gpu": "GPU B", "cpu_count": 8},
                  "cases": {"warm": {"wall_s": 8.0}}}}))
    res = run_timing(bench)
    rows = {r["case"]: r for r in res["tables"]["timings (s)"]}
    assert "where" not in rows["cases/warm"] and rows["later/cases/warm"]["where"]["gpu"] == "GPU B"
    assert str(tmp_path) not in res["description"] and "`benchmarks`" in res["description"]
    write_report(res, tmp_path / "docs" / "results" / "timing", "Timing")
    page = render_page(tmp_path / "docs" / "results", benchmarks_dir=bench)
    assert "| fit_cuda | warm | 6 |" in page and "GPU A, 16-core host" in page
    assert "| fit_cuda | later/cases/warm | 8 |" in page and "GPU B, 8-core host" in page and "2026-02-02 00:00 UTC" in page
