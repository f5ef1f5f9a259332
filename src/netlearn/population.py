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
"""
from __future__ import annotations

import itertools
import time
from typing import Any, Callable, Sequence

import numpy as np

from . import engine
from .backend import rng as make_rng
from .optimizers import _check_positive
from .training import History, divergence_limit
from .validation import check_data, check_int

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
    ok = isinstance(mu, (int, float, np.floating, np.integer)) and not isinstance(mu, bool)
    if not ok or not (0.0 <= float(mu) < 1.0):
        raise ValueError(f"The 'mu' parameter must be a float in the range [0, 1). Got {mu!r} instead.")
    return float(mu)


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

    def bundles(self, kernels, kind: int, acts: np.ndarray):
        """The kernels' named bundles over this group's arrays: ``(PopIndex, PopLayers, PopRule)``."""
        return (kernels.PopIndex(*self.index),
                kernels.PopLayers(*self.flat, self.b0, self.A, self.D, self.Ws, self.bs, self.Vs, self.Vbs),
                kernels.PopRule(kind, acts, self.scales, self.etas, self.c2s, self.mus, self.active,
                                self.momentum, self.coef))

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

    def train(self, jit, perm, n, m, inputs, kind, acts) -> None:
        """One epoch over the batches ``perm[s:s+m]``, then the true weights written back (scales folded)."""
        index, layers, rule = self.bundles(jit, kind, acts)
        self.bid = jit.pop_train(inputs, index, layers, rule, perm, 0, n, m, self.bid)
        jit.pop_fold_scales(self.Ws, self.scales)


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
        from .network import Network

        lengths = [len(v) for v in (eta, lmbda, mu, seed)
                   if isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, (str, bytes))]
        k = max(lengths) if lengths else 1
        etas = [_check_positive("eta", v) for v in _per_network("eta", eta, k)]
        lmbdas = [_check_positive("lmbda", v, allow_zero=True) for v in _per_network("lmbda", lmbda, k)]
        mus = [_check_mu(v) for v in _per_network("mu", mu, k)]
        seeds = _per_network("seed", seed, k)
        self.networks = [Network(sizes, activation=activation, cost=cost, init=init, output=output, seed=s,
                                 dtype=dtype) for s in seeds]
        try:
            self._dense, self._acts, self._kind = engine.describe(self.networks[0])
        except engine.EngineUnavailable as exc:
            raise ValueError(f"Population cannot train this architecture: {exc}.") from None
        self.configs = [{"eta": e, "lmbda": lm, "mu": m, "seed": s} for e, lm, m, s in zip(etas, lmbdas, mus, seeds)]
        self.diverged: list[int | None] = [None] * k
        self.histories: list[History] = [History() for _ in range(k)]

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

    # -- training -------------------------------------------------------------
    def fit(self, training_data, epochs: int, batch_size: int, evaluation_data=None, seed: int | None = None, *,
            monitor_evaluation_accuracy: bool | None = None, monitor_evaluation_cost: bool = False,
            monitor_training_cost: bool = False, monitor_training_accuracy: bool = False,
            verbose: bool = False, print_fn: Callable[[str], None] = print,
            threads: int | None = None) -> list[History]:
        """Train all networks for ``epochs`` epochs of mini-batch SGD; returns one History per network.

        ``seed`` seeds the one shuffle that all networks share.  Monitoring is
        as in :meth:`netlearn.Network.fit` (evaluation accuracy by default when
        ``evaluation_data`` is given), per network.  ``threads`` (default: the
        environment variable ``NETLEARN_THREADS``, else the available cores, at
        most 4) train disjoint groups of at least 16 networks at once; the
        numbers do not depend on it.
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
        K, L, dt = len(self), len(self._dense), net0.dtype
        # The network axis is padded to a multiple of 16 with frozen all-zero "ghost" networks, so the
        # inner loops over networks fill whole SIMD registers (9 networks cost no less than 16 otherwise).
        Kp = _pad(K)
        n, m = X.shape[0], min(batch_size, X.shape[0])
        T = np.ascontiguousarray(net0._targets(y))
        inputs = jit.PopInputs(*jit.sparse_rows(X, force=True), T)

        # Stacked parameters: W[l] (n_in, n_out, K), b[l] (n_out, K).
        Ws = tuple(_stack([self._layers(k)[l].W for k in range(K)], Kp) for l in range(L))
        bs = tuple(_stack([self._layers(k)[l].b for k in range(K)], Kp) for l in range(L))
        ghosts = [0.0] * (Kp - K)
        etas = np.array([c["eta"] for c in self.configs] + ghosts)
        c2s = np.array([c["lmbda"] / n for c in self.configs] + ghosts)
        mus = np.array([c["mu"] for c in self.configs] + ghosts)
        momentum = bool(np.any(mus > 0))
        Vs = tuple(np.zeros_like(W) if momentum else np.zeros((1, 1, 1), dt) for W in Ws)
        Vbs = tuple(np.zeros_like(b) if momentum else np.zeros((1, 1), dt) for b in bs)
        active = np.array([0.0 if d is not None else 1.0 for d in self.diverged] + ghosts)
        # The networks are independent: each thread trains its own group of whole blocks of 16 networks,
        # in arrays of its own (so no two threads write to one cache line), copied in and out each epoch.
        blocks = Kp // 16
        nthreads = min(engine.resolve_threads(threads, 25 * blocks), blocks)
        groups = [_Group(16 * (blocks * t // nthreads), 16 * (blocks * (t + 1) // nthreads), Ws, bs, Vs, Vbs,
                         etas, c2s, mus, momentum, m, [d.n_out for d in self._dense], X.shape[1], dt)
                  for t in range(nthreads)]
        acts = np.asarray(self._acts, np.int64)
        perm = np.arange(n)
        shuffle = make_rng(seed)
        self.histories = [History() for _ in range(K)]

        def train_group(t: int) -> None:
            groups[t].train(jit, perm, n, m, inputs, self._kind, acts)

        # Compile (or load) the kernels before the first epoch, saying so when that is slow and verbose.
        jit.compile_with_notice(lambda: groups[0].train(jit, perm[:0], 0, m, inputs, self._kind, acts),
                                "population kernels", verbose)
        for epoch in range(epochs):
            saved = [p.copy() for p in Ws + bs]
            shuffle.shuffle(perm)
            t0 = time.perf_counter()
            for g in groups:
                g.load(Ws, bs, Vs, Vbs, active)
            jit.run_parallel(train_group, nthreads)
            for g in groups:
                g.store(Ws, bs, Vs, Vbs)
            seconds = time.perf_counter() - t0
            self._end_epoch(epoch, seconds, Ws, bs, Vs, Vbs, saved, active, flags, (X, y), evaluation, n, jit)
            if verbose:
                print_fn(self._epoch_line(epoch, epochs))
            if not active[:K].any():
                break
        self._write_back(Ws, bs)
        return self.histories

    def _layers(self, k: int) -> list:
        from .layers.dense import Dense

        return [mod for mod in self.networks[k].modules if isinstance(mod, Dense)]

    def _activate(self, Z: np.ndarray, l: int, jit) -> None:
        """Layer ``l``'s activation in place on ``Z (c, J, K)``: the training kernels' own (one forward pass)."""
        jit.pop_activate(Z, Z.shape[0], self._acts[l])

    def _end_epoch(self, epoch, seconds, Ws, bs, Vs, Vbs, saved, active, flags, training, evaluation, n, jit):
        """Freeze networks that diverged (restoring their last good weights), then record the figures."""
        K = len(self)
        finite = np.ones(K, bool)
        for p in Ws + bs:
            finite &= (np.abs(p[..., :K]) <= divergence_limit(p.dtype)).reshape(-1, K).all(axis=0)
        figures: dict[str, np.ndarray] = {}
        for which, data in (("training", training), ("evaluation", evaluation)):
            if data is not None and (flags[f"{which}_cost"] or flags[f"{which}_accuracy"]):
                cost, acc = self._evaluate(data, Ws, bs, n, jit, want_cost=flags[f"{which}_cost"])
                if flags[f"{which}_cost"]:
                    figures[f"{which}_cost"] = cost
                    finite &= np.isfinite(cost)
                if flags[f"{which}_accuracy"]:
                    figures[f"{which}_accuracy"] = acc
        for k in np.flatnonzero(~finite & (active[:K] > 0)):
            for p, s in zip(Ws + bs, saved):
                p[..., k] = s[..., k]
            for v in Vs + Vbs:
                if v.shape[-1] == active.shape[0]:  # (without momentum, velocities are placeholders)
                    v[..., k] = 0
            active[k] = 0.0
            self.diverged[k] = epoch + 1
        for k in np.flatnonzero(active[:K] > 0):
            h = self.histories[k]
            h.epoch_seconds.append(seconds)
            h.eta.append(self.configs[k]["eta"])
            for name, values in figures.items():
                getattr(h, name).append(float(values[k]))

    def _evaluate(self, data, Ws, bs, n: int, jit, want_cost: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per-network total cost (with the L2 term) and accuracy on ``data``."""
        X, y = data
        K, Kp, L = len(self), Ws[0].shape[-1], len(Ws)
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
            for k, cfg in enumerate(self.configs):
                if cfg["lmbda"]:
                    cost[k] += 0.5 * cfg["lmbda"] / n * sum(float(np.vdot(W[..., k], W[..., k])) for W in Ws)
        return cost, correct[:K] / X.shape[0]

    def _write_back(self, Ws, bs) -> None:
        for k in range(len(self)):
            for l, d in enumerate(self._layers(k)):
                d.W[...] = Ws[l][..., k]
                d.b[...] = bs[l][..., k]

    def _epoch_line(self, epoch: int, epochs: int) -> str:
        alive = [k for k in range(len(self)) if self.diverged[k] is None]
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
