"""``netlearn train``: build a network from options, train it, report and save."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from .. import history
from ..plot import plot_format
from . import augmentation, techniques
from .common import (UsageError, add_data_options, add_network_options, add_split_options, add_table_options,
                     given, hidden_activation, hidden_sizes, load_data, load_own_data, name_list, nonneg_float,
                     own_data, positive_float, positive_int, track_given)


def register(sub) -> None:
    p = sub.add_parser("train", help="train a network (default: the book's [784,30,10] on MNIST)",
                       description="Train a fully-connected network by mini-batch SGD and report per-epoch figures.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_data_options(p, files=True)
    add_network_options(p)
    p.add_argument("--hidden", type=hidden_sizes, default=None, metavar="N[,N...]",
                   help="hidden layer sizes; the first and last layer are taken from the data (default: 30 for "
                        "--data FILE; else --layers)%(default).0s")
    p.add_argument("--eta", type=positive_float, default=0.5, help="learning rate")
    p.add_argument("--lmbda", type=nonneg_float, default=5.0, help="L2 regularization (the book's lambda)")
    p.add_argument("--epochs", type=positive_int, default=30, help="passes over the training data")
    p.add_argument("--batch-size", type=positive_int, default=10, help="examples per mini-batch")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="CPU threads sharing each mini-batch of 32 or more (default: NETLEARN_THREADS, else "
                        "the available cores, at most 4)")
    p.add_argument("--seed", type=int, default=None, help="seed for initialization and shuffling (default: a fresh random seed)")
    add_split_options(p)
    add_table_options(p)
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
    add_safety_options(p)
    p.set_defaults(func=run)
    track_given(p)  # last: --resume compares only the options actually given


FIGURES = history.FIGURES  # the figures --monitor can name (kept here for the modules that import it)


DEFAULT_LAYERS = [784, 30, 10]


def build_network(args, sizes=None, cost=None, output=None):
    from ..layers import activations
    from ..network import Network

    activation = hidden_activation(args.activation)
    output = args.output if output is None else output
    if output is not None:
        try:
            activations.get(output)
        except ValueError:
            raise UsageError(f"--output {output}: choose one of {', '.join(sorted(activations.ACTIVATIONS))}.") from None
    try:
        return Network(sizes or layers(args), activation=activation, cost=cost or args.cost, init=args.init,
                       output=output, seed=args.seed, **techniques.network_kwargs(args))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def layers(args, n_in: int = 784, n_out: int = 10) -> list[int]:
    """``--layers``, or ``--hidden`` between an input layer of ``n_in`` and an output layer of ``n_out``."""
    if args.hidden is None:
        return args.layers
    if args.layers != DEFAULT_LAYERS:
        raise UsageError("give --layers (every layer) or --hidden (the hidden ones), not both.")
    return [n_in, *args.hidden, n_out]


def check_table_options(args) -> None:
    """The --data FILE options, refused with MNIST; image options refused with a file."""
    if own_data(args):
        used = [o for o, v in (("--expand", getattr(args, "expand", None)), ("--augment", getattr(args, "augment", None)))
                if v]
        if used:
            raise UsageError(f"{', '.join(used)} distort images; --data {args.data} holds rows of numbers.")
        return
    used = [o for o, v in (("--target", args.target), ("--task", args.task), ("--validation", args.validation),
                           ("--test", args.test), ("--validation-split", args.validation_split is not None))
            if v]
    if used:
        raise UsageError(f"{', '.join(used)} apply to your own data (--data FILE.csv or FILE.npz), not to {args.data}.")


def own_network(args, data):
    """The network for ``--data FILE``: the data fixes the first and last layers, the task the output."""
    if args.hidden is None and args.layers == DEFAULT_LAYERS:
        sizes = data.sizes([30])
    else:
        sizes = layers(args, data.n_inputs, data.n_outputs)
        if sizes[0] != data.n_inputs or sizes[-1] != data.n_outputs:
            raise UsageError(f"--layers {','.join(map(str, sizes))}: {args.data} has {data.n_inputs} input columns and "
                             f"{data.n_outputs} {'classes' if data.preprocessing.task == 'classification' else 'targets'}"
                             f", so give the hidden layers only, e.g. --hidden {','.join(map(str, sizes[1:-1] or [30]))}.")
    cost, output = None, None
    if data.preprocessing.task == "regression":
        if args.cost not in ("cross-entropy", "quadratic"):
            raise UsageError(f"--cost {args.cost} is for classes; regression trains on the quadratic cost.")
        cost, output = "quadratic", args.output or "identity"
    net = build_network(args, sizes, cost, output)
    net.preprocessing = data.preprocessing
    return net


def own_split(args, data):
    """Training and evaluation pairs for ``--data FILE`` (``--eval``, ``--train-size``)."""
    training = data.training
    if args.train_size is not None:
        if args.train_size > training[0].shape[0]:
            raise UsageError(f"--train-size {args.train_size} is more than the {training[0].shape[0]} training rows.")
        training = (training[0][:args.train_size], training[1][:args.train_size])
    if args.eval == "test":
        if data.test is None:
            raise UsageError("--eval test needs the test rows: --test FILE.")
        return training, data.test
    return training, data.validation


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


def regression_flags(args, flags: dict) -> dict:
    """A regression network's accuracy flags record R², RMSE and MAE; early stopping then watches R²."""
    if getattr(args, "stop_on", None) is not None and args.stop_on.endswith("accuracy"):
        raise UsageError(f"--stop-on {args.stop_on}: a regression network has no accuracy; use "
                         f"{args.stop_on.replace('accuracy', 'cost')}, or leave --stop-on out to watch R².")
    figure = techniques.stop_figure(args)
    if figure.endswith("accuracy"):
        args.stop_on = figure.replace("accuracy", "r2")  # the Monitor records R² where it would record accuracy
    return flags


def run(args) -> int:
    from ..checkpoints import KeepLast
    from ..history import DivergenceError

    resume = resume_checkpoint(args)
    check_outputs(args)
    techniques.check(args)
    check_table_options(args)
    flags = techniques.extend_monitor(args, monitor_flags(args))
    if own_data(args):
        data = load_own_data(args)
        net = own_network(args, data)
        training, evaluation = own_split(args, data)
        if args.save and args.save_format == "network2":
            raise UsageError("--save-format network2 cannot hold the scaling and labels of --data FILE; use "
                             "netlearn's format.")
        what = f"rows of {args.data} ({net.task})"
    else:
        net = build_network(args)
        training, evaluation = select_data(args)
        training = augmentation.expand_training(args, training)
        what = f"{args.data} images"
    if net.task == "regression":
        flags = regression_flags(args, flags)
    if evaluation is None:
        flags = {k: v and not k.startswith("monitor_evaluation") for k, v in flags.items()}
    if args.plot is not None and not any(flags.values()):
        raise UsageError(f"--plot {args.plot}: nothing is monitored, so there is nothing to plot; name a figure with "
                         f"--monitor ({', '.join(FIGURES)}).")
    if not args.quiet:
        held = f"evaluating on {args.eval} ({evaluation[0].shape[0]})" if evaluation is not None else "no evaluation"
        print(f"{net}\ntraining on {training[0].shape[0]} {what}, {held}; eta={args.eta} lmbda={args.lmbda} "
              f"batch={args.batch_size} epochs={args.epochs}", file=sys.stderr)
    keeper, history, stopped = KeepLast(), None, None
    try:
        with np.errstate(over="ignore", invalid="ignore"), one_line_warnings():  # divergence is reported once
            if args.optimizer in techniques.SECOND_ORDER:
                if augmentation.callbacks(args):
                    raise UsageError(f"--augment needs a mini-batch optimizer, not --optimizer {args.optimizer}.")
                history = techniques.train_second_order(args, net, training, evaluation, flags)
            else:
                kwargs = techniques.fit_kwargs(args)
                kwargs["callbacks"] = augmentation.callbacks(args) + kwargs["callbacks"] + [keeper]
                if resume is not None:
                    kwargs["resume"] = resume
                history = net.fit(training, args.epochs, args.batch_size, args.eta, lmbda=args.lmbda,
                                  evaluation_data=evaluation, seed=args.seed, verbose=not args.quiet,
                                  progress=not args.quiet, threads=args.threads, **flags, **kwargs)
    except DivergenceError as exc:
        stopped = exc
    except KeyboardInterrupt as exc:
        stopped = exc
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return finish(args, net, history, keeper, stopped)


# ---------------------------------------------------------------------------
# Safety: outputs checked before training, the result kept whatever happens,
# and --resume held to the run it continues.
# ---------------------------------------------------------------------------
#: Exit status when a result could not be written where asked (it was written to a fallback path).
EXIT_WRITE_FAILED = 74  # sysexits.h EX_IOERR
EXIT_INTERRUPTED = 130
#: Options that --resume holds to the checkpoint's run: option dest -> the checkpoint's settings key.
RESUME_SETTINGS = ("eta", "lmbda", "l1", "optimizer", "cost", "layers", "batch_size")
#: Network options filled from the checkpoint's model when not given.
RESUME_NETWORK = ("activation", "output", "init", "dropout", "batch_norm", "input_noise")


def add_safety_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--override", type=name_list, default=None, metavar="SETTING[,SETTING...]",
                   help="with --resume: change these learning settings (eta, lmbda, l1) to the values given on "
                        "the command line; without it, an --eta, --lmbda, --l1, --cost, --optimizer, --layers or "
                        "--batch-size that contradicts the checkpoint's run is refused (default: none)%(default).0s")


def one_line_warnings():
    """Warnings (e.g. a checkpoint folder shared with another run) as one 'netlearn: warning:' line each."""
    import warnings

    class _Ctx(warnings.catch_warnings):
        def __enter__(self):
            out = super().__enter__()
            warnings.showwarning = lambda message, *a, **k: print(f"netlearn: warning: {message}", file=sys.stderr)
            return out

    return _Ctx()


def check_outputs(args) -> None:
    """Fail before training, not after, when --save, --json, --plot or --checkpoint cannot be written.

    Also removes the temporary files that killed runs left beside those outputs.
    """
    from ..files import OutputError, check_writable, check_writable_folder, clean_stale_temporaries

    try:
        for opt in ("json", "save", "plot"):
            path = getattr(args, opt, None)
            if path is not None:
                path = check_writable(path, f"--{opt}")
                clean_stale_temporaries(path.resolve().parent, path.name)
        if getattr(args, "checkpoint", None) is not None:
            check_writable_folder(args.checkpoint, "--checkpoint")
    except OutputError as exc:
        raise UsageError(str(exc)) from None
    if getattr(args, "plot", None) is not None:
        try:
            plot_format(args.plot)
        except ValueError as exc:
            raise UsageError(f"--plot {exc}") from None


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else f"{value:g}" \
        if isinstance(value, float) else str(value)


def resume_checkpoint(args):
    """For --resume: the checkpoint (as fit's ``resume``), with the run's settings held or changed on purpose.

    Options not given on the command line take the checkpoint's values; given
    ones that differ are refused, each named, unless --override names them.
    --epochs must exceed the epochs the checkpoint has finished.
    """
    from ..checkpoints import OVERRIDABLE, CheckpointError, load_checkpoint, resume_with

    overrides = list(getattr(args, "override", None) or [])
    if args.resume is None:
        if overrides:
            raise UsageError("--override changes the settings of a resumed run; it needs --resume FILE.")
        return None
    unknown = [o for o in overrides if o not in OVERRIDABLE]
    if unknown:
        raise UsageError(f"--override {','.join(unknown)}: only {', '.join(OVERRIDABLE)} can change on resume (the "
                         f"network, cost, optimizer and batch size belong to the run).")
    stated = given(args)
    unstated = [o for o in overrides if o not in stated]
    if unstated:
        raise UsageError(f"--override {','.join(unstated)} needs the new value too, e.g. --{unstated[0]} VALUE.")
    try:
        d = load_checkpoint(args.resume)
    except FileNotFoundError:
        raise UsageError(f"--resume {args.resume}: no such checkpoint file.") from None
    except CheckpointError as exc:
        raise UsageError(f"--resume: {exc}") from None
    model = d["model"]
    settings = d.get("settings") or {"lmbda": d["fit"]["lmbda"], "l1": d["fit"]["l1"],
                                     "batch_size": d["fit"]["batch_size"], "cost": model.get("cost"),
                                     "layers": (model.get("network") or {}).get("sizes")}
    contradictions = []
    for dest in RESUME_SETTINGS:
        saved = settings.get(dest)
        if saved is None or not hasattr(args, dest):
            continue
        if dest not in stated:
            setattr(args, dest, saved)
        elif dest not in overrides and getattr(args, dest) != saved:
            flag = "--" + dest.replace("_", "-")
            contradictions.append(f"{flag} {_shown(getattr(args, dest))} (the run has {_shown(saved)})")
    if contradictions:
        raise UsageError(f"--resume {args.resume}: {'; '.join(contradictions)}. Leave "
                         f"{'it' if len(contradictions) == 1 else 'them'} out to continue the run as it was, or "
                         f"change eta, lmbda or l1 on purpose with --override (e.g. --override eta --eta 0.1).")
    info = model.get("network") or {}
    for dest in RESUME_NETWORK:
        if dest in info and dest not in stated and hasattr(args, dest):
            value = info[dest]
            setattr(args, dest, [value] if dest == "activation" and isinstance(value, str) else value)
    if args.epochs <= d["epoch"]:
        raise UsageError(f"--epochs {args.epochs}: the checkpoint {args.resume} has finished {d['epoch']} epochs, and "
                         f"--epochs counts from the start of the run; give more than {d['epoch']}.")
    if overrides:
        d = resume_with(d, **{o: getattr(args, o) for o in overrides})
        print(f"netlearn: resuming with {', '.join(f'{o}={_shown(getattr(args, o))}' for o in overrides)} "
              f"(was {', '.join(f'{_shown(settings.get(o))}' for o in overrides)})", file=sys.stderr)
    return d


def finish(args, net, history, keeper, stopped) -> int:
    """Write the outputs of a finished, diverged or interrupted run; report; return the exit status.

    One mechanism keeps the result: after divergence or Ctrl-C the network
    gets the weights of the last finished epoch from ``keeper`` and the
    History up to it, and --save / --json / --plot are written as usual.
    """
    from ..training import DivergenceError

    status = 0
    if stopped is not None:
        if keeper.params is None:  # stopped before fit began (or on a full-batch optimizer)
            if isinstance(stopped, DivergenceError):
                print(f"netlearn: error: {stopped}", file=sys.stderr)
                return 1
            print("netlearn: interrupted before training began; nothing written.", file=sys.stderr)
            return EXIT_INTERRUPTED
        keeper.restore(net)
        history = keeper.history
        status = 1 if isinstance(stopped, DivergenceError) else EXIT_INTERRUPTED
    written, failures = write_outputs(args, net, history)
    if stopped is not None:
        what = (f"wrote {', '.join(written)} with the weights and History of epoch {keeper.epochs}"
                if written else "nothing written (no --save, --json or --plot)")
        if isinstance(stopped, DivergenceError):
            print(f"netlearn: error: {stopped} {what[0].upper() + what[1:]}.", file=sys.stderr)
        else:
            print(f"netlearn: interrupted in epoch {keeper.epochs + 1}; {what}.", file=sys.stderr)
    for line in failures:
        print(f"netlearn: error: {line}", file=sys.stderr)
    return EXIT_WRITE_FAILED if failures else status


def write_outputs(args, net, history) -> tuple[list[str], list[str]]:
    """Write --json, --save and --plot (each atomically, a failed one to a fallback path); print the figures.

    Returns the outputs written where asked and one message per output that
    had to go elsewhere (or could not be written at all).
    """
    from ..files import atomic_write_text, write_with_fallback

    def plot(path):
        from ..plot import plot_history

        plot_history(history, path, title=f"{net.sizes} eta={args.eta} lmbda={args.lmbda}")

    writers = {"json": lambda path: atomic_write_text(path, json.dumps(history.to_dict(), indent=1)),
               "save": lambda path: net.save(path, format=args.save_format),
               "plot": plot}
    written, failures = [], []
    for opt, write in writers.items():
        path = getattr(args, opt, None)
        if path is None or (opt == "plot" and not history.epochs):
            continue
        try:
            where, err = write_with_fallback(path, write)
        except OSError as exc:
            failures.append(f"could not write --{opt} {path} ({exc.strerror or exc}), nor at a fallback path; "
                            f"the {'network' if opt == 'save' else 'result'} is lost.")
            continue
        if err is None:
            written.append(f"--{opt} {path}")
        else:
            failures.append(f"could not write --{opt} {path} ({err.strerror or err}); the older file there is "
                            f"unchanged, and the result was written to {where} instead.")
    if history.evaluation_r2:
        # With early stopping the network keeps an earlier epoch's weights: report that epoch.
        kept = history.best_epoch - 1 if history.best_epoch is not None else -1
        print(f"final {args.eval} R² {history.evaluation_r2[kept]:.4f}  RMSE {history.evaluation_rmse[kept]:.4g}  "
              f"MAE {history.evaluation_mae[kept]:.4g} (best R² {max(history.evaluation_r2):.4f})")
    if history.evaluation_accuracy:
        # With early stopping the network ends with the best epoch's weights: "final" is theirs.
        best = max(history.evaluation_accuracy)
        print(f"final {args.eval} accuracy {100 * history.kept('evaluation_accuracy'):.2f}% "
              f"(best {100 * best:.2f}%)")
    if history.best_epoch is not None:
        print(f"kept the weights of epoch {history.best_epoch} of {history.epochs}")
    return written, failures
