"""A per-epoch progress bar (tqdm) as a training callback.

tqdm's auto mode picks a notebook widget inside Jupyter and a text bar
elsewhere.  The bar only reads how many examples are done (through the
training loop's batch hooks), so drawing it never changes what is learned.
"""
from __future__ import annotations

import sys

from tqdm.auto import tqdm
from tqdm.autonotebook import tqdm as _chosen_tqdm
from tqdm.std import tqdm as _text_tqdm

from .callbacks import Callback, TrainingState

#: Inside a Jupyter kernel tqdm draws widgets, whatever standard error says it is.
IN_NOTEBOOK = _chosen_tqdm is not _text_tqdm


class ProgressBar(Callback):
    """One tqdm bar per epoch, counting examples; silent when its stream is not a terminal (outside Jupyter)."""

    def __init__(self, n: int, batch_size: int, file=None) -> None:
        self.n = n
        self.file = file if file is not None else sys.stderr
        self.bar = None

    def on_train_begin(self, state: TrainingState) -> None:
        state.batch_hooks.append(self._update)

    def on_epoch_begin(self, state: TrainingState) -> None:
        shown = IN_NOTEBOOK or getattr(self.file, "isatty", lambda: False)()
        self.bar = tqdm(total=self.n, desc=f"Epoch {state.epoch + 1}/{state.epochs}", unit="ex",
                        unit_scale=True, leave=False, file=self.file, disable=not shown, mininterval=0.2)

    def _update(self, m: int) -> None:
        self.bar.update(m)

    def on_epoch_end(self, state: TrainingState) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
