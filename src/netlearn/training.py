"""The training loop: mini-batch SGD with callbacks, returning a History.

One loop drives mini-batches through forward, cost delta, backward and the
optimizer update.  Monitoring, progress bars and (in later modules) early
stopping, schedules and checkpoints are callbacks, not branches in the loop.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from . import optimizers
from .backend import rng as make_rng
from .engine import EngineUnavailable, describe, engine_setting, resolve_threads, sgd_coefficients
from .engine import load as load_engine
from .layers.base import Stochastic
from .regularizers import L1, L2
from .validation import check_data, check_int


class DivergenceError(FloatingPointError, ValueError):
    """Training produced NaN, infinite or overflowing weights, or a NaN or infinite cost; the network keeps
    its last good weights."""


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


@dataclass
class History:
    """Per-epoch figures of a training run: one entry per trained epoch.

    Accuracies are fractions in [0, 1]; a figure that was not monitored is an
    empty list.  ``eta`` is the learning rate used in each epoch.
    """

    training_cost: list[float] = field(default_factory=list)
    training_accuracy: list[float] = field(default_factory=list)
    evaluation_cost: list[float] = field(default_factory=list)
    evaluation_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    eta: list[float] = field(default_factory=list)
    best_epoch: int | None = None

    FIGURES = ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy")

    @property
    def epochs(self) -> int:
        return len(self.epoch_seconds)

    def to_dict(self) -> dict:
        return {"training_cost": list(self.training_cost), "training_accuracy": list(self.training_accuracy),
                "evaluation_cost": list(self.evaluation_cost),
                "evaluation_accuracy": list(self.evaluation_accuracy),
                "epoch_seconds": list(self.epoch_seconds), "eta": list(self.eta), "best_epoch": self.best_epoch}

    # The book's network2.SGD returns a 4-tuple; unpacking a History gives the same.
    def __iter__(self):
        return iter((self.evaluation_cost, self.evaluation_accuracy, self.training_cost, self.training_accuracy))


@dataclass
class TrainingState:
    """What callbacks see and may change: the network, optimizer, history, epoch, and a stop flag."""

    net: Any
    optimizer: optimizers.Optimizer
    history: History
    training_data: tuple[np.ndarray, np.ndarray]
    evaluation_data: tuple[np.ndarray, np.ndarray] | None
    epochs: int
    lmbda: float = 0.0
    l1: float = 0.0
    epoch: int = 0
    stop: bool = False
    stop_reason: str = ""
    #: Functions called with a number of examples as training progresses (progress bars): after each
    #: mini-batch on the NumPy path, after each run of mini-batches on the compiled one.
    batch_hooks: list = field(default_factory=list)
    #: The figures that the Monitor records (names from History.FIGURES).
    monitored: tuple = ()
    batch_size: int = 0
    seed: Any = None
    #: The shuffling generator and the permutation it shuffles in place each epoch (checkpoints save both).
    shuffle_rng: np.random.Generator | None = None
    order: np.ndarray | None = None
    #: The generator of dropout masks and input noise (None when the network has no random modules).
    noise_rng: np.random.Generator | None = None
    #: Every callback of the run, in the order they are called.
    callbacks: list = field(default_factory=list)
    #: Which engine trains the epochs: "numpy" or "numba" (set by fit).
    engine: str = "numpy"


class Callback:
    """Hooks called by the training loop; override what you need.

    A callback with state that a resumed run needs (a schedule's counters,
    early stopping's best weights) returns it from ``state_dict`` (plain
    values and arrays) and takes it back in ``load_state_dict``; checkpoints
    save it.  Callbacks run in increasing ``order`` (checkpoints last).
    """

    order: int = 0

    def state_dict(self) -> dict | None:
        return None

    def load_state_dict(self, state: dict) -> None: ...

    def on_train_begin(self, state: TrainingState) -> None: ...
    def on_epoch_begin(self, state: TrainingState) -> None: ...
    def on_epoch_end(self, state: TrainingState) -> None: ...
    def on_train_end(self, state: TrainingState) -> None: ...


class Monitor(Callback):
    """Record cost and accuracy on the training and evaluation data after each epoch (the book's flags)."""

    def __init__(self, training_cost: bool = False, training_accuracy: bool = False,
                 evaluation_cost: bool = False, evaluation_accuracy: bool = False) -> None:
        self.flags = {"training_cost": training_cost, "training_accuracy": training_accuracy,
                      "evaluation_cost": evaluation_cost, "evaluation_accuracy": evaluation_accuracy}

    def on_epoch_end(self, state: TrainingState) -> None:
        net, h, n = state.net, state.history, state.training_data[0].shape[0]
        for which, data in (("training", state.training_data), ("evaluation", state.evaluation_data)):
            if data is None:
                continue
            if self.flags[f"{which}_cost"]:
                getattr(h, f"{which}_cost").append(net._total_cost(*data, lmbda=state.lmbda, l1=state.l1, n=n))
            if self.flags[f"{which}_accuracy"]:
                getattr(h, f"{which}_accuracy").append(net._accuracy(*data))


class EpochLog(Callback):
    """Print one line per epoch with the monitored figures."""

    def __init__(self, print_fn=print) -> None:
        self.print_fn = print_fn

    def on_epoch_end(self, state: TrainingState) -> None:
        self.print_fn(format_epoch(state.history, state.epoch, state.epochs))


def format_epoch(h: History, epoch: int, epochs: int) -> str:
    """``Epoch 3/30  2.1s  training cost 0.48  evaluation accuracy 95.12%`` for the last recorded epoch."""
    parts = [f"Epoch {epoch + 1}/{epochs}", f"{h.epoch_seconds[-1]:.2f}s"]
    for name in History.FIGURES:
        values = getattr(h, name)
        if values:
            v = values[-1]
            parts.append(f"{name.replace('_', ' ')} {100 * v:.2f}%" if name.endswith("accuracy") else
                         f"{name.replace('_', ' ')} {v:.4f}")
    return "  ".join(parts)


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


#: With engine="auto", runs shorter than this many examples (n x epochs) stay on NumPy: importing
#: Numba and loading the cached kernel (about half a second) would cost more than it saves.  The
#: choice depends on the run alone, never on what an earlier run in the process loaded.
AUTO_MIN_EXAMPLES = 20_000


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
    if engine == "numpy":
        return None
    if engine == "auto" and X.shape[0] * epochs < AUTO_MIN_EXAMPLES:
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


def fit(net, training_data, epochs: int, batch_size: int, eta: float, lmbda: float = 0.0,
        evaluation_data=None, seed: int | None = None, *, l1: float = 0.0,
        optimizer: str | optimizers.Optimizer | None = None,
        monitor_evaluation_cost: bool = False, monitor_evaluation_accuracy: bool | None = None,
        monitor_training_cost: bool = False, monitor_training_accuracy: bool = False,
        callbacks: Sequence[Callback] = (), verbose: bool = False, progress: bool = False,
        max_norm: float | None = None, resume: Any = None, engine: str | None = None,
        threads: int | None = None) -> History:
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

    ``optimizer`` is a name from :data:`netlearn.optimizers.OPTIMIZERS` or an
    :class:`~netlearn.optimizers.Optimizer` (e.g. ``optimizers.adam(1e-3)``);
    ``max_norm`` constrains each neuron's incoming weight vector to
    ``||w||_2 <= max_norm`` after every step.  ``seed`` also seeds dropout
    masks and input noise.  ``resume`` is a checkpoint (a path written by
    :class:`netlearn.callbacks.Checkpoint`, or its dict): training continues
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
    float32 rounding.

    Returns a :class:`History`.  If the weights become NaN, infinite or larger
    than :func:`divergence_limit` (1.8e19 in float32), or a monitored cost NaN
    or infinite, the network is set back to the weights at the end of the last
    good epoch and :class:`DivergenceError` is raised (a smaller ``eta``
    usually cures it); the rule is the same on both engines.
    """
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    opt = optimizers.get(optimizer, eta)
    opt.eta = eta
    reg = []
    lmbda = L2(lmbda).lmbda
    l1 = L1(l1).lmbda
    X, y = check_data(training_data, net.n_in, net.n_out, net.dtype)
    evaluation = None
    if evaluation_data is not None:
        evaluation = check_data(evaluation_data, net.n_in, net.n_out, net.dtype, name="evaluation_data")
    n = X.shape[0]
    if lmbda:
        reg.append(L2(lmbda).transform(n))
    if l1:
        reg.append(L1(l1).transform(n))
    if reg:
        opt = opt.prepend(*reg)
    if max_norm is not None:
        from .regularizers import MaxNorm

        opt = opt.append(MaxNorm(max_norm).transform())
    if monitor_evaluation_accuracy is None:
        monitor_evaluation_accuracy = evaluation is not None

    params, grads = net.parameters(), net.gradients()
    opt.init(params, net.decay_mask())
    history = History()
    state = TrainingState(net, opt, history, (X, y), evaluation, epochs, lmbda=lmbda, l1=l1)
    monitor = Monitor(monitor_training_cost, monitor_training_accuracy,
                      monitor_evaluation_cost, monitor_evaluation_accuracy)
    state.monitored = tuple(k for k, v in monitor.flags.items() if v and
                            (evaluation is not None or not k.startswith("evaluation")))
    cbs: list[Callback] = [monitor, *sorted(callbacks, key=lambda cb: getattr(cb, "order", 0))]
    if progress:
        from .progress import ProgressBar

        cbs.insert(0, ProgressBar(n, batch_size))
    if verbose:
        cbs.insert(len(cbs) - sum(getattr(cb, "order", 0) > 0 for cb in cbs), EpochLog())

    T = net._targets(y)
    batches = _Batches(X, T, batch_size)
    compiled = choose_engine(engine, net, opt, X, T, batch_size, epochs, threads, announce=verbose or progress)
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
        from .callbacks import restore_checkpoint

        start = restore_checkpoint(resume, state, cbs)
    for cb in cbs:
        cb.on_train_begin(state)
    # Callbacks that rewrite the training inputs each epoch (augmentation) invalidate the
    # compiled engine's index of their non-zeros.
    reindex = compiled is not None and any(getattr(cb, "changes_inputs", False) for cb in cbs)
    # Overflow on the way to divergence is reported once, as DivergenceError below, not as a
    # stream of NumPy warnings (errstate is local to this block: no process-wide change).
    with np.errstate(over="ignore", invalid="ignore"):
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
                for name in History.FIGURES + ("epoch_seconds", "eta"):
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
