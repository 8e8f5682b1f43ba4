"""The README and docs/*.md: every relative link resolves, no link leaves the repository, and the
README stays a short user's guide."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_BYTES = 12_800  # "at most ~12 KB"

# [text](target) and ![alt](target); the target ends at whitespace or ")". Code spans are dropped first.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = CODE.sub("", path.read_text(encoding="utf-8")) if path.suffix == ".md" else ""
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def links(path: Path) -> list[str]:
    """Link targets in a Markdown file, outside code spans and blocks."""
    return LINK.findall(CODE.sub("", path.read_text(encoding="utf-8")))


def test_link_parser_finds_links_and_skips_code(tmp_path):
    md = tmp_path / "a.md"
    md.write_text("See [x](docs/x.md) and ![img](i.png \"t\").\n`[no](not.md)`\n```\n[no](also.md)\n```\n"
                  "[web](https://example.com) [here](#a-b)\n")
    assert links(md) == ["docs/x.md", "i.png", "https://example.com", "#a-b"]
    assert _slug("Landmark convention (which vertex stands for each 2-D landmark)") == \
        "landmark-convention-which-vertex-stands-for-each-2-d-landmark"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve_inside_the_repository(doc):
    bad = []
    for target in links(doc):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ... not checked offline
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if ROOT not in dest.parents and dest != ROOT:
            bad.append(f"{target}: outside the repository")
        elif not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not bad, f"{doc.relative_to(ROOT)}: " + "; ".join(bad)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_reference_to_files_outside_the_repository(doc):
    # ../shared/models: the Makefile's development model folder, named as such; not a link
    text = doc.read_text(encoding="utf-8").replace("../shared/models", "")
    found = [w for w in ("PAPER.md", "MEASURED.md", "/work/", "/shared/", "../shared") if w in text]
    assert not found, f"{doc.relative_to(ROOT)} names files outside the repository: {found}"


def test_readme_is_a_short_guide():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes, over {README_MAX_BYTES}: move detail into docs/"


def test_results_page_is_generated_from_the_current_results():
    from evaluation.results_page import render_page

    page = ROOT / "docs" / "results.md"
    assert page.read_text(encoding="utf-8") == render_page(ROOT / "docs" / "results"), \
        "docs/results.md is out of date: run python -m evaluation.results_page"


def test_readme_results_summary_matches_the_result_files():
    """The README's hand-written summary quotes the current result files (re-run a suite: update both)."""
    import json

    def summary(name):
        return json.loads((ROOT / "docs" / "results" / name / "results.json").read_text())["summary"]

    base = json.loads((ROOT / "benchmarks" / "results" / "mean_face.json").read_text())
    truth, detected, depth = summary("synthetic"), summary("synthetic_detector"), summary("depth")
    rows = {"face regions": ("vertex_err_mean_mm", "mean_face_err_mean_mm"),
            "narrow face": ("vertex_err_narrow_face_mean_mm", "mean_face_err_narrow_face_mean_mm")}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for label, (key, mean_key) in rows.items():  # the detector suite's renders carry their own mean face
        want = (f"| vertex error, {label} | {base['variants']['synthetic'][key]:.2f} mm | {truth[key]:.2f} mm | "
                f"**{detected[key]:.2f} mm** (mean face there {detected[mean_key]:.2f} mm) |")
        assert want in readme, f"README's results table should read: {want}"
    want = f"{depth['depth_err_minmax_mean_mm']:.2f} ± {depth['depth_err_minmax_std_mm']:.2f} mm"
    assert want in readme and f"{base['depth']['depth_err_minmax_mean_mm']:.2f} mm" in readme
    detail = summary("synthetic_detail")
    assert f"map {detail['disp_corr_mean']:.2f}" in readme and f"give {detail['disp_corr_oracle_mean']:.2f}" in readme
    lm = summary("landmarks")
    assert f"NME is {lm['nme_io_mean_%']:.2f} %" in readme and f"dlib's own {lm['detector_nme_io_mean_%']:.2f} %" in readme
