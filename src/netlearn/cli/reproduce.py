"""``netlearn reproduce NAME``: run one of the book's chapter-3 experiments (or ``all``) and write its results."""
from __future__ import annotations

import argparse
import sys
import time

from .common import UsageError, load_data


def register(sub) -> None:
    from ..experiments import BOOK_SEED, EXPERIMENTS, describe

    lines = "\n".join(f"  {name:<17} {describe(name)}" for name in EXPERIMENTS)
    p = sub.add_parser(
        "reproduce", help="reproduce one of the book's chapter-3 figures (or all of them)",
        description="Run one of the book's chapter-3 experiments with the book's network, hyper-parameters, data "
                    "sizes, epochs and initialization. Writes NAME.json (settings and per-epoch results) and the "
                    "book's plot(s) as PNG into OUT/NAME/, and prints a short table.",
        epilog=f"experiments:\n{lines}\n  {'all':<17} every experiment above, in this order",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME", choices=[*EXPERIMENTS, "all"],
                   help="experiment: " + ", ".join([*EXPERIMENTS, "all"]))
    p.add_argument("--out", metavar="DIR", default="netlearn-results",
                   help="output folder; each experiment writes into DIR/NAME/ (default: netlearn-results)")
    p.add_argument("--data-dir", metavar="ROOT", default=None,
                   help="data root holding mnist/ (default: $NETLEARN_DATA, else the per-user cache)")
    p.add_argument("--seed", type=int, default=BOOK_SEED,
                   help=f"seed for initialization and shuffling (default: the book's {BOOK_SEED})")
    p.add_argument("--quick", action="store_true",
                   help="a shortened run (fewer epochs and sizes) that checks the pipeline in seconds; "
                        "its figures are not the book's")
    p.add_argument("--no-svm", dest="svm", action="store_false",
                   help="skip the SVM beside the network in more-data (most of that experiment's time)")
    p.add_argument("--verbose", action="store_true", help="print one line per training epoch")
    p.set_defaults(func=run, data="mnist")


def run(args) -> int:
    from ..experiments import ExperimentError, format_table, needs_data
    from ..experiments import run as run_experiment

    if args.seed < 0:
        raise UsageError(f"--seed must be a whole number >= 0, got {args.seed}.")
    data = load_data(args) if needs_data(args.name) else None
    t0 = time.perf_counter()
    try:
        summaries = run_experiment(args.name, out=args.out, seed=args.seed, quick=args.quick, data=data,
                                   verbose=args.verbose, svm=args.svm, log=lambda s: print(s, flush=True))
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write the results into {args.out}: {exc.strerror or exc}.") from None
    if len(summaries) > 1:
        print("\nsummary")
        print(format_table(["experiment", "time", "result"],
                           [[s.name, f"{s.seconds:.1f}s", s.headline] for s in summaries]))
        print(f"total {time.perf_counter() - t0:.1f}s", file=sys.stdout)
    return 0
