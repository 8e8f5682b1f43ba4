"""``photohead train prepare|synth|coarse|detail|albedo-basis [--key=value ...]``: launches the trainers in
``training/`` (a layer above the backend) as ``python -m training.<stage>`` so the backend never
imports them. Every argument after the stage is passed through (see ``--help`` of each)."""
from __future__ import annotations

import argparse
import subprocess
import sys

STAGES = {"prepare": "training.prepare", "synth": "training.synth", "coarse": "training.coarse",
          "detail": "training.detail", "albedo-basis": "training.albedo_basis"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="prepare the training cache, train stage 1 (coarse) or stage 2 (detail)")
    p.add_argument("stage", choices=sorted(STAGES))
    p.add_argument("args", nargs=argparse.REMAINDER, help="trainer arguments, e.g. --data DIR --out RUN --lr=1e-4")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return subprocess.call([sys.executable, "-m", STAGES[args.stage], *args.args])
