"""Face detection + 68 landmarks: time per photo (640×480, 4000×3000) and accuracy on faces_dev.

    python -m benchmarks.bench_detect                # → benchmarks/results/detect.json
    python -m benchmarks.bench_detect --fit-mmod     # refit dlib_backend.MMOD_TO_HOG (minutes)

Photos are built from matplotlib's grace_hopper.jpg (public domain): pasted into a 640×480
canvas at its size, and upscaled ×5 into a 4000×3000 canvas (face ≈ 850 px). The first call
(model loading, ~1–2 s) is a warm-up and is reported separately. Targets: ≤ 0.5 s per
640×480, ≤ 1.5 s per 4000×3000 (one dlib thread).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from backend.align import align_face, warp_to_crop
from backend.detect import DetectSettings, detect, detect_one
from backend.image_io import load_image

from .common import time_call, write_result

FACES_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces_dev"


def _photos() -> dict[str, np.ndarray]:
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        gh = Image.open(fh).convert("RGB")
    small = np.full((480, 640, 3), 90, np.uint8)
    s = np.asarray(gh.resize((410, 480), Image.Resampling.LANCZOS))
    small[:, 115:115 + 410] = s
    big = np.full((3000, 4000, 3), 90, np.uint8)
    big[:, 720:720 + 2560] = np.asarray(gh.resize((2560, 3000), Image.Resampling.BICUBIC))
    return {"640x480": small, "4000x3000": big}


def _faces_dev_nme(n: int = 200, seed: int = 1) -> dict:
    meta = json.loads((FACES_DEV / "landmarks.json").read_text())["images"]
    names = sorted(meta)
    pick = np.random.default_rng(seed).choice(len(names), size=min(n, len(names)), replace=False)
    nmes, missed, t = [], 0, 0.0
    for i in sorted(pick):
        gt = np.asarray(meta[names[i]]["landmarks"], np.float64)
        img = load_image(FACES_DEV / "images" / names[i])
        t0 = time.perf_counter()
        faces = detect(img)
        t += time.perf_counter() - t0
        if not faces:
            missed += 1
            continue
        lm = min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - gt.mean(0))).landmarks
        nmes.append(np.linalg.norm(lm - gt, axis=1).mean() / np.linalg.norm(gt[36] - gt[45]))
    a = np.array(nmes)
    return {"photos": len(pick), "missed": missed, "nme_mean": float(a.mean()), "nme_median": float(np.median(a)),
            "nme_p95": float(np.percentile(a, 95)), "detect_s_mean_320x320": t / len(pick),
            "normalisation": "outer eye corners (36-45) distance"}


def fit_mmod(n: int = 300) -> dict:
    """Grid-search MMOD_TO_HOG on faces_dev (see the comment in dlib_backend)."""
    import dlib

    from backend.detect import dlib_backend as db

    meta = json.loads((FACES_DEV / "landmarks.json").read_text())["images"]
    names = sorted(meta)[::2][:n]
    rows = []
    for name in names:
        img = load_image(FACES_DEV / "images" / name)
        gt = np.asarray(meta[name]["landmarks"], np.float64)
        h, _ = db._run_hog(img, DetectSettings(max_upsample=0))
        m = [[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in db._mmod()(img, 0)]
        if len(h) and m:
            c = gt.mean(0)

            def near(bs):
                return min(bs, key=lambda b: np.hypot((b[0] + b[2]) / 2 - c[0], (b[1] + b[3]) / 2 - c[1]))

            rows.append((img, gt, np.asarray(near(list(h)), float), np.asarray(near(m), float)))

    def nme(rows_, boxes):
        e = []
        for (img, gt, _, _), b in zip(rows_, boxes):
            sh = db._predictor()(img, dlib.rectangle(*[int(round(v)) for v in b]))
            p = np.array([(q.x, q.y) for q in sh.parts()], float)
            e.append(np.linalg.norm(p - gt, axis=1).mean() / np.linalg.norm(gt[36] - gt[45]))
        return float(np.mean(e))

    def mapped(rows_, dx, dy, sc):
        saved = dict(db.MMOD_TO_HOG)
        db.MMOD_TO_HOG.update(dx=dx, dy=dy, scale=sc)
        try:
            return db.mmod_to_hog_boxes(np.array([r[3] for r in rows_]))
        finally:
            db.MMOD_TO_HOG.update(saved)

    fit, held = rows[0::2], rows[1::2]
    grid = [(dx, dy, sc) for dx in (0.0, 0.03, 0.05, 0.07) for dy in (0.03, 0.05, 0.07, 0.09)
            for sc in (1.0, 1.05, 1.1)]
    best = min(grid, key=lambda g: nme(fit, mapped(fit, *g)))
    return {"pairs": len(rows), "best": dict(zip(("dx", "dy", "scale"), best)),
            "heldout_nme_hog": nme(held, [r[2] for r in held]), "heldout_nme_mmod_raw": nme(held, [r[3] for r in held]),
            "heldout_nme_mmod_mapped": nme(held, mapped(held, *best))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fit-mmod", action="store_true", help="refit the mmod→HOG box mapping on faces_dev")
    args = ap.parse_args()
    if args.fit_mmod:
        print(json.dumps(fit_mmod(), indent=2))
        return

    photos = _photos()
    t0 = time.perf_counter()
    detect_one(photos["640x480"])
    cases: dict[str, dict] = {"first_call_incl_model_load_s": time.perf_counter() - t0}
    reps = args.repeats
    for name, img in photos.items():
        al = align_face(detect_one(img).landmarks)
        cases[name] = {
            "detect_and_landmarks": time_call(lambda: detect_one(img), repeats=reps, warmup=1),
            "detect_align_warp_224": time_call(
                lambda: warp_to_crop(img, align_face(detect_one(img).landmarks).crop_from_image), repeats=reps, warmup=0),
            "warp_only_224": time_call(lambda: warp_to_crop(img, al.crop_from_image), repeats=reps, warmup=1),
        }
    with tempfile.TemporaryDirectory() as td:
        from PIL import Image

        p = Path(td) / "big.jpg"
        Image.fromarray(photos["4000x3000"]).save(p, quality=92)
        cases["4000x3000"]["load_jpeg"] = time_call(lambda: load_image(p), repeats=args.repeats, warmup=1)
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    cases["640x480_no_face_mmod_fallback"] = time_call(lambda: detect(noise), repeats=2, warmup=0)
    payload = {
        "backend": "dlib (HOG, mmod fallback, 68-point predictor), one thread",
        "targets_s": {"640x480": 0.5, "4000x3000": 1.5},
        "cases": cases,
        "note": "shared 2-core machine with other jobs running: times are inflated by the load",
    }
    if (FACES_DEV / "landmarks.json").exists():
        payload["faces_dev"] = _faces_dev_nme()
    path = write_result("detect", payload)
    print(json.dumps(payload, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
