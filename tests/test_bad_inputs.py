"""Reliability suite: every bad input gets one line on stderr, exit code 2, and nothing written,
before any work is spent (issue 26; docs/reliability.md).

Most cases call the CLI in-process (``backend.cli.main``; a guard makes any fit fail the test,
so a check that lets a case through is caught at once, not after minutes); a representative few
run ``python -m backend.cli`` / ``python -m training.coarse`` in a subprocess for the whole
contract (exit code, stderr, no hang on a FIFO). Accepted oddities (16-bit, CMYK, palette,
alpha, EXIF orientations 1–8) are checked to load upright.
"""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from backend import validate
from backend.cli import main as cli_main
from backend.errors import ImageReadError, ModelFormatError, PhotoheadError, WeightsFormatError

ROOT = Path(__file__).resolve().parents[1]


# -- helpers ------------------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time (folders' own times change
    when the writability probe makes and removes its empty folder: not a file touched)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p.is_file() and not p.is_symlink() and not p.is_fifo():
                st = p.stat()
                out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def assert_refused(rc: int, err: str, *, absent: Path | None = None, root: Path | None = None,
                   before: dict | None = None, match: str = "") -> str:
    """Exit 2, exactly one line on stderr, no traceback or ANSI codes, ``absent`` not created,
    no file under ``root`` changed. Returns the line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "\x1b" not in err, err
    if match:
        assert match in lines[0], lines[0]
    if absent is not None:
        assert not os.path.lexists(absent), f"{absent} was created"
    if root is not None:
        assert snapshot(root) == before
        leftovers = [p.name for p in root.iterdir() if p.name.startswith(".")]
        assert leftovers == [], leftovers
    return lines[0]


@pytest.fixture
def no_fit(monkeypatch):
    """Fail loudly if a case gets as far as fitting: every check must come first."""
    import backend.modes as modes

    def refuse(*args, **kwargs):
        raise AssertionError("validation let a bad input through to the fit")

    monkeypatch.setattr(modes, "fit_coarse", refuse)  # the fit and hybrid modes' coarse stage


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """grace_hopper as a plain JPEG in its own folder."""
    from backend.samples import sample_photo

    path = tmp_path_factory.mktemp("photo") / "grace.jpg"
    Image.fromarray(sample_photo("grace_hopper")[1]).save(path, quality=90)
    return path


def run_cli(capfd, *argv: str) -> tuple[int, str]:
    rc = cli_main(["reconstruct", *argv, "--quality", "draft", "-q"])
    return rc, capfd.readouterr().err


def tiny_model(path: Path, **change) -> Path:
    """A small valid face model in Photohead's npz format (V = 100), with ``change`` applied."""
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(np.linspace(-75, 75, 10), np.linspace(-90, 90, 10))
    mean = np.stack([x.ravel(), y.ravel(), 30 * np.cos(x.ravel() / 60)], 1).astype(np.float32)
    quads = np.array([[r * 10 + c, r * 10 + c + 1, (r + 1) * 10 + c] for r in range(9) for c in range(9)])
    arrays = {
        "name": np.array("tiny"), "mean": mean, "faces": quads.astype(np.int32),
        "id_basis": rng.normal(size=(3, 100, 3)).astype(np.float32),
        "exp_basis": rng.normal(size=(2, 100, 3)).astype(np.float32),
        "landmarks68": (np.arange(68) % 100).astype(np.int32),
    }
    arrays.update(change)
    with open(path, "wb") as fh:
        np.savez(fh, **{k: v for k, v in arrays.items() if v is not None})
    return path


# -- output location ---------------------------------------------------------------------------------
def test_empty_output_name_writes_nothing_into_the_current_folder(capfd, no_fit, photo, tmp_path, monkeypatch):
    """Issue case 1: ``-o ""`` meant the current folder and deleted a preview_view1.png there."""
    (tmp_path / "preview_view1.png").write_bytes(b"the user's own file")
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert_refused(*run_cli(capfd, str(photo), "-o", ""), root=tmp_path, before=before, match="name is empty")


@pytest.mark.parametrize("target", ["photo itself", "file", "under a file"])
def test_output_is_a_file(capfd, no_fit, photo, tmp_path, target):
    """Issue case 2: ``-o`` naming an existing file failed after the whole fit."""
    (tmp_path / "notes.txt").write_text("x")
    out = {"photo itself": photo, "file": tmp_path / "notes.txt", "under a file": tmp_path / "notes.txt" / "out"}[target]
    before = snapshot(tmp_path)
    line = assert_refused(*run_cli(capfd, str(photo), "-o", str(out)), root=tmp_path, before=before)
    assert str(out) in line


def test_output_folder_with_foreign_files(capfd, no_fit, photo, tmp_path):
    """A folder holding the user's files (not an earlier result) could lose some: refused."""
    out = tmp_path / "docs"
    out.mkdir()
    (out / "preview_view1.png").write_bytes(b"not ours")
    before = snapshot(tmp_path)
    assert_refused(*run_cli(capfd, str(photo), "-o", str(out)), root=tmp_path, before=before,
                   match="not a Photohead result (e.g. preview_view1.png)")


def test_read_only_output_by_fault_injection(capfd, no_fit, photo, tmp_path, monkeypatch):
    """Issue case 2 (Errno 30): as root chmod does not stop writes, so the probe's mkdtemp fails."""
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(validate.tempfile, "mkdtemp", read_only)
    line = assert_refused(*run_cli(capfd, str(photo), "-o", str(tmp_path / "out")), absent=tmp_path / "out")
    assert "read-only file system" in line


def test_full_disk_by_fault_injection(capfd, no_fit, photo, tmp_path, monkeypatch):
    """Issue case 2 (Errno 28): too little free space for the preset's outputs, refused up front."""
    real = validate.shutil.disk_usage
    monkeypatch.setattr(validate.shutil, "disk_usage", lambda p: real(p)._replace(free=5_000_000))
    line = assert_refused(*run_cli(capfd, str(photo), "-o", str(tmp_path / "out")), absent=tmp_path / "out")
    assert "only 5.0 MB are free" in line and "need about" in line


def _mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MB tmpfs (root and mount permission needed; skipped elsewhere)."""
    where = tmp_path / "mnt"
    if not _mount_tmpfs(where, "size=1m"):
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_full_and_read_only_tmpfs(capfd, no_fit, photo, small_tmpfs):
    """The same refusals on a real 1 MB tmpfs, then remounted read-only."""
    line = assert_refused(*run_cli(capfd, str(photo), "-o", str(small_tmpfs / "out")), absent=small_tmpfs / "out")
    assert "MB are free" in line
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    line = assert_refused(*run_cli(capfd, str(photo), "-o", str(small_tmpfs / "out")), absent=small_tmpfs / "out")
    assert "read-only file system" in line


# -- photos ----------------------------------------------------------------------------------------
def _png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG that declares w×h pixels but holds one empty data chunk (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def _bad_photo(kind: str, folder: Path, photo: Path) -> Path:
    p = folder / f"{kind}.jpg"
    if kind == "zero_bytes":
        p.write_bytes(b"")
    elif kind == "one_pixel":  # issue case 4: crashed inside dlib's filters
        p = folder / "one.png"
        Image.new("RGB", (1, 1)).save(p)
    elif kind == "too_small":
        p = folder / "small.png"
        Image.new("RGB", (400, 63)).save(p)
    elif kind == "truncated":
        data = photo.read_bytes()
        p.write_bytes(data[: len(data) // 3])
    elif kind == "text":
        p.write_text("not a photo\n")
    elif kind == "huge":
        p = _png_header_only(folder / "huge.png", 60000, 60000)
    elif kind == "folder":
        p.mkdir()
    elif kind == "fifo":  # issue case 7: hung forever at "detecting face"
        os.mkfifo(p)
    elif kind == "symlink_loop":
        os.symlink(folder / "loop_b.jpg", folder / "loop_a.jpg")
        os.symlink(folder / "loop_a.jpg", folder / "loop_b.jpg")
        p = folder / "loop_a.jpg"
    elif kind == "broken_symlink":
        os.symlink(folder / "gone.jpg", p)
    elif kind == "missing":
        pass
    elif kind == "char_device":
        p = Path("/dev/null")
    return p


PHOTO_CASES = {
    "zero_bytes": "empty (0 bytes)", "one_pixel": "1×1 px", "too_small": "at least 64 px",
    "truncated": "corrupt or unsupported image", "text": "not a readable image", "huge": "decompression-bomb limit",
    "folder": "is a folder", "fifo": "FIFO", "symlink_loop": "symbolic link loop",
    "broken_symlink": "symbolic link to a missing file", "missing": "no such photo file",
    "char_device": "character device",
}


@pytest.mark.parametrize("kind", sorted(PHOTO_CASES))
def test_bad_photo(capfd, no_fit, photo, tmp_path, kind):
    bad = _bad_photo(kind, tmp_path, photo)
    before = snapshot(tmp_path)
    line = assert_refused(*run_cli(capfd, str(bad), "-o", str(tmp_path / "out")), absent=tmp_path / "out",
                          root=tmp_path, before=before, match=PHOTO_CASES[kind])
    assert str(bad) in line


def test_bad_photo_among_good_ones_stops_before_work(capfd, no_fit, photo, tmp_path):
    """Multi-view: the third photo is truncated; refused when it is decoded, before any fit."""
    bad = _bad_photo("truncated", tmp_path, photo)
    assert_refused(*run_cli(capfd, str(photo), str(photo), str(bad), "-o", str(tmp_path / "out")),
                   absent=tmp_path / "out", match="truncated.jpg")


def test_labels_count_and_missing_model(capfd, no_fit, photo, tmp_path):
    """Three labels for two photos were ignored silently; a missing --model is named as such."""
    assert_refused(*run_cli(capfd, str(photo), str(photo), "--labels", "a,b,c", "-o", str(tmp_path / "out")),
                   absent=tmp_path / "out", match="--labels gives 3 label(s) for 2 photo(s)")
    assert_refused(*run_cli(capfd, str(photo), "--model", str(tmp_path / "none.npz"), "-o", str(tmp_path / "out")),
                   absent=tmp_path / "out", match="no such face model file or folder")


@pytest.mark.parametrize("face,match", [(-1, "--face must be 0 or more"), (5, "face #5 requested")])
def test_face_index(capfd, no_fit, photo, tmp_path, face, match):
    """Issue case 5: ``--face -1`` was a ValueError traceback; out of range is named with the count."""
    assert_refused(*run_cli(capfd, str(photo), "--face", str(face), "-o", str(tmp_path / "out")),
                   absent=tmp_path / "out", match=match)


def _encoded(img: Image.Image, fmt: str, **kw) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    buf.seek(0)
    return Image.open(buf)


@pytest.mark.parametrize("kind", ["16bit_gray_png", "16bit_rgb_tiff", "cmyk_jpeg", "palette_png", "rgba_png",
                                  "la_png", "bilevel_png", "float_tiff", "animated_gif", "webp", "bmp"])
def test_image_oddities_are_handled(tmp_path, kind):
    """Accepted and converted to 8-bit RGB (backend.image_io); the check passes them."""
    from backend.image_io import load_image

    w, h = 96, 80
    ramp = np.linspace(0, 1, w * h).reshape(h, w)
    ext = {"animated_gif": "gif", "webp": "webp", "bmp": "bmp"}.get(kind)
    path = tmp_path / f"{kind}.{ext or ('tif' if 'tiff' in kind else 'jpg' if 'jpeg' in kind else 'png')}"
    if kind == "16bit_gray_png":
        Image.fromarray((ramp * 65535).astype(np.uint16)).save(path)
    elif kind == "16bit_rgb_tiff":
        import tifffile

        tifffile.imwrite(path, (np.stack([ramp] * 3, -1) * 65535).astype(np.uint16))
    elif kind == "cmyk_jpeg":
        Image.fromarray((ramp * 255).astype(np.uint8)).convert("CMYK").save(path)
    elif kind == "palette_png":
        Image.fromarray((np.stack([ramp] * 3, -1) * 255).astype(np.uint8)).convert("P").save(path)
    elif kind == "rgba_png":
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., 3] = (ramp * 255).astype(np.uint8)
        Image.fromarray(rgba).save(path)
    elif kind == "la_png":
        Image.fromarray((ramp * 255).astype(np.uint8)).convert("LA").save(path)
    elif kind == "bilevel_png":
        Image.fromarray(ramp > 0.5).save(path)
    elif kind == "float_tiff":
        Image.fromarray(ramp.astype(np.float32)).save(path)
    elif kind == "animated_gif":  # the first frame is the photo
        frames = [Image.fromarray((np.stack([ramp] * 3, -1) * 255 * k).astype(np.uint8)) for k in (1.0, 0.2)]
        frames[0].save(path, save_all=True, append_images=frames[1:])
    elif kind in ("webp", "bmp"):
        Image.fromarray((np.stack([ramp] * 3, -1) * 255).astype(np.uint8)).save(path)
    assert validate.check_photo(path) == (w, h)
    rgb = load_image(path)
    assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8 and rgb.max() > 200


@pytest.mark.parametrize("orientation", range(0, 10))
def test_exif_orientations(tmp_path, orientation):
    """EXIF orientations 1–8: the checked size and the loaded array are the upright photo; the
    invalid values 0 and 9 leave the photo as stored."""
    from backend.image_io import load_image

    img = np.zeros((80, 120, 3), np.uint8)
    img[:10, :10] = 255  # a marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(img).save(path, exif=exif, quality=95)
    upright = (80, 120) if orientation <= 4 or orientation == 9 else (120, 80)
    rgb = load_image(path)
    assert rgb.shape[:2] == upright and validate.check_photo(path) == upright[::-1]
    corner = {0: (0, 0), 9: (0, 0), 1: (0, 0), 2: (0, -1), 3: (-1, -1), 4: (-1, 0), 5: (0, 0), 6: (0, -1), 7: (-1, -1), 8: (-1, 0)}
    r, c = corner[orientation]
    assert rgb[r, c].mean() > 200  # where a viewer shows the marker


def test_photo_checks_take_milliseconds(photo):
    import time

    t = time.perf_counter()
    validate.check_photos([photo] * 3)
    assert time.perf_counter() - t < 1.0


# -- several faces -----------------------------------------------------------------------------------------
def _face(x: float, side: float, score: float, detector: str = "hog"):
    from backend.detect import Face

    lm = np.stack([np.linspace(x, x + side, 68), np.linspace(10, 10 + side, 68)], 1)
    return Face(box=[x, 10, x + side, 10 + side], landmarks=lm, score=score, backend="dlib", detector=detector)


def test_choose_faces_drops_weak_detections_and_puts_the_largest_first():
    from backend.detect import MIN_SCORE, choose_faces, faces_report

    t = MIN_SCORE["hog"]
    faces = choose_faces([_face(0, 80, t + 1.0), _face(200, 150, t + 0.2), _face(400, 300, t - 0.01)])
    assert [(f.size, f.index, f.count) for f in faces] == [(150, 0, 2), (80, 1, 2)]  # the weak 300 px box dropped
    lone = choose_faces([_face(0, 90, t - 0.2)])
    assert len(lone) == 1 and lone[0].score == pytest.approx(t - 0.2)  # a photo's only face is kept
    assert faces_report(faces, "x.jpg") == (f"2 faces in x.jpg (largest first): #0 box (200,10,350,160) score {t + 0.2:.2f}, "
                                            f"#1 box (0,10,80,90) score {t + 1.0:.2f}")


@pytest.mark.slow
def test_several_faces_are_reported_and_the_largest_used(capfd, tmp_path, astronaut, grace_hopper):
    """Issue case 8 at draft quality: two people side by side; every face is listed in one warning
    line (and params.json), the larger face (grace_hopper's, right) is reconstructed."""
    import json

    gh = np.asarray(Image.fromarray(grace_hopper).resize((437, 512)))
    Image.fromarray(np.concatenate([astronaut, gh], axis=1)).save(tmp_path / "two.png")
    rc = cli_main(["reconstruct", str(tmp_path / "two.png"), "-o", str(tmp_path / "out"), "--quality", "draft", "-q"])
    err = capfd.readouterr().err
    assert rc == 0, err
    notes = [line for line in err.splitlines() if "faces in" in line]
    assert len(notes) == 1 and "2 faces in two.png (largest first): #0 box (" in notes[0] and "using #0" in notes[0]
    params = json.loads((tmp_path / "out" / "params.json").read_text())
    assert any("2 faces in" in w for w in params["warnings"])
    assert params["views"][0]["face_box"][0] > 512  # grace_hopper's face


# -- face models ---------------------------------------------------------------------------------------
def test_tiny_model_is_valid(tmp_path):
    from backend.facemodel import load_model

    assert load_model(tiny_model(tmp_path / "tiny.npz")).n_verts == 100


MODEL_CASES = {
    "object_arrays": ({"id_basis": np.array([object(), None], dtype=object)}, "pickled Python objects"),
    "face_index_beyond_vertices": ({"faces": np.array([[0, 1, 100]] * 5, np.int32)}, "'faces' indices run 0..100"),
    "negative_face_index": ({"faces": np.array([[0, 1, -1]] * 5, np.int32)}, "'faces' indices run -1..1"),
    "landmark_out_of_range": ({"landmarks68": np.arange(68) + 50}, "'landmarks68' indices run 50..117"),
    "nan_mean": ({"mean": np.full((100, 3), np.nan, np.float32)}, "'mean' holds NaN"),
    "wrong_basis_shape": ({"id_basis": np.zeros((3, 99, 3), np.float32)}, "'id_basis' must be (K,100,3)"),
    "string_faces": ({"faces": np.array([["a", "b", "c"]])}, ""),
    "missing_key": ({"faces": None}, "missing key(s) faces"),
    "uv_without_faces_uv": ({"uv": np.zeros((4, 2), np.float32)}, "'uv' and 'faces_uv' come together"),
    "faces_uv_out_of_range": ({"uv": np.zeros((4, 2), np.float32), "faces_uv": np.full((81, 3), 4)}, "'faces_uv' indices run 4..4"),
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_bad_model_file_loader(tmp_path, case):
    """Issue case 3: object arrays gave a ValueError, a face index beyond the vertices an IndexError."""
    from backend.facemodel import load_model

    change, match = MODEL_CASES[case]
    path = tiny_model(tmp_path / f"{case}.npz", **change)
    with pytest.raises(ModelFormatError) as info:
        load_model(path)
    assert str(path) in str(info.value) and match in str(info.value) and "\n" not in str(info.value)


def test_truncated_and_foreign_model_files(tmp_path):
    from backend.facemodel import load_model

    good = tiny_model(tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.npz").write_text("hello")
    for name in ("cut.npz", "text.npz"):
        with pytest.raises(ModelFormatError, match=name):
            load_model(tmp_path / name)


@pytest.mark.parametrize("name", ["junk.mat", "junk.h5", "junk.pkl", "junk.npz", "empty_folder"])
def test_junk_model_files_of_every_format(tmp_path, name):
    """A truncated .mat raised scipy's MatReadError; every format's loader gives one ModelFormatError line."""
    from backend.facemodel import load_model

    path = tmp_path / name
    if name == "empty_folder":
        path.mkdir()
    else:
        path.write_bytes(b"junk")
    with pytest.raises(ModelFormatError) as info:
        load_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("case", ["object_arrays", "face_index_beyond_vertices"])
def test_bad_model_file_cli(capfd, no_fit, photo, tmp_path, case):
    model = tiny_model(tmp_path / "model.npz", **MODEL_CASES[case][0])
    assert_refused(*run_cli(capfd, str(photo), "--model", str(model), "-o", str(tmp_path / "out")),
                   absent=tmp_path / "out", match=MODEL_CASES[case][1])


# -- checkpoints -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def coarse_ckpt(tmp_path_factory) -> Path:
    """A small stage-1 checkpoint (light encoder, 32² crops) that the loader reads."""
    from backend.checkpoint import save_checkpoint
    from backend.nets import EncoderConfig, FaceEncoder

    enc = FaceEncoder(EncoderConfig(arch="light", in_size=32, n_id=4, n_exp=3, n_tex=2, width=0.25, fc_dim=16))
    path = tmp_path_factory.mktemp("ckpt") / "coarse.pt"
    save_checkpoint(path, model=enc, model_card={"stage": "coarse"})
    return path


def _ckpt_dict(path: Path) -> dict:
    return torch.load(path, weights_only=True)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/photohead_pwned",))


def _bad_ckpt(kind: str, folder: Path, good: Path) -> Path:
    path = folder / "coarse.pt"
    ckpt = _ckpt_dict(good)
    if kind == "malicious_pickle":  # issue case 9: torch's refusal is five lines with ANSI codes
        torch.save({"format": "photohead-checkpoint", "x": _Evil()}, path)
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path.write_text("weights")
    elif kind == "foreign":
        torch.save({"state_dict": {}}, path)
    elif kind == "wrong_shapes":
        ckpt["model"] = {k: torch.zeros(v.numel() + 1) for k, v in ckpt["model"].items()}
        torch.save(ckpt, path)
    elif kind == "missing_keys":
        ckpt["model"] = dict(list(ckpt["model"].items())[:2])
        torch.save(ckpt, path)
    elif kind == "huge_width":  # the architecture declares a network of 28 GB
        ckpt["arch"] = {**ckpt["arch"], "width": 50.0, "fc_dim": 100_000}
        torch.save(ckpt, path)
    elif kind == "huge_stride0":  # issue case 10: a tensor declaring 15 GB over one stored float
        key = next(iter(ckpt["model"]))
        ckpt["model"][key] = torch.zeros(1).expand(3_750_000_000)
        torch.save(ckpt, path)
    elif kind == "bad_arch":
        ckpt["arch"] = {**ckpt["arch"], "arch": "resnet9000"}
        torch.save(ckpt, path)
    return path


CKPT_CASES = {
    "malicious_pickle": "refused by torch.load(weights_only=True)", "truncated": "not a readable checkpoint",
    "text": "not a readable checkpoint", "foreign": "not a Photohead checkpoint",
    "wrong_shapes": "of another shape", "missing_keys": "missing", "huge_width": "of another shape",
    "huge_stride0": "declares (3750000000,)", "bad_arch": "architecture description",
}


@pytest.mark.parametrize("kind", sorted(CKPT_CASES))
def test_bad_checkpoint(coarse_ckpt, tmp_path, kind):
    """Issue cases 9, 10: one clean line; declared sizes checked before anything is allocated."""
    import resource

    from backend.predict import load_predictor

    path = _bad_ckpt(kind, tmp_path, coarse_ckpt)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(PhotoheadError) as info:
        load_predictor(tmp_path)
    msg = validate.one_line(info.value)
    assert str(info.value) == msg and str(path) in msg and CKPT_CASES[kind] in msg, msg
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 500_000  # KiB: nothing near 15 GB
    assert not Path("/tmp/photohead_pwned").exists()


def test_good_checkpoint_loads(coarse_ckpt):
    from backend.predict import load_predictor

    assert load_predictor(coarse_ckpt.parent).encoder.config.in_size == 32


def test_one_line_condenses_torch_text():
    text = ("Weights only load failed. In PyTorch 2.6, we changed the default ... trusted source.\n\n\n"
            "Trying to load unsupported GLOBAL posix.system whose module posix is blocked.\n\n"
            "Check the documentation of torch.load to learn more ... torch.load.html.")
    assert validate.one_line(text) == ("refused by torch.load(weights_only=True): Trying to load unsupported GLOBAL "
                                       "posix.system whose module posix is blocked.")
    text = ("\x1b[1mWeights only load failed.\x1b[0m This file can still be loaded...\n\t(1) In PyTorch 2.6...\n"
            "\tWeightsUnpickler error: Unsupported global: GLOBAL posix.system was not an allowed global\n\n"
            "Check the documentation of torch.load")
    assert validate.one_line(text) == "WeightsUnpickler error: Unsupported global: GLOBAL posix.system was not an allowed global"


def test_bad_checkpoint_cli(capfd, no_fit, photo, coarse_ckpt, tmp_path):
    _bad_ckpt("malicious_pickle", tmp_path, coarse_ckpt)
    assert_refused(*run_cli(capfd, str(photo), "--mode", "predict", "--checkpoints", str(tmp_path),
                            "-o", str(tmp_path / "out")), absent=tmp_path / "out", match="posix.system")


# -- trainers ------------------------------------------------------------------------------------------------
def _train(capfd, *argv: str) -> tuple[int, str]:
    from training.coarse import main

    rc = main(["--loop.progress=false", "--loop.device=cpu", *argv])
    return rc, capfd.readouterr().err


def test_trainer_empty_data_folder(capfd, tmp_path):
    """Issue case 6: exited 1 with "training set is empty" and left config.json in the run folder."""
    (tmp_path / "data").mkdir()
    assert_refused(*_train(capfd, "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")),
                   absent=tmp_path / "run", match="holds no photos")


def test_trainer_refuses_earlier_run_without_resume(capfd, tmp_path):
    """Issue case 6: a run folder holding last.pt without --resume raised RunFolderError."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"an earlier run")
    before = snapshot(tmp_path)
    assert_refused(*_train(capfd, "--data", "synthetic", "--out", str(run)), root=tmp_path, before=before,
                   match="--resume=auto")


@pytest.mark.parametrize("argv,match", [
    (["--data", "synthetic", "--no_such_key=1"], "unknown config key"),
    (["--data", "synthetic", "--loop.steps=many"], "loop.steps"),
    (["--data", "/no/such/folder"], "does not exist"),
    (["--data", ""], "no training data"),
    (["--data", "synthetic", "--init=/no/such.pt"], "not found"),
    (["--data", "synthetic", "--resume=/no/such.pt"], "not found"),
])
def test_trainer_bad_arguments(capfd, tmp_path, argv, match):
    assert_refused(*_train(capfd, *argv, "--out", str(tmp_path / "run")), absent=tmp_path / "run", match=match)


@pytest.mark.parametrize("case", ["missing", "one_photo", "folder_out"])
def test_albedo_basis_trainer(capfd, photo, tmp_path, case):
    """`photohead train albedo-basis` raised a traceback (exit 1) after trying every photo."""
    from training.albedo_basis import main

    data = tmp_path / "photos"
    data.mkdir()
    (data / "a.jpg").write_bytes(photo.read_bytes())
    if case == "folder_out":
        (data / "b.jpg").write_bytes(photo.read_bytes())
    argv = {"missing": ["--data", str(tmp_path / "none"), "--out", str(tmp_path / "m.npz")],
            "one_photo": ["--data", str(data), "--out", str(tmp_path / "m.npz")],
            "folder_out": ["--data", str(data), "--out", str(tmp_path)]}[case]
    before = snapshot(tmp_path)
    rc = main(argv)
    assert_refused(rc, capfd.readouterr().err, root=tmp_path, before=before,
                   match={"missing": "does not exist", "one_photo": "needs at least 2", "folder_out": "name the output"}[case])


def test_trainer_init_from_wrong_network(capfd, coarse_ckpt, tmp_path):
    """--init with a checkpoint of another architecture: refused before any preprocessing."""
    argv = ["--data", "synthetic", "--data.crop_size=32", "--encoder.arch=light", "--use_identity=false",
            f"--init={coarse_ckpt}", "--out", str(tmp_path / "run")]
    assert_refused(*_train(capfd, *argv), absent=tmp_path / "run", match="does not fit this run's network")


# -- the CLI contract in a subprocess ------------------------------------------------------------------------
def _subprocess(args: list[str], cwd: Path, timeout: float = 120) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stderr


def test_cli_contract_in_a_subprocess(photo, coarse_ckpt, tmp_path):
    """A representative few as a user runs them: ``-o ""``, a FIFO (no hang), a malicious
    checkpoint, and a trainer on an empty data folder (the rest run in-process above)."""
    (tmp_path / "preview_view1.png").write_bytes(b"the user's own file")
    fifo = _bad_photo("fifo", tmp_path, photo)
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    _bad_ckpt("malicious_pickle", ckpts, coarse_ckpt)
    (tmp_path / "data").mkdir()
    before = snapshot(tmp_path)
    cli = ["-m", "backend.cli", "reconstruct"]
    cases = [
        (cli + [str(photo), "-o", ""], "name is empty"),
        (cli + [str(fifo), "-o", "out"], "FIFO"),
        (cli + [str(photo), "--mode", "predict", "--checkpoints", str(ckpts), "-o", "out"], "refused by torch.load"),
        (["-m", "backend.cli", "train", "coarse", "--data", "data", "--out", "run"], "holds no photos"),
    ]
    for args, match in cases:
        assert_refused(*_subprocess(args, tmp_path, timeout=60), match=match)
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists() and not (tmp_path / "run").exists()
