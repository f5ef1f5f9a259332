"""Cost functions: each gives its value on a batch and its delta, side by side.

Values are means over the batch, ``C = (1/m) sum_x C_x``, so gradients are
means too and the SGD step ``w -> w - eta dC/dw`` is the book's
``w -> w - (eta/m) sum_x dC_x/dw``.

Each cost has a *natural* output activation with which ``dC/dz`` collapses
to ``(a - y)/m`` (the book's eq. 66 for cross-entropy with sigmoid, eq. 81
for log-likelihood with softmax, and trivially quadratic with a linear
output).  With that pairing the network uses ``delta_z`` -- stable, and
free of the ``sigma'(z)`` learning slowdown -- and ``fn_z`` computes the
value from ``z`` without ever taking ``log(0)``.  With any other pairing
``delta`` (``dC/da``) is chained through the activation's derivative.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def _safe_log(a: np.ndarray) -> np.ndarray:
    # Only for unnatural pairings, where C is computed from a alone: clamp to the
    # smallest normal number so log gives a large finite cost, not -inf.
    return np.log(np.maximum(a, np.finfo(a.dtype).tiny))


class Cost:
    """A cost ``C(a, y)``; ``y`` is a target matrix made by ``targets``."""

    name = "cost"
    book_name = ""
    natural = "identity"  # the output activation that fuses with this cost

    def targets(self, labels: np.ndarray, n_out: int, dtype) -> np.ndarray:
        """Turn integer class labels into target rows: one-hot by default."""
        y = np.zeros((labels.shape[0], n_out), dtype=dtype)
        y[np.arange(labels.shape[0]), labels] = 1
        return y

    def fn(self, a: np.ndarray, y: np.ndarray) -> float:
        """Mean cost over the batch from the output activations ``a``."""
        raise NotImplementedError

    def fn_z(self, z: np.ndarray, y: np.ndarray) -> float:
        """Mean cost from the weighted input ``z`` of the natural output activation."""
        raise NotImplementedError

    def delta(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dC/da`` for the batch mean (any output activation)."""
        raise NotImplementedError

    def delta_z(self, a: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Fused ``dC/dz = (a - y)/m`` for the natural output activation."""
        out = np.subtract(a, y, out=out)
        out *= out.dtype.type(1.0 / a.shape[0])
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class QuadraticCost(Cost):
    """``C_x = ||a - y||^2 / 2`` (the book's eq. 6); natural with a linear output."""

    name = "quadratic"
    book_name = "QuadraticCost"
    natural = "identity"

    def fn(self, a, y):
        d = a - y
        return 0.5 * float(np.einsum("ij,ij->", d, d, dtype=np.float64)) / a.shape[0]

    def fn_z(self, z, y):
        return self.fn(z, y)

    def delta(self, a, y):
        return (a - y) / a.shape[0]


class CrossEntropyCost(Cost):
    """``C_x = -sum_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]`` (the book's eq. 63).

    Natural with sigmoid outputs.  From ``z``: ``ln(1 + e^z) - y z`` per
    output, computed as ``logaddexp(0, z) - y z``, finite for every ``z``.
    """

    name = "cross-entropy"
    book_name = "CrossEntropyCost"
    natural = "sigmoid"

    def fn(self, a, y):
        c = -(y * _safe_log(a) + (1 - y) * _safe_log(1 - a))
        return float(c.sum(dtype=np.float64)) / a.shape[0]

    def fn_z(self, z, y):
        c = np.logaddexp(0, z) - y * z
        return float(c.sum(dtype=np.float64)) / z.shape[0]

    def delta(self, a, y):
        tiny = np.finfo(a.dtype).tiny
        return (a - y) / np.maximum(a * (1 - a), tiny) / a.shape[0]


class LogLikelihoodCost(Cost):
    """``C_x = -ln a_y``, the log-likelihood of the true class (the book's eq. 80, the MIT notes' NLLM).

    Natural with a softmax output.  From ``z``: ``logsumexp(z) - z_y``
    (written ``sum_j y_j (logsumexp(z) - z_j)`` so soft targets work too).
    """

    name = "log-likelihood"
    book_name = "LogLikelihoodCost"
    natural = "softmax"

    def fn(self, a, y):
        return float(-(y * _safe_log(a)).sum(dtype=np.float64)) / a.shape[0]

    def fn_z(self, z, y):
        lse = logsumexp(z, axis=1, keepdims=True)
        return float((y * (lse - z)).sum(dtype=np.float64)) / z.shape[0]

    def delta(self, a, y):
        tiny = np.finfo(a.dtype).tiny
        return -y / np.maximum(a, tiny) / a.shape[0]


class HingeCost(Cost):
    """Multi-output hinge loss ``C_x = sum_j max(0, 1 - t_j a_j)`` (the MIT notes' hinge, linear output).

    Class ``c`` becomes targets ``t_c = +1`` and ``t_j = -1`` elsewhere.  Its
    (sub)gradient is ``-t_j`` where the margin ``t_j a_j`` is below 1, else 0.
    """

    name = "hinge"
    book_name = "HingeCost"
    natural = "identity"

    def targets(self, labels, n_out, dtype):
        t = np.full((labels.shape[0], n_out), -1, dtype=dtype)
        t[np.arange(labels.shape[0]), labels] = 1
        return t

    def fn(self, a, y):
        return float(np.maximum(0, 1 - y * a).sum(dtype=np.float64)) / a.shape[0]

    def fn_z(self, z, y):
        return self.fn(z, y)

    def delta(self, a, y):
        return -y * (y * a < 1) / a.shape[0]

    def delta_z(self, a, y, out=None):
        d = self.delta(a, y)
        if out is None:
            return d.astype(a.dtype, copy=False)
        out[...] = d
        return out


COSTS = {c.name: c for c in (QuadraticCost, CrossEntropyCost, LogLikelihoodCost, HingeCost)}
_ALIASES = {"crossentropy": "cross-entropy", "cross_entropy": "cross-entropy", "ce": "cross-entropy",
            "log_likelihood": "log-likelihood", "loglikelihood": "log-likelihood", "nll": "log-likelihood",
            "nllm": "log-likelihood", "mse": "quadratic", "squared": "quadratic"}
_BOOK = {c.book_name: c for c in COSTS.values()}

#: The output activation each cost gets when ``output`` is not given (the texts' pairings;
#: quadratic keeps the book's sigmoid output).
DEFAULT_OUTPUT = {"cross-entropy": "sigmoid", "quadratic": "sigmoid", "log-likelihood": "softmax",
                  "hinge": "identity"}


def get(cost: str | Cost) -> Cost:
    """A cost object from its name (``cross-entropy``, ``quadratic``, ``log-likelihood``, ``hinge``) or the book's class name."""
    if isinstance(cost, Cost):
        return cost
    if isinstance(cost, type) and issubclass(cost, Cost):
        return cost()
    if isinstance(cost, str):
        key = cost.lower()
        key = _ALIASES.get(key, key)
        if key in COSTS:
            return COSTS[key]()
        if cost in _BOOK:
            return _BOOK[cost]()
    raise ValueError(f"The 'cost' parameter must be one of {sorted(COSTS)}. Got {cost!r} instead.")
