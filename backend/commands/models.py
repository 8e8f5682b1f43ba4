"""``photohead models``: fetch, list and convert face models.

- ``photohead models fetch ict [--dest DIR] [--url BASE] [--force]``: download ICT-FaceKit at
  the pinned commit, verify, convert into the cache (``ict_facekit/ict_head.npz``, ``ict_parts.npz`` + LICENSE).
- ``photohead models fetch mediapipe [--dest DIR] [--url WHEEL] [--force]``: MediaPipe's face
  detector and Face Mesh ``.tflite`` files from the pinned wheel (``mediapipe/`` in the cache).
- ``photohead models list [--check]``: model files found on the search path.
- ``photohead models convert-ict SRC_DIR OUT.npz [--allow-partial]``: convert a local copy of
  ICT's ``FaceXModel/`` folder (the parts go into ``<stem>_parts.npz`` beside, ``ict_parts.npz``
  for ``ict_head.npz``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import PhotoheadError

MODEL_SUFFIXES = (".npz", ".mat", ".h5", ".hdf5", ".pkl")


class _Printer:
    """Progress on stderr: one line per message change, a carriage-return percentage otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.last = ""

    def __call__(self, fraction: float, message: str) -> None:
        head = message.split(" (")[0]
        end = "\n" if head != self.last else ""
        self.stream.write(f"\r[{100 * fraction:5.1f}%] {message}" + " " * 8 + end)
        self.stream.flush()
        self.last = head

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _fetch(args: argparse.Namespace) -> int:
    printer = _Printer()
    try:
        if args.which == "mediapipe":
            from ..detect.mediapipe_fetch import fetch_mediapipe  # lazy: torch loads after cli.main's thread policy

            path = fetch_mediapipe(dest=args.dest, url=args.url, force=args.force, progress=printer)
        else:
            from ..facemodel.fetch import fetch_ict  # lazy: torch loads after cli.main's thread policy

            path = fetch_ict(dest=args.dest, base_url=args.url, force=args.force, progress=printer)
    finally:
        printer.close()
    print(path)
    return 0


def _describe(path: Path) -> str:
    from ..facemodel import load_model_data  # lazy: torch loads after cli.main's thread policy

    data = load_model_data(path)
    return (f"{data.mean.shape[0]} verts, {data.faces.shape[0]} tris, id {data.id_basis.shape[0]}, "
            f"exp {data.exp_basis.shape[0]}, tex {0 if data.tex_basis is None else data.tex_basis.shape[0]}")


def find_model_files(folders: list[Path]) -> list[Path]:
    """Model files in ``folders`` and their direct subfolders (npz/mat/h5/pkl, OBJ-folder manifests)."""
    from ..facemodel.ict_convert import is_ict_folder  # lazy: torch loads after cli.main's thread policy
    from ..facemodel.objdir import MANIFEST_NAME, NEUTRAL_NAME  # lazy: torch loads after cli.main's thread policy

    def visible(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))

    found: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for candidate in [*visible(folder), *(p for d in visible(folder) if d.is_dir() for p in visible(d))]:
            if candidate.is_file() and candidate.suffix.lower() in MODEL_SUFFIXES:
                if not candidate.stem.endswith("_parts"):  # a model's parts file (eyes, teeth), not a model
                    found.append(candidate)
            elif candidate.is_dir() and (
                (candidate / NEUTRAL_NAME).is_file() or (candidate / MANIFEST_NAME).is_file() or is_ict_folder(candidate)
            ):
                found.append(candidate)
    return found


def _list(args: argparse.Namespace) -> int:
    from ..facemodel import DEFAULT_MODEL, find_model, search_path  # lazy: torch loads after cli.main's thread policy

    folders = search_path()
    print("search path:")
    for folder in folders:
        print(f"  {folder}{'' if folder.is_dir() else '  (missing)'}")
    try:
        default = find_model(DEFAULT_MODEL)
    except PhotoheadError:
        default = None
    files = find_model_files(folders)
    print("models:" if files else "models: none found (get the default with `photohead models fetch ict`)")
    for path in files:
        mark = " (default)" if default is not None and path.resolve() == default.resolve() else ""
        line = f"  {path}{mark}"
        if args.check:
            try:
                line += f": {_describe(path)}"
            except PhotoheadError as exc:
                line += f": UNREADABLE: {exc}"
        print(line)
    return 0


def _convert_ict(args: argparse.Namespace) -> int:
    # lazy: torch loads after cli.main's thread policy
    from ..facemodel.ict_convert import ICTConvertSettings, convert_ict_to_npz

    printer = _Printer()
    try:
        path = convert_ict_to_npz(args.src, args.out, ICTConvertSettings(allow_partial=args.allow_partial), printer)
    finally:
        printer.close()
    print(path)
    return 0


def register(subparsers) -> None:
    """Add ``models`` with its ``fetch``/``list``/``convert-ict`` actions."""
    parser = subparsers.add_parser("models", help="fetch, list and convert face models")
    actions = parser.add_subparsers(dest="models_action", required=True)

    fetch = actions.add_parser("fetch", help="download and convert a face model (explicit network access)")
    fetch.add_argument("which", choices=["ict", "mediapipe"],
                       help="ict: ICT-FaceKit Face Model Light (MIT), ~400 MB download; mediapipe: face detector + "
                            "Face Mesh weights (Apache-2.0) from the pinned mediapipe 0.10.14 wheel, 36 MB download")
    fetch.add_argument("--dest", type=Path, default=None, help="install folder (default: the user model cache)")
    fetch.add_argument("--url", default=None, help="ict: base URL of a mirror holding FaceXModel/... and LICENSE; "
                                                   "mediapipe: another URL (or file://) of the same wheel")
    fetch.add_argument("--force", action="store_true", help="fetch again even if the model is installed")
    fetch.set_defaults(handler=_fetch)

    lister = actions.add_parser("list", help="model files found on the search path")
    lister.add_argument("--check", action="store_true", help="load each one and print its sizes")
    lister.set_defaults(handler=_list)

    conv = actions.add_parser("convert-ict", help="convert a local ICT FaceXModel/ folder to our npz")
    conv.add_argument("src", type=Path, help="ICT-FaceKit's FaceXModel/ folder")
    conv.add_argument("out", type=Path, help="output .npz")
    conv.add_argument("--allow-partial", action="store_true",
                      help="convert only the identity/expression OBJs present (default: all must exist)")
    conv.set_defaults(handler=_convert_ict)
