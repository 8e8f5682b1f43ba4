"""Generate docs/training.md's measurement tables from the benchmark JSON, so they cannot drift.

    python -m benchmarks.doc_tables [--doc docs/training.md] [--results benchmarks/results] [--check]

Each table sits between ``<!-- generated:NAME:start -->`` and ``<!-- generated:NAME:end -->``
and is rebuilt from one results file (``TABLES``: name → file, renderer). Running it again
changes nothing; ``--check`` exits 1 when the doc is out of date (a test runs it). A table whose
results file is missing says so instead of showing numbers.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Callable

__all__ = ["TABLES", "render", "update", "main"]

ROOT = Path(__file__).resolve().parents[1]


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "never"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]


def _where(doc: dict) -> str:
    m = doc.get("machine") or {}
    parts = [f"{doc.get('created_utc', '?')[:16].replace('T', ' ')} UTC",
             f"{m.get('cpu_count', '?')}-core {m.get('device', 'cpu')}", f"torch {m.get('torch', '?')}"]
    if m.get("torch_threads"):
        parts.append(f"{m['torch_threads']} thread(s)")
    if m.get("loadavg_1m") is not None:
        parts.append(f"load average {m['loadavg_1m']:.1f} (shared machine: upper bounds)")
    return "; ".join(parts)


def predict_time(doc: dict) -> list[str]:
    """Predict mode's time per photo (``bench_predict``'s ``predict`` entries)."""
    rows = [[k.replace("/", " / "), v["per_photo_s_with_detection"], v["per_photo_s_without_detection"], v["load_s"]]
            for k, v in doc["predict"].items()]
    return [f"Checkpoints: {doc.get('checkpoints')}; {_where(doc)}.", ""] + _table(
        ["photo / quality", "per photo, with detection (s)", "without detection (s)", "model + checkpoint loading (s)"],
        rows)


def hybrid_vs_fit(doc: dict) -> list[str]:
    """Per photo and fit stage: the step at which fit mode and hybrid first reach fit mode's loss
    at the end of that stage, and both final losses (``bench_predict``'s ``convergence``)."""
    rows = []
    for c in doc["convergence"]:
        stages = list(c["stage_steps"])
        for st in stages:
            last = st == stages[-1]
            rows.append([c["photo"], f"{st} ({c['stage_steps'][st]} steps)",
                         c["fit"]["step_reaching_fit_stage_end_loss"][st],
                         c["hybrid"]["step_reaching_fit_stage_end_loss"][st],
                         c["fit"]["final_loss"] if last else "", c["hybrid"]["final_loss"] if last else ""])
    better = [c["photo"] for c in doc["convergence"] if c["hybrid"]["final_loss"] < c["fit"]["final_loss"]]
    worse = [c["photo"] for c in doc["convergence"] if c["hybrid"]["final_loss"] >= c["fit"]["final_loss"]]
    summary = (f"Hybrid ends lower on {', '.join(better) or 'no photo'}"
               f"{'; it ends higher on ' + ', '.join(worse) if worse else ''}.")
    return [f"Checkpoints: {doc.get('checkpoints')}; {_where(doc)}.", ""] + _table(
        ["photo", "stage", "fit mode reaches it at step", "hybrid reaches it at step", "fit's final loss",
         "hybrid's final loss"], rows) + ["", summary]


def exp_clamp(doc: dict) -> list[str]:
    """``bench_exp_clamp``: held-out error per training decode × inference clamp, one column
    group per metric, the seeds' values separated by " / "."""
    names = {"none": "no clamp", "hard": "hard clamp", "straight_through": "clamp, straight-through gradient"}
    seeds = list(doc["runs_by_seed"])
    first = doc["runs_by_seed"][seeds[0]]
    rows = []
    for mode in first:
        for infer in ("predict_unclamped", "predict_clamped"):
            row = [names.get(mode, mode), "clamped" if infer == "predict_clamped" else "not clamped"]
            for key in ("exp_err_mm", "vert_err_mm", "lm_rmse_px224"):
                row.append(" / ".join(f"{doc['runs_by_seed'][s][mode][infer][key]:.3g}" for s in seeds
                                      if mode in doc["runs_by_seed"][s]))
            rows.append(row)
    st = doc["settings"]
    return [f"{st['steps']} steps, batch 10, {st['train']} synthetic training faces at {st['size']}², "
            f"{st['test']} held-out faces; training seeds {' / '.join(seeds)}; {_where(doc)}.", ""] + _table(
        ["training decodes the expression with", "predict", "expression error (mm)", "shape error (mm)",
         "landmark RMSE (px at 224²)"], rows)


def prepare_speed(doc: dict) -> list[str]:
    """``bench_prepare``: photos per second per worker process."""
    rows = [[r["workers"], r["photos"], r["seconds"], r["photos_per_s"], r["photos_per_s_per_worker"],
             r.get("detect_s_per_photo", "–"), r.get("other_s_per_photo", "–")] for r in doc["runs"]]
    return [f"{doc.get('source', '?')}; {_where(doc)}. One worker: in-process, warm (steady state per core); "
            "more workers: wall time includes starting the processes and loading dlib's models in each.", ""] + _table(
        ["worker processes", "photos", "wall time (s)", "photos/s", "photos/s per worker",
         "detector (s/photo)", "align + mask + write (s/photo)"], rows)


#: table name → (results file stem, renderer)
TABLES: dict[str, tuple[str, Callable[[dict], list[str]]]] = {
    "predict_time": ("predict", predict_time),
    "hybrid_vs_fit": ("predict", hybrid_vs_fit),
    "hybrid_vs_fit_synth_init": ("predict_synth_init", hybrid_vs_fit),
    "exp_clamp": ("exp_clamp", exp_clamp),
    "prepare_speed": ("prepare", prepare_speed),
}


def render(name: str, results: Path) -> str:
    """The block for table ``name`` (markers included) from ``results/<file>.json``."""
    stem, fn = TABLES[name]
    path = results / f"{stem}.json"
    source = f"<!-- generated by `python -m benchmarks.doc_tables` from benchmarks/results/{stem}.json: do not edit -->"
    if path.is_file():
        body = fn(json.loads(path.read_text()))
    else:
        body = [f"(not measured yet: benchmarks/results/{stem}.json is missing)"]
    return "\n".join([f"<!-- generated:{name}:start -->", source, *body, f"<!-- generated:{name}:end -->"])


def update(text: str, results: Path) -> str:
    """``text`` with every generated block it contains rebuilt."""
    def sub(m: re.Match) -> str:
        return render(m.group(1), results) if m.group(1) in TABLES else m.group(0)

    return re.sub(r"<!-- generated:(\w+):start -->.*?<!-- generated:\1:end -->", sub, text, flags=re.S)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "training.md")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--check", action="store_true", help="exit 1 when the doc is out of date, write nothing")
    args = ap.parse_args(argv)
    text = args.doc.read_text()
    new = update(text, args.results)
    if args.check:
        if new != text:
            print(f"{args.doc} is out of date: run python -m benchmarks.doc_tables", file=sys.stderr)
            return 1
        return 0
    if new != text:
        from backend.io_utils import atomic_write_text

        atomic_write_text(args.doc, new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
