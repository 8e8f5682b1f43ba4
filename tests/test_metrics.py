"""Evaluation metrics with known answers."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from evaluation import metrics as M
from evaluation.readers import LandmarkFormatError, read_landmarks_json, read_obj_mesh, read_pts


def random_similarity(seed: int, scale: float = 1.3):
    R = Rotation.from_euler("xyz", [0.3, -0.5, 0.2]).as_matrix() if seed == 0 else \
        Rotation.random(random_state=seed).as_matrix()
    return scale, R, np.array([10.0, -5.0, 30.0])


@pytest.fixture(scope="module")
def face_mesh(face_model):
    """The model's face region (region 0) as its own mesh: verts (V,3) mm, faces (F,3)."""
    faces = face_model.faces.numpy()
    keep = (face_model.region.numpy() == 0)[faces].all(1)
    faces = faces[keep]
    used = np.unique(faces)
    remap = np.full(face_model.n_verts, -1)
    remap[used] = np.arange(len(used))
    return face_model.mean.numpy()[used].astype(np.float64), remap[faces]


def test_similarity_align_removes_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(50, 3)) * 40
    s, R, t = random_similarity(0)
    dst = M.apply_similarity(src, s, R, t)
    s2, R2, t2 = M.similarity_align(src, dst)
    assert s2 == pytest.approx(1.3, rel=1e-10)
    np.testing.assert_allclose(R2, R, atol=1e-10)
    np.testing.assert_allclose(t2, t, atol=1e-8)
    # rigid only: scale stays 1, rotation still recovered
    s3, R3, _ = M.similarity_align(src, M.apply_similarity(src, 1.0, R, t), with_scale=False)
    assert s3 == 1.0
    np.testing.assert_allclose(R3, R, atol=1e-10)
    # never a reflection
    mirrored = src * np.array([-1.0, 1.0, 1.0])
    _, Rm, _ = M.similarity_align(src, mirrored)
    assert np.linalg.det(Rm) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        M.similarity_align(src[:2], dst[:2])


def test_point_distances_known_answers(face_mesh):
    verts, faces = face_mesh
    mesh = M.MeshIndex(verts, faces)
    assert M.point_to_point(verts, mesh).max() < 1e-9
    assert M.point_to_plane(verts, mesh).max() < 1e-9
    # triangle centroids lie on the surface too
    centroids = verts[faces].mean(1)
    assert M.point_to_point(centroids, mesh).max() < 1e-6
    # offset by 1 mm along the normals
    offset = verts + mesh.vertex_normals
    p2pl = M.summarize(M.point_to_plane(offset, mesh))
    assert p2pl["median"] == pytest.approx(1.0, abs=0.05)
    assert p2pl["mean"] == pytest.approx(1.0, abs=0.05)
    p2p = M.summarize(M.point_to_point(offset, mesh))
    assert p2p["median"] == pytest.approx(1.0, abs=0.05)


def test_point_to_point_single_triangle():
    tri = (np.array([[0.0, 0, 0], [10, 0, 0], [0, 10, 0]]), np.array([[0, 1, 2]]))
    pts = np.array([[2.0, 2, 3], [-3.0, -4, 0], [20.0, 0, 0], [5, 5, -2]])
    np.testing.assert_allclose(M.point_to_point(pts, tri), [3.0, 5.0, 10.0, 2.0], atol=1e-12)


def test_icp_recovers_similarity_from_landmark_init(face_mesh, face_model):
    verts, faces = face_mesh
    s, R, t = 1.1, Rotation.from_euler("xyz", [0.1, 0.25, -0.05]).as_matrix(), np.array([4.0, -3.0, 12.0])
    scan = M.apply_similarity(verts, s, R, t)
    # rough landmark init: 8 vertices with 2 mm noise
    rng = np.random.default_rng(1)
    lm = rng.choice(len(verts), 8, replace=False)
    init = M.similarity_align(scan[lm] + rng.normal(0, 2.0, (8, 3)), verts[lm])
    res = M.icp(scan, (verts, faces), init=init)
    assert res.s == pytest.approx(1 / s, rel=2e-3)
    np.testing.assert_allclose(res.R, R.T, atol=5e-3)
    assert np.abs(res.apply(scan) - verts).max() < 0.3


def test_crop_and_vertex_error():
    pts = np.array([[0.0, 0, 0], [94, 0, 0], [0, 96, 0], [50, 50, 50]])
    cropped, mask = M.crop_around(pts, np.zeros(3), 95.0)
    np.testing.assert_array_equal(mask, [True, True, False, True])
    assert len(cropped) == 3
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(100, 3)) * 50
    s, R, t = random_similarity(3, scale=0.8)
    pred = M.apply_similarity(gt, s, R, t)
    pred[:10] += np.array([0.0, 0.0, 5.0])  # 10 vertices off by 5 mm, excluded by the mask
    mask = np.ones(100, bool)
    mask[:10] = False
    err = M.vertex_error(pred, gt, mask)
    assert err["mean"] < 1e-9 and err["scale"] == pytest.approx(1 / 0.8)
    assert M.vertex_error(pred, gt)["mean"] > 0.1


def test_landmark_nme_conventions():
    rng = np.random.default_rng(3)
    gt = rng.uniform(0, 100, (2, 68, 2))
    gt[:, 36] = [10.0, 50.0]
    gt[:, 45] = [90.0, 50.0]  # inter-ocular 80 px
    pred = gt + np.array([3.0, 4.0])  # every point off by 5 px
    np.testing.assert_allclose(M.landmark_nme(pred, gt, "interocular"), 5.0 / 80.0)
    wh = gt.max(1) - gt.min(1)
    np.testing.assert_allclose(M.landmark_nme(pred, gt, "bbox"), 5.0 / np.sqrt(wh[:, 0] * wh[:, 1]))
    assert M.landmark_nme(pred[0], gt[0]).shape == (1,)
    with pytest.raises(ValueError):
        M.landmark_nme(pred, gt, "pupils")


def test_failure_rate_and_yaw_bins():
    nme = np.array([0.02, 0.09, 0.05, np.nan, 0.081])
    assert M.failure_rate(nme) == pytest.approx(3 / 5)
    rows = M.yaw_binned(np.array([0.01, 0.03, 0.05, 0.07]), np.array([-10.0, 29.9, 45.0, 90.0]))
    assert [r["bin"] for r in rows] == ["0-30", "30-60", "60-90", "balanced"]
    assert [r["n"] for r in rows] == [2, 1, 1, 4]
    assert rows[0]["mean_nme"] == pytest.approx(0.02)
    assert rows[3]["mean_nme"] == pytest.approx((0.02 + 0.05 + 0.07) / 3)


def test_displacement_correlation():
    rng = np.random.default_rng(4)
    gt = rng.normal(size=(32, 32))
    assert M.displacement_correlation(2 * gt + 1, gt) == pytest.approx(1.0)
    assert M.displacement_correlation(-gt, gt) == pytest.approx(-1.0)
    mask = np.zeros((32, 32), bool)
    mask[:16] = True
    pred = gt.copy()
    pred[16:] = rng.normal(size=(16, 32))  # garbage outside the mask is ignored
    assert M.displacement_correlation(pred, gt, mask) == pytest.approx(1.0)
    assert abs(M.displacement_correlation(rng.normal(size=(200, 200)), rng.normal(size=(200, 200)))) < 0.05


def test_read_pts(tmp_path):
    pts = np.arange(136, dtype=float).reshape(68, 2) + 1.0
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in pts)
    (tmp_path / "a.pts").write_text(f"version: 1\nn_points:  68\n{{\n{body}\n}}\n")
    np.testing.assert_allclose(read_pts(tmp_path / "a.pts"), pts - 1.0)
    (tmp_path / "b.pts").write_text(body + "\n")  # header-less (faces_dev's source)
    np.testing.assert_allclose(read_pts(tmp_path / "b.pts", one_based=False), pts)
    (tmp_path / "c.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    with pytest.raises(LandmarkFormatError, match="68"):
        read_pts(tmp_path / "c.pts")


def test_read_landmarks_json(tmp_path):
    lm = np.random.default_rng(5).uniform(0, 300, (68, 2))
    (tmp_path / "a.json").write_text(json.dumps(
        {"set": "x", "count": 1, "images": {"p.jpg": {"width": 320, "landmarks": lm.tolist()}}}))
    out = read_landmarks_json(tmp_path / "a.json")
    assert list(out) == ["p.jpg"]
    np.testing.assert_allclose(out["p.jpg"], lm)
    (tmp_path / "face7.json").write_text(json.dumps({"landmarks": lm.tolist(), "one_based": True}))
    np.testing.assert_allclose(read_landmarks_json(tmp_path / "face7.json")["face7"], lm - 1)
    (tmp_path / "bad.json").write_text(json.dumps({"note": "nothing"}))
    with pytest.raises(LandmarkFormatError):
        read_landmarks_json(tmp_path / "bad.json")


def test_read_obj_mesh(tmp_path):
    (tmp_path / "q.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1 4/1\nf -4 -3 -2\n")
    v, f = read_obj_mesh(tmp_path / "q.obj")
    assert v.shape == (4, 3)
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [0, 1, 2]])
    assert math.isclose(float(v[2, 1]), 1.0)
