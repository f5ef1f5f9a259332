"""Weight initializers: each returns ``(W, b)`` for a ``Dense(n_in, n_out)``.

Chapter 3 of the book compares two of them:

* ``large``   -- the book's first choice: every weight and bias ~ N(0, 1).
  With 784 inputs, ``z`` then has standard deviation about sqrt(n_in/2) ~ 20,
  so hidden sigmoids start saturated and learning is slow.
* ``default`` -- weights ~ N(0, 1/n_in), biases ~ N(0, 1): ``z`` has standard
  deviation about 1, the neurons start unsaturated (the rule of the MIT notes
  too).

Beyond the texts: ``glorot`` (Glorot & Bengio 2010, N(0, 2/(n_in+n_out)),
zero biases) for tanh, and ``he`` (He et al. 2015, N(0, 2/n_in), zero
biases) for ReLU.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


class Initializer:
    """A named rule ``(n_in, n_out, rng) -> (W, b)`` with ``W`` of shape ``(n_in, n_out)``."""

    def __init__(self, name: str, w_std: Callable[[int, int], float], b_std: float, doc: str) -> None:
        self.name = name
        self._w_std = w_std
        self._b_std = b_std
        self.__doc__ = doc

    def __call__(self, n_in: int, n_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        W = rng.standard_normal((n_in, n_out)) * self._w_std(n_in, n_out)
        b = rng.standard_normal(n_out) * self._b_std if self._b_std else np.zeros(n_out)
        return W, b

    def __repr__(self) -> str:
        return f"init.{self.name}"


large = Initializer("large", lambda n_in, n_out: 1.0, 1.0, "Weights and biases ~ N(0, 1).")
default = Initializer("default", lambda n_in, n_out: 1.0 / np.sqrt(n_in), 1.0,
                      "Weights ~ N(0, 1/n_in), biases ~ N(0, 1).")
glorot = Initializer("glorot", lambda n_in, n_out: np.sqrt(2.0 / (n_in + n_out)), 0.0,
                     "Weights ~ N(0, 2/(n_in+n_out)), biases 0 (Glorot & Bengio 2010).")
he = Initializer("he", lambda n_in, n_out: np.sqrt(2.0 / n_in), 0.0,
                 "Weights ~ N(0, 2/n_in), biases 0 (He et al. 2015).")

INITIALIZERS = {i.name: i for i in (default, large, glorot, he)}


def get(init: str | Initializer) -> Initializer:
    """Look an initializer up by name (or pass one through)."""
    if isinstance(init, Initializer):
        return init
    if isinstance(init, str) and init.lower() in INITIALIZERS:
        return INITIALIZERS[init.lower()]
    raise ValueError(
        f"The 'init' parameter must be one of {sorted(INITIALIZERS)}. Got {init!r} instead."
    )
