"""The expression symmetry prior (:mod:`backend.fit.symmetry`) on turned faces_dev photos.

    python -m benchmarks.bench_symmetry --folder $FACES_DEV --select 15      # photos with |yaw| > 25°
    python -m benchmarks.bench_symmetry --folder $FACES_DEV --strength 0 --strength 2 ...

Yaw is read from the annotation (the mean face's closed-form pose on the inner points, no fit).
Each photo is reconstructed (``--quality``, no detail) with each ``expression_symmetry``
strength; rows: the fitted 68 points' NME (outer-eye distance) over all points and over the
VISIBLE half's points (the side whose jaw lies farther from the nose tip), and the mean absolute
L/R difference of the mirror-paired expression coefficients. Rows go to ``out/symexp/*.jsonl``
(faces_dev is research-only: only aggregates go into docs).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from unittest import mock

import numpy as np

OUT = Path("out/symexp")
# 68-point indices of the image-left half (subject's right) and their mirrors
HALF_A = list(range(0, 8)) + list(range(17, 22)) + [36, 37, 38, 39, 40, 41, 31, 32, 48, 49, 50, 58, 59, 60, 61, 67]
HALF_B = list(range(9, 17)) + list(range(22, 27)) + [42, 43, 44, 45, 46, 47, 34, 35, 52, 53, 54, 56, 55, 64, 63, 65]


def annotated_yaw(gt: np.ndarray, _model=None) -> float:
    """Degrees, from the 68 annotated points (closed-form orthographic pose of the mean face)."""
    import torch

    from backend.camera import Camera
    from backend.facemodel import load_default
    from backend.fit.pose_init import INNER_LANDMARKS, fit_orthographic_pose

    model = _model or load_default()
    inner = torch.tensor(INNER_LANDMARKS)
    pts = torch.tensor(gt, dtype=torch.float32)[None]
    pose = fit_orthographic_pose(model.mean[model.landmarks68[inner]][None], pts[:, inner], Camera(512, 512))
    return float(np.degrees(pose[0, 2]))


def visible_half(gt: np.ndarray) -> list[int]:
    """The indices of the half whose jaw lies farther from the nose tip (the side the camera sees)."""
    da = abs(gt[30, 0] - gt[0:4, 0].mean())
    db = abs(gt[13:17, 0].mean() - gt[30, 0])
    return HALF_A if da > db else HALF_B


def run(folder: Path, names: list[str], strength: float, quality: str, tag: str = "") -> None:
    import torch

    from backend.fit.symmetry import mirror_pairs
    from backend.reconstruct import ReconstructConfig, reconstruct
    from benchmarks.bench_prior_tuning import patched_preset

    torch.set_num_threads(1)
    ann = json.loads((folder / "landmarks.json").read_text())["images"]
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"{tag}{quality}_s{strength:g}.jsonl"
    done = {json.loads(x)["image"] for x in out.read_text().splitlines()} if out.exists() else set()
    preset = patched_preset(quality, {"expression_symmetry": strength})
    for name in names:
        if name in done:
            continue
        gt = np.asarray(ann[name]["landmarks"], np.float64)
        io = float(np.linalg.norm(gt[36] - gt[45]))
        with mock.patch("backend.reconstruct.resolve_preset", lambda q: preset):
            head = reconstruct([str(folder / "images" / name)], ReconstructConfig(quality=quality, detail=False))
        fit = np.asarray(head.views[0].landmarks68, np.float64)
        err = np.linalg.norm(fit - gt, axis=1) / io
        vis = visible_half(gt)
        exp = np.asarray(head.views[0].exp, np.float64)
        left, right = mirror_pairs(list(head.exp_names))
        row = {"image": name, "strength": strength, "nme": float(err.mean()), "nme_visible": float(err[vis].mean()),
               "nme_hidden": float(err[HALF_B if vis is HALF_A else HALF_A].mean()),
               "lr_diff": float(np.abs(exp[left] - exp[right]).mean()) if left else None}
        print(json.dumps(row), flush=True)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, required=True)
    ap.add_argument("--select", type=int, default=0, help="print this many photos with |yaw| > 25° (evenly spread)")
    ap.add_argument("--names", default="out/symexp/names.txt")
    ap.add_argument("--strength", type=float, action="append", default=[])
    ap.add_argument("--quality", default="default")
    ap.add_argument("--tag", default="", help="prefix of the rows' file names")
    args = ap.parse_args()
    if args.select:
        ann = json.loads((args.folder / "landmarks.json").read_text())["images"]
        from backend.facemodel import load_default

        model = load_default()
        turned = [n for n in sorted(ann) if abs(annotated_yaw(np.asarray(ann[n]["landmarks"]), model)) > 25]
        pick = turned[:: max(1, len(turned) // args.select)][: args.select]
        OUT.mkdir(parents=True, exist_ok=True)
        Path(args.names).write_text("\n".join(pick) + "\n")
        print(f"{len(turned)} of {len(ann)} photos turned > 25°; picked {len(pick)} -> {args.names}")
        return
    names = Path(args.names).read_text().split()
    for s in args.strength:
        run(args.folder, names, s, args.quality, args.tag)


if __name__ == "__main__":
    main()
