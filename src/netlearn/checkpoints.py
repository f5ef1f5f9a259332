"""Checkpoints: the :class:`Checkpoint` callback, reading one back, and resuming a run from it.

A checkpoint is one JSON file, written atomically every ``every`` epochs to
``directory/checkpoint-EEEE.json``: the weights and module state, the
optimizer's state, both random generators and the shuffling order, the
epoch, the History and the callbacks' state.  ``fit(..., resume=path)``
continues from it with the same numbers as an uninterrupted run.

It also records the run's *settings* -- the learning rate it started with,
lmbda, l1, the optimizer, the cost, the layers, the batch size -- and a run
id.  The settings let ``netlearn train --resume`` refuse options that
contradict the run; :func:`resume_with` changes the learning settings on
purpose.  The run id lets :class:`Checkpoint` warn when a folder already
holds checkpoints of another run.

A checkpoint file is as untrusted as any model file: :func:`load_checkpoint`
checks that every part is there and has the right type, every array's shape
matches the numbers it carries, and the shuffling order is a permutation,
before anything is restored; every problem is one :class:`CheckpointError`.

:class:`KeepLast` is the callback behind "keep the result": it holds the
weights and History of the last finished epoch, so that a run stopped by
divergence or by Ctrl-C can still save them.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write_text, clean_stale_temporaries
from .modelfile import ModelFileError, modules_from, read_json, to_dict
from .callbacks import Callback, TrainingState
from .history import History

CHECKPOINT_FORMAT = "netlearn-checkpoint"
CHECKPOINT_VERSION = 1
#: dtypes an array in a checkpoint may have (weights, optimizer state, generator state, the order).
ARRAY_DTYPES = frozenset({"float32", "float64", "int64", "int32", "uint64", "uint32", "bool", "uint8"})
#: The learning settings that resume_with (and ``netlearn train --override``) may change.
OVERRIDABLE = ("eta", "lmbda", "l1")
_NAME = re.compile(r"^checkpoint-\d{4,}\.json$")


class CheckpointError(ModelFileError):
    """A checkpoint that cannot be used: a part missing or of the wrong type, or one that does not fit this run."""


# ---------------------------------------------------------------------------
# Encoding arrays in JSON
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


def _decode_array(obj: dict, where: str) -> np.ndarray:
    values, dtype, shape = obj.get("__ndarray__"), obj.get("dtype"), obj.get("shape")
    if not isinstance(values, list) or not isinstance(dtype, str) or dtype not in ARRAY_DTYPES or \
            not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape) or len(shape) > 32:
        raise CheckpointError(f"{where}: an array needs a flat list of values, a dtype in {sorted(ARRAY_DTYPES)} "
                              f"and a shape of whole numbers.")
    if int(np.prod(shape, dtype=object)) != len(values):
        raise CheckpointError(f"{where}: shape {shape} needs {int(np.prod(shape, dtype=object))} values; the file "
                              f"holds {len(values)}.")
    if not all(isinstance(v, (int, float)) for v in values):
        raise CheckpointError(f"{where}: an array's values must all be numbers.")
    try:
        if np.dtype(dtype).kind == "f":
            wide = np.array(values, dtype=np.float64)
            if not np.all(np.isfinite(wide)) or (wide.size and np.abs(wide).max() > np.finfo(dtype).max):
                raise CheckpointError(f"{where}: an array of {dtype} holds NaN, infinite or out-of-range values.")
            return wide.astype(dtype).reshape(shape)
        return np.array(values, dtype=dtype).reshape(shape)
    except (ValueError, OverflowError, TypeError) as exc:
        raise CheckpointError(f"{where}: {exc}.") from None


def _decode(obj: Any, where: str = "checkpoint") -> Any:
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return _decode_array(obj, where)
        return {k: _decode(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, where) for v in obj]
    return obj


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------
def _callback_keys(callbacks) -> list[str]:
    """A key per callback: its type's name and its rank among callbacks of that type (``"0:EarlyStopping"``).

    Not its position in the whole list: a progress bar or an epoch log (present or not, depending on
    ``progress`` and ``verbose``) must not change which saved state goes to which callback.
    """
    seen: dict[str, int] = {}
    keys = []
    for cb in callbacks:
        name = type(cb).__name__
        keys.append(f"{seen.get(name, 0)}:{name}")
        seen[name] = seen.get(name, 0) + 1
    return keys


def run_settings(state: TrainingState) -> dict:
    """The settings a run starts with, as a checkpoint records them (what ``--resume`` compares)."""
    net = state.net
    return {"eta": float(state.optimizer.eta), "lmbda": float(state.lmbda), "l1": float(state.l1),
            "optimizer": state.optimizer.name, "cost": net.cost.name,
            "layers": list(net.sizes) if hasattr(net, "sizes") else None, "batch_size": int(state.batch_size)}


def checkpoint_dict(state: TrainingState, settings: dict | None = None, run: str | None = None,
                    overrides: list | None = None) -> dict:
    """Everything a resumed run needs, after ``state.epoch`` (0-based) has ended.

    ``overrides`` is the log of settings changed on resume (see :func:`resume_with`).
    """
    cb_states = {}
    for key, cb in zip(_callback_keys(state.callbacks), state.callbacks):
        st = cb.state_dict()
        if st is not None:
            cb_states[key] = st
    # "run" and "settings" come first, so that a folder's checkpoints can be told apart from their first bytes.
    return _encode({
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "run": run,
        "settings": settings if settings is not None else run_settings(state),
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
        **({"overrides": overrides} if overrides else {}),
    })


# ---------------------------------------------------------------------------
# Reading: every part checked before anything is restored
# ---------------------------------------------------------------------------
_NUMBER = (int, float)
#: part -> (accepted types, may it be null?)
_PARTS = {
    "epoch": ((int,), False), "model": ((dict,), False), "optimizer": ((dict,), False), "eta": (_NUMBER, False),
    "shuffle_rng": ((dict,), True), "order": ((np.ndarray,), True), "noise_rng": ((dict,), True),
    "history": ((dict,), False), "callbacks": ((dict,), False), "fit": ((dict,), False),
    "settings": ((dict,), True), "run": ((str,), True),
}
_FIT_PARTS = {"batch_size": (int,), "n": (int,), "lmbda": _NUMBER, "l1": _NUMBER}


def _type_names(types) -> str:
    names = {int: "a whole number", float: "a number", dict: "an object", str: "a string", np.ndarray: "an array",
             list: "a list"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _finite(v) -> bool:
    """Is ``v`` a finite number (JSON integers may be too large for any float)?"""
    try:
        return bool(np.isfinite(float(v)))
    except (OverflowError, TypeError, ValueError):
        return False


def _check_parts(d: dict, where: str) -> None:
    for part, (types, nullable) in _PARTS.items():
        if part not in d:
            if part in ("settings", "run"):  # older checkpoints have neither
                continue
            raise CheckpointError(f"{where} lacks its '{part}' part; it is not a complete netlearn checkpoint.")
        v = d[part]
        if v is None and nullable:
            continue
        if isinstance(v, bool) or not isinstance(v, types):
            raise CheckpointError(f"{where}: its '{part}' part is {type(v).__name__}; expected {_type_names(types)}.")
    if d["epoch"] < 1:
        raise CheckpointError(f"{where}: its epoch is {d['epoch']}; a checkpoint is written after epoch 1 or later.")
    if not _finite(d["eta"]) or d["eta"] <= 0:
        raise CheckpointError(f"{where}: its learning rate eta is {d['eta']!r}; expected a positive number.")
    d["eta"] = float(d["eta"])
    for part, types in _FIT_PARTS.items():
        v = d["fit"].get(part)
        if isinstance(v, bool) or not isinstance(v, types):
            raise CheckpointError(f"{where}: its 'fit.{part}' is {v!r}; expected {_type_names(types)}.")
    h = d["history"]
    for name in History.FIGURES + ("epoch_seconds", "eta"):
        v = h.get(name, [])
        if not isinstance(v, list) or not all(isinstance(x, _NUMBER) and not isinstance(x, bool) for x in v):
            raise CheckpointError(f"{where}: its history '{name}' must be a list of numbers.")
    if h.get("best_epoch") is not None and (isinstance(h["best_epoch"], bool) or not isinstance(h["best_epoch"], int)):
        raise CheckpointError(f"{where}: its history 'best_epoch' must be a whole number or null.")
    order = d["order"]
    if order is not None:
        n = d["fit"]["n"]
        if order.shape != (n,) or order.dtype.kind not in "iu" or not np.array_equal(np.sort(order), np.arange(n)):
            raise CheckpointError(f"{where}: its shuffling order is not a permutation of the {n} training examples.")


def load_checkpoint(source: str | os.PathLike | dict) -> dict:
    """Read a checkpoint file (or check a dict), verifying every part before anything uses it."""
    where = "resume" if isinstance(source, dict) else str(source)
    if isinstance(source, dict):
        d = source
    else:
        try:
            d = read_json(source, "netlearn checkpoint", CheckpointError)
        except FileNotFoundError:
            raise FileNotFoundError(f"No checkpoint file at {source}.") from None
    if not isinstance(d, dict) or d.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{where} is not a netlearn checkpoint (expected format {CHECKPOINT_FORMAT!r}).")
    if d.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{where}: unsupported checkpoint version {d.get('version')!r}; this netlearn reads "
                              f"{CHECKPOINT_VERSION}.")
    try:
        d = _decode(d, where)
    except RecursionError:
        raise CheckpointError(f"{where}: nested too deeply to be a checkpoint.") from None
    _check_parts(d, where)
    return d


def resume_with(source: str | os.PathLike | dict, **changes: float) -> dict:
    """A checkpoint whose learning settings are changed on purpose: ``eta``, ``lmbda`` and/or ``l1``.

    ``net.fit(data, 60, 10, eta=0.1, lmbda=2.0, resume=resume_with(path, eta=0.1, lmbda=2.0))`` continues
    the run with the new values from the checkpoint's epoch on.  The new eta
    replaces the optimizer's current rate and, for a schedule, its starting
    rate ``eta0``; fit's ``lmbda`` / ``l1`` apply to the resumed epochs (give
    them to fit as well).  The checkpoint's settings are updated, so later
    checkpoints of the run record the new values, and each change is logged
    under ``"overrides"`` with its epoch.
    """
    unknown = sorted(set(changes) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"resume_with changes only {', '.join(OVERRIDABLE)}; not {', '.join(unknown)} (the network, "
                         f"cost and optimizer state belong to the run).")
    d = load_checkpoint(source)
    d = dict(d, settings=dict(d.get("settings") or {}), callbacks=dict(d["callbacks"]), fit=dict(d["fit"]))
    for name, value in changes.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or value < 0 \
                or (name == "eta" and value == 0):
            raise ValueError(f"The '{name}' parameter must be a {'positive' if name == 'eta' else 'non-negative'} "
                             f"number. Got {value!r} instead.")
        d["settings"][name] = float(value)
        if name == "eta":
            d["eta"] = float(value)
            for key, st in d["callbacks"].items():
                if isinstance(st, dict) and st.get("eta0") is not None:  # a schedule starts again from the new rate
                    d["callbacks"][key] = dict(st, eta0=float(value))
        else:
            d["fit"][name] = float(value)
    d["overrides"] = list(d.get("overrides") or []) + [{"epoch": d["epoch"], **{k: float(v) for k, v in changes.items()}}]
    return d


def restore_checkpoint(source: str | os.PathLike | dict, state: TrainingState, callbacks) -> int:
    """Put a checkpoint's weights, optimizer, generators, History and callback state into ``state``.

    Returns the number of epochs the checkpoint had finished (where training
    resumes).  A checkpoint that does not fit the run (another network,
    batch size or training set; no epochs left to train) is a
    :class:`CheckpointError` naming what differs.
    """
    where = "resume" if isinstance(source, dict) else str(source)
    d = load_checkpoint(source)
    cfg = d["fit"]
    n = int(state.training_data[0].shape[0])
    for name, now in (("batch_size", state.batch_size), ("n", n)):
        if cfg[name] != now:
            what = "training set size" if name == "n" else "batch_size"
            raise CheckpointError(f"The checkpoint was trained with {what} {cfg[name]}; this run has {now}. Resume "
                                  f"with the same {what} to continue the same run.")
    if d["epoch"] >= state.epochs:
        raise CheckpointError(f"The checkpoint {where} has finished {d['epoch']} epochs, so epochs={state.epochs} "
                              f"leaves nothing to train; epochs counts from the start of the run, so ask for more "
                              f"than {d['epoch']}.")
    try:
        saved_modules, _ = modules_from(d["model"])
    except ModelFileError as exc:
        raise CheckpointError(f"{where}: its model part: {exc}") from None
    net = state.net
    saved_params = [p for m in saved_modules for p in m.params]
    if [type(m).__name__ for m in saved_modules] != [type(m).__name__ for m in net.modules] or \
            [p.shape for p in saved_params] != [p.shape for p in net.parameters()]:
        held = ", ".join(type(m).__name__ for m in saved_modules)
        raise CheckpointError(f"The checkpoint holds a different network ([{held}] with parameter shapes "
                              f"{[p.shape for p in saved_params]}); this run trains {net!r}.")
    try:
        _same_structure(d["optimizer"], state.optimizer.state_dict(), f"{where}: its optimizer state")
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} The checkpoint's optimizer state does not fit this run (another optimizer, "
                              f"or a damaged file).") from None
    try:
        state.optimizer.load_state_dict(d["optimizer"])
        if d["shuffle_rng"] is not None and state.shuffle_rng is not None:
            state.shuffle_rng.bit_generator.state = d["shuffle_rng"]
        if d["noise_rng"] is not None and state.noise_rng is not None:
            state.noise_rng.bit_generator.state = d["noise_rng"]
        saved_cbs = d["callbacks"]
        for key, cb in zip(_callback_keys(callbacks), callbacks):
            if key in saved_cbs:
                cb.load_state_dict(saved_cbs[key])
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise CheckpointError(f"{where}: its optimizer, generator or callback state does not fit this run "
                              f"({type(exc).__name__}: {exc}).") from None
    for p, q in zip(net.parameters(), saved_params):
        p[...] = q
    for m, s in zip(net.modules, saved_modules):
        st = s.get_state()
        if st:
            m.set_state(st)
    state.optimizer.eta = d["eta"]
    if d["shuffle_rng"] is not None and state.shuffle_rng is not None and d["order"] is not None:
        state.order[...] = d["order"]
    h = d["history"]
    for name in History.FIGURES + ("epoch_seconds", "eta"):
        getattr(state.history, name)[:] = h.get(name, [])
    state.history.best_epoch = h.get("best_epoch")
    for cb in callbacks:
        if isinstance(cb, Checkpoint):
            cb.adopt(d)
    state.epoch = int(d["epoch"]) - 1
    return int(d["epoch"])


def _same_structure(saved: Any, expected: Any, where: str) -> None:
    """Raise CheckpointError unless ``saved`` has the keys, lengths and array shapes of ``expected``."""
    if isinstance(expected, dict):
        if not isinstance(saved, dict) or set(saved) != set(expected):
            raise CheckpointError(f"{where} has parts {sorted(saved) if isinstance(saved, dict) else type(saved).__name__}; "
                                  f"this run's optimizer has {sorted(expected)}.")
        for k in expected:
            _same_structure(saved[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, (list, tuple)):
        if not isinstance(saved, list) or len(saved) != len(expected):
            raise CheckpointError(f"{where} does not match this run's optimizer (expected {len(expected)} entries).")
        for i, (a, b) in enumerate(zip(saved, expected)):
            _same_structure(a, b, f"{where}[{i}]")
    elif isinstance(expected, np.ndarray):
        if not isinstance(saved, np.ndarray) or saved.shape != expected.shape:
            raise CheckpointError(f"{where} has shape {getattr(saved, 'shape', type(saved).__name__)}; this run "
                                  f"needs {expected.shape}.")
    elif expected is None:
        if saved is not None:
            raise CheckpointError(f"{where} should be null for this run's optimizer.")
    elif isinstance(expected, (int, float)) and (isinstance(saved, bool) or not isinstance(saved, (int, float))):
        raise CheckpointError(f"{where} is {saved!r}; expected a number.")


def _run_of(path: Path) -> str | None:
    """The run id in a checkpoint file's first bytes (written first for this), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(400).decode("utf-8", "replace")
    except OSError:
        return None
    m = re.search(r'"run":"([0-9a-f]+)"', head)
    return m.group(1) if m else None


class Checkpoint(Callback):
    """Write a checkpoint every ``every`` epochs to ``directory/checkpoint-EEEE.json`` (atomically).

    Resume with ``fit(..., resume=path)`` or ``netlearn train --resume path``.
    ``keep`` is how many recent checkpoint files to keep (``None``: all).
    Runs after every other callback, so it saves their state for the epoch.
    At the start it removes temporary files that killed runs left in
    ``directory`` and warns (``RuntimeWarning``) when the folder holds
    checkpoints of another run, whose files of the same epochs it would
    replace.
    """

    order = 100

    def __init__(self, directory: str | os.PathLike, every: int = 1, keep: int | None = None) -> None:
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"The 'every' parameter must be an integer >= 1. Got {every!r} instead.")
        self.directory = Path(directory)
        self.every = int(every)
        self.keep = keep
        self.paths: list[Path] = []
        self.run: str | None = None
        self.settings: dict | None = None
        self.overrides: list = []

    def adopt(self, d: dict) -> None:
        """Continue the run of checkpoint ``d`` (called on resume): its id, settings and overrides."""
        self.run = d.get("run")
        self.settings = d.get("settings")
        self.overrides = list(d.get("overrides") or [])

    def on_train_begin(self, state: TrainingState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        clean_stale_temporaries(self.directory)
        if self.run is None:
            self.run = secrets.token_hex(8)
        if self.settings is None:
            self.settings = run_settings(state)
        others = sorted(p.name for p in self.directory.iterdir() if _NAME.match(p.name) and _run_of(p) != self.run)
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            warnings.warn(f"{self.directory} already holds checkpoints of another run ({shown}); this run's "
                          f"checkpoints of the same epochs will replace them. Give each run a folder of its own.",
                          RuntimeWarning, stacklevel=2)

    def on_epoch_end(self, state: TrainingState) -> None:
        if (state.epoch + 1) % self.every:
            return
        path = self.directory / f"checkpoint-{state.epoch + 1:04d}.json"
        atomic_write_text(path, json.dumps(checkpoint_dict(state, self.settings, self.run, self.overrides), separators=(",", ":")))
        self.paths.append(path)
        if self.keep is not None:
            while len(self.paths) > self.keep:
                old = self.paths.pop(0)
                if old.exists():
                    old.unlink()

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.directory)!r}, every={self.every})"


class KeepLast(Callback):
    """Hold the weights, module state and History of the last finished epoch ("keep the result").

    A run that ends early -- diverged, or interrupted by Ctrl-C in the middle
    of an epoch -- has weights of no finished epoch.  ``restore(net)`` puts
    back those of the last finished one (or of the start, before any), and
    ``history`` is the History up to it.  The copies go into buffers made
    once, so an epoch costs one copy of the parameters.
    """

    order = 99  # after the figures are recorded and early stopping has looked; before the checkpoint

    def __init__(self) -> None:
        self.params: list[np.ndarray] | None = None
        self.states: list[dict] = []
        self.history = History()
        self.epochs = 0

    def _take(self, state: TrainingState, epochs: int) -> None:
        params = state.net.parameters()
        if self.params is None:
            self.params = [p.copy() for p in params]
        else:
            for b, p in zip(self.params, params):
                b[...] = p
        self.states = [{k: v.copy() for k, v in m.get_state().items()} for m in state.net.modules]
        h = state.history
        self.history = History(**{name: list(getattr(h, name))[:epochs] for name in History.FIGURES},
                               epoch_seconds=list(h.epoch_seconds)[:epochs], eta=list(h.eta)[:epochs],
                               best_epoch=h.best_epoch)
        self.epochs = epochs

    def on_train_begin(self, state: TrainingState) -> None:
        self._take(state, len(state.history.epoch_seconds))  # 0, or the checkpoint's epochs on resume

    def on_epoch_end(self, state: TrainingState) -> None:
        h = state.history
        if all(np.isfinite(getattr(h, name)[-1]) for name in History.FIGURES if getattr(h, name)):
            self._take(state, state.epoch + 1)  # an epoch whose cost is NaN or infinite has diverged: not kept

    def restore(self, net) -> None:
        """Give ``net`` the weights and module state of the last finished epoch."""
        if self.params is None:
            return
        for p, b in zip(net.parameters(), self.params):
            p[...] = b
        for m, st in zip(net.modules, self.states):
            if st:
                m.set_state(st)
