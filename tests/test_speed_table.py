"""The README's speed table is generated from the benchmark JSON (benchmarks.doc_tables)."""
import json

from benchmarks.doc_tables import ROOT, render


def test_readme_speed_table_comes_from_the_json(tmp_path):
    results = ROOT / "benchmarks" / "results"
    fit = json.loads((results / "fit.json").read_text())
    cuda = json.loads((results / "fit_cuda.json").read_text())
    block = render("speed", results)
    assert block in (ROOT / "README.md").read_text(), "README.md is out of date: run python -m benchmarks.doc_tables"
    row = next(line for line in block.splitlines() if line.startswith("| 1 | default |"))
    assert f"| {fit['cases']['default_1view']['cpu_s']:.1f} |" in row  # CPU time: one thread, load-proof
    assert f"{cuda['cases']['photo_grace_hopper']['warm']['wall_s']:.1f}" in row
    empty = render("speed", tmp_path)  # no results files: says so, no numbers
    assert "not measured" in empty and "| 1 |" not in empty
