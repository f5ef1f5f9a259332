"""What a training run records: the History of per-epoch figures, and the error of a run that diverged.

:func:`netlearn.training.fit`, :mod:`netlearn.second_order` and
:class:`netlearn.Population` all return a :class:`History`; callbacks,
the command line and the plots read it.  ``FIGURES`` is the one list of the
figures that can be monitored.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: The figures a run can monitor after each epoch, in the order they are printed and plotted.
FIGURES = ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy")
#: A regression network's figures, recorded in place of the accuracies (see :mod:`netlearn.metrics`).
REGRESSION_FIGURES = ("training_r2", "training_rmse", "training_mae", "evaluation_r2", "evaluation_rmse",
                      "evaluation_mae")
#: Every per-epoch figure a History can hold (what early stopping and schedules may watch).
RECORDED = FIGURES + REGRESSION_FIGURES


class DivergenceError(FloatingPointError, ValueError):
    """Training produced NaN, infinite or overflowing weights, or a NaN or infinite cost; the network keeps
    its last good weights."""


@dataclass
class History:
    """Per-epoch figures of a training run: one entry per trained epoch.

    Accuracies are fractions in [0, 1]; a figure that was not monitored is an
    empty list.  ``eta`` is the learning rate used in each epoch;
    ``best_epoch`` (1-based) is the epoch whose weights early stopping kept.
    """

    training_cost: list[float] = field(default_factory=list)
    training_accuracy: list[float] = field(default_factory=list)
    evaluation_cost: list[float] = field(default_factory=list)
    evaluation_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    eta: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    # A regression network's figures in place of the accuracies (see netlearn.metrics).
    training_r2: list[float] = field(default_factory=list)
    training_rmse: list[float] = field(default_factory=list)
    training_mae: list[float] = field(default_factory=list)
    evaluation_r2: list[float] = field(default_factory=list)
    evaluation_rmse: list[float] = field(default_factory=list)
    evaluation_mae: list[float] = field(default_factory=list)

    FIGURES = RECORDED

    @property
    def epochs(self) -> int:
        return len(self.epoch_seconds)

    def monitored(self) -> list[str]:
        """The figures this run recorded (those with at least one entry), in ``FIGURES`` order."""
        return [name for name in RECORDED if getattr(self, name)]

    def kept(self, name: str) -> float | None:
        """The figure ``name`` for the weights the network ends with.

        That is the last epoch's value, or the value of ``best_epoch`` when
        early stopping put the best epoch's weights back; ``None`` when the
        figure was not recorded.
        """
        values = getattr(self, name)
        if not values:
            return None
        return values[self.best_epoch - 1] if self.best_epoch is not None else values[-1]

    def to_dict(self) -> dict:
        return {"training_cost": list(self.training_cost), "training_accuracy": list(self.training_accuracy),
                "evaluation_cost": list(self.evaluation_cost),
                "evaluation_accuracy": list(self.evaluation_accuracy),
                "epoch_seconds": list(self.epoch_seconds), "eta": list(self.eta), "best_epoch": self.best_epoch,
                **{name: list(getattr(self, name)) for name in REGRESSION_FIGURES}}

    # The book's network2.SGD returns a 4-tuple; unpacking a History gives the same.
    def __iter__(self):
        return iter((self.evaluation_cost, self.evaluation_accuracy, self.training_cost, self.training_accuracy))


def format_epoch(h: History, epoch: int, epochs: int) -> str:
    """``Epoch 3/30  2.1s  training cost 0.48  evaluation accuracy 95.12%`` for the last recorded epoch."""
    parts = [f"Epoch {epoch + 1}/{epochs}", f"{h.epoch_seconds[-1]:.2f}s"]
    for name in RECORDED:
        values = getattr(h, name)
        if values:
            v = values[-1]
            parts.append(f"{name.replace('_', ' ')} {100 * v:.2f}%" if name.endswith("accuracy") else
                         f"{name.replace('_', ' ')} {v:.4f}")
    return "  ".join(parts)
