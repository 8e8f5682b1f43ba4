"""The face's sides (backend.side_hair): the zone lies beside the cheeks between the eyes' and the
mouth's level; grey hair there is found, a dark sideburn is not; grazing texels and side hair lose
their photo weight; on a synthetic face a grey lock beside the cheek leaves the albedo while a
beard stays, and the detail stage's skin mask drops the lock."""
from __future__ import annotations

import numpy as np
import torch
from test_hair_fill import _beard, _synthetic_view

from backend.align import canonical_landmarks
from backend.side_hair import SideHairSettings, rim_fade, side_detail_mask, side_hair_mask, side_zone

SKIN = (0.78, 0.55, 0.45)
GREY = (0.86, 0.84, 0.82)  # white-grey hair, lit brightly
DARK = (0.25, 0.18, 0.14)  # a brown sideburn


def _at(mask: np.ndarray, p) -> float:
    x, y = np.round(p).astype(int)
    return float(mask[y, x])


def test_side_zone_lies_beside_the_cheeks_between_the_eyes_and_the_mouth():
    lm = canonical_landmarks()
    zone = side_zone(lm, 224)
    for i in (2, 3, 14, 13):  # the outline between the eyes' level and the mouth's, and just outside
        assert _at(zone, lm[i]) == 1.0, i
    assert _at(zone, lm[2] + [-6.0, 0.0]) == 1.0 and _at(zone, lm[14] + [6.0, 0.0]) == 1.0
    for i in (8, 6, 10, 30, 33, 48, 54, 36, 45, 17, 26, 27):  # chin, lower jaw, nose, mouth, eyes, brows
        assert _at(zone, lm[i]) == 0.0, i
    assert _at(zone, lm[1] + [0.0, -12.0]) == 0.0  # above the eyes' level: backend.hair_fill's zone
    cheek = 0.5 * (lm[2] + lm[31])  # halfway between the outline and the nose: the cheek itself
    assert _at(zone, cheek) == 0.0


def _photo(lm: np.ndarray, colour) -> np.ndarray:
    """A flat skin-coloured crop with a 6 px wide lock of ``colour`` along the outline from point
    1 to point 3, just inside it."""
    image = np.ones((224, 224, 3), np.float32) * np.array(SKIN, np.float32)
    v, u = np.mgrid[0:224, 0:224].astype(np.float64)
    x_out = np.interp(v, lm[1:4, 1], lm[1:4, 0])
    lock = (v > lm[1, 1]) & (v < lm[3, 1]) & (u > x_out) & (u < x_out + 6.0)
    image[lock] = colour
    return image, lock


def test_grey_hair_beside_the_cheek_is_found_a_dark_sideburn_is_not():
    lm = canonical_landmarks()
    skin = np.ones((224, 224), np.float32)
    image, lock = _photo(lm, GREY)
    hair = side_hair_mask(image, lm, skin * ~lock)
    assert hair[lock].mean() > 0.9
    assert hair[side_zone(lm, 224, soft_px=1.0) == 0].max() == 0.0  # nothing outside the (soft) zone
    skin_far = np.ones((224, 224), bool)
    skin_far[:, : int(lm[1, 0]) + 20] = False  # away from the lock and its grown rim
    assert hair[skin_far].max() == 0.0  # flat skin is no hair
    image, lock = _photo(lm, DARK)
    assert side_hair_mask(image, lm, skin * ~lock).max() == 0.0
    blond = (0.80, 0.68, 0.45)  # as bright as the skin, less red: pale
    image, lock = _photo(lm, blond)
    assert side_hair_mask(image, lm, skin * ~lock)[lock].mean() > 0.9


def test_rim_fade_takes_grazing_texels_and_side_hair_in_the_zone_only():
    s = SideHairSettings()
    cosine = torch.tensor([0.2, 0.35, 0.5, 0.65, 0.9, 0.9, 0.2])
    zone = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    hair = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    fade = rim_fade(cosine, zone, hair, settings=s)
    torch.testing.assert_close(fade, torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0, 0.0, 1.0]))


def _grey_lock(image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Thin grey hair, half over the skin, over the outer 40 % of both cheeks (on both halves: no
    mirror helps), from the eyes' level to the mouth's: a pale, skin-like tint."""
    v, u = np.mgrid[0:224, 0:224].astype(np.float64)
    rows = (v > lm[1, 1]) & (v < lm[3, 1])
    for idx in ([1, 2, 3], [15, 14, 13]):
        x_out = np.interp(v, lm[idx, 1], lm[idx, 0])
        x_in = x_out + 0.4 * (lm[30, 0] - x_out)
        lock = rows & (np.minimum(x_out, x_in) - 4.0 < u) & (u < np.maximum(x_out, x_in) + 4.0)
        image[lock] = 0.45 * image[lock] + 0.55 * np.array(GREY)
    return image


def test_a_grey_lock_beside_the_cheek_leaves_the_albedo_and_a_beard_stays(face_model):
    """The lock's texels (changed by > 0.05 without the step) come closer to the clean face's
    albedo. The occluder step (backend.occlusion) is off: it takes this grey lock already, but not
    grace_hopper's skin-tinted one. A beard of the lower face keeps its colour within 0.02."""
    from backend.texture import delit_albedo

    cpu = torch.device("cpu")
    view, fit = _synthetic_view(face_model)
    clean, _ = delit_albedo(face_model, fit, [view], 128, cpu, occluders=False, hair=False)
    view, fit = _synthetic_view(face_model, _grey_lock)
    before, _ = delit_albedo(face_model, fit, [view], 128, cpu, occluders=False, hair=False)
    after, _ = delit_albedo(face_model, fit, [view], 128, cpu, occluders=False)
    lock = np.abs(before - clean).max(-1) > 0.05
    assert lock.sum() > 100
    err_before, err_after = (np.abs(x - clean)[lock].mean() for x in (before, after))
    assert err_after < 0.5 * err_before, (err_after, err_before)
    view, fit = _synthetic_view(face_model, _beard)
    bearded, _ = delit_albedo(face_model, fit, [view], 128, cpu)
    bearded_off, _ = delit_albedo(face_model, fit, [view], 128, cpu, hair=False)
    beard = np.abs(bearded_off - clean).max(-1) > 0.1
    assert beard.sum() > 100
    assert np.abs(bearded - bearded_off)[beard].mean() < 0.02


def test_the_detail_skin_mask_drops_the_lock(face_model):
    from backend.prepare import detail_inputs

    view, _ = _synthetic_view(face_model, _grey_lock)
    _, skins, faces = detail_inputs([view], 224)
    lm = view.crop_landmarks
    lock = _grey_lock(np.zeros((224, 224, 3)), lm)[..., 0] > 0
    inside = lock & (faces[0].numpy() > 0.9) & (side_zone(lm, 224) > 0)  # the zone reaches 30 % of the way in
    got = skins[0].numpy()[inside]
    assert inside.sum() > 30 and float(got.max()) < 0.3 and float(got.mean()) < 0.01, (got.max(), got.mean())
    cheek = np.round(lm[2] + 0.65 * (lm[31] - lm[2])).astype(int)  # beyond the lock
    _, skins448, _ = detail_inputs([view], 448)  # judged at 224², upsampled
    lock448 = np.repeat(np.repeat(inside, 2, 0), 2, 1)
    assert float(skins448[0].numpy()[lock448].mean()) < 0.02
    mask = side_detail_mask(view.crop, lm, view.skin_mask)
    assert mask[cheek[1], cheek[0]] == 0.0  # the cheek itself stays skin
    assert mask[side_zone(lm, 224, soft_px=1.0) == 0].max() == 0.0
