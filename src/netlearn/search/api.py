"""``netlearn.search(...)``: a whole hyper-parameter search from Python.

>>> import netlearn
>>> result = netlearn.search(eta="0.01:10:log", lmbda="0.1:100:log", epochs=10, trials=64, seed=0)
>>> result.summary["best"]                     # {"number", "params", "value"}
>>> result.network.accuracy(test)              # the best trial's network, at its best epoch

Space options take the command line's forms (``"LOW:HIGH"``, ``"LOW:HIGH:log"``,
``"a,b,c"``) or Python ones: a tuple ``(low, high)`` / ``(low, high, "log")``
is a range, a list is alternatives (``hidden=[30, 100, [64, 32]]``).
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, NamedTuple

from ..data.layout import DATASETS
from ..data.mnist import load_dataset
from ..data.tabular import is_table_file, load_tabular
from .pbt import pbt
from .storage import SearchError, kind, open_storage, optuna
from .study import Settings, create_study
from .summary import summary
from .worker import Worker

#: ``Settings.layers``' default: with ``--data FILE`` its hidden layer (30) goes between the data's first and last.
DEFAULT_LAYERS = [784, 30, 10]
SPACE_OPTIONS = ("eta", "lmbda", "mu", "batch_size", "dropout", "optimizer", "hidden", "activation")


class SearchResult(NamedTuple):
    """What :func:`search` returns: the JSON summary (see :mod:`netlearn.search.summary`) and the best network."""

    summary: dict
    network: Any
    study: Any


def space_text(name: str, value: Any) -> Any:
    """A Python space value in the command line's form."""
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return ":".join(str(v) for v in value)
    if isinstance(value, list):
        if name in ("hidden", "activation"):
            return [",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v) for v in value]
        return ",".join(str(v) for v in value)
    return str(value)


def search(training_data=None, evaluation_data=None, *, storage: str | None = None, study: str = "netlearn",
           data: str = "mnist", data_dir: str | None = None, heartbeat: float = 10.0, threads: int | None = None,
           verbose: bool = False, print_fn: Callable[[str], None] = print, **options: Any) -> SearchResult:
    """Run a search in this process and return its summary and best network.

    ``options`` are :class:`netlearn.search.study.Settings`' fields:
    the space (``eta``, ``lmbda``, ``mu``, ``batch_size``, ``dropout``,
    ``optimizer``, ``hidden``, ``activation``), the training settings
    (``layers``, ``cost``, ``init``, ``output``, ``epochs``, ``train_size``,
    ``eval``) and the search's (``sampler``, ``trials``, ``population``,
    ``pruner``, ``seed``).  ``strategy="pbt"`` with ``interval=P`` runs
    population-based training instead (:mod:`netlearn.search.pbt`; no
    Optuna needed).  A space option given one value is fixed, not
    searched.  Without ``training_data`` the data set ``data`` is loaded
    (validation monitored, or test with ``eval="test"``).  ``data`` may
    also be your own ``"file.csv"`` or ``"file.npz"`` (classes only: a
    trial's value is its validation accuracy), with ``target``, ``task``,
    ``scale``, ``validation_split`` (seeded by ``seed``), ``validation``
    and ``test`` as for ``netlearn train --data FILE``; the data fixes the
    first and last layers, and the best network carries the scaling and
    labels (``result.network.preprocessing``), so it can be saved and used
    by ``netlearn evaluate`` and ``predict`` on raw files.  ``storage`` and
    ``study`` as for ``netlearn search``: by default an in-memory study.
    """
    strategy = options.pop("strategy", "optuna")
    interval = options.pop("interval", 4)
    if strategy not in ("optuna", "pbt"):
        raise ValueError(f"The 'strategy' parameter must be 'optuna' or 'pbt'. Got {strategy!r} instead.")
    if strategy == "optuna":
        optuna()  # a missing extra is said before any data are loaded
    elif storage is not None:
        raise SearchError("--strategy pbt runs in one process: it takes no --storage.")
    space, fixed = {}, {}
    for name in SPACE_OPTIONS:
        if name in options:
            value = options.pop(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "hidden":
                fixed[name] = value
            elif name == "activation" and isinstance(value, str) and " " not in value:
                space[name] = [value]
            else:
                space[name] = space_text(name, value)
    try:
        settings = Settings(space=space, **fixed, **options)
    except TypeError as exc:
        raise TypeError(f"search(): {exc}") from None
    preprocessing = None
    if training_data is None:
        settings.data = resolve_paths(settings, data)
        training, evaluation, preprocessing = load_search_data(settings, data_dir)
    else:
        training, evaluation = training_data, evaluation_data
        if evaluation is None:
            raise ValueError("search() needs evaluation_data with training_data: a trial's value is its "
                             "best evaluation accuracy.")
        settings.layers = [int(training[0].shape[1]), *settings.layers[1:-1], _classes(training, evaluation,
                                                                                     settings.layers[-1])]
    if strategy == "pbt":
        summ, net = pbt(training, evaluation, settings, interval, threads=threads, verbose=verbose,
                        print_fn=print_fn)
        return SearchResult(summ, _with(net, preprocessing), None)
    t0 = time.perf_counter()
    store = open_storage(storage)
    st = create_study(store, study, settings, sampler_seed=settings.seed)
    worker = Worker(st, settings, training, evaluation, heartbeat=heartbeat if storage else None, threads=threads,
                    quiet=not verbose, print_fn=print_fn, one_worker_only=kind(storage) == "sqlite").run()
    return SearchResult(summary(st, time.perf_counter() - t0), _with(worker.best_network, preprocessing), st)


def _with(net, preprocessing):
    """The best network, carrying the scaling and labels of ``--data FILE`` so it can be saved and used on raw files."""
    if net is not None and preprocessing is not None:
        net.preprocessing = preprocessing
    return net


def _classes(training, evaluation, default: int) -> int:
    y = training[1]
    if getattr(y, "ndim", 1) == 2:
        return int(y.shape[1])
    return max(default, int(max(y.max(), evaluation[1].max())) + 1)


def own_data(settings: Settings) -> bool:
    """Does ``settings.data`` name the user's own CSV or ``.npz`` file rather than MNIST or Fashion-MNIST?"""
    return settings.data not in DATASETS


def resolve_paths(settings: Settings, data: str) -> str:
    """``data`` (and the validation and test files) as absolute paths, stored so every worker reads the same files.

    A worker started in another folder, or on another machine, finds the
    files at these paths; on another machine they must exist there too.
    The options of a file are refused with MNIST.
    """
    if data in DATASETS:
        used = [o for o, v in (("target", settings.target), ("task", settings.task),
                               ("validation", settings.validation), ("validation_split", settings.validation_split),
                               ("test", settings.test), ("scale", settings.scale != "standard")) if v]
        if used:
            raise SearchError(f"{', '.join('--' + u.replace('_', '-') for u in used)} apply to your own data "
                              f"(--data FILE.csv or FILE.npz), not to {data}.")
        return data
    if not is_table_file(data):
        raise SearchError(f"--data {data}: expected {' or '.join(DATASETS)}, or your own data as a .csv file "
                          f"(with a header) or a .npz file (arrays X and y).")
    for name in ("validation", "test"):
        if getattr(settings, name) is not None:
            setattr(settings, name, os.path.abspath(getattr(settings, name)))
    return os.path.abspath(data)


def load_search_data(settings: Settings, data_dir: str | None = None):
    """``(training, evaluation, preprocessing)`` for ``settings``; ``preprocessing`` is None for a named data set.

    For ``--data FILE`` the held-out rows are drawn with ``settings.seed``
    (so every worker holds out the same ones), the first and last layers are
    set from the data (``settings.layers``, in place), and a regression
    target is refused: a trial's value is its validation accuracy.
    """
    if not own_data(settings):
        return (*_load(settings, settings.data, data_dir), None)
    split = settings.validation_split
    if split is None:
        split = 0.0 if settings.validation is not None else 0.2
    elif settings.validation is not None and split:
        raise SearchError("give --validation FILE or --validation-split F, not both.")
    data = load_tabular(settings.data, target=settings.target, task=settings.task, scale=settings.scale,
                        validation=settings.validation, validation_split=split or None, test=settings.test,
                        seed=settings.seed)
    pre = data.preprocessing
    if pre.task == "regression":
        raise SearchError(f"{settings.data}: column '{pre.target}' is a regression target, but a search ranks its "
                          f"trials by validation accuracy, so it takes classes only; give --task classification if "
                          f"its values are classes, or tune a regression with 'netlearn train'.")
    training = data.training
    if settings.train_size is not None:
        if settings.train_size > training[0].shape[0]:
            raise SearchError(f"--train-size {settings.train_size} is more than the {training[0].shape[0]} "
                              f"training rows.")
        training = (training[0][:settings.train_size], training[1][:settings.train_size])
    if settings.eval == "test":
        if data.test is None:
            raise SearchError("--eval test needs the test rows: --test FILE.")
        evaluation = data.test
    else:
        if data.validation is None:
            raise SearchError("a trial's value is its validation accuracy: hold out rows with --validation-split F "
                              "(0 < F < 1) or give --validation FILE.")
        evaluation = data.validation
    settings.layers = own_layers(settings.layers, data.n_inputs, data.n_outputs, settings.data)
    return training, evaluation, pre


def own_layers(layers: list, n_in: int, n_out: int, path: str) -> list:
    """``layers`` with the data's first and last layer: ``--layers``' hidden layers (by default 30) in between.

    ``--layers`` given in full must agree with the data (the search's
    ``--hidden`` alternatives replace its hidden layers per trial).
    """
    layers = list(layers)
    if layers[0] == n_in and layers[-1] == n_out:
        return layers
    if layers == DEFAULT_LAYERS:
        return [n_in, *layers[1:-1], n_out]
    raise SearchError(f"--layers {','.join(map(str, layers))}: {path} has {n_in} input columns and {n_out} "
                      f"classes, so the first layer must be {n_in} and the last {n_out}; or give the hidden layers "
                      f"only, with --hidden {','.join(map(str, layers[1:-1] or [30]))}.")


def _load(settings: Settings, data: str, data_dir: str | None):
    """``(training, evaluation)`` of a named data set, the first ``train_size`` images if given."""
    training, validation, test = load_dataset(data, data_dir)
    if settings.train_size is not None:
        if settings.train_size > training[0].shape[0]:
            raise SearchError(f"train_size {settings.train_size} is more than the {training[0].shape[0]} "
                              f"training images.")
        training = (training[0][:settings.train_size], training[1][:settings.train_size])
    return training, (validation if settings.eval == "validation" else test)


__all__ = ["search", "SearchResult", "load_search_data", "resolve_paths", "own_data"]
