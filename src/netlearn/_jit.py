"""Numba kernels behind :mod:`netlearn.kernels` and :mod:`netlearn.population`.

Imported only when a compiled path is first used, so ``import netlearn`` does
not pay for Numba.  Every function is compiled with ``cache=True`` (the
machine code is kept on disk next to this file, or in Numba's user cache), runs
on one thread, and allocates nothing per mini-batch.

Notation follows the book: ``z = a W + b`` (batch-first, ``W`` is
``(n_in, n_out)``), ``a = f(z)``, ``delta = dC/dz``; ``eta`` the learning
rate, ``c2 = lmbda/n`` (L2) and ``c1 = lmbda/n`` (L1) the regularization
coefficients.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from .kernels import CHAINED, FUSED, HINGE, RELU, SIGMOID, SOFTMAX, TANH, _MIN_SCALE

#: Fused multiply-add and reassociation (so dot products vectorize); no
#: "finite math" assumptions, so a diverging network still shows NaN/inf.
FASTMATH = {"contract", "reassoc", "nsz"}

jit = numba.njit(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy")


@jit
def activate(z, code):
    """Apply activation ``code`` in place to the row ``z`` (softmax subtracts the row maximum first)."""
    n = z.shape[0]
    if code == SIGMOID:
        for j in range(n):
            z[j] = 1.0 / (1.0 + math.exp(-z[j]))
    elif code == TANH:
        for j in range(n):
            z[j] = math.tanh(z[j])
    elif code == RELU:
        for j in range(n):
            if z[j] < 0:
                z[j] = 0.0
    elif code == SOFTMAX:
        mx = z[0]
        for j in range(1, n):
            if z[j] > mx:
                mx = z[j]
        tot = 0.0
        for j in range(n):
            z[j] = math.exp(z[j] - mx)
            tot += z[j]
        inv = 1.0 / tot
        for j in range(n):
            z[j] *= inv


@jit
def derivative(a, code):
    """``f'(z)`` in terms of ``a = f(z)`` for an element-wise activation (identity: 1)."""
    if code == SIGMOID:
        return a * (1.0 - a)
    if code == TANH:
        return 1.0 - a * a
    if code == RELU:
        return 1.0 if a > 0 else 0.0
    return 1.0


@jit
def output_delta(a, t, d, inv_m, kind, code):
    """Fill the row ``d`` with ``dC/dz`` for outputs ``a`` and targets ``t`` (batch mean: times ``inv_m``)."""
    for j in range(a.shape[0]):
        if kind == FUSED:
            d[j] = (a[j] - t[j]) * inv_m
        elif kind == HINGE:
            d[j] = -t[j] * inv_m if t[j] * a[j] < 1 else 0.0
        else:  # CHAINED: quadratic cost through f'(z)
            d[j] = (a[j] - t[j]) * inv_m * derivative(a[j], code)


@jit
def csr_counts(X, counts):
    """``counts[r]`` = number of non-zero inputs in row ``r``."""
    for r in range(X.shape[0]):
        c = 0
        for i in range(X.shape[1]):
            c += X[r, i] != 0
        counts[r] = c


@jit
def csr_fill(X, indptr, cols, vals):
    """Write the positions and values of each row's non-zeros at ``indptr[r]:indptr[r+1]``.

    Branch-free: every input is written at position ``p`` and ``p`` advances
    only past non-zeros (so ``cols``/``vals`` need one spare slot at the end).
    """
    for r in range(X.shape[0]):
        p = indptr[r]
        for i in range(X.shape[1]):
            x = X[r, i]
            cols[p] = i
            vals[p] = x
            p += x != 0


@jit
def scale_rows(W, s):
    """``W *= s`` (folding a lazy decay scale back into the weights)."""
    for i in range(W.shape[0]):
        w = W[i]
        for j in range(w.shape[0]):
            w[j] *= s


@jit
def sparse_dot(indptr, cols, vals, r, W, z):
    """``z = x_r W`` over the non-zeros of input row ``r`` (CSR), four at a time.

    Summing four weight rows before adding to ``z`` breaks the chain of
    load-add-store through ``z`` that otherwise limits the speed.
    """
    n = z.shape[0]
    z[:] = 0.0
    p, p1 = indptr[r], indptr[r + 1]
    while p + 4 <= p1:
        x0, x1, x2, x3 = vals[p], vals[p + 1], vals[p + 2], vals[p + 3]
        i0, i1, i2, i3 = cols[p], cols[p + 1], cols[p + 2], cols[p + 3]
        for j in range(n):
            z[j] += (x0 * W[i0, j] + x1 * W[i1, j]) + (x2 * W[i2, j] + x3 * W[i3, j])
        p += 4
    while p < p1:
        x0 = vals[p]
        i0 = cols[p]
        for j in range(n):
            z[j] += x0 * W[i0, j]
        p += 1


@jit
def train(X, sparse, indptr, cols, vals, T, perm, start, stop, m, Ws, bs, widths, acts, kind, A, D, scales,
          eta, c2, c1):
    """Mini-batch SGD over the batches ``perm[s:s+m]`` for ``s`` in ``range(start, stop, m)``.

    ``Ws``/``bs``: each Dense layer's weights ``(n_in, n_out)`` and biases,
    updated in place, padded with zero columns (and, after the first layer,
    zero rows) to a multiple of 16 outputs so that the inner loops fill whole
    SIMD registers; ``widths`` holds the real ``n_out``.  Padded activations
    are kept at 0, so padded weights stay 0.  ``A[l]``/``D[l]``: ``(m, n_out)``
    buffers for each layer's activations and deltas.  ``scales``: one
    lazy-decay scalar per layer (the true weights are ``s V`` and ``V`` lives
    in ``W`` during the call; the true weights are written back before
    returning).  The rule is the book's
    ``W -> W - eta (dC/dW + c2 W + c1 sgn W)``, ``b -> b - eta dC/db``.
    """
    L = len(Ws)
    n = perm.shape[0]
    n_in0 = Ws[0].shape[0]
    one = np.empty(1, Ws[0].dtype)  # casts a float64 coefficient to the weights' dtype
    for l in range(L):
        scales[l] = 1.0
    decay = 1.0 - eta * c2
    for s0 in range(start, stop, m):
        mb = min(m, n - s0)
        inv_m = 1.0 / mb
        # ---- forward, layer 0: z = s (x V) + b over the non-zero inputs only
        W0 = Ws[0]
        a0 = A[0]
        s = scales[0]
        b = bs[0]
        for e in range(mb):
            r = perm[s0 + e]
            z = a0[e]
            if sparse:
                sparse_dot(indptr, cols, vals, r, W0, z)
            else:
                z[:] = 0.0
                for i in range(n_in0):
                    x = X[r, i]
                    if x != 0:
                        w = W0[i]
                        for j in range(z.shape[0]):
                            z[j] += x * w[j]
            for j in range(z.shape[0]):
                z[j] = s * z[j] + b[j]
            activate(z[:widths[0]], acts[0])
        # ---- forward, later layers (dense)
        for l in range(1, L):
            W = Ws[l]
            u = A[l - 1]
            a = A[l]
            s = scales[l]
            b = bs[l]
            for e in range(mb):
                z = a[e]
                z[:] = 0.0
                for i in range(widths[l - 1]):
                    x = u[e, i]
                    for j in range(W.shape[1]):
                        z[j] += x * W[i, j]
                for j in range(z.shape[0]):
                    z[j] = s * z[j] + b[j]
                activate(z[:widths[l]], acts[l])
        # ---- output delta (padded entries stay 0)
        for e in range(mb):
            nl = widths[L - 1]
            output_delta(A[L - 1][e, :nl], T[perm[s0 + e]], D[L - 1][e, :nl], inv_m, kind, acts[L - 1])
        # ---- backward with the pre-update weights: delta_{l-1} = s (delta_l V^T) * f'(a_{l-1})
        for l in range(L - 1, 0, -1):
            W = Ws[l]
            s = scales[l]
            dn = D[l]
            dp = D[l - 1]
            u = A[l - 1]
            for e in range(mb):
                de = dn[e]
                for i in range(widths[l - 1]):
                    w = W[i]
                    acc = w[0] * de[0]
                    for j in range(1, w.shape[0]):
                        acc += w[j] * de[j]
                    dp[e, i] = s * acc * derivative(u[e, i], acts[l - 1])
        # ---- update each layer: decay (lazy unless L1), then W += -eta x delta^T per example
        for l in range(L):
            W = Ws[l]
            d = D[l]
            if c1 != 0.0:
                for i in range(W.shape[0]):
                    w = W[i]
                    for j in range(w.shape[0]):
                        sg = 1.0 if w[j] > 0 else (-1.0 if w[j] < 0 else 0.0)
                        w[j] -= eta * (c2 * w[j] + c1 * sg)
                coef = -eta
            else:
                s = scales[l] * decay
                if abs(s) < _MIN_SCALE:
                    scale_rows(W, s)
                    s = 1.0
                scales[l] = s
                coef = -eta / s
            if l == 0:
                for e in range(mb):
                    r = perm[s0 + e]
                    de = d[e]
                    if sparse:
                        for p in range(indptr[r], indptr[r + 1]):
                            one[0] = coef * vals[p]
                            g = one[0]
                            i = cols[p]
                            for j in range(W.shape[1]):
                                W[i, j] += g * d[e, j]
                    else:
                        for i in range(n_in0):
                            xv = X[r, i]
                            if xv != 0:
                                one[0] = coef * xv
                                g = one[0]
                                w = W[i]
                                for j in range(w.shape[0]):
                                    w[j] += g * de[j]
            else:
                u = A[l - 1]
                for e in range(mb):
                    de = d[e]
                    for i in range(widths[l - 1]):
                        one[0] = coef * u[e, i]
                        g = one[0]
                        for j in range(W.shape[1]):
                            W[i, j] += g * d[e, j]
            b = bs[l]
            for j in range(b.shape[0]):
                acc = d[0, j]
                for e in range(1, mb):
                    acc += d[e, j]
                b[j] -= eta * acc
    # ---- write the true weights back: W = s V, s = 1
    for l in range(L):
        if scales[l] != 1.0:
            scale_rows(Ws[l], scales[l])
            scales[l] = 1.0
