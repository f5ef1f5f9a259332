"""The one-network kernels and their runner: whole epochs of mini-batch SGD in compiled code.

Why a compiled step at all?  With the book's mini-batches of 10, each batch is
a handful of tiny matrix products; NumPy spends more time dispatching them than
multiplying.  Here one compiled call runs a whole epoch, computing the same
mini-batch SGD as ``Sequential.backprop`` + ``Optimizer.step`` (the same
shuffled batches, the same equations of :mod:`netlearn.engine.step`, float32
rounding aside) with three tricks:

1. **Input sparsity** (:mod:`netlearn.engine.inputs`): the first layer reads
   and updates only the weight rows of an example's non-zero inputs (dense
   inputs go through the same index, every entry listed: one code path).
2. **Lazy weight decay** (:func:`netlearn.engine.step.lazy_decay`): each layer
   keeps ``W = s V`` with a scalar ``s``, so L2 decay is one multiplication per
   layer and batch, not a pass over ``W``.  ``W`` is written back (``W = s V``,
   ``s = 1``) before a kernel returns, so outside a kernel the layer's arrays
   always hold the true weights.
3. **Fused updates, no allocation.**  Gradients are never stored: once the
   deltas of a batch are known (computed with the pre-update weights, as SGD
   requires), each example's outer product ``x delta^T`` is added straight
   into ``W``.  All buffers are allocated once per ``fit``; layer widths are
   padded to a multiple of 16 so the inner loops fill whole SIMD registers.

Two kernels share that math.  :func:`train` goes example by example (batches
under ``ROWS_MIN_BATCH``, 32).  :func:`train_rows` files each batch's non-zero
inputs by input position, so each used row of the first layer's weights is read
and written once per batch (its gradient summed in registers) instead of once
per example; and the batch can be shared by several threads (``threads``, or
``NETLEARN_THREADS``; by default up to ``MAX_AUTO_THREADS`` of the available
cores): each thread takes a share of the examples through the forward and
backward pass, then, after a barrier, updates its own rows of every weight
matrix, with the same numbers whatever the number of threads.

Kernels take named bundles (:class:`~netlearn.engine.inputs.Inputs`,
:class:`Layers`, :class:`Scratch`, :class:`Filed`, :class:`Rule`), typed by
Numba as named tuples.  :class:`CompiledEpochs` builds them once per ``fit``.
"""
from __future__ import annotations

import mmap
import threading
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from ..backend import namespace
from ..layers.dense import Dense
from . import background
from .codes import B, pad_width
from .compiler import compile_with_notice, helper, inline, jit
from .inputs import PREFETCH, Inputs, prefetch_example, sparse_rows
from .intrinsics import (PANEL, as_dtype_of, small_code, store_index, vaxpy, vaxpy4, vdot, vpanel_pairs,
                         vrows)
from .step import (activate_row, bias_step, decay_rows, derivative, output_deltas, scale_rows,
                   times_derivative)
from .support import EngineUnavailable, describe, kernel_key, resolve_threads, row_by_row, sgd_coefficients
from .threads import atomic_store, barrier, run_parallel


class Layers(NamedTuple):
    """One network's Dense layers as the kernels take them.

    ``Ws``/``bs``: each layer's weights ``(n_in, n_out)`` and biases, padded
    with zero columns (and, after the first layer, zero rows) to a multiple of
    16 outputs; ``widths`` the real ``n_out``.  Padded activations are kept at
    0, so padded weights stay 0.  ``WTs[l]`` (``l >= 1``) the transpose of
    ``Ws[l]`` (row-by-row kernel only).  ``acts`` the activation codes,
    ``kind`` the output delta's kind.
    """

    Ws: tuple
    WTs: tuple
    bs: tuple
    widths: np.ndarray
    acts: np.ndarray
    kind: int


class Scratch(NamedTuple):
    """Per-call buffers: ``A[l]``/``D[l]`` ``(m, padded n_out)`` each layer's activations and deltas of a batch;
    ``scales`` ``(threads, L)`` each thread's lazy-decay scales (``W = s V``) and ``sw`` the same in the weights'
    dtype (row-by-row kernel); ``done[0]`` the examples of the call trained so far (read by progress bars while
    the kernel runs)."""

    A: tuple
    D: tuple
    scales: np.ndarray
    sw: np.ndarray
    done: np.ndarray


class Filed(NamedTuple):
    """The row-by-row kernel's filing of a batch's non-zero inputs by input position (see :func:`train_rows`;
    ``flat`` is ``ent`` seen flat, made once in Python)."""

    used: np.ndarray
    ent: np.ndarray
    flat: np.ndarray
    merged: np.ndarray
    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    split: np.ndarray
    sync: np.ndarray


class Rule(NamedTuple):
    """The SGD rule of an epoch: learning rate ``eta``, L2 ``c2 = lmbda/n``, L1 ``c1 = l1/n``."""

    eta: float
    c2: float
    c1: float


@inline
def forward_dense(a, e, u, W, I, s, b):
    """``a[e] = f(s (u[e, :I] V) + b)`` for a later (dense-input) layer, four rows of ``V`` at a time."""
    J = W.shape[1]
    ze = e * J
    for j in range(J):
        a[e, j] = 0.0
    i = 0
    while i + 4 <= I:
        for j0 in range(0, J, B):
            vaxpy4(a, ze + j0, W, i * J + j0, (i + 1) * J + j0, (i + 2) * J + j0, (i + 3) * J + j0,
                   u[e, i], u[e, i + 1], u[e, i + 2], u[e, i + 3])
        i += 4
    while i < I:
        for j0 in range(0, J, B):
            vaxpy(a, ze + j0, u[e, i], W, i * J + j0)
        i += 1
    for j in range(J):
        a[e, j] = s * a[e, j] + b[j]


@jit
def train(inp, net, buf, rule, perm, start, stop, m):
    """Mini-batch SGD over the batches ``perm[s:s+m]`` for ``s`` in ``range(start, stop, m)``, example by example.

    The rule is the book's ``W -> W - eta (dC/dW + c2 W + c1 sgn W)``,
    ``b -> b - eta dC/db``, the decay through :func:`~netlearn.engine.step.decay_rows`.
    Every scalar that meets the weights is first cast to their dtype (through
    ``one``): a float64 factor would turn float32 loops into float64 ones.
    """
    indptr, cols, vals, T = inp
    Ws, bs, widths, acts, kind = net.Ws, net.bs, net.widths, net.acts, net.kind
    A, D = buf.A, buf.D
    scales = buf.scales[0]
    eta, c2, c1 = rule
    L = len(Ws)
    n = perm.shape[0]
    W0 = Ws[0]
    for l in range(L):
        scales[l] = 1.0
    neg_eta = as_dtype_of(W0, -eta)
    for s0 in range(start, stop, m):
        mb = m if m < n - s0 else n - s0
        inv_m = as_dtype_of(W0, 1.0 / mb)
        # ---- forward, layer 0: z = s (x V) + b over the non-zero inputs only
        a0 = A[0]
        s = as_dtype_of(W0, scales[0])
        b = bs[0]
        H = W0.shape[1]
        for e in range(mb):
            r = perm[s0 + e]
            if s0 + e + PREFETCH < n:  # (the next batch's first examples too)
                prefetch_example(inp, perm[s0 + e + PREFETCH])
            ze = e * H
            for j in range(H):
                a0[e, j] = 0.0
            vrows(a0, ze, W0, H, cols, vals, indptr[r], indptr[r + 1])
            for j in range(H):
                a0[e, j] = s * a0[e, j] + b[j]
            activate_row(a0, e, widths[0], acts[0])
        # ---- forward, later layers (dense)
        for l in range(1, L):
            s = as_dtype_of(W0, scales[l])
            for e in range(mb):
                forward_dense(A[l], e, A[l - 1], Ws[l], widths[l - 1], s, bs[l])
                activate_row(A[l], e, widths[l], acts[l])
        # ---- output delta (padded entries stay 0)
        for e in range(mb):
            output_deltas(D[L - 1], e, A[L - 1], T, perm[s0 + e], widths[L - 1], kind, acts[L - 1], inv_m)
        # ---- backward with the pre-update weights: delta_{l-1} = s (delta_l V^T) * f'(a_{l-1})
        for l in range(L - 1, 0, -1):
            W = Ws[l]
            s = as_dtype_of(W0, scales[l])
            dn = D[l]
            dp = D[l - 1]
            u = A[l - 1]
            J = W.shape[1]
            code = acts[l - 1]
            for e in range(mb):
                for i in range(widths[l - 1]):
                    acc = vdot(W, i * J, dn, e * J)
                    for j0 in range(B, J, B):
                        acc += vdot(W, i * J + j0, dn, e * J + j0)
                    dp[e, i] = s * acc * derivative(u[e, i], code)
        # ---- update each layer: decay (lazy unless L1), then W += -eta x delta^T per example
        for l in range(L):
            W = Ws[l]
            d = D[l]
            J = W.shape[1]
            scales[l], coef = decay_rows(W, 0, W.shape[0], scales[l], eta, c2, c1)
            coef = as_dtype_of(W0, coef)
            if l == 0:
                for e in range(mb):
                    r = perm[s0 + e]
                    de = e * J
                    for p in range(indptr[r], indptr[r + 1]):
                        g = coef * vals[p]
                        i = np.intp(cols[p]) * J
                        for j0 in range(0, J, B):
                            vaxpy(W, i + j0, g, d, de + j0)
            else:
                u = A[l - 1]
                for e in range(mb):
                    for i in range(widths[l - 1]):
                        g = coef * u[e, i]
                        for j0 in range(0, J, B):
                            vaxpy(W, i * J + j0, g, d, e * J + j0)
            bias_step(bs[l], d, mb, neg_eta)
        atomic_store(buf.done, 0, s0 + mb - start)
    # ---- write the true weights back: W = s V, s = 1
    for l in range(L):
        if scales[l] != 1.0:
            scale_rows(Ws[l], scales[l])
            scales[l] = 1.0


# ---------------------------------------------------------------------------
# Mini-batches by weight rows: the first layer's update grouped by input
# ---------------------------------------------------------------------------


@inline
def add_rows(W, d, J, rows, nu, pairs, starts, ends, coef):
    """``W[i] += coef * sum(x * d[e] for (x, e) in the pairs of row i)`` for ``i = rows[u]``, ``u < nu``.

    The pairs of row ``rows[u]`` are ``pairs[starts[0, u]:ends[0, u]]`` followed by
    ``pairs[starts[1, u]:ends[1, u]]``, taken as one sequence (:func:`vpanel_pairs`);
    ``pairs[2q]`` is a value and ``pairs[2q+1]`` its example (:func:`store_index`).
    The gradient of one weight row is summed in registers and added to ``W``
    once per batch, not once per example, up to ``PANEL`` blocks of 16
    columns per pass over the pairs.
    """
    j = 0
    while j < J:
        P = (J - j) // B
        P = PANEL if P > PANEL else P  # (no built-in min: each is a compile of its own)
        for u in range(nu):
            vpanel_pairs(P, W, np.intp(rows[u]) * J + j, d, J, j, pairs, starts[0, u], ends[0, u], starts[1, u],
                         ends[1, u], coef)
        j += P * B


@inline
def example_pass(inp, net, buf, r, e, sw, inv_m, used, ent):
    """Forward and backward pass of one example (input row ``r``, batch slot ``e``) with the current weights.

    Leaves its activations in ``A[l][e]``, its deltas ``dC/dz`` in
    ``D[l][e]`` and files each non-zero input ``x_i`` as the pair ``(x_i, e)``
    (``e`` kept as integer bits, :func:`store_index`) in slot ``used[i]`` of
    row ``i`` of ``ent``, counting it in ``used[i]``: the batch filed by input
    position, for the grouped first-layer update, value and example side by
    side so that filing touches one cache line.  ``sw``: the layers' lazy-decay
    scales (``W = s V``) in the weights' dtype.
    """
    indptr, cols, vals, T = inp
    Ws, WTs, bs, widths, acts, kind = net
    A, D = buf.A, buf.D
    L = len(Ws)
    W0 = Ws[0]
    a0 = A[0]
    H = W0.shape[1]
    ze = e * H
    for j in range(H):
        a0[e, j] = 0.0
    p0, p1 = indptr[r], indptr[r + 1]
    vrows(a0, ze, W0, H, cols, vals, p0, p1)
    for p in range(p0, p1):
        c = cols[p]
        k = used[c]
        used[c] = k + 1
        ent[c, 2 * k] = vals[p]
        store_index(ent, np.intp(c) * ent.shape[1] + 2 * k + 1, e)
    s = sw[0]
    b = bs[0]
    for j in range(H):
        a0[e, j] = s * a0[e, j] + b[j]
    activate_row(a0, e, widths[0], acts[0])
    for l in range(1, L):
        W = Ws[l]
        u = A[l - 1]
        a = A[l]
        s = sw[l]
        b = bs[l]
        I, J = widths[l - 1], W.shape[1]
        ze = e * J
        for j in range(J):
            a[e, j] = 0.0
        iu = e * u.shape[1]
        vrows(a, ze, W, J, None, u, iu, iu + I)
        for j in range(J):
            a[e, j] = s * a[e, j] + b[j]
        activate_row(a, e, widths[l], acts[l])
    output_deltas(D[L - 1], e, A[L - 1], T, r, widths[L - 1], kind, acts[L - 1], inv_m)
    # backward with the pre-update weights: delta_{l-1} = s (delta_l V^T) * f'(a_{l-1}),
    # a sum of the rows of V^T (``WTs[l]``, kept beside V) weighted by delta_l
    for l in range(L - 1, 0, -1):
        WT = WTs[l]
        dn = D[l]
        dp = D[l - 1]
        I = WT.shape[1]
        for i in range(I):
            dp[e, i] = 0.0
        idn = e * dn.shape[1]
        vrows(dp, e * I, WT, I, None, dn, idn, idn + widths[l])
        times_derivative(dp, e, A[l - 1], widths[l - 1], sw[l], acts[l - 1])


@helper
def transpose_rows(W, WT, i0, i1):
    """``WT[:, i] = W[i, :]`` for ``i0 <= i < i1``."""
    small_code()
    for i in range(i0, i1):
        for j in range(W.shape[1]):
            WT[j, i] = W[i, j]


@helper
def row_range(l, n_rows, split, tid, nthreads):
    """The rows of layer ``l``'s weights that thread ``tid`` updates (first layer: ``split``, else an even share)."""
    small_code()
    if l == 0:
        return split[tid], split[tid + 1]
    return n_rows * tid // nthreads, n_rows * (tid + 1) // nthreads


@helper
def example_range(indptr, perm, s0, mb, tid, nthreads):
    """Thread ``tid``'s share ``e0:e1`` of the batch ``perm[s0:s0+mb]``: about equal numbers of non-zero inputs.

    Boundary ``k`` is the first example whose preceding examples hold at
    least ``k/nthreads`` of the batch's non-zeros, so the shares of all
    threads tile ``0:mb`` exactly.
    """
    small_code()
    if nthreads == 1:
        return 0, mb
    total = 0
    for e in range(mb):
        r = perm[s0 + e]
        total += indptr[r + 1] - indptr[r]
    lo, hi = total * tid // nthreads, total * (tid + 1) // nthreads
    e0 = 0 if tid == 0 else mb
    e1 = mb
    seen = 0
    for e in range(mb):
        if tid > 0 and e0 == mb and seen >= lo:
            e0 = e
        if tid < nthreads - 1 and seen >= hi:
            e1 = e
            break
        r = perm[s0 + e]
        seen += indptr[r + 1] - indptr[r]
    return e0, (e1 if e1 > e0 else e0)


@inline
def gather_row_pairs(filed, i0, i1, tid, nthreads):
    """List thread ``tid``'s used first-layer rows ``i0:i1`` and where their filed pairs lie; returns ``(nu, pairs)``.

    The pairs of each row, in example order, as one or two runs: with one or
    two threads, where they were filed; with more, the threads' lists of each
    row copied one after the other.  Every row thus sums its terms in the
    same order, whatever the number of threads.
    """
    used, ent = filed.used, filed.ent
    my_rows, my_start, my_end, my_merged = filed.rows[tid], filed.starts[tid], filed.ends[tid], filed.merged[tid]
    nu = 0
    q = 0
    cap = ent.shape[2] // 2
    block = ent.shape[1] * cap  # pairs per thread in ``ent``
    for i in range(i0, i1):
        if nthreads <= 2:
            k0 = used[0, i]
            k1 = used[1, i] if nthreads == 2 else 0
            if k0 + k1:
                my_rows[nu] = i
                my_start[0, nu], my_end[0, nu] = i * cap, i * cap + k0
                my_start[1, nu], my_end[1, nu] = block + i * cap, block + i * cap + k1
                nu += 1
            continue
        q0 = q
        for t in range(nthreads):
            src = ent[t, i]
            for c in range(2 * used[t, i]):
                my_merged[2 * q + c] = src[c]
            q += used[t, i]
        if q > q0:
            my_rows[nu] = i
            my_start[0, nu], my_end[0, nu] = q0, q
            my_start[1, nu], my_end[1, nu] = 0, 0
            nu += 1
    return nu, filed.flat if nthreads <= 2 else my_merged


@jit
def train_rows(inp, net, buf, filed, rule, perm, start, stop, m, tid, nthreads):
    """:func:`train` with each weight matrix updated row by row, run by thread ``tid`` of ``nthreads``.

    The same mini-batch SGD, in two phases per batch:

    1. each thread takes its share of the batch's examples through
       :func:`example_pass` (forward, output delta, backward), which also
       files each of their non-zero inputs under its input position;
    2. after a :func:`barrier`, each thread updates its own rows of every
       weight matrix (first layer: input positions ``split[tid]`` to
       ``split[tid+1]``), summing each row's gradient over the batch in
       registers (:func:`add_rows`: one pass over each used row of ``W`` per
       batch instead of one per example), and one thread per layer its biases.

    A second barrier ends the batch.  Every row sums its batch's terms in
    example order, whichever thread filed them, so the result does not depend
    on ``nthreads`` (tested bit for bit).  ``filed``: ``used`` ``(nthreads,
    n_in)`` and ``ent`` ``(nthreads, n_in, 2c)`` each thread's filed inputs,
    pairs of value and example (``c`` at least the batch size: shares follow
    the examples' non-zero counts, :func:`example_range`); per thread,
    ``merged`` ``(nthreads, 2 n_in c)`` (with more than two threads) its rows'
    pairs one row after the other, ``rows`` ``(nthreads, n_in)`` its used rows
    and ``starts``/``ends`` ``(nthreads, 2, n_in)`` the one or two runs of
    pairs of each (:func:`gather_row_pairs`); ``split`` the first layer's rows
    of each thread; ``sync`` the barrier's counters.  With ``nthreads == 1``
    no barrier runs.
    """
    indptr = inp.indptr
    Ws, WTs, bs, widths = net.Ws, net.WTs, net.bs, net.widths
    A, D = buf.A, buf.D
    eta, c2, c1 = rule
    split, sync = filed.split, filed.sync
    L = len(Ws)
    n = perm.shape[0]
    n_in = Ws[0].shape[0]
    W0 = Ws[0]
    sw = buf.sw[tid]  # the scales in the weights' dtype
    sc = buf.scales[tid]
    for l in range(L):
        sc[l] = 1.0
    neg_eta = as_dtype_of(W0, -eta)
    my_used, my_ent = filed.used[tid], filed.ent[tid]
    for l in range(1, L):
        i0, i1 = row_range(l, Ws[l].shape[0], split, tid, nthreads)
        transpose_rows(Ws[l], WTs[l], i0, i1)
    if nthreads > 1:
        barrier(sync, nthreads)
    for s0 in range(start, stop, m):
        mb = m if m < n - s0 else n - s0
        inv_m = as_dtype_of(W0, 1.0 / mb)
        for l in range(L):
            sw[l] = sc[l]
        for i in range(n_in):
            my_used[i] = 0
        e0, e1 = example_range(indptr, perm, s0, mb, tid, nthreads)
        for e in range(e0, e1):
            if e + PREFETCH < e1:
                prefetch_example(inp, perm[s0 + e + PREFETCH])
            example_pass(inp, net, buf, perm[s0 + e], e, sw, inv_m, my_used, my_ent)
        if nthreads > 1:
            barrier(sync, nthreads)
        for l in range(L):
            W = Ws[l]
            d = D[l]
            J = W.shape[1]
            i0, i1 = row_range(l, W.shape[0], split, tid, nthreads)
            sc[l], coef = decay_rows(W, i0, i1, sc[l], eta, c2, c1)
            coef = as_dtype_of(W0, coef)
            if l == 0:
                nu, pairs = gather_row_pairs(filed, i0, i1, tid, nthreads)
                add_rows(W, d, J, filed.rows[tid], nu, pairs, filed.starts[tid], filed.ends[tid], coef)
            else:
                u = A[l - 1]
                i1 = i1 if i1 < widths[l - 1] else widths[l - 1]
                for e in range(mb):
                    for i in range(i0, i1):
                        g = coef * u[e, i]
                        for j0 in range(0, J, B):
                            vaxpy(W, i * J + j0, g, d, e * J + j0)
                transpose_rows(W, WTs[l], i0, i1)
            if l % nthreads == tid:
                bias_step(bs[l], d, mb, neg_eta)
        if tid == 0:
            atomic_store(buf.done, 0, s0 + mb - start)
        if nthreads > 1:
            barrier(sync, nthreads)
    # write this thread's rows of the true weights back: W = s V, s = 1
    for l in range(L):
        if sc[l] != 1.0:
            W = Ws[l]
            i0, i1 = row_range(l, W.shape[0], split, tid, nthreads)
            for i in range(i0, i1):
                for j in range(W.shape[1]):
                    W[i, j] *= sc[l]
            sc[l] = 1.0


# ---------------------------------------------------------------------------
# Set-up and the runner
# ---------------------------------------------------------------------------


def huge_zeros(specs: Sequence[tuple[tuple[int, ...], Any]]) -> list[np.ndarray]:
    """Zeroed C-contiguous arrays of the given ``(shape, dtype)``, carved from one block of memory.

    On Linux the block is aligned to 2 MB and marked for transparent huge
    pages (``madvise(MADV_HUGEPAGE)``); elsewhere it is ordinary memory.
    Each array starts on a 64-byte cache line.
    """
    huge = 2 << 20
    sizes = [int(np.prod(shape)) * np.dtype(dt).itemsize for shape, dt in specs]
    offsets, total = [], 0
    for size in sizes:
        offsets.append(total)
        total += -(-size // 64) * 64
    block = mmap.mmap(-1, total + huge)  # anonymous: zero-filled, pages committed when touched
    if hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            block.madvise(mmap.MADV_HUGEPAGE)
        except OSError:  # pragma: no cover - a kernel without transparent huge pages
            pass
    raw = np.frombuffer(block, np.uint8)
    start = -raw.ctypes.data % huge
    return [raw[start + o:start + o + n].view(dt).reshape(shape)
            for (shape, dt), o, n in zip(specs, offsets, sizes)]


#: Progress (examples done) is read this often while an epoch runs with progress hooks.
POLL_SECONDS = 0.1


class CompiledEpochs:
    """Runs whole epochs of mini-batch SGD through the compiled kernels.

    Built once per ``fit``: it checks the network and optimizer (raising
    :class:`EngineUnavailable` with the reason if they are not supported),
    indexes the training inputs' non-zeros and allocates the per-layer buffers.
    ``epoch(perm, hooks)`` then trains one epoch over the batches
    ``perm[0:m], perm[m:2m], ...`` -- the same batches as the NumPy path --
    in one kernel call, whether or not anything watches its progress.
    """

    def __init__(self, net: Any, opt: Any, X: np.ndarray, T: np.ndarray, batch_size: int,
                 threads: int | None = None) -> None:
        self.net, self.opt = net, opt
        if namespace(X) is not np:
            raise EngineUnavailable("the compiled kernels take NumPy arrays only")
        dense, acts, kind = describe(net)
        sgd_coefficients(opt)
        if X.dtype != dense[0].W.dtype or T.dtype != X.dtype:
            raise EngineUnavailable("the data and the network have different dtypes")
        self.X, self.m = X, batch_size
        m = min(batch_size, X.shape[0])
        n_in = dense[0].n_in
        # Row-by-row path (batches of ROWS_MIN_BATCH or more) and its threads.
        self.threads = resolve_threads(threads, m)
        cap = m  # a thread's share of a batch follows its non-zeros, so it may be most of it
        self.rows_mode = row_by_row(m, self.threads, n_in, X.dtype.itemsize)
        #: Which kernel and argument types (see :func:`~netlearn.engine.support.kernel_key`).
        self.key = kernel_key(self.rows_mode, len(dense), X.dtype)
        if not self.rows_mode:
            self.threads, cap = 1, 1
        t = self.threads
        widths = np.array([d.n_out for d in dense], np.int64)
        padded = [pad_width(w) for w in widths]
        rows = [n_in] + padded[:-1]
        L = len(dense)
        dt = X.dtype
        # The buffers that the kernels visit at random (weight rows, filed inputs, targets) share
        # one block of memory backed by 2 MB pages where the system allows: fewer TLB misses.
        bufs = huge_zeros([((r, c), dt) for r, c in zip(rows, padded)]        # Wp
                          + [((m, c), dt) for c in padded]                     # A
                          + [((m, c), dt) for c in padded]                     # D
                          + [((W_c, W_r), dt) for W_r, W_c in zip(rows[1:], padded[1:])]  # WT
                          + [((t, n_in, 2 * cap), dt), ((t, n_in), np.int64), (T.shape, dt)]
                          + [((t, 2 * n_in * cap if t > 2 else 1), dt)])
        Wp, A, D = tuple(bufs[:L]), tuple(bufs[L:2 * L]), tuple(bufs[2 * L:3 * L])
        WT = (np.zeros((1, 1), dt),) + tuple(bufs[3 * L:4 * L - 1])
        ent, used, Tp, merged = bufs[4 * L - 1:]
        Tp[...] = T
        self.T = Tp
        bp = tuple(np.zeros(c, dt) for c in padded)
        self.layers = Layers(Wp, WT, bp, widths, np.asarray(acts, np.int64), int(kind))
        self.scratch = Scratch(A, D, np.ones((t, L), np.float64), np.ones((t, L), dt), np.zeros(16, np.int64))
        self.filed = Filed(used, ent, ent.reshape(-1), merged, np.zeros((t, n_in), np.int64),
                           np.zeros((t, 2, n_in), np.int64), np.zeros((t, 2, n_in), np.int64),
                           np.zeros(t + 1, np.int64), np.zeros(16, np.int64))
        self.reindex()

    def compile(self, announce: bool = False) -> None:
        """Compile (or load from the cache) the kernel for these argument types by running no batches.

        With ``announce``, a compile that takes a while is reported on standard error.  Where a child
        process is compiling this kernel ahead (:mod:`netlearn.engine.background`), it waits for it.
        """
        none = np.empty(0, np.intp)
        what = "training kernel" + (" (row by row)" if self.rows_mode else "")

        def build() -> None:
            background.wait(self.key)  # (a child compiling it ahead: then it loads from the cache)
            self._call(none, 0, 0, Rule(0.0, 0.0, 0.0))

        compile_with_notice(build, what, announce)

    def reindex(self) -> None:
        """Index the non-zeros of the training inputs again (after a callback rewrote them in place).

        Dense inputs are indexed too (every entry): one first-layer path in the kernels.
        """
        indptr, cols, vals = sparse_rows(self.X, force=True)
        self.inputs = Inputs(indptr, cols, vals, self.T)
        self._split()

    def _split(self) -> None:
        """Share the first layer's rows between the threads, by how often each input is non-zero."""
        n_in, t = self.layers.Ws[0].shape[0], self.threads
        inp = self.inputs
        if t > 1:
            sample = inp.cols[:inp.indptr[-1]:7]  # (a sample is as good for balancing, and quicker)
            load = np.cumsum(np.bincount(sample, minlength=n_in))
            inner = np.searchsorted(load, load[-1] * np.arange(1, t) / t)
        else:
            inner = n_in * np.arange(1, t) // t
        self.filed.split[...] = np.concatenate([[0], inner, [n_in]])

    def _call(self, perm: np.ndarray, start: int, stop: int, rule: Rule) -> None:
        """The batches ``perm[start:stop]`` through the kernel (on ``self.threads`` threads, this one thread 0)."""
        if not self.rows_mode:
            train(self.inputs, self.layers, self.scratch, rule, perm, start, stop, self.m)
            return
        t = self.threads
        run_parallel(lambda tid: train_rows(self.inputs, self.layers, self.scratch, self.filed, rule, perm,
                                            start, stop, self.m, tid, t), t)

    def epoch(self, perm: np.ndarray, hooks: Sequence[Callable[[int], None]] = ()) -> None:
        """Train one epoch over ``perm`` in one kernel call.

        With ``hooks`` (progress bars) the call runs on a worker thread while
        this one reports the examples done every ``POLL_SECONDS``: watching
        never splits the epoch, so it cannot change the numbers.
        """
        rule = Rule(*sgd_coefficients(self.opt))
        dense = [mod for mod in self.net.modules if isinstance(mod, Dense)]  # re-read: callbacks may swap arrays
        for d, Wp, bp in zip(dense, self.layers.Ws, self.layers.bs):
            Wp[:d.n_in, :d.n_out] = d.W
            bp[:d.n_out] = d.b
        n = perm.shape[0]
        try:
            if not hooks:
                self._call(perm, 0, n, rule)
            else:
                self._watched(perm, n, rule, hooks)
        finally:
            for d, Wp, bp in zip(dense, self.layers.Ws, self.layers.bs):
                d.W[...] = Wp[:d.n_in, :d.n_out]
                d.b[...] = bp[:d.n_out]

    def _watched(self, perm: np.ndarray, n: int, rule: Rule, hooks: Sequence[Callable[[int], None]]) -> None:
        done = self.scratch.done
        done[0] = 0
        failed: list[BaseException] = []

        def run() -> None:
            try:
                self._call(perm, 0, n, rule)
            except BaseException as exc:  # re-raised on the calling thread
                failed.append(exc)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        reported = 0
        try:
            while worker.is_alive():
                worker.join(POLL_SECONDS)
                now = int(done[0])
                if now > reported:
                    for hook in hooks:
                        hook(now - reported)
                    reported = now
        finally:
            worker.join()  # (an interrupt waits for the kernel: it cannot be stopped half way)
        if failed:
            raise failed[0]
        if n > reported:
            for hook in hooks:
                hook(n - reported)
