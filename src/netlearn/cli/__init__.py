"""The ``netlearn`` command: a thin layer over the Python API.

Each sub-command lives in its own module and registers itself here.  Bad
options and unusable data end with a one-line message on standard error and
exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .common import UsageError, error_exit


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that states each option's default once.

    ``(default: X)`` is appended unless the help text already gives the
    default (it contains ``(default`` or ``%(default``).  A flag says
    ``(default: off)``; an option whose default is ``None`` means "not given",
    which only its own text can explain, so it gets nothing appended (the
    CLI's tests check that every option's help names its default).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or "%(default" in text or not action.option_strings \
                or action.default is argparse.SUPPRESS:
            return text
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return f"{text} (default: {'off' if action.default is False else 'on'})"
        if action.default is None:
            return text
        return text + " (default: %(default)s)"


class RawDescriptionDefaultsFormatter(argparse.RawDescriptionHelpFormatter, DefaultsFormatter):
    """:class:`DefaultsFormatter` that keeps the description's own line breaks."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on standard error (exit status 2), no usage dump.

    Every (sub-)parser formats its help with :class:`DefaultsFormatter`, so
    each option shows its default once; a parser asking for a raw
    description keeps it.
    """

    def __init__(self, *args, formatter_class=argparse.HelpFormatter, **kwargs) -> None:
        raw = issubclass(formatter_class, argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, formatter_class=RawDescriptionDefaultsFormatter if raw else DefaultsFormatter,
                         **kwargs)

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
    for name in ("evaluate", "predict", "inspect", "data", "reproduce", "grid", "tune", "search"):
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


def _closed_pipe() -> int:
    """The reader of standard output went away (``netlearn data info | head``): stop quietly.

    Standard output is pointed at the null device, so the interpreter's own
    flush at exit finds nothing to complain about; the status is 141, the
    shell's for a command ended by SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away shows up here, not as a traceback at exit
        return status
    except BrokenPipeError:
        return _closed_pipe()
    except UsageError as exc:
        return error_exit(str(exc))
    except KeyboardInterrupt:
        print("netlearn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
