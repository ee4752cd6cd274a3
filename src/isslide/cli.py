"""``isslide`` command line. Each stage adds its subcommands through a module in SUBCOMMANDS
that exposes ``add_parser(subparsers)``; the parser's ``func(args)`` does the work."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from . import __version__
from .errors import IsslideError

SUBCOMMANDS = [
    "isslide.cli_plan",
    "isslide.cli_train",
    "isslide.cli_dataset",
    "isslide.cli_detect",
    "isslide.snap.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isslide", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"isslide {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except IsslideError as exc:
        print(f"isslide: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
