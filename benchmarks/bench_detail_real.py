"""Detail stage on real photos (issue 7): L_pixel inside the face mask, coarse vs detailed.

    python -m benchmarks.bench_detail_real [--quality default]          # package photos
    python -m benchmarks.bench_detail_real --dev-set 24                 # + 24 faces_dev photos → runs/detail_real/
    python -m benchmarks.bench_detail_real --dev-only --dev-set 24 --seed 0
    python -m benchmarks.bench_detail_real --dev-only --dev-set 24 --dev-order expressive

Target: the photometric error inside the face mask drops by ≥ 20 % from the coarse to the
detailed render, ``drop = 1 − pixel_loss_detail / pixel_loss_coarse`` (``head.metrics``, the
mean per-view L_pixel of :func:`backend.fit.detail.fit_detail`, 8-bit levels, over the landmark
face mask with brows and lips). ``drop_skin``: the same over the loss's own mask (brows, lips
and non-skin colours left out, :func:`backend.prepare.detail_inputs`).

Package photos: scikit-image's ``astronaut`` and matplotlib's ``grace_hopper`` (public domain),
reconstructed at ``--quality`` with the detector. Writes benchmarks/results/detail_real.json
(``detail_real_<quality>.json`` at another quality: :func:`run_name`; per-photo losses, drop,
``detail_fit_s``, target check, the DetailFitConfig in use) and close-ups to
runs/detail_real[_<quality>]/closeup_<photo>.png.

``--dev-set N``: a deterministic sample (``--seed``) of N colour photos of ``--dev`` (faces_dev
layout: images/*.jpg, landmarks.json), each reconstructed with its ground-truth landmarks in
place of the detector (:func:`evaluation.suites.given_landmarks`). ``--dev-order
expressive`` takes the N photos with the widest-open mouths instead (inner-lip gap 62–66 over the
inter-ocular distance, from the annotations: issue 7 names "real expressive photos"); its
summary is summary_expressive.json. Research-only data:
summary.json and close-ups of the first 4 go to runs/detail_real[_<quality>]/ only, never the repository.

Close-ups: photo crop | coarse shaded geometry | detailed shaded geometry (grey, no texture,
a fixed camera-space light) in the photo's pose, for checking that wrinkles and folds appear
where the photo has them and that there are no spikes, holes or seam cracks.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .common import write_result

ROOT = Path(__file__).resolve().parents[1]
DEV_DEFAULT = ROOT.parent / "shared" / "data" / "faces_dev"
TARGET_DROP = 0.20  # issue 7: ≥ 20 % lower L_pixel from coarse to detailed
PACKAGE_PHOTOS = ("astronaut", "grace_hopper")
CLOSEUP_SIZE = 384  # close-up panel side, pixels
CLOSEUP_MARGIN = 1.35  # window side / face box side
CLOSEUPS_DEV = 4  # dev photos with a close-up


def _save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, optimize=True)


def closeup(head) -> np.ndarray:
    """photo crop | coarse shaded geometry | detailed shaded geometry, in view 0's pose.

    Returns (CLOSEUP_SIZE, 3·CLOSEUP_SIZE, 3) uint8, labels drawn in the panels.
    """
    from backend.align import warp_to_crop
    from backend.preview import compose_panels
    from backend.preview_render import camera_in_window, face_window, grey_light, render_head

    view, size = head.views[0], CLOSEUP_SIZE
    M = face_window(view, size, margin=CLOSEUP_MARGIN)
    photo = (warp_to_crop(view.image, M, size) * 255 + 0.5).astype(np.uint8)
    pose, cam = camera_in_window(torch.from_numpy(np.asarray(head.vertices, np.float32))[None], view, M, size)
    light = grey_light()
    panels = [photo]
    for detailed in (False, True):
        image, _ = render_head(head, pose, cam, light, textured=False, detailed=detailed)
        panels.append((image[0].clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8))
    return compose_panels(panels, ["photo", "coarse geometry", "detailed geometry"])


def _entry(head) -> dict:
    """The detail-stage numbers of one reconstruction."""
    coarse, detail = head.metrics["pixel_loss_coarse"], head.metrics["pixel_loss_detail"]
    drop = 1.0 - detail / coarse
    skin_c, skin_d = head.metrics.get("pixel_loss_skin_coarse"), head.metrics.get("pixel_loss_skin_detail")
    return {"pixel_loss_coarse": coarse, "pixel_loss_detail": detail, "drop": drop,
            "pixel_loss_skin_coarse": skin_c, "pixel_loss_skin_detail": skin_d,
            "drop_skin": 1.0 - skin_d / skin_c if skin_c else None,
            # the detail stage's low-frequency albedo gain alone, displacement left out
            "drop_albedo_gain_only": 1.0 - head.metrics["pixel_loss_albedo_only"] / coarse
            if "pixel_loss_albedo_only" in head.metrics else None,
            # the face mask off the skin (brows, lips, hair, glasses): its share of the coarse error, its drop
            "rest_error_share_coarse": head.metrics.get("rest_error_share_coarse"),
            "drop_rest": 1.0 - head.metrics["pixel_loss_rest_detail"] / head.metrics["pixel_loss_rest_coarse"]
            if head.metrics.get("pixel_loss_rest_coarse") else None,
            "meets_target": bool(drop >= TARGET_DROP), "detail_fit_s": head.timings.get("detail_fit_s"),
            "total_s": head.timings.get("total_s"), "warnings": list(head.warnings)}


def run_name(quality: str) -> str:
    """``detail_real`` at default quality, else ``detail_real_<quality>``: the result JSON's name
    and the runs/ folder of the summary and close-ups, so each preset keeps its own."""
    return "detail_real" if quality == "default" else f"detail_real_{quality}"


def _stats(drops: list[float]) -> dict:
    return {"count": len(drops), "mean_drop": statistics.fmean(drops), "median_drop": statistics.median(drops),
            "min_drop": min(drops), "max_drop": max(drops),
            "fraction_meeting_target": sum(d >= TARGET_DROP for d in drops) / len(drops)}


def package_photos(quality: str) -> dict:
    """Reconstruct the package photos with detail; close-ups to runs/:func:`run_name`/."""
    from backend.reconstruct import ReconstructConfig, reconstruct
    from backend.samples import sample_photo

    config = ReconstructConfig(quality=quality, detail=True, device="cpu")
    photos = {}
    for name in PACKAGE_PHOTOS:  # a loop over photos
        head = reconstruct([sample_photo(name)[1]], config)
        photos[name] = e = _entry(head)
        print(f"{name}: L_pixel {e['pixel_loss_coarse']:.2f} → {e['pixel_loss_detail']:.2f} "
              f"(drop {e['drop']:.1%}, target {'met' if e['meets_target'] else 'MISSED'}; "
              f"skin only {e['drop_skin']:.1%}), "
              f"detail {e['detail_fit_s']:.1f} s, total {e['total_s']:.1f} s", flush=True)
        _save_png(closeup(head), ROOT / "runs" / run_name(quality) / f"closeup_{name}.png")
    return {"photos": photos, "summary": _stats([p["drop"] for p in photos.values()]),
            "summary_skin": _stats([p["drop_skin"] for p in photos.values()]),
            "all_meet_target": all(p["meets_target"] for p in photos.values())}


def _off_skin(items: dict) -> dict:
    """The face mask off the skin over a photo set: its mean share of the coarse error, its mean
    drop, and the correlation (Pearson) of each photo's face-mask drop with that share."""
    share = np.array([i["rest_error_share_coarse"] for i in items.values()], float)
    drop = np.array([i["drop"] for i in items.values()], float)
    corr = float(np.corrcoef(share, drop)[0, 1]) if len(items) > 2 and share.std() > 0 else None
    return {"mean_error_share": float(share.mean()), "min_error_share": float(share.min()),
            "max_error_share": float(share.max()), "mean_drop": float(np.mean([i["drop_rest"] for i in items.values()])),
            "corr_face_drop_vs_error_share": corr}


def _is_grey(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def mouth_opening(landmarks68: np.ndarray) -> float:
    """Inner-lip gap (points 62–66) over the inter-ocular distance (36–45): 0 for a closed mouth."""
    lm = np.asarray(landmarks68, np.float64)
    return float(np.linalg.norm(lm[62] - lm[66]) / max(np.linalg.norm(lm[36] - lm[45]), 1e-9))


def dev_order(names: list[str], landmarks: dict, order: str, seed: int) -> list[int]:
    """Indices of ``names`` in the order the dev set is drawn: ``random`` (a ``seed`` permutation)
    or ``expressive`` (widest-open mouth first, :func:`mouth_opening`; ties by name)."""
    if order == "random":
        return [int(k) for k in np.random.default_rng(seed).permutation(len(names))]
    if order == "expressive":
        return sorted(range(len(names)), key=lambda k: (-mouth_opening(landmarks[names[k]]), names[k]))
    raise ValueError(f"unknown dev order {order!r}: use random or expressive")


def dev_set(dev: Path, n: int, seed: int, quality: str, order: str = "random") -> dict:
    """Reconstruct ``n`` colour dev photos (:func:`dev_order`) with ground-truth landmarks;
    writes runs/:func:`run_name`/summary.json (summary_expressive.json for that order, after
    each photo) and, in random order, close-ups of the first 4."""
    from PIL import Image

    from backend.errors import PhotoheadError
    from evaluation.readers import read_landmarks_json
    from evaluation.suites import given_landmarks
    from backend.io_utils import atomic_write_text, to_jsonable
    from backend.reconstruct import ReconstructConfig, reconstruct

    out = ROOT / "runs" / run_name(quality)
    if not (dev / "landmarks.json").exists():
        raise SystemExit(f"{dev}: no landmarks.json (pass --dev FOLDER with images/ and landmarks.json)")
    lms = read_landmarks_json(dev / "landmarks.json")
    names = sorted(n_ for n_ in lms if (dev / "images" / n_).exists())
    picks = dev_order(names, lms, order, seed)
    summary_path = out / ("summary.json" if order == "random" else f"summary_{order}.json")
    config = ReconstructConfig(quality=quality, detail=True, device="cpu")
    items: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    t_all = time.perf_counter()
    summary: dict = {}
    for k in picks:  # a loop over photos, until n are reconstructed
        if len(items) >= n:
            break
        name = names[k]
        rgb = np.asarray(Image.open(dev / "images" / name).convert("RGB"))
        if _is_grey(rgb):
            skipped[name] = "grayscale"
            continue
        try:
            with given_landmarks(lms[name]):
                head = reconstruct([rgb], config)
        except PhotoheadError as exc:
            skipped[name] = str(exc)
            continue
        items[name] = e = _entry(head)
        print(f"[{len(items)}/{n}] {name}: L_pixel {e['pixel_loss_coarse']:.2f} → {e['pixel_loss_detail']:.2f} "
              f"(drop {e['drop']:.1%}, skin only {e['drop_skin']:.1%}), {e['total_s']:.1f} s", flush=True)
        if len(items) <= CLOSEUPS_DEV and order == "random":
            _save_png(closeup(head), out / f"closeup_dev{len(items)}_{Path(name).stem}.png")
        drops = [i["drop"] for i in items.values()]
        worst = sorted(items, key=lambda x: items[x]["drop"])[:5]
        summary = {"dev": str(dev), "order": order, "seed": seed, "requested": n, "quality": quality, "target_drop": TARGET_DROP,
                   "landmarks": "ground truth (given_landmarks)", **_stats(drops),
                   "skin_only": _stats([i["drop_skin"] for i in items.values()]),
                   "off_skin": _off_skin(items),
                   "worst": {w: items[w]["drop"] for w in worst}, "skipped": skipped,
                   "wall_s": time.perf_counter() - t_all, "per_photo": items}
        atomic_write_text(summary_path, json.dumps(to_jsonable(summary), indent=2) + "\n")
    if not items:
        raise SystemExit(f"no dev photo reconstructed (skipped: {skipped})")
    print(f"dev set ({len(items)} photos, {order}{f', seed {seed}' if order == 'random' else ''}): drop mean {summary['mean_drop']:.1%}, "
          f"median {summary['median_drop']:.1%}, ≥ {TARGET_DROP:.0%}: {summary['fraction_meeting_target']:.0%} "
          f"(skin only: mean {summary['skin_only']['mean_drop']:.1%}; off skin: {summary['off_skin']['mean_error_share']:.0%} "
          f"of the coarse error, drop {summary['off_skin']['mean_drop']:.1%}, correlation of the drop with that share "
          f"{summary['off_skin']['corr_face_drop_vs_error_share']}), "
          f"worst {', '.join(f'{w} {d:.1%}' for w, d in summary['worst'].items())}; "
          f"{summary['wall_s']:.0f} s → {summary_path}", flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    from backend.io_utils import to_jsonable
    from backend.preset import resolve_preset
    from backend.quality import DEFAULT, QUALITY_NAMES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quality", default=DEFAULT, choices=QUALITY_NAMES)
    ap.add_argument("--dev-set", type=int, default=0, metavar="N", help="also reconstruct N dev photos (0: off)")
    ap.add_argument("--dev", type=Path, default=DEV_DEFAULT, help="dev set folder (images/, landmarks.json)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the dev-set sample")
    ap.add_argument("--dev-order", choices=("random", "expressive"), default="random",
                    help="which dev photos: a seeded random sample, or the widest-open mouths first")
    ap.add_argument("--dev-only", action="store_true", help="only the dev set (no package photos, no result file)")
    args = ap.parse_args(argv)
    if args.dev_only and args.dev_set <= 0:
        ap.error("--dev-only needs --dev-set N with N > 0")
    torch.set_num_threads(1)
    if not args.dev_only:
        t0 = time.perf_counter()
        payload = {"quality": args.quality, "target_drop": TARGET_DROP,
                   "detail_config": to_jsonable(dataclasses.asdict(resolve_preset(args.quality).detail)),
                   **package_photos(args.quality), "wall_s": time.perf_counter() - t0}
        print("wrote", write_result(run_name(args.quality), payload))
    if args.dev_set > 0:
        dev_set(args.dev, args.dev_set, args.seed, args.quality, args.dev_order)
    return 0


if __name__ == "__main__":
    sys.exit(main())
