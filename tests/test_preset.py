"""Quality presets resolved in one place; the CLI's subcommands (evaluate from the evaluation package)."""
from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from backend import cli
from backend.errors import PhotoheadError
from backend.preset import PRESETS, Preset, resolve_preset
from backend.quality import DEFAULT, DRAFT, HIGH, QUALITIES, QUALITY_NAMES

ROOT = Path(__file__).resolve().parents[1]


def test_every_quality_has_one_preset_in_speed_order():
    assert QUALITY_NAMES == (DRAFT, DEFAULT, HIGH) == tuple(PRESETS) == tuple(QUALITIES)
    assert all(isinstance(p, Preset) for p in PRESETS.values())
    res = [PRESETS[q] for q in QUALITY_NAMES]
    assert [p.albedo_res for p in res] == [256, 512, 1024]
    assert [p.detail.uv_size for p in res] == [128, 256, 512]
    steps = [p.coarse.landmark_steps + sum(n for _, n in p.coarse.photo_schedule) for p in res]
    assert steps == sorted(steps) and len(set(steps)) == 3
    assert resolve_preset(HIGH) is PRESETS[HIGH]
    with pytest.raises(PhotoheadError, match="unknown quality 'ultra': use draft, default, high"):
        resolve_preset("ultra")
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS[DRAFT].albedo_res = 1


def test_quality_names_are_written_once():
    """Each quality name is a string literal once in the product (backend, evaluation, addon, training)."""
    found: dict[str, list[str]] = {name: [] for name in QUALITY_NAMES}
    for folder in ("backend", "evaluation", "addon", "training"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in found:
                    found[node.value].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert {k: len(v) for k, v in found.items()} == dict.fromkeys(QUALITY_NAMES, 1), found


def test_quality_module_imports_nothing():
    """The add-on's panel reads the names at registration, in Blender's process: no torch, no numpy."""
    code = ("import sys, backend.quality; bad = [m for m in ('torch', 'numpy') if m in sys.modules]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_cli_registers_evaluate_from_the_evaluation_package():
    choices = next(a for a in cli.build_parser()._actions if a.dest == "command").choices
    assert set(choices) == {"reconstruct", "models", "train", "evaluate"}
    assert choices["evaluate"].get_default("handler") is None  # the suites are sub-subcommands
    assert [m for _, m, _ in cli.OPTIONAL_COMMANDS] == ["evaluation.command"]


def test_cli_fails_loudly_when_a_present_optional_command_cannot_import(monkeypatch):
    monkeypatch.setattr(cli, "OPTIONAL_COMMANDS", (("evaluation", "evaluation.no_such_module", "test"),))
    with pytest.raises(ModuleNotFoundError, match="evaluation.no_such_module"):
        cli.build_parser()
    monkeypatch.setattr(cli, "OPTIONAL_COMMANDS", (("no_such_package_xyz", "no_such_package_xyz.command", "test"),))
    choices = next(a for a in cli.build_parser()._actions if a.dest == "command").choices
    assert "evaluate" not in choices  # an absent package: its commands are simply not offered
