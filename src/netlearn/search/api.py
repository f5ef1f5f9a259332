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

import time
from typing import Any, Callable, NamedTuple

from ..data.mnist import load_dataset
from .pbt import pbt
from .storage import SearchError, kind, open_storage, optuna
from .study import Settings, create_study
from .summary import summary
from .worker import Worker

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
    (validation monitored, or test with ``eval="test"``).  ``storage`` and
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
    if training_data is None:
        training, evaluation = _load(settings, data, data_dir)
        settings.data = data
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
        return SearchResult(summ, net, None)
    t0 = time.perf_counter()
    store = open_storage(storage)
    st = create_study(store, study, settings, sampler_seed=settings.seed)
    worker = Worker(st, settings, training, evaluation, heartbeat=heartbeat if storage else None, threads=threads,
                    quiet=not verbose, print_fn=print_fn, one_worker_only=kind(storage) == "sqlite").run()
    return SearchResult(summary(st, time.perf_counter() - t0), worker.best_network, st)


def _classes(training, evaluation, default: int) -> int:
    y = training[1]
    if getattr(y, "ndim", 1) == 2:
        return int(y.shape[1])
    return max(default, int(max(y.max(), evaluation[1].max())) + 1)


def _load(settings: Settings, data: str, data_dir: str | None):
    """``(training, evaluation)`` of a named data set, the first ``train_size`` images if given."""
    training, validation, test = load_dataset(data, data_dir)
    if settings.train_size is not None:
        if settings.train_size > training[0].shape[0]:
            raise SearchError(f"train_size {settings.train_size} is more than the {training[0].shape[0]} "
                              f"training images.")
        training = (training[0][:settings.train_size], training[1][:settings.train_size])
    return training, (validation if settings.eval == "validation" else test)


__all__ = ["search", "SearchResult"]
