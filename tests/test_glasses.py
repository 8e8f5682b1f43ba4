"""Eyeglasses out of the albedo (backend.glasses): a synthetic face with painted frames is found to
wear glasses and its frames leave the UV albedo; the same face without frames, or with the crop's
padding across it, is not, and its albedo is bit-identical to one made without the step."""
from __future__ import annotations

import numpy as np
import torch

from backend.glasses import GlassesSettings, glasses_cues, glasses_zone, wears_glasses
from tests.test_hair_fill import _synthetic_view

FRAME = (0.04, 0.03, 0.03)  # black frames


def _frames(image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Black glasses 0.1 eye widths thick (3 mm): an elliptical rim around each eye (0.8 × 0.55 eye widths), a
    bridge between them at the upper lids' height and temple arms out to the face outline."""
    eye_w = 0.5 * (np.linalg.norm(lm[39] - lm[36]) + np.linalg.norm(lm[45] - lm[42]))
    v, u = np.mgrid[0:224, 0:224].astype(np.float64)
    a, b = 0.8 * eye_w, 0.55 * eye_w
    hit, half = np.zeros((224, 224), bool), 0.05 * eye_w
    centres = [lm[36:42].mean(0), lm[42:48].mean(0)]
    for c in centres:
        r = np.hypot((u - c[0]) / a, (v - c[1]) / b)
        hit |= np.abs(r - 1.0) * min(a, b) < half
    top = 0.5 * (centres[0][1] + centres[1][1]) - 0.45 * b
    hit |= (np.abs(v - top) < half) & (u > centres[0][0] + 0.85 * a) & (u < centres[1][0] - 0.85 * a)
    arm = np.abs(v - (centres[0][1] - 0.3 * b)) < half
    hit |= arm & (u > lm[0, 0] - 4) & (u < centres[0][0] - a)
    hit |= arm & (u < lm[16, 0] + 4) & (u > centres[1][0] + a)
    image[hit] = FRAME
    return image


def test_painted_frames_are_detected_and_a_bare_face_is_not(face_model):
    bare, _ = _synthetic_view(face_model)
    framed, _ = _synthetic_view(face_model, _frames)
    off, on = (glasses_cues(v.crop, v.crop_landmarks) for v in (bare, framed))
    threshold = GlassesSettings().threshold
    assert on.bridge > 1.0 and on.temple > 1.0 and wears_glasses(on), on
    assert off.score < 0.5 * threshold and not wears_glasses(off), off


def test_padding_of_the_crop_is_not_glasses(face_model):
    """Black padding over the crop's upper left (outside the photo) crosses the bridge strip and a
    temple strip: the valid mask leaves it out; without it the edge would count as a line."""
    bare, _ = _synthetic_view(face_model)
    lm = bare.crop_landmarks
    v, u = np.mgrid[0:224, 0:224].astype(np.float64)
    eye_y = 0.5 * (lm[39, 1] + lm[42, 1])
    pad = (v < eye_y - 6.0) & (u < 0.5 * (lm[39, 0] + lm[42, 0]))  # (224,224) bool
    pad |= (v < eye_y + 6.0) & (v > eye_y + 3.0)  # a thin sliver of padding across the face
    crop = np.where(pad[..., None], 0.0, bare.crop).astype(np.float32)
    masked = glasses_cues(crop, lm, ~pad)
    assert not wears_glasses(masked), masked
    assert glasses_cues(crop, lm).score > masked.score  # the padding alone would look like a line


def test_zone_covers_the_frames_not_the_mouth(face_model):
    bare, _ = _synthetic_view(face_model)
    lm = bare.crop_landmarks
    zone = glasses_zone(lm, 224)
    framed = np.abs(_frames(bare.crop.copy(), lm) - bare.crop).max(-1) > 0.1
    inside = zone[framed & (np.arange(224)[None, :] > lm[0, 0] - 4) & (np.arange(224)[None, :] < lm[16, 0] + 4)]
    assert inside.mean() > 0.97, inside.mean()
    for i in (8, 48, 51, 54, 57, 62):  # chin and lips
        assert zone[int(round(lm[i, 1])), int(round(lm[i, 0]))] == 0.0
    assert zone[int(round(lm[36, 1])), 0] == 1.0 and zone[int(round(lm[45, 1])), 223] == 1.0  # the arms, past the outline


def test_frames_leave_the_albedo_and_a_bare_face_is_untouched(face_model):
    """The frames' texels (those the frames change by > 0.1 without this step) come close to the
    bare face's albedo; a bare face's albedo is bit-identical with and without the step."""
    from backend.texture import delit_albedo

    cpu = torch.device("cpu")
    view, fit = _synthetic_view(face_model)
    clean, w_clean = delit_albedo(face_model, fit, [view], 128, cpu)
    clean_off, w_clean_off = delit_albedo(face_model, fit, [view], 128, cpu, glasses=False)
    assert np.array_equal(clean, clean_off) and np.array_equal(w_clean, w_clean_off)
    view, fit = _synthetic_view(face_model, _frames)
    before, _ = delit_albedo(face_model, fit, [view], 128, cpu, glasses=False)
    after, _ = delit_albedo(face_model, fit, [view], 128, cpu)
    frames = np.abs(before - clean).max(-1) > 0.1
    assert frames.sum() > 80, frames.sum()
    err_before = np.abs(before - clean)[frames].mean()
    err_after = np.abs(after - clean)[frames].mean()
    assert err_after < 0.3 * err_before, (err_after, err_before)  # 0.31 → 0.025


def test_masks_only_for_views_with_glasses(face_model):
    """Two views, one with frames: its zone and features are drawn, the bare view's are zeros;
    the bare view alone gives None (the albedo step is skipped)."""
    from backend.glasses import view_glasses_masks, view_glasses_scores

    bare, _ = _synthetic_view(face_model)
    framed, _ = _synthetic_view(face_model, _frames)
    masks = view_glasses_masks([bare, framed])
    assert masks.shape == (2, 2, 224, 224) and masks[0].max() == 0.0
    assert masks[1, 0].sum() > 2000 and masks[1, 1].sum() > 500  # the zone, the features it keeps
    assert view_glasses_masks([bare]) is None
    low, high = view_glasses_scores([bare, framed])
    assert low < GlassesSettings().threshold <= high
