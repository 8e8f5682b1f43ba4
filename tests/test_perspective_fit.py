"""The fits' perspective camera: the orthographic pose seen through a lens (backend.camera), in the
projection, its Jacobian, the landmark warm-up and the coarse fit."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from backend.camera import Camera, euler_to_rotation, project, screen_jacobian, to_camera_space
from backend.fit.coarse import CoarseFitConfig, fit_coarse
from backend.fit.contour import contour_candidates, select_contour
from backend.fit.landmark_solve import LandmarkLayout, _numeric_jacobian, landmark_residuals
from backend.losses import CoarseLossWeights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _points(n: int = 60, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(2, n, 3, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 60


def test_infinite_focal_is_the_orthographic_projection_bit_for_bit():
    v = _points(dtype=torch.float32)
    pose = torch.tensor([[2.0, 0.1, -0.3, 0.05, 5.0, -3.0, 0.0], [1.5, -0.2, 0.6, 0.0, -8.0, 2.0, 1.0]])
    ortho = project(v, pose, Camera(101, 81))
    lens = Camera(101, 81, focal=torch.full((2,), math.inf), principal=torch.tensor([[10.0, 70.0], [80.0, 5.0]]))
    assert torch.equal(project(v, pose, lens), ortho)
    mixed = Camera(101, 81, focal=torch.tensor([math.inf, 300.0]))  # one batch, two cameras
    out = project(v, pose, mixed)
    assert torch.equal(out[0], ortho[0]) and not torch.allclose(out[1], ortho[1])


def test_lens_is_the_pinhole_camera_of_backend_render():
    """The orthographic pose (s px/mm, R, t px) through a lens of focal F px at the image centre is the
    perspective pose (F, R, t mm) seen from F/s mm: the same screen points."""
    v, W, H = _points(), 64, 48
    F, D = 120.0, 450.0  # focal px; the model origin's distance mm
    d64 = dict(dtype=torch.float64)
    angles, t_mm = torch.tensor([0.1, -0.4, 0.05], **d64), torch.tensor([6.0, -4.0], **d64)
    persp = torch.cat([torch.tensor([F], **d64), angles, t_mm, torch.tensor([-D], **d64)]).expand(2, 7)
    s = F / D
    ortho = torch.cat([torch.tensor([s], **d64), angles, s * t_mm, torch.zeros(1, **d64)]).expand(2, 7)
    ref = project(v, persp, Camera(W, H, "perspective"))[..., :2]
    ours = project(v, ortho, Camera(W, H, focal=torch.full((2,), F, dtype=torch.float64)))[..., :2]
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-9)
    # an off-centre principal point: the same camera looking at a shifted image
    pp = torch.tensor([[20.0, 30.0]], dtype=torch.float64).expand(2, 2)
    shifted = Camera(W, H, focal=torch.full((2,), F, dtype=torch.float64), principal=pp)
    ortho_shift = ortho.clone()
    ortho_shift[:, 4] += pp[:, 0] - (W - 1) / 2
    ortho_shift[:, 5] -= pp[:, 1] - (H - 1) / 2
    moved = ref + (pp - torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=torch.float64))[:, None]
    torch.testing.assert_close(project(v, ortho_shift, shifted)[..., :2], moved, rtol=0, atol=1e-9)


def test_resized_lens_matches_the_resized_image():
    v = _points()
    pose = torch.tensor([[1.2, 0.2, 0.3, 0.0, 4.0, 2.0, 0.0]], dtype=torch.float64).expand(2, 7)
    cam = Camera(224, 224, focal=torch.tensor([400.0, 900.0], dtype=torch.float64),
                 principal=torch.tensor([[100.0, 130.0], [150.0, 60.0]], dtype=torch.float64))
    k = 112 / 224
    small = project(v, pose * torch.tensor([k, 1, 1, 1, k, k, k], dtype=torch.float64), cam.resized(112, 112))
    big = project(v, pose, cam)
    torch.testing.assert_close(small[..., :2], (big[..., :2] + 0.5) * k - 0.5)


def test_screen_jacobian_matches_central_differences():
    v = _points(n=20)
    pose = torch.tensor([[1.3, 0.2, -0.5, 0.1, 4.0, 2.0, 3.0], [0.8, -0.1, 0.3, 0.0, -6.0, 1.0, 0.0]], dtype=torch.float64)
    for focal in (torch.tensor([300.0, math.inf]), None):
        cam = Camera(200, 160, focal=None if focal is None else focal.double(),
                     principal=None if focal is None else torch.tensor([[90.0, 70.0], [120.0, 40.0]], dtype=torch.float64))
        J = screen_jacobian(to_camera_space(v, pose, "orthographic"), pose, cam)  # (B,V,2,3)
        h = 1e-6
        for j in range(3):
            e = torch.zeros(3, dtype=torch.float64)
            e[j] = h
            d = (project(v + e, pose, cam) - project(v - e, pose, cam))[..., :2] / (2 * h)
            torch.testing.assert_close(J[..., j], d, rtol=1e-6, atol=1e-7)
        if focal is None:  # orthographic: f·R's first two rows, y flipped
            R = euler_to_rotation(pose[:, 1:4]) * pose[:, :1, None]
            torch.testing.assert_close(J[:, 0], torch.stack([R[:, 0], -R[:, 1]], 1))


def _perspective_landmarks(model, seed: int, focal: float, yaw: float = 0.35):
    """True 2-D landmarks (1,68,2) of a random face seen through a lens of ``focal`` crop px (jaw on
    the silhouette, as the sliding contour picks it), its identity and expression, and the camera."""
    gen = torch.Generator().manual_seed(seed)
    truth_id = torch.randn(1, model.n_id, generator=gen)
    truth_exp = (torch.randn(1, model.n_exp, generator=gen) * 0.3).abs().clamp(max=1.0)
    pose = torch.tensor([[0.9, 0.08, yaw, -0.03, 4.0, -2.0, 0.0]])
    cam = Camera(224, 224, focal=torch.tensor([focal]), principal=torch.tensor([[118.0, 104.0]]))
    screen = project(model(truth_id, truth_exp), pose, cam)
    rows = contour_candidates(model.mean, model.landmarks68, model.face_vertex_mask)
    vid = model.landmarks68[None].clone()
    vid[:, :17] = select_contour(screen[..., :2], rows)
    return screen[0, vid[0], :2][None], rows, truth_id, truth_exp, cam


def test_landmark_jacobian_through_a_lens_matches_central_differences(face_model):
    model = copy.deepcopy(face_model).double()
    lms, rows, *_, cam = _perspective_landmarks(face_model, seed=4, focal=300.0)
    cam = Camera(224, 224, focal=cam.focal.double(), principal=cam.principal.double())
    layout = LandmarkLayout(1, 1, 1, model.n_id, model.n_exp)
    gen = torch.Generator().manual_seed(6)
    x = layout.join(torch.tensor([[0.1, -0.4, 0.05]]), torch.tensor([[0.03]]), torch.tensor([[2.0, 1.0]]),
                    torch.randn(1, model.n_id, generator=gen) * 0.5, torch.rand(1, model.n_exp, generator=gen) * 0.3).double()
    at = landmark_residuals(layout, model, torch.tensor([[0.9]], dtype=torch.float64), 224, model.landmarks68, rows,
                            lms.double(), torch.ones(68, dtype=torch.float64), None, CoarseLossWeights(), 0.03, None,
                            camera=cam)
    fn = at(x)
    J, ref = fn.jacobian(x), _numeric_jacobian(fn, x)
    assert torch.allclose(J, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max())), float((J - ref).abs().max())
    ortho = landmark_residuals(layout, model, torch.tensor([[0.9]], dtype=torch.float64), 224, model.landmarks68, rows,
                               lms.double(), torch.ones(68, dtype=torch.float64), None, CoarseLossWeights(), 0.03, None)
    assert not torch.allclose(ortho(x)(x), fn(x))  # the lens changes the residuals


def test_fit_with_the_true_lens_recovers_a_perspective_face_better_than_orthographic(face_model):
    """True landmarks of faces seen from about 30 cm (a 26 mm phone lens): the warm-up with the true
    lens finds the shape closer than the orthographic one, and its landmarks fit to a fraction of a pixel."""
    cfg = CoarseFitConfig(photo_schedule=(), identity=False, parts=CoarseFitConfig().parts.__class__(enabled=False))
    img, mask = torch.full((1, 224, 224, 3), 0.5), torch.zeros(1, 224, 224)
    err = {"lens": [], "ortho": []}
    lm_res = []
    for seed in (1, 2, 3):
        lms, _, truth_id, truth_exp, cam = _perspective_landmarks(face_model, seed, focal=270.0)
        truth = face_model(truth_id, truth_exp)[0]
        for name, camera in (("lens", cam), ("ortho", None)):
            fit = fit_coarse(face_model, img, lms, mask, cfg, camera=camera)
            v = fit.verts[0] - fit.verts[0].mean(0) - (truth - truth.mean(0))
            err[name].append(float(v[face_model.face_vertex_mask].norm(dim=-1).mean()))
            if name == "lens":
                lm_res.append(float((fit.landmarks - lms).norm(dim=-1)[0, 17:].mean()))
                assert fit.camera is not None and torch.equal(fit.camera.focal, cam.focal)
            else:
                assert fit.camera is None
    lens, ortho = sum(err["lens"]) / 3, sum(err["ortho"]) / 3
    assert lens < 0.8 * ortho, err
    assert max(lm_res) < 1.0, lm_res


def test_mixed_batch_gradients_are_finite():
    v = _points(dtype=torch.float32).requires_grad_()
    pose = torch.tensor([[2.0, 0.1, -0.3, 0.05, 5.0, -3.0, 0.0], [1.5, -0.2, 0.6, 0.0, -8.0, 2.0, 1.0]], requires_grad=True)
    out = project(v, pose, Camera(101, 81, focal=torch.tensor([math.inf, 300.0])))
    out[..., :2].sum().backward()
    assert torch.isfinite(v.grad).all() and torch.isfinite(pose.grad).all()
    g_ortho = torch.autograd.grad(project(v, pose, Camera(101, 81))[0, :, :2].sum(), pose)[0]
    torch.testing.assert_close(pose.grad[0], g_ortho[0])


def test_crop_lens_pose_becomes_the_photos_perspective_pose_and_a_windows_lens():
    """A fit's lens pose in a rotated, scaled crop of a photo → the photo's perspective pose → a
    preview window's lens pose: the same pixels each way (the frames are similarities)."""
    import numpy as np

    from backend.align import points_to_image
    from backend.lens import crop_camera, lens_in_window, perspective_in_photo

    W, H, a, k = 640, 480, 0.3, 0.8
    crop_from_image = np.array([[k * math.cos(a), -k * math.sin(a), -120.0], [k * math.sin(a), k * math.cos(a), -60.0]])
    image_from_crop = np.linalg.inv(np.vstack([crop_from_image, [0, 0, 1]]))[:2]
    cam = crop_camera([35.0], [(W, H)], [crop_from_image], 224, dtype=torch.float64)
    pose = torch.tensor([[0.7, 0.1, 0.5, -0.05, 6.0, -3.0, 0.0]], dtype=torch.float64)
    v = _points(n=50)[:1] * 0.8
    crop_xy = project(v, pose, cam)[0, :, :2].numpy()
    persp = perspective_in_photo(pose, cam, image_from_crop)
    photo_xy = project(v, persp, Camera(W, H, "perspective"))[0, :, :2].numpy()
    np.testing.assert_allclose(photo_xy, points_to_image(crop_xy, image_from_crop), atol=1e-6)
    window_from_image = np.array([[1.3, 0.0, -200.0], [0.0, 1.3, -90.0]])
    wpose, wcam = lens_in_window(persp, (W, H), window_from_image, 320)
    win_xy = project(v.float(), wpose, wcam)[0, :, :2].double().numpy()
    np.testing.assert_allclose(win_xy, photo_xy @ window_from_image[:, :2].T + window_from_image[:, 2], atol=2e-3)


def test_exif_focal_is_read_and_sources_rank_given_exif_default(tmp_path):
    import numpy as np
    from PIL import Image

    from backend.lens import DEFAULT_FOCAL_35MM, exif_focal_35mm, focal_source

    img = Image.new("RGB", (64, 48))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 26  # FocalLengthIn35mmFilm
    img.save(tmp_path / "phone.jpg", exif=exif)
    img.save(tmp_path / "plain.jpg")
    unknown = Image.Exif()
    unknown.get_ifd(0x8769)[0xA405] = 0  # 0: unknown
    img.save(tmp_path / "zero.jpg", exif=unknown)
    assert exif_focal_35mm(tmp_path / "phone.jpg") == 26.0
    assert exif_focal_35mm(tmp_path / "plain.jpg") is None and exif_focal_35mm(tmp_path / "zero.jpg") is None
    assert exif_focal_35mm(np.zeros((4, 4, 3), np.uint8)) is None
    assert focal_source(85.0, 26.0) == (85.0, "given")
    assert focal_source(None, 26.0) == (26.0, "exif")
    assert focal_source(None, None, default=50.0) == (50.0, "none")
    default = math.inf if DEFAULT_FOCAL_35MM is None else DEFAULT_FOCAL_35MM
    assert focal_source(None, None) == (default, "none")


def test_crop_camera_converts_the_35mm_focal_into_crop_pixels():
    import numpy as np

    from backend.lens import FRAME_DIAGONAL_MM, crop_camera

    M = np.array([[0.5, 0.0, -10.0], [0.0, 0.5, 4.0]])  # the crop halves the photo
    cam = crop_camera([50.0, math.inf], [(4000, 3000), (4000, 3000)], [M, M], 224, dtype=torch.float64)
    assert float(cam.focal[0]) == pytest.approx(50.0 * 5000 / FRAME_DIAGONAL_MM * 0.5)
    assert math.isinf(float(cam.focal[1]))
    torch.testing.assert_close(cam.principal[0], torch.tensor([0.5 * 1999.5 - 10.0, 0.5 * 1499.5 + 4.0], dtype=torch.float64))


@pytest.mark.parametrize("value", ["0", "-35", "nan", "abc", "5000"])
def test_bad_focal_is_refused_before_any_work(value, capfd, monkeypatch, tmp_path):
    import backend.modes as modes
    from backend.cli import main as cli_main
    from backend.errors import PhotoheadError
    from backend.reconstruct import ReconstructConfig, reconstruct

    monkeypatch.setattr(modes, "fit_coarse", lambda *a, **k: (_ for _ in ()).throw(AssertionError("fitted")))
    rc = cli_main(["reconstruct", "--sample", "grace_hopper", "-o", str(tmp_path / "out"), "--focal-35mm", value, "-q"])
    err = capfd.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--focal-35mm" in err[0], err
    assert not (tmp_path / "out").exists()
    with pytest.raises(PhotoheadError, match="focal"):
        reconstruct([tmp_path / "none.jpg"], ReconstructConfig(focal_35mm=float(value) if value != "abc" else value))


def test_two_views_through_different_cameras_fit_jointly(face_model):
    """Multi-view: one photo through a 270 px lens, one orthographic, in one batch: both views'
    landmarks fitted to a fraction of a pixel, and the shape closer than fitting both orthographically."""
    cfg = CoarseFitConfig(photo_schedule=(), identity=False, parts=CoarseFitConfig().parts.__class__(enabled=False))
    lens_lms, _, truth_id, truth_exp, cam = _perspective_landmarks(face_model, seed=5, focal=270.0, yaw=0.4)
    ortho_pose = torch.tensor([[0.9, 0.0, -0.5, 0.0, -3.0, 1.0, 0.0]])
    rows = contour_candidates(face_model.mean, face_model.landmarks68, face_model.face_vertex_mask)
    screen = project(face_model(truth_id, truth_exp), ortho_pose, Camera(224, 224))
    vid = face_model.landmarks68[None].clone()
    vid[:, :17] = select_contour(screen[..., :2], rows)
    lms = torch.cat([lens_lms, screen[0, vid[0], :2][None]])
    both = Camera(224, 224, focal=torch.tensor([270.0, math.inf]), principal=torch.cat([cam.principal, cam.principal]))
    img, mask = torch.full((2, 224, 224, 3), 0.5), torch.zeros(2, 224, 224)
    truth = face_model(truth_id, truth_exp)[0]
    errs = {}
    for name, camera in (("lens", both), ("ortho", None)):
        fit = fit_coarse(face_model, img, lms, mask, cfg, camera=camera)
        v = fit.verts[0] - fit.verts[0].mean(0) - (truth - truth.mean(0))
        errs[name] = float(v[face_model.face_vertex_mask].norm(dim=-1).mean())
        if name == "lens":
            assert float((fit.landmarks - lms).norm(dim=-1)[:, 17:].mean(1).max()) < 1.0
    assert errs["lens"] < 0.8 * errs["ortho"], errs


def test_warm_up_estimates_a_near_lens_from_true_landmarks(face_model):
    """True landmarks of a face seen through a ~30 mm lens pick a short candidate; an orthographic
    view picks a long one (backend.focal_search)."""
    import numpy as np

    from backend.focal_search import estimate_focal
    from backend.prepare import prepare_view
    from evaluation.synthetic_scene import perspective_pose

    gen = torch.Generator().manual_seed(11)
    ident = torch.randn(1, face_model.n_id, generator=gen)
    verts = face_model(ident, torch.zeros(1, face_model.n_exp))
    rows = contour_candidates(face_model.mean, face_model.landmarks68, face_model.face_vertex_mask)
    size, picks = 448, {}
    ortho_pose = torch.tensor([[1.4, 0.05, 0.3, 0.0, 0.0, 0.0, 0.0]])
    persp_pose = perspective_pose(verts[0, face_model.landmarks68], [0.05, 0.3, 0.0], size, 0.45, 35.0, np.zeros(2))
    for name, pose, cam in (("near", persp_pose, Camera(size, size, "perspective")), ("ortho", ortho_pose, Camera(size, size))):
        screen = project(verts, pose, cam)[..., :2]
        vid = face_model.landmarks68[None].clone()
        vid[:, :17] = select_contour(screen, rows)
        view = prepare_view(np.full((size, size, 3), 128, np.uint8), landmarks68=screen[0, vid[0]].double().numpy())
        picks[name] = estimate_focal(face_model, [view], CoarseFitConfig(), torch.device("cpu"))[0]
    assert picks["near"].focal_source == "estimated" and picks["near"].focal_35mm in (24.0, 35.0), picks["near"].focal_35mm
    assert picks["ortho"].focal_35mm in (math.inf, 135.0), picks["ortho"].focal_35mm
