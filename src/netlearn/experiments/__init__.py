"""The book's chapter-3 experiments, one module each, runnable as ``netlearn reproduce NAME``.

Each experiment trains the networks of one of the book's figure scripts
(``overfitting.py``, ``multiple_eta.py``, ``weight_initialization.py``,
``more_data.py``) with the same network, hyper-parameters, data sizes,
epochs and initialization, then writes into its output folder

* ``NAME.json``: the settings and the per-epoch History of every run, and
* the book's plot(s) as PNG,

and prints a short table.  From Python::

    >>> from netlearn import experiments
    >>> summary = experiments.run("multiple-eta", out="results", quick=True)

``quick=True`` runs a shortened version (fewer epochs and sizes) that checks
the whole pipeline in seconds; its numbers are not the book's.  ``slowdown``
(the chapter's opening: one sigmoid neuron, quadratic against cross-entropy
cost) makes its own one-example data and needs no MNIST.
"""
from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from typing import Callable

from .common import BOOK_SEED, Context, ExperimentError, Summary, format_table

#: Experiment name -> module name, in the order ``all`` runs them.
EXPERIMENTS: dict[str, str] = {
    "overfitting": "overfitting",
    "regularized": "regularized",
    "overfitting-full": "overfitting_full",
    "regularized-full": "regularized_full",
    "weight-init": "weight_init",
    "multiple-eta": "multiple_eta",
    "more-data": "more_data",
    "slowdown": "slowdown",
    "hidden-100": "hidden_100",
    "expanded": "expanded",
}

__all__ = ["EXPERIMENTS", "BOOK_SEED", "Context", "ExperimentError", "Summary", "describe", "needs_data", "run",
           "format_table"]


def describe(name: str) -> str:
    """The one-line description of experiment ``name``."""
    return _module(name).DESCRIPTION


def needs_data(name: str) -> bool:
    """Does experiment ``name`` (or any, for ``"all"``) train on MNIST? (slowdown makes its own one example.)"""
    names = list(EXPERIMENTS) if name == "all" else [name]
    return any(getattr(_module(n), "NEEDS_DATA", True) for n in names)


def _module(name: str):
    if name not in EXPERIMENTS:
        raise ExperimentError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)} or 'all'.")
    return importlib.import_module(f"{__name__}.{EXPERIMENTS[name]}")


def run(name: str, out: str | os.PathLike = "netlearn-results", data_dir: str | os.PathLike | None = None,
        seed: int = BOOK_SEED, quick: bool = False, data=None, log: Callable[[str], None] = print,
        verbose: bool = False, svm: bool = True) -> list[Summary]:
    """Run experiment ``name`` (or ``"all"``), writing into ``out/NAME/``; return one Summary per experiment.

    ``data`` is ``(training, validation, test)`` as from
    :func:`netlearn.data.load_mnist`; when omitted MNIST is read from
    ``data_dir`` (else ``$NETLEARN_DATA``, else the per-user cache).
    ``seed`` (the book's 12345678 by default) seeds every network's
    initialization and shuffling.  ``verbose`` prints one line per epoch.
    ``svm=False`` skips more-data's SVM comparison (its slowest part).
    """
    names = list(EXPERIMENTS) if name == "all" else [name]
    modules = [_module(n) for n in names]
    if data is None and any(needs_data(n) for n in names):
        from ..data.mnist import load_mnist

        data = load_mnist(data_dir)
    root = Path(out).expanduser()
    if root.exists() and not root.is_dir():
        raise ExperimentError(f"--out {root} is a file; give a folder (it is created if missing).")
    summaries = []
    for n, mod in zip(names, modules):
        folder = root / n
        folder.mkdir(parents=True, exist_ok=True)
        ctx = Context(name=n, data=data, out=folder, seed=seed, quick=quick, log=log, verbose=verbose,
                      svm=svm)
        log(f"== {n}: {mod.DESCRIPTION}{'  [quick]' if quick else ''}")
        t0 = time.perf_counter()
        summary = mod.run(ctx)
        summary.seconds = time.perf_counter() - t0
        log(f"-- {n} done in {summary.seconds:.1f}s: {summary.headline}; files in {folder}")
        summaries.append(summary)
    return summaries
