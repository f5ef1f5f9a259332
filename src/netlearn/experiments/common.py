"""What every experiment shares: the run context, one training run, results JSON and tables."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..training import Callback, TrainingState

#: The seed the book's figure scripts use (``random.seed(12345678)``).
BOOK_SEED = 12345678


class ExperimentError(ValueError):
    """An experiment that cannot run as asked (unknown name, output folder unusable, too little data)."""


@dataclass
class Context:
    """Everything an experiment needs: the data, where to write, the seed, quick mode, a printer, options."""

    name: str
    data: tuple  # (training, validation, test), each (X, y)
    out: Path
    seed: int = BOOK_SEED
    quick: bool = False
    log: Callable[[str], None] = print
    verbose: bool = False
    #: Run the SVM beside the network in more-data (needs scikit-learn).
    svm: bool = True

    @property
    def training(self):
        return self.data[0]

    @property
    def validation(self):
        return self.data[1]

    @property
    def test(self):
        return self.data[2]

    def first(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` training images (all of them, with a note, when fewer are available)."""
        X, y = self.training
        if n > X.shape[0]:
            self.log(f"   note: asked for {n} training images but only {X.shape[0]} are available; using them all")
            n = X.shape[0]
        return X[:n], y[:n]


@dataclass
class Summary:
    """An experiment's headline figure (for the README table), its wall time and the files it wrote."""

    name: str
    headline: str
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0


def train(ctx: Context, sizes: list[int], init: str, training_data, epochs: int, eta: float, lmbda: float,
          evaluation_data=None, callbacks=(), **monitor: bool):
    """Train a fresh cross-entropy ``Network(sizes, init=init)`` as the book's scripts do; return (net, History).

    The network's initialization and the shuffling are both seeded with
    ``ctx.seed``, mini-batches are 10 (the book's choice throughout chapter
    3), and ``monitor`` holds fit's ``monitor_*`` flags.
    """
    from ..network import Network

    net = Network(sizes, cost="cross-entropy", init=init, seed=ctx.seed)
    history = net.fit(training_data, epochs, 10, eta, lmbda=lmbda, evaluation_data=evaluation_data,
                      seed=ctx.seed, verbose=ctx.verbose, callbacks=callbacks, **monitor)
    return net, history


class BookEvaluationCost(Callback):
    """The evaluation cost as the book's ``total_cost`` computes it, recorded after each epoch.

    netlearn's ``evaluation_cost`` adds the L2 term ``(lmbda / 2n) sum w^2``
    with ``n`` the *training* set's size, so the cost on any data set is the
    quantity being minimized.  The book's ``total_cost(data, lmbda)`` divides
    by ``len(data)`` instead: on 10,000 test images after training on 1,000,
    its L2 term is ten times smaller.  This callback turns each recorded
    ``evaluation_cost`` into the book's figure,
    ``C0 + (lmbda / 2 n_eval) sum w^2``, into ``self.values``.
    """

    order = 1  # after the Monitor has recorded the epoch's evaluation cost

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_epoch_end(self, state: TrainingState) -> None:
        if not state.history.evaluation_cost or state.evaluation_data is None:
            return
        cost = state.history.evaluation_cost[-1]
        if state.lmbda:
            n_train, n_eval = state.training_data[0].shape[0], state.evaluation_data[0].shape[0]
            squares = sum(float(np.vdot(w, w)) for w in state.net.weights())
            cost += 0.5 * state.lmbda * squares * (1.0 / n_eval - 1.0 / n_train)
        self.values.append(cost)


def training_sizes(ctx: Context, name: str, sizes: list[int]) -> list[int]:
    """The training-set sizes of ``sizes`` that the data can give (a note for those skipped; none is an error)."""
    available = ctx.training[0].shape[0]
    skipped = [s for s in sizes if s > available]
    if skipped:
        ctx.log(f"   note: only {available} training images; skipping sizes {', '.join(map(str, skipped))}")
    usable = [s for s in sizes if s <= available]
    if not usable:
        raise ExperimentError(f"{name} needs at least {min(sizes)} training images; the data has {available}.")
    return usable


def run_record(label: str, settings: dict, history, seconds: float) -> dict:
    """One run's entry in the results JSON: its label, settings, wall time and per-epoch History."""
    return {"label": label, "settings": settings, "seconds": round(seconds, 3), "history": history.to_dict()}


def write_results(ctx: Context, payload: dict) -> Path:
    """Write ``ctx.out/NAME.json`` atomically with the experiment's name, seed and mode added."""
    from .. import __version__
    from ..io import atomic_write_text

    doc = {"experiment": ctx.name, "seed": ctx.seed, "quick": ctx.quick, "netlearn": __version__, **payload}
    path = ctx.out / f"{ctx.name}.json"
    atomic_write_text(path, json.dumps(doc, indent=1, default=_jsonable))
    return path


def _jsonable(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def timed(fn, *args, **kwargs):
    """``(result, seconds)`` of ``fn(*args, **kwargs)``."""
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0


def pct(x: float | None) -> str:
    """A fraction as a percentage with two decimals, or '-' when missing."""
    return "-" if x is None else f"{100 * x:.2f}%"


def format_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table, columns of numbers right-aligned, text left-aligned, a rule under the header."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    right = [all(_numeric(r[i]) for r in cells[1:]) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if ra else c.ljust(w) for c, w, ra in zip(r, widths, right)).rstrip()
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join("   " + line for line in lines)


def _numeric(cell: str) -> bool:
    """Does a table cell read as a number (``95.12%``, ``0.4``, ``12.3s``, ``[784,30,10]``)? Then right-align it."""
    return bool(cell) and (cell[0].isdigit() or cell[0] in "-.[") and cell != "-" * len(cell) or cell == "-"
