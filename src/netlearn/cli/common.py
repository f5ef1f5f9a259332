"""Shared pieces of the command line: errors, parsers of option values, data loading."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from .. import costs, init
from ..layers import activations


class UsageError(Exception):
    """Bad options or unusable data: printed as one line, exit status 2."""


def error_exit(message: str, status: int = 2) -> int:
    print(f"netlearn: error: {message}", file=sys.stderr)
    return status


def _number(cast, what: str, ok, bound: str):
    """An argparse ``type``: ``cast`` the text, then check it with ``ok``; errors name the value and the rule."""

    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text!r}")
        return v

    return parse


positive_float = _number(float, "a number", lambda v: np.isfinite(v) and v > 0, "a positive number")
nonneg_float = _number(float, "a number", lambda v: np.isfinite(v) and v >= 0, "a number >= 0")
positive_int = _number(int, "a whole number", lambda v: v >= 1, "a whole number >= 1")
nonneg_int = _number(int, "a whole number", lambda v: v >= 0, "a whole number >= 0")


def _sizes(text: str, least: int, example: str) -> list[int]:
    """Comma-separated positive layer sizes, at least ``least`` of them (an argparse ``type``)."""
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like {example}, got {text!r}") from None
    if len(sizes) < least or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected {'at least two ' if least > 1 else ''}positive layer sizes like "
                                         f"{example}, got {text!r}")
    return sizes


def layer_sizes(text: str) -> list[int]:
    """``784,30,10``: every layer's size, input first."""
    return _sizes(text, 2, "784,30,10")


def name_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def hidden_activation(names: list[str]) -> str | list[str]:
    """``--activation``'s value for ``Network``: one name, or one per hidden layer; softmax is refused.

    Softmax makes a layer's outputs one probability distribution (they sum to
    1), which is what a log-likelihood output layer needs; in a hidden layer it
    would make the neurons compete for one unit of activation and starve the
    next layer, so it is refused with the way to get what was meant.
    """
    if any(n.lower() == "softmax" for n in names):
        raise UsageError("--activation softmax: softmax is an output layer's activation (its neurons' outputs sum "
                         "to 1, a probability for each class), not a hidden layer's. Use --output softmax or "
                         "--cost log-likelihood (whose output it is by default), and one of "
                         f"{', '.join(activations.HIDDEN)} for the hidden layers.")
    return names[0] if len(names) == 1 else names


def add_network_options(p: argparse.ArgumentParser) -> None:
    """The architecture options that ``train`` and ``grid`` share."""
    # Each help names its default through '%(default)', so ArgumentDefaultsHelpFormatter adds no second one.
    p.add_argument("--layers", type=layer_sizes, default=[784, 30, 10], metavar="N,N,...",
                   help="neurons per layer, input first (default: 784,30,10)%(default).0s")
    p.add_argument("--activation", type=name_list, default=["sigmoid"], metavar="NAME[,NAME...]",
                   help=f"hidden activation: {', '.join(activations.HIDDEN)}; one name or one per hidden layer "
                        "(default: sigmoid)%(default).0s")
    p.add_argument("--output", default=None, metavar="NAME",
                   help=f"output activation: {', '.join(k for k in activations.ACTIVATIONS if k != 'linear')} "
                        "(default: the cost's natural partner)%(default).0s")
    p.add_argument("--cost", default="cross-entropy", choices=list(costs.COSTS),
                   help="cost function; each has its natural output activation (see --output); for regression "
                        "data quadratic, with an identity output")
    p.add_argument("--init", default="default", choices=list(init.INITIALIZERS),
                   help="weight initialization: default N(0,1/n_in), large N(0,1), glorot, he "
                        "(default: %(default)s)")


def add_split_options(p: argparse.ArgumentParser) -> None:
    """Which data is monitored and how much training data is used (``train`` and ``grid``)."""
    p.add_argument("--eval", choices=["validation", "test"], default="validation",
                   help="data monitored after each epoch (default: %(default)s)")
    p.add_argument("--train-size", type=positive_int, default=None, metavar="N",
                   help="train on the first N training images only (default: all of them)")


DATA_SETS = ("mnist", "fashion-mnist")


def data_source(text: str) -> str:
    """An argparse ``type`` for ``--data``: a data set's name, or a ``.csv`` / ``.npz`` file of the user's own."""
    from ..data.tabular import is_table_file

    if text in DATA_SETS or is_table_file(text):
        return text
    raise argparse.ArgumentTypeError(f"expected {' or '.join(DATA_SETS)}, or your own data as a .csv file (with a "
                                     f"header) or a .npz file (arrays X and y), got {text!r}")


def own_data(args) -> bool:
    """Did ``--data`` name a file of the user's own rather than MNIST or Fashion-MNIST?"""
    return getattr(args, "data", None) not in DATA_SETS


def add_data_options(p: argparse.ArgumentParser, files: bool = False) -> None:
    """``--data`` and ``--data-dir``; with ``files``, ``--data`` also takes the user's CSV or .npz file."""
    # '%(default)' in a help text stops ArgumentDefaultsHelpFormatter from appending "(default: ...)" again;
    # '%(default).0s' prints nothing, for a default (None) that the text explains better.
    if files:
        p.add_argument("--data", type=data_source, default="mnist", metavar="mnist|fashion-mnist|FILE",
                       help="data set, or your own FILE.csv (with a header line) or FILE.npz (arrays X and y) "
                            "(default: %(default)s)")
    else:
        p.add_argument("--data", choices=DATA_SETS, default="mnist", help="data set (default: %(default)s)")
    p.add_argument("--data-dir", metavar="ROOT", default=None,
                   help="data root holding mnist/ and fashion-mnist/ (default: $NETLEARN_DATA, else the per-user "
                        "cache)%(default).0s")


def load_data(args):
    """``(training, validation, test)`` for the options, or a UsageError."""
    from ..data.mnist import DataError, load_dataset

    try:
        return load_dataset(args.data, args.data_dir)
    except DataError as exc:
        raise UsageError(str(exc)) from None


def add_table_options(p: argparse.ArgumentParser, training: bool = True) -> None:
    """The options of ``--data FILE``: the target column and, for training, task, scaling and held-out data."""
    g = p.add_argument_group("your own data (--data FILE.csv or FILE.npz)")
    g.add_argument("--target", metavar="COLUMN", default=None,
                   help="the CSV column to predict (default: the column named label, target or y, else the "
                        "last)%(default).0s")
    if not training:
        return
    g.add_argument("--task", choices=["classification", "regression"], default=None,
                   help="what to learn (default: inferred; integer targets with at most 20 distinct values are "
                        "classes, other numbers regression, text labels classes)%(default).0s")
    g.add_argument("--scale", choices=["standard", "minmax", "none"], default="standard",
                   help="scaling of the inputs and of regression targets, learned on the training rows and "
                        "stored in the saved model (default: %(default)s)")
    g.add_argument("--validation-split", type=_fraction, default=None, metavar="F",
                   help="hold out this fraction of FILE's rows for validation, seeded by --seed and stratified "
                        "by class (default: 0.2, or none with --validation FILE); 0 holds out none%(default).0s")
    g.add_argument("--validation", metavar="FILE", default=None,
                   help="validation rows in a file with the same columns (default: --validation-split of --data)%(default).0s")
    g.add_argument("--test", metavar="FILE", default=None,
                   help="test rows in a file with the same columns, used by --eval test (default: none)%(default).0s")


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction like 0.2, got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return v


def hidden_sizes(text: str) -> list[int]:
    """``64`` or ``64,32``: the hidden layers' sizes."""
    return _sizes(text, 1, "64,32")


def load_own_data(args):
    """The :class:`netlearn.data.tabular.TabularData` for ``--data FILE`` and its options, or a UsageError."""
    from ..data.mnist import DataError
    from ..data.tabular import load_tabular

    split = args.validation_split
    if split is None:
        split = 0.0 if args.validation is not None else 0.2
    elif args.validation is not None and split:
        raise UsageError("give --validation FILE or --validation-split F, not both.")
    try:
        return load_tabular(args.data, target=args.target, task=args.task, scale=args.scale,
                            validation=args.validation, validation_split=split or None, test=args.test,
                            seed=args.seed)
    except DataError as exc:
        raise UsageError(str(exc)) from None


GIVEN = "given_options"


def track_given(parser: argparse.ArgumentParser) -> None:
    """Record, in ``args.given_options``, the dest of every option actually written on the command line.

    argparse fills unstated options with their defaults, so a default cannot
    be told from a value the user typed; ``--resume`` needs to know (it
    compares only what was given with the checkpoint's settings).  Each
    action's class is swapped for a subclass that notes its dest when
    argparse calls it, which it does only for options present in argv.
    Call it after the parser's last ``add_argument``.
    """
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or getattr(type(action), "_tracks_given", False):
            continue
        base = type(action)

        def __call__(self, parser, namespace, values, option_string=None, _base=base):
            getattr(namespace, GIVEN).add(self.dest) if hasattr(namespace, GIVEN) else \
                setattr(namespace, GIVEN, {self.dest})
            return _base.__call__(self, parser, namespace, values, option_string)

        action.__class__ = type(base.__name__, (base,), {"__call__": __call__, "_tracks_given": True})


def given(args) -> set:
    """The dests of the options written on the command line (see :func:`track_given`)."""
    return set(getattr(args, GIVEN, ()) or ())
