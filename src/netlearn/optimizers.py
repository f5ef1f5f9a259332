"""Optimizers as chains of small gradient transformations (in the manner of Optax).

A transformation takes the list of gradients ("updates") and rewrites it in
place, keeping whatever state it needs (momentum's velocity, Adam's
moments).  An optimizer is a ``chain`` of them whose last link scales by
``-eta``; ``Optimizer.step`` then adds the updates to the parameters::

    sgd(eta)            = chain(scale_by_learning_rate(eta))
    L2 + sgd            = chain(add_decayed_weights(lmbda/n), scale_by_learning_rate(eta))

so the book's rule ``w -> (1 - eta lmbda/n) w - eta dC/dw`` is one
``add_decayed_weights`` link in front of plain SGD, and the same link works
in front of any other optimizer.  Everything happens in place: the hot loop
allocates nothing.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _check_positive(name: str, value: float, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        rng = "[0, inf)" if allow_zero else "(0, inf)"
        raise ValueError(f"The '{name}' parameter must be a float in the range {rng}. Got {value!r} instead.")
    return float(value)


class GradientTransformation:
    """One link of an optimizer chain."""

    def init(self, params: Sequence[np.ndarray], decay: Sequence[bool]) -> None:
        """Allocate state for ``params``; ``decay[i]`` says whether weight decay applies to ``params[i]``."""
        self.decay = list(decay)

    def update(self, updates: list[np.ndarray], params: Sequence[np.ndarray]) -> None:
        """Rewrite ``updates`` in place."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Arrays and numbers needed to resume (for checkpoints)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args().items())
        return f"{type(self).__name__}({args})"

    def _repr_args(self) -> dict:
        return {}


class scale_by_learning_rate(GradientTransformation):
    """``u -> -eta u``: the last link of every first-order optimizer. ``eta`` may be changed between steps (schedules do)."""

    def __init__(self, eta: float) -> None:
        self.eta = _check_positive("eta", eta)

    def update(self, updates, params):
        s = -self.eta
        for u in updates:
            u *= s

    def _repr_args(self):
        return {"eta": self.eta}


class add_decayed_weights(GradientTransformation):
    """L2 weight decay: ``u -> u + c w`` for decaying parameters (``c = lmbda/n`` in the book's form).

    It is the gradient of the L2 term ``(lmbda/2n) sum w^2`` (the book's eq. 85).
    """

    def __init__(self, c: float) -> None:
        self.c = _check_positive("lmbda", c, allow_zero=True)

    def init(self, params, decay):
        super().init(params, decay)
        self._tmp = [np.empty_like(p) if d else None for p, d in zip(params, decay)]

    def update(self, updates, params):
        for u, w, d, tmp in zip(updates, params, self.decay, self._tmp):
            if d:
                np.multiply(w, w.dtype.type(self.c), out=tmp)
                u += tmp

    def _repr_args(self):
        return {"c": self.c}


class add_l1(GradientTransformation):
    """L1 decay: ``u -> u + c sgn(w)`` (``c = lmbda/n``; the gradient of the book's eq. 95)."""

    def __init__(self, c: float) -> None:
        self.c = _check_positive("l1", c, allow_zero=True)

    def init(self, params, decay):
        super().init(params, decay)
        self._tmp = [np.empty_like(p) if d else None for p, d in zip(params, decay)]

    def update(self, updates, params):
        for u, w, d, tmp in zip(updates, params, self.decay, self._tmp):
            if d:
                np.sign(w, out=tmp)
                tmp *= w.dtype.type(self.c)
                u += tmp

    def _repr_args(self):
        return {"c": self.c}


class chain(GradientTransformation):
    """Apply transformations one after the other."""

    def __init__(self, *links: GradientTransformation) -> None:
        flat: list[GradientTransformation] = []
        for link in links:
            flat.extend(link.links if isinstance(link, chain) else [link])
        self.links = flat

    def init(self, params, decay):
        for link in self.links:
            link.init(params, decay)

    def update(self, updates, params):
        for link in self.links:
            link.update(updates, params)

    def state_dict(self):
        return {str(i): link.state_dict() for i, link in enumerate(self.links)}

    def load_state_dict(self, state):
        for i, link in enumerate(self.links):
            link.load_state_dict(state.get(str(i), {}))

    def __repr__(self):
        return "chain(" + ", ".join(map(repr, self.links)) + ")"


class Optimizer:
    """A chain of transformations applied to a network's parameters.

    ``step(params, grads)`` overwrites ``grads`` with the updates and adds them
    to ``params``.  ``eta`` reads and sets the learning rate of the chain's
    ``scale_by_learning_rate`` link.
    """

    def __init__(self, transform: GradientTransformation, name: str = "optimizer") -> None:
        self.transform = transform if isinstance(transform, chain) else chain(transform)
        self.name = name

    def _lr_link(self) -> scale_by_learning_rate:
        for link in reversed(self.transform.links):
            if isinstance(link, scale_by_learning_rate):
                return link
        raise ValueError(f"The optimizer {self!r} has no learning rate.")

    @property
    def eta(self) -> float:
        return self._lr_link().eta

    @eta.setter
    def eta(self, value: float) -> None:
        self._lr_link().eta = _check_positive("eta", value)

    def init(self, params: Sequence[np.ndarray], decay: Sequence[bool]) -> None:
        self.transform.init(params, decay)

    def step(self, params: Sequence[np.ndarray], grads: list[np.ndarray]) -> None:
        self.transform.update(grads, params)
        for p, u in zip(params, grads):
            p += u

    def prepend(self, *links: GradientTransformation) -> "Optimizer":
        """A new optimizer with ``links`` run before this one's (used to add regularization)."""
        return Optimizer(chain(*links, self.transform), self.name)

    def state_dict(self) -> dict:
        return self.transform.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.transform.load_state_dict(state)

    def __repr__(self) -> str:
        return f"Optimizer({self.name}: {self.transform!r})"


def sgd(eta: float) -> Optimizer:
    """Plain mini-batch stochastic gradient descent: ``w -> w - eta dC/dw``."""
    return Optimizer(chain(scale_by_learning_rate(eta)), "sgd")


OPTIMIZERS = {"sgd": sgd}


def get(optimizer: str | Optimizer | None, eta: float) -> Optimizer:
    """An optimizer from its name (with learning rate ``eta``) or an Optimizer passed through."""
    if optimizer is None:
        return sgd(eta)
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()](eta)
    raise ValueError(f"The 'optimizer' parameter must be one of {sorted(OPTIMIZERS)}. Got {optimizer!r} instead.")
