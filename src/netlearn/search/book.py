"""The book's hyper-parameter strategy, carried out step by step (``netlearn tune``).

Chapter 3 of the book ends with a recipe a person follows by hand; this
module follows it for a given architecture and data, and says at each step
what it tried, what it saw and what it decided:

1. **Learning-rate threshold.**  Short runs with ``lmbda = 0`` over eta by
   factors of ten from 0.01 (0.01, 0.1, 1, 10, 100; or down from 0.01 when
   even that fails), watching the training cost in the first few epochs,
   until the cost oscillates or increases.  Refine within that order of
   magnitude (1.5, 2, 3, ... times the last eta that worked): the threshold
   is the largest eta at which the cost still decreases in every one of the
   first few epochs.  Use eta a factor of two below it, since eta must serve
   many epochs, not a few.
2. **Epochs** by early stopping: train at that eta until the validation
   accuracy has not improved for 10 epochs (no-improvement-in-10); the
   number of epochs is the best one.
3. **Lambda.**  0, then 1, then factors of ten up or down while validation
   accuracy improves; refine within the best order of magnitude (0.3 to 3
   times it) and, in the same runs, re-check eta (half, same, double).
4. **A learning-rate schedule**: halve eta each time validation accuracy
   meets no-improvement-in-10, until it has fallen to eta/128; kept if it
   beats the fixed eta.
5. **Mini-batch size** by wall-clock time: the size whose validation
   accuracy rises fastest per second of training (the book notes this is
   nearly independent of the other choices).  The size the other choices
   were made with stays unless another beats it by more than the validation
   accuracy's standard error.

The final network has the chosen settings; when step 5 keeps the mini-batch
size, the run of step 4 (schedule) or step 3 (fixed eta) already is that
network -- same settings, same seed -- and is not trained twice.  It is
evaluated on the validation and the test data.

The candidates of each step train together as one
:class:`netlearn.Population` (the same initial weights and the same
shuffles, so the runs differ only in the hyper-parameter being chosen);
architectures the population cannot train fall back to one
:class:`netlearn.Network` per candidate.  The threshold runs use the first
``threshold_images`` training images (5,000): an epoch of a few hundred
steps shows an eta that overshoots within the first epoch, which an epoch of
5,000 steps on all the data averages away.

The decision rules are the small pure functions below
(:func:`cost_verdict`, :func:`threshold`, :func:`find_threshold`, :func:`early_stopping_epoch`,
:func:`lambda_walk`, :func:`best_candidate`, :func:`accuracy_at`,
:func:`choose_batch_size`), so they can be tested on made-up curves.
From Python::

    >>> from netlearn.data import load_mnist
    >>> from netlearn.search.book import tune
    >>> training, validation, test = load_mnist()
    >>> result = tune(training, validation, test, sizes=[784, 30, 10])
    >>> result.eta, result.lmbda, result.final["validation_accuracy"]
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..callbacks import EarlyStopping
from ..engine import background
from ..network import Network
from ..population import Population
from ..schedules import HalveOnPlateau
from ..training import Callback, DivergenceError, History, TrainingState, expects_compiled
from ..plot import BOOK_BLUE, BOOK_ORANGE, save_figure

#: The coarse search: eta by factors of ten from 0.01 up (and below 0.01 when even 0.01 fails).
COARSE_UP = (0.01, 0.1, 1.0, 10.0, 100.0)
COARSE_DOWN = (1e-3, 1e-4, 1e-5, 1e-6)
#: Refinement within an order of magnitude: these multiples of the last eta that worked.
REFINE = (1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
#: Lambda: 0, 1, then factors of ten either way.
LAMBDAS = (0.0, 1.0, 10.0, 100.0, 1000.0, 0.1, 0.01, 0.001)
#: Refinement of lambda within its order of magnitude, and the re-check of eta.
LAMBDA_REFINE = (0.3, 0.5, 1.0, 2.0, 3.0)
ETA_RECHECK = (0.5, 1.0, 2.0)
BATCH_SIZES = (1, 5, 10, 20, 50, 100)


# ---------------------------------------------------------------------------
# The decision rules (pure functions)
# ---------------------------------------------------------------------------
def cost_verdict(costs: Sequence[float], window: int = 3) -> str:
    """What the training cost did in its first ``window`` epochs: ``fell``, ``oscillated``, ``rose`` or ``diverged``.

    ``costs[0]`` is the cost before training and ``costs[e]`` after epoch
    ``e``.  The cost *fell* when it decreased in every one of the first
    ``window`` epochs; it *rose* when the first epoch already increased it;
    it *oscillated* when it went down and then up again; it *diverged* when
    it became infinite or NaN, or the run stopped before ``window`` epochs
    (a population freezes a network whose weights overflow).
    """
    c = [float(v) for v in costs[:window + 1]]
    if len(c) < window + 1 or not all(math.isfinite(v) for v in c):
        return "diverged"
    if all(b < a for a, b in zip(c, c[1:])):
        return "fell"
    return "rose" if c[1] >= c[0] else "oscillated"


def threshold(etas: Sequence[float], verdicts: Sequence[str]) -> float | None:
    """The largest eta, scanning upwards, before the first whose cost did not fall (None if the smallest failed).

    ``etas`` need not be sorted; the scan goes from the smallest.  This is
    the book's threshold: past it, the cost no longer decreases in the first
    few epochs.
    """
    best = None
    for eta, v in sorted(zip(etas, verdicts)):
        if v != "fell":
            break
        best = eta
    return best


def first_failure(etas: Sequence[float], verdicts: Sequence[str]) -> float | None:
    """The smallest eta whose cost did not fall (None when all fell)."""
    fails = [e for e, v in zip(etas, verdicts) if v != "fell"]
    return min(fails) if fails else None


def early_stopping_epoch(accuracies: Sequence[float], patience: int = 10) -> tuple[int, int | None]:
    """``(best_epoch, stop_epoch)`` of the no-improvement-in-``patience`` rule, epochs 1-based.

    ``best_epoch`` is the epoch of the highest accuracy (the first, if tied);
    ``stop_epoch`` the epoch at which ``patience`` epochs in a row have
    brought no improvement, or None if the curve never met the rule.
    """
    best, best_epoch = -math.inf, 0
    for e, a in enumerate(accuracies, start=1):
        if a > best:
            best, best_epoch = a, e
        elif e - best_epoch >= patience:
            return best_epoch, e
    return best_epoch, None


def lambda_walk(scores: dict[float, float], start: float = 1.0) -> tuple[float, list[float]]:
    """The book's walk over lambda: 0, then ``start``, then factors of ten up or down while the score improves.

    ``scores`` maps each lambda tried to its validation accuracy.  From 0 the
    walk tries ``start``; if ``start`` beats 0 it tries ``10 start``: if that
    is better it keeps going up, otherwise it tries ``start / 10`` and goes
    down while that improves.  If ``start`` does not beat 0 it goes down from
    ``start`` and keeps a lambda only where it beats 0.  Returns the chosen
    lambda and the path walked (the values compared, in order).
    """
    def key(lm: float) -> float | None:
        """The lambda of ``scores`` equal to ``lm`` up to rounding (0.1 * 0.1 is not 0.01), if finite."""
        for k in scores:
            if math.isclose(k, lm, rel_tol=1e-9, abs_tol=0.0) and math.isfinite(scores[k]):
                return k
        return None

    path = [0.0]
    best = key(0.0)
    if key(start) is None:
        return (best if best is not None else start), path
    start = key(start)

    def walk(factor: float, current: float | None) -> float | None:
        lm = key(start * factor)
        while lm is not None:
            path.append(lm)
            if current is not None and scores[lm] <= scores[current]:
                break
            current = lm
            lm = key(lm * factor)
        return current

    path.append(start)
    if best is None or scores[start] > scores[best]:
        up = key(start * 10)
        if up is not None and scores[up] > scores[start]:
            return walk(10.0, start), path
        if up is not None:
            path.append(up)
        return walk(0.1, start), path
    chosen = walk(0.1, best)
    return (chosen if chosen is not None else start), path


def best_candidate(scores: Sequence[float]) -> int:
    """Index of the highest finite score (the first among equals); ``-1`` when none is finite."""
    best, idx = -math.inf, -1
    for i, s in enumerate(scores):
        if s is not None and math.isfinite(s) and s > best:
            best, idx = s, i
    return idx


def accuracy_at(seconds: Sequence[float], accuracies: Sequence[float], t: float, start: float = 0.0) -> float:
    """Accuracy reached after ``t`` seconds of training, read off the curve by linear interpolation.

    ``seconds[e]`` is the training time of epoch ``e + 1`` and
    ``accuracies[e]`` the accuracy after it; the curve starts at
    ``(0, start)`` (the untrained accuracy).  Past the last epoch the last
    accuracy holds.
    """
    ts, accs = [0.0], [float(start)]
    for s, a in zip(seconds, accuracies):
        ts.append(ts[-1] + float(s))
        accs.append(float(a))
    return float(np.interp(t, ts, accs))


def choose_batch_size(curves: dict[int, tuple[Sequence[float], Sequence[float]]], t: float,
                      start: float = 0.0, incumbent: int | None = None,
                      margin: float = 0.0) -> tuple[int, dict[int, float]]:
    """The mini-batch size whose validation accuracy gains most per second, measured at ``t`` seconds.

    ``curves`` maps each size to ``(epoch_seconds, accuracies)``.  Each is read
    at the same wall-clock time ``t`` (see :func:`accuracy_at`); the rate is
    ``(accuracy(t) - start) / t``.  The best size (the smaller one among
    equals) replaces ``incumbent`` -- the size the other hyper-parameters
    were chosen with -- only if its accuracy at ``t`` is higher by more than
    ``margin`` (e.g. the validation accuracy's standard error: smaller
    differences are noise).  Returns the chosen size and each size's rate.
    """
    rates = {m: (accuracy_at(s, a, t, start) - start) / t for m, (s, a) in curves.items()}
    best = max(sorted(rates), key=lambda m: rates[m])
    if incumbent in rates and (rates[best] - rates[incumbent]) * t <= margin:
        best = incumbent
    return best, rates


def standard_error(accuracy: float, n: int) -> float:
    """The standard error ``sqrt(p (1 - p) / n)`` of an accuracy ``p`` measured on ``n`` examples."""
    p = min(max(float(accuracy), 0.0), 1.0)
    return math.sqrt(p * (1 - p) / max(n, 1))


def _fmt(v: float) -> str:
    return f"{v:g}"


def _join(values: Sequence[Any]) -> str:
    v = [str(x) for x in values]
    return v[0] if len(v) == 1 else ", ".join(v[:-1]) + " and " + v[-1]


# ---------------------------------------------------------------------------
# Training the candidates of a step
# ---------------------------------------------------------------------------
@dataclass
class _Setup:
    """What every run of the strategy shares: the architecture, the data, seed, batch size and threads."""

    sizes: list[int]
    network: dict
    training: tuple
    validation: tuple
    seed: int
    batch_size: int
    threads: int | None
    log: Callable[[str], None]
    use_population: bool = True
    announce: bool = False  # report a slow first compile on standard error (the command, unless --quiet)

    def network_for(self, seed: int | None = None) -> Network:
        return Network(self.sizes, seed=self.seed if seed is None else seed, **self.network)

    def together(self, etas: Sequence[float], lmbdas: Sequence[float], epochs: int, training=None,
                 evaluation: bool = True,
                 training_cost: bool = False) -> tuple[list[History], list[Network], list[bool], str]:
        """Train one candidate per (eta, lmbda) from the same initial weights and shuffles.

        Returns their Histories (one entry per trained epoch; a candidate that
        diverged stops early), their trained networks, which of them diverged
        and how they were trained ("one population of K" or "K networks one
        after another").
        """
        training = self.training if training is None else training
        flags = dict(monitor_training_cost=training_cost, monitor_evaluation_accuracy=evaluation)
        evaluation_data = self.validation if evaluation else None
        if self.use_population:
            try:
                pop = Population(self.sizes, eta=list(etas), lmbda=list(lmbdas), seed=[self.seed] * len(etas),
                                 **self.network)
            except ValueError:
                self.use_population = False  # an architecture the population's kernels do not train
            else:
                with np.errstate(over="ignore", invalid="ignore"):  # divergence freezes a member; it is reported
                    hs = pop.fit(training, epochs, self.batch_size, evaluation_data, seed=self.seed,
                                 threads=self.threads, announce=self.announce, **flags)
                return hs, pop.networks, [d is not None for d in pop.diverged], f"one population of {len(etas)}"
        hs, nets, diverged = [], [], []
        for eta, lm in zip(etas, lmbdas):
            net = self.network_for()
            try:
                h = net.fit(training, epochs, self.batch_size, eta, lmbda=lm, evaluation_data=evaluation_data,
                            seed=self.seed, threads=self.threads, announce=self.announce, **flags)
                diverged.append(False)
            except DivergenceError:
                h = History()  # diverged: nothing usable recorded
                diverged.append(True)
            hs.append(h)
            nets.append(net)
        return hs, nets, diverged, f"{len(etas)} networks one after another"


class _TimeBudget(Callback):
    """Stop once the epochs' training time has reached ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_epoch_end(self, state: TrainingState) -> None:
        if sum(state.history.epoch_seconds) >= self.seconds:
            state.stop = True
            state.stop_reason = f"{self.seconds:g} s of training"


@dataclass
class Step:
    """One step of the strategy: what it tried, what it saw and what it decided (in the book's terms)."""

    name: str
    tried: list = field(default_factory=list)
    observed: list = field(default_factory=list)
    decision: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "tried": self.tried, "observed": self.observed, "decision": self.decision,
                "seconds": round(self.seconds, 3)}


@dataclass
class TuneResult:
    """The chosen hyper-parameters, the steps that chose them, and the final network's accuracies."""

    eta_threshold: float
    eta: float
    lmbda: float
    epochs: int
    batch_size: int
    schedule: str | None
    steps: list[Step]
    final: dict
    network: Network | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """The JSON document of ``netlearn tune --json`` (accuracies as fractions in [0, 1])."""
        return {"eta_threshold": self.eta_threshold, "eta": self.eta, "lmbda": self.lmbda, "epochs": self.epochs,
                "batch_size": self.batch_size, "schedule": self.schedule,
                "steps": [s.to_dict() for s in self.steps], "final": self.final, "seconds": round(self.seconds, 3)}


def _best(h: History, diverged: bool = False) -> float:
    """A candidate's best validation accuracy; ``-inf`` for one that diverged (never chosen)."""
    return max(h.evaluation_accuracy) if h.evaluation_accuracy and not diverged else -math.inf


def _pct(a: float) -> str:
    return f"{100 * a:.2f}%" if math.isfinite(a) else "diverged"


# ---------------------------------------------------------------------------
# The five steps
# ---------------------------------------------------------------------------
def find_threshold(run: Callable[[list[float], str], list[Sequence[float]]], eta_start: float = 0.01,
                   window: int = 3) -> tuple[float, list[dict], str]:
    """The book's threshold search, driven by ``run(etas, stage)``, which returns each eta's cost curve.

    A curve is ``[cost before training, after epoch 1, ...]``.  The search
    tries ``eta_start`` and factors of ten above it (``stage="coarse"``); if
    even ``eta_start`` fails it goes down by factors of ten (``"down"``) until
    one falls.  With the last eta that fell, ``low``, and the first above it
    that did not, ``high``, it refines with ``low`` times 1.5, 2, 3, ...
    below ``high`` (``"refine"``).  Returns the threshold, the rounds
    (``{"stage", "eta", "verdict"}`` each) and the decision in words.
    """
    rounds: list[dict] = []

    def trial(etas: list[float], stage: str) -> list[str]:
        verdicts = [cost_verdict(c, window) for c in run(etas, stage)]
        rounds.append({"stage": stage, "eta": etas, "verdict": verdicts})
        return verdicts

    start = eta_start
    etas_all = [start * 10 ** k for k in range(len(COARSE_UP))]
    verdicts_all = trial(etas_all, "coarse")
    low = threshold(etas_all, verdicts_all)
    while low is None:  # even the smallest failed: go down by factors of ten
        if start < 1e-7:
            raise ValueError(f"The training cost does not fall in the first epochs even at eta = {start:g}: "
                             "check the data (inputs scaled to [0, 1]?) and the architecture.")
        down = [start * 10.0 ** -k for k in range(1, len(COARSE_DOWN) + 1)]
        etas_all += down
        verdicts_all += trial(down, "down")
        low = threshold(etas_all, verdicts_all)
        start = down[-1]
    above = [(e, v) for e, v in zip(etas_all, verdicts_all) if e > low]
    high = first_failure([e for e, _ in above], [v for _, v in above])
    verdict_of = dict(zip(etas_all, verdicts_all))
    words = f"cost fell at {_join([_fmt(e) for e in sorted(etas_all) if e <= low and verdict_of[e] == 'fell'])}"
    if high is None:
        return low, rounds, f"{words} and every eta tried: threshold taken as {_fmt(low)}, the largest tried"
    words += f" and {verdict_of[high]} at {_fmt(high)}"
    refine = [low * r for r in REFINE if low * r < high]
    verdicts = trial(refine, "refine")
    found = threshold([low, *refine], ["fell", *verdicts])
    fail = first_failure(refine, verdicts)
    if fail is None:
        words += f"; refined: still falls up to {_fmt(refine[-1])}"
    elif found == low:
        words += f"; refined: already {verdicts[refine.index(fail)]} at {_fmt(fail)}"
    else:
        words += f"; refined: still falls at {_fmt(found)}, {verdicts[refine.index(fail)]} at {_fmt(fail)}"
    return found, rounds, words


def _step_threshold(s: _Setup, eta_start: float, images: int, window: int) -> tuple[Step, float]:
    step = Step("learning-rate threshold")
    t0 = time.perf_counter()
    X, y = s.training
    sub = (X[:images], y[:images])
    c0 = s.network_for().total_cost(sub)
    s.log(f"step 1, learning-rate threshold: lmbda = 0, the training cost on the first {sub[0].shape[0]} images "
          f"in the first {window} epochs (before training: {c0:.3f})")

    def run(etas: list[float], stage: str) -> list[list[float]]:
        hs, _, _, how = s.together(etas, [0.0] * len(etas), window, training=sub, evaluation=False,
                                   training_cost=True)  # a diverged member's curve stops short: "diverged"
        curves = [[c0, *h.training_cost] for h in hs]
        verdicts = [cost_verdict(c, window) for c in curves]
        step.tried.append({"stage": stage, "eta": list(etas)})
        step.observed += [{"stage": stage, "eta": e, "training_cost": c, "verdict": v}
                          for e, c, v in zip(etas, curves, verdicts)]
        s.log(f"  tried eta {_join([_fmt(e) for e in etas])} ({how})")
        s.log("  saw   cost " + "; ".join(f"{v} at {_join([_fmt(e) for e, w in zip(etas, verdicts) if w == v])}"
                                         for v in dict.fromkeys(verdicts)))
        return curves

    found, _, words = find_threshold(run, eta_start, window)
    eta = found / 2
    step.decision = f"{words}: threshold {_fmt(found)}, using eta = {_fmt(eta)} (a factor of two below it)"
    step.seconds = time.perf_counter() - t0
    s.log(f"  decided {step.decision}")
    return step, found


def _step_epochs(s: _Setup, eta: float, patience: int, max_epochs: int) -> tuple[Step, int]:
    step = Step("epochs")
    t0 = time.perf_counter()
    s.log(f"step 2, epochs: early stopping at eta = {_fmt(eta)}, lmbda = 0, no-improvement-in-{patience} on "
          f"validation accuracy (at most {max_epochs} epochs)")
    net = s.network_for()
    try:
        h = net.fit(s.training, max_epochs, s.batch_size, eta, evaluation_data=s.validation, seed=s.seed,
                    callbacks=[EarlyStopping(patience)], threads=s.threads, announce=s.announce)
        acc = h.evaluation_accuracy
    except DivergenceError:
        acc = []
    best, stop = early_stopping_epoch(acc, patience)
    step.tried.append({"eta": eta, "lmbda": 0.0, "patience": patience, "max_epochs": max_epochs})
    step.observed.append({"evaluation_accuracy": list(acc), "best_epoch": best, "stop_epoch": stop})
    epochs = max(best, 1)
    if stop is None:
        seen = f"validation accuracy still improving within {len(acc)} epochs (best {_pct(max(acc, default=-math.inf))} " \
               f"at epoch {best})"
    else:
        seen = (f"validation accuracy peaked at {_pct(acc[best - 1])} in epoch {best}, then {patience} epochs "
                f"without improvement (stopped at {stop})")
    step.decision = f"{seen}: {epochs} epochs"
    step.seconds = time.perf_counter() - t0
    s.log(f"  saw   {seen}")
    s.log(f"  decided {epochs} epochs")
    return step, epochs


def _step_lambda(s: _Setup, eta: float, epochs: int, lmbda_start: float,
                 eta_threshold: float) -> tuple[Step, float, float, float, Network, History]:
    step = Step("lambda")
    t0 = time.perf_counter()
    s.log(f"step 3, lambda: 0, then {_fmt(lmbda_start)}, then factors of ten, at eta = {_fmt(eta)}, {epochs} epochs, "
          "best validation accuracy")
    lambdas = sorted({0.0, *(lmbda_start * v for v in LAMBDAS if v)})
    hs, _, diverged, how = s.together([eta] * len(lambdas), lambdas, epochs)
    scores = {lm: _best(h, d) for lm, h, d in zip(lambdas, hs, diverged)}
    step.tried.append({"stage": "orders of magnitude", "eta": eta, "lmbda": lambdas, "epochs": epochs})
    step.observed += [{"stage": "orders of magnitude", "eta": eta, "lmbda": lm,
                       "evaluation_accuracy": list(h.evaluation_accuracy), "best": scores[lm]}
                      for lm, h in zip(lambdas, hs)]
    order, path = lambda_walk(scores, lmbda_start)
    s.log(f"  tried lmbda {_join([_fmt(v) for v in lambdas])} ({how})")
    s.log("  saw   " + ", ".join(f"{_fmt(lm)}: {_pct(scores[lm])}" for lm in path) + f" -> order of magnitude "
          f"{_fmt(order)}")
    refine = [order * r for r in LAMBDA_REFINE] if order else [0.0]
    etas = sorted({min(eta * r, eta_threshold) for r in ETA_RECHECK})
    grid = [(e, lm) for e in etas for lm in refine]
    hs, nets, diverged, how = s.together([e for e, _ in grid], [lm for _, lm in grid], epochs)
    best_scores = [_best(h, d) for h, d in zip(hs, diverged)]
    k = best_candidate(best_scores)
    eta_new, lmbda = grid[k]
    step.tried.append({"stage": "refine, re-check eta", "eta": etas, "lmbda": refine, "epochs": epochs})
    step.observed += [{"stage": "refine, re-check eta", "eta": e, "lmbda": lm,
                       "evaluation_accuracy": list(h.evaluation_accuracy), "best": b}
                      for (e, lm), h, b in zip(grid, hs, best_scores)]
    s.log(f"  refined lmbda {_join([_fmt(v) for v in refine])} x eta {_join([_fmt(v) for v in etas])} ({how})")
    walked = ", ".join(f"{_fmt(lm)}: {_pct(scores[lm])}" for lm in path)
    eta_text = (f"eta {_fmt(eta)} confirmed" if eta_new == eta else f"eta re-checked: {_fmt(eta_new)} beats "
                f"{_fmt(eta)}")
    step.decision = (f"walked {walked}: order of magnitude {_fmt(order)}; refined: lmbda {_fmt(lmbda)} "
                     f"best with {_pct(best_scores[k])}; {eta_text}")
    step.seconds = time.perf_counter() - t0
    s.log(f"  decided lmbda = {_fmt(lmbda)} ({_pct(best_scores[k])}); {eta_text}")
    return step, lmbda, eta_new, best_scores[k], nets[k], hs[k]


def _step_schedule(s: _Setup, eta: float, lmbda: float, epochs: int, fixed_best: float, patience: int,
                   max_epochs: int) -> tuple[Step, bool, int, Network, History]:
    step = Step("learning-rate schedule")
    t0 = time.perf_counter()
    s.log(f"step 4, learning-rate schedule: from eta = {_fmt(eta)}, halve at each no-improvement-in-{patience} "
          f"until eta/128 (at most {max_epochs} epochs), lmbda = {_fmt(lmbda)}")
    net = s.network_for()
    try:
        h = net.fit(s.training, max_epochs, s.batch_size, eta, lmbda=lmbda, evaluation_data=s.validation,
                    seed=s.seed, callbacks=[HalveOnPlateau(patience)], threads=s.threads, announce=s.announce)
        acc, etas = h.evaluation_accuracy, h.eta
    except DivergenceError:
        h = History()
        acc, etas = [], []
    best = max(acc, default=-math.inf)
    ended = 0 < len(acc) < max_epochs  # only the schedule stops a run early
    step.tried.append({"eta": eta, "lmbda": lmbda, "patience": patience, "min_factor": 128, "max_epochs": max_epochs})
    step.observed.append({"evaluation_accuracy": list(acc), "eta": list(etas), "best": best,
                          "fixed_eta_best": fixed_best, "fixed_eta_epochs": epochs})
    used = best > fixed_best
    halvings = sum(1 for a, b in zip(etas, etas[1:]) if b < a)
    seen = (f"{halvings} halvings in {len(acc)} epochs{' (eta reached eta/128)' if ended else ''}: best "
            f"{_pct(best)} against {_pct(fixed_best)} at fixed eta for {epochs} epochs")
    n = len(acc) if used else epochs
    step.decision = f"{seen}: {'use the schedule' if used else 'keep eta fixed'}, {n} epochs"
    step.seconds = time.perf_counter() - t0
    s.log(f"  saw   {seen}")
    s.log(f"  decided {'use the halving schedule' if used else 'keep eta fixed'}, {n} epochs")
    return step, used, n, net, h


def _step_batch(s: _Setup, eta: float, lmbda: float, sizes: Sequence[int], seconds: float,
                max_epochs: int) -> tuple[Step, int]:
    step = Step("mini-batch size")
    t0 = time.perf_counter()
    s.log(f"step 5, mini-batch size: {_join([str(m) for m in sizes])}, each trained for {seconds:g} s at eta = "
          f"{_fmt(eta)}, lmbda = {_fmt(lmbda)}; validation accuracy gained per second")
    acc0 = s.network_for().accuracy(s.validation)
    curves = {}
    for m in sizes:
        net = s.network_for()
        try:
            h = net.fit(s.training, max_epochs, m, eta, lmbda=lmbda, evaluation_data=s.validation, seed=s.seed,
                        callbacks=[_TimeBudget(seconds)], threads=s.threads, announce=s.announce)
            curves[m] = (list(h.epoch_seconds), list(h.evaluation_accuracy))
        except DivergenceError:
            continue  # this size cannot train at this eta; the others are compared
        step.observed.append({"batch_size": m, "epoch_seconds": curves[m][0], "evaluation_accuracy": curves[m][1],
                              "start_accuracy": acc0})
    step.tried.append({"batch_size": list(sizes), "seconds": seconds, "eta": eta, "lmbda": lmbda})
    if not curves:
        step.decision = f"every size diverged: keeping {s.batch_size}"
        return step, s.batch_size
    # The mini-batch size the other choices were made with stays unless another is better by more than noise.
    incumbent = s.batch_size if s.batch_size in curves else None
    margin = standard_error(accuracy_at(*curves[incumbent], seconds, acc0), s.validation[0].shape[0]) \
        if incumbent is not None else 0.0
    best, rates = choose_batch_size(curves, seconds, acc0, incumbent, margin)
    for o in step.observed:
        o["accuracy_at_budget"] = accuracy_at(o["epoch_seconds"], o["evaluation_accuracy"], seconds, acc0)
        o["points_per_second"] = 100 * rates[o["batch_size"]]
    seen = ", ".join(f"{m}: {100 * accuracy_at(*curves[m], seconds, acc0):.2f}% ({100 * rates[m]:.2f} points/s)"
                     for m in curves)
    kept = (f"; none beats {incumbent} by more than the validation accuracy's standard error "
            f"({100 * margin:.2f} points)" if best == incumbent and incumbent is not None else "")
    step.decision = f"after {seconds:g} s: {seen}{kept}: mini-batch size {best}"
    step.seconds = time.perf_counter() - t0
    s.log(f"  saw   {seen}")
    s.log(f"  decided mini-batch size {best}{kept}")
    return step, best


def _compile_ahead(s: _Setup, batch_sizes: Sequence[int], max_epochs: int) -> None:
    """Start compiling the kernels of the one-network runs of steps 2-5 in a second process, if they use them."""
    net = s.network_for()
    n = s.training[0].shape[0]
    if expects_compiled(net, n, max_epochs, 1.0, lmbda=1.0):  # (its runs are plain SGD with L2)
        background.ahead([(s.sizes, net.dtype, min(int(m), n), s.threads)
                          for m in dict.fromkeys([s.batch_size, *batch_sizes])])


def tune(training_data, validation_data, test_data=None, sizes: Sequence[int] = (784, 30, 10), *,
         activation: str | Sequence[str] = "sigmoid", cost: str = "cross-entropy", init: str = "default",
         output: str | None = None, seed: int = 0, batch_size: int = 10, eta_start: float = 0.01,
         lmbda_start: float = 1.0, patience: int = 10, max_epochs: int = 120, threshold_images: int = 5000,
         threshold_epochs: int = 3, batch_sizes: Sequence[int] = BATCH_SIZES, batch_seconds: float = 5.0,
         threads: int | None = None, log: Callable[[str], None] = print, announce: bool = False,
         compile_ahead: bool = True) -> TuneResult:
    """Carry out the book's strategy (see the module docstring) and train the final network.

    Parameters
    ----------
    training_data, validation_data, test_data : (X, y)
        Every decision is taken on the validation data; the test data (if
        given) is used once, on the final network.
    sizes, activation, cost, init, output
        The architecture, as for :class:`netlearn.Network`.
    seed : int
        Seeds every network's initialization and every shuffle (all the
        candidates of a step start from the same weights).
    batch_size : int
        The mini-batch size of steps 1-4 (step 5 then chooses the final one).
    eta_start, lmbda_start : float
        The first eta of the threshold search (the book's 0.01) and the first
        non-zero lambda (the book's 1).
    patience : int
        ``n`` of the no-improvement-in-n rules of steps 2 and 4 (10).
    max_epochs : int
        At most this many epochs in any run (early stopping, the schedule).
    threshold_images, threshold_epochs : int
        Step 1 watches the training cost on the first ``threshold_images``
        images in the first ``threshold_epochs`` epochs.
    batch_sizes, batch_seconds
        Step 5 trains each size for ``batch_seconds`` of wall-clock time.
    log : callable
        Receives each line of the explanation.
    announce : bool
        Report on standard error when the compiled engine's first compile
        is slow ("compiling", then its seconds): the steps compile up to three
        kernels (a population, one network at batch 10, one at 32 or more).
    compile_ahead : bool
        Compile the one-network kernels of steps 2-5 in a second process
        while the populations of steps 1 and 3 train
        (:mod:`netlearn.engine.background`): on two cores, the first run's
        compiles then overlap instead of adding up.  The results are the same.

    Returns a :class:`TuneResult` whose ``network`` is the final trained network.
    """
    t_start = time.perf_counter()
    net_kwargs = {"activation": activation, "cost": cost, "init": init, "output": output}
    s = _Setup([int(v) for v in sizes], net_kwargs, training_data, validation_data, seed, batch_size, threads, log,
               announce=announce)
    s.network_for()  # bad architecture options fail here, before any training
    if compile_ahead:
        _compile_ahead(s, batch_sizes, max_epochs)
    steps = []
    step, eta_threshold = _step_threshold(s, eta_start, threshold_images, threshold_epochs)
    steps.append(step)
    eta = eta_threshold / 2
    step, epochs = _step_epochs(s, eta, patience, max_epochs)
    steps.append(step)
    step, lmbda, eta, fixed_best, fixed_net, fixed_h = _step_lambda(s, eta, epochs, lmbda_start, eta_threshold)
    steps.append(step)
    step, use_schedule, epochs_final, sched_net, sched_h = _step_schedule(s, eta, lmbda, epochs, fixed_best,
                                                                          patience, max_epochs)
    steps.append(step)
    step, batch = _step_batch(s, eta, lmbda, batch_sizes, batch_seconds, max_epochs)
    steps.append(step)

    log(f"final: eta = {_fmt(eta)}, lmbda = {_fmt(lmbda)}, mini-batch size {batch}, "
        + (f"halving schedule (at most {max_epochs} epochs)" if use_schedule else f"{epochs_final} epochs"))
    t0 = time.perf_counter()
    if batch == batch_size:
        # The final settings are those of a run already made (same seed: same weights), so it is the final network.
        net, h = (sched_net, sched_h) if use_schedule else (fixed_net, fixed_h)
        made = "step 4's run" if use_schedule else "step 3's best run"
        log(f"  the final network is {made}: same settings, same seed")
    else:
        made = "trained anew"
        net = s.network_for()
        callbacks = [HalveOnPlateau(patience)] if use_schedule else []
        h = net.fit(training_data, max_epochs if use_schedule else epochs_final, batch, eta, lmbda=lmbda,
                    evaluation_data=validation_data, seed=seed, callbacks=callbacks, threads=threads,
                    announce=announce)
    final = {"validation_accuracy": net.accuracy(validation_data),
             "test_accuracy": net.accuracy(test_data) if test_data is not None else None,
             "epochs": h.epochs, "seconds": round(time.perf_counter() - t0, 3), "network": made,
             "evaluation_accuracy": list(h.evaluation_accuracy), "eta": list(h.eta)}
    log(f"  validation accuracy {_pct(final['validation_accuracy'])}"
        + (f", test accuracy {_pct(final['test_accuracy'])}" if test_data is not None else "")
        + f" after {h.epochs} epochs")
    return TuneResult(eta_threshold, eta, lmbda, h.epochs, batch, "halve" if use_schedule else None, steps, final,
                      net, time.perf_counter() - t_start)


# ---------------------------------------------------------------------------
# Figures: one per step
# ---------------------------------------------------------------------------
def plot_steps(result: dict, folder: str | os.PathLike) -> list[str]:
    """Draw one PNG per step of a :meth:`TuneResult.to_dict` document into ``folder``; return the paths."""
    from pathlib import Path

    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    steps = {s["name"]: s for s in result["steps"]}
    paths = []

    def finish(fig, ax, name: str, title: str) -> None:
        ax.grid(True, alpha=0.3)
        if ax.get_xlabel() == "Epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        handles = [h for a in fig.axes for h in a.get_legend_handles_labels()[0]]
        if handles:  # below the axes, clear of the curves (and of a second y axis)
            fig.legend(loc="outside lower center", fontsize="small", ncols=min(3, len(handles)))
        fig.suptitle(title)
        path = folder / name
        save_figure(fig, path)
        paths.append(str(path))

    cmap = colormaps["viridis"]
    if "learning-rate threshold" in steps:
        st = steps["learning-rate threshold"]
        fig = Figure(figsize=(10, 4.5), dpi=100, layout="constrained")
        axes = fig.subplots(1, 2)
        for ax, stages in zip(axes, (("coarse", "down"), ("refine",))):
            obs = sorted((o for o in st["observed"] if o["stage"] in stages), key=lambda o: o["eta"])
            for i, o in enumerate(obs):
                c = [v if math.isfinite(v) else float("nan") for v in o["training_cost"]]
                ax.plot(range(len(c)), c, "o-" if o["verdict"] == "fell" else "x--",
                        color=cmap(i / max(len(obs) - 1, 1)), label=f"$\\eta$ = {o['eta']:g} ({o['verdict']})")
            ax.set_yscale("log")
            ax.set_xlabel("Epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel("Training cost")
            ax.set_title("by factors of ten" if "coarse" in stages else "refined")
            ax.grid(True, alpha=0.3)
            if obs:
                ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.suptitle(f"Step 1: learning-rate threshold {result['eta_threshold']:g} (training cost, first epochs)")
        path = folder / "step1_eta_threshold.png"
        save_figure(fig, path)
        paths.append(str(path))
    if "epochs" in steps:
        o = steps["epochs"]["observed"][0]
        fig = Figure(figsize=(7, 4), dpi=100, layout="constrained")
        ax = fig.subplots()
        acc = [100 * a for a in o["evaluation_accuracy"]]
        ax.plot(range(len(acc)), acc, color=BOOK_BLUE, label="validation accuracy")
        if o["best_epoch"]:
            ax.axvline(o["best_epoch"] - 1, color=BOOK_ORANGE, ls="--", label=f"best: epoch {o['best_epoch']}")
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Accuracy (%)")
        finish(fig, ax, "step2_epochs.png", "Step 2: epochs by early stopping")
    if "lambda" in steps:
        st = steps["lambda"]
        fig = Figure(figsize=(10, 4.5), dpi=100, layout="constrained")
        axes = fig.subplots(1, 2)
        first = [o for o in st["observed"] if o["stage"] == "orders of magnitude"]
        xs = [o["lmbda"] for o in first]
        pos = [x for x in xs if x > 0]
        zero_x = min(pos) / 10 if pos else 1e-3  # lambda = 0 drawn one decade left of the smallest, labelled
        axes[0].plot([x if x > 0 else zero_x for x in xs], [100 * o["best"] for o in first], "o-", color=BOOK_BLUE)
        axes[0].set_xscale("log")
        axes[0].set_xlabel(f"lambda (0 drawn at {zero_x:g})")
        axes[0].set_ylabel("Best validation accuracy (%)")
        axes[0].set_title("orders of magnitude")
        axes[0].grid(True, alpha=0.3)
        second = [o for o in st["observed"] if o["stage"] != "orders of magnitude"]
        etas = sorted({o["eta"] for o in second})
        for i, e in enumerate(etas):
            row = sorted((o for o in second if o["eta"] == e), key=lambda o: o["lmbda"])
            axes[1].plot([o["lmbda"] for o in row], [100 * o["best"] for o in row], "o-",
                         color=cmap(i / max(len(etas) - 1, 1)), label=f"$\\eta$ = {e:g}")
        axes[1].set_xlabel("lambda")
        axes[1].set_title("refined, eta re-checked")
        finish(fig, axes[1], "step3_lambda.png", f"Step 3: lambda {result['lmbda']:g}, eta {result['eta']:g}")
    if "learning-rate schedule" in steps:
        o = steps["learning-rate schedule"]["observed"][0]
        fig = Figure(figsize=(8, 4), dpi=100, layout="constrained")
        ax = fig.subplots()
        acc = [100 * a for a in o["evaluation_accuracy"]]
        ax.plot(range(len(acc)), acc, color=BOOK_BLUE, label="validation accuracy, halving schedule")
        ax.axhline(100 * o["fixed_eta_best"], color=BOOK_ORANGE, ls="--",
                   label=f"best at fixed eta ({o['fixed_eta_epochs']} epochs)")
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Accuracy (%)")
        ax2 = ax.twinx()
        ax2.step(range(len(o["eta"])), o["eta"], where="post", color="0.5", lw=1, label="eta")
        ax2.set_yscale("log")
        ax2.set_ylabel("eta")
        finish(fig, ax, "step4_schedule.png", "Step 4: halve eta on no-improvement-in-10")
    if "mini-batch size" in steps:
        st = steps["mini-batch size"]
        fig = Figure(figsize=(8, 4), dpi=100, layout="constrained")
        ax = fig.subplots()
        for i, o in enumerate(st["observed"]):
            ts = np.concatenate([[0.0], np.cumsum(o["epoch_seconds"])])
            acc = [100 * o["start_accuracy"]] + [100 * a for a in o["evaluation_accuracy"]]
            ax.plot(ts, acc, "o-", ms=3, color=cmap(i / max(len(st["observed"]) - 1, 1)),
                    label=f"mini-batch {o['batch_size']}")
        if st["tried"]:
            ax.axvline(st["tried"][0]["seconds"], color="0.5", ls=":")
            ax.set_xlim(0, st["tried"][0]["seconds"] * 1.5)
        after_one = [100 * o["evaluation_accuracy"][0] for o in st["observed"] if o["evaluation_accuracy"]]
        if after_one:  # from the lowest accuracy after one epoch: the untrained start would squash the curves
            ax.set_ylim(5 * math.floor(min(after_one) / 5), 100)
        ax.set_xlabel("Training time (s)")
        ax.set_ylabel("Validation accuracy (%)")
        finish(fig, ax, "step5_batch_size.png", "Step 5: accuracy against wall-clock time")
    return paths
