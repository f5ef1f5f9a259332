"""A look inside a trained network: where it errs, how sure it is when it errs, what its first layer sees.

:func:`inspect_network` scores a network on ``(X, y)`` and writes into a
folder (created if missing):

* ``summary.json``: for classification the ``"confusion_matrix"`` (rows the
  true class, columns the predicted one), ``"per_class_accuracy"``,
  ``"accuracy"``, ``"cost"`` and the ``"misclassified"`` examples the network
  was most sure of (``index``, ``true``, ``predicted``, ``confidence``); for
  regression ``"r2"``, ``"rmse"``, ``"mae"``, ``"cost"``; and ``"files"``,
  the pictures written;
* ``confusion_matrix.png``: the matrix as a heat map with its counts, and
  the per-class accuracy as bars;
* ``misclassified.png``: the most confidently misclassified images with
  their predicted and true labels (when the inputs are square images, like
  MNIST's 784 = 28x28 pixels);
* ``weights.png``: the first layer's weights into each hidden unit, drawn
  as an image (same condition): the pattern each unit responds to, red
  where a bright pixel excites it and blue where it inhibits it;
* ``predicted_vs_true.png`` (regression): each example's prediction against
  its target, with the diagonal of perfect predictions.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import metrics
from .io import atomic_write_text
from .layers.dense import Dense
from .plot import save_figure

#: How many misclassified images (and hidden units' weights) the pictures show at most.
TOP_MISCLASSIFIED = 24
MAX_UNITS = 100


def _image_side(net) -> int | None:
    """The side of the square images the network reads (28 for MNIST), or None for rows of a table."""
    if net.preprocessing is not None and net.preprocessing.features:
        return None
    side = int(round(math.sqrt(net.n_in)))
    return side if side * side == net.n_in and side >= 8 else None


def inspect_network(net, X: np.ndarray, y: np.ndarray, out: str | os.PathLike, labels: Sequence | None = None,
                    top: int = TOP_MISCLASSIFIED, title: str = "") -> dict[str, Any]:
    """Write the pictures and ``summary.json`` described in the module docstring into ``out``; return the summary.

    ``labels`` names the classes (the ``i``-th output's label); by default
    the labels the network was trained with, or the output indices.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    X = np.ascontiguousarray(X, dtype=net.dtype)
    summary: dict[str, Any] = {"task": net.task, "examples": int(X.shape[0])}
    files: list[str] = []
    if net.task == "regression":
        summary.update(metrics.scores(net, X, y))
        A = np.concatenate(list(net._outputs(X)))
        pre = net.preprocessing
        Y = y.reshape(len(y), -1)
        if pre is not None and pre.y_shift is not None:
            A, Y = pre.inverse_y(A), pre.inverse_y(Y)
        files.append(_predicted_vs_true(Y, A, out / "predicted_vs_true.png", title))
    else:
        if labels is None:
            pre = net.preprocessing
            labels = [pre.label(i) if pre is not None else i for i in range(net.n_out)]
        P = metrics.class_probabilities(net, X)
        pred = np.argmax(P, axis=1)
        labels_true = y if y.ndim == 1 else np.argmax(y, axis=1)
        C = metrics.confusion_matrix(labels_true, pred, net.n_out)
        per_class = {str(labels[i]): (float(C[i, i] / C[i].sum()) if C[i].sum() else None) for i in range(net.n_out)}
        wrong = np.flatnonzero(pred != labels_true)
        order = wrong[np.argsort(-P[wrong, pred[wrong]], kind="stable")][:top]
        summary.update(metrics.scores(net, X, y))
        summary.update({"classes": [labels[i] for i in range(net.n_out)], "confusion_matrix": C.tolist(),
                        "per_class_accuracy": per_class,
                        "misclassified": [{"index": int(i), "true": labels[int(labels_true[i])],
                                           "predicted": labels[int(pred[i])], "confidence": float(P[i, pred[i]])}
                                          for i in order]})
        files.append(_confusion(C, per_class, labels, out / "confusion_matrix.png", title))
        side = _image_side(net)
        if side is not None and order.size:
            files.append(_misclassified(X[order], [labels[int(labels_true[i])] for i in order],
                                        [labels[int(pred[i])] for i in order], P[order, pred[order]], side,
                                        out / "misclassified.png"))
    first = next((m for m in net.modules if isinstance(m, Dense)), None)
    side = _image_side(net)
    if first is not None and side is not None and len([m for m in net.modules if isinstance(m, Dense)]) > 1:
        files.append(_weights(first.W, side, out / "weights.png"))
    summary["files"] = files
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    return summary


def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100)


def _confusion(C: np.ndarray, per_class: dict, labels, path: Path, title: str) -> str:
    k = C.shape[0]
    fig = _figure(6 + 0.25 * k, 4 + 0.2 * k)
    ax, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    ax.imshow(C, cmap="Blues")
    ax.set_xticks(range(k), [str(l) for l in labels], rotation=90 if k > 10 else 0)
    ax.set_yticks(range(k), [str(l) for l in labels])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("confusion matrix")
    if k <= 20:
        top = C.max() or 1
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(C[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if C[i, j] > top / 2 else "black")
    values = [100 * (v if v is not None else 0.0) for v in per_class.values()]
    bars.barh(range(k), values, color="tab:blue")
    bars.set_yticks(range(k), [str(l) for l in labels])
    bars.invert_yaxis()
    # Classes usually differ by a few points: start the axis a little below the weakest class, and
    # write each value on its bar.
    low = max(0.0, 5 * np.floor((min(values) - 2) / 5)) if values else 0.0
    bars.set_xlim(low, 100)
    for i, v in enumerate(values):
        bars.text(max(v, low) - 0.5, i, f"{v:.1f}", ha="right", va="center", fontsize=8, color="white")
    bars.set_xlabel("accuracy (%)")
    bars.set_title("per class")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return path.name


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 8)
    return int(math.ceil(n / cols)), cols


def _misclassified(X: np.ndarray, true, predicted, confidence, side: int, path: Path) -> str:
    rows, cols = _grid(X.shape[0])
    fig = _figure(1.4 * cols, 1.6 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for ax, x, t, p, c in zip(axes, X, true, predicted, confidence):
        ax.imshow(x.reshape(side, side), cmap="gray_r")
        ax.set_title(f"{p} ({100 * c:.0f}%)\ntrue {t}", fontsize=8)
    fig.suptitle("most confidently misclassified: predicted (confidence), true label", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return path.name


def _weights(W: np.ndarray, side: int, path: Path) -> str:
    units = min(W.shape[1], MAX_UNITS)
    rows, cols = _grid(units) if units <= 8 else (int(math.ceil(units / 10)), min(units, 10))
    fig = _figure(1.2 * cols, 1.2 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for j, ax in enumerate(axes[:units]):
        w = W[:, j].reshape(side, side)
        lim = float(np.abs(w).max()) or 1.0  # each unit on its own symmetric scale: 0 is white
        ax.imshow(w, cmap="bwr", vmin=-lim, vmax=lim)
    fig.suptitle(f"first layer: weights into each of {units} hidden units (red excites, blue inhibits)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return path.name


def _predicted_vs_true(Y: np.ndarray, A: np.ndarray, path: Path, title: str) -> str:
    k = Y.shape[1]
    fig = _figure(4.5 * k, 4.5)
    axes = np.atleast_1d(fig.subplots(1, k)).reshape(-1)
    for i, ax in enumerate(axes):
        ax.scatter(Y[:, i], A[:, i], s=8, alpha=0.6)
        lo, hi = float(min(Y[:, i].min(), A[:, i].min())), float(max(Y[:, i].max(), A[:, i].max()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=1, label="perfect")
        s = metrics.regression_scores(Y[:, i:i + 1], A[:, i:i + 1])
        ax.set_title(f"R² {s['r2']:.3f}  RMSE {s['rmse']:.3g}", fontsize=9)
        ax.set_xlabel("true value")
        ax.set_ylabel("predicted value")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return path.name
