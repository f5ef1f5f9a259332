"""The training loop: mini-batch SGD with callbacks, returning a History.

One loop drives mini-batches through forward, cost delta, backward and the
optimizer update.  Monitoring, progress bars and (in later modules) early
stopping, schedules and checkpoints are callbacks, not branches in the loop.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from typing import Any, Sequence

import numpy as np

from . import blas, optimizers
from .backend import rng as make_rng
from .callbacks import Callback, EpochLog, Monitor, TrainingState
from .checkpoints import restore_checkpoint
from .engine import EngineUnavailable, describe, engine_setting, resolve_threads, sgd_coefficients
from .engine import load as load_engine
from .history import FIGURES, RECORDED, DivergenceError, History, format_epoch
from .layers.base import Stochastic
from .progress import ProgressBar
from .regularizers import L1, L2, MaxNorm
from .validation import check_data, check_int, check_positive

# Re-exported: scripts import these from here (their homes are netlearn.callbacks and netlearn.history).
__all__ = ["fit", "choose_engine", "expects_compiled", "Callback", "TrainingState", "Monitor", "EpochLog", "History",
           "FIGURES", "DivergenceError", "format_epoch", "divergence_limit", "diverged"]


def divergence_limit(dtype) -> float:
    """The largest weight magnitude a run may end an epoch with: the square root of the dtype's largest value.

    About 1.8e19 for float32 (1.3e154 for float64): one product of two such
    numbers overflows, so beyond it an engine's results depend on where its
    rounding and order of operations meet infinity (the NumPy and compiled
    engines could then disagree on whether a run diverged).  Both engines
    apply this one rule after every epoch.
    """
    return float(np.sqrt(np.finfo(dtype).max))


def diverged(params) -> bool:
    """Has any array left ``[-limit, limit]`` (:func:`divergence_limit`) or become NaN?"""
    for p in params:
        limit = divergence_limit(p.dtype)
        lo, hi = p.min(), p.max()  # (NaN makes both NaN and fails the test)
        if not (-limit <= lo and hi <= limit):
            return True
    return False


class _Batches:
    """Shuffled contiguous mini-batches gathered into reused buffers (no allocation per batch)."""

    def __init__(self, X: np.ndarray, T: np.ndarray, batch_size: int) -> None:
        self.X, self.T, self.m = X, T, batch_size
        n = X.shape[0]
        self.perm = np.arange(n)
        self.xb = np.empty((batch_size, X.shape[1]), X.dtype)
        self.tb = np.empty((batch_size, T.shape[1]), T.dtype)
        r = n % batch_size
        self.xr = np.empty((r, X.shape[1]), X.dtype) if r else None
        self.tr = np.empty((r, T.shape[1]), T.dtype) if r else None

    def epoch(self, rng: np.random.Generator):
        rng.shuffle(self.perm)
        n, m = self.perm.shape[0], self.m
        for s in range(0, n, m):
            idx = self.perm[s:s + m]
            if idx.shape[0] == m:
                xb, tb = self.xb, self.tb
            else:
                xb, tb = self.xr, self.tr
            np.take(self.X, idx, axis=0, out=xb)
            np.take(self.T, idx, axis=0, out=tb)
            yield xb, tb


def _noise_rng(seed) -> np.random.Generator:
    """The generator of dropout masks and noise: derived from ``seed``, independent of the shuffling."""
    if isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed.bit_generator.seed_seq.spawn(1)[0])
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))


def _regularized(opt: optimizers.Optimizer, lmbda: float, l1: float, max_norm: float | None,
                 n: int) -> optimizers.Optimizer:
    """``opt`` with the book's L2 and L1 decay (``lmbda/n``, ``l1/n``) before it and max-norm after it."""
    reg = []
    if lmbda:
        reg.append(L2(lmbda).transform(n))
    if l1:
        reg.append(L1(l1).transform(n))
    if reg:
        opt = opt.prepend(*reg)
    if max_norm is not None:
        opt = opt.append(MaxNorm(max_norm).transform())
    return opt


def _optimizer(optimizer, eta) -> optimizers.Optimizer:
    """The optimizer fit trains with: a copy of one given (its state and rate are the run's own), or one by name."""
    if isinstance(optimizer, optimizers.Optimizer):
        opt = copy.deepcopy(optimizer)
        if eta is not None:
            given = check_positive("eta", eta)
            if not math.isclose(given, opt.eta, rel_tol=1e-12, abs_tol=0.0):
                raise ValueError(f"eta={eta!r} differs from the optimizer's own learning rate {opt.eta!r} "
                                 f"({opt.name}). Leave eta out to train at the optimizer's rate, or build the "
                                 f"optimizer with eta={eta!r}.")
        return opt
    return optimizers.get(optimizer, eta)


#: With engine="auto", runs shorter than this many examples (n x epochs) stay on NumPy: importing
#: Numba and loading the cached kernel (about half a second) would cost more than it saves.  The
#: choice depends on the run alone, never on what an earlier run in the process loaded.
AUTO_MIN_EXAMPLES = 20_000


def _compiled_wanted(engine: str, n: int, epochs: int) -> bool:
    """Whether a run of ``epochs`` epochs over ``n`` examples is for the compiled engine, if it applies."""
    return engine == "numba" or (engine == "auto" and n * epochs >= AUTO_MIN_EXAMPLES)


def expects_compiled(net, n: int, epochs: int, eta: float | None = None, *, lmbda: float = 0.0, l1: float = 0.0,
                     optimizer: str | optimizers.Optimizer | None = None, max_norm: float | None = None,
                     engine: str | None = None) -> bool:
    """Whether ``fit`` with these settings, on ``n`` examples, trains on the compiled engine.

    Decided as :func:`choose_engine` decides, without the data and without
    importing Numba: to start compiling the kernel ahead in another process
    (:mod:`netlearn.engine.background`) while this one does something else.
    Bad settings give False (``fit`` itself reports them).
    """
    try:
        if not _compiled_wanted(engine_setting(engine), n, epochs):
            return False
        describe(net)
        sgd_coefficients(_regularized(_optimizer(optimizer, eta), L2(lmbda).lmbda, L1(l1).lmbda, max_norm, n))
    except (EngineUnavailable, ValueError, TypeError):
        return False
    return True


def choose_engine(engine: str | None, net, opt, X: np.ndarray, T: np.ndarray, batch_size: int,
                  epochs: int = 1, threads: int | None = None, announce: bool = False):
    """The compiled epoch runner (:class:`netlearn.engine.single.CompiledEpochs`) or None for the NumPy path.

    ``engine``: ``"numba"`` demands the compiled path (an error says why it does
    not apply), ``"numpy"`` forbids it, ``"auto"`` (the default, or the
    environment variable ``NETLEARN_ENGINE``) takes it whenever the network
    (Dense layers with element-wise activations, a natural cost pairing) and
    the optimizer (SGD with L2/L1) allow and the run is long enough to repay
    loading the kernel (``AUTO_MIN_EXAMPLES``).  Where Numba can neither write
    nor read its cache, "auto" warns once and trains on NumPy.  ``threads``
    and ``NETLEARN_THREADS`` are checked on every path.  With ``announce``, a
    first compile that takes a while is reported on standard error.
    """
    engine = engine_setting(engine)
    resolve_threads(threads, batch_size)  # (a bad value is an error whichever engine trains)
    if not _compiled_wanted(engine, X.shape[0], epochs):
        return None
    try:
        describe(net)
        sgd_coefficients(opt)
        compiled = load_engine("single").CompiledEpochs(net, opt, X, T, batch_size, threads)
    except EngineUnavailable as exc:
        if engine == "numba":
            raise EngineUnavailable(f"engine='numba' cannot train this network: {exc}. "
                                    f"Use engine='auto' or 'numpy'.") from None
        if "cache" in str(exc):
            warnings.warn(f"netlearn trains on the NumPy path: {exc}.", RuntimeWarning, stacklevel=3)
        return None
    try:
        compiled.compile(announce)
    except Exception as exc:  # a platform whose LLVM cannot build the kernel: train on NumPy instead
        if engine == "numba":
            raise
        warnings.warn(f"netlearn's compiled training step could not be built on this platform "
                      f"({type(exc).__name__}: {exc}); training on the NumPy path instead. "
                      f"Set NETLEARN_ENGINE=numpy to skip the attempt.", RuntimeWarning, stacklevel=3)
        return None
    return compiled


def fit(net, training_data, epochs: int, batch_size: int, eta: float | None = None, lmbda: float = 0.0,
        evaluation_data=None, seed: int | None = None, *, l1: float = 0.0,
        optimizer: str | optimizers.Optimizer | None = None,
        monitor_evaluation_cost: bool = False, monitor_evaluation_accuracy: bool | None = None,
        monitor_training_cost: bool = False, monitor_training_accuracy: bool = False,
        callbacks: Sequence[Callback] = (), verbose: bool = False, progress: bool = False,
        max_norm: float | None = None, resume: Any = None, engine: str | None = None,
        threads: int | None = None, announce: bool | None = None) -> History:
    """Train ``net`` by mini-batch stochastic gradient descent (the book's ``network2.SGD``).

    Each epoch shuffles the training data (seeded by ``seed``), splits it into
    mini-batches of ``batch_size`` and, for each, back-propagates the mean cost
    and takes one optimizer step.  With L2 (``lmbda``) and L1 (``l1``) in the
    book's form, plain SGD updates ``w -> (1 - eta lmbda/n) w - eta dC0/dw
    - (eta l1/n) sgn(w)``, ``n`` being the training set size; biases are not
    regularized.

    ``evaluation_data`` (e.g. the validation set) is monitored after each
    epoch: its accuracy by default, its cost with ``monitor_evaluation_cost``;
    likewise ``monitor_training_cost`` / ``monitor_training_accuracy``.  The
    total cost includes the regularization terms.

    ``eta`` is the learning rate.  ``optimizer`` is a name from
    :data:`netlearn.optimizers.OPTIMIZERS` (trained with rate ``eta``; ``adam``
    and ``adadelta`` fall back to their own defaults, 0.001 and 1, when ``eta``
    is left out, the others need it) or an
    :class:`~netlearn.optimizers.Optimizer` that carries its own rate (e.g.
    ``optimizers.adam(1e-3)``): then ``eta`` may be left out, and an ``eta``
    that differs from the optimizer's is an error.  fit trains a copy of the
    optimizer given, so the same object can start several runs; the rate used
    in each epoch is in ``History.eta``.
    ``max_norm`` constrains each neuron's incoming weight vector to
    ``||w||_2 <= max_norm`` after every step.  ``seed`` also seeds dropout
    masks and input noise.  ``resume`` is a checkpoint (a path written by
    :class:`netlearn.checkpoints.Checkpoint`, or its dict): training continues
    after the checkpoint's epoch, up to ``epochs`` in all, with the same
    results as an uninterrupted run.

    ``engine`` picks how each epoch is computed: ``"auto"`` (default; or the
    environment variable ``NETLEARN_ENGINE``) uses the compiled Numba kernel of
    :mod:`netlearn.engine` when the network and optimizer are the common case
    and NumPy otherwise; ``"numpy"`` forces the NumPy path, ``"numba"`` the
    compiled one.  Both give the same numbers within float32 rounding.
    ``threads`` caps the CPU threads the compiled engine shares each
    mini-batch of 32 or more examples between (default: the environment
    variable ``NETLEARN_THREADS``, else the available cores, at most 4, and at
    least 25 examples per thread); the numbers do not depend on it beyond
    float32 rounding.  While fit runs, matrix products too small to share
    between threads run on one BLAS thread; the BLAS gets its own thread count
    back when fit returns (see :mod:`netlearn.blas`).  ``announce`` (default:
    ``verbose`` or ``progress``): a first compile of the kernel that takes
    more than a second is reported on standard error ("compiling", then its
    seconds), so that a command's first epoch does not look hung.

    Returns a :class:`History`.  If the weights become NaN, infinite or larger
    than :func:`divergence_limit` (1.8e19 in float32), or a monitored cost NaN
    or infinite, the network is set back to the weights at the end of the last
    good epoch and :class:`DivergenceError` is raised (a smaller ``eta``
    usually cures it); the rule is the same on both engines.
    """
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    opt = _optimizer(optimizer, eta)
    lmbda = L2(lmbda).lmbda
    l1 = L1(l1).lmbda
    X, y = check_data(training_data, net.n_in, net.n_out, net.dtype)
    evaluation = None
    if evaluation_data is not None:
        evaluation = check_data(evaluation_data, net.n_in, net.n_out, net.dtype, name="evaluation_data")
    n = X.shape[0]
    opt = _regularized(opt, lmbda, l1, max_norm, n)
    if monitor_evaluation_accuracy is None:
        monitor_evaluation_accuracy = evaluation is not None

    params, grads = net.parameters(), net.gradients()
    opt.init(params, net.decay_mask())
    history = History()
    state = TrainingState(net, opt, history, (X, y), evaluation, epochs, lmbda=lmbda, l1=l1)
    monitor = Monitor(monitor_training_cost, monitor_training_accuracy,
                      monitor_evaluation_cost, monitor_evaluation_accuracy)
    state.monitored = monitor.recorded(net, evaluation is not None)
    cbs: list[Callback] = [monitor, *sorted(callbacks, key=lambda cb: getattr(cb, "order", 0))]
    if progress:
        cbs.insert(0, ProgressBar(n, batch_size))
    if verbose:
        cbs.insert(len(cbs) - sum(getattr(cb, "order", 0) > 0 for cb in cbs), EpochLog())

    T = net._targets(y)
    batches = _Batches(X, T, batch_size)
    announce = (verbose or progress) if announce is None else announce  # (a compile is shown like progress)
    compiled = choose_engine(engine, net, opt, X, T, batch_size, epochs, threads, announce=announce)
    state.engine = "numpy" if compiled is None else "numba"
    shuffle = make_rng(seed)
    state.batch_size, state.seed, state.shuffle_rng, state.order = batch_size, seed, shuffle, batches.perm
    stochastic = [m for m in net.modules if isinstance(m, Stochastic)]
    if stochastic:
        state.noise_rng = _noise_rng(seed)
        for m in stochastic:
            m.rng = state.noise_rng
    state.callbacks = cbs
    start = 0
    if resume is not None:
        start = restore_checkpoint(resume, state, cbs)
    for cb in cbs:
        cb.on_train_begin(state)
    # Callbacks that rewrite the training inputs each epoch (augmentation) invalidate the
    # compiled engine's index of their non-zeros.
    reindex = compiled is not None and any(getattr(cb, "changes_inputs", False) for cb in cbs)
    # Overflow on the way to divergence is reported once, as DivergenceError below, not as a
    # stream of NumPy warnings (errstate is local to this block: no process-wide change).
    # Small products run on one BLAS thread for the whole loop (restored on return; see netlearn.blas).
    with np.errstate(over="ignore", invalid="ignore"), blas.limited(blas.largest_product(batch_size, net.weights())):
        for epoch in range(start, epochs):
            state.epoch = epoch
            for cb in cbs:
                cb.on_epoch_begin(state)
            if reindex:
                compiled.reindex()
            saved = [p.copy() for p in params]
            history.eta.append(opt.eta)
            t0 = time.perf_counter()
            hooks = state.batch_hooks
            if compiled is not None:
                shuffle.shuffle(batches.perm)
                compiled.epoch(batches.perm, hooks)
            else:
                for xb, tb in batches.epoch(shuffle):
                    net.backprop(xb, tb)
                    opt.step(params, grads)
                    if hooks:
                        for hook in hooks:
                            hook(xb.shape[0])
            history.epoch_seconds.append(time.perf_counter() - t0)
            if diverged(params):
                for p, s in zip(params, saved):
                    p[...] = s
                for name in RECORDED + ("epoch_seconds", "eta"):
                    lst = getattr(history, name)
                    del lst[epoch:]
                raise DivergenceError(
                    f"Training diverged in epoch {epoch + 1}: the weights became NaN, infinite or larger than "
                    f"{divergence_limit(params[0].dtype):.2g} (eta={opt.eta:g}). "
                    f"The network keeps its weights from the end of epoch {epoch}. Try a smaller eta.")
            for cb in cbs:
                cb.on_epoch_end(state)
            costs = history.training_cost[-1:] + history.evaluation_cost[-1:]
            if not all(np.isfinite(c) for c in costs):
                for p, s in zip(params, saved):
                    p[...] = s
                raise DivergenceError(
                    f"Training diverged in epoch {epoch + 1}: the cost became NaN or infinite (eta={opt.eta:g}). "
                    f"The network keeps its weights from the end of epoch {epoch}. Try a smaller eta.")
            if state.stop:
                break
    for cb in cbs:
        cb.on_train_end(state)
    return history
