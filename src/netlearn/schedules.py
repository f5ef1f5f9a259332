"""Learning-rate schedules, as callbacks of the training loop.

A schedule sets ``state.optimizer.eta`` at the start of each epoch (the
fixed ones) or after an epoch's figures are in (the book's halving rule);
``History.eta`` records the rate each epoch used.

* :class:`Constant` — ``eta_e = eta0``.
* :class:`StepDecay` — ``eta_e = eta0 * gamma^floor(e / step_size)``.
* :class:`Exponential` — ``eta_e = eta0 * gamma^e``.
* :class:`HalveOnPlateau` — the book's rule (Nielsen ch. 3, "Learning rate
  schedule"): halve eta each time the monitored figure (validation accuracy)
  meets no-improvement-in-n, and stop when eta has fallen to ``eta0 / 128``.

``e`` counts epochs from 0; ``eta0`` is fit's ``eta`` unless given.
"""
from __future__ import annotations

from .validation import check_choice, check_float, check_int, check_positive
from .callbacks import Callback, TrainingState
from .history import RECORDED


def _check_patience(patience) -> int:
    return check_int("patience", patience)


def _check_gamma(gamma) -> float:
    return check_float("gamma", gamma, 0.0, 1.0, low_open=True)


class Schedule(Callback):
    """A learning rate that is a function of the epoch: ``eta_e = self(e)``, set before each epoch."""

    def __init__(self, eta0: float | None = None) -> None:
        self.eta0 = None if eta0 is None else check_positive("eta0", eta0)

    def __call__(self, epoch: int) -> float:
        raise NotImplementedError

    def on_train_begin(self, state: TrainingState) -> None:
        if self.eta0 is None:
            self.eta0 = state.optimizer.eta

    def on_epoch_begin(self, state: TrainingState) -> None:
        state.optimizer.eta = self(state.epoch)

    def state_dict(self) -> dict:
        return {"eta0": self.eta0}

    def load_state_dict(self, state: dict) -> None:
        self.eta0 = state["eta0"]


class Constant(Schedule):
    """``eta_e = eta0`` for every epoch."""

    def __call__(self, epoch: int) -> float:
        return self.eta0

    def __repr__(self) -> str:
        return f"Constant(eta0={self.eta0})"


class StepDecay(Schedule):
    """``eta_e = eta0 * gamma^floor(e / step_size)``: multiply by ``gamma`` every ``step_size`` epochs.

    ``step_size``: epochs between drops (>= 1); ``gamma``: factor in (0, 1].
    """

    def __init__(self, step_size: int, gamma: float = 0.5, eta0: float | None = None) -> None:
        super().__init__(eta0)
        check_int("step_size", step_size)
        self.step_size, self.gamma = int(step_size), _check_gamma(gamma)

    def __call__(self, epoch: int) -> float:
        return self.eta0 * self.gamma ** (epoch // self.step_size)

    def __repr__(self) -> str:
        return f"StepDecay(step_size={self.step_size}, gamma={self.gamma})"


class Exponential(Schedule):
    """``eta_e = eta0 * gamma^e``: multiply by ``gamma`` (in (0, 1]) every epoch."""

    def __init__(self, gamma: float = 0.95, eta0: float | None = None) -> None:
        super().__init__(eta0)
        self.gamma = _check_gamma(gamma)

    def __call__(self, epoch: int) -> float:
        return self.eta0 * self.gamma ** epoch

    def __repr__(self) -> str:
        return f"Exponential(gamma={self.gamma})"


class HalveOnPlateau(Callback):
    """The book's schedule: halve eta at each no-improvement-in-n; stop once eta has fallen to ``eta0 / 128``.

    After each epoch the monitored figure (``evaluation_accuracy`` by default:
    the validation accuracy) is compared with the best so far.  When
    ``patience`` epochs pass without improvement, eta is halved and the
    count starts again.  The halving that brings eta to ``eta0 / min_factor``
    (7 halvings for 128) ends training instead.

    Parameters
    ----------
    patience : int
        ``n`` in no-improvement-in-n (the book suggests 10).
    monitor : str
        A recorded figure of ``History.FIGURES``; accuracies should rise, costs fall.
    factor : float
        The multiplier at each plateau, in (0, 1): 0.5 halves.
    min_factor : float
        Stop when eta has fallen to ``eta0 / min_factor`` (128).
    """

    def __init__(self, patience: int = 10, monitor: str = "evaluation_accuracy", factor: float = 0.5,
                 min_factor: float = 128.0) -> None:
        self.patience = _check_patience(patience)
        self.monitor = check_choice("monitor", monitor, RECORDED)
        self.factor = _check_gamma(factor)
        if self.factor == 1:
            raise ValueError("The 'factor' parameter must be a float in the range (0, 1). Got 1.0 instead.")
        self.min_factor = check_positive("min_factor", min_factor)
        self.sign = 1.0 if monitor.endswith(("accuracy", "_r2")) else -1.0
        self.eta0: float | None = None
        self.best: float | None = None
        self.wait = 0

    def on_train_begin(self, state: TrainingState) -> None:
        if self.monitor not in state.monitored:
            raise ValueError(f"The halving schedule watches '{self.monitor}', which this run does not record; "
                             f"monitor it or choose one of {list(state.monitored)}.")
        if self.eta0 is None:
            self.eta0 = state.optimizer.eta

    def on_epoch_end(self, state: TrainingState) -> None:
        value = getattr(state.history, self.monitor)[-1]
        if self.best is None or self.sign * (value - self.best) > 0:
            self.best, self.wait = float(value), 0
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        self.wait = 0
        eta = state.optimizer.eta * self.factor
        floor = self.eta0 / self.min_factor
        if eta <= floor * (1 + 1e-9):
            state.stop = True
            state.stop_reason = f"eta has fallen to eta0/{self.min_factor:g} = {floor:g}"
        else:
            state.optimizer.eta = eta

    def state_dict(self) -> dict:
        return {"eta0": self.eta0, "best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.eta0, self.best, self.wait = state["eta0"], state["best"], int(state["wait"])

    def __repr__(self) -> str:
        return f"HalveOnPlateau(patience={self.patience}, monitor={self.monitor!r})"


SCHEDULES = {"constant": Constant, "step": StepDecay, "exponential": Exponential, "halve": HalveOnPlateau}

