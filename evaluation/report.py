"""Evaluation reports: ``results.json`` + ``report.md`` (Markdown tables) + PNG plots.

``results`` layout understood by :func:`write_report` (all keys optional except as noted)::

    {"suite": str, "summary": {metric: number}, "tables": {title: [row dict, ...]},
     "plots": {name: {"kind": "hist"|"bar"|"cdf", "values"/"labels"/"x"...}},
     "images": {name: (H,W,3) uint8},          # written as <name>.png, not into results.json
     "per_item": [dict, ...], "config": {...}, "machine": {...}}

Everything in ``results`` goes to results.json (numpy values converted, NaN → null).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from backend.export import encode_png
from backend.io_utils import atomic_path, atomic_write_bytes, atomic_write_text, to_jsonable

__all__ = ["write_report", "markdown_table", "jsonable"]


jsonable = to_jsonable  # numpy/Path/containers → plain JSON values (non-finite floats → None)


def _cell(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return "–"
        return f"{float(v):.4g}"
    if v is None:
        return "–"
    return str(v).replace("|", "\\|")


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A GitHub Markdown table of ``rows`` (columns: the union of keys in first-seen order)."""
    if not rows:
        return "_(no rows)_\n"
    if columns is None:
        columns = []
        for r in rows:
            columns.extend(k for k in r if k not in columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _plot(spec: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib  # lazy: only for plots (photohead's parser imports this package)

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # lazy: only for plots (photohead's parser imports this package)

    fig = Figure(figsize=(5.0, 3.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    kind = spec.get("kind", "hist")
    if kind == "hist":
        v = np.asarray(spec.get("values", []), np.float64)
        ax.hist(v[np.isfinite(v)], bins=spec.get("bins", 20), color="#4878a8")
    elif kind == "bar":
        vals = np.asarray(spec.get("values", []), np.float64)
        ax.bar([str(x) for x in spec.get("labels", range(len(vals)))], np.nan_to_num(vals), color="#4878a8")
    elif kind == "cdf":
        v = np.sort(np.asarray(spec.get("values", []), np.float64))
        v = v[np.isfinite(v)]
        if v.size:
            ax.plot(v, np.arange(1, v.size + 1) / v.size, color="#4878a8")
        ax.set_ylim(0, 1)
        ax.set_ylabel("fraction")
    else:
        raise ValueError(f"unknown plot kind {kind!r}: use 'hist', 'bar' or 'cdf'")
    ax.set_xlabel(spec.get("xlabel", ""))
    if "ylabel" in spec:
        ax.set_ylabel(spec["ylabel"])
    ax.set_title(spec.get("title", title))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def write_report(results: dict[str, Any], out_dir: str | Path, title: str) -> dict[str, Path]:
    """Write ``results.json``, ``report.md`` and one ``<name>.png`` per entry of ``results["plots"]``
    and ``results["images"]``.

    Returns {"json", "markdown", <plot name>: path}.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    doc = jsonable({k: v for k, v in results.items() if k != "images"})
    written["json"] = atomic_write_text(out_dir / "results.json", json.dumps(doc, indent=1, allow_nan=False) + "\n")
    md = [f"# {title}\n"]
    if results.get("description"):
        md.append(str(results["description"]) + "\n")
    if results.get("summary"):
        md.append("## Summary\n")
        md.append(markdown_table([{"metric": k, "value": v} for k, v in results["summary"].items()]))
    for name, rows in (results.get("tables") or {}).items():
        md.append(f"## {name}\n")
        md.append(markdown_table(list(rows)))
    for name, spec in (results.get("plots") or {}).items():
        path = out_dir / f"{name}.png"
        _plot(spec, path, name)
        written[name] = path
        md.append(f"![{name}]({path.name})\n")
    for name, image in (results.get("images") or {}).items():
        path = out_dir / f"{name}.png"
        atomic_write_bytes(path, encode_png(np.asarray(image)))
        written[name] = path
        md.append(f"![{name}]({path.name})\n")
    if results.get("machine"):
        md.append("## Machine\n")
        md.append(markdown_table([{"key": k, "value": v} for k, v in results["machine"].items()]))
    written["markdown"] = atomic_write_text(out_dir / "report.md", "\n".join(md))
    return written
