"""Weight penalties in the book's form, scaled by the training-set size ``n``.

* L2 (the book's eq. 85): ``C = C0 + (lmbda / 2n) sum_w w^2``; its gradient
  gives the update ``w -> (1 - eta lmbda / n) w - eta dC0/dw``.
* L1 (eq. 95): ``C = C0 + (lmbda / n) sum_w |w|``; update
  ``w -> w - (eta lmbda / n) sgn(w) - eta dC0/dw``.

* Max-norm (Srebro & Shraibman 2005; Srivastava et al. 2014): no penalty,
  but after each step every neuron's incoming weight vector (a column of
  ``W``) is projected onto ``||w_j||_2 <= c``.

Biases are not penalized.  ``penalty`` gives the term added to the total
cost; ``transform`` gives the optimizer link that adds its gradient.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .optimizers import GradientTransformation, add_decayed_weights, add_l1, constrain_max_norm
from .validation import check_positive


class L2:
    """L2 regularization ``(lmbda / 2n) sum w^2``."""

    def __init__(self, lmbda: float) -> None:
        self.lmbda = check_positive("lmbda", lmbda, allow_zero=True)

    def penalty(self, weights: Iterable[np.ndarray], n: int) -> float:
        return 0.5 * self.lmbda / n * sum(float(np.vdot(w, w)) for w in weights)

    def transform(self, n: int) -> GradientTransformation:
        return add_decayed_weights(self.lmbda / n)

    def __repr__(self) -> str:
        return f"L2(lmbda={self.lmbda})"


class L1:
    """L1 regularization ``(lmbda / n) sum |w|``."""

    def __init__(self, lmbda: float) -> None:
        self.lmbda = check_positive("l1", lmbda, allow_zero=True)

    def penalty(self, weights: Iterable[np.ndarray], n: int) -> float:
        return self.lmbda / n * sum(float(np.abs(w).sum(dtype=np.float64)) for w in weights)

    def transform(self, n: int) -> GradientTransformation:
        return add_l1(self.lmbda / n)

    def __repr__(self) -> str:
        return f"L1(lmbda={self.lmbda})"


class MaxNorm:
    """Max-norm constraint ``||w_j||_2 <= c`` on each neuron's incoming weights (a hard constraint, no cost term)."""

    def __init__(self, c: float) -> None:
        self.c = check_positive("max_norm", c)

    def penalty(self, weights: Iterable[np.ndarray], n: int) -> float:
        return 0.0

    def transform(self, n: int | None = None) -> GradientTransformation:
        return constrain_max_norm(self.c)

    def __repr__(self) -> str:
        return f"MaxNorm(c={self.c})"
