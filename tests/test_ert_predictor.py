"""backend.detect.ert_predictor: the numpy port of dlib's shape predictor gives dlib's own points."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from backend.detect import ert_predictor
from backend.detect.ert_predictor import load_predictor, read_shape_predictor

dlib = pytest.importorskip("dlib")


# --- a tiny predictor written in dlib's serialisation, read by both dlib and the port ---------


def _int(v: int) -> bytes:
    mag = abs(int(v))
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def _float(x: float) -> bytes:
    m, e = math.frexp(float(np.float32(x)))
    return _int(int(m * (1 << 24))) + _int(e - 24 if m else 0)


def _column(v: np.ndarray) -> bytes:
    return _int(-len(v)) + _int(-1) + b"".join(_float(x) for x in v)


def _tiny_predictor(rng: np.random.Generator, parts=5, levels=3, trees=20, depth=3, feats=30) -> bytes:
    splits = 2**depth - 1
    out = [_int(1), _column(rng.uniform(0.15, 0.85, 2 * parts).astype(np.float32)), _int(levels)]
    for _ in range(levels):
        out.append(_int(trees))
        for _ in range(trees):
            out.append(_int(splits))
            for _ in range(splits):
                i1, i2 = rng.integers(0, feats, 2)
                out += [_int(i1), _int(i2), _float(rng.uniform(-40, 40))]
            out.append(_int(splits + 1))
            out += [_column(rng.normal(0, 0.01, 2 * parts).astype(np.float32)) for _ in range(splits + 1)]
    out.append(_int(levels))
    for _ in range(levels):
        out.append(_int(feats))
        out += [_int(a) for a in rng.integers(0, parts, feats)]
    out.append(_int(levels))
    for _ in range(levels):
        out.append(_int(feats))
        out += [_float(d) for d in rng.uniform(-0.3, 0.3, 2 * feats)]
    return b"".join(out)


def _dlib_points(pred, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.array([(p.x, p.y) for p in pred(image, dlib.rectangle(*box)).parts()], np.int64)


def test_tiny_predictor_matches_dlib(tmp_path):
    """A random predictor in dlib's format: the parser reads back what was written and the port
    predicts dlib's exact points, on RGB and grey images and on boxes reaching outside the image
    (where a feature pixel reads 0)."""
    rng = np.random.default_rng(3)
    path = tmp_path / "tiny.dat"
    path.write_bytes(_tiny_predictor(rng))
    port = read_shape_predictor(path)
    assert port.idx1.shape == (3, 20, 7) and port.leaves.shape == (3, 20, 8, 5, 2) and port.deltas.shape == (3, 30, 2)
    ref = dlib.shape_predictor(str(path))
    yy, xx = np.mgrid[0:90, 0:120]
    rgb = np.stack([(xx * 2) % 256, (yy * 3 + xx) % 256, (xx * yy) % 256], -1).astype(np.uint8)
    grey = np.ascontiguousarray(rgb[..., 1])
    boxes = [(10, 10, 70, 70), (30, 5, 110, 85), (-20, -15, 40, 45), (80, 50, 150, 120), (3, 7, 33, 29)]
    moved = 0
    for image in (rgb, grey):
        for box in boxes:
            a, b = _dlib_points(ref, image, box), port(image, box)
            np.testing.assert_array_equal(b, a)
            moved += int((a != _dlib_points(ref, np.zeros_like(image), box)).any())
    assert moved >= 5  # the image matters: the trees do not all fall into the same leaves


def test_cache_written_once_then_read(tmp_path, monkeypatch):
    """The parsed arrays go to the cache folder (small arrays in .npz, leaves memory-mapped .npy),
    are read back identical, and an unreadable cache is rebuilt; a cache folder that cannot be
    written gives None (the caller then runs dlib's own predictor)."""
    monkeypatch.setenv("PHOTOHEAD_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "tiny.dat"
    src.write_bytes(_tiny_predictor(np.random.default_rng(5)))
    path = ert_predictor.predictor_cache_path(src)
    assert tmp_path / "cache" in path.parents and not path.exists()
    built = load_predictor(src)
    assert path.is_file() and path.with_suffix(".leaves.npy").is_file()
    again = load_predictor(src)
    assert isinstance(again.leaves, np.memmap)
    for name in ert_predictor.ErtPredictor.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(again, name), getattr(built, name))
    path.write_bytes(b"not an npz")
    assert load_predictor(src) is not None and path.stat().st_size > 1000
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("PHOTOHEAD_CACHE", str(blocked))
    assert load_predictor(src) is None


# --- dlib's own 68-point model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def dlib68():
    from backend.detect.dlib_backend import PREDICTOR_FILE, model_dir

    try:
        source = model_dir() / PREDICTOR_FILE
    except Exception as exc:  # noqa: BLE001 — any missing-model error means: skip
        pytest.skip(f"dlib's 68-point model is missing: {exc}")
    port = load_predictor(source)  # builds the user's cache once (seconds), then milliseconds
    if port is None:
        pytest.skip("the cache folder is not writable")
    return port, dlib.shape_predictor(str(source))


def test_68_point_model_matches_dlib(dlib68, grace_hopper, astronaut):
    """The real model: every point equal to dlib's, on the sample photos and grace mirrored,
    for the detected box, shifted and scaled boxes, and a box half outside the photo."""
    from backend.detect.dlib_backend import _run_hog
    from backend.detect import DetectSettings

    port, ref = dlib68
    images = [grace_hopper, astronaut, np.ascontiguousarray(grace_hopper[:, ::-1])]
    points = 0
    for image in images:
        boxes, _ = _run_hog(image, DetectSettings(max_upsample=0))
        x0, y0, x1, y1 = (int(round(v)) for v in boxes[0])
        s = x1 - x0
        for box in [(x0, y0, x1, y1), (x0 + 7, y0 - 5, x1 + 7, y1 - 5), (x0 - s // 5, y0, x1 + s // 5, y1 + s // 3),
                    (-s // 2, y0, s // 2, y1)]:
            a, b = _dlib_points(ref, image, box), port(image, box)
            np.testing.assert_array_equal(b, a)
            points += len(a)
    assert points == 3 * 4 * 68


def test_68_point_model_loads_fast(dlib68):
    """From the cache the model loads in milliseconds (dlib decodes its 100 MB file in ~0.5 s)."""
    from backend.detect.dlib_backend import PREDICTOR_FILE, model_dir

    t = time.process_time()
    port = load_predictor(model_dir() / PREDICTOR_FILE)
    assert time.process_time() - t < 0.1
    assert port.leaves.shape == (15, 500, 16, 68, 2) and port.initial_shape.shape == (68, 2)
