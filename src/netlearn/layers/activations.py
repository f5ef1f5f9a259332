"""Element-wise activations (and softmax), each with its derivative.

Each caches its output ``a`` in ``forward`` and multiplies the incoming
``dL/da`` by ``da/dz`` in ``backward``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from .base import Module


class Activation(Module):
    """An activation ``a = f(z)``; subclasses give ``f`` and ``f'`` in terms of ``a``."""

    name = "activation"

    def forward(self, z: np.ndarray, train: bool = False) -> np.ndarray:
        out = self._buffer("a", z.shape, z.dtype) if train else np.empty_like(z)
        self.a = self._f(z, out)
        return self.a

    def backward(self, grad: np.ndarray) -> np.ndarray:
        out = self._buffer("grad", grad.shape, grad.dtype)
        return self._df(grad, self.a, out)

    def _f(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _df(self, grad: np.ndarray, a: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Sigmoid(Activation):
    """``sigma(z) = 1 / (1 + e^-z)``, ``sigma' = a (1 - a)``.

    ``scipy.special.expit`` never overflows, for any finite or infinite ``z``.
    """

    name = "sigmoid"

    def _f(self, z, out):
        return expit(z, out=out)

    def _df(self, grad, a, out):
        np.subtract(1, a, out=out)
        out *= a
        out *= grad
        return out


class Tanh(Activation):
    """``tanh(z)``, ``tanh' = 1 - a^2``."""

    name = "tanh"

    def _f(self, z, out):
        return np.tanh(z, out=out)

    def _df(self, grad, a, out):
        np.multiply(a, a, out=out)
        np.subtract(1, out, out=out)
        out *= grad
        return out


class ReLU(Activation):
    """``max(0, z)``; its derivative is 1 where ``z > 0`` and 0 elsewhere."""

    name = "relu"

    def _f(self, z, out):
        return np.maximum(z, 0, out=out)

    def _df(self, grad, a, out):
        np.greater(a, 0, out=out)
        out *= grad
        return out


class Identity(Activation):
    """The linear neuron ``a = z``."""

    name = "identity"

    def _f(self, z, out):
        out[...] = z
        return out

    def _df(self, grad, a, out):
        out[...] = grad
        return out


class Softmax(Activation):
    """``a_j = e^{z_j} / sum_k e^{z_k}`` over each row.

    The row maximum is subtracted first (the log-sum-exp trick), so no
    exponential overflows.  The Jacobian-vector product is
    ``dL/dz = a * (g - sum_k g_k a_k)``.
    """

    name = "softmax"

    def _f(self, z, out):
        np.subtract(z, z.max(axis=1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out

    def _df(self, grad, a, out):
        s = np.einsum("ij,ij->i", grad, a)[:, None]
        np.subtract(grad, s, out=out)
        out *= a
        return out


class Step(Activation):
    """The step neuron of the MIT notes (and the book's perceptron): 1 if ``z > 0`` else 0.

    Its derivative is zero almost everywhere, so gradient descent cannot
    train through it; ``backward`` says so instead of returning zeros.
    """

    name = "step"

    def _f(self, z, out):
        np.greater(z, 0, out=out)
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        raise ValueError(
            "The step activation has no useful gradient (its derivative is 0 almost everywhere), "
            "so it cannot be trained by back-propagation. Use 'sigmoid', 'tanh' or 'relu' for "
            "trainable layers; keep 'step' for forward-only (perceptron) networks."
        )


ACTIVATIONS = {cls.name: cls for cls in (Sigmoid, Tanh, ReLU, Identity, Softmax, Step)}
ACTIVATIONS["linear"] = Identity

#: The activations a hidden layer is trained with: element-wise and differentiable.  (Softmax couples
#: a layer's neurons into one probability distribution, an output layer's job; step has no gradient.)
HIDDEN = tuple(k for k, cls in ACTIVATIONS.items() if cls not in (Softmax, Step) and k != "linear")


def get(name: str | Activation) -> Activation:
    """A fresh activation module from its name (``sigmoid``, ``tanh``, ``relu``, ``identity``/``linear``, ``softmax``, ``step``)."""
    if isinstance(name, Activation):
        return name
    if isinstance(name, str) and name.lower() in ACTIVATIONS:
        return ACTIVATIONS[name.lower()]()
    names = sorted(k for k in ACTIVATIONS if k != "linear")
    raise ValueError(f"The 'activation' parameter must be one of {names}. Got {name!r} instead.")
