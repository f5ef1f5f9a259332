"""Gaussian noise on the inputs, during training only (a regularizer akin to data augmentation)."""
from __future__ import annotations

import numpy as np

from ..validation import check_positive
from .base import Stochastic


class GaussianNoise(Stochastic):
    """``v = u + sigma * N(0, 1)`` in training; ``v = u`` in evaluation.

    Adding noise to the inputs is, to first order, Tikhonov (L2-like)
    regularization (Bishop 1995, "Training with noise is equivalent to
    Tikhonov regularization").  The noise does not depend on ``u``, so
    back-propagation passes the gradient through: ``dL/du = dL/dv``.
    """

    def __init__(self, sigma: float = 0.1, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(seed)
        self.sigma = check_positive("sigma", sigma, allow_zero=True)

    def forward(self, u: np.ndarray, train: bool = False) -> np.ndarray:
        if not train or self.sigma == 0.0:
            return u
        v = self._buffer("v", u.shape, u.dtype)
        self.rng.standard_normal(out=v, dtype=u.dtype)
        v *= u.dtype.type(self.sigma)
        v += u
        return v

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad

    def get_config(self) -> dict:
        return {"sigma": self.sigma}

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"
