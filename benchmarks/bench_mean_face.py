"""The do-nothing baseline of the synthetic suites: the model's mean face scored like a fit.

    python -m benchmarks.bench_mean_face          # → benchmarks/results/mean_face.json

For each synthetic suite variant (the same faces as ``photohead evaluate synthetic`` with its
default seed: 20 faces without detail, 10 with), the mean face (identity and expression
coefficients 0) is compared with each true face exactly as a reconstruction is
(:func:`evaluation.metrics.vertex_error`: similarity-aligned vertex error on the face
regions, and on the narrow face). A fit that scores above these numbers did worse than not
fitting at all. No reconstruction runs; the faces are rendered only because the generator
renders them.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np

from evaluation import metrics as M
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    model = load_default()
    variants = {name: mean_face_errors(model, n, detail, args.seed) for name, (n, detail) in VARIANTS.items()}
    for name, v in variants.items():
        print(f"{name}: mean face {v['vertex_err_mean_mm']:.2f} mm (narrow face {v['vertex_err_narrow_face_mean_mm']:.2f} mm)")
    write_result("mean_face", {"variants": variants})
    return 0


if __name__ == "__main__":
    sys.exit(main())
