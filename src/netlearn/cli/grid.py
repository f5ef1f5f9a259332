"""``netlearn grid``: train every combination of hyper-parameters at once, as one Population.

    netlearn grid --eta 0.025,0.25,2.5 --lmbda 0,1,5 --epochs 10

trains the nine networks in lockstep on the same mini-batches, monitoring
validation accuracy, and prints the final and best accuracy of each
combination.  ``--json FILE`` keeps every History; ``--plot FILE.png`` draws a
heat map of the best accuracy over eta and lmbda.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

import numpy as np

from ..history import FIGURES
from ..plot import plot_grid
from .common import (UsageError, add_data_options, add_network_options, add_split_options, hidden_activation, name_list,
                     positive_int)
from .train import check_outputs, select_data


def _number_list(check: Callable[[float], bool], accepted: str, convert=float):
    """An argparse type for comma-separated values, each converted and checked, none repeated."""
    example = "1,2,3" if convert is int else "0.1,1,10"

    def parse(text: str) -> list:
        values = []
        for part in text.split(","):
            part = part.strip()
            try:
                v = convert(part)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected comma-separated values like {example} (each "
                                                 f"{accepted}), got {text!r}") from None
            if not np.isfinite(v) or not check(v):
                raise argparse.ArgumentTypeError(f"each value must be {accepted}, got {part!r}")
            values.append(v)
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"values repeat in {text!r}")
        return values
    return parse


positive_list = _number_list(lambda v: v > 0, "a positive number")
nonneg_list = _number_list(lambda v: v >= 0, "a number >= 0")
momentum_list = _number_list(lambda v: 0 <= v < 1, "a number in [0, 1)")
seed_list = _number_list(lambda v: v >= 0, "a whole number >= 0", convert=int)


def register(sub) -> None:
    p = sub.add_parser("grid", help="train every combination of eta, lmbda, mu and seed at once",
                       description="Train every combination of the given hyper-parameters as one population "
                                   "(all networks in lockstep on the same mini-batches) and report the final "
                                   "and best evaluation accuracy of each.")
    add_data_options(p)
    p.add_argument("--eta", type=positive_list, required=True, metavar="ETA[,ETA...]", help="learning rates (required)")
    p.add_argument("--lmbda", type=nonneg_list, default=[5.0], metavar="L[,L...]",
                   help="L2 regularization strengths, the book's lambda (default: 5)")
    p.add_argument("--mu", type=momentum_list, default=[0.0], metavar="MU[,MU...]",
                   help="momentum coefficients (default: 0; any non-zero value makes every epoch slower)")
    p.add_argument("--seeds", type=seed_list, default=None, metavar="S[,S...]",
                   help="initialization seeds: each combination is trained once per seed (default: --seed)")
    add_network_options(p)
    p.add_argument("--epochs", type=positive_int, default=30, help="passes over the training data")
    p.add_argument("--batch-size", type=positive_int, default=10, help="examples per mini-batch")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="CPU threads, each training its own groups of 16 networks (default: NETLEARN_THREADS, "
                        "else the available cores, at most 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shared shuffle (and of initialization "
                                                      "when --seeds is not given)")
    add_split_options(p)
    p.add_argument("--monitor", type=name_list, default=None, metavar="FIGURE[,FIGURE...]",
                   help=f"figures to record each epoch: {', '.join(FIGURES)} (default: evaluation_accuracy; it is "
                        "always recorded)")
    p.add_argument("--json", metavar="FILE", default=None,
                   help='write {"runs": [{"eta", "lmbda", "mu", "seed", "diverged", "history"}, ...]} '
                        '(default: not written)')
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="heat map of the best evaluation accuracy over eta and lmbda, one per --mu value, each cell "
                        "the mean over --seeds; .png, .pdf or .svg, as the suffix says (default: no plot)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(func=run)


def _flags(args) -> dict:
    figures = set(args.monitor) if args.monitor is not None else set()
    unknown = sorted(figures - set(FIGURES))
    if unknown:
        raise UsageError(f"--monitor: unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}.")
    figures.add("evaluation_accuracy")
    return {f"monitor_{f}": f in figures for f in FIGURES}


def build_population(args):
    from ..population import Population

    if args.seed < 0:
        raise UsageError(f"--seed must be a whole number >= 0, got {args.seed}.")
    seeds = args.seeds if args.seeds is not None else [args.seed]
    activation = hidden_activation(args.activation)
    try:
        return Population.grid(args.layers, eta=args.eta, lmbda=args.lmbda, mu=args.mu, seeds=seeds,
                               activation=activation, cost=args.cost, init=args.init, output=args.output)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def run(args) -> int:
    check_outputs(args)
    flags = _flags(args)
    pop = build_population(args)
    training, evaluation = select_data(args)
    if not args.quiet:
        print(f"{len(pop)} networks {args.layers}: eta {args.eta} x lmbda {args.lmbda} x mu {args.mu}"
              f"{' x seeds ' + str(args.seeds) if args.seeds else ''}; training on {training[0].shape[0]} "
              f"{args.data} images, evaluating on {args.eval} ({evaluation[0].shape[0]}), "
              f"batch {args.batch_size}, {args.epochs} epochs", file=sys.stderr)
    try:
        pop.fit(training, args.epochs, args.batch_size, evaluation_data=evaluation, seed=args.seed,
                verbose=not args.quiet, print_fn=lambda s: print(s, file=sys.stderr), threads=args.threads,
                **flags)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(format_table(pop, args.eval))
    if args.json:
        from ..io import atomic_write_text

        atomic_write_text(args.json, json.dumps(runs_json(pop), indent=1))
    if args.plot:
        plot_grid(pop.configs, pop.histories, args.plot, args.eval, title=f"{pop.networks[0].sizes}: best {args.eval} "
                                                                          f"accuracy")
    return 0


def runs_json(pop) -> dict:
    """``{"runs": [...]}``: each combination's hyper-parameters, divergence, and History lists."""
    runs = []
    for cfg, h, div in zip(pop.configs, pop.histories, pop.diverged):
        runs.append({"eta": cfg["eta"], "lmbda": cfg["lmbda"], "mu": cfg["mu"], "seed": cfg["seed"],
                     "diverged": div is not None, "diverged_epoch": div, "history": h.to_dict()})
    return {"runs": runs}


def format_table(pop, which: str = "validation") -> str:
    """One line per combination: eta, lmbda, mu, seed, final and best accuracy (and its epoch)."""
    lines = [f"{'eta':>8} {'lmbda':>8} {'mu':>5} {'seed':>5}  {'final ' + which:>18}  {'best (epoch)':>15}"]
    for cfg, h, div in zip(pop.configs, pop.histories, pop.diverged):
        accs = h.evaluation_accuracy
        seed = "-" if cfg["seed"] is None else str(cfg["seed"])
        head = f"{cfg['eta']:>8g} {cfg['lmbda']:>8g} {cfg['mu']:>5g} {seed:>5}"
        if accs:
            best = int(np.argmax(accs))
            tail = f"{100 * accs[-1]:>17.2f}%  {100 * accs[best]:>8.2f}% ({best + 1:>3})"
        else:
            tail = f"{'-':>18}  {'-':>15}"
        if div is not None:
            tail += f"  diverged in epoch {div}"
        lines.append(head + "  " + tail)
    return "\n".join(lines)
