"""backend.align: similarity fit, crop warp, point round trips and the skin mask."""
from __future__ import annotations

import numpy as np
import pytest

from backend.align import (
    TEMPLATE_68_MM, AlignSettings, align_face, canonical_landmarks, crop_valid_mask, estimate_similarity, photo_content_box,
    face_mask, feature_polygons, invert_affine, points_to_crop, points_to_image, warp_to_crop,
)


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def test_template_layout():
    t = canonical_landmarks()
    assert t.shape == (68, 2)
    # subject's right eye at image left; brows above eyes above mouth above chin
    assert t[36:42, 0].mean() < t[42:48, 0].mean()
    assert t[17:27, 1].mean() < t[36:48, 1].mean() < t[48:68, 1].mean() < t[8, 1]
    # whole face inside the 224² crop with a margin, forehead room above the brows
    assert t.min() > 20 and t.max() < 214
    assert t[17:27, 1].min() > 50
    np.testing.assert_allclose(t[[36, 45], 0].mean(), 111.5, atol=1e-9)  # centred
    # symmetric template: mirror pairs of the outer eye corners
    np.testing.assert_allclose(TEMPLATE_68_MM[36, 0], -TEMPLATE_68_MM[45, 0])
    # scales with the crop size
    np.testing.assert_allclose(canonical_landmarks(AlignSettings(size=112)), (t + 0.5) / 2 - 0.5)


def test_known_similarity_recovered_exactly():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, (68, 2))
    M = _similarity(0.37, 0.4, -12.5, 88.0)
    dst = points_to_crop(src, M)
    np.testing.assert_allclose(estimate_similarity(src, dst), M, atol=1e-10)
    # align_face onto the template: a photo that *is* a similarity of the template
    T = canonical_landmarks()
    img_from_tmpl = _similarity(2.5, -0.3, 400.0, 250.0)
    lm_img = points_to_crop(T, img_from_tmpl)
    al = align_face(lm_img)
    np.testing.assert_allclose(al.crop_from_image, invert_affine(img_from_tmpl), atol=1e-10)
    np.testing.assert_allclose(al.scale, 1 / 2.5)
    np.testing.assert_allclose(al.rotation, 0.3)
    np.testing.assert_allclose(points_to_crop(lm_img, al.crop_from_image), T, atol=1e-9)


def test_least_squares_no_reflection():
    src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mirrored = src * [-1.0, 1.0]
    M = estimate_similarity(src, mirrored)
    assert np.linalg.det(M[:, :2]) >= 0  # a similarity never mirrors


def test_round_trip_exact(grace_hopper):
    from backend.detect import detect_one

    pytest.importorskip("dlib")
    lm = detect_one(grace_hopper).landmarks
    al = align_face(lm)
    back = points_to_image(points_to_crop(lm, al.crop_from_image), al.image_from_crop)
    assert np.abs(back - lm).max() < 1e-4
    grid = np.stack(np.meshgrid(np.arange(0, 224, 7.5), np.arange(0, 224, 7.5)), -1)
    again = points_to_crop(points_to_image(grid, al.image_from_crop), al.crop_from_image)
    assert np.abs(again - grid).max() < 1e-4
    # the detected landmarks land near the template (same face shape up to a similarity)
    err = np.linalg.norm(points_to_crop(lm, al.crop_from_image)[17:] - canonical_landmarks()[17:], axis=1)
    assert err.mean() < 8.0


def test_warp_matches_point_mapping():
    """A bright dot at a known image pixel appears at its mapped crop position."""
    img = np.zeros((300, 400, 3), np.uint8)
    img[120, 250] = [255, 128, 0]
    M = _similarity(1.0, 0.0, -200.0, -50.0)  # pure translation: pixel (250,120) → (50,70)
    crop = warp_to_crop(img, M, size=224)
    assert crop.dtype == np.float32 and crop.shape == (224, 224, 3)
    np.testing.assert_allclose(crop[70, 50], [1.0, 128 / 255, 0.0], atol=1e-6)
    assert crop.sum() == pytest.approx(1.0 + 128 / 255)
    # rotated + scaled: the blob centroid lands where points_to_crop says
    img2 = np.zeros((300, 400), np.uint8)
    img2[117:124, 247:254] = 255
    M2 = _similarity(1.5, 0.5, -130.0, -225.0)  # (250,120) → about (113,112)
    c2 = warp_to_crop(img2, M2, size=224)
    v, u = np.mgrid[0:224, 0:224]
    centroid = np.array([(u * c2).sum(), (v * c2).sum()]) / c2.sum()
    np.testing.assert_allclose(centroid, points_to_crop(np.array([250.0, 120.0]), M2), atol=0.05)


def test_warp_bilinear_exact_on_linear_ramp():
    """Bilinear interpolation reproduces a linear ramp exactly at sub-pixel positions."""
    x = np.arange(64)
    ramp = np.tile((x * 3).astype(np.uint8), (64, 1))
    M = _similarity(1.0, 0.0, -10.25, -10.0)  # crop u ↔ image x = u + 10.25
    crop = warp_to_crop(ramp, M, size=32)
    np.testing.assert_allclose(crop[5], 3 * (np.arange(32) + 10.25) / 255, atol=1e-6)


def test_warp_outside_is_fill_and_valid_mask():
    img = np.full((50, 50, 3), 255, np.uint8)
    M = _similarity(1.0, 0.0, 100.0, 100.0)  # image sits at crop (100..149)
    crop = warp_to_crop(img, M, size=224, fill=0.25)
    assert crop[0, 0, 0] == pytest.approx(0.25) and crop[120, 120, 0] == pytest.approx(1.0)
    valid = crop_valid_mask(img.shape, M, size=224)
    assert valid.sum() == 50 * 50 and valid[100, 100] and not valid[99, 100]


def test_warp_prefilters_strong_reduction():
    """A 1-px checkerboard shrunk 4× averages to grey instead of aliasing."""
    y, x = np.mgrid[0:800, 0:800]
    checker = (((x + y) % 2) * 255).astype(np.uint8)
    crop = warp_to_crop(checker, _similarity(0.25, 0.1, 10.0, 10.0), size=150)
    inner = crop[40:110, 40:110]
    assert abs(inner.mean() - 0.5) < 0.02 and inner.std() < 0.05


def test_warp_rejects_bad_image():
    with pytest.raises(ValueError, match="uint8"):
        warp_to_crop(np.zeros((10, 10, 3), np.float32), np.eye(2, 3))


def test_face_mask_regions():
    t = canonical_landmarks()
    m = face_mask(t, 224, 224)
    assert m.shape == (224, 224) and m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    def at(p):
        return m[int(round(p[1])), int(round(p[0]))]

    assert at(t[30]) == 1.0  # nose
    assert at(0.5 * (t[2] + t[31])) == 1.0  # cheek
    assert at(t[36:42].mean(0)) == 0.0 and at(t[42:48].mean(0)) == 0.0  # eyes excluded
    assert at([111.5, 5.0]) == 0.0 and at([5.0, 112.0]) == 0.0  # background
    brow_y = t[17:27, 1].mean()
    assert at([111.5, brow_y - 20]) == 1.0  # forehead above the brows is in
    # an open mouth: its interior is cut out
    open_mouth = t.copy()
    open_mouth[65:68, 1] += 12
    open_mouth[57:60, 1] += 12
    open_mouth[55:57, 1] += 12
    open_mouth[8, 1] += 12
    m2 = face_mask(open_mouth, 224, 224)
    assert m2[int(open_mouth[62, 1] + 6), 112] == 0.0
    # soft edges stay in [0,1] and keep the interior
    soft = face_mask(t, 224, 224, soft_px=3.0)
    assert 0.0 <= soft.min() and soft.max() <= 1.0 and soft[int(t[30, 1]), int(t[30, 0])] > 0.99
    assert ((soft > 0) & (soft < 1)).sum() > 100


def test_face_mask_excludes_brows_and_lips():
    t = canonical_landmarks()  # 1 px per mm
    plain = face_mask(t, 224, 224)
    skin = face_mask(t, 224, 224, exclude_features=True)
    def at(m, p):
        return m[int(round(p[1])), int(round(p[0]))]

    for i in (19, 24, 51, 57):  # brow tops, upper and lower lip
        assert at(plain, t[i]) == 1.0 and at(skin, t[i]) == 0.0, i
    # the brow hair lies below iBUG's brow points: 6 mm below is out, the eye's upper lid is in
    assert at(skin, t[19] + [0, 6]) == 0.0 and at(skin, t[37] - [0, 4]) == 1.0
    # skin stays: between the brows (frown lines), the forehead, the nasolabial folds, the chin
    for p in (t[[21, 22]].mean(0), t[19] - [0, 15], 0.5 * (t[31] + t[48]), t[8] - [0, 8]):
        assert at(skin, p) == 1.0, p
    removed = (plain - skin).sum() / plain.sum()
    assert 0.05 < removed < 0.2  # two brows and the lips: a tenth of the face, not more
    polys = feature_polygons(t)
    assert len(polys) == 3 and all(p.ndim == 2 and p.shape[1] == 2 for p in polys)


def test_bad_landmarks():
    with pytest.raises(ValueError, match=r"\(68,2\)"):
        align_face(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="coincide"):
        estimate_similarity(np.zeros((68, 2)), canonical_landmarks())
    with pytest.raises(ValueError, match="NaN"):
        estimate_similarity(np.full((3, 2), np.nan), np.zeros((3, 2)))


def test_warp_cost_follows_crop_not_photo():
    """Warping from a big photo only reads the crop's footprint: same result as from a cut-out."""
    noise = np.random.default_rng(3).integers(0, 256, (1000, 1500, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:1000, 0:1500]
    smooth = np.stack([xx * 0.15, yy * 0.2, (xx + yy) * 0.08], -1).astype(np.uint8)
    # scale 1.3: plain bilinear, exact; scale 0.3: box prefilter, whose grid phase differs
    for big, scale, tol in ((noise, 1.3, 1e-5), (smooth, 0.3, 0.01)):
        M_big = _similarity(scale, 0.2, 0.0, 0.0)
        M_big[:, 2] = 31.5 - M_big[:, :2] @ np.array([500.0, 500.0])  # photo (500,500) → crop centre
        cut = big[200:800, 100:900]  # the crop's footprint lies inside this cut-out
        M_cut = M_big.copy()
        M_cut[:, 2] += M_big[:, :2] @ np.array([100.0, 200.0])
        ref = warp_to_crop(cut, M_cut, 64)
        assert crop_valid_mask(cut.shape, M_cut, 64).all() and ref.std() > 0.02
        np.testing.assert_allclose(warp_to_crop(big, M_big, 64), ref, atol=tol)


def test_content_box_leaves_out_black_bars_only():
    """Letterboxing or a dataset's padding: whole black rows and columns along the borders are not
    the photo; a dark background that is not a whole row, or an all-black photo, is."""
    img = np.full((60, 80, 3), 120, np.uint8)
    np.testing.assert_array_equal(photo_content_box(img), [-0.5, -0.5, 79.5, 59.5])
    img[:5] = 3  # JPEG-black bars: top 5 rows, left 7 and right 2 columns
    img[:, :7] = 0
    img[:, -2:] = 5
    img[40:, 20:30] = 0  # a black coat at the bottom: not a whole row
    np.testing.assert_array_equal(photo_content_box(img), [6.5, 4.5, 77.5, 59.5])
    assert (photo_content_box(np.zeros((10, 10, 3), np.uint8)) == [-0.5, -0.5, 9.5, 9.5]).all()
    M = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # crop px = 2 × photo px (+0.5 phase ignored)
    box = photo_content_box(img)
    valid = crop_valid_mask(img.shape, M, size=200, box=box)
    assert valid[20, 20] and not valid[20, 12] and not valid[8, 40] and not valid[20, 156]
    tight = crop_valid_mask(img.shape, M, size=200, box=box, margin_px=2.0)  # 2 crop px = 1 photo px in
    assert valid.sum() > tight.sum() and not tight[20, 14] and tight[20, 16]
