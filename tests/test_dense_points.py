"""Face Mesh's 468 points on the ICT surface (backend.facemodel.dense_points) and the fit's dense term (backend.fit.dense)."""
import numpy as np
import pytest
import torch

from backend.export import params_dict
from backend.facemodel.dense_points import ICT_TABLE, dense_points_for, read_dense_table, surface_points
from backend.fit.dense import DenseTerm, dense_loss, dense_term
from backend.losses import landmark_loss


@pytest.fixture(scope="module")
def table(face_model):
    t = dense_points_for(face_model)
    if t is None:
        pytest.skip("no Face Mesh table for this face model")
    return t


def test_table_points_lie_on_the_face_surface(face_model, table):
    faces = {tuple(sorted(f)) for f in face_model.faces.numpy().tolist()}
    assert all(tuple(sorted(v)) in faces for v in table.vertices.tolist())  # each point on one model triangle
    assert (table.weights >= 0).all() and np.allclose(table.weights.sum(1), 1.0)
    assert face_model.face_vertex_mask.numpy()[table.vertices].all()  # on the face region


def test_table_is_mirror_symmetric(face_model, table):
    m = table.mirror
    assert np.array_equal(m[m], np.arange(468))  # an involution
    pts = surface_points(face_model.mean[None].double(), table)[0].numpy()  # (468,3) mm
    err = np.linalg.norm(pts[m] * [-1.0, 1.0, 1.0] - pts, axis=1)
    assert err.max() < 1.0, err.max()  # the mean shape is symmetric to ~0.1 mm; snapping moves < 1 mm
    midline = m == np.arange(468)
    assert 10 <= midline.sum() <= 40 and np.abs(pts[midline, 0]).max() < 1.0
    # known Face Mesh pairs: outer eye corners 33/263, mouth corners 61/291, 1 (nose tip) on the midline
    assert m[33] == 263 and m[61] == 291 and m[1] == 1
    assert pts[1, 2] > pts[33, 2] + 20  # the nose tip stands out in front of the eye corners (mm)


def test_other_models_have_no_table(face_model):
    class Other:
        source, n_verts = "BFM 2009", face_model.n_verts

    assert dense_points_for(Other()) is None


def test_read_dense_table_refuses_a_malformed_file(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text('{"vertices": [[0, 1, 2]], "weights": [[1, 0, 0]], "mirror": [0], "n_vertices": 3}')
    with pytest.raises(ValueError, match="468"):
        read_dense_table(bad)
    assert ICT_TABLE.name == "ict_dense468.json"


def test_dense_loss_is_the_mean_squared_distance_over_views_with_points():
    target = torch.zeros(3, 468, 2)
    points = target + torch.tensor([3.0, 4.0])
    has = torch.tensor([True, False, True])
    assert float(dense_loss(points, target, has)) == pytest.approx(25.0 * 2 / 3)  # a mean over the 3 views
    points[1] += 100.0  # a view without dense points counts 0
    assert float(dense_loss(points, target, has)) == pytest.approx(25.0 * 2 / 3)
    assert float(dense_loss(points, target, torch.zeros(3, dtype=torch.bool))) == 0.0


def test_dense_term_reads_the_table_points_in_any_frame(face_model, table):
    verts = face_model.mean[None].float()
    targets = surface_points(verts, table)[..., :2]  # the mean shape's points, "screen" = model x, y
    term = DenseTerm(table, torch.cat([targets, torch.full_like(targets, float("nan"))]))
    assert term.has.tolist() == [True, False]
    pts = term.points(verts[..., :2].expand(2, -1, -1))
    assert torch.allclose(pts[0], targets[0], atol=1e-4)
    assert float(term.loss(pts, 224, 224)) < 1e-8
    # a subset of vertices with a map from model ids to rows gives the same points
    used = torch.unique(term.vertex_ids())
    local = torch.full((face_model.n_verts,), -1, dtype=torch.long)
    local[used] = torch.arange(used.numel())
    assert torch.allclose(term.points(verts[:, used, :2].expand(2, -1, -1), local), pts)
    # at half resolution the targets move with the pixel-centre convention; the loss stays in 224-px units
    half = pts * 0.5 - 0.25
    assert float(term.loss(half, 112, 224)) < 1e-8
    assert dense_term(face_model, None) is None
    assert dense_term(face_model, torch.full((1, 468, 2), float("nan"))) is None


def test_landmark_loss_with_per_view_weights():
    pred, target = torch.randn(2, 68, 2), torch.randn(2, 68, 2)
    w = torch.rand(68) + 0.1
    assert torch.allclose(landmark_loss(pred, target, w.expand(2, -1)), landmark_loss(pred, target, w))
    w2 = torch.stack([w, w * 0 + 1])
    per_view = [landmark_loss(pred[i : i + 1], target[i : i + 1], w2[i]) for i in range(2)]
    assert torch.allclose(landmark_loss(pred, target, w2), torch.stack(per_view).mean())


@pytest.mark.slow
def test_dense_term_lowers_the_error_at_large_yaw(face_model, table):
    """A render at −46° yaw, Face Mesh's points detected (``auto``), landmark stage only: the
    dense term brings the shape closer to the truth than the 68 points alone (6.81 → 5.32 mm,
    mean face 3.28 mm; the weak per-image prior lets the landmarks' noise write the identity)."""
    from backend.detect.combined import mediapipe_available
    from backend.fit.coarse import CoarseFitConfig, fit_coarse
    from backend.prepare import prepare_view
    from evaluation.metrics import vertex_error
    from evaluation.synthetic import SyntheticSettings, make_faces

    if not mediapipe_available():
        pytest.skip("MediaPipe's weights are not on disk (photohead models fetch mediapipe)")
    face = make_faces(face_model, 7, seed=3, settings=SyntheticSettings(yaw_max_deg=75, size=256))[6]
    assert face.yaw_deg < -45
    view = prepare_view(face.image, detector="auto")
    t = lambda a: torch.from_numpy(np.asarray(a, np.float32))[None]  # noqa: E731
    cfg = CoarseFitConfig(photo_schedule=(), identity=False, dense_weight=1.0)
    mask = face_model.face_vertex_mask.numpy()
    err = {}
    for name, dense in (("68", None), ("dense", t(view.crop_dense()))):
        fit = fit_coarse(face_model, t(view.crop), t(view.crop_landmarks), t(view.skin_mask), cfg, dense=dense)
        err[name] = vertex_error(fit.verts[0].numpy(), face.vertices, mask)["mean"]
    assert err["dense"] < 0.85 * err["68"], err


def test_dense_rows_only_for_views_whose_68_points_are_the_mesh_ones():
    """``auto`` keeps dlib's points on most photos; there Face Mesh's points stay out of the fit."""
    from types import SimpleNamespace

    from backend.prepare import dense_targets

    pts = np.arange(936, dtype=np.float64).reshape(468, 2)
    view = lambda det, dense: SimpleNamespace(detector=det, crop_dense=lambda: dense)  # noqa: E731
    out = dense_targets([view("mediapipe", pts), view("dlib", pts), view("given", None)], torch.device("cpu"))
    assert out.shape == (3, 468, 2) and torch.equal(out[0], torch.from_numpy(pts).float())
    assert torch.isnan(out[1:]).all()
    assert dense_targets([view("dlib", pts)], torch.device("cpu")) is None
