"""The gaze on real photos: no wild gazes, and its cost (issue 28).

    python -m benchmarks.bench_gaze --n 24 [--seed 0] [--pictures runs/gaze] [--cache runs/gaze_cache] [--iris]

For N faces_dev photos (research-only, read in place; ground-truth landmarks instead of the
detector; default preset, no detail stage), the head's gaze (:mod:`backend.gaze`), the head's
yaw, the eyes' openings and the estimate's CPU time (one thread, ``time.process_time``) are
recorded. ``--iris``: with MediaPipe's Iris model's centres and size (:mod:`backend.detect.iris`,
between Face Mesh's eye corners, as the default detector gives them), written as
gaze_dev_iris.json. ``--pictures``: a folder (not committed) for each photo's eye band above the head
rendered in the photo's pose, with its gaze and looking ahead (:func:`eye_panels`), to look at. Writes benchmarks/results/gaze_dev.json (numbers
only; no photo leaves the pictures folder).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from .common import write_result

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces_dev"


def eye_panels(head, image: np.ndarray, height: int = 150) -> np.ndarray:
    """The photo's eye band above the head rendered in the photo's pose (textured, the fitted
    light; the eyeballs as they look) and the same head looking ahead: (3·height, W, 3) uint8."""
    import dataclasses

    import torch

    from backend.camera import Camera
    from backend.preview import resize_to_height
    from backend.preview_render import render_head

    view = head.views[0]
    lm = np.asarray(view.detected68, np.float64)[36:48]
    pad = 0.35 * float(np.ptp(lm[:, 0]))
    x0, x1 = int(max(lm[:, 0].min() - pad, 0)), int(lm[:, 0].max() + pad)
    y0, y1 = int(max(lm[:, 1].min() - 0.6 * pad, 0)), int(lm[:, 1].max() + 0.6 * pad)
    w, h = view.image_size
    rows = [image[y0:y1, x0:x1]]
    for shown in (head, dataclasses.replace(head, gaze=None)):
        img, _ = render_head(shown, torch.from_numpy(np.asarray(view.pose, np.float32))[None], Camera(w, h, view.projection),
                             torch.from_numpy(np.asarray(view.sh, np.float32))[None], detailed=False)
        rows.append((img[0, y0:y1, x0:x1].numpy() * 255 + 0.5).astype(np.uint8))
    return np.concatenate([resize_to_height(r, height) for r in rows], 0)


def samples_picture(path: str) -> int:
    """docs/images' picture: :func:`eye_panels` of the public sample photos, side by side."""
    import imageio.v2 as imageio

    from backend.reconstruct import ReconstructConfig, reconstruct
    from backend.samples import SAMPLES, sample_photo

    panels = []
    for name in SAMPLES:
        _, image = sample_photo(name)
        head = reconstruct([image], ReconstructConfig(detail=False))
        print(name, "gaze (deg):", np.degrees(np.asarray(head.gaze, np.float64)).round(1).tolist(), flush=True)
        panels.append(eye_panels(head, image, 120))
    gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
    imageio.imwrite(path, np.concatenate([panels[0], gap, panels[1]], 1))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pictures", default=None)
    ap.add_argument("--cache", default=None, help="a folder for the fitted heads (head.npz), reused when present")
    ap.add_argument("--iris", action="store_true", help="with MediaPipe's Iris model (iris_landmark.tflite)")
    ap.add_argument("--samples-picture", default=None,
                    help="write eye_panels of the public sample photos (grace_hopper, astronaut) side by side here")
    args = ap.parse_args(argv)
    if args.samples_picture:
        return samples_picture(args.samples_picture)

    from backend.camera import Camera
    from backend.detect import detect
    from backend.detect.iris import detect_irises, iris_corners
    from backend.export import load_head, save_head
    from backend.gaze import estimate_gaze
    from backend.head_parts import EYEBALLS, eye_frame
    from backend.image_io import load_image
    from backend.reconstruct import ReconstructConfig, reconstruct

    doc = json.loads((DEV / "landmarks.json").read_text())["images"]
    names = sorted(doc)
    rng = np.random.default_rng(args.seed)
    chosen = [names[i] for i in rng.choice(len(names), args.n, replace=False)]
    rows = []
    for name in chosen:
        image = load_image(str(DEV / "images" / name))
        lm = np.asarray(doc[name]["landmarks"], np.float64)
        cached = Path(args.cache) / f"{Path(name).stem}.npz" if args.cache else None
        if cached is not None and cached.is_file():  # the fit as before: re-estimate the gaze only
            head = load_head(cached)
        else:
            head = reconstruct([image], ReconstructConfig(detail=False, identity=False), landmarks=[lm])
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                save_head(head, cached)
        view = head.views[0]
        V = len(head.neutral)
        frames = {n: eye_frame(head.parts_neutral[np.unique(head.parts_faces[a:b]) - V])
                  for n, (a, b) in zip(head.part_names, head.part_face_range) if n in EYEBALLS}
        dense = None
        if args.iris:  # Face Mesh's corners, as the default pipeline has them (the nearest face's)
            faces = [f for f in detect(image, backend="mediapipe") if f.dense is not None]
            if faces:
                near = min(faces, key=lambda f: float(np.abs(f.landmarks[36:48] - view.detected68[36:48]).mean()))
                dense = near.dense if np.abs(near.landmarks[36:48] - view.detected68[36:48]).mean() < 10.0 else None
        t0 = time.process_time()
        irises = detect_irises(image, iris_corners(view.detected68, dense)) if args.iris else None
        found = estimate_gaze(image, view.detected68, view.landmarks68, view.pose,
                              Camera(*view.image_size, view.projection), frames, irises)
        cpu = time.process_time() - t0
        gaze = found.angles
        head.gaze = gaze
        rows.append({"photo": name, "head_yaw_deg": round(math.degrees(float(view.pose[2])), 1),
                     "head_pitch_deg": round(math.degrees(float(view.pose[1])), 1),
                     "gaze_deg": np.degrees(gaze.astype(np.float64)).round(1).tolist(), "seen": found.seen.tolist(),
                     "iris_mm": None if found.iris_mm is None else round(found.iris_mm, 2),
                     "cpu_ms": round(cpu * 1000.0, 1)})
        print(rows[-1], flush=True)
        if args.pictures:
            import imageio.v2 as imageio

            out = Path(args.pictures)
            out.mkdir(parents=True, exist_ok=True)
            imageio.imwrite(out / f"{Path(name).stem}.png", eye_panels(head, image))
    gz = np.array([r["gaze_deg"] for r in rows])  # (N,2,2)
    both = np.array([all(r["seen"]) for r in rows])
    eye_yaw, head_yaw = gz[both, :, 0].mean(1), np.array([r["head_yaw_deg"] for r in rows])[both]
    sizes = [r["iris_mm"] for r in rows if r["iris_mm"] is not None]
    summary = {"eye_vs_head_yaw_corr": float(np.corrcoef(eye_yaw, head_yaw)[0, 1]) if both.sum() > 2 else None,
               "eye_vs_head_yaw_slope": float(np.polyfit(head_yaw, eye_yaw, 1)[0]) if both.sum() > 2 else None,
               "open_pairs": int(both.sum()),
               "iris_mm_median": float(np.median(sizes)) if sizes else None,
               "iris_mm_range": [float(min(sizes)), float(max(sizes))] if sizes else None,"n": len(rows), "abs_yaw_deg_max": float(np.abs(gz[..., 0]).max()),
               "abs_pitch_deg_max": float(np.abs(gz[..., 1]).max()),
               "abs_yaw_deg_median": float(np.median(np.abs(gz[..., 0]))),
               "abs_pitch_deg_median": float(np.median(np.abs(gz[..., 1]))),
               "cpu_ms_median": float(np.median([r["cpu_ms"] for r in rows])),
               "conditions": "faces_dev, ground-truth landmarks, default preset without detail/L_id, one thread, loaded machine"}
    print(summary)
    write_result("gaze_dev_iris" if args.iris else "gaze_dev", {"summary": summary, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
