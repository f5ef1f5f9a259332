"""``netlearn evaluate MODEL``: accuracy and cost of a saved network on one split of the data."""
from __future__ import annotations

from .common import UsageError, add_data_options, load_data


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy and cost of a saved model on a data split",
                       description="Load a network saved by 'netlearn train --save' (or the book's network2.py "
                                   "JSON) and report its accuracy and mean cost on a split of the data.")
    p.add_argument("model", metavar="MODEL", help="model file (netlearn or network2 JSON)")
    add_data_options(p)
    p.add_argument("--split", choices=["validation", "test", "training"], default="test",
                   help="which split to evaluate on (default: test; the book's split: training 50,000, validation "
                        "10,000, test 10,000)")
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


def run(args) -> int:
    import numpy as np

    net = load_model(args.model)
    training, validation, test = load_data(args)
    X, y = {"training": training, "validation": validation, "test": test}[args.split]
    check_fits(net, X.shape[1], int(np.max(y)) + 1, f"the {args.data} {args.split} data")
    accuracy = net.accuracy((X, y))
    cost = net.total_cost((X, y))
    correct = int(round(accuracy * X.shape[0]))
    print(f"{args.split} accuracy {100 * accuracy:.2f}% ({correct}/{X.shape[0]})  cost {cost:.4f} "
          f"({net.cost.name}, without regularization)")
    return 0
