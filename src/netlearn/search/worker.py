"""A search worker: ask up to K trials, train them together as one Population, tell Optuna the results.

The loop, until the study has ``trials`` finished (COMPLETE or PRUNED) trials:

1. fail and re-queue the trials of workers whose heartbeat stopped (killed);
2. ask as many trials as the population and the study's budget allow
   (for a grid, only its enqueued points);
3. group them by structure (layers, batch size, activation, optimizer,
   dropout): the members of one Population differ only in eta, lmbda, mu and
   their initialization seed; a setting that Population cannot train (Adam,
   dropout, ...) trains one Network per trial;
4. train, and write to storage in batches: at the rungs of successive halving
   and when a trial ends, never one call per member per epoch.

A trial's value is its best evaluation accuracy over its epochs (the epoch
that early stopping would keep), a fraction in [0, 1]; each epoch's accuracy
is an intermediate value (the learning curves of optuna-dashboard).  A trial
whose network diverges is COMPLETE with the best accuracy it reached and
``diverged`` (the epoch) among its user attributes.

**Successive halving** (``pruner="halving"``, reduction 3): at rung epochs
1, 3, 9, ... a member is promoted when its best accuracy so far ranks in the
top third of every value recorded at that rung (by this population, the
members before it and the study's other trials); the others are frozen and
told PRUNED with their curves, and their slots are refilled with newly asked
trials, or left empty so that the population is compacted.

**Faults.** A heartbeat thread writes this worker's time into the study every
``heartbeat`` seconds (one write for the whole population).  A RUNNING trial
whose worker's heartbeat is older than three intervals is stale: the
first-named live worker marks it FAIL and queues a new trial with the same
parameters and seed (``failed_trial`` and ``retry_history`` in its system
attributes, as Optuna's RetryFailedTrialCallback writes them).  Ctrl-C does
the same for the worker's own trials before it exits.
"""
from __future__ import annotations

import copy
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import optimizers
from ..network import Network
from ..population import Population
from ..training import Callback, DivergenceError
from .space import hidden_sizes
from .storage import SearchError, optuna
from .study import Settings

WORKER_KEY = "netlearn:worker"
HEARTBEAT_PREFIX = "netlearn:heartbeat:"
#: Successive halving's reduction factor: a third of the members go on at each rung.
REDUCTION = 3
#: Optimizers that a Population trains (with per-member momentum mu).
POPULATION_OPTIMIZERS = ("sgd", "momentum")


@dataclass
class _Run:
    """A trial in flight: its Optuna trial, its full settings, and the accuracies of its epochs so far."""

    trial: Any
    config: dict
    seed: int
    accs: list = field(default_factory=list)
    written: int = 0
    diverged: int | None = None
    done: bool = False

    @property
    def number(self) -> int:
        return self.trial.number

    def structure(self) -> tuple:
        c = self.config
        return (tuple(c["hidden"]), c["batch_size"], tuple(c["activation"]), c["optimizer"], c["dropout"])


class _Writer:
    """Storage writes in order on a thread of their own, so that training never waits on a database.

    On PostgreSQL one intermediate value costs a round trip of about 20 ms; a
    population's curves would stall every rung.  In memory, writes run at once
    (nothing to wait for, and the order of a seeded search stays fixed).
    """

    def __init__(self, threaded: bool, log: Callable[[str], None]) -> None:
        self.log = log
        self.tells = 0  # final writes queued and not yet done
        self._queue: queue.Queue | None = queue.Queue() if threaded else None
        if self._queue is not None:
            threading.Thread(target=self._loop, name="netlearn-writer", daemon=True).start()

    def submit(self, job: Callable[[], None], tell: bool = False) -> None:
        if self._queue is None:
            job()
            return
        if tell:
            self.tells += 1
        self._queue.put((job, tell))

    def _loop(self) -> None:
        while True:
            job, tell = self._queue.get()
            try:
                job()
            except Exception as exc:  # a lost connection: said once, the trial goes stale and is retried
                self.log(f"a storage write failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
            finally:
                if tell:
                    self.tells -= 1
                self._queue.task_done()

    def flush(self) -> None:
        if self._queue is not None:
            self._queue.join()


def rungs(epochs: int) -> list[int]:
    """Successive halving's rung epochs below ``epochs``: 1, 3, 9, ..."""
    out, r = [], 1
    while r < epochs:
        out.append(r)
        r *= REDUCTION
    return out


def promoted(value: float, others: list[float]) -> bool:
    """Whether ``value`` ranks in the top third of ``others`` (which include it): ties favour promotion."""
    keep = max(1, len(others) // REDUCTION)
    return sum(v > value for v in others) < keep


class Worker:
    """Trains a study's trials (see the module docstring); :meth:`run` returns when the study is done."""

    def __init__(self, study: Any, settings: Settings, training, evaluation, *, heartbeat: float | None = 10.0,
                 seed: int | None = None, threads: int | None = None, quiet: bool = True,
                 print_fn: Callable[[str], None] = print, keep_best: bool = True, one_worker_only: bool = False) -> None:
        self.opt = optuna()
        self.study, self.settings = study, settings
        self.training, self.evaluation = training, evaluation
        self.space = settings.space_
        self.heartbeat = heartbeat
        self.seed = settings.seed if seed is None else seed
        self.threads, self.quiet, self.print = threads, quiet, print_fn
        self.keep_best, self.one_worker_only = keep_best, one_worker_only
        self.id = uuid.uuid4().hex[:12]
        self.storage, self.study_id = study._storage, study._study_id
        self.rung_epochs = rungs(settings.epochs) if settings.pruner == "halving" else []
        #: Best accuracies at each rung: this worker's, and the study's other trials' (read per population).
        self.own_rungs: dict[int, list[float]] = {r: [] for r in self.rung_epochs}
        self.other_rungs: dict[int, list[float]] = {r: [] for r in self.rung_epochs}
        self.inflight: dict[int, _Run] = {}
        self.pending: list[_Run] = []
        self.network_epochs = 0
        self.best_value, self.best_network, self.best_number = -1.0, None, None
        self.batches = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writer = _Writer(threaded=bool(heartbeat), log=self._log)

    # -- the loop ---------------------------------------------------------------
    def run(self) -> "Worker":
        """Train trials until the study has ``settings.trials`` finished ones; Ctrl-C re-queues what was running."""
        if self.one_worker_only:
            refuse_second_worker(self.study)
        self._start_heartbeat()
        try:
            while True:
                self.writer.flush()
                self.recover_stale()
                finished, running, waiting = self._counts()
                if finished >= self.settings.trials:
                    break
                budget = self.settings.trials - finished - running
                if self.settings.sampler == "grid":
                    budget = min(budget, waiting)
                runs = self.pending + self._ask(min(self.settings.population - len(self.pending), budget))
                self.pending = []
                if not runs:
                    # Others hold the remaining trials: wait for them to finish, or to go stale.
                    time.sleep(self.heartbeat or 1.0)
                    continue
                self._refresh_rungs()
                groups: dict[tuple, list[_Run]] = {}
                for r in runs:
                    groups.setdefault(r.structure(), []).append(r)
                for key, members in groups.items():
                    self._train_group(members)
        except KeyboardInterrupt:
            self.writer.flush()  # what ended is told first; what was still training is re-queued
            for run in list(self.inflight.values()):
                self._fail_and_retry(self.storage.get_trial(run.trial._trial_id))
            self.inflight.clear()
            raise
        finally:
            self.writer.flush()
            self._stop_heartbeat()
        return self

    def _counts(self) -> tuple[int, int, int]:
        S = self.opt.trial.TrialState
        trials = self.study.get_trials(deepcopy=False, states=(S.COMPLETE, S.PRUNED, S.RUNNING, S.WAITING))
        finished = sum(t.state in (S.COMPLETE, S.PRUNED) for t in trials)
        running = sum(t.state == S.RUNNING for t in trials)
        return finished, running, sum(t.state == S.WAITING for t in trials)

    def _budget(self) -> int:
        finished, running, waiting = self._counts()
        budget = self.settings.trials - finished - running  # (a trial told but not yet stored is still RUNNING)
        return min(budget, waiting) if self.settings.sampler == "grid" else budget

    def _ask(self, count: int) -> list[_Run]:
        """Up to ``count`` new trials, each with its parameters suggested and its worker and seed recorded."""
        S = self.opt.trial.TrialState
        runs = []
        for _ in range(max(count, 0)):
            trial = self.study.ask()
            frozen = self.storage.get_trial(trial._trial_id)
            if self.settings.sampler == "grid" and "fixed_params" not in frozen.system_attrs and not frozen.params:
                # Another worker took the last grid point between our count and our ask.
                trial.set_user_attr("reason", "no grid point left")
                self.study.tell(trial, state=S.FAIL)
                break
            self.storage.set_trial_system_attr(trial._trial_id, WORKER_KEY, self.id)
            params = self.space.suggest(trial)
            seed = frozen.user_attrs.get("init_seed")
            if seed is None:  # a retried trial keeps the seed of the trial it repeats
                seed = (self.settings.seed * 1_000_003 + trial.number) % (2 ** 31)
                trial.set_user_attr("init_seed", seed)
            run = _Run(trial, self._config(params), int(seed))
            self.inflight[trial._trial_id] = run
            runs.append(run)
        return runs

    def _config(self, params: dict) -> dict:
        """The trial's full training settings: its parameters over the study's fixed values."""
        s = self.settings
        c = {"eta": s.eta, "lmbda": s.lmbda, "mu": s.mu, "batch_size": s.batch_size, "dropout": s.dropout,
             "optimizer": s.optimizer, "hidden": list(s.layers[1:-1]), "activation": list(s.activation)}
        c.update(params)
        c["hidden"] = hidden_sizes(c["hidden"]) if "hidden" in params else c["hidden"]
        if "activation" in params:
            c["activation"] = [a.strip() for a in str(params["activation"]).split(",")]
        c["sizes"] = [s.layers[0], *c["hidden"], s.layers[-1]]
        return c

    # -- training ---------------------------------------------------------------
    def _train_group(self, runs: list[_Run]) -> None:
        c = runs[0].config
        population_ok = c["optimizer"] in POPULATION_OPTIMIZERS and c["dropout"] == 0
        pop = None
        if population_ok:
            try:
                pop = self._population(runs)
            except ValueError:
                pop = None
        if pop is None:
            for run in runs:
                self._train_network(run)
            return
        self._log(f"population of {len(runs)} trials {c['sizes']} batch {c['batch_size']}")
        slots: list[_Run | None] = list(runs)
        seed = self.seed + self.batches
        self.batches += 1

        def on_epoch(p: Population, epoch: int) -> None:
            ended = []
            for s, run in enumerate(slots):
                if run is None or run.done:
                    continue
                if p.diverged[s] is not None:
                    run.diverged = p.diverged[s]
                    ended.append(s)
                    continue
                acc = p.histories[s].evaluation_accuracy[-1]
                run.accs.append(acc)
                self.network_epochs += 1
                if acc > self.best_value:
                    self._keep(run, acc, p.networks[s])
                if len(run.accs) >= self.settings.epochs:
                    ended.append(s)
            for s in ended:
                self._finish(slots[s], pruned=False, network=p.networks[s])
                p.freeze(s)
            for r in self.rung_epochs:
                at = [s for s, run in enumerate(slots) if run is not None and not run.done and len(run.accs) == r]
                if not at:
                    continue
                self.own_rungs[r].extend(max(slots[s].accs) for s in at)
                values = self.own_rungs[r] + self.other_rungs[r]
                for s in at:
                    if promoted(max(slots[s].accs), values):
                        self._write(slots[s])  # the curves so far, in one batch at the rung
                    else:
                        self._finish(slots[s], pruned=True)
                        p.freeze(s)
            free = [s for s, run in enumerate(slots) if run is None or run.done]
            if free:
                budget = self._budget() if self.pending == [] else 0
                for s in free:
                    if budget <= 0:
                        slots[s] = None
                        continue
                    new = self._ask(1)
                    budget -= 1
                    if not new:
                        slots[s] = None
                        budget = 0
                        continue
                    if new[0].structure() != runs[0].structure():
                        self.pending.append(new[0])  # it trains in the next population
                        slots[s] = None
                        continue
                    cfg = new[0].config
                    p.replace(s, eta=cfg["eta"], lmbda=cfg["lmbda"], mu=cfg["mu"], seed=new[0].seed)
                    slots[s] = new[0]
            if not p.active:
                p.stop()

        with np.errstate(over="ignore", invalid="ignore"):
            pop.fit(self.training, 2 ** 31 - 1, c["batch_size"], evaluation_data=self.evaluation, seed=seed,
                    threads=self.threads, callbacks=[on_epoch], announce=not self.quiet)

    def _population(self, runs: list[_Run]) -> Population:
        c = runs[0].config
        s = self.settings
        act = c["activation"][0] if len(c["activation"]) == 1 else c["activation"]
        return Population(c["sizes"], [r.config["eta"] for r in runs], [r.config["lmbda"] for r in runs],
                          [r.config["mu"] for r in runs], [r.seed for r in runs], activation=act, cost=s.cost,
                          init=s.init, output=s.output)

    def _train_network(self, run: _Run) -> None:
        """One trial as one Network (for settings a Population cannot train), pruned at the same rungs."""
        c, s = run.config, self.settings
        act = c["activation"][0] if len(c["activation"]) == 1 else c["activation"]
        self._log(f"trial {run.number}: one network {c['sizes']} ({c['optimizer']}, dropout {c['dropout']:g})")
        net = Network(c["sizes"], activation=act, cost=s.cost, init=s.init, output=s.output, seed=run.seed,
                      dropout=c["dropout"])
        name = "momentum" if c["optimizer"] == "sgd" and c["mu"] > 0 else c["optimizer"]
        hyper = {"mu": c["mu"]} if name in ("momentum", "nesterov") else {}
        opt = optimizers.get(name, c["eta"], **hyper)
        worker, pruned = self, []

        class Report(Callback):
            def on_epoch_end(self, state) -> None:
                acc = state.history.evaluation_accuracy[-1]
                run.accs.append(acc)
                worker.network_epochs += 1
                if acc > worker.best_value:
                    worker._keep(run, acc, state.net)
                r = len(run.accs)
                if r in worker.own_rungs:
                    worker.own_rungs[r].append(max(run.accs))
                    if promoted(max(run.accs), worker.own_rungs[r] + worker.other_rungs[r]):
                        worker._write(run)
                    else:
                        pruned.append(True)
                        state.stop = True

        seed = self.seed + self.batches
        self.batches += 1
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                net.fit(self.training, s.epochs, c["batch_size"], c["eta"], lmbda=c["lmbda"],
                        evaluation_data=self.evaluation, seed=seed, optimizer=opt, callbacks=[Report()],
                        threads=self.threads)
        except DivergenceError:
            run.diverged = len(run.accs) + 1
        self._finish(run, pruned=bool(pruned), network=net)

    def _keep(self, run: _Run, acc: float, net: Network) -> None:
        self.best_value, self.best_number = acc, run.number
        if self.keep_best:
            self.best_network = copy.deepcopy(net)

    # -- writing to storage -----------------------------------------------------
    def _write(self, run: _Run) -> None:
        """Queue the intermediate values not yet written (one batch per trial, at a rung)."""
        values, first = list(run.accs[run.written:]), run.written
        run.written = len(run.accs)
        self.writer.submit(lambda: self._report(run.trial, values, first))

    def _report(self, trial: Any, values: list[float], first: int) -> bool:
        try:
            for i, v in enumerate(values):
                trial.report(v, first + i + 1)
            return True
        except (self.opt.exceptions.UpdateFinishedTrialError, RuntimeError, ValueError):
            return False

    def _finish(self, run: _Run, pruned: bool, network: Network | None = None) -> None:
        """The trial's end: its last values, ``epochs`` and ``diverged``, and its state, queued as one job."""
        S = self.opt.trial.TrialState
        run.done = True
        self.inflight.pop(run.trial._trial_id, None)
        value = max(run.accs) if run.accs else None
        if value is None and network is not None and self.evaluation is not None:
            value = float(network.accuracy(self.evaluation))  # diverged in its first epoch: its initial weights
        values, first = list(run.accs[run.written:]), run.written
        run.written = len(run.accs)
        params = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in run.trial.params.items())
        div = f" diverged in epoch {run.diverged}" if run.diverged is not None else ""
        line = (f"trial {run.number} {'PRUNED' if pruned else 'COMPLETE'} after {len(run.accs)} epochs: "
                f"{100 * (value or 0.0):.2f}%{div}  {params}")

        def job() -> None:
            trial = run.trial
            lost = f"trial {run.number}: failed by another worker meanwhile (stale heartbeat); dropped"
            if not self._report(trial, values, first):
                self._log(lost)
                return
            try:
                trial.set_user_attr("epochs", len(run.accs))
                if run.accs:
                    trial.set_user_attr("best_epoch", int(np.argmax(run.accs)) + 1)
                if run.diverged is not None:
                    trial.set_user_attr("diverged", run.diverged)
                if pruned:
                    self.study.tell(trial, state=S.PRUNED)
                else:
                    self.study.tell(trial, value if value is not None else 0.0)
            except (self.opt.exceptions.UpdateFinishedTrialError, RuntimeError, ValueError):
                self._log(lost)
                return
            self._log(line)

        self.writer.submit(job, tell=True)

    def _refresh_rungs(self) -> None:
        """Add the other workers' values at each rung (one read), so that halving compares across the study."""
        if not self.rung_epochs:
            return
        S = self.opt.trial.TrialState
        others: dict[int, list[float]] = {r: [] for r in self.rung_epochs}
        for t in self.study.get_trials(deepcopy=False, states=(S.COMPLETE, S.PRUNED)):
            if t.system_attrs.get(WORKER_KEY) == self.id:
                continue
            curve = [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
            for r in self.rung_epochs:
                if len(curve) >= r:
                    others[r].append(max(curve[:r]))
        self.other_rungs = others

    # -- heartbeats and stale trials -----------------------------------------------
    def _beat(self, alive: bool = True) -> None:
        value = [time.time() if alive else 0.0, float(self.heartbeat or 0)]
        self.storage.set_study_system_attr(self.study_id, HEARTBEAT_PREFIX + self.id, value)

    def _start_heartbeat(self) -> None:
        if not self.heartbeat:
            return
        self._beat()

        def loop() -> None:
            while not self._stop.wait(self.heartbeat):
                try:
                    self._beat()
                except Exception:  # a lost connection: the next beat retries; stale detection tolerates a gap
                    pass

        self._thread = threading.Thread(target=loop, name="netlearn-heartbeat", daemon=True)
        self._thread.start()

    def _stop_heartbeat(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        try:
            self._beat(alive=False)
        except Exception:
            pass

    def recover_stale(self) -> int:
        """Fail and re-queue the RUNNING trials of workers whose heartbeat stopped; returns how many."""
        if not self.heartbeat:
            return 0
        S = self.opt.trial.TrialState
        running = self.study.get_trials(deepcopy=False, states=(S.RUNNING,))
        if not running:
            return 0
        attrs = self.storage.get_study_system_attrs(self.study_id)
        now = time.time()
        live = set(live_workers(self.study))
        if min(live | {self.id}) != self.id:
            return 0  # one live worker recovers, so that a stale trial is queued again once
        count = 0
        for t in running:
            owner = t.system_attrs.get(WORKER_KEY)
            if owner == self.id or owner in live:
                continue
            beat = attrs.get(HEARTBEAT_PREFIX + owner) if owner else None
            if beat is None:  # popped, but its worker never wrote its name: judge by the start time
                started = t.datetime_start.timestamp() if t.datetime_start else now
                if now - started <= _grace(self.heartbeat):
                    continue
            if self._fail_and_retry(t):
                count += 1
        if count:
            self._log(f"{count} stale trial(s) of a stopped worker marked FAIL and queued again")
        return count

    def _fail_and_retry(self, frozen: Any) -> bool:
        """Mark a RUNNING trial FAIL and queue a WAITING copy with its parameters and seed."""
        opt = self.opt
        try:
            if not self.storage.set_trial_state_values(frozen._trial_id, state=opt.trial.TrialState.FAIL):
                return False
        except opt.exceptions.UpdateFinishedTrialError:
            return False
        attrs = {k: v for k, v in frozen.system_attrs.items() if k != WORKER_KEY}
        attrs.setdefault("failed_trial", frozen.number)
        attrs["retry_history"] = list(attrs.get("retry_history", [])) + [frozen.number]
        self.study.add_trial(opt.trial.create_trial(
            state=opt.trial.TrialState.WAITING, params=frozen.params, distributions=frozen.distributions,
            user_attrs={k: v for k, v in frozen.user_attrs.items() if k == "init_seed"}, system_attrs=attrs))
        return True

    def _log(self, line: str) -> None:
        if not self.quiet:
            self.print(line)


def live_workers(study: Any) -> dict[str, list]:
    """The study's workers whose heartbeat is fresh: ``{id: [time, interval]}``."""
    now = time.time()
    attrs = study._storage.get_study_system_attrs(study._study_id)
    return {k[len(HEARTBEAT_PREFIX):]: v for k, v in attrs.items()
            if k.startswith(HEARTBEAT_PREFIX) and v[0] > 0 and now - v[0] <= _grace(v[1])}


def refuse_second_worker(study: Any) -> None:
    """For SQLite storage: a SearchError when another worker's heartbeat is fresh."""
    if live_workers(study):
        raise SearchError("another worker is running on this study, and SQLite storage takes one worker at a "
                          "time (a queued trial can go to two workers): use a journal file or PostgreSQL.")


def _grace(interval: float) -> float:
    """How long a heartbeat may be silent before its worker's trials are stale: three intervals, at least 2 s."""
    return max(3.0 * float(interval), 2.0)


__all__ = ["Worker", "rungs", "promoted", "live_workers", "refuse_second_worker", "WORKER_KEY", "HEARTBEAT_PREFIX"]
