"""The ``netlearn`` command: a thin layer over the Python API.

Each sub-command lives in its own module and registers itself here.  Bad
options and unusable data end with a one-line message on standard error and
exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .common import UsageError, error_exit


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on standard error (exit status 2), no usage dump."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from . import train

    parser = Parser(
        prog="netlearn",
        description="Train and study fully-connected feed-forward neural networks (back-propagation, SGD).",
    )
    parser.add_argument("--version", action="version", version=f"netlearn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    train.register(sub)
    for name in ("evaluate", "predict", "data", "reproduce", "grid", "search"):
        try:
            mod = __import__(f"netlearn.cli.{name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"netlearn.cli.{name}":
                raise
            continue
        mod.register(sub)
    return parser


def _version() -> str:
    from netlearn import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        return error_exit(str(exc))
    except KeyboardInterrupt:
        print("netlearn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
