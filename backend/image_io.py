"""Photo loading: any common file (or array) → one (H,W,3) uint8 RGB array, upright.

Decisions (recorded here and in the tests):
- **Alpha is composited on white** (``background=(255,255,255)``): transparent pixels of a
  cut-out portrait become white rather than whatever colour the encoder left under them.
- **EXIF orientation** (tags 1–8) is applied, so the array is the photo as a viewer shows it;
  all landmark/box pixels downstream refer to this upright array.
- **16-bit** (``I;16`` PNG/TIFF, 16-bit RGB TIFF, float TIFF) is scaled to 8 bits by its full
  range (65535 → 255, rounded), never by the image's own min/max.
- Grayscale, palette (``P``), ``LA``, ``CMYK``, ``YCbCr``, ``1`` are converted to RGB.
- Anything unreadable raises :class:`~backend.errors.ImageReadError` naming the path.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageReadError

__all__ = ["load_image", "as_rgb_uint8", "exif_turned", "unsupported_format_hint", "HEIF_EXPORT"]

WHITE = (255, 255, 255)

# EXIF tag 0x0112 → PIL transpose method for values 2..8 (1 = as stored).
_EXIF_ORIENTATION_TAG = 0x0112


def _exif_transpose(img):
    """Apply the EXIF orientation tag (all 8 values) and return an upright PIL image."""
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError):  # broken EXIF block: keep pixels as stored
        return img
    methods = {
        2: [Image.Transpose.FLIP_LEFT_RIGHT],
        3: [Image.Transpose.ROTATE_180],
        4: [Image.Transpose.FLIP_TOP_BOTTOM],
        5: [Image.Transpose.TRANSPOSE],
        6: [Image.Transpose.ROTATE_270],
        7: [Image.Transpose.TRANSVERSE],
        8: [Image.Transpose.ROTATE_90],
    }.get(int(orientation) if isinstance(orientation, int) else 1, [])
    for m in methods:
        img = img.transpose(m)
    return img


def _high_bit_to_uint8(a: np.ndarray) -> np.ndarray:
    """Integer (16/32-bit) or float pixel data → uint8 by the dtype's nominal range."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        # float images: [0,1] when they fit there, else treat as 8-bit-valued
        finite = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        hi = 1.0 if finite.size == 0 or finite.max() <= 1.0 else 255.0
        return np.clip(np.rint(finite * (255.0 / hi)), 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        a64 = a.astype(np.float64)
        if info.min < 0:
            # signed: int16 by its range; wider ints are 16-bit data held in int32
            # (PIL's "I" mode for 16-bit PNGs), so 65535 → 255
            top = float(info.max) if a.dtype.itemsize == 2 else 65535.0
            a64 = np.clip(a64, 0, None)
        else:
            top = float(info.max)
        return np.clip(np.rint(a64 * (255.0 / top)), 0, 255).astype(np.uint8)
    raise ValueError(f"unsupported pixel dtype {a.dtype}")


def as_rgb_uint8(
    array: np.ndarray, background: tuple[int, int, int] = WHITE, copy: bool = True
) -> np.ndarray:
    """Normalise an in-memory image to (H,W,3) uint8 RGB (input untouched).

    ``copy=False`` returns the input itself when it already is C-contiguous (H,W,3) uint8
    (for read-only callers such as the detector); otherwise the result is a new array.

    Accepts (H,W) gray, (H,W,1), (H,W,2) gray+alpha, (H,W,3) RGB, (H,W,4) RGBA, of dtype
    uint8, uint16/int32 (full 16-bit range → 8 bits), int16 (0..32767), bool or float
    ([0,1] when max ≤ 1, else 0..255). Alpha is composited on ``background``.
    Raises :class:`ImageReadError` for other shapes or empty arrays.
    """
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageReadError(
            f"image array has shape {tuple(np.shape(array))}; expected (H,W), (H,W,1..4) with H,W > 0"
        )
    try:
        a = _high_bit_to_uint8(a)
    except ValueError as exc:
        raise ImageReadError(f"image array: {exc}; pass uint8, uint16, bool or float pixels") from None
    c = a.shape[2]
    if c in (2, 4):
        colour = a[:, :, :c - 1].astype(np.float32)
        alpha = a[:, :, c - 1:].astype(np.float32) / 255.0
        bg = np.asarray(background, np.float32)[: c - 1]
        a = np.clip(np.rint(colour * alpha + bg * (1.0 - alpha)), 0, 255).astype(np.uint8)
        c -= 1
    if c == 1:
        a = np.repeat(a, 3, axis=2)
    if copy and isinstance(array, np.ndarray) and np.shares_memory(a, array):
        return np.array(a, order="C", copy=True)
    return np.ascontiguousarray(a)


def _pil_to_array(img, background: tuple[int, int, int]) -> np.ndarray:
    """A decoded, upright PIL image → (H,W,3) uint8 RGB, handling every PIL mode."""
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif mode == "1":
        img = img.convert("L")
    elif mode == "La":
        img = img.convert("LA")
    elif mode == "RGBa":
        img = img.convert("RGBA")
    elif mode.startswith("I;16"):
        # 16-bit grayscale (PNG/TIFF): keep all bits, big- or little-endian
        arr = np.asarray(img)
        return as_rgb_uint8(arr.astype(np.uint16), background)
    return as_rgb_uint8(np.asarray(img), background)


def _read_16bit_rgb_tiff(path: Path) -> np.ndarray | None:
    """PIL cannot decode 16-bit RGB(A) TIFFs; tifffile (a scikit-image dependency) can."""
    try:
        import tifffile  # optional: only 16-bit RGB TIFFs need it
    except ImportError:
        return None
    try:
        return np.asarray(tifffile.imread(str(path)))
    except (OSError, ValueError, KeyError, IndexError, RuntimeError):
        return None


# ISO base media file brands of HEIF images (an iPhone's default "High Efficiency" format), which
# Pillow does not read; AVIF (brands avif/avis) it does
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
HEIF_EXPORT = "Photos: File → Export; on the phone: Settings → Camera → Formats → Most Compatible"  # HEIC → JPEG


def unsupported_format_hint(path: str | os.PathLike) -> str:
    """What to do with a photo file Pillow cannot identify, from its first bytes: HEIC/HEIF (an
    iPhone's default) gets a way to convert it; anything else "" (no hint)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return ""
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return f"a HEIC/HEIF photo (an iPhone's default format), which Photohead cannot read: export it as JPEG ({HEIF_EXPORT})"
    return ""


def exif_turned(path: str | os.PathLike) -> bool:
    """Whether a photo file's EXIF orientation (values 2–8) turns or mirrors its stored pixels:
    :func:`load_image` returns them upright, while a viewer that ignores the tag (Blender) shows
    them as stored. False for an unreadable file or a broken EXIF block (read as stored)."""
    try:
        with Image.open(path) as img:
            orientation = img.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False
    return isinstance(orientation, int) and 2 <= orientation <= 8


def load_image(
    path_or_array: str | os.PathLike | np.ndarray,
    background: tuple[int, int, int] = WHITE,
) -> np.ndarray:
    """Load a photo as an upright (H,W,3) uint8 RGB array.

    path_or_array: a file path (JPEG, PNG, TIFF, BMP, WebP, GIF, ... anything Pillow reads,
    plus 16-bit RGB TIFF via tifffile) or an array (see :func:`as_rgb_uint8`; arrays are
    assumed upright, no EXIF). Alpha is composited on ``background`` (white by default).
    The result is a new C-contiguous array.

    Raises :class:`ImageReadError` (message names the path) when the path does not exist,
    is a folder, cannot be read, or is not a decodable image.
    """
    if isinstance(path_or_array, np.ndarray):
        return as_rgb_uint8(path_or_array, background)
    if not isinstance(path_or_array, (str, os.PathLike)):
        raise ImageReadError(
            f"cannot load an image from a {type(path_or_array).__name__}; pass a file path or an (H,W,3) array"
        )

    path = Path(path_or_array)
    if not path.exists():
        raise ImageReadError(f"image file not found: {path}")
    if path.is_dir():
        raise ImageReadError(f"expected an image file but got a folder: {path}")
    try:
        with Image.open(path) as img:
            img.load()  # decode now so truncated/corrupt data fails here
            upright = _exif_transpose(img)
            if upright.mode in ("I", "F"):
                # 32-bit int (Pillow's container for 16-bit PNGs) or float single channel
                return as_rgb_uint8(np.asarray(upright), background)
            return _pil_to_array(upright, background)
    except UnidentifiedImageError:
        # maybe a 16-bit RGB TIFF Pillow cannot decode
        if path.suffix.lower() in (".tif", ".tiff"):
            arr = _read_16bit_rgb_tiff(path)
            if arr is not None:
                return as_rgb_uint8(arr, background)
        hint = unsupported_format_hint(path)
        raise ImageReadError(f"{path}: {hint}" if hint else f"not a readable image file (unknown format): {path}") from None
    except PermissionError:
        raise ImageReadError(f"permission denied reading image: {path}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        if path.suffix.lower() in (".tif", ".tiff"):
            arr = _read_16bit_rgb_tiff(path)
            if arr is not None:
                return as_rgb_uint8(arr, background)
        raise ImageReadError(f"corrupt or unsupported image {path}: {exc}") from None
