"""A per-epoch progress bar (tqdm) as a training callback."""
from __future__ import annotations

import sys

from tqdm import tqdm

from .training import Callback, TrainingState


class ProgressBar(Callback):
    """One tqdm bar per epoch, counting examples; silent when standard error is not a terminal."""

    def __init__(self, n: int, batch_size: int, file=None) -> None:
        self.n = n
        self.file = file if file is not None else sys.stderr
        self.bar = None

    def on_train_begin(self, state: TrainingState) -> None:
        state.batch_hooks.append(self._update)

    def on_epoch_begin(self, state: TrainingState) -> None:
        self.bar = tqdm(total=self.n, desc=f"Epoch {state.epoch + 1}/{state.epochs}", unit="ex",
                        unit_scale=True, leave=False, file=self.file,
                        disable=not getattr(self.file, "isatty", lambda: False)(), mininterval=0.2)

    def _update(self, m: int) -> None:
        self.bar.update(m)

    def on_epoch_end(self, state: TrainingState) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
