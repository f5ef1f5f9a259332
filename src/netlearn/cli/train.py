"""``netlearn train``: build a network from options, train it, report and save."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from .. import history
from ..plot import plot_format
from . import augmentation, techniques
from .common import (UsageError, add_data_options, hidden_activation, add_network_options, add_split_options, load_data, name_list,
                     nonneg_float, positive_float, positive_int)


def register(sub) -> None:
    p = sub.add_parser("train", help="train a network (default: the book's [784,30,10] on MNIST)",
                       description="Train a fully-connected network by mini-batch SGD and report per-epoch figures.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_data_options(p)
    add_network_options(p)
    p.add_argument("--eta", type=positive_float, default=0.5, help="learning rate")
    p.add_argument("--lmbda", type=nonneg_float, default=5.0, help="L2 regularization (the book's lambda)")
    p.add_argument("--epochs", type=positive_int, default=30, help="passes over the training data")
    p.add_argument("--batch-size", type=positive_int, default=10, help="examples per mini-batch")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="CPU threads sharing each mini-batch of 32 or more (default: NETLEARN_THREADS, else "
                        "the available cores, at most 4)")
    p.add_argument("--seed", type=int, default=None, help="seed for initialization and shuffling (default: a fresh random seed)")
    add_split_options(p)
    p.add_argument("--monitor", type=name_list, default=None, metavar="FIGURE[,FIGURE...]",
                   help=f"figures to record each epoch: {', '.join(history.FIGURES)} (default: evaluation_accuracy)")
    p.add_argument("--json", metavar="FILE", default=None, help="write the History as JSON (default: not written)")
    p.add_argument("--save", metavar="FILE", default=None, help="save the trained network (default: not saved)")
    p.add_argument("--save-format", choices=["netlearn", "network2"], default="netlearn",
                   help="format for --save: netlearn's or the book's network2.py JSON")
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="plot the learning curves; .png, .pdf or .svg, as the suffix says (default: no plot)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    augmentation.add_options(p)
    techniques.add_options(p)
    p.set_defaults(func=run)


FIGURES = history.FIGURES  # the figures --monitor can name (kept here for the modules that import it)


def build_network(args):
    from ..layers import activations
    from ..network import Network

    activation = hidden_activation(args.activation)
    if args.output is not None:
        try:
            activations.get(args.output)
        except ValueError:
            raise UsageError(f"--output {args.output}: choose one of {', '.join(sorted(activations.ACTIVATIONS))}.") from None
    try:
        return Network(args.layers, activation=activation, cost=args.cost, init=args.init, output=args.output,
                       seed=args.seed, **techniques.network_kwargs(args))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def monitor_flags(args) -> dict:
    figures = args.monitor if args.monitor is not None else ["evaluation_accuracy"]
    unknown = [f for f in figures if f not in FIGURES]
    if unknown:
        raise UsageError(f"--monitor: unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}.")
    return {f"monitor_{f}": f in figures for f in FIGURES}


def select_data(args):
    training, validation, test = load_data(args)
    if args.train_size is not None:
        if args.train_size > training[0].shape[0]:
            raise UsageError(f"--train-size {args.train_size} is more than the {training[0].shape[0]} training images.")
        training = (training[0][:args.train_size], training[1][:args.train_size])
    evaluation = validation if args.eval == "validation" else test
    n_pixels, n_classes = training[0].shape[1], int(max(training[1].max(), evaluation[1].max())) + 1
    if args.layers[0] != n_pixels or args.layers[-1] < n_classes:
        raise UsageError(f"--layers {','.join(map(str, args.layers))}: {args.data} images have {n_pixels} pixels and "
                         f"{n_classes} classes, so the first layer must be {n_pixels} and the last at least "
                         f"{n_classes} (e.g. --layers {n_pixels},30,{n_classes}).")
    return training, evaluation


def check_outputs(args) -> None:
    """Fail before training, not after, when an output file cannot be written."""
    from pathlib import Path

    for opt in ("json", "save", "plot"):
        path = getattr(args, opt, None)
        if path is not None:
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise UsageError(f"--{opt} {path}: the folder {parent} does not exist.")
    if getattr(args, "plot", None) is not None:
        try:
            plot_format(args.plot)
        except ValueError as exc:
            raise UsageError(f"--plot {exc}") from None


def run(args) -> int:
    from ..history import DivergenceError

    check_outputs(args)
    techniques.check(args)
    flags = techniques.extend_monitor(args, monitor_flags(args))
    if args.plot is not None and not any(flags.values()):
        raise UsageError(f"--plot {args.plot}: nothing is monitored, so there is nothing to plot; name a figure with "
                         f"--monitor ({', '.join(FIGURES)}).")
    net = build_network(args)
    training, evaluation = select_data(args)
    training = augmentation.expand_training(args, training)
    if not args.quiet:
        print(f"{net}\ntraining on {training[0].shape[0]} {args.data} images, evaluating on {args.eval} "
              f"({evaluation[0].shape[0]}); eta={args.eta} lmbda={args.lmbda} batch={args.batch_size} "
              f"epochs={args.epochs}", file=sys.stderr)
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below, once
            if args.optimizer in techniques.SECOND_ORDER:
                if augmentation.callbacks(args):
                    raise UsageError(f"--augment needs a mini-batch optimizer, not --optimizer {args.optimizer}.")
                history = techniques.train_second_order(args, net, training, evaluation, flags)
            else:
                kwargs = techniques.fit_kwargs(args)
                kwargs["callbacks"] = augmentation.callbacks(args) + kwargs["callbacks"]
                history = net.fit(training, args.epochs, args.batch_size, args.eta, lmbda=args.lmbda,
                                  evaluation_data=evaluation, seed=args.seed, verbose=not args.quiet,
                                  progress=not args.quiet, threads=args.threads, **flags, **kwargs)
        status = 0
    except DivergenceError as exc:
        print(f"netlearn: error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    write_outputs(args, net, history)
    return status


def write_outputs(args, net, history) -> None:
    from ..io import atomic_write_text

    if args.json:
        atomic_write_text(args.json, json.dumps(history.to_dict(), indent=1))
    if args.save:
        net.save(args.save, format=args.save_format)
    if args.plot:
        from ..plot import plot_history

        plot_history(history, args.plot, title=f"{net.sizes} eta={args.eta} lmbda={args.lmbda}")
    if history.evaluation_accuracy:
        # With early stopping the network ends with the best epoch's weights: "final" is theirs.
        best = max(history.evaluation_accuracy)
        print(f"final {args.eval} accuracy {100 * history.kept('evaluation_accuracy'):.2f}% "
              f"(best {100 * best:.2f}%)")
    if history.best_epoch is not None:
        print(f"kept the weights of epoch {history.best_epoch} of {history.epochs}")
