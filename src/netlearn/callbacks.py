"""Callbacks of the training loop: their base types, monitoring and early stopping.

Schedules live in :mod:`netlearn.schedules`, the progress bar in :mod:`netlearn.progress`.

* :class:`Callback` — the hooks the loop calls; :class:`TrainingState` — what
  they see and may change.
* :class:`Monitor`, :class:`EpochLog` — record and print the monitored figures.
* :class:`EarlyStopping` — the book's no-improvement-in-n rule (Nielsen
  ch. 3, "Early stopping") on any monitored figure, keeping the best weights.
* :class:`Checkpoint` — re-exported from :mod:`netlearn.checkpoints`, its
  home: every ``k`` epochs an atomic JSON file from which
  ``fit(..., resume=path)`` continues with the same results as an
  uninterrupted run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import metrics, optimizers
from .history import FIGURES, RECORDED, History, format_epoch
from .validation import check_choice, check_int, check_positive

__all__ = ["TrainingState", "Callback", "Monitor", "EpochLog", "EarlyStopping"]

#: Names whose home is now :mod:`netlearn.checkpoints` (which builds on this module, so they are looked
#: up on first use instead of imported here).
_CHECKPOINT_NAMES = ("Checkpoint", "CheckpointError", "KeepLast", "checkpoint_dict", "load_checkpoint",
                     "restore_checkpoint", "resume_with")


def __getattr__(name: str) -> Any:
    if name in _CHECKPOINT_NAMES:
        from . import checkpoints

        return getattr(checkpoints, name)
    raise AttributeError(f"module 'netlearn.callbacks' has no attribute {name!r}")


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
