"""Callbacks of the training loop: their base types, monitoring, early stopping and checkpoints.

Schedules live in :mod:`netlearn.schedules`, the progress bar in :mod:`netlearn.progress`.

* :class:`Callback` — the hooks the loop calls; :class:`TrainingState` — what
  they see and may change.
* :class:`Monitor`, :class:`EpochLog` — record and print the monitored figures.
* :class:`EarlyStopping` — the book's no-improvement-in-n rule (Nielsen
  ch. 3, "Early stopping") on any monitored figure, keeping the best weights.
* :class:`Checkpoint` — every ``k`` epochs, an atomic JSON file holding the
  weights, module state, optimizer state, both random generators, the epoch,
  the History and the callbacks' state; ``fit(..., resume=path)`` continues
  from it with the same results as an uninterrupted run.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics, optimizers
from .history import FIGURES, RECORDED, History, format_epoch
from .validation import check_choice, check_int, check_positive

CHECKPOINT_FORMAT = "netlearn-checkpoint"
CHECKPOINT_VERSION = 1


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
    #: The figures that the Monitor records (names from FIGURES).
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
    """Record cost and accuracy on the training and evaluation data after each epoch (the book's flags).

    For a regression network (``net.task == "regression"``) an accuracy flag
    records R², RMSE and MAE instead (:mod:`netlearn.metrics`).
    """

    def __init__(self, training_cost: bool = False, training_accuracy: bool = False,
                 evaluation_cost: bool = False, evaluation_accuracy: bool = False) -> None:
        self.flags = dict(zip(FIGURES, (training_cost, training_accuracy, evaluation_cost, evaluation_accuracy)))

    def on_epoch_end(self, state: TrainingState) -> None:
        net, h, n = state.net, state.history, state.training_data[0].shape[0]
        for which, data in (("training", state.training_data), ("evaluation", state.evaluation_data)):
            if data is None:
                continue
            if self.flags[f"{which}_cost"]:
                getattr(h, f"{which}_cost").append(net._total_cost(*data, lmbda=state.lmbda, l1=state.l1, n=n))
            if self.flags[f"{which}_accuracy"]:
                if net.task == "regression":
                    for k, v in metrics.network_regression_scores(net, *data).items():
                        getattr(h, f"{which}_{k}").append(v)
                else:
                    getattr(h, f"{which}_accuracy").append(net._accuracy(*data))

    def recorded(self, net, has_evaluation: bool) -> tuple[str, ...]:
        """The History figures this monitor fills for ``net``."""
        names = []
        for k, v in self.flags.items():
            if not v or (k.startswith("evaluation") and not has_evaluation):
                continue
            if k.endswith("accuracy") and net.task == "regression":
                names += [k.replace("accuracy", m) for m in metrics.REGRESSION_FIGURES]
            else:
                names.append(k)
        return tuple(names)


class EpochLog(Callback):
    """Print one line per epoch with the monitored figures."""

    def __init__(self, print_fn=print) -> None:
        self.print_fn = print_fn

    def on_epoch_end(self, state: TrainingState) -> None:
        self.print_fn(format_epoch(state.history, state.epoch, state.epochs))


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best weights.

    The no-improvement-in-n rule (Nielsen ch. 3): after each epoch, compare
    the monitored figure with the best so far (higher is better for
    accuracies, lower for costs; an improvement must exceed ``min_delta``).
    When ``patience`` epochs in a row bring none, training stops.  At the
    end (stopped or not) the network gets the weights (and module state,
    e.g. batch-norm averages) of the best epoch, and ``History.best_epoch``
    is that epoch, 1-based, so a stopped run has ``best_epoch + patience``
    epochs.

    Parameters
    ----------
    patience : int
        ``n`` in no-improvement-in-n; at least 1.
    monitor : str
        One of ``FIGURES``; it must be recorded by ``fit``.
    min_delta : float
        The least change that counts as an improvement (default 0).
    """

    def __init__(self, patience: int = 10, monitor: str = "evaluation_accuracy", min_delta: float = 0.0) -> None:
        self.patience = check_int("patience", patience)
        self.monitor = check_choice("monitor", monitor, RECORDED)
        self.min_delta = check_positive("min_delta", min_delta, allow_zero=True)
        self.sign = 1.0 if monitor.endswith(("accuracy", "_r2")) else -1.0
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None  # 0-based
        self.best_params: list[np.ndarray] | None = None
        self.best_states: list[dict] | None = None

    def on_train_begin(self, state: TrainingState) -> None:
        if self.monitor not in state.monitored:
            raise ValueError(f"Early stopping watches '{self.monitor}', which this run does not record. Monitor it "
                             f"(fit's monitor_{self.monitor}=True"
                             f"{', with evaluation_data' if self.monitor.startswith('evaluation') else ''}) or "
                             f"choose one of {list(state.monitored)}.")

    def on_epoch_end(self, state: TrainingState) -> None:
        value = getattr(state.history, self.monitor)[-1]
        if self.best is None or self.sign * (value - self.best) > self.min_delta:
            self.best, self.best_epoch = float(value), state.epoch
            params = state.net.parameters()
            if self.best_params is None:
                self.best_params = [p.copy() for p in params]
            else:
                for b, p in zip(self.best_params, params):
                    b[...] = p
            self.best_states = [{k: v.copy() for k, v in m.get_state().items()} for m in state.net.modules]
        elif state.epoch - self.best_epoch >= self.patience:
            state.stop = True
            state.stop_reason = (f"no improvement of {self.monitor} in {self.patience} epochs "
                                 f"(best {self.best:.6g} in epoch {self.best_epoch + 1})")

    def on_train_end(self, state: TrainingState) -> None:
        if self.best_params is None:
            return
        for p, b in zip(state.net.parameters(), self.best_params):
            p[...] = b
        for m, st in zip(state.net.modules, self.best_states):
            if st:
                m.set_state(st)
        state.history.best_epoch = self.best_epoch + 1

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "best_params": self.best_params,
                "best_states": self.best_states}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.best_params, self.best_states = state["best_params"], state["best_states"]

    def __repr__(self) -> str:
        return f"EarlyStopping(patience={self.patience}, monitor={self.monitor!r})"


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------
def _encode(obj: Any) -> Any:
    """JSON-ready copy: arrays become ``{"__ndarray__": values, "dtype": ..., "shape": ...}`` (exact round trip)."""
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.ravel().tolist(), "dtype": obj.dtype.name, "shape": list(obj.shape)}
    if isinstance(obj, dict):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return np.array(obj["__ndarray__"], dtype=obj["dtype"]).reshape(obj["shape"])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def _callback_key(i: int, cb: Callback) -> str:
    return f"{i}:{type(cb).__name__}"


def checkpoint_dict(state: TrainingState) -> dict:
    """Everything a resumed run needs, after ``state.epoch`` (0-based) has ended."""
    from .io import to_dict

    cb_states = {}
    for i, cb in enumerate(state.callbacks):
        st = cb.state_dict()
        if st is not None:
            cb_states[_callback_key(i, cb)] = st
    return _encode({
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
        "epoch": state.epoch + 1,
        "model": to_dict(state.net),
        "optimizer": state.optimizer.state_dict(), "eta": state.optimizer.eta,
        "shuffle_rng": state.shuffle_rng.bit_generator.state if state.shuffle_rng is not None else None,
        "order": state.order,
        "noise_rng": state.noise_rng.bit_generator.state if state.noise_rng is not None else None,
        "history": state.history.to_dict(),
        "callbacks": cb_states,
        "fit": {"batch_size": state.batch_size, "n": int(state.training_data[0].shape[0]),
                "lmbda": state.lmbda, "l1": state.l1, "seed": state.seed if isinstance(state.seed, int) else None},
    })


def load_checkpoint(source: str | os.PathLike | dict) -> dict:
    """Read a checkpoint file (or pass a dict through), checking its format."""
    if isinstance(source, dict):
        d = source
    else:
        path = Path(source)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"No checkpoint file at {path}.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a netlearn checkpoint: {exc}.") from None
    if not isinstance(d, dict) or d.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{source if not isinstance(source, dict) else 'resume'} is not a netlearn checkpoint "
                         f"(expected format {CHECKPOINT_FORMAT!r}).")
    if d.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"Unsupported checkpoint version {d.get('version')!r}; this netlearn reads {CHECKPOINT_VERSION}.")
    return _decode(d)


def restore_checkpoint(source: str | os.PathLike | dict, state: TrainingState, callbacks) -> int:
    """Put a checkpoint's weights, optimizer, generators, History and callback state into ``state``.

    Returns the number of epochs the checkpoint had finished (where training resumes).
    """
    from .io import from_dict

    d = load_checkpoint(source)
    cfg = d["fit"]
    n = int(state.training_data[0].shape[0])
    for name, now in (("batch_size", state.batch_size), ("n", n)):
        if cfg[name] != now:
            what = "training set size" if name == "n" else "batch_size"
            raise ValueError(f"The checkpoint was trained with {what} {cfg[name]}; this run has {now}. Resume with "
                             f"the same {what} to continue the same run.")
    saved = from_dict(d["model"])
    net = state.net
    shapes = [p.shape for p in net.parameters()]
    if [type(m).__name__ for m in saved.modules] != [type(m).__name__ for m in net.modules] or \
            [p.shape for p in saved.parameters()] != shapes:
        raise ValueError(f"The checkpoint holds a different network ({saved!r}); this run trains {net!r}.")
    for p, q in zip(net.parameters(), saved.parameters()):
        p[...] = q
    for m, s in zip(net.modules, saved.modules):
        st = s.get_state()
        if st:
            m.set_state(st)
    state.optimizer.load_state_dict(d["optimizer"])
    state.optimizer.eta = d["eta"]
    if d["shuffle_rng"] is not None and state.shuffle_rng is not None:
        state.shuffle_rng.bit_generator.state = d["shuffle_rng"]
        state.order[...] = d["order"]
    if d["noise_rng"] is not None and state.noise_rng is not None:
        state.noise_rng.bit_generator.state = d["noise_rng"]
    h = d["history"]
    for name in RECORDED + ("epoch_seconds", "eta"):
        getattr(state.history, name)[:] = h.get(name, [])
    state.history.best_epoch = h.get("best_epoch")
    saved_cbs = d.get("callbacks", {})
    for i, cb in enumerate(callbacks):
        key = _callback_key(i, cb)
        if key in saved_cbs:
            cb.load_state_dict(saved_cbs[key])
    state.epoch = int(d["epoch"]) - 1
    return int(d["epoch"])


class Checkpoint(Callback):
    """Write a checkpoint every ``every`` epochs to ``directory/checkpoint-EEEE.json`` (atomically).

    Resume with ``fit(..., resume=path)`` or ``netlearn train --resume path``.
    ``keep`` is how many recent checkpoint files to keep (``None``: all).
    Runs after every other callback, so it saves their state for the epoch.
    """

    order = 100

    def __init__(self, directory: str | os.PathLike, every: int = 1, keep: int | None = None) -> None:
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"The 'every' parameter must be an integer >= 1. Got {every!r} instead.")
        self.directory = Path(directory)
        self.every = int(every)
        self.keep = keep
        self.paths: list[Path] = []

    def on_train_begin(self, state: TrainingState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, state: TrainingState) -> None:
        if (state.epoch + 1) % self.every:
            return
        from .io import atomic_write_text

        path = self.directory / f"checkpoint-{state.epoch + 1:04d}.json"
        atomic_write_text(path, json.dumps(checkpoint_dict(state), separators=(",", ":")))
        self.paths.append(path)
        if self.keep is not None:
            while len(self.paths) > self.keep:
                old = self.paths.pop(0)
                if old.exists():
                    old.unlink()

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.directory)!r}, every={self.every})"
