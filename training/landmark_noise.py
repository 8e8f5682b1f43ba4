"""Re-calibrate the per-landmark noise tables of the coarse fit (backend.fit.landmark_noise).

    python -m training.landmark_noise FOLDER [--n 200] [--seed 7] [--renders 40 --render-seed 5]

FOLDER holds photos with 68-point annotations (``evaluation.readers.find_landmark_sets``).
``--n`` photos are drawn (``--seed``) from those the landmark suite does not score (``photohead
evaluate landmarks --n 100 --sample random --seed 0``); each is detected with ``auto`` (dlib
checked by Face Mesh). Per point, in inter-ocular distances of the annotation: the root mean
squared error (``SIGMA_IO``), and the error variance as s² + a·gap² by non-negative least
squares (``AGREED_IO`` = s, ``GAP_SLOPE`` = a; gap = the point's dlib–Face Mesh distance in
inter-ocular distances of the detection); every point pooled with its mirror partner. Per
photo, for the fit's landmark trust: the mean squared point error as s² + a·gap² (``TRUST_AGREED``
= s, ``TRUST_SLOPE`` = a; gap = the photo's dlib–Face Mesh disagreement, photos below 0.15 where
dlib's points are kept), the median gap (``TRUST_TYPICAL_GAP``) and Face Mesh's own mean squared
point error (``TRUST_MESH_ALONE``). Prints the tables and
constants as Python. The tables were made with ``--n 200``, the trust constants with ``--n 770``
(every photo outside the suite). ``--renders N``: also N synthetic ``realistic`` renders
(``--render-seed``, not a seed the suites report) detected the same way, against their true 2-D
landmarks: the power ``TRUST_POWER`` that makes the law's mean predicted variance, as a trust,
match the renders' measured one (:func:`trust_power`): on renders both detectors err together,
so their gap understates the noise.
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


def trust_law(detected: np.ndarray, mesh68: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """(TRUST_AGREED, TRUST_SLOPE, TRUST_TYPICAL_GAP) from N faces: detected, mesh68, truth (N,68,2) px.
    Each face's mean squared point error (outer-eye distances of the truth) ≈ s² + a·gap², gap the
    mean point distance in mesh68's outer-eye distances, least squares over the faces with gap < 0.15;
    the typical gap is their median."""
    io_truth = np.linalg.norm(truth[:, 36] - truth[:, 45], axis=-1)
    io_mesh = np.linalg.norm(mesh68[:, 36] - mesh68[:, 45], axis=-1)
    err2 = (np.linalg.norm(detected - truth, axis=-1) ** 2).mean(-1) / io_truth**2  # (N,)
    gap = np.linalg.norm(detected - mesh68, axis=-1).mean(-1) / io_mesh
    keep = gap < 0.15  # beyond, the mesh's points replace dlib's: their error is not dlib's
    (s2, a), _ = nnls(np.stack([np.ones(keep.sum()), gap[keep] ** 2], 1), err2[keep])
    return float(np.sqrt(s2)), float(a), float(np.median(gap[keep]))


def trust_power(gaps: np.ndarray, err2: np.ndarray, agreed: float, slope: float, typical_gap: float) -> float:
    """The power p with typical/mean(err2) = (typical/mean(s² + a·gap²))^p over faces with gap < 0.15
    (typical = s² + a·typical_gap²): gaps (N,) the detectors' disagreement, err2 (N,) each face's
    mean squared point error in squared outer-eye distances of the truth."""
    keep = gaps < 0.15
    typical = agreed**2 + slope * typical_gap**2
    law = float(np.mean(agreed**2 + slope * gaps[keep] ** 2))
    return float(np.log(typical / float(np.mean(err2[keep]))) / np.log(typical / law))


def render_errors(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(gaps, err2) (N,) of ``n`` ``realistic`` renders detected with ``auto`` (faces with a dlib–mesh gap)."""
    from backend.facemodel import load_default
    from evaluation.synthetic import SCENES, make_faces

    gaps, err2 = [], []
    for face in make_faces(load_default(), n, seed=seed, settings=SCENES["realistic"]):
        try:
            view = prepare_view(face.image, detector="auto", detect_settings=DetectSettings())
        except PhotoheadError:
            continue
        if view.detector_disagreement is None:
            continue
        truth = np.asarray(face.contour68, np.float64)
        io = np.linalg.norm(truth[36] - truth[45])
        gaps.append(view.detector_disagreement)
        err2.append(float((np.linalg.norm(np.asarray(view.detected68, np.float64) - truth, axis=-1) ** 2).mean() / io**2))
    return np.array(gaps), np.array(err2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--renders", type=int, default=0, help="synthetic renders for TRUST_POWER (0: none)")
    ap.add_argument("--render-seed", type=int, default=5)
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
    agreed, slope, typical = trust_law(np.array(det), np.array(mesh), np.array(truth))
    print(f"TRUST_AGREED = {agreed:.4f}\nTRUST_SLOPE = {slope:.3f}\nTRUST_TYPICAL_GAP = {typical:.4f}")
    truth_a, mesh_a = np.array(truth), np.array(mesh)
    io = np.linalg.norm(truth_a[:, 36] - truth_a[:, 45], axis=-1)
    mesh_err2 = (np.linalg.norm(mesh_a - truth_a, axis=-1) ** 2).mean(-1) / io**2
    print(f"TRUST_MESH_ALONE = {float(mesh_err2.mean()):.5f}")
    if args.renders:
        gaps, err2 = render_errors(args.renders, args.render_seed)
        print(f"# {len(gaps)} renders\nTRUST_POWER = {trust_power(gaps, err2, agreed, slope, typical):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
