"""Before/after turntables of dev photos: dlib's landmarks against the default detector (auto).

    python -m benchmarks.turntables_detect --folder $FACES_DEV NAME:TAG [NAME:TAG ...]

For each photo (``NAME`` in the folder's ``images/``): the photo with the detected 68 points
(green) and each reconstruction's turntable (:func:`backend.preview_render.render_turntable`,
textured row and geometry row), ``before`` = ``--detector dlib``, ``after`` = the default, both
at ``--quality`` (default: default), stacked into ``docs/images/turntable_<TAG>.png``. The
warnings of each fit are printed (and put into the image's caption strip).

``--coarse NAME=key:value,...`` (repeatable; :mod:`benchmarks.bench_prior_tuning`'s overrides of
the coarse fit) makes the rows the default detector's reconstruction with each setting instead
(``NAME=`` alone: the preset as it is), written to ``docs/images/prior_<TAG>.png``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image

from backend.align import warp_to_crop
from backend.detectors import DEFAULT_DETECTOR
from backend.preview import compose_panels, draw_landmarks
from backend.preview_render import PANEL, face_window, render_turntable
from backend.reconstruct import ReconstructConfig, reconstruct
from benchmarks.bench_prior_tuning import parse_spec, patched_preset


OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
WIDTH = 1200  # px of the saved strip (the repository keeps docs images small)


def _photo_panel(head) -> np.ndarray:
    """The photo around the face with the detected 68 points, (PANEL, PANEL, 3) uint8."""
    view = head.views[0]
    M = face_window(view)
    photo = warp_to_crop(view.image, M, PANEL)
    pts = np.asarray(view.detected68) @ M[:, :2].T + M[:, 2]
    return draw_landmarks(photo, pts, (0, 255, 0), radius=2)


def row(path: Path, detector: str, quality: str, label: str, over: dict[str, float | None] | None = None) -> np.ndarray:
    """One photo's row: photo with landmarks | turntable (2 rows, stacked); ``over``: coarse-fit overrides."""
    config = ReconstructConfig(quality=quality, detector=detector)
    if over is None:
        head = reconstruct([str(path)], config)
    else:
        preset = patched_preset(quality, over)
        with mock.patch("backend.reconstruct.resolve_preset", lambda q: preset):
            head = reconstruct([str(path)], config)
    warn = "; ".join(head.warnings) or "no warning"
    print(f"{path.name} {label}: detector {head.views[0].detector}, yaw {np.degrees(head.views[0].pose[2]):.0f} deg; {warn}")
    table = render_turntable(head)
    photo = compose_panels([_photo_panel(head)], [f"{label}: {head.views[0].detector} points"])
    pad = np.full((table.shape[0] - photo.shape[0], photo.shape[1], 3), 255, np.uint8)
    return np.concatenate([np.concatenate([photo, pad], 0), table], 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("photos", nargs="+", help="NAME:TAG (TAG names the output file)")
    ap.add_argument("--folder", type=Path, default=Path(os.environ.get("FACES_DEV", "../shared/data/faces_dev")))
    ap.add_argument("--quality", default="default")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--coarse", action="append", default=[], metavar="NAME=key:value,...",
                    help="a row per coarse-fit setting (instead of dlib against the default detector)")
    args = ap.parse_args()
    for item in args.photos:
        name, tag = item.split(":")
        path = args.folder / "images" / name
        if args.coarse:
            rows = [row(path, DEFAULT_DETECTOR, args.quality, name, over) for name, over in map(parse_spec, args.coarse)]
        else:
            rows = [row(path, "dlib", args.quality, "before (dlib)"),
                    row(path, DEFAULT_DETECTOR, args.quality, f"after ({DEFAULT_DETECTOR})")]
        sep = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
        out = args.out / f"{'prior' if args.coarse else 'turntable'}_{tag}.png"
        image = Image.fromarray(np.concatenate([r for rw in rows for r in (rw, sep)][:-1], 0))
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
        image.save(out, optimize=True)
        print("wrote", out)


if __name__ == "__main__":
    main()
