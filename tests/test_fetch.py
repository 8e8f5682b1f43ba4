"""`photohead models fetch ict` against a loopback HTTP server serving the ICT raw sample."""
from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from backend.errors import ModelFetchError
from backend.facemodel.fetch import fetch_ict, load_manifest

RAW = Path(__file__).resolve().parents[2] / "shared" / "models" / "ict_facekit"
SAMPLE = RAW / "raw_sample"
SUBSET = ["FaceXModel/identity000.obj", "FaceXModel/jawOpen.obj"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def mirror(tmp_path):
    """A folder laid out like the repository (FaceXModel/..., LICENSE) served on 127.0.0.1."""
    if not SAMPLE.exists():
        pytest.skip("ICT raw_sample not present")
    root = tmp_path / "mirror"
    (root / "FaceXModel").mkdir(parents=True)
    for src in SAMPLE.iterdir():
        shutil.copy(src, root / "FaceXModel" / src.name)
    shutil.copy(RAW / "LICENSE", root / "LICENSE")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_manifest_pins_commit_and_every_file():
    manifest = load_manifest()
    assert manifest["commit"] in manifest["base_url"] and len(manifest["commit"]) == 40
    files = manifest["files"]
    assert len(files) == 1 + 100 + 53 + 1 + 1  # neutral, identities, expressions, index json, LICENSE
    pinned = [n for n, e in files.items() if "sha256" in e]
    assert len(pinned) == 6 and all(len(files[n]["sha256"]) == 64 for n in pinned)
    assert all(e.get("check") in ("ict_obj", "mit_license") for n, e in files.items() if n not in pinned)


def test_fetch_subset_converts_like_shipped_npz(mirror, tmp_path):
    _root, url = mirror
    dest = tmp_path / "cache" / "ict_facekit"
    messages = []
    path = fetch_ict(dest=dest, base_url=url, files=SUBSET, progress=lambda f, m: messages.append((f, m)), timeout=10)
    assert path == dest / "ict_head.npz"
    assert _leftovers(dest) == ["LICENSE", "ict_head.npz", "ict_head.source.json", "ict_parts.npz"]
    assert _leftovers(dest.parent) == ["ict_facekit"]  # staging folder removed
    with np.load(dest / "ict_parts.npz") as parts, np.load(RAW / "ict_parts.npz") as ref_parts:  # eyes, teeth, ...
        np.testing.assert_array_equal(parts["mean"], ref_parts["mean"])
        np.testing.assert_array_equal(parts["faces"], ref_parts["faces"])
        np.testing.assert_array_equal(parts["exp_basis"][0], ref_parts["exp_basis"][list(ref_parts["exp_names"]).index("jawOpen")])
    assert "MIT License" in (dest / "LICENSE").read_text()
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    got, ref = np.load(path), np.load(RAW / "ict_head.npz")
    assert list(got["exp_names"]) == ["jawOpen"]
    np.testing.assert_allclose(got["mean"], ref["mean"], atol=1e-5)
    np.testing.assert_allclose(got["id_basis"], ref["id_basis"][:1], atol=1e-5)
    np.testing.assert_allclose(got["exp_basis"][0], ref["exp_basis"][list(ref["exp_names"]).index("jawOpen")], atol=1e-5)
    np.testing.assert_array_equal(got["faces"], ref["faces"])
    assert "partial" in str(got["source"])
    # already installed: no download, same path
    assert fetch_ict(dest=dest, base_url="http://127.0.0.1:9/unreachable", files=SUBSET) == path


def test_checksum_mismatch_leaves_nothing(mirror, tmp_path):
    root, url = mirror
    with open(root / "FaceXModel" / "jawOpen.obj", "ab") as fh:
        fh.write(b"# tampered\n")
    dest = tmp_path / "cache" / "ict_facekit"
    with pytest.raises(ModelFetchError, match="jawOpen.obj.*(size|sha256)"):
        fetch_ict(dest=dest, base_url=url, files=SUBSET, timeout=10)
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_structural_check_for_unpinned_file(mirror, tmp_path):
    root, url = mirror
    manifest = load_manifest()
    # identity002 has no sha256: serve a truncated OBJ under that name
    lines = (root / "FaceXModel" / "identity001.obj").read_text().splitlines(keepends=True)
    (root / "FaceXModel" / "identity002.obj").write_text("".join(lines[:-100]))
    dest = tmp_path / "out"
    with pytest.raises(ModelFetchError, match="identity002.obj: .*polygons"):
        fetch_ict(dest=dest, base_url=url, files=["FaceXModel/identity002.obj"], manifest=manifest, timeout=10)
    assert not dest.exists()


def test_missing_file_is_a_clear_error(mirror, tmp_path):
    root, url = mirror
    (root / "FaceXModel" / "jawOpen.obj").unlink()
    with pytest.raises(ModelFetchError, match=r"jawOpen.obj: HTTP 404"):
        fetch_ict(dest=tmp_path / "d", base_url=url, files=SUBSET, timeout=10)
    assert _leftovers(tmp_path) == ["mirror"]


def test_cli_fetch_into_cache(mirror, tmp_path, monkeypatch, capsys):
    from backend.cli import main

    _root, url = mirror
    monkeypatch.setenv("PHOTOHEAD_CACHE", str(tmp_path / "phcache"))
    import backend.facemodel.fetch as fetch_mod

    real = fetch_mod.fetch_ict
    monkeypatch.setattr(fetch_mod, "fetch_ict", functools.partial(real, files=["FaceXModel/eyeBlink_L.obj"]))
    assert main(["models", "fetch", "ict", "--url", url]) == 0
    installed = tmp_path / "phcache" / "models" / "ict_facekit" / "ict_head.npz"
    assert installed.exists() and str(installed) in capsys.readouterr().out


def test_cancel_mid_download_leaves_nothing(mirror, tmp_path):
    from backend.errors import CancelledError
    from backend.progress import Cancel

    _root, url = mirror
    cancel = Cancel()

    def progress(fraction, message):
        if "identity000" in message:
            cancel.set()

    dest = tmp_path / "c" / "ict_facekit"
    with pytest.raises(CancelledError):
        fetch_ict(dest=dest, base_url=url, files=SUBSET, progress=progress, cancel=cancel, timeout=10)
    assert not dest.exists() and _leftovers(dest.parent) == []
