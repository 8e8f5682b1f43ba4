"""Iris and sclera colours from the pixels inside the eye contours, de-lit by the fitted light."""
from __future__ import annotations

import numpy as np
import torch

from backend.lighting import sh_ambient, sh_shading
from backend.parts_texture import eye_colours


def _eye_photo() -> tuple[np.ndarray, np.ndarray]:
    """A 120² photo: skin, two eyes (white sclera, blue iris, black pupil), their 68-point contours."""
    img = np.zeros((120, 120, 3), np.float32)
    img[:] = (0.8, 0.6, 0.5)
    ys, xs = np.mgrid[0:120, 0:120]
    lm = np.zeros((68, 2))
    for first, cx in ((36, 35.0), (42, 85.0)):
        inside = ((xs - cx) / 18.0) ** 2 + ((ys - 60.0) / 9.0) ** 2 < 1.0
        img[inside] = (0.9, 0.9, 0.88)
        r = np.hypot(xs - cx, ys - 60.0)
        img[inside & (r < 8)] = (0.2, 0.35, 0.7)
        img[inside & (r < 3)] = (0.02, 0.02, 0.02)
        angles = np.linspace(np.pi, -np.pi, 6, endpoint=False)  # the iBUG contour: corner, top, corner, bottom
        lm[first : first + 6] = np.stack([cx + 18.5 * np.cos(angles), 60.0 + 9.5 * np.sin(angles)], 1)
    return (img * 255 + 0.5).astype(np.uint8), lm


def test_iris_and_sclera_from_the_eye_contours_are_delit():
    photo, lm = _eye_photo()
    for light in (1.0, 2.0):
        sh = sh_ambient(light)[0].numpy()
        shade = float(sh_shading(torch.tensor([[[0.0, 0.0, 1.0]]]), sh_ambient(light))[0, 0, 0])
        got = eye_colours(photo, lm, sh)
        np.testing.assert_allclose(np.array(got["iris"]) * shade, (0.2, 0.35, 0.7), atol=0.03)  # the iris pixels, de-lit
        sclera = np.array(got["sclera"])
        assert sclera.min() > 0.55 and np.ptp(sclera) < 0.1  # light and nearly neutral


def test_closed_or_tiny_eyes_keep_the_defaults():
    photo, lm = _eye_photo()
    lm[36:48, 1] = 60.0  # contours collapsed to lines: no pixels inside
    assert eye_colours(photo, lm, sh_ambient(1.0)[0].numpy()) == {}


def test_iris_from_the_located_irises_ignores_dark_lashes():
    """Dark lid shadow and lashes fill the contours around the irises (sclera shows only at the
    corners): the contour's darker half is mostly shadow, the located irises' rings are iris."""
    photo, lm = _eye_photo()
    img = photo.astype(np.float32) / 255.0
    ys, xs = np.mgrid[0:120, 0:120]
    for cx in (35.0, 85.0):
        band = (((xs - cx) / 18.0) ** 2 + ((ys - 60.0) / 9.0) ** 2 < 1.0) & (np.abs(xs - cx) < 13)
        img[band & (np.hypot(xs - cx, ys - 60.0) >= 8)] = (0.25, 0.15, 0.1)  # lashes and lid shadow around the iris
    photo = (img * 255 + 0.5).astype(np.uint8)
    sh = sh_ambient(1.0)
    shade = float(sh_shading(torch.tensor([[[0.0, 0.0, 1.0]]]), sh)[0, 0, 0])
    irises = (np.array([[35.0, 60.0], [85.0, 60.0]]), np.array([8.0, 8.0]))
    got = np.array(eye_colours(photo, lm, sh[0].numpy(), irises=irises)["iris"]) * shade
    np.testing.assert_allclose(got, (0.2, 0.35, 0.7), atol=0.03)
    old = np.array(eye_colours(photo, lm, sh[0].numpy())["iris"]) * shade
    assert np.abs(old - (0.2, 0.35, 0.7)).max() > 0.1  # the contour's darker half alone takes the lashes


def test_a_dim_sclera_is_seen_dim_and_exported_light():
    """A photo whose sclera is a dim grey (lid shadow, lashes): "sclera_seen" keeps the photo's
    brightness for the previews, "sclera" (the exports' albedo) stays light; the iris is unchanged."""
    photo, lm = _eye_photo()
    dim = photo.copy()
    dim[np.all(photo == photo[60, 20], axis=-1)] = (125, 125, 122)  # the sclera's pixels (0.9 → 0.49)
    sh = sh_ambient(1.0)
    shade = float(sh_shading(torch.tensor([[[0.0, 0.0, 1.0]]]), sh)[0, 0, 0])
    got = eye_colours(dim, lm, sh[0].numpy())
    seen = np.array(got["sclera_seen"]) * shade
    assert abs(seen.mean() - 0.49) < 0.03 and np.ptp(seen) < 0.1
    assert np.mean(got["sclera"]) > 0.55
    assert got["iris"] == eye_colours(photo, lm, sh[0].numpy())["iris"]
    bright = eye_colours(photo, lm, sh[0].numpy())
    np.testing.assert_allclose(bright["sclera_seen"], bright["sclera"], atol=1e-6)  # a light sclera: one colour


def test_colours_of_a_face_in_a_large_photo_come_from_its_window():
    """A photo much larger than its face (a 12-megapixel phone photo): the colours come from the
    face's window alone (the rest of the photo is never converted) and the saturation of a large
    face from a grid of its pixels; the same face pasted into a larger photo, or scaled up 12×,
    gives the same colours."""
    from PIL import Image

    from backend.parts_texture import _face_saturation, face_colourfulness

    photo, lm = _eye_photo()
    rng = np.random.default_rng(0)
    skin = photo[..., 0] == photo[0, 0, 0]
    photo[skin] = np.clip(photo[skin] + rng.normal(0, 12, (int(skin.sum()), 3)), 0, 255).astype(np.uint8)  # blotchy skin
    lm[:17] = np.stack([np.linspace(8, 112, 17), 100 + 10 * np.sin(np.linspace(0, np.pi, 17))], 1)  # a jaw
    lm[17:27] = np.stack([np.linspace(12, 108, 10), np.full(10, 30.0)], 1)  # brows
    sh = sh_ambient(1.0)[0].numpy()
    big = np.full((3000, 4000, 3), 200, np.uint8)  # a grey room around the face
    big[1000:1120, 2500:2620] = photo
    shifted = lm + [2500, 1000]
    assert eye_colours(big, shifted, sh) == eye_colours(photo, lm, sh)
    small = _face_saturation(photo, lm)
    assert 0.2 < small == _face_saturation(big, shifted) and face_colourfulness(big, shifted) == 1.0
    scaled = np.asarray(Image.fromarray(photo).resize((1440, 1440), Image.Resampling.NEAREST))  # 1 M face pixels
    assert abs(_face_saturation(scaled, (lm + 0.5) * 12 - 0.5) - small) < 0.01
