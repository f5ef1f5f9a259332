"""Finite-difference gradient checks, in float64, for modules, costs and whole networks.

Each check compares back-propagation's analytic gradient with the central
difference ``(L(x + h) - L(x - h)) / 2h`` of a scalar loss, element by
element, and returns the largest relative error
``|g_a - g_n| / max(|g_a| + |g_n|, floor)``.  The floor, ``1e-6`` or a
thousandth of the largest ``|g_a| + |g_n|`` of the array if that is more,
makes entries near zero compare absolutely: the central difference of such
an entry carries the rounding error of the whole loss (about ``1e-16 |L| /
h``), which can be a large fraction of an entry a million times smaller
than its neighbours, in a correct gradient.  A correct float64
implementation gives about 1e-7 or less with the default ``h = 1e-5``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .costs import Cost
from .layers.activations import Activation
from .layers.base import Module
from .optimizers import chain
from .regularizers import L1, L2


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every entry of ``x`` (changed in place, then restored)."""
    g = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Largest ``|a - n| / max(|a| + |n|, floor)`` over all entries, ``floor = max(1e-6, 1e-3 max(|a| + |n|))``."""
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if a.size == 0:
        return 0.0
    size = np.abs(a) + np.abs(n)
    floor = max(1e-6, 1e-3 * float(np.max(size)))
    return float(np.max(np.abs(a - n) / np.maximum(size, floor)))


def _require_float64(*arrays):
    for a in arrays:
        if a.dtype != np.float64:
            raise ValueError(f"Gradient checks need float64 arrays (float32 differences are too coarse); got {a.dtype}. "
                             "Cast with .astype('float64').")


def check_module(module: Module, u: np.ndarray, train: bool = True, seed: int = 0, h: float = 1e-5) -> dict[str, float]:
    """Check ``backward`` (dL/du) and the parameter gradients of ``module`` at input ``u``.

    The scalar loss is ``L = sum(r * forward(u))`` for a fixed random ``r``, so
    ``dL/dv = r``.  Returns the relative error for ``"input"`` and each
    parameter ``"param0"``, ``"param1"``...
    """
    u = np.array(u, dtype=np.float64)
    _require_float64(*module.params)
    r = np.random.default_rng(seed).standard_normal(module.forward(u, train).shape)

    def loss() -> float:
        return float(np.sum(r * module.forward(u, train)))

    loss()
    du = np.array(module.backward(r.copy()))
    grads = [g.copy() for g in module.grads]
    errors = {"input": relative_error(du, numerical_gradient(loss, u, h))}
    for i, (p, g) in enumerate(zip(module.params, grads)):
        errors[f"param{i}"] = relative_error(g, numerical_gradient(loss, p, h))
    return errors


def check_cost(cost: Cost, activation: Activation, z: np.ndarray, y: np.ndarray, h: float = 1e-5) -> dict[str, float]:
    """Check dC/dz for ``cost`` on top of ``activation``: both the general chain rule and, for
    the natural pairing, the fused ``a - y`` delta and the value computed from ``z``."""
    z = np.array(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)

    def value() -> float:
        return cost.fn(activation.forward(z, False), y)

    a = activation.forward(z, True)
    chained = np.array(activation.backward(cost.delta(a, y)))
    numeric = numerical_gradient(value, z, h)
    errors = {"chain": relative_error(chained, numeric)}
    if activation.name == cost.natural:
        fused = cost.delta_z(activation.forward(z, False), y)
        errors["fused"] = relative_error(fused, numeric)
        errors["value_z"] = abs(cost.fn_z(z, y) - value()) / max(1.0, abs(value()))
    return errors


def check_network(net, X: np.ndarray, y: np.ndarray, lmbda: float = 0.0, l1: float = 0.0, n: int | None = None,
                  h: float = 1e-5) -> dict[str, float]:
    """Check the gradient of the network's total cost (mean cost + L2/L1 terms) w.r.t. every parameter.

    The analytic side is back-propagation plus the regularization links of
    the optimizer chain, i.e. exactly what training uses.
    """
    _require_float64(*net.parameters())
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0] if n is None else n
    Y = net._targets(np.asarray(y))

    def loss() -> float:
        return net._total_cost(X, np.asarray(y), lmbda=lmbda, l1=l1, n=n)

    net.backprop(X, Y)
    updates = [g.copy() for g in net.gradients()]
    reg = chain(L2(lmbda).transform(n), L1(l1).transform(n))
    reg.init(net.parameters(), net.decay_mask())
    reg.update(updates, net.parameters())
    errors = {}
    for i, (p, g) in enumerate(zip(net.parameters(), updates)):
        errors[f"param{i}"] = relative_error(g, numerical_gradient(loss, p, h))
    return errors
