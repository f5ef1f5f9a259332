"""A search space from the command line's words: ranges, log ranges and lists of alternatives.

    --eta 0.01:10:log   --lmbda 0.1:100:log   --batch-size 10,20   --hidden 30 100 64,32

Each option names one hyper-parameter.  ``LOW:HIGH`` is a uniform range,
``LOW:HIGH:log`` a log-uniform one (the usual choice for eta and lmbda, whose
good values span orders of magnitude), and ``a,b,c`` a list of alternatives.
For ``--hidden`` and ``--activation``, whose ``train`` value is already a
comma-separated per-layer list, the alternatives are separate words.  A
trial's parameters come from Optuna's ``suggest_*`` calls, so they hold
numbers and names, not strings of them.

This module needs no Optuna: it only describes the space; :func:`suggest`
receives the trial.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Sequence

#: Options that take ``LOW:HIGH[:log]`` or ``a,b,c``: name -> (kind, accepted values).
NUMERIC = {"eta": float, "lmbda": float, "mu": float, "batch_size": int, "dropout": float}
#: Options whose alternatives are words: ``optimizer`` names; per-layer lists for hidden and activation.
WORDS = ("optimizer", "hidden", "activation")
#: The order in which parameters are suggested (and shown).
ORDER = ("eta", "lmbda", "mu", "batch_size", "dropout", "optimizer", "hidden", "activation")
#: Parameters that may differ between the members of one Population (the rest group trials).
PER_MEMBER = ("eta", "lmbda", "mu")


class SpaceError(ValueError):
    """A search-space option that cannot be read: the message names the option and the accepted forms."""


def _bounds(name: str, v: float) -> bool:
    if name in ("eta", "batch_size"):
        return v > 0
    if name == "lmbda":
        return v >= 0
    return 0 <= v < 1  # mu, dropout


_RULE = {"eta": "> 0", "batch_size": ">= 1", "lmbda": ">= 0", "mu": "in [0, 1)", "dropout": "in [0, 1)"}


@dataclass(frozen=True)
class Param:
    """One dimension: a range (``low``, ``high``, ``log``) or a list of ``choices``."""

    name: str
    kind: str  # "float", "int" or "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial: Any) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))


def parse_numeric(name: str, text: str) -> Param:
    """``LOW:HIGH``, ``LOW:HIGH:log`` or ``a,b,c`` for a numeric option, checked against its range."""
    cast = NUMERIC[name]
    flag = "--" + name.replace("_", "-")
    what = "whole numbers" if cast is int else "numbers"
    text = str(text).strip()
    try:
        if ":" in text:
            parts = text.split(":")
            log = len(parts) == 3 and parts[2] == "log"
            if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
                raise ValueError
            low, high = cast(parts[0]), cast(parts[1])
            values = [low, high]
        else:
            values = [cast(p) for p in text.split(",") if p.strip()]
            if not values:
                raise ValueError
    except ValueError:
        raise SpaceError(f"{flag} {text!r}: expected LOW:HIGH, LOW:HIGH:log or a list a,b,c of {what} "
                         f"(e.g. {flag} {'10,20' if cast is int else '0.01:10:log'}).") from None
    for v in values:
        if not math.isfinite(v) or not _bounds(name, v):
            raise SpaceError(f"{flag} {text!r}: each value must be {_RULE[name]}, got {v!r}.")
    if ":" not in text:
        if len(set(values)) != len(values):
            raise SpaceError(f"{flag} {text!r}: the alternatives repeat.")
        return Param(name, "categorical", choices=tuple(values))
    if not low < high:
        raise SpaceError(f"{flag} {text!r}: LOW must be less than HIGH.")
    if log and low <= 0:
        raise SpaceError(f"{flag} {text!r}: a log range needs LOW > 0.")
    return Param(name, "int" if cast is int else "float", low, high, log)


def parse_words(name: str, words: Sequence[str] | str) -> Param:
    """Alternatives for ``optimizer`` (``a,b``), or ``hidden`` / ``activation`` (one word per alternative).

    A hidden alternative of one layer is its size (an integer); one of several
    layers stays ``"64,32"`` (Optuna's choices must be numbers or strings).
    """
    flag = "--" + name
    if name == "optimizer":
        text = words if isinstance(words, str) else ",".join(words)
        words = [w.strip() for w in text.split(",") if w.strip()]
    else:
        words = [words] if isinstance(words, str) else list(words)
    if not words:
        raise SpaceError(f"{flag}: give at least one alternative.")
    choices: list = []
    for w in words:
        w = str(w).strip()
        if name == "hidden":
            try:
                sizes = [int(s) for s in w.split(",")]
            except ValueError:
                raise SpaceError(f"{flag} {w!r}: each alternative is a per-layer list of sizes like 30 or 64,32; "
                                 f"separate alternatives with spaces (--hidden 30 100 64,32).") from None
            if any(s < 1 for s in sizes):
                raise SpaceError(f"{flag} {w!r}: layer sizes must be >= 1.")
            choices.append(sizes[0] if len(sizes) == 1 else ",".join(map(str, sizes)))
        else:
            choices.append(w)
    if len(set(choices)) != len(choices):
        raise SpaceError(f"{flag}: the alternatives repeat.")
    return Param(name, "categorical", choices=tuple(choices))


class Space:
    """The parameters of a search, built from the options' texts (``{"eta": "0.01:10:log", ...}``)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = {k: v for k, v in spec.items() if v is not None}
        self.params: list[Param] = []
        for name in ORDER:
            if name in self.spec:
                value = self.spec[name]
                self.params.append(parse_words(name, value) if name in WORDS else parse_numeric(name, value))
        unknown = set(self.spec) - set(ORDER)
        if unknown:
            raise SpaceError(f"unknown search parameter(s) {', '.join(sorted(unknown))}; "
                             f"choose from {', '.join(ORDER)}.")

    def __bool__(self) -> bool:
        return bool(self.params)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def suggest(self, trial: Any) -> dict[str, Any]:
        """The trial's values, one ``suggest_*`` call per parameter (in :data:`ORDER`)."""
        return {p.name: p.suggest(trial) for p in self.params}

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the alternatives (first option outermost); ranges are refused."""
        ranges = [p.name for p in self.params if p.kind != "categorical"]
        if ranges:
            raise SpaceError(f"--sampler grid needs lists of alternatives (a,b,c), not ranges: "
                             f"{', '.join('--' + r.replace('_', '-') for r in ranges)}.")
        if not self.params:
            raise SpaceError("--sampler grid needs at least one parameter with alternatives (e.g. --eta 0.1,1,10).")
        names = self.names
        return [dict(zip(names, combo)) for combo in itertools.product(*(p.choices for p in self.params))]


def hidden_sizes(value: Any) -> list[int]:
    """A ``hidden`` parameter's value (``30`` or ``"64,32"``) as a list of layer sizes."""
    return [int(value)] if isinstance(value, (int, float)) else [int(s) for s in str(value).split(",")]


__all__ = ["Space", "Param", "SpaceError", "parse_numeric", "parse_words", "hidden_sizes", "PER_MEMBER", "ORDER"]
