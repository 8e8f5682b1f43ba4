"""Multi-view checks (identity outliers, coverage) and blending a synthetic 3-view scene."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.blend import equalize_views, fill_holes, multiband_blend, weighted_average
from backend.multiview import identity_outliers
from backend.texture import VIEW_COLOURS, coverage_image, delight_views, face_region_coverage, face_region_mask
from tests.conftest import count_calls
from evaluation.multiview_scene import synthetic_uv_frags, synthetic_views


def _descriptors(n: int, seed: int = 0) -> np.ndarray:
    """n descriptors of one person: a random unit-ish centre plus small noise (distances ~0.3)."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=128) * 0.09
    return centre + rng.normal(size=(n, 128)) * 0.02


def test_identity_outliers_name_the_odd_photo():
    names = ["front.jpg", "left.jpg", "right.jpg", "other.jpg"]
    same = _descriptors(3)
    stranger = _descriptors(1, seed=7)
    assert identity_outliers(same, names[:3]) == []
    warnings = identity_outliers(np.concatenate([same, stranger]), names)
    assert len(warnings) == 1 and "'other.jpg'" in warnings[0] and "front" not in warnings[0]
    # two photos: cannot tell which one is wrong, both are named
    two = identity_outliers(torch.from_numpy(np.concatenate([same[:1], stranger])), ["a.jpg", "b.jpg"])
    assert len(two) == 1 and "'a.jpg'" in two[0] and "'b.jpg'" in two[0]
    assert identity_outliers(same[:2], ["a.jpg", "b.jpg"]) == []
    # everyone different: one warning
    strangers = np.concatenate([_descriptors(1, seed=s) for s in range(3)])
    assert len(identity_outliers(strangers, names[:3])) == 1
    assert identity_outliers(same[:1], ["a.jpg"]) == []
    with pytest.raises(ValueError, match="names"):
        identity_outliers(same, names)


def test_coverage_image_colours_and_brightness():
    w = torch.zeros(3, 4, 6)
    w[0, :, :2] = 1.0  # view 0 only
    w[1, :, 2:4] = 0.5  # view 1 at half weight
    w[0, :, 4] = w[2, :, 4] = 1.0  # overlap of views 0 and 2
    img = coverage_image(w)
    assert img.shape == (4, 6, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[0, 0], np.round(np.array(VIEW_COLOURS[0]) * 255))
    np.testing.assert_allclose(img[0, 2], np.array(VIEW_COLOURS[1]) * 0.5 * 255, atol=1)
    np.testing.assert_allclose(img[0, 4], (np.array(VIEW_COLOURS[0]) + VIEW_COLOURS[2]) / 2 * 255, atol=1)
    assert (img[:, 5] == 0).all()  # unseen: black


def test_face_region_coverage_counts_texels_over_threshold():
    mask = torch.zeros(10, 10, dtype=torch.bool)
    mask[:, :5] = True
    w = torch.zeros(2, 10, 10)
    w[0, :, :2] = 0.5
    w[1, :, 1:3] = 0.05  # overlapping weak view: 0.55 at column 1, too little at column 2
    assert face_region_coverage(w, mask, threshold=0.1) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="empty"):
        face_region_coverage(w, torch.zeros(10, 10, dtype=torch.bool))


@pytest.fixture(scope="module")
def scene_blend(face_model):
    """The synthetic 3-view scene, its delit unwraps with ground-truth geometry and light, blended."""
    res = 256
    scene = synthetic_views(face_model, (-60.0, 0.0, 60.0), size=224, tex_res=res, seed=0)
    frags = synthetic_uv_frags(scene, res)
    views = _delight(scene, scene.verts, scene.faces, res)
    region = face_region_mask(face_model, frags)
    eq = equalize_views(views.maps, views.weights)
    blended, coverage = multiband_blend(eq.maps, views.weights)
    return scene, views, region, eq, blended, coverage


def _delight(scene, verts, faces, res: int, layout=None):
    """The scene's photos de-lit as the pipeline does, with the true poses and light and the mesh
    ``verts``/``faces`` over the UV layout of ``layout`` (a scene; default ``scene``)."""
    layout = layout or scene
    tiles = int(round(scene.u_range[1] - scene.u_range[0]))
    return delight_views(scene.images, verts, faces, layout.uv, layout.faces_uv, scene.poses, scene.camera, scene.sh,
                         res, res * tiles, scene.u_range).maps()


def _scale_invariant_error(estimate: torch.Tensor, truth: torch.Tensor, region: torch.Tensor) -> float:
    """Mean absolute albedo error over ``region`` after the best per-channel scale (the overall
    albedo level is ambiguous with the light's intensity)."""
    e, t = estimate[region], truth[region]
    scale = (e * t).sum(0) / (e * e).sum(0).clamp_min(1e-12)
    return float((e * scale - t).abs().mean())


def test_three_views_cover_the_face_and_blend_better_than_any_single_view(scene_blend, tmp_path):
    from PIL import Image

    scene, views, region, eq, blended, coverage = scene_blend
    three = face_region_coverage(views.weights, region)
    front = face_region_coverage(views.weights[1:2], region)
    assert three >= 0.95 and front <= 0.70, (three, front)
    # the equaliser finds the exposure/white-balance differences (up to one overall gain)
    relative = eq.gain * scene.gains  # (V,3): equal rows when the views were fully equalised
    assert float((relative / relative.mean(0) - 1.0).abs().max()) < 0.01
    truth = scene.albedo
    err_blend = _scale_invariant_error(blended, truth, region)
    err_single = [
        _scale_invariant_error(fill_holes(views.maps[v], views.weights[v] > 0), truth, region) for v in range(3)
    ]
    avg, _ = weighted_average(eq.maps, views.weights)
    err_avg = _scale_invariant_error(fill_holes(avg, coverage > 0), truth, region)
    assert err_blend < 0.9 * min(err_single), (err_blend, err_single)
    assert err_blend <= err_avg * 1.02, (err_blend, err_avg)
    # previews (look at them when changing the blend)
    Image.fromarray(coverage_image(views.weights)).save(tmp_path / "multiview_coverage.png")
    strip = torch.cat([truth, blended.clamp(0, 1)], 0)
    Image.fromarray((strip.numpy() * 255 + 0.5).astype(np.uint8)).save(tmp_path / "multiview_blend.png")


@pytest.mark.slow
def test_detail_scene_delights_better_with_the_detailed_geometry(face_model):
    """With UV displacement detail rendered, delighting with the detailed normals (what
    ``texture.delit_albedo`` does after the detail fit) beats delighting with the coarse mesh."""
    res = 256
    scene = synthetic_views(face_model, size=224, tex_res=res, seed=1, detail_mm=1.0)
    assert scene.displacement is not None and scene.verts.shape[1] > face_model.n_verts
    coarse = synthetic_views(face_model, size=224, tex_res=res, seed=1)  # same random draws: same shape
    torch.testing.assert_close(coarse.verts, scene.coarse_verts)
    coarse_frags = synthetic_uv_frags(coarse, res)
    region = face_region_mask(face_model, coarse_frags)
    errors = {}
    for name, verts, faces, scn in (("detailed", scene.verts, scene.faces, scene),
                                    ("coarse", scene.coarse_verts, face_model.faces, coarse)):
        views = _delight(scene, verts, faces, res, layout=scn)
        blended, _ = multiband_blend(equalize_views(views.maps, views.weights).maps, views.weights)
        errors[name] = _scale_invariant_error(blended, scene.albedo, region)
        assert face_region_coverage(views.weights, region) > 0.93
    assert errors["detailed"] < 0.85 * errors["coarse"], errors


def test_identity_outliers_on_real_faces(faces_dev):
    """Three framings of one dev photo and one other person: the other photo is named."""
    import json

    from PIL import Image

    identity = pytest.importorskip("backend.identity")
    from backend.errors import WeightsNotFoundError

    assert identity.SAME_PERSON_THRESHOLD == pytest.approx(0.6)
    try:
        net = identity.load_identity_net()
    except WeightsNotFoundError as exc:
        pytest.skip(str(exc))
    meta = json.loads((faces_dev / "landmarks.json").read_text())["images"]
    names = sorted(meta)[:2]
    images, landmarks = [], []
    for name in names:
        images.append(torch.from_numpy(np.array(Image.open(faces_dev / "images" / name).convert("RGB"))).float() / 255)
        landmarks.append(torch.tensor(meta[name]["landmarks"], dtype=torch.float32))
    a, lm_a = images[0], landmarks[0]
    # the same person: the photo itself, darker and slightly blurred, and a shifted crop
    darker = (a * 0.8).permute(2, 0, 1)[None]
    blurred = torch.nn.functional.avg_pool2d(darker, 3, 1, 1)[0].permute(1, 2, 0)
    shifted = torch.roll(a, shifts=(12, -9), dims=(0, 1))
    batch = torch.stack([a, blurred, shifted, images[1]]).permute(0, 3, 1, 2)
    lms = torch.stack([lm_a, lm_a, lm_a + torch.tensor([-9.0, 12.0]), landmarks[1]])
    with torch.no_grad():
        desc = identity.identity_features(batch, lms, net)
    labels = ["a.jpg", "a_dark.jpg", "a_shift.jpg", names[1]]
    warnings = identity_outliers(desc, labels)
    assert len(warnings) == 1 and repr(names[1]) in warnings[0], warnings
    assert identity_outliers(desc[:3], labels[:3]) == []


def test_uv_face_coverage_rasterises_a_layout_once(face_model, monkeypatch, layout_cache):
    """The face region of a model's UV layout is rasterised once (backend.texture's digest cache):
    a second head, even with the model loaded again (new tensors, same layout), reuses it; an
    edited layout is rasterised again. The coverage is the fraction of the region's texels seen.
    A new process reads the region from the cache folder; a damaged file is rasterised again."""
    import copy

    import backend.layout_cache as lc
    import backend.texture as tx

    calls = count_calls(monkeypatch, tx, "rasterize_uv")
    R, W = 64, 64 * face_model.uv_tiles
    seen_all = np.ones((1, R, W), np.float32)
    assert tx.uv_face_coverage(face_model, seen_all) == 1.0 and len(calls) == 1
    reloaded = copy.deepcopy(face_model)
    half = seen_all.copy()
    half[:, :, : R // 2] = 0.0  # the face tile's left half unseen
    region = tx.model_face_region(reloaded, R, W)
    want = float(region[:, R // 2:].sum()) / float(region.sum())
    assert tx.uv_face_coverage(reloaded, half) == pytest.approx(want) and 0.0 < want < 1.0 and len(calls) == 1
    reloaded.uv.mul_(0.5)  # another layout, edited in place
    tx.uv_face_coverage(reloaded, seen_all)
    assert len(calls) == 2
    stored = sorted((layout_cache / "uv").glob("face_region-*.npz"))
    assert len(stored) == 2
    monkeypatch.setattr(lc, "_MEMORY", {})  # a new process
    assert torch.equal(tx.model_face_region(face_model, R, W), region) and len(calls) == 2
    for path in stored:
        path.write_bytes(b"damaged")
    monkeypatch.setattr(lc, "_MEMORY", {})
    assert torch.equal(tx.model_face_region(face_model, R, W), region) and len(calls) == 3
