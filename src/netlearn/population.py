"""Many networks trained at once: ``Population``.

The book calls trying hundreds of hyper-parameter choices "debilitating" when
one network takes ten seconds an epoch.  A :class:`Population` holds ``K``
networks of one architecture, each with its own learning rate ``eta``, L2
strength ``lmbda``, momentum ``mu`` and initialization seed, and trains them
in lockstep on the same shuffled mini-batches (one shuffle ``seed`` for all).

How it stays cheap: the weights of layer ``l`` of all ``K`` networks live in
one array ``W[l]`` of shape ``(n_in, n_out, K)`` -- the network index last, so
every inner loop runs over the ``K`` networks in contiguous memory and
vectorizes whatever the layer sizes.  The first layer of all networks is one
wide matrix ``(n_in, H*K)`` over the shared input, and, since MNIST pixels are
mostly zero, each batch reads and updates only the rows of the pixels that
are non-zero somewhere in the batch.  Weight decay is lazy (each network keeps
a scale ``s_k`` with ``W_k = s_k V_k``, see :mod:`netlearn.engine.step`) unless a
network uses momentum.  The networks are independent, so threads (``fit``'s
``threads``) each train their own groups of 16 networks, with the same
numbers whatever their count.

Network ``k`` ends with the same weights (within float32 rounding) as::

    Network(sizes, seed=seed_k).fit(training_data, epochs, batch_size, eta_k,
                                    lmbda=lmbda_k, seed=shuffle_seed)

(with momentum: Nielsen's rule ``v -> mu v - eta (dC/dw + lmbda/n w)``,
``w -> w + v``, biases included and not decayed).  A network whose weights or
monitored cost become NaN or infinite (or whose weights pass ``training.divergence_limit``) is
*frozen*: it keeps its weights from the end of its last good epoch, its History stops there,
``diverged[k]`` says in which epoch it happened, and the others train on undisturbed.

Between epochs (before ``fit``, or from a callback that ``fit`` calls after
each epoch) the members can be changed one at a time, which is what
hyper-parameter search needs: :meth:`Population.set` (eta, lmbda, mu),
:meth:`Population.freeze`, :meth:`Population.replace` (fresh weights from a
seed, new settings) and :meth:`Population.copy` (weights, biases and
velocities, bit for bit).  Only the active members are packed into the
kernels' arrays, re-packed whenever the set changes, so frozen members cost
no time: an epoch's time falls with the number of active blocks of 16.
"""
from __future__ import annotations

import itertools
import time
from typing import Any, Callable, Sequence

import numpy as np

from . import engine
from .backend import rng as make_rng
from .history import History
from .layers.dense import Dense
from .network import Network
from .training import divergence_limit
from .validation import check_data, check_int, check_positive, check_unit

#: Rows per chunk when evaluating all networks on a data set.
EVAL_CHUNK = 2_000


def _per_network(name: str, value: Any, k: int | None) -> list:
    """``value`` as a list: a scalar is one value for every network, a sequence one per network."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        return [value] * (k or 1)
    values = list(value)
    if not values:
        raise ValueError(f"The '{name}' parameter must not be empty.")
    if k is not None and len(values) not in (1, k):
        raise ValueError(f"The '{name}' parameter must be one value or one per network ({k}). "
                         f"Got {len(values)} values.")
    return values * k if (k is not None and len(values) == 1) else values


def _check_mu(mu: Any) -> float:
    return check_unit("mu", mu)


def _pad(k: int, multiple: int = 16) -> int:
    """``k`` rounded up to a multiple of 16 (float32 lanes of an AVX-512 register)."""
    return -(-k // multiple) * multiple


def _stack(arrays: list[np.ndarray], kp: int) -> np.ndarray:
    """The arrays stacked along a new last axis, padded with zeros to ``kp`` entries."""
    out = np.zeros(arrays[0].shape + (kp,), arrays[0].dtype)
    for k, a in enumerate(arrays):
        out[..., k] = a
    return out


class _Group:
    """The kernel state of the networks ``k0:k1`` of a population (whole blocks of 16), trained by one thread.

    With one group for the whole population its arrays are the population's
    own; otherwise copies, loaded before and stored after each epoch.
    """

    def __init__(self, k0: int, k1: int, Ws, bs, Vs, Vbs, etas, c2s, mus, momentum: bool, m: int,
                 widths: list[int], n_in: int, dt) -> None:
        self.k0, self.k1, self.momentum = k0, k1, momentum
        whole = k0 == 0 and k1 == etas.shape[0]
        part = (lambda a: a) if whole else (lambda a: np.ascontiguousarray(a[..., k0:k1]))
        self.whole = whole
        self.Ws, self.bs = tuple(part(W) for W in Ws), tuple(part(b) for b in bs)
        self.Vs = tuple(part(V) for V in Vs) if momentum else Vs
        self.Vbs = tuple(part(V) for V in Vbs) if momentum else Vbs
        self.etas, self.c2s, self.mus = (np.ascontiguousarray(a[k0:k1]) for a in (etas, c2s, mus))
        w = k1 - k0
        self.A = tuple(np.zeros((m, n, w), dt) for n in widths)
        self.D = tuple(np.zeros((m, n, w), dt) for n in widths)
        self.active = np.zeros(w)
        self.scales = np.ones((len(Ws), w))
        self.coef = np.zeros(w, dt)
        self.index = (np.full(n_in, -1, np.int64), np.zeros(n_in, np.int64), np.zeros(n_in + 1, np.int64),
                      np.zeros(n_in, np.int64), np.zeros(m * n_in, np.int64), np.zeros(m * n_in, dt))
        self.bid = 0
        # The first layer seen flat, (n_in, H*w): views, no copies.
        self.flat = tuple(a.reshape(a.shape[0], -1) for a in (self.Ws[0], self.A[0], self.D[0], self.Vs[0]))
        self.b0 = self.bs[0].reshape(-1)

    def _pairs(self, Ws, bs, Vs, Vbs):
        mine = self.Ws + self.bs + (self.Vs + self.Vbs if self.momentum else ())
        full = Ws + bs + (Vs + Vbs if self.momentum else ())
        return zip(mine, full)

    def load(self, Ws, bs, Vs, Vbs, active) -> None:
        self.active[:] = active[self.k0:self.k1]
        if not self.whole:
            for mine, full in self._pairs(Ws, bs, Vs, Vbs):
                mine[...] = full[..., self.k0:self.k1]

    def store(self, Ws, bs, Vs, Vbs) -> None:
        if not self.whole:
            for mine, full in self._pairs(Ws, bs, Vs, Vbs):
                full[..., self.k0:self.k1] = mine

    def bundles(self, kernels, kind: int, acts: np.ndarray):
        """The kernels' named bundles over this group's arrays: ``(PopIndex, PopLayers, PopRule)``."""
        return (kernels.PopIndex(*self.index),
                kernels.PopLayers(*self.flat, self.b0, self.A, self.D, self.Ws, self.bs, self.Vs, self.Vbs),
                kernels.PopRule(kind, acts, self.scales, self.etas, self.c2s, self.mus, self.active,
                                self.momentum, self.coef))

    def train(self, jit, perm, n, m, inputs, kind, acts) -> None:
        """One epoch over the batches ``perm[s:s+m]``, then the true weights written back (scales folded)."""
        index, layers, rule = self.bundles(jit, kind, acts)
        self.bid = jit.pop_train(inputs, index, layers, rule, perm, 0, n, m, self.bid)
        jit.pop_fold_scales(self.Ws, self.scales)


class _Packed:
    """The active members (``slots[s]`` is the member in lane ``s``) stacked for the kernels, and their groups."""

    def __init__(self, slots, Ws, bs, Vs, Vbs, momentum, active, groups) -> None:
        self.slots, self.Ws, self.bs, self.Vs, self.Vbs = slots, Ws, bs, Vs, Vbs
        self.momentum, self.active, self.groups = momentum, active, groups

    def train(self, jit, perm, n, m, inputs, kind, acts) -> None:
        """One epoch of every group, each on its own thread."""
        for g in self.groups:
            g.load(self.Ws, self.bs, self.Vs, self.Vbs, self.active)
        jit.run_parallel(lambda t: self.groups[t].train(jit, perm, n, m, inputs, kind, acts), len(self.groups))
        for g in self.groups:
            g.store(self.Ws, self.bs, self.Vs, self.Vbs)


class Population:
    """``K`` networks of one architecture trained in lockstep (see the module docstring).

    Parameters
    ----------
    sizes : list of int
        Neurons per layer, input first, as for :class:`netlearn.Network`.
    eta, lmbda, mu : float or list of float
        Learning rate, L2 regularization (the book's lambda) and momentum
        coefficient; one value for all networks or one per network.
    seed : int, None or list
        Initialization seed of each network (``Network(..., seed=seed_k)``).
    activation, cost, init, output, dtype
        As for :class:`netlearn.Network`; shared by all networks.

    Use :meth:`grid` for every combination of lists of values.
    """

    def __init__(self, sizes: Sequence[int], eta: float | Sequence[float], lmbda: float | Sequence[float] = 0.0,
                 mu: float | Sequence[float] = 0.0, seed: int | None | Sequence[int | None] = None, *,
                 activation: str | Sequence[str] = "sigmoid", cost: str = "cross-entropy", init: str = "default",
                 output: str | None = None, dtype: Any = None) -> None:
        lengths = [len(v) for v in (eta, lmbda, mu, seed)
                   if isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, (str, bytes))]
        k = max(lengths) if lengths else 1
        etas = [check_positive("eta", v) for v in _per_network("eta", eta, k)]
        lmbdas = [check_positive("lmbda", v, allow_zero=True) for v in _per_network("lmbda", lmbda, k)]
        mus = [_check_mu(v) for v in _per_network("mu", mu, k)]
        seeds = _per_network("seed", seed, k)
        self.networks = [Network(sizes, activation=activation, cost=cost, init=init, output=output, seed=s,
                                 dtype=dtype) for s in seeds]
        try:
            self._dense, self._acts, self._kind = engine.describe(self.networks[0])
        except engine.EngineUnavailable as exc:
            raise ValueError(f"Population cannot train this architecture: {exc}.") from None
        self.configs = [{"eta": e, "lmbda": lm, "mu": m, "seed": s} for e, lm, m, s in zip(etas, lmbdas, mus, seeds)]
        self._architecture = {"sizes": list(sizes), "activation": activation, "cost": cost, "init": init,
                              "output": output, "dtype": dtype}
        self.diverged: list[int | None] = [None] * k
        #: Members stopped by :meth:`freeze` (diverged ones are in ``diverged``).
        self.frozen: list[bool] = [False] * k
        self.histories: list[History] = [History() for _ in range(k)]
        self._velocities: list[list[np.ndarray] | None] = [None] * k
        self._dirty = self._stop = False

    @classmethod
    def grid(cls, sizes: Sequence[int], eta: Sequence[float], lmbda: Sequence[float] = (0.0,),
             mu: Sequence[float] = (0.0,), seeds: Sequence[int | None] = (None,), **kwargs: Any) -> "Population":
        """Every combination of the given values (eta outermost, then lmbda, mu, seed)."""
        combos = list(itertools.product(list(eta), list(lmbda), list(mu), list(seeds)))
        if not combos:
            raise ValueError("The grid is empty: give at least one value of eta, lmbda, mu and seed.")
        e, lm, m, s = (list(c) for c in zip(*combos))
        return cls(sizes, e, lm, m, s, **kwargs)

    def __len__(self) -> int:
        return len(self.networks)

    def __repr__(self) -> str:
        return f"Population({len(self)} x {self.networks[0]!r})"

    # -- member operations (between epochs: before fit, or from a callback) -----
    def set(self, k: int, *, eta: float | None = None, lmbda: float | None = None, mu: float | None = None) -> None:
        """Change member ``k``'s learning rate, L2 strength or momentum from the next epoch on."""
        k = self._member(k)
        cfg = self.configs[k]
        if eta is not None:
            cfg["eta"] = check_positive("eta", eta)
        if lmbda is not None:
            cfg["lmbda"] = check_positive("lmbda", lmbda, allow_zero=True)
        if mu is not None:
            cfg["mu"] = _check_mu(mu)
        self._dirty = True

    def freeze(self, k: int) -> None:
        """Stop training member ``k``: it keeps its weights and History, and costs no more time."""
        self.frozen[self._member(k)] = True
        self._dirty = True

    def replace(self, k: int, eta: float, lmbda: float = 0.0, mu: float = 0.0, seed: int | None = None) -> None:
        """Start member ``k`` afresh: new weights from ``seed``, new hyper-parameters, an empty History.

        From the next epoch on it trains exactly as ``Network(sizes, seed=seed)``
        would on the population's remaining mini-batches.
        """
        k = self._member(k)
        cfg = {"eta": check_positive("eta", eta), "lmbda": check_positive("lmbda", lmbda, allow_zero=True),
               "mu": _check_mu(mu), "seed": seed}
        self.networks[k] = Network(**self._architecture, seed=seed)
        self.configs[k] = cfg
        self.diverged[k] = None
        self.frozen[k] = False
        self.histories[k] = History()
        self._velocities[k] = None
        self._dirty = True

    def copy(self, src: int, dst: int) -> None:
        """Member ``dst`` takes member ``src``'s weights, biases and velocities, bit for bit (not its settings).

        A diverged ``dst`` trains again with the copied (finite) weights.
        """
        src, dst = self._member(src), self._member(dst)
        self.diverged[dst] = self.diverged[src]
        for p, q in zip(self.networks[src].parameters(), self.networks[dst].parameters()):
            q[...] = p
        v = self._velocities[src]
        self._velocities[dst] = None if v is None else [a.copy() for a in v]
        self._dirty = True

    def stop(self) -> None:
        """Ask :meth:`fit` to end after the current epoch (from a callback)."""
        self._stop = True

    @property
    def active(self) -> list[int]:
        """The members that train in the next epoch: neither frozen nor diverged."""
        return [k for k in range(len(self)) if not self.frozen[k] and self.diverged[k] is None]

    def velocities(self, k: int) -> list[np.ndarray] | None:
        """Member ``k``'s momentum velocities (each weight array, then each bias), or None while they are zero."""
        return self._velocities[self._member(k)]

    def _member(self, k: int) -> int:
        k = check_int("k", k, low=0)
        if k >= len(self):
            raise ValueError(f"The member index must be in [0, {len(self)}). Got {k} instead.")
        return k

    # -- training -------------------------------------------------------------
    def fit(self, training_data, epochs: int, batch_size: int, evaluation_data=None, seed: int | None = None, *,
            monitor_evaluation_accuracy: bool | None = None, monitor_evaluation_cost: bool = False,
            monitor_training_cost: bool = False, monitor_training_accuracy: bool = False,
            verbose: bool = False, print_fn: Callable[[str], None] = print,
            threads: int | None = None,
            callbacks: Sequence[Callable[["Population", int], Any]] = (),
            announce: bool | None = None) -> list[History]:
        """Train all networks for ``epochs`` epochs of mini-batch SGD; returns one History per network.

        ``seed`` seeds the one shuffle that all networks share.  Monitoring is
        as in :meth:`netlearn.Network.fit` (evaluation accuracy by default when
        ``evaluation_data`` is given), per network.  ``threads`` (default: the
        environment variable ``NETLEARN_THREADS``, else the available cores, at
        most 4) train disjoint groups of at least 16 networks at once; the
        numbers do not depend on it.

        ``announce`` (default: ``verbose``): say on standard error when the
        kernels' first compile takes a while (a line with "compiling", then one
        with the seconds it took).

        ``callbacks`` are called as ``callback(population, epoch)`` after each
        epoch (``epoch`` counts the epochs done, from 1), with every member's
        weights in its Network; they may read them and call the member
        operations (:meth:`set`, :meth:`freeze`, :meth:`replace`, :meth:`copy`,
        :meth:`stop`).  Only active members are packed into the kernels'
        arrays, so frozen members cost nothing.  Velocities start at zero in
        each call, as in ``Network.fit``.
        """
        epochs = check_int("epochs", epochs)
        batch_size = check_int("batch_size", batch_size)
        net0 = self.networks[0]
        X, y = check_data(training_data, net0.n_in, net0.n_out, net0.dtype)
        evaluation = None
        if evaluation_data is not None:
            evaluation = check_data(evaluation_data, net0.n_in, net0.n_out, net0.dtype, name="evaluation_data")
        if monitor_evaluation_accuracy is None:
            monitor_evaluation_accuracy = evaluation is not None
        flags = {"training_cost": monitor_training_cost, "training_accuracy": monitor_training_accuracy,
                 "evaluation_cost": monitor_evaluation_cost, "evaluation_accuracy": monitor_evaluation_accuracy}
        jit = engine.load("population")
        n, m = X.shape[0], min(batch_size, X.shape[0])
        T = np.ascontiguousarray(net0._targets(y))
        inputs = jit.PopInputs(*jit.sparse_rows(X, force=True), T)
        acts = np.asarray(self._acts, np.int64)
        perm = np.arange(n)
        shuffle = make_rng(seed)
        self.histories = [History() for _ in range(len(self))]
        self._velocities = [None] * len(self)
        self._stop = False
        packed: _Packed | None = None

        compiled = False
        for epoch in range(epochs):
            if packed is None:
                packed = self._pack(n, m, X.shape[1], threads)
                self._dirty = False
            if not compiled and packed.slots:
                # Compile (or load) the kernels before the first epoch, saying so when that is slow and announced.
                group = packed.groups[0]
                jit.compile_with_notice(lambda: group.train(jit, perm[:0], 0, m, inputs, self._kind, acts),
                                        "population kernels", verbose if announce is None else announce)
                compiled = True
            shuffle.shuffle(perm)  # every epoch, whoever trains: the mini-batches do not depend on the members
            if not packed.slots:
                break
            saved = [p.copy() for p in packed.Ws + packed.bs]
            t0 = time.perf_counter()
            packed.train(jit, perm, n, m, inputs, self._kind, acts)
            seconds = time.perf_counter() - t0
            if self._end_epoch(epoch, seconds, packed, saved, flags, (X, y), evaluation, n, jit):
                self._dirty = True  # a member diverged: compact it away
            if verbose:
                print_fn(self._epoch_line(epoch, epochs))
            if callbacks or self._dirty:
                # The members' own Networks hold the truth while callbacks run; re-pack if they changed it.
                self._unpack(packed)
                for cb in callbacks:
                    cb(self, epoch + 1)
                if self._dirty:
                    packed = None
            if self._stop or not self.active:
                break
        if packed is not None:
            self._unpack(packed)
        return self.histories

    def _pack(self, n: int, m: int, n_in: int, threads: int | None) -> "_Packed":
        """The active members' parameters stacked for the kernels, padded to whole blocks of 16."""
        slots = self.active
        dt = self.networks[0].dtype
        # The network axis is padded to a multiple of 16 with frozen all-zero "ghost" networks, so the
        # inner loops over networks fill whole SIMD registers (9 networks cost no less than 16 otherwise).
        Kp = _pad(max(len(slots), 1))
        L = len(self._dense)
        layers = [self._layers(k) for k in slots] or [self._layers(0)]
        Ws = tuple(_stack([ls[l].W for ls in layers], Kp) for l in range(L))
        bs = tuple(_stack([ls[l].b for ls in layers], Kp) for l in range(L))
        ghosts = [0.0] * (Kp - len(slots))
        cfgs = [self.configs[k] for k in slots]
        etas = np.array([c["eta"] for c in cfgs] + ghosts)
        c2s = np.array([c["lmbda"] / n for c in cfgs] + ghosts)
        mus = np.array([c["mu"] for c in cfgs] + ghosts)
        momentum = bool(np.any(mus > 0))
        if momentum:
            Vs = tuple(np.zeros_like(W) for W in Ws)
            Vbs = tuple(np.zeros_like(b) for b in bs)
            for s, k in enumerate(slots):
                v = self._velocities[k]
                if v is not None:
                    for dst, src in zip(Vs + Vbs, v):
                        dst[..., s] = src
        else:
            Vs = tuple(np.zeros((1, 1, 1), dt) for _ in Ws)
            Vbs = tuple(np.zeros((1, 1), dt) for _ in bs)
        active = np.array([1.0] * len(slots) + ghosts)
        # The networks are independent: each thread trains its own group of whole blocks of 16 networks,
        # in arrays of its own (so no two threads write to one cache line), copied in and out each epoch.
        blocks = Kp // 16
        nthreads = min(engine.resolve_threads(threads, 25 * blocks), blocks)
        groups = [_Group(16 * (blocks * t // nthreads), 16 * (blocks * (t + 1) // nthreads), Ws, bs, Vs, Vbs,
                         etas, c2s, mus, momentum, m, [d.n_out for d in self._dense], n_in, dt)
                  for t in range(nthreads)]
        return _Packed(slots, Ws, bs, Vs, Vbs, momentum, active, groups)

    def _unpack(self, packed: "_Packed") -> None:
        """Each packed member's weights, biases (and velocities) back into its own Network."""
        for s, k in enumerate(packed.slots):
            for l, d in enumerate(self._layers(k)):
                d.W[...] = packed.Ws[l][..., s]
                d.b[...] = packed.bs[l][..., s]
            if packed.momentum:
                self._velocities[k] = [V[..., s].copy() for V in packed.Vs + packed.Vbs]

    def _layers(self, k: int) -> list:
        return [mod for mod in self.networks[k].modules if isinstance(mod, Dense)]

    def _activate(self, Z: np.ndarray, l: int, jit) -> None:
        """Layer ``l``'s activation in place on ``Z (c, J, K)``: the training kernels' own (one forward pass)."""
        jit.pop_activate(Z, Z.shape[0], self._acts[l])

    def _end_epoch(self, epoch, seconds, packed, saved, flags, training, evaluation, n, jit) -> bool:
        """Freeze networks that diverged (restoring their last good weights), then record the figures.

        Returns whether a network diverged.
        """
        Ws, bs, active, slots = packed.Ws, packed.bs, packed.active, packed.slots
        K = len(slots)
        finite = np.ones(K, bool)
        for p in Ws + bs:
            finite &= (np.abs(p[..., :K]) <= divergence_limit(p.dtype)).reshape(-1, K).all(axis=0)
        figures: dict[str, np.ndarray] = {}
        for which, data in (("training", training), ("evaluation", evaluation)):
            if data is not None and (flags[f"{which}_cost"] or flags[f"{which}_accuracy"]):
                cost, acc = self._evaluate(data, Ws, bs, slots, n, jit, want_cost=flags[f"{which}_cost"])
                if flags[f"{which}_cost"]:
                    figures[f"{which}_cost"] = cost
                    finite &= np.isfinite(cost)
                if flags[f"{which}_accuracy"]:
                    figures[f"{which}_accuracy"] = acc
        bad = np.flatnonzero(~finite & (active[:K] > 0))
        for s in bad:
            for p, old in zip(Ws + bs, saved):
                p[..., s] = old[..., s]
            if packed.momentum:
                for v in packed.Vs + packed.Vbs:
                    v[..., s] = 0
            active[s] = 0.0
            self.diverged[slots[s]] = epoch + 1
        for s in np.flatnonzero(active[:K] > 0):
            h = self.histories[slots[s]]
            h.epoch_seconds.append(seconds)
            h.eta.append(self.configs[slots[s]]["eta"])
            for name, values in figures.items():
                getattr(h, name).append(float(values[s]))
        return len(bad) > 0

    def _evaluate(self, data, Ws, bs, slots, n: int, jit, want_cost: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per-slot total cost (with the L2 term) and accuracy on ``data``."""
        X, y = data
        K, Kp, L = len(slots), Ws[0].shape[-1], len(Ws)
        net0 = self.networks[0]
        labels = y if y.ndim == 1 else np.argmax(y, axis=1)
        correct = np.zeros(Kp, np.int64)
        cost = np.zeros(K)
        ones = np.ones(Kp)
        W0 = Ws[0].reshape(Ws[0].shape[0], -1)
        for s in range(0, X.shape[0], EVAL_CHUNK):
            xc = X[s:s + EVAL_CHUNK]
            c = xc.shape[0]
            a = (xc @ W0).reshape(c, -1, Kp)
            a += bs[0]
            z = a
            for l in range(L):
                if l > 0:
                    z = np.empty((c, Ws[l].shape[1], Kp), a.dtype)
                    jit.pop_forward(a, Ws[l], bs[l], ones, z, c)
                if l == L - 1 and want_cost:
                    Y = net0._targets(y[s:s + EVAL_CHUNK])
                    fused = net0.fused
                    out = z.copy()
                    if not fused:
                        self._activate(out, l, jit)
                    for k in range(K):
                        zk = np.ascontiguousarray(out[:, :, k])
                        cost[k] += (net0.cost.fn_z(zk, Y) if fused else net0.cost.fn(zk, Y)) * c
                a = z
                self._activate(a, l, jit)
            correct += np.count_nonzero(np.argmax(a, axis=1) == labels[s:s + EVAL_CHUNK, None], axis=0)
        cost /= X.shape[0]
        if want_cost:
            for k, member in enumerate(slots):
                lmbda = self.configs[member]["lmbda"]
                if lmbda:
                    cost[k] += 0.5 * lmbda / n * sum(float(np.vdot(W[..., k], W[..., k])) for W in Ws)
        return cost, correct[:K] / X.shape[0]

    def _epoch_line(self, epoch: int, epochs: int) -> str:
        alive = [k for k in self.active if self.histories[k].epoch_seconds]
        parts = [f"Epoch {epoch + 1}/{epochs}"]
        if alive:
            h = self.histories[alive[0]]
            parts.append(f"{h.epoch_seconds[-1]:.2f}s")
            accs = [(self.histories[k].evaluation_accuracy[-1], k) for k in alive
                    if self.histories[k].evaluation_accuracy]
            if accs:
                best, k = max(accs)
                cfg = self.configs[k]
                parts.append(f"best evaluation accuracy {100 * best:.2f}% (eta={cfg['eta']:g} "
                             f"lmbda={cfg['lmbda']:g} mu={cfg['mu']:g})")
        n_div = sum(d is not None for d in self.diverged)
        if n_div:
            parts.append(f"{n_div} diverged")
        return "  ".join(parts)

    # -- using the trained networks -------------------------------------------
    def accuracy(self, data) -> np.ndarray:
        """Each network's accuracy on ``data``, as an array of ``K`` fractions."""
        return np.array([net.accuracy(data) for net in self.networks])

    def best(self, metric: str = "evaluation_accuracy") -> int:
        """Index of the network with the highest final ``metric`` among those that did not diverge (first if tied)."""
        scores = [(getattr(h, metric)[-1], k) for k, h in enumerate(self.histories)
                  if self.diverged[k] is None and getattr(h, metric)]
        if not scores:
            raise ValueError(f"No network has a recorded {metric!r}; monitor it in fit().")
        return max(scores, key=lambda t: (t[0], -t[1]))[1]  # the first network among equals


__all__ = ["Population"]
