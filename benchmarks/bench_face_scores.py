"""Detector scores of true and false faces on the dev photos: the evidence behind
:data:`backend.detect.choose.MIN_SCORE` (docs/reliability.md).

Each faces_dev photo has one annotated face. dlib's HOG detector runs at the photo's size and
upsampled ×2 with its threshold lowered to −1 (so weak detections show), the mmod CNN on every
``--mmod-every``-th photo. A detection is true when its box overlaps the annotated landmarks' box
by IoU ≥ 0.4, away from it when IoU < 0.1 (another person's face at a crop's edge counts there
too: look at those). ::

    python -m benchmarks.bench_face_scores [--limit N] [--mmod-every 4]   # → results/face_scores.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from backend.detect.dlib_backend import _hog, _mmod, mmod_to_hog_boxes

from .common import write_result

FACES_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces_dev"
THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)


def _iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def detections(image: np.ndarray, mmod: bool) -> list[tuple[str, list[float], float]]:
    """(detector, box x0,y0,x1,y1, score) of every detection, HOG down to score −1."""
    out = []
    for up in (0, 1):
        rects, scores, _ = _hog().run(image, up, -1.0)
        out += [(f"hog_x{2 ** up}", [r.left(), r.top(), r.right(), r.bottom()], float(s)) for r, s in zip(rects, scores)]
    if mmod:
        for d in _mmod()(image, 0):
            box = mmod_to_hog_boxes(np.array([[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()]], float))[0]
            out.append(("mmod", box.tolist(), float(d.confidence)))
    return out


def summary(rows: list[dict]) -> dict:
    """Per detector: the best true score per photo and the scores away from the annotated face."""
    out = {}
    for det in sorted({r["detector"] for r in rows}):
        best: dict[str, float] = {}
        for r in rows:
            if r["detector"] == det and r["iou"] >= 0.4:
                best[r["photo"]] = max(best.get(r["photo"], -9.0), r["score"])
        true = np.array(sorted(best.values()))
        away = [r for r in rows if r["detector"] == det and r["iou"] < 0.1]
        fs = np.array([r["score"] for r in away])
        out[det] = {
            "photos_with_true_face": len(true),
            "true_score_percentiles": {p: round(float(np.percentile(true, p)), 3) for p in (1, 5, 50)} if len(true) else {},
            "away_detections": len(fs),
            "away_at_or_above_0": sorted(
                ({"photo": r["photo"], "score": round(r["score"], 3)} for r in away if r["score"] >= 0),
                key=lambda r: -r["score"]),
            "true_below": {str(t): int(np.sum(true < t)) for t in THRESHOLDS},
            "away_at_or_above": {str(t): int(np.sum(fs >= t)) for t in THRESHOLDS},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="only the first N photos (0: all)")
    ap.add_argument("--mmod-every", type=int, default=4, help="mmod on every N-th photo (it costs ~1 s each)")
    args = ap.parse_args(argv)
    annotations = json.loads((FACES_DEV / "landmarks.json").read_text())["images"]
    names = sorted(annotations)[: args.limit or None]
    rows, t0 = [], time.perf_counter()
    for i, name in enumerate(names):
        image = np.asarray(Image.open(FACES_DEV / "images" / name).convert("RGB"))
        lm = np.asarray(annotations[name]["landmarks"])
        truth = [*lm.min(0), *lm.max(0)]
        for det, box, score in detections(image, i % args.mmod_every == 0):
            rows.append({"photo": name, "detector": det, "score": score, "iou": _iou(box, truth)})
    write_result("face_scores", {"photos": len(names), "mmod_photos": len(names[:: args.mmod_every]),
                                 "seconds": round(time.perf_counter() - t0, 1), "detectors": summary(rows)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
