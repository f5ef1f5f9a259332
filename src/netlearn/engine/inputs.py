"""The training inputs as the kernels read them: an index of each example's non-zeros, and prefetching.

MNIST pixels are mostly zero (about 81%).  The first layer's forward pass
``z = x W + b`` and its weight gradient ``dC/dW = x^T delta`` only need the
rows ``i`` of ``W`` where ``x_i != 0``, so the inputs are indexed once per
``fit`` in a CSR-like form (:func:`sparse_rows`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .codes import SPARSE_DENSITY, B
from .compiler import inline, jit
from .intrinsics import prefetch, vcompress

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
def csr_fill32(X, indptr, cols, vals):
    """:func:`csr_fill` for float32 ``X``, sixteen inputs at a time with :func:`vcompress`.

    About three times faster on MNIST.  The last ``n_in % 16`` inputs of a row
    go one at a time as in :func:`csr_fill`.  ``cols``/``vals`` need ``B``
    spare slots at the end.
    """
    N = X.shape[1]
    N16 = N - N % B
    for r in range(X.shape[0]):
        p = indptr[r]
        for i in range(0, N16, B):
            p += vcompress(X, r * N + i, vals, cols, p, i)
        for i in range(N16, N):
            x = X[r, i]
            cols[p] = i
            vals[p] = x
            p += x != 0



#: Examples ahead whose inputs and targets are prefetched.
PREFETCH = 2


class Inputs(NamedTuple):
    """The training set as the one-network kernels take it (a bundle, typed by Numba as a named tuple).

    ``indptr``/``cols``/``vals``: every example's non-zero inputs (:func:`sparse_rows`; dense inputs too,
    so that the kernels have one first-layer path); ``T`` the targets ``(n, padded n_out)``.
    """

    indptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    T: np.ndarray


@inline
def prefetch_example(inp, r):
    """Start loading example ``r``'s inputs and targets into the cache (rows are visited in random order,
    so the hardware cannot guess them)."""
    p0, p1 = inp.indptr[r], inp.indptr[r + 1]
    for p in range(p0, p1, 32):
        prefetch(inp.cols, p)
    for p in range(p0, p1, 16):
        prefetch(inp.vals, p)
    prefetch(inp.T, r * inp.T.shape[1])


def row_counts(X: np.ndarray) -> np.ndarray:
    """The number of non-zeros in each row of ``X`` (NaN counts), a block of rows at a time.

    NumPy, not a kernel: about 0.04 s on MNIST's training set, once per
    ``fit``, against about 0.15 s to compile a loop for it.  Blocks of about a
    million entries keep the temporary ``X != 0`` small.
    """
    n = X.shape[0]
    step = max(1, (1 << 20) // max(1, X.shape[1]))
    counts = np.empty(n, np.int64)
    for r0 in range(0, n, step):
        counts[r0:r0 + step] = np.count_nonzero(X[r0:r0 + step], axis=1)
    return counts


def sparse_rows(X: np.ndarray, force: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The non-zeros of ``X`` row by row, CSR-style ``(indptr, cols, vals)``, or None if ``X`` is dense.

    Row ``r``'s non-zeros are ``vals[indptr[r]:indptr[r+1]]`` at positions
    ``cols[...]``.  "Dense" means more than half non-zero, unless ``force``.
    ``cols`` are ``uint16`` when the feature count allows (MNIST: 2 bytes per
    non-zero instead of 8), ``vals`` keep ``X``'s dtype.  On MNIST's 50,000
    training images this is about 45 MB beside the 157 MB of ``X``.
    """
    n = X.shape[0]
    counts = row_counts(X)
    nnz = int(counts.sum())
    if nnz > SPARSE_DENSITY * X.size and not force:
        return None
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    # Spare slots at the end: csr_fill writes whole 16-wide vectors, advancing only past non-zeros.
    spare = B
    cols = np.empty(nnz + spare, np.uint16 if X.shape[1] <= 65536 else np.int32)
    vals = np.empty(nnz + spare, X.dtype)
    (csr_fill32 if X.dtype == np.float32 else csr_fill)(X, indptr, cols, vals)
    return indptr, cols, vals
