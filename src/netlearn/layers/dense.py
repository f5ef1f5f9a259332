"""The fully-connected layer: ``z = u W + b``."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import init as initializers
from ..backend import as_dtype, rng as make_rng
from ..validation import check_int
from .base import Module


class Dense(Module):
    """Fully connected layer, batch-first: ``z = u @ W + b``.

    ``u`` is ``(m, n_in)``, ``W`` is ``(n_in, n_out)``, ``b`` is ``(n_out,)``.
    Back-propagation (the book's equations BP2 and BP4, batch form)::

        dL/dW = u^T delta        dL/db = sum over the batch of delta
        dL/du = delta W^T

    where ``delta = dL/dz``.  Weights decay under L2/L1; biases do not.
    """

    def __init__(self, n_in: int, n_out: int, init: str | Any = "default",
                 seed: int | np.random.Generator | None = None, dtype: Any = None) -> None:
        super().__init__()
        self.n_in, self.n_out = check_int("n_in", n_in), check_int("n_out", n_out)
        self.init = initializers.get(init)
        self.dtype = as_dtype(dtype)
        self.W = np.empty((self.n_in, self.n_out), dtype=self.dtype)
        self.b = np.empty((self.n_out,), dtype=self.dtype)
        self.params = [self.W, self.b]
        self.grads = [np.zeros_like(self.W), np.zeros_like(self.b)]
        self.decay = [True, False]
        self.reset_parameters(make_rng(seed))

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Draw ``W`` and ``b`` from the layer's initializer."""
        W, b = self.init(self.n_in, self.n_out, make_rng(rng))
        self.W[...] = W
        self.b[...] = b

    def _after_params_set(self) -> None:
        self.W, self.b = self.params
        self.dtype = self.W.dtype

    def forward(self, u: np.ndarray, train: bool = False) -> np.ndarray:
        self.u = u
        if not train:
            return u @ self.W + self.b
        z = self._buffer("z", (u.shape[0], self.n_out), self.W.dtype)
        np.matmul(u, self.W, out=z)
        z += self.b
        return z

    def weight_grads(self, delta: np.ndarray) -> None:
        """Fill ``grads`` with dL/dW and dL/db from ``delta = dL/dz``."""
        np.matmul(self.u.T, delta, out=self.grads[0])
        np.sum(delta, axis=0, out=self.grads[1])

    def backward(self, delta: np.ndarray) -> np.ndarray:
        self.weight_grads(delta)
        du = self._buffer("du", (delta.shape[0], self.n_in), self.W.dtype)
        np.matmul(delta, self.W.T, out=du)
        return du

    def get_config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out, "init": self.init.name}

    def extra_repr(self) -> str:
        return f"{self.n_in}, {self.n_out}"
