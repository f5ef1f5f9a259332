"""``netlearn tune``: the book's hyper-parameter strategy, carried out and explained (netlearn.search.book)."""
from __future__ import annotations

import argparse
import json
import sys

from .common import (UsageError, add_data_options, add_network_options, nonneg_float, positive_float,
                     positive_int)


def _sizes(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 1,10,100, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected mini-batch sizes >= 1 like 1,10,100, got {text!r}")
    return values


def register(sub) -> None:
    from ..search import book

    p = sub.add_parser(
        "tune", help="choose eta, epochs, lambda, a schedule and the mini-batch size by the book's strategy",
        description="Carry out the book's hyper-parameter strategy for one architecture: the learning-rate "
                    "threshold (factors of ten from 0.01, refined; eta a factor of two below), epochs by early "
                    "stopping, lambda (0, 1, factors of ten, refined; eta re-checked), a halving learning-rate "
                    "schedule, and the mini-batch size by accuracy gained per second. Each step prints what it "
                    "tried, saw and decided; the final network is trained, saved and evaluated on the validation "
                    "and test data.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_data_options(p)
    add_network_options(p)
    p.add_argument("--eta", type=positive_float, default=0.01,
                   help="first learning rate of the threshold search (then factors of ten)")
    p.add_argument("--lmbda", type=nonneg_float, default=1.0,
                   help="first non-zero L2 regularization tried (the book's lambda; then factors of ten)")
    p.add_argument("--epochs", type=positive_int, default=120,
                   help="at most this many epochs in any run (early stopping, the schedule, the final network)")
    p.add_argument("--batch-size", type=positive_int, default=10,
                   help="mini-batch size of steps 1-4 (step 5 chooses the final one)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="CPU threads (default: NETLEARN_THREADS, else the available cores, at most 4)%(default).0s")
    p.add_argument("--seed", type=int, default=0, help="seed for every initialization and shuffle")
    p.add_argument("--train-size", type=positive_int, default=None, metavar="N",
                   help="train on the first N training images only (default: all of them)%(default).0s")
    p.add_argument("--patience", type=positive_int, default=10,
                   help="n of the no-improvement-in-n rules (early stopping, the halving schedule)")
    p.add_argument("--threshold-images", type=positive_int, default=5000, metavar="N",
                   help="the threshold search watches the training cost on the first N training images")
    p.add_argument("--threshold-epochs", type=positive_int, default=3, metavar="E",
                   help="the threshold search watches the training cost in the first E epochs")
    p.add_argument("--batch-sizes", type=_sizes, default=list(book.BATCH_SIZES), metavar="M,M,...",
                   help="mini-batch sizes compared in step 5 (default: 1,5,10,20,50,100)%(default).0s")
    p.add_argument("--batch-seconds", type=positive_float, default=5.0, metavar="S",
                   help="wall-clock seconds of training for each mini-batch size in step 5")
    p.add_argument("--json", metavar="FILE", default=None, help="write the choices, the steps and the final "
                                                                  "accuracies as JSON (default: not written)")
    p.add_argument("--save", metavar="FILE", default=None, help="save the final network as netlearn JSON (default: not saved)")
    p.add_argument("--plot", metavar="DIR", default=None, help="draw one PNG per step into DIR, created if missing (default: no figures)")
    p.add_argument("--quiet", action="store_true", help="print only the final line")
    p.set_defaults(func=run)


def run(args) -> int:
    import argparse
    from pathlib import Path

    from ..data.mnist import DataError, load_dataset
    from ..io import atomic_write_text
    from ..search.book import plot_steps, tune
    from .train import check_outputs

    if args.plot is not None and Path(args.plot).exists() and not Path(args.plot).is_dir():
        raise UsageError(f"--plot {args.plot} is a file; give a folder (it is created if missing).")
    # --json and --save can be written; tune's --plot is a folder, not train's one figure file.
    check_outputs(argparse.Namespace(**{**vars(args), "plot": None}))
    try:
        training, validation, test = load_dataset(args.data, args.data_dir)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    if args.train_size is not None:
        if args.train_size > training[0].shape[0]:
            raise UsageError(f"--train-size {args.train_size} is more than the {training[0].shape[0]} training images.")
        training = (training[0][:args.train_size], training[1][:args.train_size])
    n_pixels = training[0].shape[1]
    n_classes = int(max(training[1].max(), validation[1].max())) + 1
    if args.layers[0] != n_pixels or args.layers[-1] < n_classes:
        raise UsageError(f"--layers {','.join(map(str, args.layers))}: {args.data} images have {n_pixels} pixels and "
                         f"{n_classes} classes, so the first layer must be {n_pixels} and the last at least "
                         f"{n_classes} (e.g. --layers {n_pixels},30,{n_classes}).")
    activation = args.activation[0] if len(args.activation) == 1 else args.activation
    log = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    try:
        result = tune(training, validation, test, args.layers, activation=activation, cost=args.cost,
                      init=args.init, output=args.output, seed=args.seed, batch_size=args.batch_size,
                      eta_start=args.eta, lmbda_start=args.lmbda, patience=args.patience, max_epochs=args.epochs,
                      threshold_images=args.threshold_images, threshold_epochs=args.threshold_epochs,
                      batch_sizes=args.batch_sizes, batch_seconds=args.batch_seconds, threads=args.threads, log=log,
                      announce=not args.quiet)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    doc = result.to_dict()
    if args.json:
        atomic_write_text(args.json, json.dumps(doc, indent=1))
    if args.save:
        result.network.save(args.save)
    if args.plot:
        for path in plot_steps(doc, args.plot):
            log(f"wrote {path}")
    f = result.final
    print(f"tuned: eta={result.eta:g} lmbda={result.lmbda:g} epochs={result.epochs} batch={result.batch_size}"
          f"{' schedule=halve' if result.schedule else ''}: validation accuracy {100 * f['validation_accuracy']:.2f}%, "
          f"test accuracy {100 * f['test_accuracy']:.2f}% ({result.seconds:.0f}s)", file=sys.stdout)
    return 0
