"""``netlearn evaluate MODEL``: how well a saved network does on a split of MNIST or on a file of rows.

Classification: accuracy and mean cost; regression: R², RMSE, MAE and cost.
``--json FILE`` writes the same figures for scripts: ``{"accuracy", "cost"}``
or ``{"r2", "rmse", "mae", "cost"}``.  A file (``--data FILE``) is read with
the model's own columns, scaling and class labels, and scored whole.
"""
from __future__ import annotations

import argparse
import json

from .common import UsageError, add_data_options, add_table_options, load_data, own_data


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy and cost (or R², RMSE, MAE) of a saved model on data",
                       description="Load a network saved by 'netlearn train --save' (or the book's network2.py "
                                   "JSON) and report its accuracy and mean cost on a split of the data, or on "
                                   "your own file (the whole file, with the scaling saved in the model).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="model file (netlearn or network2 JSON)")
    add_data_options(p, files=True)
    add_table_options(p, training=False)
    p.add_argument("--split", choices=["validation", "test", "training"], default="test",
                   help="which split of mnist or fashion-mnist to evaluate on (default: %(default)s; the book's "
                        "split: training 50,000, validation 10,000, test 10,000)")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="write the figures as JSON: {accuracy, cost} or {r2, rmse, mae, cost} (default: not written)%(default).0s")
    p.set_defaults(func=run)


def load_model(path: str):
    """The network in ``path``, or a UsageError naming what is wrong with the file."""
    from ..io import ModelFileError, load

    try:
        return load(path)
    except FileNotFoundError:
        raise UsageError(f"no model file at {path}; train and save one with: netlearn train --save {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a folder, not a model file.") from None
    except ModelFileError as exc:
        raise UsageError(f"cannot use the model: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read the model {path}: {exc.strerror or exc}.") from None


def check_fits(net, n_features: int, n_classes: int, what: str) -> None:
    """Refuse a network whose input or output layer does not match the data."""
    if net.n_in != n_features:
        raise UsageError(f"the model takes {net.n_in} inputs but {what} has {n_features} pixels per image; "
                         f"use a model trained on this data.")
    if net.n_out < n_classes:
        raise UsageError(f"the model has {net.n_out} outputs but {what} has {n_classes} classes.")


def evaluation_data(args, net) -> tuple:
    """``(X, y, description)`` of what ``evaluate`` and ``inspect`` score: a split of MNIST or the user's file."""
    import numpy as np

    if own_data(args):
        from ..data.mnist import DataError
        from ..data.tabular import read_for_model

        try:
            X, y, _ = read_for_model(args.data, net.preprocessing, net.n_in, target=args.target)
        except DataError as exc:
            raise UsageError(str(exc)) from None
        if net.task == "classification" and y.ndim == 1 and y.size and int(y.max()) >= net.n_out:
            raise UsageError(f"{args.data} has labels up to {int(y.max())} but the model has {net.n_out} outputs.")
        return X, y, args.data
    if net.preprocessing is not None and net.preprocessing.features:
        raise UsageError(f"the model was trained on rows with columns {', '.join(net.preprocessing.features[:6])}; "
                         f"give such a file with --data FILE.")
    if getattr(args, "target", None) is not None:
        raise UsageError(f"--target applies to your own data (--data FILE.csv), not to {args.data}.")
    training, validation, test = load_data(args)
    X, y = {"training": training, "validation": validation, "test": test}[args.split]
    check_fits(net, X.shape[1], int(np.max(y)) + 1, f"the {args.data} {args.split} data")
    if net.task == "regression":
        raise UsageError(f"the model does regression; {args.data} holds classes. Evaluate it on --data FILE.")
    return X.astype(net.dtype, copy=False), y, args.split


def run(args) -> int:
    from .. import metrics

    net = load_model(args.model)
    X, y, what = evaluation_data(args, net)
    try:
        figures = metrics.scores(net, X, y)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        from ..io import atomic_write_text

        try:
            atomic_write_text(args.json, json.dumps(figures, indent=1))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--json {args.json}: {exc}") from None
    if "accuracy" in figures:
        correct = int(round(figures["accuracy"] * X.shape[0]))
        print(f"{what} accuracy {100 * figures['accuracy']:.2f}% ({correct}/{X.shape[0]})  cost "
              f"{figures['cost']:.4f} ({net.cost.name}, without regularization)")
    else:
        print(f"{what} R² {figures['r2']:.4f}  RMSE {figures['rmse']:.4g}  MAE {figures['mae']:.4g}  cost "
              f"{figures['cost']:.4f} ({net.cost.name} on the scaled targets, {X.shape[0]} rows)")
    return 0
