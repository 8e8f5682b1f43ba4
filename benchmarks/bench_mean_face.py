"""The do-nothing baseline of the synthetic suites: the model's mean face scored like a fit.

    python -m benchmarks.bench_mean_face          # → benchmarks/results/mean_face.json

For each synthetic suite variant (the same faces as ``photohead evaluate synthetic`` with its
default seed: 20 faces without detail, 10 with), the mean face (identity and expression
coefficients 0) is compared with each true face exactly as a reconstruction is
(:func:`evaluation.metrics.vertex_error`: similarity-aligned vertex error on the face
regions, and on the narrow face). The depth suite's synthetic subjects (``photohead evaluate
depth DIR --synthetic 10``) get the mean face's heights in each subject's true pose, scored
as another method's ``pred_depth.npy`` (a generous baseline: the pose is given). A fit that
scores above these numbers did worse than not fitting at all. No reconstruction runs; the
faces are rendered only because the generators render them.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from evaluation import metrics as M
from evaluation.depth import height_map, run_depth, write_synthetic_depth_set
from evaluation.suites import DETAIL_CONDITIONS
from evaluation.synthetic import SyntheticSettings, make_faces
from backend.facemodel import load_default
from benchmarks.common import write_result

# suite variant → (faces, with detail): the variants whose results the docs show.
VARIANTS: dict[str, tuple[int, bool]] = {"synthetic": (20, False), "synthetic_detail": (10, True)}


def mean_face_errors(model, n: int, detail: bool, seed: int = 0) -> dict[str, float]:
    """The mean face's vertex error (mm) over ``n`` synthetic faces, summarised as the suite
    summarises a reconstruction's: mean of per-face means (face regions, narrow face), median of
    per-face medians, worst per-face mean."""
    settings = SyntheticSettings()
    if detail:
        settings = replace(settings, **DETAIL_CONDITIONS)
    faces = make_faces(model, n, seed=seed, settings=settings)
    mean = model.mean.reshape(-1, 3).numpy().astype(np.float64)  # (V,3) mm
    mask = model.face_vertex_mask.numpy()
    narrow = model.region.numpy() == 0
    errors = [M.vertex_error(mean, f.vertices, mask) for f in faces]  # as run_synthetic scores a head
    narrow_mean = [M.vertex_error(mean, f.vertices, narrow)["mean"] for f in faces]
    return {"faces": n, "seed": seed, "detail": detail,
            "vertex_err_mean_mm": float(np.mean([e["mean"] for e in errors])),
            "vertex_err_narrow_face_mean_mm": float(np.mean(narrow_mean)),
            "vertex_err_median_mm": float(np.median([e["median"] for e in errors])),
            "vertex_err_worst_mm": float(np.max([e["mean"] for e in errors])),
            "per_face_mm": [float(e["mean"]) for e in errors]}


def mean_face_depth(model, n: int = 10, seed: int = 0) -> dict[str, float]:
    """The depth suite's error (mm) for the mean face in each synthetic subject's true pose."""
    mean = model.mean.reshape(-1, 3).numpy().astype(np.float64)  # (V,3) mm
    faces_np = model.faces.cpu().numpy()
    with tempfile.TemporaryDirectory() as tmp:
        subjects = write_synthetic_depth_set(model, tmp, n=n, seed=seed)
        for subject, face in zip(subjects, make_faces(model, n, seed=seed)):  # the faces the set was made from
            h, w = face.image.shape[:2]
            np.save(Path(subject) / "pred_depth.npy", height_map(mean, faces_np, face.pose, w, h))
        summary = run_depth(tmp)["summary"]
    return {"subjects": n, "seed": seed, **{k: summary.get(k) for k in (
        "depth_err_minmax_mean_mm", "depth_err_minmax_std_mm", "depth_err_affine_mean_mm", "depth_err_affine_std_mm",
        "coverage_mean")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    model = load_default()
    variants = {name: mean_face_errors(model, n, detail, args.seed) for name, (n, detail) in VARIANTS.items()}
    for name, v in variants.items():
        print(f"{name}: mean face {v['vertex_err_mean_mm']:.2f} mm (narrow face {v['vertex_err_narrow_face_mean_mm']:.2f} mm)")
    depth = mean_face_depth(model, seed=args.seed)
    print(f"depth: mean face {depth['depth_err_minmax_mean_mm']:.2f} mm (min-max), "
          f"{depth['depth_err_affine_mean_mm']:.2f} mm (affine)")
    write_result("mean_face", {"variants": variants, "depth": depth})
    return 0


if __name__ == "__main__":
    sys.exit(main())
