"""Command line interface: `vpunas <command> ...`.

Each command lives in the module that owns the feature and exposes `register(subparsers)`, which adds
its parser and sets `func` (called with the parsed args, returns an exit code). Modules are imported
only when listed here, so `vpunas --help` stays fast and a broken optional dependency only breaks its
own command.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# (module, attribute) pairs; each attribute is a `register(subparsers)` function.
COMMAND_MODULES = [
    "vpunas.commands.predict",
    "vpunas.commands.profile",
    "vpunas.commands.search",
    "vpunas.commands.bench",
    "vpunas.commands.lint",
    "vpunas.commands.lut",
]


class UserError(Exception):
    """An error caused by the user's input; printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vpunas", description="Hardware-aware NAS for Intel VPUs / NPUs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError) as exc:
        print(f"vpunas {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
