"""``netlearn search``: hyper-parameter search on Optuna, trials trained in populations.

    netlearn search --eta 0.01:10:log --lmbda 0.1:100:log --epochs 10 --trials 64 --json s.json

runs a whole search in one process.  For several processes or machines, create
the study once and start workers that need only the storage and the study:

    netlearn search init --storage search.log --study mnist --eta 0.01:10:log --trials 200
    netlearn search run --storage search.log --study mnist      # as many as you like, at once
    netlearn search show --storage search.log --study mnist --json s.json --plot s.png

``--data FILE.csv`` or ``FILE.npz`` searches on your own classes (a trial's
value is its validation accuracy); the study stores the file's absolute path,
which every worker reads.

``--storage``: a file path (Optuna's journal file, several processes on one
machine), ``postgresql[+psycopg]://USER:PASSWORD@HOST/DB`` (several machines)
or ``sqlite:///FILE`` (one process at a time).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .common import DATA_SETS, UsageError, add_split_options, add_table_options, data_source, layer_sizes, positive_int

FORMATTER = argparse.ArgumentDefaultsHelpFormatter


def _space_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search space (LOW:HIGH, LOW:HIGH:log, or alternatives a,b,c; a parameter not "
                             "given keeps its fixed value)")
    for flag, fixed, what in (("--eta", 0.5, "learning rate"), ("--lmbda", 5.0, "L2 regularization (the book's "
                              "lambda)"), ("--mu", 0.0, "momentum coefficient in [0, 1)"),
                              ("--batch-size", 10, "mini-batch size (whole numbers)"),
                              ("--dropout", 0.0, "dropout probability on the hidden layers (trains one Network "
                               "per trial)")):
        g.add_argument(flag, default=None, metavar="SPACE", help=f"{what} (default: fixed at {fixed:g})"
                                                                 f"%(default).0s")
    g.add_argument("--optimizer", default=None, metavar="NAME[,NAME...]",
                   help="optimizer names (sgd and momentum train as populations, the others one Network per "
                        "trial) (default: fixed at sgd)%(default).0s")
    g.add_argument("--hidden", nargs="+", default=None, metavar="N[,N...]",
                   help="hidden layers: alternatives separated by spaces, each a per-layer list "
                        "(--hidden 30 100 64,32); with --data FILE the data gives the first and last layer "
                        "(default: fixed at --layers' hidden layers)%(default).0s")
    g.add_argument("--activation", nargs="+", default=None, metavar="NAME[,NAME...]",
                   help="hidden activation: alternatives separated by spaces, each one name or one per hidden "
                        "layer (default: fixed at sigmoid)%(default).0s")


def _study_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--storage", required=required, default=None, metavar="URL",
                   help="a journal file path, postgresql[+psycopg]://..., or sqlite:///FILE" +
                        (" (required)" if required else " (default: in memory)%(default).0s"))
    p.add_argument("--study", required=required, default=None if required else "netlearn", metavar="NAME",
                   help="the study's name" + (" (required)" if required else ""))


def _search_options(p: argparse.ArgumentParser) -> None:
    """The options that ``search`` and ``search init`` share: data, space, training, sampler."""
    p.add_argument("--data", type=data_source, default="mnist", metavar="mnist|fashion-mnist|FILE",
                   help="data set, or your own FILE.csv (with a header line) or FILE.npz (arrays X and y), classes "
                        "only; the study stores its absolute path, so every 'search run' worker, on any machine, "
                        "must find the file at that same path (default: %(default)s)")
    p.add_argument("--data-dir", metavar="ROOT", default=None,
                   help="data root holding mnist/ and fashion-mnist/ (default: $NETLEARN_DATA, else the per-user "
                        "cache)%(default).0s")
    add_table_options(p)
    _space_options(p)
    p.add_argument("--layers", type=layer_sizes, default=[784, 30, 10], metavar="N,N,...",
                   help="neurons per layer, input first; with --data FILE its hidden layers go between the data's "
                        "input columns and classes (default: 784,30,10)%(default).0s")
    p.add_argument("--cost", default="cross-entropy",
                   choices=["cross-entropy", "quadratic", "log-likelihood", "hinge"], help="cost function")
    p.add_argument("--init", default="default", choices=["default", "large", "glorot", "he"],
                   help="weight initialization")
    p.add_argument("--output", default=None, metavar="NAME",
                   help="output activation (default: the cost's natural partner)%(default).0s")
    p.add_argument("--epochs", type=positive_int, default=30, help="epochs per trial")
    add_split_options(p)
    p.add_argument("--sampler", choices=["random", "grid", "tpe"], default="random",
                   help="random search, every grid point once, or multivariate TPE (Bayesian)")
    p.add_argument("--trials", type=positive_int, default=None,
                   help="finished trials wanted (default: the grid's size for a grid, else 64)%(default).0s")
    p.add_argument("--population", type=positive_int, default=None, metavar="K",
                   help="trials a worker trains at once as one Population (default: as many as share one, "
                        "at most 64)%(default).0s")
    p.add_argument("--pruner", choices=["none", "halving"], default="none",
                   help="successive halving inside the population (rungs at epochs 1, 3, 9, ...)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler, of each trial's initialization "
                                                      "and of the shuffles")


def _worker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="CPU threads, each training its own groups of 16 networks (default: NETLEARN_THREADS, "
                        "else the available cores, at most 4)%(default).0s")
    p.add_argument("--quiet", action="store_true", help="no per-trial lines")


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="FILE", default=None,
                   help='write {"study", "sampler", "best", "trials", "network_epochs", "seconds"} (default: not written)'
                        '%(default).0s')
    p.add_argument("--plot", metavar="FILE.png", default=None,
                   help="accuracy against each parameter, and the curves of the best trials (default: no plot)%(default).0s")


def register(sub) -> None:
    p = sub.add_parser("search", help="hyper-parameter search (random, grid, TPE) on Optuna, in populations",
                       description="Search hyper-parameters: each worker asks Optuna for up to K trials and trains "
                                   "them as one population. Without a sub-command, a whole search in one "
                                   "process.", formatter_class=FORMATTER)
    _search_options(p)
    _study_options(p, required=False)
    _worker_options(p)
    _output_options(p)
    p.add_argument("--heartbeat", type=float, default=10.0, metavar="S",
                   help="seconds between heartbeats when --storage is given")
    p.add_argument("--strategy", choices=["optuna", "pbt"], default="optuna",
                   help="Optuna's samplers, or population-based training (exploit and explore every --interval "
                        "epochs, in one process)")
    p.add_argument("--interval", type=positive_int, default=4, metavar="P",
                   help="epochs between PBT's exploit/explore steps")
    p.set_defaults(func=run_search)
    steps = p.add_subparsers(dest="search_command", metavar="STEP")
    init = steps.add_parser("init", help="create a study once, storing the search's settings in it",
                            description="Create the study (and the storage's schema) with the search's settings, "
                                        "so that workers need only --storage and --study.", formatter_class=FORMATTER)
    _search_options(init)
    _study_options(init, required=True)
    init.set_defaults(func=run_init)
    run = steps.add_parser("run", help="a worker: train the study's trials until it has enough",
                           description="Train the study's trials, K at a time as one population, until the study "
                                       "has its number of finished trials; start as many workers as you like.",
                           formatter_class=FORMATTER)
    _study_options(run, required=True)
    run.add_argument("--data-dir", metavar="ROOT", default=None,
                     help="data root on this machine (default: $NETLEARN_DATA, else the per-user cache)%(default).0s")
    run.add_argument("--heartbeat", type=float, default=10.0, metavar="S",
                     help="seconds between heartbeats; a worker silent for three is taken for dead and its trials "
                          "are queued again")
    _worker_options(run)
    run.set_defaults(func=run_worker)
    show = steps.add_parser("show", help="the study's trials, best first", formatter_class=FORMATTER,
                            description="Print the study's trials, best first; write its JSON summary and figures.")
    _study_options(show, required=True)
    _output_options(show)
    show.set_defaults(func=run_show)


def _settings(args):
    from ..search.api import resolve_paths
    from ..search.study import Settings

    space = {"eta": args.eta, "lmbda": args.lmbda, "mu": args.mu, "batch_size": args.batch_size,
             "dropout": args.dropout, "optimizer": args.optimizer, "hidden": args.hidden,
             "activation": args.activation}
    settings = Settings(space={k: v for k, v in space.items() if v is not None}, layers=args.layers, cost=args.cost,
                    init=args.init, output=args.output, epochs=args.epochs, data=args.data, target=args.target,
                    task=args.task, scale=args.scale, validation=args.validation,
                    validation_split=args.validation_split, test=args.test, train_size=args.train_size,
                    eval=args.eval, sampler=args.sampler, trials=args.trials, population=args.population,
                    pruner=args.pruner, seed=args.seed)
    settings.data = resolve_paths(settings, settings.data)
    return settings


def _guard(fn):
    """SearchError and the space's errors become one-line usage errors."""
    def wrapped(args) -> int:
        from ..search.storage import SearchError

        try:
            return fn(args)
        except (SearchError, ValueError) as exc:
            raise UsageError(str(exc)) from None
    return wrapped


def _check_outputs(args) -> None:
    from .train import check_outputs

    check_outputs(args)


def _data(args, settings):
    """``(training, evaluation)``: MNIST checked against ``--layers``; ``--data FILE`` sets the first and last layers."""
    from ..data.mnist import DataError
    from ..search.api import load_search_data

    try:
        training, evaluation, _ = load_search_data(settings, args.data_dir)
    except DataError as exc:
        missing = [f for f in (settings.data, settings.validation, settings.test)
                   if f is not None and f not in DATA_SETS and not os.path.exists(f)]
        hint = (f" (the study reads {', '.join(missing)} on every worker: copy it to that path on this machine)"
                if missing else "")
        raise UsageError(f"{exc}{hint}") from None
    if settings.data not in DATA_SETS:
        return training, evaluation
    n_pixels = training[0].shape[1]
    n_classes = int(max(training[1].max(), evaluation[1].max())) + 1
    if settings.layers[0] != n_pixels or settings.layers[-1] < n_classes:
        raise UsageError(f"--layers {','.join(map(str, settings.layers))}: {settings.data} images have {n_pixels} "
                         f"pixels and {n_classes} classes, so the first layer must be {n_pixels} and the last at "
                         f"least {n_classes}.")
    return training, evaluation


def _described(settings, training, evaluation) -> str:
    if settings.data in DATA_SETS:
        return (f"training on {training[0].shape[0]} {settings.data} images, evaluating on {settings.eval} "
                f"({evaluation[0].shape[0]})")
    return (f"training on {training[0].shape[0]} rows of {settings.data}, evaluating on {settings.eval} "
            f"({evaluation[0].shape[0]} rows), layers {','.join(map(str, settings.layers))}")


def _work(args, study, settings, storage_url, sampler_seed=None, data=None) -> "object":
    from ..search.storage import kind
    from ..search.worker import Worker, refuse_second_worker

    if kind(storage_url) == "sqlite":
        refuse_second_worker(study)  # before the data are loaded
    training, evaluation = data or _data(args, settings)
    if not args.quiet:
        print(f"study {study.study_name}: {settings.trials} trials of {settings.epochs} epochs, "
              f"{settings.sampler} sampler, populations of up to {settings.population}, pruner {settings.pruner}; "
              f"{_described(settings, training, evaluation)}", file=sys.stderr)
    worker = Worker(study, settings, training, evaluation, heartbeat=args.heartbeat if storage_url else None,
                    seed=sampler_seed, threads=args.threads, quiet=args.quiet,
                    print_fn=lambda s: print(s, file=sys.stderr), keep_best=False,
                    one_worker_only=kind(storage_url) == "sqlite")
    try:
        return worker.run()
    except KeyboardInterrupt:
        print("netlearn: interrupted: this worker's running trials were marked FAIL and queued again",
              file=sys.stderr)
        raise SystemExit(130) from None


def _report(args, study, seconds=None) -> None:
    from ..io import atomic_write_text
    from ..search import summary as summ

    s = summ.summary(study, seconds)
    print(summ.table(s))
    if args.json:
        atomic_write_text(args.json, json.dumps(s, indent=1))
    if args.plot:
        summ.plot(s, args.plot)


@_guard
def run_search(args) -> int:
    from ..search.storage import open_storage
    from ..search.study import create_study

    _check_outputs(args)
    settings = _settings(args)
    if args.strategy == "pbt":
        return _run_pbt(args, settings)
    t0 = time.perf_counter()
    # A file is read first: it sets the first and last layers, which the study stores.
    data = _data(args, settings) if settings.data not in DATA_SETS else None
    storage = open_storage(args.storage)
    study = create_study(storage, args.study, settings, sampler_seed=settings.seed)
    _work(args, study, settings, args.storage, sampler_seed=settings.seed, data=data)
    _report(args, study, time.perf_counter() - t0)
    return 0


def _run_pbt(args, settings) -> int:
    from ..io import atomic_write_text
    from ..search import summary as summ
    from ..search.pbt import pbt
    from ..search.storage import SearchError

    if args.storage:
        raise SearchError("--strategy pbt runs in one process: it takes no --storage.")
    if settings.sampler != "random" or settings.pruner != "none":
        raise SearchError("--strategy pbt draws its members at random and prunes by exploiting: "
                          "it takes no --sampler or --pruner.")
    training, evaluation = _data(args, settings)
    s, _ = pbt(training, evaluation, settings, args.interval, threads=args.threads, verbose=not args.quiet,
               print_fn=lambda line: print(line, file=sys.stderr))
    print(summ.table(s))
    if args.json:
        atomic_write_text(args.json, json.dumps(s, indent=1))
    if args.plot:
        summ.plot(s, args.plot)
    return 0


@_guard
def run_init(args) -> int:
    from ..search.storage import open_storage
    from ..search.study import create_study

    settings = _settings(args)
    own = settings.data not in DATA_SETS
    if own:
        _data(args, settings)  # a bad file, or a regression target, is said now, and the layers fixed
    storage = open_storage(args.storage)
    study = create_study(storage, args.study, settings)
    print(f"study {args.study} in {args.storage}: {settings.trials} trials, {settings.sampler} sampler, "
          f"populations of up to {settings.population}, pruner {settings.pruner}"
          + (f", layers {','.join(map(str, settings.layers))} from {settings.data} (every worker reads this path)"
             if own else "") +
          f"; start workers with: netlearn search run --storage {args.storage} --study {args.study}")
    return 0 if study is not None else 2


@_guard
def run_worker(args) -> int:
    from ..search.storage import open_storage
    from ..search.study import load_study

    storage = open_storage(args.storage)
    # Each worker's sampler gets its own stream: workers with one seed would ask the same parameters.
    seed = int.from_bytes(os.urandom(4), "little")
    study, settings = load_study(storage, args.study, sampler_seed=seed)
    if args.heartbeat <= 0:
        raise UsageError(f"--heartbeat must be a positive number of seconds, got {args.heartbeat:g}.")
    _work(args, study, settings, args.storage, sampler_seed=seed)
    if not args.quiet:
        from ..search import summary as summ

        print(summ.table(summ.summary(study), limit=10), file=sys.stderr)
    return 0


@_guard
def run_show(args) -> int:
    from ..search.storage import open_storage
    from ..search.study import load_study

    _check_outputs(args)
    study, _ = load_study(open_storage(args.storage), args.study)
    _report(args, study)
    return 0
