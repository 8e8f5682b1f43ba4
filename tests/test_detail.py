"""Detail stage: UV render layer topology and recovery of known synthetic detail."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from backend.camera import Camera, project
from backend.detail import dense_topology, displace, tangent_normal_map, texel_evidence
from backend.fit.coarse import CoarseFitResult
from backend.fit.detail import DetailFitConfig, fit_detail
from backend.lighting import sh_directional
from backend.losses import DetailLossWeights
from backend.render import render
from backend.uvmaps import face_tile_layout, grid_normals, uv_position_map


def _edges(faces: np.ndarray) -> np.ndarray:
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def test_dense_mesh_is_manifold_and_consistently_oriented(face_model):
    layout = face_tile_layout(face_model, 64)
    pos = uv_position_map(face_model.mean[None], face_model.faces, layout)
    topo = dense_topology(layout, pos)
    faces = topo.faces.numpy()
    assert faces.shape[0] > 2000
    directed = _edges(faces)
    # consistent orientation: every directed edge at most once
    assert np.unique(directed, axis=0).shape[0] == directed.shape[0]
    # manifold: every undirected edge used by at most two triangles
    undirected = np.sort(directed, axis=1)
    _, counts = np.unique(undirected, axis=0, return_counts=True)
    assert counts.max() <= 2
    # outward: triangle normals agree with the coarse surface normals
    v = pos[0].reshape(-1, 3)[topo.texels].numpy()
    tri_n = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    n_map = grid_normals(pos, layout.valid)[0].reshape(-1, 3)[topo.texels].numpy()
    agree = (tri_n * n_map[faces[:, 0]]).sum(1) > 0
    assert agree.mean() > 0.98


def test_zero_displacement_is_flat_normal_map(face_model):
    layout = face_tile_layout(face_model, 32)
    pos = uv_position_map(face_model.mean[None], face_model.faces, layout)
    topo = dense_topology(layout, pos)
    surf = displace(pos, torch.zeros(1, 1, 32, 32), layout, topo)
    assert torch.allclose(surf.dense_verts, pos[0].reshape(-1, 3)[topo.texels][None])
    assert surf.delta_normals.abs().max() == 0
    nm = tangent_normal_map(surf, layout.valid)
    assert torch.allclose(nm[0][layout.valid[0]], torch.tensor([0.5, 0.5, 1.0]), atol=1e-5)


def _bands(size: int, amplitude: float) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    waves = torch.sin(2 * math.pi * 14 * y) + 0.6 * torch.sin(2 * math.pi * 10 * (x + 0.3 * y))  # 20-30 mm wavelengths
    window = torch.exp(-((x - 0.5) ** 2 + (y - 0.45) ** 2) / 0.05)
    return (waves * window * amplitude)[None, None]


def _paint(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Face paint on the face tile's (size,size) texel grid: blue, pink and green discs of
    ≈ 10–14 mm radius on the cheeks and between the brows and a blue stroke below the mouth.
    Returns the paint's cover (size,size) bool and its colour (size,size,3)."""
    y, x = torch.meshgrid((torch.arange(size) + 0.5) / size, (torch.arange(size) + 0.5) / size, indexing="ij")
    blue, pink, green = torch.tensor([0.15, 0.25, 0.7]), torch.tensor([0.8, 0.35, 0.6]), torch.tensor([0.2, 0.55, 0.2])
    colour = torch.zeros(size, size, 3)
    cover = torch.zeros(size, size, dtype=torch.bool)
    for cx, cy, r, c in ((0.36, 0.46, 0.045, blue), (0.64, 0.5, 0.045, pink), (0.5, 0.27, 0.035, green)):
        disc = (x - cx) ** 2 + (y - cy) ** 2 < r**2
        cover, colour[disc] = cover | disc, c
    t = ((x - 0.38) * 0.97 + (y - 0.62) * 0.24).clamp(0.0, 0.25)  # along the stroke, 0.25 long
    stroke = ((x - 0.38 - 0.97 * t) ** 2 + (y - 0.62 - 0.24 * t) ** 2 < 0.012**2)
    cover, colour[stroke] = cover | stroke, blue
    return cover, colour


def _detail_scene(m, uv_size: int, render_size: int, albedo_bias: float = 0.0, paint: bool = False,
                  yaw: float = 0.25) -> dict:
    """A random head with known band-shaped detail rendered under a directional light.
    ``albedo_bias``: a broad Gaussian patch (≈ 40 mm across) on the cheek whose albedo is
    that fraction darker in the photo than the uniform coarse albedo given to the fit.
    ``paint``: :func:`_paint`'s colours in the photo's albedo, with no detail under them (nor
    within a texel of them): ``scene["paint"]`` (S,S) bool is their cover."""
    torch.manual_seed(0)
    verts = m(torch.randn(1, m.n_id) * 0.7, None)
    pose = torch.tensor([[render_size / 230.0, 0.05, yaw, 0.0, 0.0, 8.0 * render_size / 230.0, 0.0]])
    sh = sh_directional(torch.tensor([[0.4, 0.3, 1.0]]), 0.8, 0.4)
    layout = face_tile_layout(m, uv_size)
    pos = uv_position_map(verts, m.faces, layout)
    topo = dense_topology(layout, pos)
    truth = _bands(uv_size, 1.0) * layout.valid[:, None]
    cover, paint_rgb = _paint(uv_size) if paint else (torch.zeros(uv_size, uv_size, dtype=torch.bool), None)
    if paint:
        grown = torch.nn.functional.max_pool2d(cover[None, None].float(), 3, 1, 1)[0, 0] > 0
        truth = truth * ~grown
    surf = displace(pos, truth, layout, topo)
    uv = topo.uv
    patch = torch.exp(-((uv[:, 0] - 0.35) ** 2 + (uv[:, 1] - 0.45) ** 2) / (2 * 0.06**2))  # (N,)
    albedo = (0.6 * (1.0 - albedo_bias * patch))[None, :, None].expand(1, -1, 3)
    if paint:
        painted = cover.reshape(-1)[topo.texels]
        albedo = torch.where(painted[None, :, None], paint_rgb.reshape(-1, 3)[topo.texels][None], albedo)
    cam = Camera(render_size, render_size)
    image = render(surf.dense_verts, topo.faces, pose, cam, sh, vertex_colors=albedo).image.clamp(0, 1)
    flat = displace(pos, torch.zeros_like(truth), layout, topo)
    coarse_mask = render(flat.dense_verts, topo.faces, pose, cam, sh).alpha
    fit = CoarseFitResult(
        id=torch.zeros(1, m.n_id), exp=torch.zeros(1, m.n_exp), pose=pose * torch.tensor([224 / render_size, 1, 1, 1, 224 / render_size, 224 / render_size, 1]),
        sh=sh, albedo=torch.full((1, 8, 16, 3), 0.6), tex=None, verts=verts, landmarks=torch.zeros(1, 68, 2),
    )
    # visible face region: texels whose surface faces the camera, textured by the bands
    from backend.camera import euler_to_rotation

    n = grid_normals(pos, layout.valid)
    towards = (n @ euler_to_rotation(pose[:, 1:4])[0].T)[..., 2]  # (1,S,S) the normal's share towards the camera
    region = (layout.valid & (towards > 0.5))[0] & (truth[0, 0].abs() > 0.05)
    return {"fit": fit, "image": image, "mask": coarse_mask, "truth": truth, "region": region, "surf": surf,
            "flat": flat, "topo": topo, "patch": patch, "paint": cover, "towards": towards[0]}


def _corr(res, scene) -> float:
    region = scene["region"]
    pred, gt = res.displacement[0, 0][region], scene["truth"][0, 0][region]
    return torch.corrcoef(torch.stack([pred, gt]))[0, 1].item()


@pytest.mark.parametrize("uv_size,steps,render_size", [(64, 60, 224)])
def test_detail_fit_recovers_known_displacement(face_model, uv_size, steps, render_size):
    scene = _detail_scene(face_model, uv_size, render_size)
    res = fit_detail(face_model, scene["fit"], scene["image"], scene["mask"],
                     DetailFitConfig(uv_size=uv_size, steps=steps, render_size=render_size, lr=0.05))
    corr = _corr(res, scene)
    assert corr >= 0.7, corr
    # the dense mesh is closer to the true detailed surface than the coarse mesh
    topo, region = scene["topo"], scene["region"]
    true_pts = scene["surf"].dense_verts[0]
    inside = region.reshape(-1)[topo.texels]
    err_coarse = (scene["flat"].dense_verts[0] - true_pts).norm(dim=-1)[inside].mean()
    err_dense = (res.surface.dense_verts[0] - true_pts).norm(dim=-1)[inside].mean()
    assert err_dense < err_coarse
    assert res.pixel_detail[0] < 0.8 * res.pixel_coarse[0]


def test_albedo_gain_takes_a_regional_albedo_error_off_the_displacement(face_model):
    """The coarse albedo is 25 % too bright on a cheek patch: with the low-frequency albedo gain
    the fit darkens the patch's albedo (the gain alone explains part of L_pixel) and recovers the
    bands better than without it, where the displacement must bend the patch away from the light."""
    scene = _detail_scene(face_model, 64, 224, albedo_bias=0.25)
    cfg = DetailFitConfig(uv_size=64, steps=60, lr=0.05)
    with_gain = fit_detail(face_model, scene["fit"], scene["image"], scene["mask"], cfg)
    without = fit_detail(face_model, scene["fit"], scene["image"], scene["mask"], replace(cfg, albedo_gain_cells=0))
    c_with, c_without = _corr(with_gain, scene), _corr(without, scene)
    assert c_with > c_without + 0.02, (c_with, c_without)
    assert with_gain.pixel_albedo_only[0] < 0.9 * with_gain.pixel_coarse[0]
    # the refined albedo is darker on the patch than away from it
    patch = scene["patch"]
    grey = with_gain.dense_albedo[0].mean(-1)
    assert grey[patch > 0.7].mean() < 0.9 * grey[patch < 0.05].mean()
    assert without.pixel_albedo_only[0] == pytest.approx(without.pixel_coarse[0])


def test_report_splits_the_face_mask_error_into_skin_and_the_rest(face_model):
    """The loss sees the photo's left half only (the "skin"), the report mask is the whole face:
    the off-skin half holds a good part of the coarse error and loses less of it than the skin."""
    scene = _detail_scene(face_model, 64, 224)
    full = scene["mask"]
    left = full.clone()
    left[..., 112:] = 0.0
    res = fit_detail(face_model, scene["fit"], scene["image"], left, DetailFitConfig(uv_size=64, steps=40, lr=0.05),
                     report_mask=full)
    assert 0.25 < res.rest_share_coarse[0] < 0.85, res.rest_share_coarse  # half the pixels (the lit side errs more)
    skin_drop = 1 - res.pixel_skin_detail[0] / res.pixel_skin_coarse[0]
    rest_drop = 1 - res.pixel_rest_detail[0] / res.pixel_rest_coarse[0]
    assert skin_drop > rest_drop + 0.1, (skin_drop, rest_drop)
    # the two parts add up to the whole: Σ face·d = Σ skin·d + Σ rest·d (binary masks here)
    whole = res.pixel_coarse[0] * float(full.sum())
    parts = res.pixel_skin_coarse[0] * float(left.sum()) + res.pixel_rest_coarse[0] * float((full - left).sum())
    assert whole == pytest.approx(parts, rel=1e-3)


def test_masked_lowpass_keeps_constants_and_highpass_keeps_fine_detail():
    from backend.detail import masked_lowpass

    S = 96
    valid = torch.zeros(1, 1, S, S)
    valid[..., 10:80, 20:90] = 1.0
    const = torch.full((1, 1, S, S), 0.7)
    low = masked_lowpass(const, valid, sigma=4.0)
    # normalised convolution: a constant stays constant up to the island border, 0 outside
    assert torch.allclose(low[valid.bool()], torch.tensor(0.7), atol=1e-5)
    assert low[~valid.bool()].abs().max() == 0
    y = torch.arange(S, dtype=torch.float32)[:, None].expand(S, S)
    fine = torch.sin(2 * math.pi * y / 5.0)[None, None]  # 5-texel wavelength
    broad = torch.sin(2 * math.pi * y / 120.0)[None, None]
    inner = valid.bool().clone()
    inner[..., :25, :] = False
    inner[..., 65:, :] = False
    hp = lambda x: (x - masked_lowpass(x, valid, 4.0))[inner]  # noqa: E731
    assert hp(fine).std() > 0.9 * fine[inner].std()  # wrinkles pass
    assert hp(broad).std() < 0.05 * broad[inner].std()  # broad shape errors do not


def test_detail_fit_penalises_broad_offsets(face_model):
    """The fitted displacement is a detail layer: a broad offset in its start value decays under
    the low-frequency penalty, and stays without it (no photometric evidence here). L_disp is off:
    Adam moves a texel ≈ lr per step whatever its gradient's size, so L_disp's tiny pull on a
    constant (w_dz) alone would also wear the offset down within 30 steps."""
    m = face_model
    pose = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 8.0, 0.0]])
    sh = sh_directional(torch.tensor([[0.3, 0.3, 1.0]]), 0.7, 0.5)
    fit = CoarseFitResult(id=torch.zeros(1, m.n_id), exp=torch.zeros(1, m.n_exp), pose=pose, sh=sh,
                          albedo=torch.full((1, 8, 16, 3), 0.6), tex=None, verts=m.mean[None], landmarks=torch.zeros(1, 68, 2))
    image, mask = torch.zeros(1, 112, 112, 3), torch.zeros(1, 112, 112)
    S = 48
    init = torch.full((1, 1, S, S), 0.8)
    from backend.detail import border_fade

    valid = face_tile_layout(m, S).valid[:, None].float()
    inner = border_fade(valid, 4)[0, 0] == 1  # away from the island borders, where the map fades to 0
    cfg = DetailFitConfig(uv_size=S, steps=30, render_size=112, unseen_weight=0.0, weights=DetailLossWeights(disp=0.0))
    kept = fit_detail(m, fit, image, mask, replace(cfg, lowpass_weight=0.0), init=init).displacement[0, 0][inner].mean()
    decayed = fit_detail(m, fit, image, mask, cfg, init=init).displacement[0, 0][inner].abs().mean()
    assert kept > 0.5  # only the smoothness at the faded border wears it down
    assert decayed < 0.3 * kept


def _half_mask_scene(face_model, right_weight: float = 0.0):
    """The band scene with the loss mask's right half (x ≥ 112 of 224) weighted ``right_weight``."""
    scene = _detail_scene(face_model, 64, 224)
    mask = scene["mask"].clone()
    mask[..., 112:] *= right_weight
    pose = scene["fit"].pose
    xy = project(scene["flat"].positions.reshape(1, -1, 3), pose, Camera(224, 224))[0, :, :2].reshape(64, 64, 2)
    return scene, mask, xy


def test_texel_evidence_is_the_share_of_a_texels_pixels_in_the_mask(face_model):
    scene, mask, xy = _half_mask_scene(face_model)
    topo, pose = scene["topo"], scene["fit"].pose
    rend = render(scene["flat"].dense_verts, topo.faces, pose, Camera(224, 224), scene["fit"].sh)
    evidence = texel_evidence(rend.face_idx, rend.fragments.bary, mask * rend.alpha, topo)[0, 0]
    full = texel_evidence(rend.face_idx, rend.fragments.bary, rend.alpha, topo)[0, 0]
    seen = scene["region"]  # facing, valid texels inside the bands' window
    left, right = seen & (xy[..., 0] < 100), seen & (xy[..., 0] > 124)
    assert left.sum() > 100 and right.sum() > 100
    assert evidence[left].mean() > 0.95 and evidence[right].mean() < 0.03
    assert evidence[seen & (xy[..., 0] > 140)].max() < 0.01  # the blur reaches a few texels only
    assert full[seen].mean() > 0.95  # every seen texel counts when the mask is the whole render
    invalid = ~face_tile_layout(face_model, 64).valid[0]
    assert full[invalid].max() == 0
    assert ((evidence >= 0) & (evidence <= 1)).all()


def test_detail_fit_pulls_weakly_seen_texels_flat(face_model):
    """The loss mask weighs the photo's right half at 0.2 (a soft skin-mask edge: hair, brows):
    there the unseen-texel pull shrinks the displacement by at least a fifth against the fit
    without it, and changes nothing where the mask is whole (the left half's bands)."""
    scene, mask, xy = _half_mask_scene(face_model, right_weight=0.2)
    cfg = DetailFitConfig(uv_size=64, steps=60, lr=0.05)
    pulled = fit_detail(face_model, scene["fit"], scene["image"], mask, cfg).displacement[0, 0]
    free = fit_detail(face_model, scene["fit"], scene["image"], mask, replace(cfg, unseen_weight=0.0)).displacement[0, 0]
    region = scene["region"]
    left, right = region & (xy[..., 0] < 100), region & (xy[..., 0] > 130)
    rms = lambda d, m: d[m].pow(2).mean().sqrt().item()  # noqa: E731
    assert rms(free, right) > 0.02
    assert rms(pulled, right) < 0.8 * rms(free, right)
    truth = scene["truth"][0, 0]
    corr = lambda d: torch.corrcoef(torch.stack([d[left], truth[left]]))[0, 1].item()  # noqa: E731
    assert abs(corr(pulled) - corr(free)) < 0.01
    assert corr(pulled) > 0.9
    assert rms(pulled, left) > 0.9 * rms(free, left)


def test_border_fade_is_zero_on_island_borders_and_one_inside():
    from backend.detail import border_fade

    valid = torch.zeros(1, 1, 20, 20)
    valid[..., 2:18, 4:16] = 1.0
    fade = border_fade(valid, 3)
    assert fade[0, 0, 2, 8] == 0 and fade[0, 0, 10, 4] == 0  # border texels
    assert fade[0, 0, 3, 8] == pytest.approx(1 / 3) and fade[0, 0, 4, 8] == pytest.approx(2 / 3)
    assert fade[0, 0, 10, 10] == 1.0
    assert fade[valid == 0].abs().max() == 0


def test_dense_mesh_keeps_stretched_ear_triangles(face_model):
    """Only true cuts between UV islands are left open: a large limit adds almost nothing more
    (the default once dropped stretched ear triangles, which showed as holes)."""
    layout = face_tile_layout(face_model, 128)
    pos = uv_position_map((face_model.mean * torch.tensor([1.0, 1.15, 1.0]))[None], face_model.faces, layout)
    n_default = dense_topology(layout, pos).faces.shape[0]
    n_all = dense_topology(layout, pos, seam_factor=1e6).faces.shape[0]
    assert n_all - n_default <= 0.0005 * n_all


def test_curved_position_map_follows_a_coarse_sphere():
    """Phong tessellation puts the texels of a coarse sphere (10° facets) close to the sphere
    while flat interpolation cuts its chords; at the vertices both are exact."""
    from backend.render import rasterize_uv
    from backend.render.primitives import uv_sphere
    from backend.uvmaps import UVLayout

    verts, faces, uv, faces_uv = uv_sphere(radius=100.0, n_lat=18, n_lon=36)
    frags = rasterize_uv(uv, faces_uv, 128, 128, (0.0, 1.0))
    layout = UVLayout(size=128, frags=frags, valid=frags.face_idx >= 0)
    away_from_poles = layout.valid[0] & (frags.bary[0].max(-1).values < 0.999)
    rows = torch.arange(128)
    away_from_poles &= ((rows[:, None] > 10) & (rows[:, None] < 117))  # the pole fans are degenerate in UV
    radius = {c: uv_position_map(verts[None], faces, layout, curved=c)[0].norm(dim=-1)[away_from_poles] for c in (False, True)}
    flat_err, curved_err = (100.0 - radius[False]).abs().mean(), (100.0 - radius[True]).abs().mean()
    assert flat_err > 0.3  # mm: chords of 10° facets sit up to 0.4 mm inside
    assert curved_err < 0.1 * flat_err  # ½-Phong on a sphere: 0.008 mm
    # texels at a vertex (barycentric ≈ 1) are the vertex itself either way
    at_vertex = layout.valid[0] & (frags.bary[0].max(-1).values > 0.9999)
    if at_vertex.any():
        both = [uv_position_map(verts[None], faces, layout, curved=c)[0][at_vertex] for c in (False, True)]
        torch.testing.assert_close(both[0], both[1], atol=1e-3, rtol=0)


def test_detail_fit_can_tune_a_unet_instead_of_the_map(face_model):
    """Hybrid mode's option: the displacement is the U-Net's output and its weights are what the
    fit optimises. With no steps the result is the net's own prediction (views blended, faded at
    the island borders); with steps the loss pulls a copy of the net towards the photo's bands,
    and the net handed in keeps its weights."""
    from backend.detail import seam_fade
    from backend.detail_input import blend_views, detail_net_input
    from backend.nets.unet import DetailUNet, UNetConfig

    scene = _detail_scene(face_model, 64, 224)
    torch.manual_seed(1)
    net = DetailUNet(UNetConfig(size=32, ngf=8, out_init_std=0.02)).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net_input = detail_net_input(face_model, scene["fit"], scene["image"], 32)
    assert net_input.pair.shape == (1, 6, 32, 32) and 0.3 < net_input.visible.mean() < 0.9
    cfg = DetailFitConfig(uv_size=64, steps=0, net_lr=3e-3)
    start = fit_detail(face_model, scene["fit"], scene["image"], scene["mask"], cfg, net=net, net_input=net_input)
    with torch.no_grad():
        want = blend_views(net(net_input.pair, net_input.visible), net_input.visible)
        want = torch.nn.functional.interpolate(want, size=(64, 64), mode="bilinear", align_corners=False)
        valid = start.layout.valid[:, None].float()
        want = want * valid * seam_fade(valid)
    assert start.displacement.abs().max() > 0.01
    assert torch.allclose(start.displacement, want, atol=1e-6)
    tuned = fit_detail(face_model, scene["fit"], scene["image"], scene["mask"], replace(cfg, steps=60),
                       net=net, net_input=net_input)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert tuned.pixel_skin_detail[0] < 0.8 * tuned.pixel_skin_coarse[0]  # measured 0.71
    assert _corr(start, scene) < 0.2 and _corr(tuned, scene) > 0.5  # measured -0.06 → 0.67
    with pytest.raises(ValueError, match="net_input"):
        fit_detail(face_model, scene["fit"], scene["image"], scene["mask"], cfg, net=net)


def test_no_step_detail_reports_the_prediction_without_extra_renders(face_model, monkeypatch):
    """Predict mode's detail stage (steps = 0): two renders (the coarse surface and the start
    map's; no texel evidence, no albedo-only render: no gain was fitted, so that report is the
    coarse one); the map is the start map (faded at the borders), and its report is better than
    the coarse one when the start map is the truth."""
    import backend.fit.detail as fd

    scene = _detail_scene(face_model, 64, 224)
    calls = []
    monkeypatch.setattr(fd, "render", lambda *a, **k: calls.append(1) or render(*a, **k))
    monkeypatch.setattr(fd, "texel_evidence", lambda *a, **k: pytest.fail("texel evidence without steps"))
    cfg = DetailFitConfig(uv_size=64, steps=0)
    res = fit_detail(face_model, scene["fit"], scene["image"], scene["mask"], cfg, init=scene["truth"])
    assert len(calls) == 2
    assert res.pixel_albedo_only == res.pixel_coarse
    assert res.pixel_detail[0] < 0.8 * res.pixel_coarse[0]
    inner = scene["region"]
    torch.testing.assert_close(res.displacement[0, 0][inner], scene["truth"][0, 0][inner].clamp(-3, 3), atol=0.05, rtol=0)


def test_default_detail_schedule_recovers_detail_as_the_longer_one(face_model):
    """The default preset's detail schedule (20 steps at lr 0.065) recovers the known bands within
    2 % of the correlation of the 28 steps at lr 0.05 it replaced (0.892 against 0.893 at 64²)."""
    from backend.preset import PRESETS
    from backend.quality import DEFAULT

    preset = PRESETS[DEFAULT].detail
    scene = _detail_scene(face_model, 64, 224)
    corr = {}
    for steps, lr in ((preset.steps, preset.lr), (28, 0.05)):
        res = fit_detail(face_model, scene["fit"], scene["image"], scene["mask"],
                         DetailFitConfig(uv_size=64, steps=steps, lr=lr, render_size=224))
        corr[steps] = _corr(res, scene)
        assert res.pixel_detail[0] < 0.3 * res.pixel_coarse[0]
    assert preset.steps < 28 and corr[preset.steps] >= 0.98 * corr[28] and corr[28] > 0.85, corr


def test_detail_fit_raises_no_relief_from_face_paint(face_model):
    """Paint discs and a stroke in the photo's albedo with no geometry under them (the coarse
    albedo is plain skin): the shading gate keeps the displacement under the paint near 0 (RMS
    0.032 mm against 0.297 mm without it), and the bands more than 3 texels from the paint are
    recovered as well as without it (correlation 0.856 against 0.854, RMS 0.239 against 0.229 mm)."""
    scene = _detail_scene(face_model, 64, 224, paint=True)
    cfg = DetailFitConfig(uv_size=64, steps=40, lr=0.05)
    gated = fit_detail(face_model, scene["fit"], scene["image"], scene["mask"], cfg).displacement[0, 0]
    free = fit_detail(face_model, scene["fit"], scene["image"], scene["mask"],
                      replace(cfg, shading_gate=None)).displacement[0, 0]
    seen = face_tile_layout(face_model, 64).valid[0] & (scene["region"] | scene["paint"])
    paint = scene["paint"] & seen
    near = torch.nn.functional.max_pool2d(scene["paint"][None, None].float(), 7, 1, 3)[0, 0] > 0
    away = scene["region"] & ~near
    rms = lambda d, m: d[m].pow(2).mean().sqrt().item()  # noqa: E731
    truth = scene["truth"][0, 0]
    corr = lambda d: torch.corrcoef(torch.stack([d[away], truth[away]]))[0, 1].item()  # noqa: E731
    assert paint.sum() > 40 and away.sum() > 300
    assert rms(free, paint) > 0.15
    assert rms(gated, paint) < 0.4 * rms(free, paint)
    assert corr(gated) > corr(free) - 0.02 and corr(gated) > 0.8
    assert rms(gated, away) > 0.9 * rms(free, away)  # the bands keep their amplitude


def test_the_hidden_half_of_a_turned_face_takes_its_mirrors_relief(face_model):
    """A face turned 46°: given the face tile's mirror (backend.texture.face_tile_mirror), the
    texels turned away from the camera follow their mirror texel's fitted displacement
    (correlation 0.61, against 0.13 without: there they flatten); the seen half is fitted as
    before (its correlation with the truth within 0.01)."""
    from backend.texture import face_tile_mirror

    S = 64
    scene = _detail_scene(face_model, S, 224, yaw=0.8)
    cfg = DetailFitConfig(uv_size=S, steps=40, lr=0.05)
    grid, valid = face_tile_mirror(face_model, S)
    plain = fit_detail(face_model, scene["fit"], scene["image"], scene["mask"], cfg).displacement
    mirrored = fit_detail(face_model, scene["fit"], scene["image"], scene["mask"], cfg, mirror=(grid, valid)).displacement
    at = lambda d: torch.nn.functional.grid_sample(d, grid[None], align_corners=False)[0, 0]  # noqa: E731
    seen = scene["region"]
    seen_mirror = at(seen[None, None].float()) > 0.99
    hidden = valid & seen_mirror & (scene["towards"] < 0.0) & (at(mirrored).abs() > 0.05)  # turned away: unseen
    assert hidden.sum() > 100, int(hidden.sum())
    follows = lambda d: torch.corrcoef(torch.stack([d[0, 0][hidden], at(d)[hidden]]))[0, 1].item()  # noqa: E731
    assert follows(mirrored) > 0.5 and follows(mirrored) > follows(plain) + 0.3, (follows(mirrored), follows(plain))
    truth = scene["truth"][0, 0]
    c = lambda d: torch.corrcoef(torch.stack([d[0, 0][seen], truth[seen]]))[0, 1].item()  # noqa: E731
    assert abs(c(mirrored) - c(plain)) < 0.01, (c(mirrored), c(plain))
