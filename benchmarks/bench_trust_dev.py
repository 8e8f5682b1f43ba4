"""Trust warnings against the true landmark error on faces_dev: which bad fits are flagged.

    python -m benchmarks.bench_trust_dev --folder $FACES_DEV --workers 2     # screen: every photo, draft
    python -m benchmarks.bench_trust_dev --folder $FACES_DEV --quality default --only flagged.txt
    python -m benchmarks.bench_trust_dev --report                              # → benchmarks/results/trust_dev.json

Each photo is reconstructed (``--quality``, no detail stage, ``--detector``, default the
pipeline's) and scored: the fitted model's 68 points (``landmarks68``) against the annotation,
NME by the outer-eye distance, and the detector's own NME; with the fit's trust evidence
(``trust_*`` metrics) and its warnings. Per-photo rows go to ``out/trust_dev/<tag>.jsonl`` (kept
out of the repository: faces_dev is research-only); ``--report`` writes only aggregates: the
confusion table of "warned" against "NME > 10 %" for the current :class:`backend.trust.TrustSettings`,
and the NME and metric quantiles. Rows already in the file are skipped (resumable).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np

from .common import write_result

OUT = Path("out/trust_dev")
BAD_NME = 0.10  # the "NME above 10 %"


def _item(args: tuple[str, list, str, str]) -> dict:
    path, gt, quality, detector = args
    import torch

    from backend.errors import PhotoheadError
    from backend.reconstruct import ReconstructConfig, reconstruct

    torch.set_num_threads(1)
    gt = np.asarray(gt, np.float64)
    io = float(np.linalg.norm(gt[36] - gt[45]))
    config = ReconstructConfig(quality=quality, detector=detector, detail=False)
    try:
        head = reconstruct([path], config)
    except PhotoheadError as exc:
        return {"image": Path(path).name, "error": str(exc)}
    v = head.views[0]
    fit, det = np.asarray(v.landmarks68, np.float64), np.asarray(v.detected68, np.float64)
    return {
        "image": Path(path).name, "quality": quality, "detector": detector, "backend": v.detector,
        "nme": float(np.linalg.norm(fit - gt, axis=1).mean() / io),
        "det_nme": float(np.linalg.norm(det - gt, axis=1).mean() / io),
        "metrics": {k: float(x) for k, x in head.metrics.items() if k.startswith("trust_")},
        "warnings": list(head.warnings),
    }


def _detect_item(args: tuple[str, list]) -> dict:
    """Detection only: auto's and dlib's NME, auto's source, Face Mesh's disagreement with dlib and presence."""
    path, gt = args
    import torch

    from backend.detect import detect_one
    from backend.detect.combined import disagreement
    from backend.detect.mediapipe_68 import mesh_to_68
    from backend.errors import PhotoheadError

    torch.set_num_threads(1)
    gt = np.asarray(gt, np.float64)
    io = float(np.linalg.norm(gt[36] - gt[45]))
    row: dict = {"image": Path(path).name}
    for backend in ("auto", "dlib"):
        try:
            face = detect_one(path, backend=backend)
        except PhotoheadError as exc:
            row[f"{backend}_error"] = str(exc)
            continue
        row[f"{backend}_nme"] = float(np.linalg.norm(face.landmarks - gt, axis=1).mean() / io)
        if backend == "auto":
            row["auto_backend"], row["presence"] = face.backend, face.presence
            if face.dense is not None:
                row["mesh_nme"] = float(np.linalg.norm(mesh_to_68(face.dense) - gt, axis=1).mean() / io)
                row["_mesh68"] = mesh_to_68(face.dense)
        else:
            row["_dlib68"] = face.landmarks
    if "_mesh68" in row and "_dlib68" in row:
        row["dlib_mesh_disagreement"] = disagreement(row["_dlib68"], row["_mesh68"])
    row.pop("_mesh68", None)
    row.pop("_dlib68", None)
    return row


def suspicion_order(names: list[str]) -> list[str]:
    """``names`` with the detection pass's most suspicious photos first (worst detector NME or
    disagreement), the rest after in name order; unchanged without ``out/trust_dev/detect.jsonl``."""
    path = OUT / "detect.jsonl"
    if not path.is_file():
        return names
    rows = {r["image"]: r for r in map(json.loads, path.read_text().splitlines())}
    key = lambda n: -max(rows.get(n, {}).get(k, 1.0) for k in ("auto_nme", "dlib_nme"))  # noqa: E731
    return sorted(names, key=key)


def screen_detect(folder: Path, workers: int) -> Path:
    """Detection pass over every photo of ``folder`` into ``out/trust_dev/detect.jsonl`` (resumable)."""
    from evaluation.readers import find_landmark_sets

    out = OUT / "detect.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line)["image"] for line in out.read_text().splitlines()} if out.is_file() else set()
    jobs = [(str(p), gt.tolist()) for p, gt in find_landmark_sets(folder).items() if p.name not in done]
    print(f"{len(jobs)} photos to detect ({len(done)} done) → {out}")
    with open(out, "a") as fh, mp.get_context("spawn").Pool(workers) as pool:
        for row in pool.imap_unordered(_detect_item, jobs, chunksize=4):
            fh.write(json.dumps(row) + "\n")
            fh.flush()
    return out


def screen(folder: Path, quality: str, detector: str, workers: int, only: list[str] | None, tag: str) -> Path:
    """Run every photo of ``folder`` (or the ``only`` names) not yet in ``out/trust_dev/<tag>.jsonl``."""
    from evaluation.readers import find_landmark_sets

    sets = {p.name: (p, gt) for p, gt in find_landmark_sets(folder).items()}
    out = OUT / f"{tag}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line)["image"] for line in out.read_text().splitlines()} if out.is_file() else set()
    names = suspicion_order(sorted(only if only is not None else sets))
    jobs = [(str(sets[n][0]), sets[n][1].tolist(), quality, detector) for n in names if n not in done]
    print(f"{len(jobs)} photos to run ({len(done)} done) → {out}")
    with open(out, "a") as fh, mp.get_context("spawn").Pool(workers) as pool:
        for i, row in enumerate(pool.imap(_item, jobs)):
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            if i % 50 == 0:
                print(i, row.get("image"), round(row.get("nme", float("nan")), 4), flush=True)
    return out


def evidence(row: dict, detect_row: dict | None = None):
    """A fit row's :class:`backend.trust.ViewEvidence` and identity norm, from its stored ``trust_*``
    metrics (the detection pass's dlib-vs-mesh disagreement when the row has none)."""
    from backend.trust import ViewEvidence

    m = row["metrics"]
    gap = m.get("trust_detector_disagreement")
    if gap is None and detect_row is not None and detect_row.get("auto_backend") is not None:
        gap = detect_row.get("dlib_mesh_disagreement")
    return ViewEvidence("", m["trust_landmark_residual"], m["trust_yaw_deg"], m.get("trust_mesh_disagreement"),
                        m.get("trust_presence"), gap), m["trust_identity_norm"]


def warned(row: dict, detect_row: dict | None, settings=None, id_ball: float = 1.7) -> list[str]:
    """The warnings :func:`backend.trust.assess` gives ``row``'s evidence under ``settings``."""
    from backend.trust import assess

    view, id_norm = evidence(row, detect_row)
    return assess([view], np.array([id_norm]), id_ball, settings)[1]


def confusion(rows: list[dict], detect_rows: dict[str, dict], settings=None) -> dict:
    """Warned (current thresholds, or ``settings``) against fitted NME > 10 %, with the names of
    the bad ones left silent and the count of each warning kind among the good ones."""
    ok = [r for r in rows if "nme" in r]
    bad = np.array([r["nme"] > BAD_NME for r in ok])
    warns = [warned(r, detect_rows.get(r["image"]), settings) for r in ok]
    flag = np.array([bool(w) for w in warns])
    kinds: dict[str, int] = {}
    for w, b in zip(warns, bad):
        for line in w if not b else []:
            key = " ".join(line.split(":")[-1].split()[:4])
            kinds[key] = kinds.get(key, 0) + 1
    return {"photos": len(ok), "no_face": len(rows) - len(ok),
            "bad_warned": int((bad & flag).sum()), "bad_silent": int((bad & ~flag).sum()),
            "good_warned": int((~bad & flag).sum()), "good_silent": int((~bad & ~flag).sum()),
            "false_alarm_kinds": kinds}


def detect_summary() -> dict:
    """Aggregates of the detection pass: NME mean / max / count above 10 % per source, and how often
    auto used the mesh; {} without ``out/trust_dev/detect.jsonl``."""
    path = OUT / "detect.jsonl"
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    out: dict = {"photos": len(rows), "auto_used_mesh": sum(r.get("auto_backend") == "mediapipe" for r in rows)}
    for key in ("auto", "dlib", "mesh"):
        v = np.array([r.get(f"{key}_nme", np.nan) for r in rows])
        out[key] = {"nme_mean_%": 100 * float(np.nanmean(v)), "nme_max_%": 100 * float(np.nanmax(v)),
                    "above_10": int((v > BAD_NME).sum()), "not_found": int(np.isnan(v).sum())}
    return out


def report(tags: list[str]) -> dict:
    """Aggregates of ``out/trust_dev/<tag>.jsonl`` per tag (no per-photo rows)."""
    payload = {}
    path = OUT / "detect.jsonl"
    detect_rows = {r["image"]: r for r in map(json.loads, path.read_text().splitlines())} if path.is_file() else {}
    for tag in tags:
        rows = [json.loads(line) for line in (OUT / f"{tag}.jsonl").read_text().splitlines()]
        ok = [r for r in rows if "nme" in r]
        nme = np.array([r["nme"] for r in ok])
        q = lambda a: {p: float(np.quantile(a, p / 100)) for p in (50, 90, 99, 100)}  # noqa: E731
        keys = sorted({k for r in ok for k in r["metrics"]})
        payload[tag] = {
            "quality": ok[0]["quality"], "detector": ok[0]["detector"], "confusion": confusion(rows, detect_rows),
            "nme_mean_%": 100 * float(nme.mean()), "nme_quantiles": q(nme),
            "det_nme_mean_%": 100 * float(np.mean([r["det_nme"] for r in ok])),
            "above_10_%": int((nme > BAD_NME).sum()),
            "metric_quantiles": {k: q(np.array([r["metrics"][k] for r in ok if k in r["metrics"]])) for k in keys},
            "backends": {b: sum(r["backend"] == b for r in ok) for b in sorted({r["backend"] for r in ok})},
        }
        print(tag, json.dumps(payload[tag]["confusion"]), f"NME {payload[tag]['nme_mean_%']:.2f} %")
    return payload


def main() -> None:
    from backend.reconstruct import ReconstructConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folder", type=Path, default=Path(os.environ.get("FACES_DEV", "../shared/data/faces_dev")))
    ap.add_argument("--quality", default="draft")
    ap.add_argument("--detector", default=ReconstructConfig().detector)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--only", type=Path, help="a file of photo names, one a line")
    ap.add_argument("--tag", default=None, help="rows file name (default <quality>_<detector>)")
    ap.add_argument("--detect-only", action="store_true", help="the detection pass (out/trust_dev/detect.jsonl)")
    ap.add_argument("--report", nargs="*", help="write the aggregates of these tags (default: every rows file)")
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = ap.parse_args()
    if args.report is not None:
        tags = args.report or sorted(p.stem for p in OUT.glob("*.jsonl") if p.stem != "detect")
        write_result("trust_dev", {"bad_nme": BAD_NME, "detect_pass": detect_summary(), "runs": report(tags)}, args.out)
        return
    if args.detect_only:
        screen_detect(args.folder, args.workers)
        return
    only = args.only.read_text().split() if args.only else None
    screen(args.folder, args.quality, args.detector, args.workers, only, args.tag or f"{args.quality}_{args.detector}")


if __name__ == "__main__":
    main()
