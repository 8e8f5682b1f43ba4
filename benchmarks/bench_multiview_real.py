"""Multi-view reconstruction on real photos (issue 9): a shippable set rendered from a real photo,
and (optionally) a same-person set found in the research-only dev set.

    python -m benchmarks.bench_multiview_real [--quality default]      # grace_hopper frames
    python -m benchmarks.bench_multiview_real --dev-set                # + faces_dev set → runs/multiview_dev/

Shippable set: matplotlib's public-domain ``grace_hopper`` photo is reconstructed at ``--quality``;
that textured, detailed head is rendered at yaw −50°, 0°, +50° under three directional lights and
RGB gains (:func:`evaluation.multiview_real.render_frames`, 400², noisy grey background);
the three frames are reconstructed jointly and the frontal frame alone, with the landmarks
``--detector`` finds (default ``auto``; ``--landmarks projected`` passes the projected model
landmarks instead, jaw on the silhouette, as before issue 23). dlib's error per frame is recorded.
Measured:
- ``uv_face_coverage`` (``head.metrics``: blending weight > 0.1, so only inside each photo's
  landmark skin mask) of the joint and the frontal-only reconstruction, and
  ``visible_face_coverage`` (seen facing the camera, cosine > 0.2, as in bench_multiview_synthetic);
- seam visibility (:func:`~evaluation.multiview_real.blend_comparison`): mean luminance
  gradient on dominant-view borders / elsewhere on plain skin of the face (plain: the source
  albedo's gradient, or else the per-view maps', below its median), for the pipeline's albedo
  and for simpler blends of the same per-view maps (naive weighted average, hard switch ...);
- ``albedo_error``: mean |albedo − source albedo| over the seen face region after one gain per channel;
- ``vertex_error``: coarse vertex error (mm, similarity-aligned, narrow face region) against the
  source head the frames were rendered from, for each frame alone, the joint fit with and
  without the robust view weights (:mod:`backend.fit.view_weights`) and the mean face, per
  detector in ``--vertex-detectors`` (coarse only: ``detail=False``), with each detector's NME
  per frame (% of the projected landmarks' box √(w·h); > 10 % = lost);
- times. Writes benchmarks/results/multiview_real.json and docs/images/multiview_grace_{frames,uv,turntable}.png.

``--dev-set``: finds same-person photo sets in ``--dev`` (faces_dev layout, descriptors cached in
runs/multiview_dev/descriptors.npz), reconstructs the widest-yaw all-colour set with its
ground-truth landmarks and writes previews and summary.json to runs/multiview_dev/ only
(research-only data: nothing derived from it goes into the repository).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from backend.quality import DEFAULT, QUALITY_NAMES

from .common import write_result

ROOT = Path(__file__).resolve().parents[1]
DOCS_IMAGES = ROOT / "docs" / "images"
DEV_DEFAULT = ROOT.parent / "shared" / "data" / "faces_dev"
DEV_OUT = ROOT / "runs" / "multiview_dev"


def _save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, optimize=True)


def _albedo_error(head, truth: np.ndarray, model) -> float:
    """Mean |albedo·gain − truth| over the face region texels the head's views see (weight > 0.25)."""
    from backend.texture import face_region_mask
    from backend.render import rasterize_uv

    R, W = truth.shape[:2]
    frags = rasterize_uv(model.uv, model.faces_uv, R, W, (0.0, float(head.uv_tiles)))
    sel = (face_region_mask(model, frags).numpy() & (head.view_weights.sum(0) > 0.25))
    pred, ref = head.albedo[sel], truth[sel]
    gain = (pred * ref).sum(0) / np.maximum((pred * pred).sum(0), 1e-9)
    return float(np.abs(pred * gain - ref).mean())


def _visible_coverage(head, model, res: int = 256) -> float:
    """Fraction of the UV face region some view sees facing it (visible, cosine > 0.2) through the
    fitted geometry and poses, skin mask ignored (the ``coverage`` of bench_multiview_synthetic)."""
    from backend.camera import Camera
    from backend.texture import face_region_mask
    from backend.render import rasterize_uv, unwrap_image

    frags = rasterize_uv(model.uv, model.faces_uv, res, res * head.uv_tiles, (0.0, float(head.uv_tiles)))
    region = face_region_mask(model, frags)
    seen = torch.zeros_like(region)
    verts = torch.from_numpy(head.vertices)[None]
    for view in head.views:  # a loop over views
        w, h = view.image_size
        img = torch.from_numpy(view.image).float()[None] / 255.0
        un = unwrap_image(img, verts, model.faces, torch.from_numpy(view.pose)[None], Camera(w, h, view.projection),
                          frags)
        seen |= (un.visible & (un.cosine > 0.2))[0]
    return float((seen & region).sum() / region.sum())


def _dlib_errors(frames) -> list[float | None]:
    """Mean distance (px) of dlib's 68 landmarks to the projected model landmarks, per frame."""
    from backend.detect import detect_one
    from backend.errors import NoFaceError

    errors = []
    for img, lm in zip(frames.images, frames.landmarks68):  # a loop over frames
        try:
            errors.append(float(np.linalg.norm(detect_one(img).landmarks - lm, axis=1).mean()))
        except NoFaceError:
            errors.append(None)
    return errors


def vertex_errors(frames, source, model, quality: str, detectors: tuple[str, ...],
                  joints: tuple[str, ...] = ("joint", "joint_yaw16", "joint_unweighted")) -> dict:
    """Coarse vertex error (mm) of each frame alone, the joint fits ``joints`` (runs of
    bench_multiview_detected: weighted and not ...) and the mean face against ``source``'s
    vertices, and each detector's NME per frame (module docstring)."""
    from evaluation.metrics import vertex_error

    from .bench_multiview_detected import box_nme, detected, fit_runs

    n = len(frames.images)
    runs_of = {**{f"single_{i}": [i] for i in range(n)}, **{name: list(range(n)) for name in joints}}
    out: dict = {"mean_face_mm": vertex_error(model.mean.cpu().numpy(), source.vertices, model.region.numpy() == 0)["mean"]}
    for det in detectors:
        found = detected(frames.images, det)
        nme = [None if lm is None else box_nme(lm, tr) for lm, tr in zip(found, frames.landmarks68)]
        runs = fit_runs(frames.images, det, runs_of, source.vertices, model, quality)
        singles = [runs[f"single_{i}"].get("vertex_error_mm", float("inf")) for i in range(n)]
        out[det] = {"nme": nme, "runs": runs, "best_single_mm": min(singles)}
        print("vertex error", det, "nme", [None if v is None else round(100 * v, 1) for v in nme],
              {k: round(r.get("vertex_error_mm", float("nan")), 3) for k, r in runs.items()},
              f"mean face {out['mean_face_mm']:.3f}", flush=True)
    return out


def _run_metrics(head, model, truth: np.ndarray) -> dict:
    return {
        "uv_face_coverage": head.metrics["uv_face_coverage"],
        "visible_face_coverage": _visible_coverage(head, model),
        "albedo_error": _albedo_error(head, truth, model),
        "timings_s": head.timings,
        "warnings": head.warnings,
    }


def _print_seams(seams: dict) -> None:
    for kind, table in seams.items():
        for name, entry in table.items():
            cells = [f"{k} {v['ratio']:.3f} ({v['border']:.4f}/{v['interior']:.4f})" if isinstance(v, dict)
                     else f"{k} {v:.4f}" for k, v in entry.items()]
            print(f"seams ({kind}) {name:>20}: " + "  ".join(cells))


def _checks(runs: dict, seams: dict) -> dict[str, bool]:
    three, front = runs["three_frames"], runs["frontal_frame"]
    ts = {name: entry["albedo"] for name, entry in seams["truth_smooth"].items()}
    return {
        "coverage_three_gt_frontal": three["uv_face_coverage"] > front["uv_face_coverage"],
        "albedo_error_three_lt_frontal": three["albedo_error"] < front["albedo_error"],
        "seam_ratio_pipeline_le_1.15": ts["pipeline"]["ratio"] <= 1.15,
        "seam_ratio_pipeline_lt_winner_take_all": ts["pipeline"]["ratio"] < ts["winner_take_all"]["ratio"],
        "border_gradient_pipeline_le_average": ts["pipeline"]["border"] <= ts["average"]["border"],
        "no_warnings": not three["warnings"],
    }


def grace_set(quality: str, size: int, detector: str = "auto", landmarks: str = "detected",
              vertex_detectors: tuple[str, ...] = ("dlib", "auto")) -> dict:
    """The shippable grace_hopper set: frames, reconstructions, metrics and docs images."""
    from evaluation.multiview_real import FrameSettings, blend_comparison, render_frames, trusted_albedo
    from backend.preview import compose_panels
    from backend.preview_render import render_turntable, render_uv_maps
    from backend.reconstruct import ReconstructConfig, load_face_model, reconstruct
    from backend.samples import sample_photo

    config = ReconstructConfig(quality=quality, device="cpu")
    model = load_face_model(None)
    source = reconstruct([sample_photo("grace_hopper")[1]], config)
    print(f"grace_hopper: {source.timings['total_s']:.1f} s, coverage {source.metrics['uv_face_coverage']:.3f}")
    settings = FrameSettings(size=size)
    t0 = time.perf_counter()
    frames = render_frames(source, model, settings)
    frames_s = time.perf_counter() - t0
    dlib = _dlib_errors(frames)
    print("dlib mean landmark error per frame (px):", dlib, flush=True)
    labels = [f"yaw {y:+.0f} deg" for y in settings.yaws_deg]
    _save_png(compose_panels(frames.images, labels, height=320), DOCS_IMAGES / "multiview_grace_frames.png")

    given = landmarks == "projected"
    fit_config = replace(config, detector=detector)
    joint = reconstruct(frames.images, fit_config, landmarks=frames.landmarks68 if given else None)
    front = settings.yaws_deg.index(0.0) if 0.0 in settings.yaws_deg else len(frames.images) // 2
    single = reconstruct([frames.images[front]], fit_config, landmarks=[frames.landmarks68[front]] if given else None)
    vertex = vertex_errors(frames, source, model, quality, vertex_detectors)
    truth = trusted_albedo(source, settings.trusted_weight)
    t1 = time.perf_counter()
    seams = {"truth_smooth": blend_comparison(joint, model, truth=truth),
             "views_smooth": blend_comparison(joint, model)}
    seams_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    _save_png(render_uv_maps(joint), DOCS_IMAGES / "multiview_grace_uv.png")
    _save_png(render_turntable(joint), DOCS_IMAGES / "multiview_grace_turntable.png")
    previews_s = time.perf_counter() - t2
    runs = {"three_frames": _run_metrics(joint, model, truth), "frontal_frame": _run_metrics(single, model, truth)}
    for name, run in runs.items():
        print(name, {k: v for k, v in run.items() if k != "timings_s"}, f"{run['timings_s']['total_s']:.1f} s")
    _print_seams(seams)
    checks = _checks(runs, seams)
    print(checks)
    return {
        "source": {"photo": "grace_hopper (matplotlib sample data, public domain)",
                   "uv_face_coverage": source.metrics["uv_face_coverage"], "timings_s": source.timings},
        "frames": {"yaws_deg": list(settings.yaws_deg), "size": settings.size,
                   "light_azimuths_deg": list(settings.light_azimuths_deg), "gains": [list(g) for g in settings.gains],
                   "landmarks": "projected model landmarks (silhouette jaw)" if given else f"detected ({detector})",
                   "dlib_landmark_error_px": dlib,
                   "render_s": frames_s},
        "runs": runs,
        "vertex_error": vertex,
        "seams": seams,
        "seams_s": seams_s,
        "previews_s": previews_s,
        "checks": checks,
    }


def vertex_set(quality: str, size: int, detectors: tuple[str, ...],
               joints: tuple[str, ...] = ("joint", "joint_yaw16", "joint_unweighted")) -> dict:
    """The grace_hopper source head at ``quality``, its frames and :func:`vertex_errors` only."""
    from evaluation.multiview_real import FrameSettings, render_frames
    from backend.reconstruct import ReconstructConfig, load_face_model, reconstruct
    from backend.samples import sample_photo

    model = load_face_model(None)
    source = reconstruct([sample_photo("grace_hopper")[1]], ReconstructConfig(quality=quality, device="cpu"))
    settings = FrameSettings(size=size)
    frames = render_frames(source, model, settings)
    return {"source": {"photo": "grace_hopper (matplotlib sample data, public domain)"},
            "frames": {"yaws_deg": list(settings.yaws_deg), "size": settings.size},
            "vertex_error": vertex_errors(frames, source, model, quality, detectors, joints)}


def dev_set(dev: Path, quality: str, threshold: float) -> dict:
    """Find and reconstruct a same-person set of the dev set; outputs only under runs/multiview_dev/."""
    from PIL import Image

    from evaluation.multiview_real import blend_comparison, dev_descriptors, same_person_sets
    from evaluation.readers import read_landmarks_json
    from backend.preview import compose_panels
    from backend.preview_render import render_preview, render_turntable, render_uv_maps
    from backend.reconstruct import ReconstructConfig, load_face_model, reconstruct

    if not (dev / "landmarks.json").exists():
        raise SystemExit(f"{dev}: no landmarks.json (pass --dev FOLDER with images/ and landmarks.json)")
    model = load_face_model(None)
    t0 = time.perf_counter()
    desc = dev_descriptors(dev, model, cache=DEV_OUT / "descriptors.npz")
    desc_s = time.perf_counter() - t0
    sets = same_person_sets(desc, threshold=threshold, min_colourfulness=0.02)
    if not sets:
        raise SystemExit("no same-person set with different yaw found: try a larger --threshold")
    chosen = sets[0]
    print("sets found:", len(sets), "chosen:", chosen, flush=True)
    lms = read_landmarks_json(dev / "landmarks.json")
    paths = [str(dev / "images" / n) for n in chosen["names"]]
    config = ReconstructConfig(quality=quality, device="cpu")
    head = reconstruct(paths, config, landmarks=[lms[n] for n in chosen["names"]])
    DEV_OUT.mkdir(parents=True, exist_ok=True)
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    _save_png(compose_panels(photos, [f"yaw {y:+.0f} deg" for y in chosen["yaw_deg"]]), DEV_OUT / "inputs.png")
    _save_png(render_uv_maps(head), DEV_OUT / "preview_uv.png")
    _save_png(render_turntable(head), DEV_OUT / "preview_turntable.png")
    for i in range(len(head.views)):
        _save_png(render_preview(head, i), DEV_OUT / f"preview_view{i}.png")
    singles = {}
    for name, path in zip(chosen["names"], paths):
        one = reconstruct([path], config, landmarks=[lms[name]])
        singles[name] = one.metrics["uv_face_coverage"]
    summary = {"set": chosen, "candidates": sets, "descriptor_s": desc_s,
               "uv_face_coverage": head.metrics["uv_face_coverage"], "single_view_coverage": singles,
               "visible_face_coverage": _visible_coverage(head, model), "seams": blend_comparison(head, model),
               "timings_s": head.timings, "warnings": head.warnings}
    (DEV_OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"dev set: coverage {summary['uv_face_coverage']:.3f} (single views {singles}), "
          f"{head.timings['total_s']:.1f} s, warnings {head.warnings} → {DEV_OUT}", flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quality", default=DEFAULT, choices=QUALITY_NAMES)
    ap.add_argument("--size", type=int, default=400, help="frame size, pixels")
    ap.add_argument("--dev-set", action="store_true", help="also reconstruct a same-person set of the dev set")
    ap.add_argument("--dev-only", action="store_true", help="only the dev set (no grace_hopper set, no result file)")
    ap.add_argument("--dev", type=Path, default=DEV_DEFAULT, help="dev set folder (images/, landmarks.json)")
    ap.add_argument("--threshold", type=float, default=0.5, help="descriptor distance linking two photos")
    ap.add_argument("--detector", default="auto", help="landmark detector of the grace_hopper runs")
    ap.add_argument("--landmarks", default="detected", choices=("detected", "projected"))
    ap.add_argument("--vertex-detectors", default="dlib,auto", help="detectors of the vertex-error runs")
    ap.add_argument("--joint-runs", default="joint,joint_yaw16,joint_unweighted",
                    help="joint runs of the vertex errors (bench_multiview_detected's ALL_RUNS)")
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    ap.add_argument("--vertex-only", action="store_true",
                    help="only the source head, its frames and the vertex errors → results/multiview_real_vertex.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.vertex_only:
        print("wrote", write_result("multiview_real_vertex", {"quality": args.quality, **vertex_set(
            args.quality, args.size, tuple(args.vertex_detectors.split(",")), tuple(args.joint_runs.split(",")))},
            args.out))
        return 0
    if not args.dev_only:
        payload = {"quality": args.quality, **grace_set(args.quality, args.size, args.detector, args.landmarks,
                                                        tuple(args.vertex_detectors.split(",")))}
        print("wrote", write_result("multiview_real", payload))
    if args.dev_set or args.dev_only:
        dev_set(args.dev, args.quality, args.threshold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
