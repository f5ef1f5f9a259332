"""What a network's outputs mean: class probabilities, the confusion matrix, regression scores.

A classifier's answer is the most active output neuron; a regression
network's answer is its outputs themselves, judged by

* R² = 1 - sum (y - a)² / sum (y - mean y)², the share of the target's
  variance the network explains (1 is perfect, 0 is as good as predicting the
  mean), averaged over the outputs as scikit-learn does;
* RMSE = sqrt(mean (y - a)²) and MAE = mean |y - a|, in the target's units.

When the network carries a :class:`netlearn.data.tabular.Preprocessing`
with target scaling, outputs and targets are mapped back to the target's
units before RMSE and MAE are taken (R² does not depend on the scaling).
"""
from __future__ import annotations

from typing import Any

import numpy as np

REGRESSION_FIGURES = ("r2", "rmse", "mae")


def class_probabilities(net, X: Any) -> np.ndarray:
    """One row per example, non-negative, summing to 1, ordered like the output neurons.

    A softmax output already is a distribution.  Sigmoid outputs (one
    independent "probability" per class, as the cross-entropy cost trains
    them) are divided by their sum.  Other outputs (the hinge cost's identity)
    go through a softmax.  The argmax, hence the predicted class, is the same
    as the network's in every case.
    """
    a = np.asarray(net.predict_proba(X), dtype=np.float64)
    name = getattr(net.modules[-1], "name", "")
    if name == "softmax":
        return a / a.sum(axis=1, keepdims=True)
    if name == "sigmoid":
        s = a.sum(axis=1, keepdims=True)
        # All outputs can underflow to 0 only far from every class: fall back on equal shares.
        return np.where(s > 0, a / np.where(s > 0, s, 1.0), 1.0 / a.shape[1])
    z = a - a.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of examples of true class ``i`` predicted as ``j``."""
    C = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(C, (np.asarray(y_true, np.intp), np.asarray(y_pred, np.intp)), 1)
    return C


def regression_scores(Y: np.ndarray, A: np.ndarray) -> dict[str, float]:
    """``{"r2", "rmse", "mae"}`` of outputs ``A`` against targets ``Y`` (both ``(n, k)``, same units)."""
    Y = np.asarray(Y, np.float64).reshape(len(Y), -1)
    A = np.asarray(A, np.float64).reshape(len(A), -1)
    err = Y - A
    ss_res = np.sum(err ** 2, axis=0)
    ss_tot = np.sum((Y - Y.mean(axis=0)) ** 2, axis=0)
    # A constant target: R² is 1 for a perfect fit and 0 otherwise (scikit-learn's convention).
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.where(ss_res == 0, 1.0, 0.0))
    return {"r2": float(np.mean(r2)), "rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err)))}


def network_regression_scores(net, X: np.ndarray, Y: np.ndarray) -> dict[str, float]:
    """R², RMSE and MAE of ``net`` on inputs ``X`` and (scaled) targets ``Y``, in the target's units."""
    A = np.concatenate(list(net._outputs(X)))
    pre = getattr(net, "preprocessing", None)
    if pre is not None and getattr(pre, "y_shift", None) is not None:
        A, Y = pre.inverse_y(A), pre.inverse_y(Y)
    return regression_scores(Y, A)


def scores(net, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """What ``netlearn evaluate --json`` writes: ``{"accuracy", "cost"}``, or ``{"r2", "rmse", "mae", "cost"}``
    for a regression network (the cost is the mean cost without regularization, on the network's targets)."""
    cost = float(net._total_cost(X, y))
    if net.task == "regression":
        return {**network_regression_scores(net, X, y), "cost": cost}
    return {"accuracy": float(net._accuracy(X, y)), "cost": cost}
