"""Download ICT-FaceKit's ``FaceXModel/`` at the pinned commit, verify it, convert it to npz.

Only ``photohead models fetch ict`` (an explicit user command) calls this; library code never
downloads on its own. Files come from raw-file URLs that contain the commit SHA, so the
content cannot drift with the branch.

Verification (``ict_manifest.json`` next to this file):
- files we hold locally (the shared ``raw_sample``: neutral, identity000–001, jawOpen,
  eyeBlink_L, vertex_indices.json) are pinned by sha256 and size;
- the other ~150 OBJs could not be hashed here, so they are checked *structurally*: 26,719
  vertices, 28,911 UVs, 26,384 polygons with exactly the neutral's vertex and UV indices,
  finite coordinates within ±100 cm;
- ``LICENSE`` must be ICT's MIT licence text (checked by content, not by hash).
All files are downloaded into a staging folder next to the destination; the npz (written
last) and the LICENSE only appear once everything verified and converted. On any failure the
staging folder is removed and the destination is left as it was.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelFetchError, ModelFormatError
from ..io_utils import atomic_write_text
from ..progress import CancelToken, ProgressFn, check_cancel
from .ict_convert import (
    ICT_INDEX_FILE, ICT_NEUTRAL, N_POLYS_FULL, N_UV_FULL, N_VERTS_FULL, ICTConvertSettings, convert_ict,
)
from .npz import save_npz
from .objio import ObjMesh, read_obj
from .parts import parts_file_for, save_parts_npz
from .search import cache_dir

__all__ = ["MANIFEST_PATH", "ICT_MODEL_FILE", "load_manifest", "ict_default_dest", "fetch_ict", "verify_file"]

MANIFEST_PATH = Path(__file__).with_name("ict_manifest.json")
ICT_MODEL_FILE = "ict_head.npz"
FOLDER = "FaceXModel"
LICENSE_FILE = "LICENSE"
_CHUNK = 1 << 20
_MAX_ABS_CM = 100.0


def load_manifest(path: str | Path | None = None) -> dict:
    """The download manifest: ``repository``, ``commit``, ``base_url``, ``files`` {relpath: check}."""
    path = Path(path or MANIFEST_PATH)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFetchError(f"{path}: unreadable download manifest ({exc}); reinstall photohead") from exc
    for key in ("base_url", "commit", "files"):
        if key not in manifest:
            raise ModelFetchError(f"{path}: download manifest misses key '{key}'; reinstall photohead")
    return manifest


def ict_default_dest() -> Path:
    """Where ``fetch ict`` installs by default: ``cache_dir()/ict_facekit``."""
    return cache_dir() / "ict_facekit"


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, name: str, check: dict, neutral: ObjMesh | None = None) -> None:
    """Check one downloaded file against its manifest entry; raise :class:`ModelFetchError`."""
    if "sha256" in check:
        size = path.stat().st_size
        if "size" in check and size != check["size"]:
            raise ModelFetchError(f"{name}: size {size} bytes, expected {check['size']} (corrupt or changed download)")
        got = _sha256(path)
        if got != check["sha256"]:
            raise ModelFetchError(
                f"{name}: sha256 mismatch (got {got}, expected {check['sha256']}); corrupt or tampered download"
            )
        return
    kind = check.get("check")
    if kind == "mit_license":
        text = path.read_text(encoding="utf-8", errors="replace")
        if "MIT License" not in text or "Institute for Creative Technologies" not in text:
            raise ModelFetchError(f"{name}: not ICT-FaceKit's MIT licence text")
        return
    if kind == "ict_obj":
        try:
            mesh = read_obj(path)
        except ModelFormatError as exc:
            raise ModelFetchError(f"{name}: not a valid OBJ ({exc})") from exc
        counts = (mesh.vertices.shape[0], 0 if mesh.uv is None else mesh.uv.shape[0], mesh.counts.size)
        if counts != (N_VERTS_FULL, N_UV_FULL, N_POLYS_FULL):
            raise ModelFetchError(
                f"{name}: {counts[0]} vertices / {counts[1]} UVs / {counts[2]} polygons, expected "
                f"{N_VERTS_FULL} / {N_UV_FULL} / {N_POLYS_FULL} (not ICT Face Model Light)"
            )
        if not np.isfinite(mesh.vertices).all() or np.abs(mesh.vertices).max() > _MAX_ABS_CM:
            raise ModelFetchError(f"{name}: vertex coordinates non-finite or beyond ±{_MAX_ABS_CM:g} cm")
        if neutral is not None and not (
            np.array_equal(mesh.counts, neutral.counts)
            and np.array_equal(mesh.poly_v, neutral.poly_v)
            and np.array_equal(mesh.poly_uv, neutral.poly_uv)
        ):
            raise ModelFetchError(f"{name}: polygons differ from {ICT_NEUTRAL}'s topology")
        return
    raise ModelFetchError(f"{name}: manifest entry has no sha256 and no known check ({check}); reinstall photohead")


def _download(url: str, target: Path, timeout: float, retries: int, report, cancel: CancelToken | None) -> None:
    """Stream ``url`` into ``target``; ``report(fraction_of_this_file)``."""
    last_error: Exception | None = None
    for _attempt in range(retries + 1):
        check_cancel(cancel)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
                length = int(response.headers.get("Content-Length") or 0)
                done = 0
                while True:
                    check_cancel(cancel)
                    block = response.read(_CHUNK)
                    if not block:
                        break
                    out.write(block)
                    done += len(block)
                    if length:
                        report(min(done / length, 1.0))
                if length and done != length:
                    raise ModelFetchError(f"{url}: truncated download ({done} of {length} bytes)")
            return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # 404 and friends: retrying will not help
                raise ModelFetchError(f"download failed: {url}: HTTP {exc.code} {exc.reason}") from exc
            last_error = exc
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            last_error = exc
    raise ModelFetchError(
        f"download failed: {url}: {getattr(last_error, 'reason', last_error)} (after {retries + 1} tries); "
        f"check the network connection or pass another --url mirror"
    ) from last_error


def fetch_ict(
    dest: str | Path | None = None,
    base_url: str | None = None,
    files: Sequence[str] | None = None,
    *,
    manifest: dict | None = None,
    force: bool = False,
    timeout: float = 60.0,
    retries: int = 2,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Download, verify and convert ICT-FaceKit into ``dest/ict_head.npz`` (+ ``ict_parts.npz``,
    ``LICENSE``, ``ict_head.source.json``). Returns the npz path.

    - ``dest``: folder; default :func:`ict_default_dest` (on the model search path).
    - ``base_url``: replaces the manifest's raw-file base (a mirror, or a test server); the
      manifest paths (``FaceXModel/...``, ``LICENSE``) are appended.
    - ``files``: manifest paths to fetch (default: all). A subset gives a *partial* model
      (the neutral, vertex_indices.json and LICENSE are always fetched); meant for tests.
    - ``force``: re-download even when ``dest/ict_head.npz`` exists.

    Raises :class:`ModelFetchError` on network/verification failure, leaving ``dest`` untouched.
    """
    manifest = manifest if manifest is not None else load_manifest()
    entries: dict = manifest["files"]
    required = [f"{FOLDER}/{ICT_NEUTRAL}", f"{FOLDER}/{ICT_INDEX_FILE}", LICENSE_FILE]
    partial = files is not None
    wanted = list(entries) if files is None else list(dict.fromkeys(required + list(files)))
    unknown = [n for n in wanted if n not in entries]
    if unknown:
        raise ModelFetchError(f"not in the ICT download manifest: {', '.join(unknown)}")
    # neutral first: the other OBJs are checked against its topology
    wanted.sort(key=lambda n: n != f"{FOLDER}/{ICT_NEUTRAL}")

    dest = Path(dest) if dest is not None else ict_default_dest()
    target = dest / ICT_MODEL_FILE
    report = progress or (lambda fraction, message: None)
    if target.exists() and not force:
        report(1.0, f"{target} already present (use --force to fetch again)")
        return target
    base = (base_url or manifest["base_url"]).rstrip("/")

    dest.parent.mkdir(parents=True, exist_ok=True)
    dest_existed = dest.exists()
    staging = Path(tempfile.mkdtemp(prefix=".ict-fetch-", dir=dest.parent))
    written: list[Path] = []
    try:
        (staging / FOLDER).mkdir()
        neutral: ObjMesh | None = None
        hashes: dict[str, str] = {}
        n = len(wanted)
        for i, name in enumerate(wanted):
            url = f"{base}/{urllib.parse.quote(name)}"
            local = staging / name
            report(0.85 * i / n, f"downloading {name} ({i + 1}/{n})")
            _download(url, local, timeout, retries,
                      lambda f, i=i, name=name: report(0.85 * (i + f) / n, f"downloading {name} ({i + 1}/{n})"), cancel)
            verify_file(local, name, entries[name], neutral)
            if name.endswith(ICT_NEUTRAL):
                neutral = read_obj(local)
            hashes[name] = entries[name].get("sha256") or _sha256(local)

        settings = ICTConvertSettings(allow_partial=partial)
        data = convert_ict(staging / FOLDER, settings, lambda f, m: report(0.85 + 0.13 * f, f"converting: {m}"), cancel)
        license_text = (staging / LICENSE_FILE).read_text(encoding="utf-8")

        dest.mkdir(parents=True, exist_ok=True)
        mode = 0o666 & ~_umask()  # temp files are created 0600; installed files get the usual mode
        provenance = {
            "repository": manifest.get("repository", ""),
            "commit": manifest["commit"],
            "base_url": base,
            "fetched_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "partial": partial,
            "files_sha256": hashes,
            "converter": "backend.facemodel.ict_convert",
        }
        for path, text in (
            (dest / LICENSE_FILE, license_text),
            (dest / "ict_head.source.json", json.dumps(provenance, indent=1) + "\n"),
        ):
            if not path.exists():
                written.append(path)  # only files this call created are removed on failure
            atomic_write_text(path, text)
            os.chmod(path, mode)
        check_cancel(cancel)
        parts_path = parts_file_for(target)
        if not parts_path.exists():
            written.append(parts_path)
        save_parts_npz(data.parts, parts_path)  # eyes, sockets, teeth (backend.facemodel.parts)
        os.chmod(parts_path, mode)
        save_npz(data, target)  # last: its presence means "installed"
        os.chmod(target, mode)
        report(1.0, f"installed {target}")
        return target
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        if not dest_existed and dest.exists() and not any(dest.iterdir()):
            dest.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
