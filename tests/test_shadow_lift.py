"""Hard light in the albedo (backend.shadow_lift): a synthetic face rendered under a strong
one-sided light with the clamped Lambert term (an attached shadow the 2nd-order SH cannot fit),
the SH fitted to it by least squares, de-lit by backend.texture.delit_albedo: the shadow half's
albedo error and the fill colour's error fall; under a symmetric light nothing changes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.shadow_lift import LUMA, ShadowLiftSettings, lit_skin_colour, relative_shading, shadow_gain

RES = 128  # texels per UV tile of the albedo under test


def _side_lit_view(model, direction: tuple[float, float, float], ambient: float, intensity: float, soft: float = 1.0):
    """A frontal synthetic face (its 224² render is the crop) lit by ``ambient`` + ``intensity``
    · max(0, n·l) (the clamped cosine, per pixel), the SH fitted to that shading by least squares
    (what a coarse fit can do at best), the fit result and the true albedo (S,S·tiles,3)."""
    from backend.align import face_mask
    from backend.camera import Camera, project
    from backend.fit.coarse import CoarseFitResult
    from backend.lighting import sh_shading
    from backend.prepare import PreparedView
    from backend.render import RenderSettings, render
    from backend.skin import skin_mask
    from evaluation.multiview_scene import synthetic_views

    scene = synthetic_views(model, (0.0,), size=224, tex_res=128, seed=3, noise=0.0, gain_spread=0.0)
    out = render(scene.verts, scene.faces, scene.poses, scene.camera, None, texture=scene.albedo, uv=scene.uv,
                 faces_uv=scene.faces_uv, settings=RenderSettings(u_range=scene.u_range))
    n, mask = out.normals[0], out.mask[0]  # (224,224,3) camera space, (224,224)
    light = torch.nn.functional.normalize(torch.tensor(direction), dim=0)
    lit = (n @ light).clamp_min(0.0) * (1.0 - _cast_shadow(out.depth[0], mask, light))
    shading = ambient + intensity * lit  # (224,224) grey
    image = (out.albedo[0] * shading[..., None]).clamp(0, 1) * mask[..., None]
    # least-squares SH (grey): the shading of each basis coefficient at the face's normals
    normals = n[mask]  # (P,3)
    basis = torch.stack([sh_shading(normals[None], torch.eye(27)[k : k + 1])[0, :, 0] for k in range(9)], 1)
    coef = torch.linalg.lstsq(basis.double(), shading[mask].double()[:, None]).solution[:, 0].float()
    coef[1:] = coef[1:] * soft  # a softer light than the least-squares one: a fit's smooth albedo takes part of it
    sh = torch.zeros(1, 27)
    for c in range(3):
        sh[0, 9 * c : 9 * c + 9] = coef
    lm = project(scene.verts, scene.poses, Camera(224, 224))[:, model.landmarks68, :2].float()
    lm0 = lm[0].double().numpy()
    rgb = np.round(image.numpy() * 255).astype(np.uint8)
    crop = rgb.astype(np.float32) / 255
    eye = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    view = PreparedView(name="synthetic", image=rgb, detected68=lm0, face_box=np.r_[lm0.min(0), lm0.max(0)],
                        crop_from_image=eye, image_from_crop=eye, crop=crop, crop_landmarks=lm0,
                        face_mask=face_mask(lm0, 224, 224, soft_px=1.0), skin_mask=skin_mask(crop, lm0, 224))
    fit = CoarseFitResult(id=torch.zeros(1, model.n_id), exp=torch.zeros(1, model.n_exp), pose=scene.poses, sh=sh,
                          albedo=None, tex=None, verts=scene.verts, landmarks=lm)
    truth = torch.nn.functional.interpolate(scene.albedo.permute(2, 0, 1)[None], scale_factor=RES / 128,
                                            mode="area")[0].permute(1, 2, 0).numpy()
    return view, fit, truth


def _cast_shadow(depth: torch.Tensor, mask: torch.Tensor, light: torch.Tensor, steps: int = 90) -> torch.Tensor:
    """Screen-space cast shadows of an orthographic render: a pixel is shadowed when, marching
    from it towards the light (camera space, y up, +z towards the camera) in 1-pixel steps, the
    depth buffer (H,W) (pixels, smaller = nearer) lies more than 1.5 px nearer than the ray.
    Returns (H,W) float 0/1."""
    H, W = depth.shape
    step = light / light[:2].norm().clamp_min(1e-6)  # one pixel across the image a step
    t = torch.arange(1, steps + 1, dtype=depth.dtype)[:, None, None]  # (T,1,1)
    y, x = torch.meshgrid(torch.arange(H, dtype=depth.dtype), torch.arange(W, dtype=depth.dtype), indexing="ij")
    xs, ys = x + t * step[0], y - t * step[1]  # (T,H,W)
    ray = depth - t * step[2]  # nearer as it rises towards the light
    inside = (xs >= 0) & (xs <= W - 1) & (ys >= 0) & (ys <= H - 1)
    xi, yi = xs.round().long().clamp(0, W - 1), ys.round().long().clamp(0, H - 1)
    hit = inside & mask[yi, xi] & (depth[yi, xi] < ray - 1.5)
    return (hit.any(0) & mask).to(depth.dtype)


def _errors(model, albedo: np.ndarray, weights: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Scale-free errors (a fit's light and albedo share an unknown gain): the mean luminance of
    each half of the well-seen face-tile texels (u < ½: ``left``, the other ``right``) over the
    true albedo's, divided by the same ratio over the whole seen face, minus 1; and the fill
    colour's (a texel no view sees) luminance over the reconstructed face's median, against
    the true skin's (``fill``, 0 = right)."""
    from backend.texture import model_face_region

    luma = np.array(LUMA)
    region = model_face_region(model, RES, RES * model.uv_tiles).numpy()
    seen = (weights[0] > 0.3) & region
    got, true = albedo @ luma, truth @ luma
    u = np.arange(albedo.shape[1])[None, :].repeat(albedo.shape[0], 0)
    half = u < RES // 2
    scale = got[seen].mean() / true[seen].mean()
    out = {k: float(got[seen & m].mean() / true[seen & m].mean() / scale - 1.0) for k, m in (("left", half), ("right", ~half))}
    out["fill"] = float(got[0, -1] / scale / np.median(true[seen]) - 1.0)
    return out


@pytest.mark.slow
def test_side_light_shadow_half_and_fill_colour(face_model):
    """Light from one side (clamped cosine with cast shadows, ambient 0.12), the fit's SH softer
    than the least-squares one: without the step the shadow half's albedo is ≈ 16 % darker than
    it should be against the lit half ≈ 15 % brighter; with it both within a third of that; the
    fill colour stays within 12 % of the true skin's luminance."""
    from backend.texture import delit_albedo

    cpu = torch.device("cpu")
    view, fit, truth = _side_lit_view(face_model, (1.0, 0.15, 0.35), 0.12, 0.95, soft=0.6)
    before = _errors(face_model, *delit_albedo(face_model, fit, [view], RES, cpu, shadows=False), truth)
    after = _errors(face_model, *delit_albedo(face_model, fit, [view], RES, cpu), truth)
    print(before, after)
    assert before["left"] < -0.12 and before["right"] > 0.12, before  # the SH leaves the shadow in the albedo
    for k in ("left", "right"):
        assert abs(after[k]) < abs(before[k]) / 3.0, (k, before, after)
    assert abs(after["fill"]) < 0.12, after


@pytest.mark.slow
def test_symmetric_light_changes_nothing(face_model):
    """Light from the front: the albedo stays within 0.005 (mean absolute) of its value without
    the step, the fill colour's luminance within 5 %."""
    from backend.texture import delit_albedo

    cpu = torch.device("cpu")
    view, fit, truth = _side_lit_view(face_model, (0.0, 0.3, 1.0), 0.3, 0.7, soft=0.6)
    before, w = delit_albedo(face_model, fit, [view], RES, cpu, shadows=False)
    after, _ = delit_albedo(face_model, fit, [view], RES, cpu)
    seen = w[0] > 0.3
    change = np.abs(after - before)[seen].mean()
    fill = after[0, -1] @ np.array(LUMA) / (before[0, -1] @ np.array(LUMA)) - 1.0
    print(change, fill)
    assert change < 0.005 and abs(fill) < 0.05, (change, fill)


def test_shadow_gain_lifts_the_dark_half_to_its_mirror():
    """A map whose right half is at 0.3 of the left's luminance, shading low on the right: the
    gain there is ≈ 1/0.3 (capped at max_gain 3 → ≈ 3), 1 on the left; with equal halves 1."""
    H, W = 64, 64
    v, u = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    grid = torch.stack([1.0 - (u + 0.5) / W * 2.0, (v + 0.5) / H * 2.0 - 1.0], -1)  # mirror u → W − u
    valid = torch.ones(H, W, dtype=torch.bool)
    right = (u >= W // 2)
    maps = torch.full((1, H, W, 3), 0.6)
    maps[0][right] = 0.24  # 0.4 of the left
    rel = torch.where(right, 0.2, 1.0)[None].float()
    s = ShadowLiftSettings(texel_mm=0.57 * 512 / H)  # no pooling at this size
    gain = shadow_gain(maps, torch.ones(1, H, W), rel, grid, valid, s)[0]
    assert float(gain[:, W - 12 :].mean()) == pytest.approx(2.5, abs=0.1)
    assert float(gain[:, :W // 2].max()) < 1.01
    even = shadow_gain(torch.full((1, H, W, 3), 0.6), torch.ones(1, H, W), rel, grid, valid, s)
    assert float(even.max()) < 1.001


def test_lit_skin_colour_reads_the_lit_texels():
    """Half the covered texels shadowed (colour 0.2), half lit (0.7): the lit colour is 0.7,
    where a median over all would pick 0.2–0.7; too few lit texels give None."""
    H, W = 32, 32
    blended = torch.full((H, W, 3), 0.7)
    blended[:, 16:] = 0.2
    blended[:, 15] = 0.45
    rel = torch.ones(1, H, W)
    rel[0, :, 15:] = 0.3
    colour = lit_skin_colour(blended, torch.ones(H, W), rel, torch.ones(1, H, W))
    assert torch.allclose(colour, torch.full((3,), 0.7))
    assert lit_skin_colour(blended, torch.ones(H, W), torch.zeros(1, H, W), torch.ones(1, H, W)) is None


def test_relative_shading_is_one_at_the_lit_quantile():
    shading = torch.linspace(0.1, 1.0, 100).view(1, 10, 10, 1).expand(1, 10, 10, 3)
    rel = relative_shading(shading, torch.ones(1, 10, 10))
    assert float(rel.max()) == pytest.approx(1.0 / 0.955, rel=0.01)
    assert math.isclose(float(rel.min()), 0.1 / 0.955, rel_tol=0.02)
