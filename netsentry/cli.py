"""``netsentry``: the command a user runs.  Each part registers its own subcommands.

A part is a module with ``register(subparsers)`` that adds its subcommands, each with
``set_defaults(func=handler)`` where ``handler(args) -> int`` is the exit status.  This module
knows only the list of parts, so the sensor and the lab stay independent of each other.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Modules that add subcommands, in the order ``--help`` lists them.
PARTS: tuple[str, ...] = ("serve.cli", "lab.cli")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every part's subcommands."""
    parser = argparse.ArgumentParser(
        prog="netsentry",
        description="Network intrusion detection: classify captures, run a sensor, run the attack lab.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in PARTS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen subcommand; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("netsentry: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
