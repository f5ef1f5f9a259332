"""Callbacks of the training loop: early stopping and checkpoints (schedules live in :mod:`netlearn.schedules`).

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
from pathlib import Path
from typing import Any

import numpy as np

from .training import Callback, History, TrainingState

CHECKPOINT_FORMAT = "netlearn-checkpoint"
CHECKPOINT_VERSION = 1


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
        One of ``History.FIGURES``; it must be recorded by ``fit``.
    min_delta : float
        The least change that counts as an improvement (default 0).
    """

    def __init__(self, patience: int = 10, monitor: str = "evaluation_accuracy", min_delta: float = 0.0) -> None:
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1:
            raise ValueError(f"The 'patience' parameter must be an integer >= 1. Got {patience!r} instead.")
        if monitor not in History.FIGURES:
            raise ValueError(f"The 'monitor' parameter must be one of {list(History.FIGURES)}. Got {monitor!r} instead.")
        if not (isinstance(min_delta, (int, float)) and np.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"The 'min_delta' parameter must be a float in the range [0, inf). Got {min_delta!r} instead.")
        self.patience, self.monitor, self.min_delta = int(patience), monitor, float(min_delta)
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
    for name in History.FIGURES + ("epoch_seconds", "eta"):
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
