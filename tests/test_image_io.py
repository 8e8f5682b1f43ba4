"""backend.image_io.load_image: every input kind → upright (H,W,3) uint8 RGB, or ImageReadError."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from backend.errors import ImageReadError
from backend.image_io import as_rgb_uint8, exif_turned, load_image


@pytest.fixture()
def rgb() -> np.ndarray:
    """A small asymmetric colour image (every pixel distinct), (H,W,3) uint8, H ≠ W."""
    h, w = 5, 7
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 30, y * 50, (x * 7 + y * 11) % 256], -1).astype(np.uint8)


def test_rgb_png_roundtrip(tmp_path, rgb):
    p = tmp_path / "a.png"
    Image.fromarray(rgb).save(p)
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, rgb)
    np.testing.assert_array_equal(load_image(str(p)), rgb)


def test_grayscale_file_and_array(tmp_path, rgb):
    g = rgb[:, :, 0]
    p = tmp_path / "g.png"
    Image.fromarray(g, mode="L").save(p)
    out = load_image(p)
    assert out.shape == (5, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], g)
    np.testing.assert_array_equal(load_image(g), out)
    np.testing.assert_array_equal(load_image(g[:, :, None]), out)


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = [10, 20, 30]
    rgba[0, :, 3] = 255  # opaque row keeps its colour
    rgba[1, 0, 3] = 0  # transparent → white
    rgba[1, 1, 3] = 128  # half → halfway to white
    rgba[1, 2, 3] = 0
    p = tmp_path / "a.png"
    Image.fromarray(rgba, mode="RGBA").save(p)
    out = load_image(p)
    np.testing.assert_array_equal(out[0], [[10, 20, 30]] * 3)
    np.testing.assert_array_equal(out[1, 0], [255, 255, 255])
    expect = np.rint(np.array([10, 20, 30]) * 128 / 255 + 255 * (1 - 128 / 255))
    np.testing.assert_allclose(out[1, 1], expect, atol=1)
    np.testing.assert_array_equal(load_image(rgba), out)
    # another background can be asked for
    np.testing.assert_array_equal(load_image(p, background=(0, 0, 0))[1, 0], [0, 0, 0])


def test_gray_alpha(tmp_path):
    la = np.array([[[100, 255], [100, 0]]], np.uint8)
    p = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(p)
    np.testing.assert_array_equal(load_image(p)[0], [[100] * 3, [255] * 3])


def test_16bit_gray_png(tmp_path, rgb):
    g8 = rgb[:, :, 1]
    g16 = g8.astype(np.uint16) * 257  # 0..255 → 0..65535
    p = tmp_path / "g16.png"
    Image.fromarray(g16).save(p)  # Pillow writes a 16-bit grayscale PNG
    with Image.open(p) as im:
        assert im.mode in ("I;16", "I")
    out = load_image(p)
    np.testing.assert_array_equal(out[:, :, 0], g8)
    np.testing.assert_array_equal(load_image(g16)[:, :, 2], g8)


def test_16bit_rgb_tiff(tmp_path, rgb):
    tifffile = pytest.importorskip("tifffile")
    p = tmp_path / "c16.tif"
    tifffile.imwrite(p, rgb.astype(np.uint16) * 257, photometric="rgb")
    np.testing.assert_array_equal(load_image(p), rgb)
    # a bright but not full-range 16-bit value keeps its absolute level (no min/max stretch)
    tifffile.imwrite(p, np.full((2, 2, 3), 32896, np.uint16), photometric="rgb")
    np.testing.assert_array_equal(load_image(p), np.full((2, 2, 3), 128, np.uint8))


def test_palette_with_and_without_transparency(tmp_path, rgb):
    p = tmp_path / "p.png"
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    pal.save(p)
    np.testing.assert_array_equal(load_image(p), np.asarray(pal.convert("RGB")))
    pal.info["transparency"] = 0
    p2 = tmp_path / "pt.png"
    pal.save(p2, transparency=0)
    out = load_image(p2)
    idx = np.asarray(pal)
    assert (out[idx == 0] == 255).all()


def _stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """Pixels a camera stores so that EXIF ``orientation`` displays ``upright`` (EXIF 2.3 semantics)."""
    return {
        1: lambda a: a,
        2: np.fliplr,  # mirrored horizontally
        3: lambda a: np.rot90(a, 2),
        4: np.flipud,
        5: lambda a: a.swapaxes(0, 1),  # transpose
        6: lambda a: np.rot90(a, 1),  # display = stored rotated 90° clockwise
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),  # transverse
        8: lambda a: np.rot90(a, -1),  # display = stored rotated 90° counter-clockwise
    }[orientation](upright)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_all_eight(tmp_path, rgb, orientation):
    stored = np.ascontiguousarray(_stored_for(rgb, orientation))
    im = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = tmp_path / f"o{orientation}.png"
    im.save(p, exif=exif.tobytes())
    np.testing.assert_array_equal(load_image(p), rgb)
    assert exif_turned(p) == (orientation != 1)  # what a viewer ignoring the tag shows differently


def test_exif_rotated_jpeg_detects_upright_face(tmp_path, grace_hopper):
    """A camera JPEG stored sideways (orientation 6) loads upright: eyes above the mouth."""
    from backend.detect import detect_one

    stored = np.ascontiguousarray(np.rot90(grace_hopper, 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "side.jpg"
    Image.fromarray(stored).save(p, quality=95, exif=exif.tobytes())
    img = load_image(p)
    assert img.shape == grace_hopper.shape
    assert np.abs(img.astype(int) - grace_hopper).mean() < 4  # JPEG loss only
    face = detect_one(img)
    lm = face.landmarks
    assert lm[36:48, 1].mean() < lm[48:68, 1].mean() - 30


def test_float_and_bool_arrays():
    f = np.array([[0.0, 0.5, 1.0]], np.float32)
    np.testing.assert_array_equal(as_rgb_uint8(f)[0, :, 0], [0, 128, 255])
    np.testing.assert_array_equal(as_rgb_uint8(np.array([[True, False]]))[0, :, 1], [255, 0])


def test_input_array_untouched(rgb):
    before = rgb.copy()
    out = load_image(rgb)
    out[:] = 0
    np.testing.assert_array_equal(rgb, before)


@pytest.mark.parametrize("shape", [(0, 4, 3), (4, 4, 5), (4,), (2, 2, 2, 3)])
def test_bad_array_shapes(shape):
    with pytest.raises(ImageReadError, match="shape"):
        load_image(np.zeros(shape, np.uint8))


def test_missing_path(tmp_path):
    p = tmp_path / "nope.jpg"
    with pytest.raises(ImageReadError, match="not found") as ei:
        load_image(p)
    assert str(p) in str(ei.value)


def test_folder_path(tmp_path):
    with pytest.raises(ImageReadError, match="folder") as ei:
        load_image(tmp_path)
    assert str(tmp_path) in str(ei.value)


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a photo\n")
    with pytest.raises(ImageReadError) as ei:
        load_image(p)
    assert str(p) in str(ei.value)


def test_truncated_jpeg(tmp_path, grace_hopper):
    good = tmp_path / "good.jpg"
    Image.fromarray(grace_hopper).save(good, quality=90)
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ImageReadError, match="corrupt") as ei:
        load_image(bad)
    assert str(bad) in str(ei.value)


def test_random_bytes_png(tmp_path):
    p = tmp_path / "x.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)))
    with pytest.raises(ImageReadError) as ei:
        load_image(p)
    assert str(p) in str(ei.value)


def test_wrong_type():
    with pytest.raises(ImageReadError, match="file path"):
        load_image(12345)  # type: ignore[arg-type]


def test_exif_turned_is_false_for_a_plain_or_unreadable_file(tmp_path, rgb):
    p = tmp_path / "plain.png"
    Image.fromarray(rgb).save(p)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert not exif_turned(p) and not exif_turned(bad) and not exif_turned(tmp_path / "missing.png")


@pytest.mark.parametrize("brand", [b"heic", b"mif1"])
def test_a_heic_photo_is_named_with_a_way_out(tmp_path, brand):
    """An iPhone's HEIC photo: Pillow cannot read it; the error names the format and the export,
    not 'unknown format'. The CLI's header check says the same before any work."""
    from backend.validate import check_photo

    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftyp" + brand + b"\x00" * 200)
    for read in (load_image, lambda p: check_photo(p, decode=False)):
        with pytest.raises(ImageReadError, match=r"IMG_0001.HEIC: a HEIC/HEIF photo .* export it as JPEG"):
            read(path)


def test_an_avif_photo_reads(tmp_path, rgb):
    path = tmp_path / "photo.avif"
    Image.fromarray(rgb).save(path, quality=100)
    out = load_image(path)
    assert out.shape == rgb.shape and np.abs(out.astype(int) - rgb).mean() < 8
