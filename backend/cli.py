"""``photohead`` command line: ``reconstruct``, ``models``, ``train`` and, from the repository,
``evaluate``.

Each backend subcommand lives in ``backend/commands/<name>.py`` with ``register(subparsers)``;
the handler it sets returns an exit code. ``evaluate`` lives in the top-level ``evaluation``
package (a layer above the backend), registered the same way when that package is installed.
:class:`PhotoheadError` becomes a one-line message and exit code 2 (the checks in
:mod:`backend.validate` raise them before any work).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from .commands import models, reconstruct, train
from .errors import PhotoheadError
from .threads import apply_process_policy
from .validate import one_line

COMMANDS = (reconstruct, models, train)
# Subcommands of packages above the backend: (package, module with register(), why it may be absent).
# Only a missing package is skipped; a present one that fails to import fails loudly.
OPTIONAL_COMMANDS = (
    ("evaluation", "evaluation.command",
     "the evaluation suites ship with the repository and its wheel, not with the Blender extension"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photohead", description="Photos in, detailed 3D heads out.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    for package, module_name, _why_optional in OPTIONAL_COMMANDS:
        if importlib.util.find_spec(package) is not None:
            importlib.import_module(module_name).register(sub)
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
