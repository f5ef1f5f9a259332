"""Population-based training ("Population Based Training of Neural Networks", Jaderberg et al., 2017).

K members train in lockstep as one :class:`netlearn.Population`.  Every
``interval`` epochs:

- **exploit**: each member of the bottom quarter (by its latest validation
  accuracy; diverged members are the worst) copies the weights, biases and
  velocities of a member of the top quarter, bit for bit;
- **explore**: it perturbs the copied eta, lmbda and mu (each multiplied by
  0.8 or 1.2 and kept inside its range, or, with probability 0.25, drawn
  afresh from the space).

Hyper-parameters thus become schedules that the population discovers.  Each
member is a trial of :mod:`netlearn.search.summary`'s JSON with a
``"lineage": [{"epoch", "from", "params"}]`` (one entry per exploit, ``from``
the member copied) and a ``"schedule"``: the initialization seed and the
``eta``/``lmbda``/``mu`` of every epoch along the member's ancestry, which
:func:`replay` trains again with one Network to the same weights.  A trial's
value is its final validation accuracy (the network PBT hands over).  Optuna
has no PBT; this needs no Optuna.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import optimizers
from ..backend import rng as make_rng
from ..network import Network
from ..population import Population
from ..training import Callback
from .space import PER_MEMBER, Param, Space
from .storage import SearchError
from .study import Settings

#: Perturbation factors and the probability of drawing a value afresh instead.
FACTORS = (0.8, 1.2)
RESAMPLE = 0.25


def sample(param: Param, g: np.random.Generator) -> Any:
    """One value of ``param`` drawn from its range (uniform or log-uniform) or its list."""
    if param.kind == "categorical":
        return param.choices[int(g.integers(len(param.choices)))]
    lo, hi = float(param.low), float(param.high)
    v = float(np.exp(g.uniform(np.log(lo), np.log(hi)))) if param.log else float(g.uniform(lo, hi))
    return int(round(v)) if param.kind == "int" else v


def perturb(param: Param, value: Any, g: np.random.Generator) -> Any:
    """Explore: a fresh draw with probability 0.25, else ``value`` times 0.8 or 1.2 kept inside the range.

    A parameter given as a list of alternatives is only ever drawn afresh.
    """
    if param.kind == "categorical" or g.random() < RESAMPLE:
        return sample(param, g) if param.kind != "categorical" or g.random() < RESAMPLE else value
    v = min(max(value * FACTORS[int(g.integers(2))], float(param.low)), float(param.high))
    return int(round(v)) if param.kind == "int" else v


def pbt(training, evaluation, settings: Settings, interval: int, *, threads: int | None = None,
        verbose: bool = False, print_fn=print) -> tuple[dict, Network]:
    """Run PBT with ``settings.population`` members for ``settings.epochs`` epochs; returns (summary, best network)."""
    space = Space(settings.space)
    structural = [p.name for p in space.params if p.name not in PER_MEMBER]
    if structural:
        raise SearchError(f"--strategy pbt searches eta, lmbda and mu only; fix "
                          f"{', '.join('--' + n.replace('_', '-') for n in structural)} to one value.")
    if settings.optimizer not in ("sgd", "momentum") or settings.dropout:
        raise SearchError("--strategy pbt trains a Population: use --optimizer sgd or momentum and no --dropout.")
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise SearchError(f"--interval must be a whole number >= 1, got {interval!r}.")
    K, E = settings.population, settings.epochs
    g = make_rng(settings.seed)
    fixed = {"eta": settings.eta, "lmbda": settings.lmbda, "mu": settings.mu}
    params = [{**fixed, **{p.name: sample(p, g) for p in space.params}} for _ in range(K)]
    initial = [{p.name: params[k][p.name] for p in space.params} for k in range(K)]
    seeds = [(settings.seed * 1_000_003 + k) % (2 ** 31) for k in range(K)]
    lineage: list[list[dict]] = [[] for _ in range(K)]
    # The ancestry of each member's current weights: the root's seed and the settings of every epoch.
    paths = [{"seed": seeds[k], "epochs": []} for k in range(K)]
    curves: list[list[float]] = [[] for _ in range(K)]
    act = settings.activation[0] if len(settings.activation) == 1 else settings.activation
    try:
        pop = Population(settings.layers, [p["eta"] for p in params], [p["lmbda"] for p in params],
                         [p["mu"] for p in params], seeds, activation=act, cost=settings.cost, init=settings.init,
                         output=settings.output)
    except ValueError as exc:
        raise SearchError(str(exc)) from None
    names = list(space.params)

    def on_epoch(p: Population, epoch: int) -> None:
        for k in range(K):
            acc = p.histories[k].evaluation_accuracy
            curves[k].append(acc[-1] if acc and p.diverged[k] is None else float("nan"))
            paths[k]["epochs"].append({n: params[k][n] for n in ("eta", "lmbda", "mu")})
        if epoch % interval or epoch >= E:
            return
        score = [c[-1] if np.isfinite(c[-1]) else -1.0 for c in curves]
        order = sorted(range(K), key=lambda k: (score[k], -k))  # worst first; among equals the later one
        q = max(1, K // 4)
        bottom, top = order[:q], order[-q:]
        for b in bottom:
            if b in top:
                continue
            src = top[int(g.integers(len(top)))]
            p.copy(src, b)
            new = dict(params[src])
            for prm in names:
                new[prm.name] = perturb(prm, params[src][prm.name], g)
            p.set(b, eta=new["eta"], lmbda=new["lmbda"], mu=new["mu"])
            params[b] = new
            paths[b] = {"seed": paths[src]["seed"], "epochs": [dict(e) for e in paths[src]["epochs"]]}
            lineage[b].append({"epoch": epoch, "from": src, "params": {n.name: new[n.name] for n in names}})
            if verbose:
                print_fn(f"epoch {epoch}: member {b} ({100 * score[b]:.2f}%) copies member {src} "
                         f"({100 * score[src]:.2f}%): " + " ".join(f"{n.name}={new[n.name]:.4g}" for n in names))

    t0 = time.perf_counter()
    pop.fit(training, E, settings.batch_size, evaluation_data=evaluation, seed=settings.seed, threads=threads,
            callbacks=[on_epoch], verbose=verbose, print_fn=print_fn)
    seconds = time.perf_counter() - t0
    trials = []
    for k in range(K):
        finite = [a for a in curves[k] if np.isfinite(a)]
        trials.append({"number": k, "state": "COMPLETE", "params": initial[k],
                       "value": finite[-1] if finite else None, "epochs": len(finite),
                       "history": {"evaluation_accuracy": finite}, "lineage": lineage[k],
                       "schedule": paths[k], **({"diverged": pop.diverged[k]} if pop.diverged[k] else {})})
    done = [t for t in trials if t["value"] is not None]
    best = max(done, key=lambda t: (t["value"], -t["number"]), default=None)
    summary = {"study": "pbt", "sampler": "pbt", "interval": interval,
               "best": None if best is None else {"number": best["number"], "params": best["params"],
                                                  "value": best["value"]},
               "trials": trials, "network_epochs": sum(t["epochs"] for t in trials), "seconds": seconds}
    return summary, (pop.networks[best["number"]] if best else None)


class _Schedule(Callback):
    """Set eta, lmbda and mu of the replay's optimizer links before each epoch."""

    def __init__(self, epochs: list[dict], n: int) -> None:
        self.epochs, self.n = epochs, n

    def on_train_begin(self, state) -> None:
        # fit trains a copy of the optimizer it is given: set the links of the one it runs.
        links = state.optimizer.transform.links
        self.decay = next(link for link in links if isinstance(link, optimizers.add_decayed_weights))
        self.lr = next(link for link in links if isinstance(link, optimizers.scale_by_learning_rate))
        self.trace = next(link for link in links if isinstance(link, optimizers.trace))

    def on_epoch_begin(self, state) -> None:
        e = self.epochs[state.epoch]
        self.decay.c, self.lr.eta, self.trace.mu = e["lmbda"] / self.n, e["eta"], e["mu"]
        state.optimizer.eta = e["eta"]


def replay(trial: dict, training, evaluation, settings: Settings) -> Network:
    """Train one Network along ``trial``'s schedule (its ancestry's seed and per-epoch settings).

    On the same mini-batches (the shuffle seed is ``settings.seed``) it ends
    with the member's weights, within float32 rounding.
    """
    path = trial["schedule"]
    act = settings.activation[0] if len(settings.activation) == 1 else settings.activation
    net = Network(settings.layers, activation=act, cost=settings.cost, init=settings.init, output=settings.output,
                  seed=path["seed"])
    first = path["epochs"][0]
    n = training[0].shape[0]
    decay = optimizers.add_decayed_weights(first["lmbda"] / n)
    lr = optimizers.scale_by_learning_rate(first["eta"])
    tr = optimizers.trace(first["mu"])
    opt = optimizers.Optimizer(optimizers.chain(decay, lr, tr), "pbt-replay")
    net.fit(training, len(path["epochs"]), settings.batch_size, first["eta"], evaluation_data=evaluation,
            seed=settings.seed, optimizer=opt, engine="numpy",
            callbacks=[_Schedule(path["epochs"], n)])
    return net


__all__ = ["pbt", "replay", "sample", "perturb"]
