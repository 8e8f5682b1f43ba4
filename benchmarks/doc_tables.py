"""Generate the docs' measurement tables from the benchmark JSON, so they cannot drift.

    python -m benchmarks.doc_tables [--doc docs/training.md --doc README.md] [--results benchmarks/results] [--check]

Each table sits between ``<!-- generated:NAME:start -->`` and ``<!-- generated:NAME:end -->``
and is rebuilt from its results files (``TABLES``: name → file stem or stems, renderer; a
renderer of several files gets ``{stem: document or None}``). Without ``--doc`` every file of
``DOCS`` is rebuilt. Running it again
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

__all__ = ["DOCS", "TABLES", "render", "update", "main"]

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
    """Predict mode's time per photo (``bench_predict``'s ``predict`` entries); with CPU times
    (newer runs) those first: wall times on a loaded machine mean little."""
    entries = doc["predict"].items()
    if all("cpu_s_per_photo_with_detection" in v for _, v in entries):
        rows = [[k.replace("/", " / "), v["cpu_s_per_photo_with_detection"], v["cpu_s_loading"],
                 v["per_photo_s_with_detection"]] for k, v in entries]
        header = ["photo / quality", "CPU per photo, with detection (s)", "CPU of model + checkpoint loading (s)",
                  "wall per photo (s)"]
    else:
        rows = [[k.replace("/", " / "), v["per_photo_s_with_detection"], v["per_photo_s_without_detection"], v["load_s"]]
                for k, v in entries]
        header = ["photo / quality", "per photo, with detection (s)", "without detection (s)",
                  "model + checkpoint loading (s)"]
    return [f"Checkpoints: {doc.get('checkpoints')}; {_where(doc)}.", ""] + _table(header, rows)


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
    where = (f"Convergence {doc['convergence_note']}" if doc.get("convergence_note")
             else f"Checkpoints: {doc.get('checkpoints')}; {_where(doc)}")
    return [f"{where}.", ""] + _table(
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


def modes(doc: dict) -> list[str]:
    """``bench_modes``: the synthetic and landmark suites per mode and quality, with the mean face."""
    mf = doc["mean_face"]
    lm_n = doc.get("landmarks_n", 0)
    rows = [["mean face (no reconstruction)", "–", mf["vertex_err_mean_mm"], mf["vertex_err_narrow_face_mean_mm"],
             "–", "–", "–", "–"]]
    for r in doc["rows"]:
        syn, lm = r["synthetic"], r.get("landmarks", {})
        rows.append([r["mode"], r["quality"] if r["mode"] != "predict" else "–", syn["vertex_err_mean_mm"],
                     syn["vertex_err_narrow_face_mean_mm"], syn["nme_interocular_mean_%"], syn["cpu_s_per_face"],
                     lm.get("nme_io_mean_%", "–"), lm.get("cpu_s_per_photo", "–")])
    det = next((r["landmarks"]["detector_nme_io_mean_%"] for r in doc["rows"] if "landmarks" in r), None)
    note = [f"Checkpoints: {doc.get('checkpoints')}; {doc['synthetic_n']} synthetic faces (seed 0, true landmarks, "
            f"no detail){f', {lm_n} dev photos (random sample, seed 0)' if lm_n else ''}; CPU seconds of one thread per "
            f"face, loading included; {_where(doc)}."]
    if det is not None:
        note.append(f"dlib's own NME on the same photos (the fit's input): {_fmt(det)} %.")
    return [" ".join(note), ""] + _table(
        ["mode", "quality", "synthetic: vertex error (mm)", "narrow face (mm)", "synthetic: NME (%)",
         "CPU s / face", "dev photos: NME (%)", "CPU s / photo"], rows)


def _steps_to_reach(steps: list[float], errs: list[float], target: float) -> float | None:
    """Fit steps (linear interpolation of the fit's curve) to reach ``target`` mm; None: not within it."""
    for (s0, e0), (s1, e1) in zip(zip(steps, errs), zip(steps[1:], errs[1:])):
        if e1 <= target <= e0 and e0 != e1:
            return s0 + (s1 - s0) * (e0 - target) / (e0 - e1)
    return 0.0 if errs and target >= errs[0] else None


def hybrid_curve(doc: dict) -> list[str]:
    """``bench_modes``' curve: vertex error and CPU time of the coarse fit per schedule scale and start."""
    c = doc["curve"]
    variants = list(c["vertex_err_mean_mm"])
    names = {"fit": "fit", "hybrid": "hybrid", "hybrid_closed_pose": "hybrid, closed-form pose"}
    keys = ["0.0"] + [str(float(s)) for s in c["scales"]]
    rows = []
    for k in keys:
        start = k == "0.0"
        row = ["start (no fit step)" if start else f"{float(k):g}×", 0 if start else c["steps"][k]]
        for v in variants:
            row += [c["vertex_err_mean_mm"][v][k], "–" if start else c["cpu_s_per_face"][v][k]]
        rows.append(row)
    fit_steps = [0] + [c["steps"][k] for k in keys[1:]]
    fit_err = [c["vertex_err_mean_mm"]["fit"][k] for k in keys]
    lines = []
    for v in variants[1:]:
        parts = []
        for k in keys[1:]:
            need = _steps_to_reach(fit_steps, fit_err, c["vertex_err_mean_mm"][v][k])
            parts.append(f"{float(k):g}× ({c['steps'][k]} steps): fit needs "
                         + (f"{need:.0f} steps for the same error" if need is not None else "more than the default schedule"))
        lines.append(f"{names.get(v, v)}: " + "; ".join(parts) + ".")
    header = ["schedule (× default)", "steps"]
    for v in variants:
        header += [f"{names.get(v, v)}: vertex error (mm)", "CPU s / face"]
    return [f"Checkpoints: {doc.get('checkpoints')}; coarse fit only (L_id off), first {c['faces']} synthetic faces "
            f"(seed 0, true landmarks); default schedule 150 landmark + 100 photometric steps, each stage scaled; "
            f"{_where(doc)}.", ""] + _table(header, rows) + [""] + lines


def multiview_detected(doc: dict) -> list[str]:
    """Front + ±50° renders with detected landmarks: mean vertex error per run and detector
    (``bench_multiview_detected``'s ``summary``)."""
    header = ["detector", "mean face", "−50° alone", "0° alone", "+50° alone", "best single view (per head)",
              "joint, unweighted", "joint, yaw term 16 (before)", "joint, view weights", "joint ≤ best single (heads)",
              "detector NME −50° / 0° / +50° (%)", "views lost (NME > 10 % or no face)"]
    rows = []
    for det, t in doc["summary"].items():
        e = t["vertex_error_mm"]
        rows.append([det, t["mean_face_mm"], e["single_-50"], e["single_0"], e["single_+50"], t["best_single_mm"],
                     e["joint_unweighted"], e.get("joint_yaw16", "–"), e["joint"],
                     f"{t['joint_le_best_single']} of {t['heads']} (unweighted {t['joint_unweighted_le_best_single']}, "
                     f"yaw term 16 {t.get('joint_yaw16_le_best_single', '–')})",
                     " / ".join(f"{v:.1f}" for v in t["nme_mean_%"]), " / ".join(str(v) for v in t["lost_views"])])
    return [f"{len(doc['heads'])} heads (seed {doc['seed']}), quality {doc['quality']}, coarse only; vertex error "
            f"in mm (mean over heads, similarity-aligned, narrow face region); {_where(doc)}.", ""] + _table(header, rows)


def multiview_real_vertex(doc: dict) -> list[str]:
    """The grace_hopper frames with detected landmarks: vertex error against the source head
    (``bench_multiview_real --vertex-only``)."""
    v = doc["vertex_error"]
    n = len(doc["frames"]["yaws_deg"])
    header = ["detector", "mean face", *[f"{y:+.0f}° alone" for y in doc["frames"]["yaws_deg"]],
              "joint, unweighted", "joint, yaw term 16 (before)", "joint, view weights", "view weights",
              "detector NME per frame (%)"]
    rows = []
    for det in [k for k in v if k != "mean_face_mm"]:
        r = v[det]["runs"]
        rows.append([det, v["mean_face_mm"], *[r[f"single_{i}"].get("vertex_error_mm", "no face") for i in range(n)],
                     r["joint_unweighted"].get("vertex_error_mm"), r.get("joint_yaw16", {}).get("vertex_error_mm", "–"),
                     r["joint"].get("vertex_error_mm"),
                     " / ".join(f"{w:.2f}" for w in r["joint"].get("view_weights", [])),
                     " / ".join("no face" if x is None else f"{100 * x:.1f}" for x in v[det]["nme"])])
    return [f"Quality {doc['quality']}, coarse only; vertex error in mm against the source head (similarity-aligned, "
            f"narrow face region); {_where(doc)}.", ""] + _table(header, rows)


def _day(doc: dict) -> str:
    return doc.get("created_utc", "?")[:10]


def speed(docs: dict[str, dict | None]) -> list[str]:
    """The README's speed table: seconds per head by photos and quality, the CPU (``fit.json``,
    ``bench_fit``: the process's CPU time, on one thread the wall time of an idle machine and
    unlike it not inflated by other jobs) beside the GPU (``fit_cuda.json``, ``bench_cuda``: warm, default quality and
    high; its high run predates a fix worth ≈ 25 %, as the file's note says), then the CPU shared
    with a busy neighbour (``contention.json``) and predict mode (``predict.json``). Peak memory
    stays in ``fit.json`` (docs/speed.md)."""
    fit, cuda, cont, pred = (docs.get(k) for k in ("fit", "fit_cuda", "contention", "predict"))
    gpu: dict[str, str] = {}
    gpu_name = "GPU"
    if cuda:
        gpu_name = (cuda.get("machine") or {}).get("gpu", "GPU").replace("NVIDIA ", "")
        c = cuda["cases"]
        if "photo_grace_hopper" in c:
            gpu["default_1view"] = f"{c['photo_grace_hopper']['warm']['wall_s']:.1f}"
            if "free" in c:
                gpu["default_1view"] += f" ({c['free']['warm']['wall_s']:.1f} `--nondeterministic`)"
        if "high" in c:
            gpu["high_1view"] = f"{c['high']['wall_s']:.1f}"  # the file's note: an earlier run, ≈ 25 % slow
    rows = []
    cpu = (fit or {}).get("cases") or {}
    order = {"draft": 0, "default": 1, "high": 2}
    for key in sorted({*cpu, *gpu}, key=lambda k: (k.rsplit("_", 1)[1], order.get(k.rsplit("_", 1)[0], 3))):
        quality, views = key.rsplit("_", 1)
        secs = cpu.get(key, {}).get("cpu_s")  # one thread: its CPU time is the idle machine's wall time
        rows.append([views.replace("view", ""), quality, "–" if secs is None else f"{secs:.1f}", gpu.get(key, "–")])
    m = (fit or {}).get("machine") or {}
    load = f", load {m['loadavg_1m']:.1f}" if m.get("loadavg_1m") is not None else ""
    threads = "/".join(str(t) for t in sorted({c["threads"] for c in (fit or {}).get("cases", {}).values() if "threads" in c}))
    head = (f"CPU: {m.get('cpu_count', '?')} cores, {threads or '?'} thread{'' if threads == '1' else '(s)'}, CPU time, "
            f"{_day(fit)}{load}" if fit
            else "CPU: not measured")
    head += f"; {gpu_name}: {_day(cuda)}, warm." if cuda else "."
    out = [head, ""]
    out += _table(["photos", "quality", "CPU (s)", f"{gpu_name} (s)"], rows)
    if cont:
        cases, parts = cont["cases"], []
        ours = ("one", "one thread (default)") if "one_alone" in cases else ("on", "two sleeping threads")
        for policy, label in (ours, ("off", "torch's defaults")):
            alone = cases.get(f"{policy}_alone")
            if alone:
                parts.append(f"{label} {alone['wall_s']:.1f} s alone" + "".join(
                    f", {cases[f'{policy}_{n}']['ratio']:.1f}× beside {what}" for n, what in (("busy", "a busy loop"),
                    ("fit", "another fit")) if f"{policy}_{n}" in cases))
        loads = [v for c in cases.values() for v in c.get("loadavg_1m_before_runs", [])]
        load = f", load {min(loads):.1f}–{max(loads):.1f}" if loads else ""
        runs = len(next(iter(cases.values()))["wall_runs_s"])
        out += ["", f"Shared CPU ({_day(cont)}, medians of {runs}{load}): " + "; ".join(parts) + "."]
    if pred and pred["predict"].get("grace_hopper/default"):
        p = pred["predict"]["grace_hopper/default"]
        if "cpu_s_per_photo_with_detection" in p:
            out += ["", f"Predict mode: {p['cpu_s_per_photo_with_detection']:.2f} s of CPU a photo, one thread, "
                        f"default quality ({_day(pred)})."]
        else:
            out += ["", f"Predict mode: {p['per_photo_s_with_detection']:.2f} s a photo on the CPU ({_day(pred)})."]
    return out


#: table name → (results file stem or stems, renderer)
TABLES: dict[str, tuple[str | tuple[str, ...], Callable[[Any], list[str]]]] = {
    "predict_time": ("predict", predict_time),
    "hybrid_vs_fit": ("predict", hybrid_vs_fit),
    "hybrid_vs_fit_synth_init": ("predict_synth_init", hybrid_vs_fit),
    "exp_clamp": ("exp_clamp", exp_clamp),
    "prepare_speed": ("prepare", prepare_speed),
    "modes": ("modes", modes),
    "hybrid_curve": ("hybrid_curve", hybrid_curve),
    "multiview_detected": ("multiview_detected", multiview_detected),
    "multiview_real_vertex": ("multiview_real_vertex", multiview_real_vertex),
    "speed": (("fit", "fit_cuda", "contention", "predict"), speed),
}

#: the documents with generated tables, relative to the repository root
DOCS = ("docs/training.md", "README.md", "docs/multiview.md")


def render(name: str, results: Path) -> str:
    """The block for table ``name`` (markers included) from ``results/<file>.json``."""
    stem, fn = TABLES[name]
    stems = stem if isinstance(stem, tuple) else (stem,)
    files = f"benchmarks/results/{stem}.json" if len(stems) == 1 else f"benchmarks/results/{{{','.join(stems)}}}.json"
    source = f"<!-- generated by `python -m benchmarks.doc_tables` from {files}: do not edit -->"
    if isinstance(stem, tuple):
        body = fn({s: json.loads((results / f"{s}.json").read_text()) if (results / f"{s}.json").is_file() else None
                   for s in stems})
    elif (results / f"{stem}.json").is_file():
        body = fn(json.loads((results / f"{stem}.json").read_text()))
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
    ap.add_argument("--doc", type=Path, action="append", help=f"a document to rebuild (default: {', '.join(DOCS)})")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--check", action="store_true", help="exit 1 when a doc is out of date, write nothing")
    args = ap.parse_args(argv)
    stale = 0
    for doc in args.doc or [ROOT / d for d in DOCS]:
        text = doc.read_text()
        new = update(text, args.results)
        if new == text:
            continue
        if args.check:
            print(f"{doc} is out of date: run python -m benchmarks.doc_tables", file=sys.stderr)
            stale = 1
            continue
        from backend.io_utils import atomic_write_text

        atomic_write_text(doc, new)
    return stale


if __name__ == "__main__":
    sys.exit(main())
