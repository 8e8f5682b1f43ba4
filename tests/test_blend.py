"""Multi-band UV blending, hole filling, gain equalisation and per-view confidence (backend.blend)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.blend import (
    ConfidenceSettings, EqualizeSettings, equalize_views, facing_texels, fill_holes, multiband_blend,
    per_view_confidence, pixels_per_texel, scatter_texels, silhouette_distance, texel_subset, weighted_average,
)
from backend.camera import Camera, project, to_camera_space
from backend.lighting import vertex_normals
from backend.render import Fragments, Unwrapped, rasterize, rasterize_uv, unwrap_image

H, W = 64, 128


def _ramp() -> torch.Tensor:
    """(H,W,3) smooth colour ramp along u."""
    x = torch.linspace(0.0, 1.0, W).expand(H, W)
    return torch.stack([0.2 + 0.6 * x, 0.3 + 0.3 * x, 0.7 - 0.4 * x], -1)


def _max_step_u(img: torch.Tensor) -> float:
    return float((img[:, 1:] - img[:, :-1]).abs().max())


def _two_views_with_seam(gain: float = 1.3):
    """Both views see the ramp; view 1 is brighter; weights switch hard at the middle."""
    ramp = _ramp()
    left = (torch.arange(W) < W // 2).float().expand(H, W)
    return ramp, torch.stack([ramp, ramp * gain]), torch.stack([left, 1.0 - left])


def test_multiband_spreads_a_brightness_seam_that_averaging_leaves_as_a_step():
    ramp, maps, weights = _two_views_with_seam()
    avg, _ = weighted_average(maps, weights)
    blended, coverage = multiband_blend(maps, weights, levels=4)
    slope = _max_step_u(ramp)  # 0.0047 per texel
    step_avg = _max_step_u(avg)
    step_mb = _max_step_u(blended)
    assert step_avg > 0.15  # the hard seam: 0.3 × the ramp's value at the middle
    assert step_mb < 0.03 and step_mb < step_avg / 5, (step_mb, step_avg, slope)
    torch.testing.assert_close(coverage, torch.ones(H, W))
    # far from the seam each side keeps its own view (detail and level)
    torch.testing.assert_close(blended[:, :8], maps[0][:, :8], atol=2e-3, rtol=0)
    torch.testing.assert_close(blended[:, -8:], maps[1][:, -8:], atol=2e-3, rtol=0)


def test_levels_one_is_the_weighted_average():
    _, maps, weights = _two_views_with_seam()
    weights = weights * 0.7 + 0.1
    torch.testing.assert_close(multiband_blend(maps, weights, levels=1)[0], weighted_average(maps, weights)[0])


def test_single_view_reproduced_exactly_where_weighted():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 50, 70, 3, generator=g)  # odd sizes on purpose
    weight = torch.rand(1, 50, 70, generator=g) * (torch.rand(1, 50, 70, generator=g) > 0.4)
    out, coverage = multiband_blend(image, weight)
    seen = weight[0] > 0
    torch.testing.assert_close(out[seen], image[0][seen], atol=1e-5, rtol=0)
    torch.testing.assert_close(coverage, weight[0])
    assert torch.isfinite(out).all()


def test_single_view_blend_is_its_map_without_a_pyramid():
    g = torch.Generator().manual_seed(2)
    image = torch.rand(1, 40, 60, 3, generator=g)
    weight = torch.rand(1, 40, 60, generator=g) * (torch.rand(1, 40, 60, generator=g) > 0.5)
    seen = weight[0] > 0
    out, coverage = multiband_blend(image, weight, fill=False)
    assert torch.equal(out[seen], image[0][seen]) and (out[~seen] == 0).all()  # exactly
    filled, _ = multiband_blend(image, weight)
    assert torch.equal(filled[seen], image[0][seen]) and torch.isfinite(filled).all()
    torch.testing.assert_close(coverage, weight[0])


def test_uncovered_texels_are_filled_smoothly_not_black():
    ramp, maps, weights = _two_views_with_seam(gain=1.0)
    hole = torch.zeros(H, W, dtype=torch.bool)
    hole[20:44, 30:100] = True  # no view sees it, across the seam
    weights = weights * (~hole).float()
    out, coverage = multiband_blend(maps, weights)
    assert (coverage[hole] == 0).all()
    err = (out - ramp).abs()
    assert float(err[hole].max()) < 0.03  # close to the (linear) truth, nowhere near black
    assert _max_step_u(out) < 3 * _max_step_u(ramp) + 1e-3
    assert float((out[1:] - out[:-1]).abs().max()) < 0.01  # no ridges across rows either
    off, _ = multiband_blend(maps, weights, fill=False)
    assert (off[hole] == 0).all()


def test_fill_holes_keeps_known_texels_and_interpolates_holes():
    ramp = _ramp()
    known = torch.ones(H, W, dtype=torch.bool)
    known[10:50, 40:100] = False
    filled = fill_holes(ramp, known)
    assert torch.equal(filled[known], ramp[known])
    assert float((filled - ramp).abs().max()) < 0.02
    assert _max_step_u(filled) < 2.5 * _max_step_u(ramp)
    # batched and numpy forms agree
    batch = fill_holes(torch.stack([ramp, ramp]), torch.stack([known, known]))
    torch.testing.assert_close(batch[1], filled)
    as_np = fill_holes(ramp.numpy(), known.numpy())
    assert isinstance(as_np, np.ndarray)
    np.testing.assert_allclose(as_np, filled.numpy(), atol=1e-6)


def test_equalize_views_recovers_relative_gain_and_bias():
    g = torch.Generator().manual_seed(2)
    ramp = _ramp() * (1.0 + 0.1 * torch.rand(H, W, 1, generator=g))
    u = torch.arange(W).float().expand(H, W)
    w0 = (u < 80).float()
    w1 = (u >= 50).float()  # 30 columns of overlap
    gain = torch.tensor([1.25, 1.1, 0.9])
    maps = torch.stack([ramp, ramp * gain])
    eq = equalize_views(maps, torch.stack([w0, w1]))
    ratio = eq.gain[1] / eq.gain[0]
    torch.testing.assert_close(ratio, 1.0 / gain, atol=2e-3, rtol=0)
    overlap = (w0 * w1) > 0
    assert float((eq.maps[0] - eq.maps[1])[overlap].abs().max()) < 2e-3
    # the overall level stays: the coverage-weighted mean gain is 1
    assert abs(float(eq.gain.mean()) - 1.0) < 0.1
    # with an offset as well: gain + bias
    bias = torch.tensor([0.05, -0.03, 0.02])
    maps = torch.stack([ramp, ramp * gain + bias])
    before = float((maps[0] - maps[1])[overlap].abs().max())
    eq = equalize_views(maps, torch.stack([w0, w1]), EqualizeSettings(bias=True))
    after = float((eq.maps[0] - eq.maps[1])[overlap].abs().max())
    assert after < 6e-3 and after < before / 20, (before, after)  # the priors leave a trace
    # a view that overlaps nothing keeps gain 1, bias 0
    lone = equalize_views(maps, torch.stack([(u < 40).float(), (u >= 60).float()]), EqualizeSettings(bias=True))
    torch.testing.assert_close(lone.gain, torch.ones(2, 3))
    torch.testing.assert_close(lone.bias, torch.zeros(2, 3))
    torch.testing.assert_close(lone.maps, maps)


def test_blend_rejects_bad_inputs():
    maps = torch.rand(2, 8, 8, 3)
    with pytest.raises(ValueError, match="weights"):
        multiband_blend(maps, torch.rand(2, 8, 9))
    with pytest.raises(ValueError, match="non-negative"):
        multiband_blend(maps, -torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="levels"):
        multiband_blend(maps, torch.rand(2, 8, 8), levels=0)


def test_pixels_per_texel_of_an_affine_projection():
    i, j = torch.meshgrid(torch.arange(10.0), torch.arange(12.0), indexing="ij")
    # x = 2 u + 0.5 v, y = 3 v: |det J| = 6 pixels² per texel
    screen = torch.stack([2.0 * j + 0.5 * i + 5.0, 3.0 * i + 1.0, torch.zeros_like(i)], -1)[None]
    valid = torch.ones(1, 10, 12, dtype=torch.bool)
    valid[0, 4, 5] = False
    ppt = pixels_per_texel(screen, valid)
    expected = torch.full((1, 10, 12), 6.0**0.5)
    expected[0, 4, 5] = 0.0
    torch.testing.assert_close(ppt, expected)


def _pixels_per_texel_reference(screen: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Slow twin of pixels_per_texel: per texel, the shorter valid of the forward and backward
    difference along each axis (Python loops)."""
    V, Ht, Wt = valid.shape
    out = torch.zeros(V, Ht, Wt)
    p = screen[..., :2]

    def diff(v, i, j, di, dj):
        best = None
        for a, b in (((i, j), (i + di, j + dj)), ((i - di, j - dj), (i, j))):
            if 0 <= min(a + b) and max(a[0], b[0]) < Ht and max(a[1], b[1]) < Wt and valid[v][a] and valid[v][b]:
                d = p[v][b] - p[v][a]
                if best is None or float(d.norm()) < float(best.norm()):
                    best = d
        return best

    for v in range(V):
        for i in range(Ht):
            for j in range(Wt):
                du, dv = diff(v, i, j, 0, 1), diff(v, i, j, 1, 0)
                if valid[v, i, j] and du is not None and dv is not None:
                    out[v, i, j] = float(abs(du[0] * dv[1] - du[1] * dv[0])) ** 0.5
    return out


def test_pixels_per_texel_matches_the_slow_reference():
    g = torch.Generator().manual_seed(3)
    for shape in ((1, 1, 1), (1, 2, 5), (2, 7, 9)):
        screen = torch.rand(*shape, 3, generator=g) * 20.0
        valid = torch.rand(*shape, generator=g) > 0.3
        torch.testing.assert_close(pixels_per_texel(screen, valid), _pixels_per_texel_reference(screen, valid))


def test_silhouette_distance_and_depth_jumps():
    mask = torch.zeros(1, 21, 21, dtype=torch.bool)
    mask[0, 5:16, 5:16] = True
    d = silhouette_distance(mask)
    assert float(d[0, 10, 10]) == 6.0 and float(d[0, 5, 10]) == 1.0 and float(d[0, 0, 0]) == 0.0
    depth = torch.zeros(1, 21, 21)
    depth[0, :, 11:] = 50.0  # right half much farther: its first column borders an occluder
    d2 = silhouette_distance(mask, depth, depth_jump=4.0)
    assert float(d2[0, 10, 11]) == 0.0 and float(d2[0, 10, 12]) == 1.0
    assert float(d2[0, 10, 10]) == 1.0  # the near side also ramps from the contour
    assert float(d2[0, 10, 6]) == float(d[0, 10, 6])  # away from the jump: the mask's distance


def test_per_view_confidence_terms():
    Ht, Wt = 8, 20
    cos = torch.linspace(0.0, 1.0, Wt).expand(1, Ht, Wt)
    i, j = torch.meshgrid(torch.arange(float(Ht)), torch.arange(float(Wt)), indexing="ij")
    screen = torch.stack([j + 10.0, i + 10.0, torch.zeros_like(i)], -1)[None]  # one pixel per texel
    un = Unwrapped(texture=torch.zeros(1, Ht, Wt, 3), visible=torch.ones(1, Ht, Wt, dtype=torch.bool),
                   cosine=cos, screen=screen)
    far = torch.full((1, 40, 40), 100.0)
    s = ConfidenceSettings(resolution_power=0.0)
    c = per_view_confidence(un, far, s)
    assert (c[cos <= 0.2] == 0).all() and (c[cos >= 0.7] == 1).all()
    inner = (cos > 0.25) & (cos < 0.65)
    assert ((c[inner] > 0) & (c[inner] < 1)).all()
    # near the silhouette the weight ramps to 0; an image weight multiplies in
    near = torch.full((1, 40, 40), 3.0)
    c_near = per_view_confidence(un, near, s)
    torch.testing.assert_close(c_near, c * 0.5)  # smoothstep(3/6) = 0.5
    half = torch.full((1, 40, 40), 0.25)
    torch.testing.assert_close(per_view_confidence(un, far, s, image_weight=half), c * 0.25)
    # resolution: the same texels seen at half the resolution by a second view
    un2 = Unwrapped(texture=torch.zeros(2, Ht, Wt, 3), visible=torch.ones(2, Ht, Wt, dtype=torch.bool),
                    cosine=torch.ones(2, Ht, Wt), screen=torch.cat([screen, screen * 0.5]))
    c2 = per_view_confidence(un2, far.expand(2, -1, -1), ConfidenceSettings())
    torch.testing.assert_close(c2[0], torch.ones(Ht, Wt))
    torch.testing.assert_close(c2[1], torch.full((Ht, Wt), 0.5))
    # hidden texels weigh nothing
    un3 = Unwrapped(texture=un.texture, visible=torch.zeros_like(un.visible), cosine=cos, screen=screen)
    assert (per_view_confidence(un3, far) == 0).all()
    # an image weight covering the same frame at another resolution is sampled at the same places
    left = torch.zeros(1, 40, 40)
    left[:, :, :20] = 1.0
    coarse_left = torch.nn.functional.avg_pool2d(left[:, None], 4)[:, 0]  # (1,10,10)
    ramp = per_view_confidence(un, far, s, image_weight=left)
    torch.testing.assert_close(per_view_confidence(un, far, s, image_weight=coarse_left)[:, :, :8], ramp[:, :, :8])


def test_texel_subsets_scatter_back_to_the_layout():
    frags = Fragments(face_idx=torch.arange(12).view(1, 3, 4) - 2, bary=torch.rand(1, 3, 4, 3),
                      depth=torch.zeros(1, 3, 4))
    index = torch.tensor([2, 5, 11])
    sub = texel_subset(frags, index)
    assert sub.face_idx.shape == (1, 1, 3) and sub.face_idx.flatten().tolist() == [0, 3, 9]
    torch.testing.assert_close(sub.bary[0, 0], frags.bary.reshape(-1, 3)[index])
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    maps = scatter_texels(values, index, 3, 4)
    assert maps.shape == (2, 3, 4) and float(maps.sum()) == 21.0
    assert torch.equal(maps.flatten(1, 2).index_select(1, index), values)
    flags = scatter_texels(torch.ones(1, 3, dtype=torch.bool), index, 3, 4)
    assert flags.dtype == torch.bool and int(flags.sum()) == 3


def test_facing_texels_unwrap_what_the_whole_layout_does(face_model):
    """Unwrapping only the texels some view can face gives the whole layout's unwrap (and
    confidence) on every visible texel; the others are the back of the head."""
    m, S, Ht = face_model, 96, 64
    cam = Camera(S, S)
    pose = torch.tensor([[S / 260.0, 0.1, 0.5, 0.05, 0.0, 5.0, 0.0], [S / 260.0, -0.2, -0.9, 0.0, 3.0, 0.0, 0.0]])
    verts = m(torch.zeros(2, m.n_id), torch.zeros(2, m.n_exp))
    image = torch.rand(2, S, S, 3, generator=torch.Generator().manual_seed(4))
    screen = rasterize(project(verts, pose, cam), m.faces, S, S)
    u_range = (0.0, float(m.uv_tiles))
    full = unwrap_image(image, verts, m.faces, pose, cam, rasterize_uv(m.uv, m.faces_uv, Ht, Ht * m.uv_tiles, u_range),
                        fragments=screen)
    normals = vertex_normals(to_camera_space(verts, pose, "orthographic"), m.faces)
    frags, index = facing_texels(m.uv, m.faces_uv, m.faces, normals, Ht, Ht * m.uv_tiles, u_range)
    assert 0 < index.numel() < int((full.cosine != 0).sum())
    part = unwrap_image(image, verts, m.faces, pose, cam, frags, fragments=screen)
    un = Unwrapped(*(scatter_texels(x[:, 0], index, Ht, Ht * m.uv_tiles)
                     for x in (part.texture, part.visible, part.cosine, part.screen)))
    assert torch.equal(un.visible, full.visible)
    vis = full.visible
    assert torch.equal(un.texture[vis], full.texture[vis]) and torch.equal(un.screen[vis], full.screen[vis])
    dist = silhouette_distance(screen.mask, screen.depth, 4.0)
    torch.testing.assert_close(per_view_confidence(un, dist), per_view_confidence(full, dist), rtol=0, atol=0)
