"""The module contract shared by every layer (MIT 6.036's modular API).

A module turns an input ``u`` into an output ``v`` with ``forward(u, train)``
and turns ``dL/dv`` into ``dL/du`` with ``backward(grad)``.  A module with
weights also exposes ``params`` and, after ``backward``, their ``grads``:
the same shapes, in the same order.  What ``backward`` needs is cached by
``forward``; nothing else is hidden state.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import rng as make_rng


class Module:
    """Base class: a module without parameters that passes its input through."""

    #: Parameter arrays (updated in place by optimizers).
    params: list[np.ndarray]
    #: Gradients of the loss w.r.t. ``params``, filled by ``backward``.
    grads: list[np.ndarray]
    #: One flag per parameter: does weight decay (L2/L1/max-norm) apply to it?
    decay: list[bool]

    def __init__(self) -> None:
        self.params = []
        self.grads = []
        self.decay = []
        self._buffers: dict[str, np.ndarray] = {}

    # -- the contract ------------------------------------------------------
    def forward(self, u: np.ndarray, train: bool = False) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def backward(self, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement backward()")

    def parameters(self) -> list[np.ndarray]:
        """The parameter arrays, in the order of ``grads``."""
        return list(self.params)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Draw fresh parameters (a no-op for modules without any)."""

    def astype(self, dtype: Any) -> "Module":
        """Cast parameters (and their gradient buffers) to ``dtype`` in place."""
        dt = np.dtype(dtype)
        self.params[:] = [p.astype(dt, copy=False) for p in self.params]
        self.grads[:] = [np.zeros_like(p) for p in self.params]
        self._buffers.clear()
        self._after_params_set()
        return self

    def _after_params_set(self) -> None:
        """Hook for subclasses that keep named references into ``params``."""

    # -- saving ------------------------------------------------------------
    def get_config(self) -> dict:
        """Constructor arguments as plain JSON values (no arrays)."""
        return {}

    def get_state(self) -> dict[str, np.ndarray]:
        """Arrays other than ``params`` that a saved model must keep (e.g. running averages)."""
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``get_state`` returned."""

    # -- buffers: reused between mini-batches so the hot loop allocates nothing
    def _buffer(self, name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.empty(shape, dtype=dtype)
            self._buffers[name] = buf
        return buf

    # -- printing ----------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_buffers"] = {}
        return state


class Stochastic(Module):
    """A module that draws random numbers in training mode (dropout masks, input noise).

    Its generator ``rng`` is set by :func:`netlearn.training.fit` from fit's
    ``seed`` (one generator shared by all such modules, saved in checkpoints),
    so the same seed repeats a run exactly.  Outside ``fit`` it is the
    generator from the constructor's ``seed``.
    """

    def __init__(self, seed: int | np.random.Generator | None = None) -> None:
        super().__init__()
        self.rng: np.random.Generator = make_rng(seed)
