"""Completing the albedo where no view sees the head (backend.texture_fill): the hidden half of a
turned face takes its mirror's colour, a seen texel keeps its own; the fill continues the seen skin
at the coverage edge (where one constant colour leaves a seam), tends to the skin colour far from
it, and is one colour on both sides of a UV seam."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as Fn

from backend.blend import fill_holes
from backend.texture_fill import harmonic_fill, mirror_complete, mirror_donor, skin_colour, skin_tone
from tests.test_hair_fill import _synthetic_view


def _left_right_grid(H: int, W: int) -> torch.Tensor:
    """(H,W,2) grid_sample grid of the texel mirrored left ↔ right."""
    ys, xs = torch.meshgrid(torch.linspace(-1 + 1 / H, 1 - 1 / H, H), torch.linspace(-1 + 1 / W, 1 - 1 / W, W),
                            indexing="ij")
    return torch.stack([-xs, ys], -1)


def test_mirror_complete_takes_the_mirror_colour_and_keeps_seen_texels():
    H, W = 4, 8
    colour = torch.rand(H, W, 4, generator=torch.Generator().manual_seed(0))
    opacity = torch.zeros(H, W)  # the trust in each texel's own colour
    opacity[:, :4] = 1.0  # the left half seen
    opacity[1, 5] = 0.5  # a texel half seen on the right (or seen at a grazing angle)
    out, alpha = mirror_complete(colour, opacity, opacity, _left_right_grid(H, W), torch.ones(H, W))
    assert torch.equal(out[:, :4], colour[:, :4]) and torch.equal(alpha[:, :4], opacity[:, :4])
    torch.testing.assert_close(out[0, 7], colour[0, 0])  # unseen: its mirror's colour, fully
    assert float(alpha[0, 7]) == pytest.approx(1.0)
    # half seen, a donor by half, its mirror fully: its own colour holds 0.5 × (1 − (1 − 0.5)) = ¼
    torch.testing.assert_close(out[1, 5], 0.25 * colour[1, 5] + 0.75 * colour[1, 2])
    both = torch.ones(H, W)  # both halves seen well (a frontal face): each keeps its own colour
    out, alpha = mirror_complete(colour, both, both, _left_right_grid(H, W), torch.ones(H, W))
    assert torch.equal(out, colour) and torch.equal(alpha, both)
    out, alpha = mirror_complete(colour, opacity, opacity, _left_right_grid(H, W), torch.zeros(H, W))  # no reach: no change
    assert torch.equal(alpha, opacity) and torch.equal(out, colour)


def test_donors_and_sources():
    cov = torch.tensor([0.0, 0.3, 0.5, 0.7, 2.0])
    assert mirror_donor(cov).tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    skin = torch.tensor([0.6, 0.45, 0.4])
    tone = skin_tone(torch.stack([skin, 0.5 * skin, 0.7 * skin, 1.2 * skin, 1.6 * skin]), skin)
    assert tone.tolist() == pytest.approx([1.0, 0.0, 0.5, 1.0, 0.0])  # shadows, beards, highlights: no sources
    colour = torch.zeros(2, 2, 3)
    colour[0] = skin
    assert torch.equal(skin_colour(colour, torch.tensor([[1.0, 0.6], [0.2, 0.0]]), (0.1, 0.1, 0.1)), skin)
    assert skin_colour(colour, torch.zeros(2, 2), (0.1, 0.2, 0.3)).tolist() == pytest.approx([0.1, 0.2, 0.3])


@pytest.fixture(scope="module")
def layout128(face_model):
    from backend.texture import model_face_region, model_fill_layout

    H = 128
    layout, reach = model_fill_layout(face_model, H, H * face_model.uv_tiles)
    return layout, reach, model_face_region(face_model, H, H * face_model.uv_tiles)


def test_the_fill_continues_the_skin_at_the_coverage_edge_and_tends_to_its_colour(face_model, layout128):
    """The upper part of the face region seen, with a colour that darkens from brow to chin: just
    below the seen part the fill has the adjacent skin's colour (a constant median does not); far
    from it (the back of the head) the skin colour."""
    layout, _, region = layout128
    H, W = region.shape
    v = torch.linspace(1.0, 0.0, H)[:, None, None]  # UV v: 1 at the top row
    colour = torch.tensor([0.45, 0.3, 0.25]) + v * torch.tensor([0.35, 0.3, 0.25])  # (H,1,3) darker downwards
    colour = colour.expand(H, W, 3).contiguous()
    rows = region.any(1).nonzero()[:, 0]
    cut = int(rows[0] + 0.6 * (rows[-1] - rows[0]))  # seen above this row
    source = (region & (torch.arange(H)[:, None] < cut)).float()
    skin = skin_colour(colour, source, (0.5, 0.5, 0.5))
    fill = harmonic_fill(colour, source, skin, face_model.faces, layout)
    near = region[cut : cut + 3]  # the 3 rows (≈ 7 mm) below the seen part
    edge = colour[cut - 1, 0]  # the adjacent seen skin
    err = (fill[cut : cut + 3] - edge).abs()[near].mean()
    err_constant = (skin - edge).abs().mean()
    assert near.sum() > 50 and err < 0.03 and err_constant > 0.06, (err, err_constant)
    # the texels more than 80 mm from every face vertex (the back of the head): the skin colour
    mean = face_model.mean.float()
    face = torch.isin(face_model.region, torch.tensor(face_model.face_mask_regions))
    far_v = torch.cdist(mean, mean[face]).amin(1) > 80.0  # (N,)
    far = far_v[face_model.faces[layout.texel_face]].all(-1) & layout.inside
    assert far.sum() > 150
    assert float((fill - skin).abs()[far].max()) < 0.02  # 0.011 (next to the seen part: 0.06)


def test_the_fill_is_one_colour_on_both_sides_of_a_uv_seam(face_model, layout128):
    """A vertex with several UV copies (on a seam between islands or tiles) gives each copy the
    same fill colour: the fill is solved on the mesh."""
    layout, _, region = layout128
    H, W = region.shape
    g = torch.Generator().manual_seed(1)
    colour = 0.4 + 0.3 * Fn.interpolate(torch.rand(1, 3, 8, 16, generator=g), size=(H, W), mode="bilinear",
                                        align_corners=False)[0].permute(1, 2, 0)
    fill = harmonic_fill(colour, region.float(), torch.tensor([0.6, 0.45, 0.4]), face_model.faces, layout)
    uv, fuv, faces = face_model.uv, face_model.faces_uv.reshape(-1), face_model.faces.reshape(-1)
    pairs = torch.unique(torch.stack([faces, fuv], 1), dim=0)  # (vertex, uv) pairs
    first = torch.full((int(faces.max()) + 1,), -1, dtype=torch.long).scatter_reduce(
        0, pairs[:, 0], pairs[:, 1], "amin", include_self=False)
    other = pairs[first[pairs[:, 0]] != pairs[:, 1]]  # a second UV copy of a vertex
    assert other.shape[0] > 100
    at = lambda t: torch.stack([uv[t, 0] / face_model.uv_tiles * 2 - 1, (1 - uv[t, 1]) * 2 - 1], -1)
    def gaps(x: torch.Tensor) -> torch.Tensor:  # (n,) the largest channel gap between a vertex's copies
        sample = lambda pts: Fn.grid_sample(x.permute(2, 0, 1)[None], pts[None, None], align_corners=False)[0, :, 0].T
        return (sample(at(first[other[:, 0]])) - sample(at(other[:, 1]))).abs().amax(-1)

    ours, uv_space = gaps(fill), gaps(fill_holes(colour, region.float()))  # a UV-space fill: push-pull
    assert float(ours.mean()) < 0.3 * float(uv_space.mean()), (ours.mean(), uv_space.mean())
    assert float(ours.median()) < 0.005, ours.median()


def test_the_hidden_half_of_a_turned_face_takes_its_mirror_colour(face_model):
    """A face turned by 40°: the face texels the view does not see, whose mirror it sees well,
    have the albedo of their mirror texel (one constant fill colour was 0.032 off it)."""
    from backend.texture import delit_albedo, model_face_region, model_mirror_texels

    view, fit = _synthetic_view(face_model, yaw=40.0)
    albedo, weights = delit_albedo(face_model, fit, [view], 128, torch.device("cpu"))
    H, W = albedo.shape[:2]
    grid, valid = model_mirror_texels(face_model, H, W)
    w = torch.from_numpy(weights[0])
    a = torch.from_numpy(albedo)
    at_mirror = Fn.grid_sample(torch.cat([a, w[..., None]], -1).permute(2, 0, 1)[None], grid[None],
                               align_corners=False)[0].permute(1, 2, 0)
    hidden = valid & model_face_region(face_model, H, W) & (w < 0.02) & (at_mirror[..., 3] > 0.8)
    assert hidden.sum() > 300
    err = (a - at_mirror[..., :3]).abs()[hidden].mean()
    assert err < 0.005, err  # 1e-5
