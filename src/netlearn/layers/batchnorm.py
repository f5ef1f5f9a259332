"""Batch normalization (Ioffe & Szegedy 2015) as the MIT 6.036 notes derive it, placed between a Dense and its activation."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import as_dtype
from ..validation import check_int, check_positive, check_unit
from .base import Module


class BatchNorm(Module):
    """Normalize each unit over the mini-batch, then scale by ``G`` and shift by ``B``.

    Training mode, for a batch ``z`` of shape ``(K, n)``::

        mu = (1/K) sum_k z_k                 sigma^2 = (1/K) sum_k (z_k - mu)^2
        zbar = (z - mu) / sqrt(sigma^2 + eps)
        v = G * zbar + B

    and, from the MIT notes' derivation (``g = dL/dv``, ``s = sqrt(sigma^2 + eps)``)::

        dL/dG = sum_k g_k * zbar_k           dL/dB = sum_k g_k
        dL/dz = (G / (K s)) * (K g - sum_k g_k - zbar * sum_k g_k zbar_k)

    Running averages ``running_mean``, ``running_var`` (updated with weight
    ``1 - momentum`` per batch; the variance unbiased, ``K/(K-1) sigma^2``)
    replace the batch statistics in evaluation mode, where ``v`` is an affine
    function of ``z`` and ``dL/dz = g G / sqrt(running_var + eps)``.
    ``G`` and ``B`` are not weight-decayed.
    """

    def __init__(self, n: int, eps: float = 1e-5, momentum: float = 0.9, dtype: Any = None) -> None:
        super().__init__()
        self.n = check_int("n", n)
        self.eps = check_positive("eps", eps)
        self.momentum = check_unit("momentum", momentum)
        dt = as_dtype(dtype)
        self.G = np.ones(self.n, dtype=dt)
        self.B = np.zeros(self.n, dtype=dt)
        self.params = [self.G, self.B]
        self.grads = [np.zeros_like(self.G), np.zeros_like(self.B)]
        self.decay = [False, False]
        self.running_mean = np.zeros(self.n, dtype=dt)
        self.running_var = np.ones(self.n, dtype=dt)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """``G = 1``, ``B = 0``, running statistics back to (0, 1)."""
        self.G[...] = 1
        self.B[...] = 0
        self.running_mean[...] = 0
        self.running_var[...] = 1

    def _after_params_set(self) -> None:
        self.G, self.B = self.params
        self.running_mean = self.running_mean.astype(self.G.dtype)
        self.running_var = self.running_var.astype(self.G.dtype)

    def forward(self, z: np.ndarray, train: bool = False) -> np.ndarray:
        self.train = train
        dt = z.dtype.type
        if train:
            K = z.shape[0]
            mu = z.mean(axis=0)
            zc = self._buffer("zbar", z.shape, z.dtype)
            np.subtract(z, mu, out=zc)
            var = np.einsum("ij,ij->j", zc, zc) / dt(K)
            m = dt(self.momentum)
            self.running_mean *= m
            self.running_mean += (dt(1) - m) * mu
            self.running_var *= m
            self.running_var += (dt(1) - m) * (var * dt(K / (K - 1)) if K > 1 else var)
        else:
            zc = np.subtract(z, self.running_mean)
            var = self.running_var
        self.s = np.sqrt(var + dt(self.eps))
        zc /= self.s
        self.zbar = zc
        v = self._buffer("v", z.shape, z.dtype) if train else np.empty_like(z)
        np.multiply(zc, self.G, out=v)
        v += self.B
        return v

    def backward(self, g: np.ndarray) -> np.ndarray:
        zbar = self.zbar
        np.einsum("ij,ij->j", g, zbar, out=self.grads[0])
        np.sum(g, axis=0, out=self.grads[1])
        dz = self._buffer("dz", g.shape, g.dtype)
        if not self.train:
            np.multiply(g, self.G / self.s, out=dz)
            return dz
        K = g.shape[0]
        dt = g.dtype.type
        np.multiply(zbar, self.grads[0], out=dz)      # zbar * sum_k g_k zbar_k
        dz += self.grads[1]                            # + sum_k g_k
        np.subtract(dt(K) * g, dz, out=dz)             # K g - ...
        dz *= self.G / (dt(K) * self.s)
        return dz

    def get_config(self) -> dict:
        return {"n": self.n, "eps": self.eps, "momentum": self.momentum}

    def get_state(self) -> dict[str, np.ndarray]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for name in ("running_mean", "running_var"):
            value = np.asarray(state[name], dtype=self.G.dtype)
            if value.shape != (self.n,):
                raise ValueError(f"BatchNorm state '{name}' has shape {value.shape}; expected ({self.n},).")
            getattr(self, name)[...] = value

    def extra_repr(self) -> str:
        return f"{self.n}, eps={self.eps:g}, momentum={self.momentum:g}"
