"""The training step's math, each rule written once and called by every kernel.

Notation follows the book: ``z = a W + b`` (batch-first, ``W`` is
``(n_in, n_out)``), ``a = f(z)``, ``delta = dC/dz``; ``eta`` the learning
rate, ``c2 = lmbda/n`` (L2) and ``c1 = l1/n`` (L1) the regularization
coefficients.  The NumPy modules hold the same rules (``layers``, ``costs``,
``optimizers``); the engine-agreement tests hold the two together.

* :func:`activate_row` and :func:`derivative`: ``f`` and ``f'`` (in terms of
  ``a = f(z)``) per activation code; :func:`expf` is the float32 ``exp`` they
  use, so that a loop of sigmoids vectorizes.
* :func:`delta_out`: the output delta ``dC/dz`` of one output, per cost kind.
* :func:`lazy_decay` and :func:`l1_decay`: the book's weight decay, L2 kept
  lazily as a per-layer scale ``W = s V``; :func:`decay_rows` applies either
  to rows of a weight matrix and returns the coefficient of the gradient step.
* :func:`bias_step`: ``b -> b - eta sum_e delta_e``.

They are small functions that LLVM inlines into each kernel: a code or kind
known in a loop is folded away there.
"""
from __future__ import annotations

import math

import numpy as np

from .codes import FUSED, HINGE, MIN_SCALE, RELU, SIGMOID, SOFTMAX, TANH, B
from .compiler import helper, inline, jit
from .intrinsics import pow2, small_code, vaxpy

_F = np.float32
_EXP_HI, _EXP_LO = _F(88.0), _F(-87.0)
_LOG2E, _HALF, _ONE = _F(1.44269504088896341), _F(0.5), _F(1.0)
_LN2_HI, _LN2_LO = _F(0.693359375), _F(-2.12194440e-4)
_P0, _P1, _P2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3, _P4, _P5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)


# (``expf`` and ``derivative`` are inlined into their callers: as functions of their own, ``derivative``
# was compiled once per constant activation code it was called with, each a full compile for a few
# instructions.  Five compiles fewer: the first compile of the row-by-row kernel measured 10.50 -> 10.01 s
# CPU, mean of seven alternating runs on a busy 2-core machine, a small gain within its noise.)
@inline
def expf(x):
    """``exp(x)`` for a float32 ``x`` within about 1 ulp (clamped to [-87, 88], NaN stays NaN).

    ``math.exp`` is a call into libm that LLVM cannot vectorize; this is plain
    float32 arithmetic, so a loop of it becomes AVX-512 code.
    """
    x = _EXP_LO if x < _EXP_LO else x  # (comparisons are false for NaN: NaN stays NaN)
    x = _EXP_HI if x > _EXP_HI else x
    n = np.floor(x * _LOG2E + _HALF)
    r = x - n * _LN2_HI - n * _LN2_LO
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * (r * r) + r + _ONE
    return p * pow2(n)



@inline
def derivative(a, code):
    """``f'(z)`` in terms of ``a = f(z)`` for an element-wise activation (identity: 1)."""
    if code == SIGMOID:
        return a * (1.0 - a)
    if code == TANH:
        return 1.0 - a * a
    if code == RELU:
        return 1.0 if a > 0 else 0.0
    return 1.0


@helper
def delta_out(a, t, kind, code, inv_m):
    """The output delta ``dC/dz`` of one output ``a`` with target ``t``, for a batch of ``1/inv_m`` examples.

    ``FUSED``: ``(a - t)/m`` (cross-entropy+sigmoid, log-likelihood+softmax,
    quadratic+identity); ``HINGE``: ``-t/m`` where ``t a < 1``, else 0;
    ``CHAINED``: the quadratic cost through ``f'``, ``(a - t) f'(z)/m``.
    """
    if kind == FUSED:
        return (a - t) * inv_m
    if kind == HINGE:
        return -t * inv_m if t * a < 1 else 0.0
    return (a - t) * inv_m * derivative(a, code)


@helper
def output_deltas(dL, e, aL, T, r, n, kind, code, inv_m):
    """``dL[e, :n]`` = :func:`delta_out` of example ``e``'s outputs ``aL[e]`` against targets ``T[r]``."""
    small_code()
    for j in range(n):
        dL[e, j] = delta_out(aL[e, j], T[r, j], kind, code, inv_m)


@helper
def times_derivative(D, e, A, n, s, code):
    """``D[e, :n] *= s f'(z)`` with ``f'`` from ``a = A[e, :n]``, one loop per activation (so each vectorizes)."""
    if code == SIGMOID:
        for j in range(n):
            D[e, j] *= s * derivative(A[e, j], SIGMOID)
    elif code == TANH:
        for j in range(n):
            D[e, j] *= s * derivative(A[e, j], TANH)
    elif code == RELU:
        for j in range(n):
            D[e, j] *= s * derivative(A[e, j], RELU)
    else:
        for j in range(n):
            D[e, j] *= s


@helper
def activate_row(Z, e, n, code):
    """Apply activation ``code`` in place to ``Z[e, :n]`` (the padding ``Z[e, n:]`` stays 0).

    Float32 sigmoid goes through :func:`expf`, so the loop vectorizes.
    """
    if code == SIGMOID:
        if Z.itemsize == 4:  # (the float64 kernel compiles this branch too, hence the cast)
            for j in range(n):
                Z[e, j] = _ONE / (_ONE + expf(np.float32(-Z[e, j])))
        else:
            for j in range(n):
                Z[e, j] = 1.0 / (1.0 + math.exp(-Z[e, j]))
    elif code == TANH:
        for j in range(n):
            Z[e, j] = math.tanh(Z[e, j])
    elif code == RELU:
        for j in range(n):
            if Z[e, j] < 0:
                Z[e, j] = 0.0
    elif code == SOFTMAX:
        mx = Z[e, 0]
        for j in range(1, n):
            if Z[e, j] > mx:
                mx = Z[e, j]
        tot = 0.0
        for j in range(n):
            Z[e, j] = math.exp(Z[e, j] - mx)
            tot += Z[e, j]
        inv = 1.0 / tot
        for j in range(n):
            Z[e, j] *= inv



@jit
def scale_rows(W, s):
    """``W *= s`` (folding a lazy decay scale back into the weights)."""
    for i in range(W.shape[0]):
        w = W[i]
        for j in range(w.shape[0]):
            w[j] *= s


@helper
def lazy_decay(s, eta, c2):
    """One step of L2 decay on a layer kept as ``W = s V``: ``(s', fold)``.

    ``W -> (1 - eta c2) W`` is ``s -> s (1 - eta c2)``, no pass over ``V``;
    when ``|s'|`` falls below ``MIN_SCALE`` the caller multiplies ``V`` by
    ``fold`` (else 1) and the scale restarts at 1, so ``V`` never grows out of
    range.  The gradient step on ``V`` is then ``-eta / s'`` times the gradient.
    """
    s = s * (1.0 - eta * c2)
    if abs(s) < MIN_SCALE:
        return 1.0, s
    return s, 1.0


@helper
def l1_decay(w, eta, c2, c1):
    """One weight after the book's L2 and L1 decay: ``w - eta (c2 w + c1 sgn w)`` (no lazy form for L1)."""
    sg = 1.0 if w > 0 else (-1.0 if w < 0 else 0.0)
    return w - eta * (c2 * w + c1 * sg)


@helper
def decay_rows(W, i0, i1, s, eta, c2, c1):
    """Decay rows ``i0:i1`` of one layer's weights ``W = s V``; returns ``(s', coef)``, ``coef`` the gradient step's.

    With L1 every weight is updated now (:func:`l1_decay`, ``s`` stays 1);
    otherwise the decay is lazy (:func:`lazy_decay`).  The caller adds
    ``coef * dC/dW`` to ``V``.
    """
    if c1 != 0.0:
        for i in range(i0, i1):
            for j in range(W.shape[1]):
                W[i, j] = l1_decay(W[i, j], eta, c2, c1)
        return s, -eta
    s, fold = lazy_decay(s, eta, c2)
    if fold != 1.0:
        for i in range(i0, i1):
            for j in range(W.shape[1]):
                W[i, j] *= fold
    return s, -eta / s


@helper
def bias_step(b, d, mb, coef):
    """``b += coef * sum_e d[e]`` over the batch's ``mb`` deltas, one example at a time (``coef = -eta``)."""
    small_code()
    J = b.shape[0]
    for e in range(mb):
        for j0 in range(0, J, B):
            vaxpy(b, j0, coef, d, e * J + j0)
