"""Dropout (Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov 2014; Nielsen ch. 3), inverted form."""
from __future__ import annotations

import numpy as np

from ..validation import check_unit
from .base import Stochastic


def check_probability(name: str, p: float) -> float:
    """A float in ``[0, 1)``: the fraction of units dropped."""
    return check_unit(name, p)


class Dropout(Stochastic):
    """Inverted dropout: in training, ``v = u * mask / (1 - p)`` with ``mask_ij ~ Bernoulli(1 - p)``.

    Each unit is dropped with probability ``p`` (the book drops half the
    hidden neurons, ``p = 0.5``).  Scaling the kept units by ``1 / (1 - p)``
    at training time keeps the expected input of the next layer unchanged,
    so evaluation uses the full network as is: ``v = u``.
    Back-propagation: ``dL/du = dL/dv * mask / (1 - p)`` (the same mask).
    """

    def __init__(self, p: float = 0.5, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(seed)
        self.p = check_probability("p", p)

    def forward(self, u: np.ndarray, train: bool = False) -> np.ndarray:
        if not train or self.p == 0.0:
            self.mask = None
            return u
        mask = self._buffer("mask", u.shape, u.dtype)
        self.rng.random(out=mask, dtype=u.dtype)
        np.greater_equal(mask, u.dtype.type(self.p), out=mask)
        mask *= u.dtype.type(1.0 / (1.0 - self.p))
        self.mask = mask
        v = self._buffer("v", u.shape, u.dtype)
        np.multiply(u, mask, out=v)
        return v

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return grad
        du = self._buffer("du", grad.shape, grad.dtype)
        np.multiply(grad, self.mask, out=du)
        return du

    def get_config(self) -> dict:
        return {"p": self.p}

    def extra_repr(self) -> str:
        return f"p={self.p}"
