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


# ---------------------------------------------------------------------------
# Population kernels: K networks of one architecture, K the last (fastest) axis
# ---------------------------------------------------------------------------
# Layer l of all K networks is stored as W (n_in, n_out, K) and b (n_out, K);
# activations and deltas as (m, n, K).  Every inner loop runs over the K
# networks, contiguous in memory, so it vectorizes whatever the layer sizes.


@jit
def pop_gather(perm, s0, mb, indptr, cols, vals, stamp, bid, rows, rptr, cursor, ent_e, ent_x):
    """Group the non-zero inputs of the batch ``perm[s0:s0+mb]`` by input row.

    Afterwards ``rows[:nu]`` are the input positions used by any example of
    the batch, and ``ent_e[rptr[u]:rptr[u+1]]`` / ``ent_x[...]`` the examples
    and values that use position ``rows[u]``.  Each weight row is then read
    (and updated) once per batch, not once per example.  Returns ``nu``.
    """
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


@jit
def pop_forward0(rows, nu, rptr, ent_e, ent_x, W0, Z, mb, scale, b):
    """First layer of all K networks: ``Z[e] = s * (x_e W0) + b`` over the batch's non-zero inputs.

    ``W0`` is ``(n_in, H*K)``: one wide matrix for all networks (the
    ``(n_in, H, K)`` weights seen flat, so the inner loop is one long
    contiguous run whatever K), whose rows are read once per batch (see
    :func:`pop_gather`); ``Z`` is ``(m, H*K)``.  ``scale`` (per network) is the
    lazy-decay scale and ``b`` the ``(H*K,)`` biases.
    """
    n = Z.shape[1]
    K = scale.shape[0]
    for e in range(mb):
        for j in range(n):
            Z[e, j] = 0.0
    for u in range(nu):
        i = rows[u]
        for q in range(rptr[u], rptr[u + 1]):
            e = ent_e[q]
            x = ent_x[q]
            for j in range(n):
                Z[e, j] += x * W0[i, j]
    for e in range(mb):
        for j0 in range(0, n, K):
            for k in range(K):
                Z[e, j0 + k] = scale[k] * Z[e, j0 + k] + b[j0 + k]


@jit
def pop_update0(rows, nu, rptr, ent_e, ent_x, target, d):
    """``target[i] += sum_e x_ei d[e]`` over the batch's non-zero inputs (the first layer's gradient step).

    ``target`` is ``W0`` (or, with momentum, its velocity) seen flat as
    ``(n_in, H*K)``; ``d`` ``(m, H*K)`` holds the first layer's deltas already
    multiplied by each network's step coefficient.
    """
    n = d.shape[1]
    for u in range(nu):
        i = rows[u]
        for q in range(rptr[u], rptr[u + 1]):
            e = ent_e[q]
            x = ent_x[q]
            for j in range(n):
                target[i, j] += x * d[e, j]


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


@jit
def pop_softmax(Z, mb):
    """Softmax over axis 1 of ``Z (m, J, K)`` for each example and network, in place."""
    J, K = Z.shape[1], Z.shape[2]
    for e in range(mb):
        for k in range(K):
            mx = Z[e, 0, k]
            for j in range(1, J):
                mx = max(mx, Z[e, j, k])
            tot = 0.0
            for j in range(J):
                Z[e, j, k] = math.exp(Z[e, j, k] - mx)
                tot += Z[e, j, k]
            for j in range(J):
                Z[e, j, k] /= tot


@jit
def pop_step(A, D, Ws, bs, Vs, Vbs, T, perm, s0, mb, kind, acts, scales, etas, c2s, mus, active, momentum,
             coef):
    """Back-propagate the batch through all K networks and update them in place.

    Output delta (as :func:`output_delta`), hidden deltas with the pre-update
    weights, then per network ``k`` the SGD rule of its own ``eta_k``,
    ``c2_k = lmbda_k/n`` and momentum ``mu_k`` (Nielsen's
    ``v -> mu v - eta (dC/dw + c2 w)``, ``w -> w + v``; with no momentum the
    decay is lazy, through ``scales``).  Networks with ``active[k] == 0`` are
    frozen: nothing of theirs changes.  The first layer's deltas are left in
    ``D[0]`` multiplied by each network's step coefficient, for
    :func:`pop_update0` to add to the batch's non-zero input rows of ``Ws[0]``
    (with momentum, this function runs the decay pass over its velocity).
    """
    L = len(Ws)
    K = etas.shape[0]
    inv_m = 1.0 / mb
    # ---- output delta
    aL = A[L - 1]
    dL = D[L - 1]
    J = aL.shape[1]
    for e in range(mb):
        r = perm[s0 + e]
        for j in range(J):
            t = T[r, j]
            for k in range(K):
                a = aL[e, j, k]
                if kind == FUSED:
                    dL[e, j, k] = (a - t) * inv_m
                elif kind == HINGE:
                    dL[e, j, k] = -t * inv_m if t * a < 1 else 0.0
                else:
                    dL[e, j, k] = (a - t) * inv_m * derivative(a, acts[L - 1])
    # ---- hidden deltas, with the pre-update weights
    for l in range(L - 1, 0, -1):
        W = Ws[l]
        dn = D[l]
        dp = D[l - 1]
        u = A[l - 1]
        I, J = W.shape[0], W.shape[1]
        for e in range(mb):
            for i in range(I):
                for k in range(K):
                    dp[e, i, k] = 0.0
                for j in range(J):
                    for k in range(K):
                        dp[e, i, k] += W[i, j, k] * dn[e, j, k]
                for k in range(K):
                    dp[e, i, k] *= scales[l, k] * derivative(u[e, i, k], acts[l - 1])
    # ---- per-network coefficients of the gradient step
    for l in range(L):
        W = Ws[l]
        d = D[l]
        b = bs[l]
        I, J = W.shape[0], W.shape[1]
        if momentum:
            V = Vs[l]
            Vb = Vbs[l]
            for k in range(K):
                coef[k] = -etas[k] * active[k]
            if l > 0:  # the first layer's decay pass runs over all rows below
                for i in range(I):
                    for j in range(J):
                        for k in range(K):
                            V[i, j, k] = mus[k] * V[i, j, k] - etas[k] * c2s[k] * W[i, j, k]
        else:
            for k in range(K):
                if active[k] != 0.0:
                    s = scales[l, k] * (1.0 - etas[k] * c2s[k])
                    if abs(s) < _MIN_SCALE:
                        for i in range(I):
                            for j in range(J):
                                W[i, j, k] *= s
                        s = 1.0
                    scales[l, k] = s
                    coef[k] = -etas[k] / s
                else:
                    coef[k] = 0.0
        # bias: b -> b - eta sum_e delta (or through its velocity)
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
        if l > 0:
            target = Vs[l] if momentum else W
            u = A[l - 1]
            for e in range(mb):
                for i in range(I):
                    for j in range(J):
                        for k in range(K):
                            target[i, j, k] += coef[k] * u[e, i, k] * d[e, j, k]
            if momentum:
                V = Vs[l]
                for i in range(I):
                    for j in range(J):
                        for k in range(K):
                            W[i, j, k] += V[i, j, k]
        else:
            # scale the first layer's deltas by coef_k (pop_update0 adds x_i * delta to the used rows)
            for e in range(mb):
                for j in range(J):
                    for k in range(K):
                        d[e, j, k] *= coef[k]
            if momentum:
                V = Vs[0]
                for i in range(I):
                    for j in range(J):
                        for k in range(K):
                            V[i, j, k] = mus[k] * V[i, j, k] - etas[k] * c2s[k] * W[i, j, k]
    # (the first layer's step itself is pop_update0, run next)


@jit
def pop_momentum0(W, V):
    """``W += V``: the first layer's momentum step, after pop_update0 added the gradient to ``V``."""
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            for k in range(W.shape[2]):
                W[i, j, k] += V[i, j, k]


@jit
def pop_fold_scales(Ws, scales):
    """Write the true weights back (``W[..., k] *= s_k``) and reset every scale to 1."""
    for l in range(len(Ws)):
        W = Ws[l]
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                for k in range(W.shape[2]):
                    W[i, j, k] *= scales[l, k]
        for k in range(W.shape[2]):
            scales[l, k] = 1.0
