"""Plots (PNG, PDF or SVG, as the suffix says): learning curves, grid heat maps and the book's chapter-3 figures.

``plot_history`` draws what ``netlearn train --plot`` shows (cost and
accuracy per epoch, training and evaluation), ``plot_grid`` the heat maps
of ``netlearn grid --plot``.  The other functions draw the
figures of the book's scripts for ``netlearn reproduce``: the overfitting
panels with their epoch ranges (``plot_overfitting``, ``plot_curve``,
``plot_accuracy_comparison``), training cost for several learning rates
(``plot_multiple_eta``), default against large weight initialization
(``plot_weight_init``) and accuracy against training set size, linear, log
or beside an SVM (``plot_more_data``).

Every function draws on a bare ``matplotlib.figure.Figure`` (no pyplot, no
GUI backend, no global state) and writes through :func:`save_figure`, which
replaces the file atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .files import temporary_file
from .history import FIGURES


#: The file types a plot can be written as, by suffix (matplotlib's format names).
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def plot_format(path: str | os.PathLike) -> str:
    """The file type for ``path``, from its suffix (``.png``, ``.pdf``, ``.svg``); any other suffix is a ValueError.

    Called before training by the command line, so that a plot that could
    not be written is refused before the time is spent.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{os.fspath(path)}: a plot's file type follows its suffix; use {', '.join(FORMATS)} "
                         f"(got {suffix or 'no suffix'}).")
    return FORMATS[suffix]


def _integer_epochs(ax) -> None:
    """Epochs are whole numbers: no tick at epoch 2.5."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


#: How each kind of figure is named on the axes.
LABELS = {"cost": "cost", "accuracy": "accuracy", "r2": "R²", "rmse": "RMSE"}


def plot_history(history, path: str | os.PathLike, title: str = "") -> None:
    """Draw the monitored figures of ``history`` and save them to ``path`` atomically.

    One panel per kind that was monitored: cost (training and evaluation),
    accuracy (in percent), or for a regression network R² and RMSE; a kind
    that was not monitored gets no panel, and a History with none is a
    ValueError.  The file type follows the suffix
    (see :func:`plot_format`).
    """
    # A bare Figure needs no GUI backend and changes no global matplotlib state.
    from matplotlib.figure import Figure

    plot_format(path)
    kinds = [k for k in ("cost", "accuracy", "r2", "rmse")
             if any(getattr(history, f"{w}_{k}", None) for w in ("training", "evaluation"))]
    if not kinds:
        raise ValueError("Nothing to plot: the History records no cost or accuracy. Monitor at least one figure "
                         f"({', '.join(FIGURES)}).")
    fig = Figure(figsize=(5 * len(kinds), 4), dpi=100)
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    for ax, kind in zip(axes, kinds):
        for which in ("training", "evaluation"):
            values = getattr(history, f"{which}_{kind}")
            if values:
                ys = [100 * v for v in values] if kind == "accuracy" else values
                ax.plot(range(1, len(values) + 1), ys, label=f"{which} {LABELS[kind]}",
                        marker="." if len(values) < 20 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(LABELS[kind] + (" (%)" if kind == "accuracy" else ""))
        _integer_epochs(ax)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_grid(configs, histories, path: str | os.PathLike, which: str = "validation", title: str = "") -> None:
    """Heat maps of the best evaluation accuracy of a grid: eta across, lmbda down.

    ``configs[k]`` holds run ``k``'s ``eta``, ``lmbda``, ``mu`` and ``seed``
    (as ``Population.configs`` does) and ``histories[k]`` its History.  Each
    value of ``mu`` gets a map of its own (momentum changes the update rule,
    so its runs are not averaged with others); runs that differ only in their
    seed are replicates, and a cell shows their mean, which the title says.
    A run that recorded no accuracy (it diverged at once) counts as 0.
    """
    from matplotlib.figure import Figure

    plot_format(path)
    etas = sorted({c["eta"] for c in configs})
    lmbdas = sorted({c["lmbda"] for c in configs})
    mus = sorted({c["mu"] for c in configs})
    total = np.zeros((len(mus), len(lmbdas), len(etas)))
    count = np.zeros_like(total)
    for cfg, h in zip(configs, histories):
        m, r, c = mus.index(cfg["mu"]), lmbdas.index(cfg["lmbda"]), etas.index(cfg["eta"])
        total[m, r, c] += max(h.evaluation_accuracy) if h.evaluation_accuracy else 0.0
        count[m, r, c] += 1
    best = 100 * total / np.maximum(count, 1)
    seeds = int(count.max())
    lo, hi = float(best.min()), float(best.max())
    fig = Figure(figsize=(len(mus) * (1.2 * len(etas) + 2) + 1.5, 0.8 * len(lmbdas) + 2.8), dpi=100)
    axes = fig.subplots(1, len(mus), squeeze=False)[0]
    for m, ax in enumerate(axes):
        im = ax.imshow(best[m], cmap="viridis", aspect="auto", origin="lower", vmin=lo, vmax=hi)
        ax.set_xticks(range(len(etas)), [f"{e:g}" for e in etas])
        ax.set_yticks(range(len(lmbdas)), [f"{lm:g}" for lm in lmbdas])
        ax.set_xlabel("eta")
        ax.set_ylabel("lmbda")
        for r in range(len(lmbdas)):
            for c in range(len(etas)):
                ax.text(c, r, f"{best[m, r, c]:.1f}", ha="center", va="center",
                        color="white" if best[m, r, c] < hi - 0.5 * (hi - lo) else "black")
        if len(mus) > 1:
            ax.set_title(f"mu = {mus[m]:g}")
    fig.colorbar(im, ax=list(axes), label=f"best {which} accuracy (%)")
    head = title or f"best {which} accuracy"
    fig.suptitle(head + (f", mean of {seeds} seeds per cell" if seeds > 1 else ""))
    save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike) -> None:
    """Save a matplotlib figure via a temporary file and a rename; the file type follows the suffix."""
    path = Path(path)
    fmt = plot_format(path)
    fd, tmp = temporary_file(path, path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------
# The book's figures (chapter 3).  Each function draws one PNG the way the
# book's scripts (overfitting.py, multiple_eta.py, weight_initialization.py,
# more_data.py) draw theirs, on a bare Figure, and saves it atomically.
# Accuracies are fractions in [0, 1] as in History and are drawn in percent.
# ---------------------------------------------------------------------------

#: The book's colours: blue and orange (overfitting.py, weight_initialization.py, more_data.py), yellow and the
#: darker orange of multiple_eta.py's COLORS.
BOOK_BLUE, BOOK_ORANGE, BOOK_YELLOW, BOOK_DARK_ORANGE = "#2A6EA6", "#FFA933", "#FFCD33", "#FF7033"
BOOK_COLORS = (BOOK_BLUE, BOOK_YELLOW, BOOK_DARK_ORANGE)

#: The book's fixed accuracy ranges (percent): full-data runs, weight initialization, more data.
FULL_DATA_YLIM, WEIGHT_INIT_YLIM, MORE_DATA_YLIM = (90, 100), (85, 100), (60, 100)


def book_ylim(ax, values, low: float, high: float) -> None:
    """Set the book's fixed y range ``low``..``high``, widened (in steps of 5) only if some value lies outside.

    The book's figures share a range so runs compare at a glance; a short or
    badly tuned run (``--quick``, tiny data) still shows its whole curve.
    """
    import math

    values = [v for v in values if math.isfinite(v)]
    if values:
        low = min(low, 5 * math.floor(min(values) / 5))
        high = max(high, 5 * math.ceil(max(values) / 5))
    ax.set_ylim(low, high)


def _epochs_axis(ax, values, xmin: int, xmax: int | None, percent: bool, color: str, label: str | None = None,
                 marker: str | None = None):
    """Plot ``values`` over epochs ``xmin`` .. ``xmax``, counted from 0 as the book's scripts count them.

    ``values[i]`` (the figure after the network's ``i + 1``-th epoch of
    training, as in History) is drawn at epoch ``i``: the book plots
    ``np.arange(xmin, num_epochs)`` against ``values[xmin:num_epochs]``.
    """
    from matplotlib.ticker import MaxNLocator

    n = len(values)
    xmax = n if xmax is None else min(xmax, n)
    xs = list(range(xmin, xmax))
    ys = [(100 * v if percent else v) for v in values[xmin:xmax]]
    ax.plot(xs, ys, color=color, label=label, marker=marker, markersize=4 if marker else None)
    ax.set_xlim(xmin, max(xmax, xmin + 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("Epoch")
    return ys


def plot_curve(values, path: str | os.PathLike, title: str, ylabel: str = "", xmin: int = 0,
               xmax: int | None = None, percent: bool = False, color: str = BOOK_COLORS[0]) -> None:
    """One figure per epoch, e.g. the training cost from epoch 200 to 400 (the book's ``overfitting1.png``).

    ``values[i]`` is drawn at epoch ``i`` (counted from 0, as the book does);
    ``xmin`` and ``xmax`` choose the epochs shown (the book starts its training-cost and
    test-accuracy plots at epoch 200 to show the plateau).  ``percent`` draws
    accuracies (fractions) as percentages.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.subplots()
    _epochs_axis(ax, values, xmin, xmax, percent, color)
    ax.set_title(title)
    if ylabel:
        ax.set_ylabel(ylabel)
    fig.tight_layout()
    save_figure(fig, path)


def plot_overfitting(history, path: str | os.PathLike, title: str = "", training_cost_xmin: int = 200,
                     test_accuracy_xmin: int = 200, test_cost_xmin: int = 0, training_accuracy_xmin: int = 0,
                     evaluation_name: str = "test") -> None:
    """The book's four overfitting plots on one 2x2 PNG (overfitting.py's ``make_plots``).

    Top left the training cost from ``training_cost_xmin``, top right the
    accuracy on the evaluation (test) data from ``test_accuracy_xmin``, bottom
    left the test cost, bottom right the training accuracy.  Read together
    they show the chapter's point: the training cost keeps falling while test
    accuracy stops improving and test cost rises -- the network memorizes the
    training data instead of learning to generalize.  An ``xmin`` beyond the
    last epoch falls back to 0, so short runs still show their whole curve.
    """
    from matplotlib.figure import Figure

    n = history.epochs
    panels = (
        (history.training_cost, training_cost_xmin, False, "Cost on the training data"),
        (history.evaluation_accuracy, test_accuracy_xmin, True, f"Accuracy (%) on the {evaluation_name} data"),
        (history.evaluation_cost, test_cost_xmin, False, f"Cost on the {evaluation_name} data"),
        (history.training_accuracy, training_accuracy_xmin, True, "Accuracy (%) on the training data"),
    )
    fig = Figure(figsize=(11, 8), dpi=100)
    axes = fig.subplots(2, 2).ravel()
    for ax, (values, xmin, percent, label) in zip(axes, panels):
        if not values:
            ax.text(0.5, 0.5, f"{label}: not monitored", ha="center", va="center", transform=ax.transAxes)
            continue
        _epochs_axis(ax, values, xmin if xmin < n else 0, None, percent, BOOK_COLORS[0])
        ax.set_title(label)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_accuracy_comparison(history, path: str | os.PathLike, title: str = "", xmin: int = 0,
                             evaluation_name: str = "test", ylim: tuple[float, float] | None = None) -> None:
    """Training and evaluation accuracy on one axis (the book's ``overfitting_full.png`` style).

    The gap between the two curves is the overfitting: accuracy on data the
    network has seen minus accuracy on data it has not.  ``ylim`` is the
    book's fixed range in percent (``FULL_DATA_YLIM`` = 90-100 for the
    full-data runs), widened only if a value lies outside it.  Test blue,
    training orange; the legend sits below the axes, clear of the curves.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    n = history.epochs
    xmin = xmin if xmin < n else 0
    ys = []
    if history.evaluation_accuracy:
        ys += _epochs_axis(ax, history.evaluation_accuracy, xmin, None, True, BOOK_BLUE,
                           f"Accuracy on the {evaluation_name} data")
    if history.training_accuracy:
        ys += _epochs_axis(ax, history.training_accuracy, xmin, None, True, BOOK_ORANGE,
                           "Accuracy on the training data")
    if ylim is not None:
        book_ylim(ax, ys, *ylim)
    ax.set_ylabel("Accuracy (%)")
    ax.set_title(title)
    if ax.lines:
        fig.legend(loc="outside lower center")
    save_figure(fig, path)


def plot_multiple_eta(histories, etas, path: str | os.PathLike, title: str = "") -> None:
    """Training cost per epoch for several learning rates (the book's ``multiple_eta.png``).

    Too small an ``eta`` crawls, a good one falls fast, too large a one
    overshoots and oscillates: the picture behind choosing ``eta`` as the
    largest value for which the training cost still decreases in the first
    few epochs.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    ax = fig.subplots()
    for i, (h, eta) in enumerate(zip(histories, etas)):
        color = BOOK_COLORS[i % len(BOOK_COLORS)]
        _epochs_axis(ax, h.training_cost, 0, None, False, color, f"$\\eta$ = {eta:g}", marker="o")
    ax.set_ylabel("Cost")
    ax.set_title(title or "Training cost for several learning rates")
    if ax.lines:
        fig.legend(loc="outside right upper")  # beside the axes: eta = 2.5's oscillations fill the top
    save_figure(fig, path)


def plot_weight_init(default_accuracy, large_accuracy, path: str | os.PathLike, title: str = "") -> None:
    """Validation accuracy per epoch from the default N(0, 1/n_in) and the large N(0, 1) weights.

    The book's ``weight_initialization_30.png`` / ``_100.png``: with the
    large initialization many hidden neurons start saturated, so learning
    starts slowly; the default one starts ahead and both end near the same
    accuracy.  As in the book: old initialization blue, new orange, epochs
    from 0, accuracy from 85 to 100% (widened only if a value lies outside).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    ys = _epochs_axis(ax, large_accuracy, 0, None, True, BOOK_BLUE, "Old approach to weight initialization")
    ys += _epochs_axis(ax, default_accuracy, 0, None, True, BOOK_ORANGE, "New approach to weight initialization")
    book_ylim(ax, ys, *WEIGHT_INIT_YLIM)
    ax.set_ylabel("Accuracy (%)")
    ax.set_title(title or "Classification accuracy")
    fig.legend(loc="outside lower center")
    save_figure(fig, path)


def plot_more_data(sizes, accuracies, path: str | os.PathLike, kind: str = "linear", svm_accuracies=None,
                   title: str = "") -> None:
    """Accuracy against training set size (the book's ``more_data*.png``).

    ``kind`` is ``"linear"`` (``more_data.png``), ``"log"``
    (``more_data_log.png``: a log x axis, where the curve looks close to a
    straight line still climbing at 50,000) or ``"combined"``
    (``more_data_comparison.png``: the network beside an SVM on the same
    sizes, log x axis; needs ``svm_accuracies``).  Accuracies are fractions.
    As in the book: the network blue, the SVM orange, accuracy from 60 to
    100% (widened only if a value lies outside), the x axis from 0 (linear)
    or from the smallest size (log).
    """
    from matplotlib.figure import Figure

    if kind not in ("linear", "log", "combined"):
        raise ValueError(f"The 'kind' parameter must be 'linear', 'log' or 'combined'. Got {kind!r} instead.")
    fig = Figure(figsize=(6, 4.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    ys = [100 * a for a in accuracies]
    ax.plot(sizes, ys, color=BOOK_BLUE, marker="o", label="Neural network accuracy")
    if kind == "combined" and svm_accuracies:
        svm = [100 * a for a in svm_accuracies]
        ys += svm
        ax.plot(sizes[:len(svm)], svm, color=BOOK_ORANGE, marker="o", label="SVM accuracy")
        fig.legend(loc="outside lower center", ncols=2)
    if kind != "linear":
        ax.set_xscale("log")
        ax.set_xlim(min(sizes) * 0.9, max(sizes) * 1.1)
    else:
        ax.set_xlim(0, max(sizes) * 1.02)
    book_ylim(ax, ys, *MORE_DATA_YLIM)
    ax.set_xlabel("Training set size")
    ax.set_ylabel("Accuracy (%)")
    ax.set_title(title or "Accuracy (%) on the validation data")
    ax.grid(True, alpha=0.3)
    save_figure(fig, path)
