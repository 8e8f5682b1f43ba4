"""photohead evaluate depth: the FRGC .abs reader, the rendered height map, the min-max / affine
protocol and the suite end to end on synthetic subjects with known depth."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluation.depth import depth_errors, height_map, read_frgc_abs, run_depth, write_synthetic_depth_set
from evaluation.readers import EvalDataError
from backend.head import Head, ViewResult


def _write_abs(path, flag, xyz):
    rows, cols = flag.shape
    lines = [f"{rows} rows", f"{cols} columns", "pixels (flag X Y Z):", " ".join(str(int(f)) for f in flag.ravel())]
    lines += [" ".join(f"{v:.6f}" for v in xyz[..., k].ravel()) for k in range(3)]
    path.write_text("\n".join(lines) + "\n")


def test_frgc_abs_reader(tmp_path):
    flag = np.array([[1, 1, 0, 1], [1, 0, 1, 1], [1, 1, 1, 1]])
    xyz = np.arange(36, dtype=np.float64).reshape(3, 4, 3) - 1500.0
    xyz[2, 3] = -999999.0  # FRGC's invalid marker with its flag still set
    _write_abs(tmp_path / "04200d74.abs", flag, xyz)
    got = read_frgc_abs(tmp_path / "04200d74.abs")
    assert got.shape == (3, 4, 3)
    invalid = np.isnan(got).all(-1)
    assert invalid.tolist() == [[False, False, True, False], [False, True, False, False], [False, False, False, True]]
    np.testing.assert_allclose(got[~invalid], xyz[~invalid])
    (tmp_path / "short.abs").write_text("3 rows\n4 columns\npixels (flag X Y Z):\n1 1 1\n")
    with pytest.raises(EvalDataError, match=r"short\.abs: header says 3×4 pixels"):
        read_frgc_abs(tmp_path / "short.abs")
    (tmp_path / "text.abs").write_text("not a range file\n")
    with pytest.raises(EvalDataError, match=r"text\.abs: not an FRGC"):
        read_frgc_abs(tmp_path / "text.abs")


def test_height_map_reads_the_mesh_towards_the_camera(face_model):
    """Frontal orthographic view at 2 px/mm: the highest pixel is the nose tip, at its height;
    pixels off the head are NaN; a translation along the view axis only offsets the heights."""
    verts, faces = face_model.mean.numpy().astype(np.float64), face_model.faces.numpy()
    nose = verts[face_model.landmarks68[30]]
    pose = np.array([2.0, 0.0, 0.0, 0.0, -2 * nose[0], -2 * nose[1], 0.0])  # nose tip at the image centre
    h = height_map(verts, faces, pose, 320, 400)
    assert np.isnan(h[0, 0]) and np.isfinite(h[200, 160])
    assert np.nanmax(h) == pytest.approx(verts[:, 2].max(), abs=0.3)
    tip = np.unravel_index(np.nanargmax(h), h.shape)
    assert abs(tip[1] - 160) < 6 and abs(tip[0] - 200) < 6  # (row, column): image y points down
    eye = verts[face_model.landmarks68[[37, 38, 40, 41]]].mean(0)  # through the eye opening: the head's inside
    col, row = int(round(160 + 2 * (eye[0] - nose[0]))), int(round(200 - 2 * (eye[1] - nose[1])))
    assert np.isnan(h[row, col]) and np.isfinite(h[row + 30, col])
    back = height_map(verts, faces, pose + np.array([0, 0, 0, 0, 0, 0, -50.0]), 320, 400)
    assert np.array_equal(np.isfinite(back), np.isfinite(h))
    np.testing.assert_allclose((back - h)[np.isfinite(h)], -25.0, atol=1e-4)  # t_z in pixels: −50 px = −25 mm


def test_protocol_is_blind_to_scale_and_offset_not_to_shape():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:60, 0:50]
    truth = 40.0 - 0.02 * ((xx - 25) ** 2 + (yy - 30) ** 2)  # a dome, mm
    truth[:5] = np.nan
    scaled = 0.5 * truth - 300.0
    r = depth_errors(scaled, truth)
    assert r["minmax_mm"] < 1e-9 and r["affine_mm"] < 1e-9 and r["affine_scale"] == pytest.approx(2.0)
    assert r["coverage"] == 1.0 and r["pixels"] == 55 * 50
    flat = truth + 3.0 * np.sin(xx / 4.0) + rng.normal(0, 0.1, truth.shape)
    assert depth_errors(flat, truth)["affine_mm"] > 1.0
    half = scaled.copy()
    half[:, :25] = np.nan  # the prediction covers half of the ground truth
    assert depth_errors(half, truth)["coverage"] == pytest.approx(0.5)
    with pytest.raises(EvalDataError, match="only 0 pixels"):
        depth_errors(truth, truth, np.zeros(truth.shape, bool))
    with pytest.raises(EvalDataError, match="differ in size"):
        depth_errors(truth[:10], truth)


def _truth_head(model, face):
    h, w = face.image.shape[:2]
    view = ViewResult(name="x", image_size=(w, h), pose=face.pose, sh=face.sh, exp=face.exp,
                      landmarks68=face.landmarks68, detected68=face.landmarks68)
    return Head(model_name=model.name, vertices=face.vertices.astype(np.float32), neutral=model.mean.numpy(),
                faces=model.faces.numpy(), uv=model.uv.numpy(), faces_uv=model.faces_uv.numpy(),
                id_coeffs=face.id, exp_coeffs=face.exp, exp_names=list(model.exp_names),
                uv_tiles=model.uv_tiles, views=[view])


def test_suite_on_synthetic_subjects(face_model, tmp_path):
    """The true head scores 0; the mean face in the true pose scores millimetres; a subject
    without a photo or with a mis-sized depth is listed with its error, not averaged."""
    from evaluation.synthetic import make_faces

    subjects = write_synthetic_depth_set(face_model, tmp_path, n=2, seed=3)
    truth = {s.name: f for s, f in zip(subjects, make_faces(face_model, 2, seed=3))}
    bad = tmp_path / "no_photo"
    bad.mkdir()
    np.save(bad / "depth.npy", np.zeros((8, 8), np.float32))
    other = tmp_path / "other_method"  # another method's depth map, scored as it is
    other.mkdir()
    depth = np.load(subjects[0] / "depth.npy")
    np.save(other / "depth.npy", depth)
    np.save(other / "pred_depth.npy", 0.5 * depth + 100.0)

    def as_truth(photos, config):
        import backend.prepare as rec

        face = truth[Path(photos[0]).parent.name]
        given = rec.detect_one(np.zeros((4, 4, 3), np.uint8)).landmarks  # photo.pts replaces the detector
        np.testing.assert_allclose(given, face.contour68, atol=1e-3)
        return _truth_head(face_model, face)

    def as_mean(photos, config):
        face = truth[Path(photos[0]).parent.name]
        return _truth_head(face_model, type(face)(**{**face.__dict__, "vertices": face_model.mean.numpy()}))

    exact = run_depth(tmp_path, reconstruct_fn=as_truth)
    assert exact["summary"]["subjects"] == 4 and exact["summary"]["failed"] == 1
    rows = {it["subject"]: it for it in exact["per_item"]}
    assert "exactly one photo" in rows["no_photo"]["error"]
    assert rows["other_method"]["source"] == "pred_depth.npy" and rows["other_method"]["depth_err_affine_mm"] < 1e-4
    assert rows["synthetic_000"]["source"] == "reconstruction"
    assert exact["summary"]["depth_err_minmax_mean_mm"] < 1e-3 and exact["summary"]["coverage_mean"] > 0.99
    mean = run_depth(tmp_path, reconstruct_fn=as_mean)
    assert mean["summary"]["depth_err_minmax_mean_mm"] > 0.5 and mean["summary"]["depth_err_affine_mean_mm"] > 0.3
    with pytest.raises(EvalDataError, match="no <subject>/depth.npy"):
        run_depth(tmp_path / "no_photo")
    from evaluation.results_page import render_page
    from evaluation.report import write_report

    write_report(mean, tmp_path / "results" / "depth", "Depth")
    block = render_page(tmp_path / "results")
    assert "**Depth** (`photohead evaluate depth`): 4 subjects, 1 failed." in block
    assert f"{mean['summary']['depth_err_minmax_mean_mm']:.3g} ±" in block



