"""A compiled (Numba) training epoch for the common case, and the test that says when it applies.

Why a compiled step at all?  With the book's mini-batches of 10, each batch is
a handful of tiny matrix products; NumPy spends more time dispatching them than
multiplying.  Here one compiled call runs many mini-batches, computing the
same mini-batch SGD as ``Sequential.backprop`` + ``Optimizer.step`` (the same
shuffled batches, the same equations, float32 rounding aside) with three
tricks:

1. **Input sparsity.**  MNIST pixels are mostly zero (about 81%).  The first
   layer's forward pass ``z = x W + b`` and its weight gradient
   ``dC/dW = x^T delta`` only need the rows ``i`` of ``W`` where ``x_i != 0``,
   so the inputs are indexed once per ``fit`` in a CSR-like form (for each
   example: the positions and values of its non-zero inputs).
2. **Lazy weight decay.**  L2 in the book's form multiplies every weight by
   ``(1 - eta lmbda/n)`` at every step, a full pass over ``W`` even when the
   gradient touches few rows.  Instead each layer keeps ``W = s V`` with a
   scalar ``s``: decay is ``s -> s (1 - eta lmbda/n)`` and the gradient step is
   ``V -> V - (eta/s) dC/dW``, which gives exactly
   ``W -> (1 - eta lmbda/n) W - eta dC/dW``.  ``W`` is written back
   (``W = s V``, ``s = 1``) before the kernel returns, so outside the kernel the
   layer's arrays always hold the true weights.
3. **Fused updates, no allocation.**  Gradients are never stored: once the
   deltas of a batch are known (computed with the pre-update weights, as SGD
   requires), each example's outer product ``x delta^T`` is added straight
   into ``W``.  All buffers are allocated once per ``fit``; layer widths are
   padded to a multiple of 16 so the inner loops fill whole SIMD registers.

:class:`CompiledEpochs` (built by ``training.choose_engine``) checks the
network (:func:`describe`) and optimizer (:func:`sgd_coefficients`) and raises
:class:`EngineUnavailable` with the reason when the compiled path does not
apply (another module type, another optimizer link, a cost paired with an
unusual output...); the training loop then uses the NumPy path.

Mini-batches of ``ROWS_MIN_BATCH`` (32) or more go through a second kernel,
``_jit.train_rows``: each batch's non-zero inputs are filed by input position,
so each used row of the first layer's weights is read and written once per
batch (its gradient summed in registers) instead of once per example; and the
batch can be shared by several threads (``threads``, or ``NETLEARN_THREADS``;
by default up to ``MAX_AUTO_THREADS`` of the available cores): each thread
takes a share of the examples through the forward and backward pass, then,
after a barrier, updates its own rows of every weight matrix.  The threads are
plain Python threads running the compiled code without the GIL, started for
each call; no process-wide setting (Numba or BLAS threads) changes.

Numba is imported lazily (``import netlearn`` stays fast) and kernels are
compiled on first use and cached on disk (``cache=True``).
"""
from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable, Sequence

import numpy as np

# Activation codes understood by the kernels.
IDENTITY, SIGMOID, TANH, RELU, SOFTMAX = 0, 1, 2, 3, 4
ACTIVATION_CODES = {"identity": IDENTITY, "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU, "softmax": SOFTMAX}

# How the output delta dC/dz is formed.
FUSED = 0      # (a - y)/m: cross-entropy+sigmoid, log-likelihood+softmax, quadratic+identity
HINGE = 1      # -y/m where y a < 1, else 0 (hinge with a linear output)
CHAINED = 2    # quadratic cost with an element-wise output f: (a - y) f'(a) / m

#: Inputs with fewer than this fraction of non-zeros use the sparse first layer.
SPARSE_DENSITY = 0.5

#: Below this the lazy decay scale ``s`` is folded back into the weights.
_MIN_SCALE = 1e-4

#: Mini-batches of at least this many examples update the weights row by row
#: (``_jit.train_rows``, threads allowed); smaller ones example by example
#: (``_jit.train``), which is faster there.
ROWS_MIN_BATCH = 32

#: The row-by-row path files each batch's non-zero inputs by input position;
#: beyond this many bytes of such buffers the batch goes example by example.
ROWS_MAX_BYTES = 64 << 20

#: Threads used by default: at most this many, and at least 25 examples each.
MAX_AUTO_THREADS = 4


class EngineUnavailable(ValueError):
    """The compiled engine cannot train this network/optimizer (the message says why)."""


def numba_available() -> bool:
    """Can Numba be imported here?"""
    try:
        import numba  # noqa: F401
    except Exception:  # pragma: no cover - numba is a core dependency
        return False
    return True


# ---------------------------------------------------------------------------
# Deciding whether the compiled path applies
# ---------------------------------------------------------------------------
def describe(net: Any) -> tuple[list[Any], list[int], int]:
    """``(dense_layers, activation_codes, delta_kind)`` for a supported network, else EngineUnavailable.

    Supported: ``Sequential`` stacks of exactly ``Dense, activation, Dense,
    activation, ...`` with element-wise activations (sigmoid, tanh, relu,
    identity), ending in the cost's natural output (cross-entropy/sigmoid,
    log-likelihood/softmax, quadratic/identity, hinge/identity) or the quadratic
    cost with any element-wise output (the book's quadratic/sigmoid).
    """
    from . import costs
    from .layers import activations
    from .layers.dense import Dense
    from .network import Sequential

    if type(net).backprop is not Sequential.backprop:
        raise EngineUnavailable("the network class overrides backprop()")
    mods = net.modules
    if len(mods) % 2:
        raise EngineUnavailable("the modules do not alternate Dense, activation")
    dense, codes = [], []
    for i in range(0, len(mods), 2):
        d, a = mods[i], mods[i + 1]
        if type(d) is not Dense:
            raise EngineUnavailable(f"module {i} is {type(d).__name__}, not Dense")
        if type(a) not in (activations.Sigmoid, activations.Tanh, activations.ReLU, activations.Identity,
                           activations.Softmax):
            raise EngineUnavailable(f"module {i + 1} is {type(a).__name__}, not an element-wise activation")
        dense.append(d)
        codes.append(ACTIVATION_CODES[a.name])
    if SOFTMAX in codes[:-1]:
        raise EngineUnavailable("softmax is only supported as the output activation")
    cost = net.cost
    if type(cost) not in (costs.CrossEntropyCost, costs.LogLikelihoodCost, costs.QuadraticCost, costs.HingeCost):
        raise EngineUnavailable(f"the cost {type(cost).__name__} is not one of netlearn's own")
    if net.fused:
        kind = HINGE if type(cost) is costs.HingeCost else FUSED
    elif type(cost) is costs.QuadraticCost and codes[-1] != SOFTMAX:
        kind = CHAINED
    else:
        raise EngineUnavailable(f"the {cost.name} cost with a {mods[-1].name} output is not a natural pairing")
    dtype = dense[0].W.dtype
    for d in dense:
        for p in (d.W, d.b):
            if p.dtype != dtype or not p.flags.c_contiguous:
                raise EngineUnavailable("parameters are not C-contiguous arrays of one dtype")
    return dense, codes, kind


def sgd_coefficients(opt: Any) -> tuple[float, float, float]:
    """``(eta, c2, c1)`` if ``opt`` is plain SGD with optional L2 (``c2``) / L1 (``c1``) links, else EngineUnavailable.

    Read once per epoch, so learning-rate schedules that change ``opt.eta``
    between epochs keep working.
    """
    from .optimizers import Optimizer, add_decayed_weights, add_l1, scale_by_learning_rate

    if type(opt) is not Optimizer:
        raise EngineUnavailable(f"the optimizer is a {type(opt).__name__}")
    links = opt.transform.links
    if not links or type(links[-1]) is not scale_by_learning_rate:
        raise EngineUnavailable("the optimizer chain does not end in scale_by_learning_rate")
    c2 = c1 = 0.0
    for link in links[:-1]:
        if type(link) is add_decayed_weights:
            c2 += link.c
        elif type(link) is add_l1:
            c1 += link.c
        else:
            raise EngineUnavailable(f"the optimizer link {type(link).__name__} is not compiled")
    return links[-1].eta, c2, c1


# ---------------------------------------------------------------------------
# The kernels live in netlearn._jit (which imports Numba); loaded on first use
# ---------------------------------------------------------------------------
def kernels():
    """The compiled-function module :mod:`netlearn._jit`, imported (with Numba) on first call."""
    from . import _jit

    return _jit


def sparse_rows(X: np.ndarray, force: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The non-zeros of ``X`` row by row, CSR-style ``(indptr, cols, vals)``, or None if ``X`` is dense.

    Row ``r``'s non-zeros are ``vals[indptr[r]:indptr[r+1]]`` at positions
    ``cols[...]``.  "Dense" means more than half non-zero, unless ``force``.
    ``cols`` are ``uint16`` when the feature count allows (MNIST: 2 bytes per
    non-zero instead of 8), ``vals`` keep ``X``'s dtype.  On MNIST's 50,000
    training images this is about 45 MB beside the 157 MB of ``X``.
    """
    k = kernels()
    n = X.shape[0]
    counts = np.empty(n, np.int64)
    k.csr_counts(X, counts)
    nnz = int(counts.sum())
    if nnz > SPARSE_DENSITY * X.size and not force:
        return None
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    # Spare slots at the end: csr_fill writes whole 16-wide vectors, advancing only past non-zeros.
    spare = k.B
    cols = np.empty(nnz + spare, np.uint16 if X.shape[1] <= 65536 else np.int32)
    vals = np.empty(nnz + spare, X.dtype)
    (k.csr_fill32 if X.dtype == np.float32 else k.csr_fill)(X, indptr, cols, vals)
    return indptr, cols, vals


def huge_zeros(specs: Sequence[tuple[tuple[int, ...], Any]]) -> list[np.ndarray]:
    """Zeroed C-contiguous arrays of the given ``(shape, dtype)``, carved from one block of memory.

    On Linux the block is aligned to 2 MB and marked for transparent huge
    pages (``madvise(MADV_HUGEPAGE)``); elsewhere it is ordinary memory.
    Each array starts on a 64-byte cache line.
    """
    import mmap

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


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int | None, batch_size: int) -> int:
    """How many threads train mini-batches of ``batch_size``: ``threads`` if given, else the
    environment variable ``NETLEARN_THREADS``, else the available cores (at most
    ``MAX_AUTO_THREADS``, and at least 25 examples per thread)."""
    source = "threads"
    if threads is None and os.environ.get("NETLEARN_THREADS"):
        threads, source = os.environ["NETLEARN_THREADS"], "NETLEARN_THREADS"
        try:
            threads = int(threads)
        except ValueError:
            raise ValueError(f"NETLEARN_THREADS must be a whole number of threads, such as 1 or 2. "
                             f"Got {os.environ['NETLEARN_THREADS']!r} instead.") from None
    if threads is None:
        if sys.platform == "win32":  # the barrier yields through POSIX sched_yield
            return 1
        return max(1, min(available_cores(), MAX_AUTO_THREADS, batch_size // 25))
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"{source} must be a whole number of threads, 1 or more. Got {threads!r} instead.")
    if threads > 1 and sys.platform == "win32":  # pragma: no cover
        raise ValueError("threads > 1 needs a POSIX system (the threads wait with sched_yield); use threads=1.")
    return int(threads)


def run_parallel(fn: Callable[[int], Any], nthreads: int) -> None:
    """``fn(0)`` here and ``fn(1)`` ... ``fn(nthreads - 1)`` on new threads, all at once; returns when all are done.

    The workers wait until every one of them has started, so that kernels
    meeting at a barrier either all run or (a thread could not start) none do.
    """
    if nthreads == 1:
        fn(0)
        return
    go, abort = threading.Event(), [False]

    def worker(tid: int) -> None:
        go.wait()
        if not abort[0]:
            fn(tid)

    workers = [threading.Thread(target=worker, args=(tid,), daemon=True) for tid in range(1, nthreads)]
    try:
        for w in workers:
            w.start()
    except BaseException:
        abort[0] = True
        go.set()
        raise
    go.set()
    try:
        fn(0)
    finally:
        for w in workers:
            w.join()


class CompiledEpochs:
    """Runs whole epochs of mini-batch SGD through the compiled kernel.

    Built once per ``fit``: it checks the network and optimizer (raising
    :class:`EngineUnavailable` with the reason if they are not supported),
    indexes the training inputs' non-zeros and allocates the per-layer buffers.
    ``epoch(perm, hooks)`` then trains one epoch over the batches
    ``perm[0:m], perm[m:2m], ...`` -- the same batches as the NumPy path.
    """

    def __init__(self, net: Any, opt: Any, X: np.ndarray, T: np.ndarray, batch_size: int,
                 threads: int | None = None) -> None:
        from .backend import namespace

        self.net, self.opt = net, opt
        if namespace(X) is not np:
            raise EngineUnavailable("the compiled kernels take NumPy arrays only")
        dense, self.acts, self.kind = describe(net)
        sgd_coefficients(opt)
        if X.dtype != dense[0].W.dtype or T.dtype != X.dtype:
            raise EngineUnavailable("the data and the network have different dtypes")
        if not numba_available():  # pragma: no cover
            raise EngineUnavailable("Numba is not installed")
        self.X, self.m = X, batch_size
        self.reindex()
        m = min(batch_size, X.shape[0])
        n_in = dense[0].n_in
        # Row-by-row path (batches of ROWS_MIN_BATCH or more) and its threads.
        self.threads = resolve_threads(threads, m)
        cap = m  # a thread's share of a batch follows its non-zeros, so it may be most of it
        # (filed pairs of value and example number, in the threads' lists and, beyond two threads, copied)
        self.rows_mode = (ROWS_MIN_BATCH <= m < 2 ** 31
                          and 2 * self.threads * n_in * 2 * cap * X.dtype.itemsize <= ROWS_MAX_BYTES)
        if not self.rows_mode:
            self.threads, cap = 1, 1
        t = self.threads
        # Padded copies of the weights (see netlearn._jit.train): widths rounded up to a multiple of 16.
        self.widths = np.array([d.n_out for d in dense], np.int64)
        padded = [pad_width(w) for w in self.widths]
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
        self.Wp, self.A, self.D = tuple(bufs[:L]), tuple(bufs[L:2 * L]), tuple(bufs[2 * L:3 * L])
        self.WT = (np.zeros((1, 1), dt),) + tuple(bufs[3 * L:4 * L - 1])
        self.ent, self.used, self.T, self.merged = bufs[4 * L - 1:]
        self.T[...] = T
        self.bp = tuple(np.zeros(c, dt) for c in padded)
        self.acts_arr = np.asarray(self.acts, np.int64)
        self.scales = np.ones(L, np.float64)
        self.tscales = np.ones((t, L), np.float64)
        self.rows = np.zeros((t, n_in), np.int64)
        self.starts, self.ends = np.zeros((t, 2, n_in), np.int64), np.zeros((t, 2, n_in), np.int64)
        self.sync = np.zeros(16, np.int64)
        self._split()

    def compile(self) -> None:
        """Compile (or load from the cache) the kernel for these argument types by running no batches."""
        none = np.empty(0, np.intp)
        if self.rows_mode:
            self._rows_call(none, 0, 0, 0, 1)
        else:
            kernels().train(self.X, self.sparse, self.indptr, self.cols, self.vals, self.T, none,
                            0, 0, self.m, self.Wp, self.bp, self.widths, self.acts_arr, self.kind, self.A, self.D,
                            self.scales, 0.0, 0.0, 0.0)

    def reindex(self) -> None:
        """Index the non-zeros of the training inputs again (after a callback rewrote them in place)."""
        csr = sparse_rows(self.X)
        self.sparse = csr is not None
        empty = (np.zeros(1, np.int64), np.zeros(1, np.uint16), np.zeros(1, self.X.dtype))
        self.indptr, self.cols, self.vals = csr if csr is not None else empty
        if hasattr(self, "rows"):
            self._split()

    def _split(self) -> None:
        """Share the first layer's rows between the threads, by how often each input is non-zero."""
        n_in, t = self.Wp[0].shape[0], self.threads
        if self.sparse and t > 1:
            sample = self.cols[:self.indptr[-1]:7]  # (a sample is as good for balancing, and quicker)
            load = np.cumsum(np.bincount(sample, minlength=n_in))
            inner = np.searchsorted(load, load[-1] * np.arange(1, t) / t)
        else:
            inner = n_in * np.arange(1, t) // t
        self.split = np.concatenate([[0], inner, [n_in]]).astype(np.int64)

    def _rows_call(self, perm: np.ndarray, start: int, stop: int, tid: int, nthreads: int,
                   eta: float = 0.0, c2: float = 0.0, c1: float = 0.0) -> None:
        kernels().train_rows(self.X, self.sparse, self.indptr, self.cols, self.vals, self.T, perm, start, stop,
                             self.m, self.Wp, self.WT, self.bp, self.widths, self.acts_arr, self.kind, self.A,
                             self.D, self.tscales, eta, c2, c1, self.used, self.ent, self.merged, self.rows,
                             self.starts, self.ends, self.split, tid, nthreads, self.sync)

    def _run_rows(self, perm: np.ndarray, start: int, stop: int, eta: float, c2: float, c1: float) -> None:
        """Batches ``perm[start:stop]`` on ``self.threads`` threads (this one is thread 0)."""
        t = self.threads
        run_parallel(lambda tid: self._rows_call(perm, start, stop, tid, t, eta, c2, c1), t)

    def epoch(self, perm: np.ndarray, hooks: Sequence[Callable[[int], None]] = ()) -> None:
        """Train one epoch over ``perm``; with ``hooks`` (progress bars), about 50 calls report progress."""
        from .layers.dense import Dense

        eta, c2, c1 = sgd_coefficients(self.opt)
        dense = [mod for mod in self.net.modules if isinstance(mod, Dense)]  # re-read: callbacks may swap arrays
        for d, Wp, bp in zip(dense, self.Wp, self.bp):
            Wp[:d.n_in, :d.n_out] = d.W
            bp[:d.n_out] = d.b
        n, m = perm.shape[0], self.m
        n_batches = -(-n // m)
        step = n_batches if not hooks else max(1, -(-n_batches // 50))
        train = kernels().train
        try:
            for first in range(0, n_batches, step):
                start, stop = first * m, min(n, (first + step) * m)
                if self.rows_mode:
                    self._run_rows(perm, start, stop, eta, c2, c1)
                else:
                    train(self.X, self.sparse, self.indptr, self.cols, self.vals, self.T, perm, start, stop, m,
                          self.Wp, self.bp, self.widths, self.acts_arr, self.kind, self.A, self.D, self.scales,
                          eta, c2, c1)
                if hooks:
                    self._write_back(dense)
                    for hook in hooks:
                        hook(stop - start)
        finally:
            self._write_back(dense)

    def _write_back(self, dense: list) -> None:
        for d, Wp, bp in zip(dense, self.Wp, self.bp):
            d.W[...] = Wp[:d.n_in, :d.n_out]
            d.b[...] = bp[:d.n_out]


def pad_width(n: int, multiple: int = 16) -> int:
    """``n`` rounded up to a multiple of 16: whole AVX-512 (or two AVX2) registers of float32."""
    return -(-int(n) // multiple) * multiple
