"""How far a detector's 68 landmarks are off on side views, per group of points: a bias both
sides share, or scatter that averages out? (issue 23, multi-view)

    python -m benchmarks.bench_side_landmark_bias [--heads 8] [--seeds 7,8] [--detector auto]

Random heads of the multi-view bench (:func:`evaluation.multiview_heads.make_head_views`) are
photographed at yaw 0°, ±20°, ±35°, ±50°, ±65° and the detector runs on each photo (as
``reconstruct`` would: ``detect_one``, face 0). Each point's error (detected − truth, the truth
with the jaw on the silhouette) is measured in pixels of the fit's 224² crop (the similarity
:func:`backend.align.align_face` takes the true landmarks to), mirrored for negative yaws (x → −x,
points through :data:`backend.align.MIRROR_68`) so that both sides pool. Per group (jaw 0–16,
brows 17–26, nose 27–35, eyes 36–47, mouth 48–67) and |yaw|:

- ``bias_px``: the mean error vector's length over the heads, averaged over the group's points;
- ``scatter_px``: the RMS distance of the errors around that mean;
- ``rms_px``: √(bias² + scatter²) as pooled.

A photo without a face counts in ``lost``. Writes benchmarks/results/side_landmark_bias.json.
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .common import write_result

YAWS = (0.0, -20.0, 20.0, -35.0, 35.0, -50.0, 50.0, -65.0, 65.0)
GROUPS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
          "mouth": range(48, 68)}


def crop_errors(found: np.ndarray, truth: np.ndarray, yaw: float) -> np.ndarray:
    """Errors (68,2) in 224² crop px of ``found`` against ``truth`` (68,2) photo px, mirrored
    (x → −x, iBUG points through MIRROR_68) for a negative ``yaw``."""
    from backend.align import MIRROR_68, align_face

    M = align_face(truth).crop_from_image  # (2,3) similarity
    err = (found - truth) @ M[:, :2].T  # (68,2)
    if yaw < 0:
        err = err[list(MIRROR_68)] * np.array([-1.0, 1.0])
    return err


def _one_seed(args: tuple[int, int, str]) -> dict:
    """Errors of ``heads`` heads of ``seed`` at every yaw: {"errors": {|yaw|: [(68,2) lists]}, "lost": {|yaw|: n}}."""
    seed, heads, detector = args
    from backend.detect import detect_one
    from backend.errors import FaceTooSmallError, NoFaceError
    from backend.facemodel import load_default
    from evaluation.multiview_heads import make_head_views

    model = load_default()
    rng = np.random.default_rng(seed)
    errors: dict[str, list] = {}
    lost: dict[str, int] = {}
    for _ in range(heads):
        hv = make_head_views(model, rng, YAWS)
        for yaw, img, truth in zip(YAWS, hv.images, hv.contour68):
            key = f"{abs(yaw):.0f}"
            try:
                found = detect_one(img, backend=detector).landmarks
            except (NoFaceError, FaceTooSmallError):
                lost[key] = lost.get(key, 0) + 1
                continue
            errors.setdefault(key, []).append(crop_errors(np.asarray(found, np.float64), truth, yaw).tolist())
    return {"errors": errors, "lost": lost}


def summarize(errors: dict[str, list], lost: dict[str, int]) -> dict:
    """Per |yaw|: per group bias, scatter and RMS (px of the 224² crop), and the lost photos."""
    out = {}
    for key in sorted(errors, key=float):
        e = np.asarray(errors[key])  # (n,68,2)
        mean = e.mean(0)  # (68,2) the bias vector of each point
        scatter = np.sqrt(((e - mean) ** 2).sum(-1).mean(0))  # (68,) RMS around it
        out[key] = {"photos": int(e.shape[0]), "lost": int(lost.get(key, 0)), "groups": {
            g: {"bias_px": float(np.linalg.norm(mean[list(idx)], axis=1).mean()),
                "scatter_px": float(scatter[list(idx)].mean()),
                "rms_px": float(np.sqrt((e[:, list(idx)] ** 2).sum(-1).mean()))}
            for g, idx in GROUPS.items()}}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heads", type=int, default=8, help="heads per seed")
    ap.add_argument("--seeds", default="7,8", help="seeds (one process each with --jobs)")
    ap.add_argument("--detector", default="auto")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = ap.parse_args(argv)
    jobs = [(int(s), args.heads, args.detector) for s in args.seeds.split(",")]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            parts = list(pool.map(_one_seed, jobs))
    else:
        parts = [_one_seed(j) for j in jobs]
    errors: dict[str, list] = {}
    lost: dict[str, int] = {}
    for p in parts:
        for k, v in p["errors"].items():
            errors.setdefault(k, []).extend(v)
        for k, v in p["lost"].items():
            lost[k] = lost.get(k, 0) + v
    table = summarize(errors, lost)
    for key, row in table.items():
        print(f"|yaw| {key}°: {row['photos']} photos, {row['lost']} lost; " + ", ".join(
            f"{g} {r['bias_px']:.1f}/{r['scatter_px']:.1f}" for g, r in row["groups"].items()), "(bias/scatter px)")
    write_result("side_landmark_bias", {"detector": args.detector, "seeds": [j[0] for j in jobs],
                                        "heads_per_seed": args.heads, "yaws_deg": list(YAWS), "summary": table},
                 args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
