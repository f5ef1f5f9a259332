"""Figures of the experiments added after the first seven: slowdown, hidden-100 and expanded.

Drawn like the book's figures (its colours, epochs counted from 0, fixed
accuracy ranges), on a bare :class:`matplotlib.figure.Figure` with
constrained layout (so a legend placed beside the axes never covers a
curve), and saved atomically through :func:`netlearn.plot.save_figure`.
"""
from __future__ import annotations

import os

from ..plot import BOOK_BLUE, BOOK_DARK_ORANGE, BOOK_ORANGE, BOOK_YELLOW, book_ylim, save_figure

#: Line styles of the slowdown runs: quadratic blue, cross-entropy orange (eta 0.15, solid; eta 0.005, dashed).
_SLOWDOWN_STYLES = {("quadratic", 0.15): (BOOK_BLUE, "-"), ("cross-entropy", 0.15): (BOOK_ORANGE, "-"),
                    ("cross-entropy", 0.005): (BOOK_DARK_ORANGE, "--")}


def plot_slowdown(runs: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """Cost (left) and output (right) of the one-neuron runs against epoch, 0 to 300 (the book's slowdown figures).

    ``runs`` are slowdown's run records (``cost``, ``eta``, ``output``,
    ``cost_value``) sharing one starting point.  The quadratic cost's
    plateau from ``w = b = 2`` is the learning slowdown.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    for r in runs:
        color, style = _SLOWDOWN_STYLES.get((r["cost"], r["eta"]), ("0.4", ":"))
        label = f"{r['cost']}, $\\eta$ = {r['eta']:g}"
        xs = range(len(r["cost_value"]))
        axes[0].plot(xs, r["cost_value"], style, color=color, label=label)
        axes[1].plot(xs, r["output"], style, color=color, label=label)
    for ax, ylabel in zip(axes, ("Cost", "Output a")):
        ax.set_xlim(0, max(len(r["output"]) for r in runs) - 1)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper")
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def plot_accuracy_runs(curves: list[tuple[str, list[float]]], path: str | os.PathLike, title: str,
                       ylim: tuple[float, float], ylabel: str = "Accuracy (%) on the validation data") -> None:
    """Accuracy per epoch of several runs, epochs from 0, the book's fixed y range (hidden-100).

    ``curves`` are ``(label, accuracies)`` with accuracies as fractions; value
    ``i`` is drawn at epoch ``i`` as the book's scripts do.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4), dpi=100, layout="constrained")
    ax = fig.subplots()
    colors = (BOOK_BLUE, BOOK_ORANGE, BOOK_YELLOW)
    values = []
    for i, (label, acc) in enumerate(curves):
        ys = [100 * a for a in acc]
        values += ys
        ax.plot(range(len(ys)), ys, color=colors[i % len(colors)], label=label)
    ax.set_xlim(0, max(len(a) for _, a in curves))
    book_ylim(ax, values, *ylim)
    ax.set_xlabel("Epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside right upper")
    save_figure(fig, path)


def plot_expanded(sizes, accuracies, expanded_accuracies, path: str | os.PathLike, log: bool = False) -> None:
    """Validation accuracy against training set size, unexpanded and expanded by shifts (60-100%).

    ``sizes`` count the original images; the expanded set holds five times as
    many (each image and its four one-pixel shifts).  Accuracies are fractions.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4), dpi=100, layout="constrained")
    ax = fig.subplots()
    a = [100 * v for v in accuracies]
    e = [100 * v for v in expanded_accuracies]
    ax.plot(sizes, a, "o-", color=BOOK_BLUE, label="Training images as given")
    ax.plot(sizes[:len(e)], e, "o-", color=BOOK_ORANGE, label="Expanded by one-pixel shifts (x5)")
    if log:
        ax.set_xscale("log")
        ax.set_xlim(min(sizes) * 0.9, max(sizes) * 1.1)
    else:
        ax.set_xlim(0, max(sizes))
    book_ylim(ax, a + e, 60, 100)
    ax.set_xlabel("Training set size (original images)")
    ax.set_ylabel("Accuracy (%) on the validation data")
    ax.set_title("More training data: expanded against unexpanded")
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside right upper")
    save_figure(fig, path)
