"""Teeth and mouth-interior colours from an open mouth's pixels, and every part colour following the
photo's colour balance (a greyscale photo gives grey parts)."""
from __future__ import annotations

import numpy as np

from backend.head_parts import PART_MATERIALS, srgb_to_linear
from backend.lighting import sh_ambient
from backend.parts_texture import (LUMINANCE, follow_colour_balance, face_colourfulness, mouth_colours, mouth_opening,
                                   part_colours)

SKIN, TEETH, SOCKET = (0.8, 0.6, 0.5), (0.9, 0.88, 0.82), (0.1, 0.03, 0.03)


def _mouth_photo(teeth=TEETH, socket=SOCKET, open_mouth: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A 120² photo: skin inside the jaw and brows, an open mouth (socket colour, a bright teeth
    ellipse in its upper half) and its 68 points (inner lips 60–67 an octagon 40×16 px; collapsed
    onto the mouth line when ``open_mouth`` is False)."""
    img = np.zeros((120, 120, 3), np.float32)
    img[:] = SKIN
    ys, xs = np.mgrid[0:120, 0:120]
    inside = ((xs - 60.0) / 20.0) ** 2 + ((ys - 85.0) / 8.0) ** 2 < 1.0
    img[inside] = socket
    img[((xs - 60.0) / 14.0) ** 2 + ((ys - 82.0) / 3.5) ** 2 < 1.0] = teeth
    lm = np.zeros((68, 2))
    jaw = np.linspace(np.pi, 0.0, 17)  # the left ear, round the chin, the right ear (y down)
    lm[0:17] = np.stack([60.0 - 50.0 * np.cos(jaw), 50.0 + 55.0 * np.sin(jaw)], 1)
    lm[17:27] = np.stack([np.linspace(15.0, 105.0, 10), np.full(10, 15.0)], 1)
    angles = np.linspace(np.pi, -np.pi, 8, endpoint=False)  # corner, top, corner, bottom
    lm[60:68] = np.stack([60.0 + 20.5 * np.cos(angles), 85.0 + (8.5 if open_mouth else 0.0) * np.sin(angles)], 1)
    return (img * 255 + 0.5).astype(np.uint8), lm


def _grey(photo: np.ndarray) -> np.ndarray:
    grey = (photo.astype(np.float64) @ [0.299, 0.587, 0.114] + 0.5).astype(np.uint8)
    return np.repeat(grey[..., None], 3, -1)


def test_open_mouth_gives_bright_teeth_and_a_dark_socket_delit():
    photo, lm = _mouth_photo()
    assert abs(mouth_opening(lm) - 2 * np.sqrt(2) * 20.5 * 8.5 / 41.0**2) < 1e-9  # an octagon: 2√2·a·b over the width²
    default = np.array(PART_MATERIALS["teeth"])
    for light in (1.0, 1.25):
        got = mouth_colours(photo, lm, sh_ambient(light)[0].numpy())
        teeth = np.array(got["teeth"]) * light
        assert abs(teeth.max() - 0.9) < 0.01 and abs(1 - teeth.min() / teeth.max() - (1 - 0.82 / 0.9)) < 0.01  # value, saturation
        hue = (teeth.max() - teeth) / (teeth.max() - teeth.min())
        np.testing.assert_allclose(hue, (default.max() - default) / (default.max() - default.min()), atol=1e-9)  # the default's
        np.testing.assert_allclose(np.array(got["socket"]) * light, SOCKET, atol=0.01)


def test_closed_mouth_keeps_the_defaults():
    photo, lm = _mouth_photo(open_mouth=False)
    sh = sh_ambient(1.0)[0].numpy()
    assert mouth_opening(lm) == 0.0 and mouth_colours(photo, lm, sh) == {}
    assert face_colourfulness(photo, lm) == 1.0
    eyes = {"iris": (0.2, 0.35, 0.7)}
    assert part_colours(eyes, [photo], [lm], sh[None]) == dict(PART_MATERIALS, **eyes)  # a colour photo: as before


def test_lipstick_or_tongue_is_no_teeth_and_teeth_are_kept_plausible():
    sh = sh_ambient(1.0)[0].numpy()
    photo, lm = _mouth_photo(teeth=(0.85, 0.3, 0.35))  # bright pixels redder than the skin: lips, tongue
    assert set(mouth_colours(photo, lm, sh)) == {"socket"}
    assert part_colours({}, [photo], [lm], sh[None])["teeth"] == PART_MATERIALS["teeth"]
    photo, lm = _mouth_photo(teeth=(0.9, 0.75, 0.8))  # pale pink (a tongue): paler than the skin, not pink teeth
    teeth = np.array(mouth_colours(photo, lm, sh)["teeth"])
    assert teeth[0] >= teeth[1] >= teeth[2] and abs(teeth.max() - 0.9) < 0.01
    photo, lm = _mouth_photo(teeth=(0.35, 0.34, 0.32), socket=(0.45, 0.4, 0.4))  # grey "teeth" darker than the "socket"
    got = mouth_colours(photo, lm, sh)
    assert max(got["teeth"]) == 0.6 and max(got["socket"]) == 0.2  # the value ranges' ends
    photo, lm = _mouth_photo(socket=(0.0, 0.0, 0.0))  # a black mouth interior (clipped shadow)
    assert mouth_colours(photo, lm, sh)["socket"] == (0.02, 0.02, 0.02)


def test_teeth_never_darker_than_the_socket():
    rng = np.random.default_rng(0)
    read = 0
    for _ in range(20):
        # any brightness (the "teeth" darker than the "socket" too), often pale enough for teeth
        teeth, socket = rng.uniform(0, 1, (2, 1)) * (1.0 - rng.uniform(0, 0.4, (2, 3)))
        photo, lm = _mouth_photo(teeth=tuple(teeth), socket=tuple(socket))
        light = rng.uniform(0.3, 3.0)
        got = mouth_colours(photo, lm, sh_ambient(light)[0].numpy())
        palette = part_colours({}, [photo], [lm], sh_ambient(light).numpy())
        assert min(palette["teeth"]) > max(palette["socket"]) or "teeth" not in got
        if "teeth" in got:
            read += 1
            assert min(got["teeth"]) >= 0.6 * 0.85 - 1e-9 > 0.2 >= max(got["socket"])  # value ≥ 0.6, saturation ≤ 0.15
    assert read >= 8  # the paler ones pass as teeth, the more saturated do not


def test_greyscale_photo_gives_grey_parts_of_the_same_luminance():
    photo, lm = _mouth_photo()
    grey = _grey(photo)
    sh = sh_ambient(1.0)
    assert face_colourfulness(grey, lm) == 0.0
    closed, lm_closed = _mouth_photo(open_mouth=False)
    for image, points in ((grey, lm), (_grey(closed), lm_closed)):
        palette = part_colours({"sclera": (0.9, 0.87, 0.83)}, [image], [points], sh.numpy())
        assert set(palette) == set(PART_MATERIALS)
        for name, rgb in palette.items():
            assert np.ptp(rgb) < 1e-6, name
        gums = float(srgb_to_linear(PART_MATERIALS["gums_tongue"]) @ LUMINANCE)  # linear luminance
        assert abs(float(srgb_to_linear(palette["gums_tongue"])[0]) - gums) < 1e-6
        assert abs(palette["gums_tongue"][0] - 0.31677) < 1e-5  # (0.55, 0.20, 0.19) as a grey
    teeth_grey = round(float(TEETH @ np.array([0.299, 0.587, 0.114])) * 255) / 255  # the grey photo's teeth pixels
    assert abs(part_colours({}, [grey], [lm], sh.numpy())["teeth"][0] - teeth_grey) < 0.01
    assert abs(part_colours({}, [_grey(closed)], [lm_closed], sh.numpy())["teeth"][0] - 0.81988) < 1e-5  # the default (0.85, 0.82, 0.72) as a grey


def test_halfway_colourfulness_and_several_views():
    half = follow_colour_balance({"socket": PART_MATERIALS["socket"]}, 0.5)["socket"]
    lin, grey = srgb_to_linear(half), float(srgb_to_linear(PART_MATERIALS["socket"]) @ LUMINANCE)
    np.testing.assert_allclose(lin, grey + 0.5 * (srgb_to_linear(PART_MATERIALS["socket"]) - grey), atol=1e-9)
    # a closed mouth in colour and an open one in grey: the mouth from the grey view, colour kept
    photo, lm = _mouth_photo()
    closed, lm_closed = _mouth_photo(open_mouth=False)
    palette = part_colours({}, [closed, _grey(photo)], [lm_closed, lm], sh_ambient(1.0, 2).numpy())
    assert palette["gums_tongue"] == PART_MATERIALS["gums_tongue"]
    assert np.ptp(palette["teeth"]) < 1e-6 and palette["teeth"][0] > 0.85


def test_greyscale_photo_under_a_tinted_light_gives_parts_that_render_grey():
    """The fit gives a greyscale photo a bluish light (its albedo prior is skin-coloured), so the
    skin's albedo comes out warm; the parts are tinted alike, so the lit head shows grey parts."""
    import torch

    photo, lm = _mouth_photo()
    light = np.array([1.2, 1.3, 1.35])
    sh = sh_ambient(torch.tensor(light, dtype=torch.float32)).numpy()
    palette = part_colours({}, [_grey(photo)], [lm], sh)
    for name, rgb in palette.items():
        lit = np.array(rgb) * light / light.mean()
        assert np.ptp(lit) < 1e-6, name
        assert rgb[0] > rgb[2]  # warm, as the albedo of a grey photo under this light
    lit_gums = float(srgb_to_linear(np.array(PART_MATERIALS["gums_tongue"]) * light / light.mean()) @ LUMINANCE)
    assert abs(lit_gums - 0.07501) < 1e-5  # a red under a bluish light: darker than under white (0.0818)
    np.testing.assert_allclose(srgb_to_linear(np.array(palette["gums_tongue"]) * light / light.mean()), lit_gums, atol=1e-6)
    assert part_colours({}, [photo], [lm], sh)["gums_tongue"] == PART_MATERIALS["gums_tongue"]  # colour: as it was
