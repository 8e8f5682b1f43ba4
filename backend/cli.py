"""``photohead`` command line: ``reconstruct``, ``models``, ``evaluate``, ``train``, ``benchmark``.

Each subcommand lives in ``backend/commands/<name>.py`` with ``register(subparsers)``; the
handler it sets returns an exit code. :class:`PhotoheadError` becomes a one-line message and
exit code 2 (the checks in :mod:`backend.validate` raise them before any work).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import PhotoheadError
from .threads import apply_process_policy
from .validate import one_line

COMMANDS = ("reconstruct", "models", "evaluate", "train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photohead", description="Photos in, detailed 3D heads out.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(f"commands.{name}"):
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    apply_process_policy()  # before the subcommands import torch (backend.threads says why)
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except PhotoheadError as exc:
        print(f"photohead: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("photohead: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
