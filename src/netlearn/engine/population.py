"""Population kernels: K networks of one architecture trained in lockstep, K the last (fastest) axis.

Layer l of all K networks is stored as W (n_in, n_out, K) and b (n_out, K);
activations and deltas as (m, n, K).  Every inner loop runs over the K
networks, contiguous in memory, so it vectorizes whatever the layer sizes.
The step's math is :mod:`netlearn.engine.step`'s (output delta, ``f'``, lazy
decay), with a learning rate, L2 strength and momentum per network.

Kernels take named bundles: :class:`PopInputs` (the shared training set),
:class:`PopIndex` (a batch's non-zero inputs grouped by input row),
:class:`PopLayers` (the stacked parameters and buffers) and :class:`PopRule`
(each network's hyper-parameters and state).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .codes import SOFTMAX, B
from .compiler import compile_with_notice, helper, inline, jit  # noqa: F401  (the notice: for Population.fit)
from .inputs import sparse_rows  # noqa: F401  (the population's set-up uses them from here)
from .intrinsics import vaxpy, vaxpy4, vmuladd, vrows_by4
from .step import activate_row, delta_out, derivative, lazy_decay
from .threads import run_parallel  # noqa: F401


class PopInputs(NamedTuple):
    """The training set shared by all networks: its non-zeros (CSR, see ``inputs.sparse_rows``) and targets."""

    indptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    T: np.ndarray


class PopIndex(NamedTuple):
    """Scratch for :func:`pop_gather`: a batch's non-zero inputs grouped by input row."""

    stamp: np.ndarray
    rows: np.ndarray
    rptr: np.ndarray
    cursor: np.ndarray
    ent_e: np.ndarray
    ent_x: np.ndarray


class PopLayers(NamedTuple):
    """Stacked parameters ``Ws``/``bs`` (with momentum, velocities ``Vs``/``Vbs``), activations ``A`` and
    deltas ``D``; ``W0``, ``A0``, ``D0``, ``V0``, ``b0`` the first layer's arrays seen flat, ``(n_in, H*K)``."""

    W0: np.ndarray
    A0: np.ndarray
    D0: np.ndarray
    V0: np.ndarray
    b0: np.ndarray
    A: tuple
    D: tuple
    Ws: tuple
    bs: tuple
    Vs: tuple
    Vbs: tuple


class PopRule(NamedTuple):
    """Per network ``k``: ``etas``, ``c2s = lmbda/n``, ``mus``; ``active[k]`` 0 freezes it; ``scales`` ``(L, K)`` the
    lazy-decay scales; ``coef`` scratch; shared: ``kind`` (output delta), ``acts`` (codes), ``momentum``."""

    kind: int
    acts: np.ndarray
    scales: np.ndarray
    etas: np.ndarray
    c2s: np.ndarray
    mus: np.ndarray
    active: np.ndarray
    momentum: bool
    coef: np.ndarray


@inline
def pop_gather(inp, index, perm, s0, mb, bid):
    """Group the non-zero inputs of the batch ``perm[s0:s0+mb]`` by input row.

    Afterwards ``rows[:nu]`` are the input positions used by any example of
    the batch, and ``ent_e[rptr[u]:rptr[u+1]]`` / ``ent_x[...]`` the examples
    and values that use position ``rows[u]``.  Each weight row is then read
    (and updated) once per batch, not once per example.  Returns ``nu``.
    """
    indptr, cols, vals = inp.indptr, inp.cols, inp.vals
    stamp, rows, rptr, cursor, ent_e, ent_x = index
    nu = 0
    for e in range(mb):
        r = perm[s0 + e]
        for p in range(indptr[r], indptr[r + 1]):
            i = cols[p]
            if stamp[i] != bid:
                stamp[i] = bid
                cursor[i] = 0
                rows[nu] = i
                nu += 1
            cursor[i] += 1
    pos = 0
    for u in range(nu):
        i = rows[u]
        rptr[u] = pos
        c = cursor[i]
        cursor[i] = pos
        pos += c
    rptr[nu] = pos
    for e in range(mb):
        r = perm[s0 + e]
        for p in range(indptr[r], indptr[r + 1]):
            i = cols[p]
            q = cursor[i]
            ent_e[q] = e
            ent_x[q] = vals[p]
            cursor[i] = q + 1
    return nu


@inline
def pop_forward0(inp, perm, s0, mb, W0, Z, scale, b):
    """First layer of all K networks: ``Z[e] = s * (x_e W0) + b`` for the batch ``perm[s0:s0+mb]``.

    ``W0`` is ``(n_in, H*K)``: one wide matrix for all networks (the
    ``(n_in, H, K)`` weights seen flat, so the inner loop is one long
    contiguous run whatever K); ``Z`` is ``(m, H*K)``; each example's
    non-zero inputs come from the CSR index.  ``scale`` (per network) is the
    lazy-decay scale and ``b`` the ``(H*K,)`` biases.

    Each example sums four weight rows in registers (:func:`vaxpy4`) before
    it stores to ``Z``: the stores, not the arithmetic, limit this loop.
    (Column tiles, to keep rows in L1/L2, and the all-in-registers sum of
    :func:`vrows` measured slower here, where the rows come from L3.)
    """
    indptr, cols, vals = inp.indptr, inp.cols, inp.vals
    n = Z.shape[1]
    K = scale.shape[0]
    for e in range(mb):
        for j in range(n):
            Z[e, j] = 0.0
    for e in range(mb):
        r = perm[s0 + e]
        ze = e * n
        p, p1 = indptr[r], indptr[r + 1]
        while p + 4 <= p1:
            i0, i1 = np.intp(cols[p]) * n, np.intp(cols[p + 1]) * n
            i2, i3 = np.intp(cols[p + 2]) * n, np.intp(cols[p + 3]) * n
            x0, x1, x2, x3 = vals[p], vals[p + 1], vals[p + 2], vals[p + 3]
            for j in range(0, n, B):
                vaxpy4(Z, ze + j, W0, i0 + j, i1 + j, i2 + j, i3 + j, x0, x1, x2, x3)
            p += 4
        while p < p1:
            i0 = np.intp(cols[p]) * n
            for j in range(0, n, B):
                vaxpy(Z, ze + j, vals[p], W0, i0 + j)
            p += 1
    for e in range(mb):
        for j0 in range(0, n, K):
            for k in range(K):
                Z[e, j0 + k] = scale[k] * Z[e, j0 + k] + b[j0 + k]


@inline
def pop_update0(index, nu, target, d):
    """``target[i] += sum_e x_ei d[e]`` over the batch's non-zero inputs (the first layer's gradient step).

    ``target`` is ``W0`` (or, with momentum, its velocity) seen flat as
    ``(n_in, H*K)``; ``d`` ``(m, H*K)`` holds the first layer's deltas already
    multiplied by each network's step coefficient.
    """
    rows, rptr, ent_e, ent_x = index.rows, index.rptr, index.ent_e, index.ent_x
    n = d.shape[1]
    for u in range(nu):
        # target[i] += sum over the examples q using input i of ent_x[q] * d[ent_e[q]], summed in registers
        vrows_by4(target, rows[u] * n, d, n, ent_e, ent_x, rptr[u], rptr[u + 1])


@jit
def pop_forward(U, W, b, scale, Z, mb):
    """A later layer of all K networks: ``Z[e, j, k] = s_k sum_i U[e, i, k] W[i, j, k] + b[j, k]``."""
    I, J, K = W.shape
    for e in range(mb):
        for j in range(J):
            for k in range(K):
                Z[e, j, k] = 0.0
        for i in range(I):
            for j in range(J):
                for k in range(K):
                    Z[e, j, k] += U[e, i, k] * W[i, j, k]
        for j in range(J):
            for k in range(K):
                Z[e, j, k] = scale[k] * Z[e, j, k] + b[j, k]


@helper
def pop_softmax(Z, mb):
    """Softmax over axis 1 of ``Z (m, J, K)`` for each example and network, in place."""
    J, K = Z.shape[1], Z.shape[2]
    for e in range(mb):
        for k in range(K):
            mx = Z[e, 0, k]
            for j in range(1, J):
                mx = Z[e, j, k] if Z[e, j, k] > mx else mx
            tot = 0.0
            for j in range(J):
                Z[e, j, k] = math.exp(Z[e, j, k] - mx)
                tot += Z[e, j, k]
            for j in range(J):
                Z[e, j, k] /= tot




@inline
def pop_output_delta(dL, aL, T, perm, s0, mb, kind, code):
    """``dL[e, j, k]`` = :func:`~netlearn.engine.step.delta_out` of output ``j`` of network ``k`` for example ``e``."""
    K = dL.shape[2]
    inv_m = 1.0 / mb
    for e in range(mb):
        r = perm[s0 + e]
        for j in range(dL.shape[1]):
            t = T[r, j]
            for k in range(K):
                dL[e, j, k] = delta_out(aL[e, j, k], t, kind, code, inv_m)


@inline
def pop_hidden_delta(dp, dn, W, u, scale, code, mb):
    """``dp = s (dn W^T) * f'(u)`` per network: the delta of a hidden layer from the next one's, pre-update ``W``."""
    I, J, K = W.shape
    for e in range(mb):
        for i in range(I):
            for k in range(K):
                dp[e, i, k] = 0.0
            # (16 networks per step: K is padded to a multiple of 16)
            for j in range(J):
                for k in range(0, K, B):
                    vmuladd(dp, (e * I + i) * K + k, W, (i * J + j) * K + k, dn, (e * J + j) * K + k)
            for k in range(K):
                dp[e, i, k] *= scale[k] * derivative(u[e, i, k], code)


@inline
def pop_decay(l, W, V, rule):
    """Each network's weight decay on layer ``l`` and its gradient step's coefficient ``coef[k]``.

    With momentum, ``V -> mu V - eta c2 W`` (the gradient is added to ``V``
    next) and ``coef = -eta``; without, the lazy decay of the scale ``s`` and
    ``coef = -eta / s``; frozen networks get ``coef = 0``.
    """
    scales, etas, c2s, active, coef = rule.scales, rule.etas, rule.c2s, rule.active, rule.coef
    I, J, K = W.shape
    if rule.momentum:
        for k in range(K):
            coef[k] = -etas[k] * active[k]
        momentum_decay(V, W, rule.mus, etas, c2s)
        return
    for k in range(K):
        if active[k] != 0.0:
            s, fold = lazy_decay(scales[l, k], etas[k], c2s[k])
            if fold != 1.0:
                for i in range(I):
                    for j in range(J):
                        W[i, j, k] *= fold
            scales[l, k] = s
            coef[k] = -etas[k] / s
        else:
            coef[k] = 0.0


@inline
def pop_bias_step(b, Vb, d, rule, mb):
    """``b -> b - eta sum_e delta`` (or through its velocity ``Vb``), each network with its own ``eta``."""
    etas, mus, active, momentum = rule.etas, rule.mus, rule.active, rule.momentum
    J, K = b.shape
    for j in range(J):
        for k in range(K):
            acc = d[0, j, k]
            for e in range(1, mb):
                acc += d[e, j, k]
            if momentum:
                Vb[j, k] = mus[k] * Vb[j, k] - etas[k] * active[k] * acc
                b[j, k] += Vb[j, k]
            else:
                b[j, k] -= etas[k] * active[k] * acc


@inline
def scale_deltas(d, coef, mb):
    """``d[e, j, k] *= coef[k]``: each network's deltas times its step coefficient."""
    for e in range(mb):
        for j in range(d.shape[1]):
            for k in range(d.shape[2]):
                d[e, j, k] *= coef[k]


@inline
def pop_weight_step(target, u, d, mb):
    """``target[i, j, k] += sum_e u[e, i, k] d[e, j, k]``: a later layer's gradient step (``d`` already scaled)."""
    I, J, K = target.shape
    for e in range(mb):
        for i in range(I):
            for j in range(J):
                for k in range(0, K, B):
                    vmuladd(target, (i * J + j) * K + k, u, (e * I + i) * K + k, d, (e * J + j) * K + k)


@helper
def momentum_decay(V, W, mus, etas, c2s):
    """``V -> mu V - eta c2 W`` per network (the momentum rule's decay half; the gradient half follows)."""
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            for k in range(W.shape[2]):
                V[i, j, k] = mus[k] * V[i, j, k] - etas[k] * c2s[k] * W[i, j, k]


@jit
def pop_activate(Z, mb, code):
    """Apply activation ``code`` in place to the first ``mb`` examples of ``Z (m, J, K)`` (training and evaluation)."""
    if code == SOFTMAX:
        pop_softmax(Z, mb)
        return
    for e in range(mb):
        for j in range(Z.shape[1]):
            activate_row(Z[e], j, Z.shape[2], code)


@jit
def pop_train(inp, index, layers, rule, perm, start, stop, m, bid):
    """The batches ``perm[s:s+m]`` for ``s`` in ``range(start, stop, m)``, for all K networks.

    One call per epoch instead of several Python calls per mini-batch; each
    batch is :func:`pop_gather`, :func:`pop_forward0`, :func:`pop_forward`
    (with the activations), :func:`pop_output_delta`, :func:`pop_hidden_delta`, per
    layer :func:`pop_decay`, :func:`pop_bias_step`, :func:`scale_deltas` and
    :func:`pop_weight_step`, then :func:`pop_update0` and, with
    momentum, :func:`pop_momentum0`.  ``bid`` numbers the batches for
    :func:`pop_gather` (``stamp`` must hold no number from ``bid`` on);
    returns the next unused number.
    """
    n = perm.shape[0]
    A, Ws, bs = layers.A, layers.Ws, layers.bs
    acts, scales, momentum = rule.acts, rule.scales, rule.momentum
    L = len(Ws)
    for s0 in range(start, stop, m):
        mb = m if m < n - s0 else n - s0
        nu = pop_gather(inp, index, perm, s0, mb, bid)
        bid += 1
        pop_forward0(inp, perm, s0, mb, layers.W0, layers.A0, scales[0], layers.b0)
        pop_activate(A[0], mb, acts[0])
        for l in range(1, L):
            pop_forward(A[l - 1], Ws[l], bs[l], scales[l], A[l], mb)
            pop_activate(A[l], mb, acts[l])
        # back-propagate through all K networks (deltas with the pre-update weights), then step each layer
        pop_output_delta(layers.D[L - 1], A[L - 1], inp.T, perm, s0, mb, rule.kind, acts[L - 1])
        for l in range(L - 1, 0, -1):
            pop_hidden_delta(layers.D[l - 1], layers.D[l], Ws[l], A[l - 1], scales[l], acts[l - 1], mb)
        # each layer's SGD step for every network k, with its own eta_k, c2_k = lmbda_k/n and mu_k: Nielsen's
        # v -> mu v - eta (dC/dw + c2 w), w -> w + v with momentum, else a lazy decay; frozen networks
        # (active[k] == 0) do not change
        for l in range(L):
            W, d = Ws[l], layers.D[l]
            pop_decay(l, W, layers.Vs[l], rule)
            pop_bias_step(bs[l], layers.Vbs[l], d, rule, mb)
            scale_deltas(d, rule.coef, mb)  # (the bias step has used them unscaled)
            if l > 0:  # (the first layer's gradient step is pop_update0's, below)
                pop_weight_step(layers.Vs[l] if momentum else W, A[l - 1], d, mb)
                if momentum:
                    pop_momentum0(W, layers.Vs[l])
        pop_update0(index, nu, layers.V0 if momentum else layers.W0, layers.D0)
        if momentum:
            pop_momentum0(Ws[0], layers.Vs[0])
    return bid


@helper
def pop_momentum0(W, V):
    """``W += V``: a layer's momentum step, after its gradient was added to the velocity ``V``."""
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            for k in range(W.shape[2]):
                W[i, j, k] += V[i, j, k]


def pop_fold_scales(Ws, scales) -> None:
    """Write the true weights back (``W[..., k] *= s_k``) and reset every scale to 1.

    Plain NumPy, the same bits as a compiled loop (one float64 product per
    weight, rounded to the weights' dtype): it runs once per epoch (about a
    millisecond for 32 book networks), so a kernel of its own would only add
    to the first compile.
    """
    for l, W in enumerate(Ws):
        W *= scales[l]
        scales[l] = 1.0
