"""Landmark detectors against head yaw: dlib, mediapipe and auto on synthetic renders, and their time.

    python -m benchmarks.bench_detector_yaw              # → benchmarks/results/detector_yaw.json
    python -m benchmarks.bench_detector_yaw --n 96       # more faces (≈ 1 s each, all detectors)

Faces: :func:`evaluation.synthetic.make_faces` (seed 5, 320², yaw uniform in ±80°, pitch ±10°),
scored against the silhouette-jaw truth ``contour68`` with NME normalised by the truth's box
(√(w·h)); a face counts as failed above 10 % or when none is found. Bins of |yaw|: 0–30, 30–50,
50–65, 65–80°. Time: each detector on grace_hopper pasted into 640×480 (median of 5 after a
warm-up, one torch thread). The mediapipe and auto rows need `photohead models fetch mediapipe`.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from backend.detect import detect
from backend.detect.combined import AGREE, disagreement
from backend.facemodel import load_default
from evaluation.synthetic import SyntheticSettings, make_faces

from .bench_detect import _photos
from .common import time_call, write_result

BACKENDS = ("dlib", "mediapipe", "auto")
BINS = ((0, 30), (30, 50), (50, 65), (65, 81))


def _nearest(image: np.ndarray, truth: np.ndarray, backend: str):
    """The detected face nearest the true landmarks' centre, or None."""
    faces = detect(image, backend=backend)
    return min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - truth.mean(0))) if faces else None


def _nme(face, truth: np.ndarray) -> float:
    if face is None:
        return float("nan")
    wh = truth.max(0) - truth.min(0)
    return float(np.linalg.norm(face.landmarks - truth, axis=1).mean() / np.sqrt(wh[0] * wh[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    faces = make_faces(load_default(), args.n, seed=5,
                       settings=SyntheticSettings(yaw_max_deg=80.0, size=320, face_fraction=0.5))
    yaw = np.array([abs(f.yaw_deg) for f in faces])
    found = [{b: _nearest(f.image, f.contour68, b) for b in BACKENDS} for f in faces]
    nme = {b: np.array([_nme(d[b], f.contour68) for d, f in zip(found, faces)]) for b in BACKENDS}
    per_face = [{"yaw_deg": float(f.yaw_deg), **{f"{b}_nme": _nme(d[b], f.contour68) for b in BACKENDS},
                 "auto_detector": d["auto"].detector if d["auto"] else None,
                 "dlib_mesh_disagreement": disagreement(d["dlib"].landmarks, d["mediapipe"].landmarks)
                 if d["dlib"] and d["mediapipe"] else None} for d, f in zip(found, faces)]
    bins = []
    for lo, hi in BINS:
        m = (yaw >= lo) & (yaw < hi)
        row = {"yaw_deg": [lo, hi], "n": int(m.sum())}
        for b in BACKENDS:
            v = nme[b][m]
            row[f"{b}_nme_%"] = float(100 * np.nanmean(v)) if np.isfinite(v).any() else None
            row[f"{b}_failed"] = int(np.sum(~(v <= 0.10)))
            row[f"{b}_not_found"] = int(np.isnan(v).sum())
        bins.append(row)
        print(row)
    photo = _photos()["640x480"]
    times = {b: time_call(lambda b=b: detect(photo, backend=b), repeats=5, warmup=1)["median_s"] for b in BACKENDS}
    print("seconds per 640×480 photo:", times)
    write_result("detector_yaw", {"faces": args.n, "agree": AGREE, "bins": bins, "time_640x480_s": times,
                                  "per_face": per_face}, args.out)


if __name__ == "__main__":
    main()
