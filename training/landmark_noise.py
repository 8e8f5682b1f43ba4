"""Re-calibrate the per-landmark noise tables of the coarse fit (backend.fit.landmark_noise).

    python -m training.landmark_noise FOLDER [--n 200] [--seed 7]

FOLDER holds photos with 68-point annotations (``evaluation.readers.find_landmark_sets``).
``--n`` photos are drawn (``--seed``) from those the landmark suite does not score (``photohead
evaluate landmarks --n 100 --sample random --seed 0``); each is detected with ``auto`` (dlib
checked by Face Mesh). Per point, in inter-ocular distances of the annotation: the root mean
squared error (``SIGMA_IO``), and the error variance as s² + a·gap² by non-negative least
squares (``AGREED_IO`` = s, ``GAP_SLOPE`` = a; gap = the point's dlib–Face Mesh distance in
inter-ocular distances of the detection); every point pooled with its mirror partner. Prints
the three tables as Python tuples.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy.optimize import nnls

from backend.align import MIRROR_68
from backend.detect import DetectSettings
from backend.errors import PhotoheadError
from backend.prepare import prepare_view
from evaluation.readers import find_landmark_sets, pick_paths


def noise_tables(detected: np.ndarray, mesh68: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(SIGMA_IO, AGREED_IO, GAP_SLOPE), each (68,), from N faces: detected, mesh68, truth (N,68,2) px."""
    io_truth = np.linalg.norm(truth[:, 36] - truth[:, 45], axis=-1)[:, None]
    io_det = np.linalg.norm(detected[:, 36] - detected[:, 45], axis=-1)[:, None]
    err2 = (np.linalg.norm(detected - truth, axis=-1) / io_truth) ** 2  # (N,68)
    gap2 = (np.linalg.norm(detected - mesh68, axis=-1) / io_det) ** 2
    mirror = list(MIRROR_68)
    sigma, agreed, slope = np.empty(68), np.empty(68), np.empty(68)
    for j in range(68):  # 68 small least-squares problems
        y = np.concatenate([err2[:, j], err2[:, mirror[j]]])
        x = np.concatenate([gap2[:, j], gap2[:, mirror[j]]])
        (s2, a), _ = nnls(np.stack([np.ones_like(x), x], 1), y)
        sigma[j], agreed[j], slope[j] = np.sqrt(y.mean()), np.sqrt(s2), a
    return sigma, agreed, slope


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    if args.n < 10:
        print("--n must be at least 10", file=sys.stderr)
        return 2
    try:
        sets = find_landmark_sets(args.folder)
    except PhotoheadError as exc:
        print(exc, file=sys.stderr)
        return 2
    suite = set(pick_paths(list(sets), 100, "random", 0))
    rest = [p for p in sorted(sets) if p not in suite]
    order = np.random.default_rng(args.seed).permutation(len(rest))[: args.n]
    det, mesh, truth = [], [], []
    for i in order:
        try:
            view = prepare_view(str(rest[i]), detector="auto", detect_settings=DetectSettings())
        except PhotoheadError:
            continue
        if view.mesh68 is not None:
            det.append(view.detected68), mesh.append(view.mesh68), truth.append(sets[rest[i]])
    tables = noise_tables(np.array(det), np.array(mesh), np.array(truth))
    print(f"# {len(det)} photos")
    for name, t, digits in zip(("SIGMA_IO", "AGREED_IO", "GAP_SLOPE"), tables, (4, 4, 3)):
        print(f"{name} = (" + ", ".join(f"{v:.{digits}f}" for v in t) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
