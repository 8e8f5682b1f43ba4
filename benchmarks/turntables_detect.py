"""Before/after turntables of dev photos: dlib's landmarks against the default detector (auto).

    python -m benchmarks.turntables_detect --folder $FACES_DEV NAME:TAG [NAME:TAG ...]

For each photo (``NAME`` in the folder's ``images/``): the photo with the detected 68 points
(green) and each reconstruction's turntable (:func:`backend.preview_render.render_turntable`,
textured row and geometry row), ``before`` = ``--detector dlib``, ``after`` = the default, both
at ``--quality`` (default: default), stacked into ``docs/images/turntable_<TAG>.png``. The
warnings of each fit are printed (and put into the image's caption strip).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image

from backend.align import warp_to_crop
from backend.detectors import DEFAULT_DETECTOR
from backend.preview import compose_panels, draw_landmarks
from backend.preview_render import PANEL, face_window, render_turntable
from backend.reconstruct import ReconstructConfig, reconstruct


OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
WIDTH = 1200  # px of the saved strip (the repository keeps docs images small)


def _photo_panel(head) -> np.ndarray:
    """The photo around the face with the detected 68 points, (PANEL, PANEL, 3) uint8."""
    view = head.views[0]
    M = face_window(view)
    photo = warp_to_crop(view.image, M, PANEL)
    pts = np.asarray(view.detected68) @ M[:, :2].T + M[:, 2]
    return draw_landmarks(photo, pts, (0, 255, 0), radius=2)


def row(path: Path, detector: str, quality: str, label: str) -> np.ndarray:
    """One photo's row: photo with landmarks | turntable (2 rows, stacked)."""
    head = reconstruct([str(path)], ReconstructConfig(quality=quality, detector=detector))
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
    args = ap.parse_args()
    for item in args.photos:
        name, tag = item.split(":")
        path = args.folder / "images" / name
        rows = [row(path, "dlib", args.quality, "before (dlib)"),
                row(path, DEFAULT_DETECTOR, args.quality, f"after ({DEFAULT_DETECTOR})")]
        sep = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
        out = args.out / f"turntable_{tag}.png"
        image = Image.fromarray(np.concatenate([rows[0], sep, rows[1]], 0))
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
        image.save(out, optimize=True)
        print("wrote", out)


if __name__ == "__main__":
    main()
