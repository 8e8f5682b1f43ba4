"""Occluders in the albedo (backend.occlusion): on a crop painted with skin, lips and brows, a
one-sided blob inside the inner face loses its confidence, the features and a two-sided dark
patch keep theirs; the mirror fill copies the mirror texel's value; the model's UV mirror maps
texels onto the other half and back."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_erosion

from backend.align import CROP_SIZE, _polygon_mask, canonical_landmarks, feature_polygons, inner_face_mask
from backend.occlusion import feature_mask, mirror_fill, mirror_texels, not_darker, occluded
from backend.skin import skin_weight
from tests.conftest import count_calls

SKIN, LIPS, BROWS = (0.80, 0.60, 0.50), (0.70, 0.30, 0.30), (0.25, 0.18, 0.12)


def _confidence(crop: np.ndarray, lm: np.ndarray) -> torch.Tensor:
    """What delit_albedo does, in the crop's pixels with the landmarks' midline as the mirror:
    confidence (S,S) after the occluders are taken out (1 before)."""
    S = crop.shape[0]
    skin = torch.from_numpy(skin_weight(crop, lm, S, exclude_features=False))
    inner = torch.from_numpy(inner_face_mask(lm, S, S, soft_px=2.0))
    feats = torch.from_numpy(feature_mask(lm, S, soft_px=1.0))
    nonskin, checked = (1.0 - 2.0 * skin).clamp_min(0.0), inner * (1.0 - feats)
    colours = torch.from_numpy(crop).float()
    bright = not_darker(colours.view(-1, 3), torch.tensor(SKIN)).view(S, S)
    cx = lm[:, 0].mean()  # the canonical landmarks are mirror-symmetric about x = cx
    x = (2.0 * cx - np.arange(S) + 0.5) * (2.0 / S) - 1.0
    grid = torch.stack(torch.meshgrid(torch.linspace(-1 + 1 / S, 1 - 1 / S, S), torch.from_numpy(x).float(),
                                      indexing="ij")[::-1], -1)  # (S,S,2) x, y
    occ = occluded(nonskin[None].float(), checked[None].float(), bright[None], torch.ones(1, S, S), grid,
                   torch.ones(S, S, dtype=torch.bool))
    return 1.0 - occ[0]


def _painted(lm: np.ndarray) -> np.ndarray:
    crop = np.ones((CROP_SIZE, CROP_SIZE, 3)) * SKIN
    brows_l, brows_r, lips = feature_polygons(lm)
    for poly, colour in ((brows_l, BROWS), (brows_r, BROWS), (lips, LIPS)):
        crop[_polygon_mask(poly, CROP_SIZE, CROP_SIZE)] = colour
    return crop


def _disc(lm: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    v, u = np.mgrid[0:CROP_SIZE, 0:CROP_SIZE]
    return (u - centre[0]) ** 2 + (v - centre[1]) ** 2 <= radius**2


def test_one_sided_blob_loses_confidence_features_keep_it():
    lm = canonical_landmarks()
    cheek = 0.5 * (lm[3] + lm[48])  # subject's right cheek, inside the inner face
    crop = _painted(lm)
    crop[_disc(lm, cheek, 8.0)] = (0.95, 0.95, 0.95)  # a white bottle
    conf = _confidence(crop, lm).numpy()
    v, u = np.round(cheek[::-1]).astype(int)
    assert conf[v - 4 : v + 5, u - 4 : u + 5].max() < 0.05
    inside = [binary_erosion(_polygon_mask(p, CROP_SIZE, CROP_SIZE), iterations=3) for p in feature_polygons(lm)]
    assert all(conf[m].min() > 0.99 for m in inside)  # two brows, the lips (off their soft edge, σ 1 px)
    mirror = np.round([2 * lm[:, 0].mean() - cheek[0], cheek[1]]).astype(int)
    assert conf[mirror[1] - 4 : mirror[1] + 5, mirror[0] - 4 : mirror[0] + 5].min() > 0.99  # the skin it copies


def test_dark_patch_on_both_halves_stays_on_one_half_goes():
    lm = canonical_landmarks()
    cheek = 0.5 * (lm[3] + lm[48])
    mirror = np.array([2 * lm[:, 0].mean() - cheek[0], cheek[1]])
    crop = _painted(lm)
    crop[_disc(lm, cheek, 8.0) | _disc(lm, mirror, 8.0)] = (0.15, 0.12, 0.10)  # a beard: dark, both halves
    conf = _confidence(crop, lm).numpy()
    v, u = np.round(cheek[::-1]).astype(int)
    assert conf[v - 4 : v + 5, u - 4 : u + 5].min() > 0.99
    crop = _painted(lm)
    crop[_disc(lm, cheek, 8.0)] = (0.15, 0.12, 0.10)  # a dark strand or a shadow on one half
    assert _confidence(crop, lm).numpy()[v - 3 : v + 4, u - 3 : u + 4].max() < 0.05


def test_mirror_fill_copies_the_mirror_texel():
    V, H, W = 1, 4, 6
    maps = torch.zeros(V, H, W, 3)
    maps[0, 1, 1] = torch.tensor([0.2, 0.4, 0.6])  # the mirror of texel (1, 4)
    maps[0, 1, 4] = torch.tensor([1.0, 1.0, 1.0])  # an occluder
    weight = torch.ones(V, H, W)
    weight[0, 1, 4] = 0.0  # its photo was taken out ...
    lost = torch.zeros(V, H, W)
    lost[0, 1, 4] = 1.0  # ... all of it
    ys, xs = torch.meshgrid(torch.linspace(-1 + 1 / H, 1 - 1 / H, H), torch.linspace(-1 + 1 / W, 1 - 1 / W, W),
                            indexing="ij")
    grid = torch.stack([-xs, ys], -1)  # left ↔ right
    out, total = mirror_fill(maps, weight, lost, grid, torch.ones(V, H, W))
    torch.testing.assert_close(out[0, 1, 4], torch.tensor([0.2, 0.4, 0.6]))
    assert float(total[0, 1, 4]) == pytest.approx(1.0)
    torch.testing.assert_close(out[0, 1, 1], maps[0, 1, 1])  # a texel that lost nothing is unchanged
    out, total = mirror_fill(maps, weight, lost, grid, torch.zeros(V, H, W))  # a mirror that is no skin gives nothing
    assert float(total[0, 1, 4]) == 0.0


def test_model_uv_mirror_round_trip(face_model):
    grid, valid = mirror_texels(face_model, 128, 128 * face_model.uv_tiles)
    assert valid.sum() > 2000
    twice = torch.nn.functional.grid_sample(grid.permute(2, 0, 1)[None], grid[None], align_corners=False)[0]
    ys, xs = torch.nonzero(valid, as_tuple=True)
    W, H = valid.shape[1], valid.shape[0]
    back = twice.permute(1, 2, 0)[ys, xs]  # (n,2) where the mirror's mirror is
    own = torch.stack([(xs + 0.5) / W * 2 - 1, (ys + 0.5) / H * 2 - 1], -1)
    err = ((back - own) * torch.tensor([W / 2, H / 2])).norm(dim=-1)  # texels
    assert float(err.median()) < 0.5 and float((err < 2.0).float().mean()) > 0.95
    mirrored_x = grid[valid][:, 0]
    assert float((mirrored_x - own[:, 0]).abs().max()) > 0.1  # it moves texels across the face


def test_mirror_texels_are_computed_once_per_layout(face_model, monkeypatch, layout_cache):
    """backend.texture.model_mirror_texels: the model's mirror grid is built once (a second call,
    or a new process reading the cache folder, gets the same arrays bit for bit); a damaged
    cache file is computed again."""
    import backend.layout_cache as lc
    import backend.texture as tx

    real = tx.mirror_texels
    calls = count_calls(monkeypatch, tx, "mirror_texels")
    R, W = 64, 64 * face_model.uv_tiles
    grid, valid = tx.model_mirror_texels(face_model, R, W)
    want_grid, want_valid = real(face_model, R, W)
    assert torch.equal(grid, want_grid) and torch.equal(valid, want_valid) and valid.any()
    tx.model_mirror_texels(face_model, R, W)
    assert len(calls) == 1
    monkeypatch.setattr(lc, "_MEMORY", {})  # a new process
    again = tx.model_mirror_texels(face_model, R, W)
    assert torch.equal(again[0], grid) and torch.equal(again[1], valid) and len(calls) == 1
    for path in (layout_cache / "uv").glob("mirror_texels-*.npz"):
        path.write_bytes(b"damaged")
    monkeypatch.setattr(lc, "_MEMORY", {})
    assert torch.equal(tx.model_mirror_texels(face_model, R, W)[0], grid) and len(calls) == 2
