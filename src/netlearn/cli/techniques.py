"""``netlearn train`` options for the techniques of chapter 3 and the MIT notes (one block, one module).

Optimizers (``--optimizer``, ``--mu``, ``--beta1``, ``--beta2``, ``--l1``,
``--max-norm``), schedules (``--schedule``, ``--patience``, ``--step-size``,
``--gamma``), early stopping (``--early-stopping N`` on ``--stop-on``),
checkpoints (``--checkpoint DIR --checkpoint-every K``, ``--resume FILE``)
and regularization layers (``--dropout``, ``--batch-norm``, ``--input-noise``).

The figure that early stopping and the halving schedule watch is
``--stop-on FIGURE``; without it, validation/test accuracy
(``evaluation_accuracy``) when it is recorded, else the first figure named by
``--monitor``.  The watched figure is always recorded.
"""
from __future__ import annotations

import argparse

from .. import optimizers, schedules
from ..history import FIGURES
from .common import UsageError, nonneg_float, positive_float, positive_int

FIRST_ORDER = tuple(optimizers.OPTIMIZERS)
#: netlearn.second_order's full-batch methods: minimize's two (not its aliases) and newton.
SECOND_ORDER = ("lbfgs", "cg", "newton")


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimizers, schedules, stopping, checkpoints, regularization layers")
    g.add_argument("--optimizer", choices=FIRST_ORDER + SECOND_ORDER, default="sgd",
                   help="update rule; lbfgs, cg and newton are full-batch (then --epochs counts iterations and "
                        "--batch-size is ignored)")
    g.add_argument("--mu", type=float, default=0.9, help="momentum coefficient in [0, 1) (momentum, nesterov)")
    g.add_argument("--beta1", type=float, default=0.9, help="Adam's first-moment decay in [0, 1)")
    g.add_argument("--beta2", type=float, default=0.999, help="Adam's second-moment decay in [0, 1)")
    g.add_argument("--l1", type=nonneg_float, default=0.0, metavar="LAMBDA",
                   help="L1 regularization (the book's lambda/n form), alone or beside --lmbda")
    g.add_argument("--max-norm", type=positive_float, default=None, metavar="C",
                   help="constrain each neuron's incoming weight vector to norm <= C (default: no constraint)")
    g.add_argument("--schedule", choices=list(schedules.SCHEDULES), default="constant",
                   help="learning-rate schedule; halve: the book's rule (halve eta at each no-improvement-in-"
                        "PATIENCE, stop at eta/128)")
    g.add_argument("--patience", type=positive_int, default=10, metavar="N", help="N for --schedule halve")
    g.add_argument("--step-size", type=positive_int, default=10, metavar="K",
                   help="epochs between drops for --schedule step")
    g.add_argument("--gamma", type=positive_float, default=None, metavar="G",
                   help="factor in (0, 1] for --schedule step and exponential (default: 0.5 for step, 0.95 for exponential)")
    g.add_argument("--early-stopping", type=positive_int, default=None, metavar="N",
                   help="stop after N epochs without improvement of the --stop-on figure; keep the best weights "
                        "(default: off)")
    g.add_argument("--stop-on", choices=FIGURES, default=None, metavar="FIGURE",
                   help="figure watched by --early-stopping and --schedule halve (default: evaluation_accuracy, "
                        "or the first --monitor figure when that one is not monitored)")
    g.add_argument("--checkpoint", metavar="DIR", default=None, help="write checkpoints into DIR (default: none)")
    g.add_argument("--checkpoint-every", type=positive_int, default=1, metavar="K",
                   help="epochs between checkpoints")
    g.add_argument("--resume", metavar="FILE", default=None,
                   help="continue the run saved in checkpoint FILE (same options and seed give the same results) "
                        "(default: a fresh run)")
    g.add_argument("--dropout", type=float, default=0.0, metavar="P",
                   help="dropout probability in [0, 1) on every hidden layer's output")
    g.add_argument("--batch-norm", action="store_true", help="batch normalization after every hidden Dense")
    g.add_argument("--input-noise", type=nonneg_float, default=0.0, metavar="SIGMA",
                   help="Gaussian noise of deviation SIGMA on the inputs during training")


def network_kwargs(args) -> dict:
    return {"dropout": args.dropout, "batch_norm": args.batch_norm, "input_noise": args.input_noise}


def stop_figure(args) -> str:
    if args.stop_on is not None:
        return args.stop_on
    if args.monitor is None or "evaluation_accuracy" in args.monitor or not args.monitor:
        return "evaluation_accuracy"
    return args.monitor[0]


def extend_monitor(args, flags: dict) -> dict:
    """Record the figure that early stopping / the halving schedule watch."""
    if args.early_stopping is not None or args.schedule == "halve":
        flags[f"monitor_{stop_figure(args)}"] = True
    return flags


def check(args) -> None:
    """Option combinations that cannot work, refused before any data is read."""
    if args.optimizer in SECOND_ORDER:
        used = [o for o, bad in (("--schedule", args.schedule != "constant"), ("--early-stopping", args.early_stopping),
                                 ("--checkpoint", args.checkpoint), ("--resume", args.resume),
                                 ("--max-norm", args.max_norm), ("--dropout", args.dropout),
                                 ("--batch-norm", args.batch_norm), ("--input-noise", args.input_noise)) if bad]
        if used:
            raise UsageError(f"--optimizer {args.optimizer} is full-batch and deterministic; it does not take "
                             f"{', '.join(used)}.")
    if args.gamma is not None and not 0 < args.gamma <= 1:
        raise UsageError(f"--gamma must be in (0, 1], got {args.gamma}.")
    if args.optimizer in FIRST_ORDER:
        try:
            fit_kwargs(args)  # hyper-parameters (mu, beta1, ...) checked before the data is read
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.resume is not None:
        from pathlib import Path

        if not Path(args.resume).is_file():
            raise UsageError(f"--resume {args.resume}: no such checkpoint file.")


def fit_kwargs(args) -> dict:
    """Keyword arguments of ``net.fit`` for the options (ValueError for bad hyper-parameters)."""
    from ..callbacks import EarlyStopping
    from ..checkpoints import Checkpoint

    hyper = {"momentum": {"mu": args.mu}, "nesterov": {"mu": args.mu},
             "adam": {"beta1": args.beta1, "beta2": args.beta2}}.get(args.optimizer, {})
    callbacks = []
    if args.schedule == "step":
        callbacks.append(schedules.StepDecay(args.step_size, 0.5 if args.gamma is None else args.gamma))
    elif args.schedule == "exponential":
        callbacks.append(schedules.Exponential(0.95 if args.gamma is None else args.gamma))
    elif args.schedule == "halve":
        callbacks.append(schedules.HalveOnPlateau(args.patience, monitor=stop_figure(args)))
    if args.early_stopping is not None:
        callbacks.append(EarlyStopping(args.early_stopping, monitor=stop_figure(args)))
    if args.checkpoint is not None:
        callbacks.append(Checkpoint(args.checkpoint, every=args.checkpoint_every))
    return {"optimizer": optimizers.get(args.optimizer, args.eta, **hyper), "l1": args.l1,
            "max_norm": args.max_norm, "callbacks": callbacks, "resume": args.resume}


def train_second_order(args, net, training, evaluation, flags: dict):
    """Full-batch L-BFGS, CG or Newton for ``--optimizer lbfgs|cg|newton``; returns the History."""
    from .. import second_order

    monitor = {k: v for k, v in flags.items() if k != "monitor_training_cost"}
    if args.optimizer == "newton":
        return second_order.newton(net, training, args.epochs, eta=args.eta, lmbda=args.lmbda, l1=args.l1,
                                   evaluation_data=evaluation, verbose=not args.quiet, **monitor)
    return second_order.minimize(net, training, args.optimizer, args.epochs, lmbda=args.lmbda, l1=args.l1,
                                 evaluation_data=evaluation, verbose=not args.quiet, **monitor)
