"""``netlearn inspect MODEL``: pictures and a JSON summary of what a saved network gets wrong and has learned.

See :mod:`netlearn.inspection` for the files written into ``--out DIR``.
"""
from __future__ import annotations

import argparse

from .common import UsageError, add_data_options, add_table_options
from .evaluate import evaluation_data, load_model


def register(sub) -> None:
    p = sub.add_parser("inspect", help="pictures of a saved model: confusion matrix, mistakes, first-layer weights",
                       description="Score a saved network on a split of MNIST (or on your own --data FILE) and "
                                   "write into DIR: summary.json (confusion_matrix with rows the true class and "
                                   "columns the predicted one, per-class accuracy, the most confidently "
                                   "misclassified examples; R², RMSE, MAE for regression) and PNG pictures "
                                   "(confusion_matrix.png, misclassified.png, weights.png, or "
                                   "predicted_vs_true.png for regression).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="model file (netlearn or network2 JSON)")
    add_data_options(p, files=True)
    add_table_options(p, training=False)
    p.add_argument("--split", choices=["validation", "test", "training"], default="test",
                   help="which split of mnist or fashion-mnist to inspect (default: %(default)s)")
    p.add_argument("--out", metavar="DIR", default="inspect",
                   help="folder for the pictures and summary.json, created if missing (default: %(default)s)")
    p.add_argument("--top", type=int, default=24, metavar="N",
                   help="how many misclassified examples to show and list (default: %(default)s)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..inspection import inspect_network

    if args.top < 0:
        raise UsageError(f"--top must be 0 or more, got {args.top}.")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder (it is created if missing).")
    net = load_model(args.model)
    X, y, what = evaluation_data(args, net)
    try:
        summary = inspect_network(net, X, y, out, top=args.top, title=f"{Path(args.model).name} on {what}")
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot write there ({exc.strerror or exc}).") from None
    if "accuracy" in summary:
        worst = min(((v, k) for k, v in summary["per_class_accuracy"].items() if v is not None), default=None)
        print(f"{what}: accuracy {100 * summary['accuracy']:.2f}% on {summary['examples']} examples"
              + (f"; weakest class {worst[1]} ({100 * worst[0]:.1f}%)" if worst else ""))
    else:
        print(f"{what}: R² {summary['r2']:.4f}  RMSE {summary['rmse']:.4g}  MAE {summary['mae']:.4g}")
    print(f"wrote {', '.join(summary['files'] + ['summary.json'])} into {out}")
    return 0
