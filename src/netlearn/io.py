"""Saving and loading networks as JSON: netlearn's own format and the book's ``network2.py`` format.

netlearn's format keeps any module stack exactly (float32 values written as
the shortest decimal that reads back to the same float)::

    {"format": "netlearn", "version": 1, "cost": "cross-entropy", "dtype": "float32",
     "network": {"sizes": [...], ...} (for a Network), "modules": [{"type": "Dense",
     "config": {...}, "params": [W, b], "state": {}}, {"type": "Sigmoid"}, ...]}

The book's format (``network2.save``)::

    {"sizes": [784, 30, 10], "weights": [(n_out, n_in) lists], "biases": [(n_out, 1) columns],
     "cost": "CrossEntropyCost"}

plus ``activation`` and ``output`` keys, which the book's own loader ignores.
Writes are atomic: a temporary file in the same folder, then a rename
(:mod:`netlearn.files`).  Loading checks every declared size against the
numbers the file carries before allocating anything.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import costs as costs_mod
from .data.tabular import Preprocessing
from .files import atomic_write_text, temporary_file  # noqa: F401 - their old home; plot and the CLI import them here
# The format's writer and module reader (re-exported: their home is netlearn.modelfile).
from .modelfile import (FORMAT_VERSION, ModelFileError, checked_array, module_from, modules_from,  # noqa: F401
                        nested_shape, preprocessing_dict, read_json, save, to_dict, to_network2)
from .network import Network, Sequential


def set_preprocessing(net: Sequential, d: Any) -> None:
    """Attach the ``"preprocessing"`` entry of a model file to ``net`` (ModelFileError when malformed)."""
    try:
        pre = Preprocessing.from_dict(d)
        pre.check_network(net.n_in, net.n_out)
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None
    if pre.features or pre.x_shift is not None or pre.classes is not None:
        net.preprocessing = pre
    net.task = pre.task


def _network_from(info: Any, mods: list, cost: Any, dtype: str) -> Network:
    """The ``network`` section: ``Network``'s options, which must agree with the modules."""
    if not isinstance(info, dict):
        raise ModelFileError(f"'network' is a {type(info).__name__}; expected an object of Network's options.")
    missing = [k for k in ("sizes", "activation", "output", "init") if k not in info]
    if missing:
        raise ModelFileError(f"'network' lacks {', '.join(missing)}.")
    try:
        return Network.from_modules(mods, sizes=info["sizes"], activation=info["activation"], cost=cost,
                                    init=info["init"], output=info["output"], dtype=dtype,
                                    dropout=info.get("dropout", 0.0), batch_norm=info.get("batch_norm", False),
                                    input_noise=info.get("input_noise", 0.0))
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"its 'network' options disagree with its modules: {exc}") from None


def from_dict(d: dict) -> Sequential:
    """Build a network from netlearn's JSON structure (every size checked before it is allocated)."""
    mods, dtype = modules_from(d)
    try:
        if d.get("network"):
            net = _network_from(d["network"], mods, d["cost"], dtype)
        else:
            net = Sequential(mods, cost=d["cost"], dtype=dtype)
        if "preprocessing" in d:
            set_preprocessing(net, d["preprocessing"])
        return net
    except ModelFileError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as exc:
        raise ModelFileError(f"malformed netlearn model ({type(exc).__name__}: {exc}).") from None


def from_network2(d: dict, dtype: Any = None) -> Network:
    """Build a :class:`Network` from the book's ``network2.py`` JSON structure (shapes checked first)."""
    try:
        sizes = [int(s) for s in d["sizes"]]
        cost = costs_mod.get(d["cost"])
        weights, biases = d["weights"], d["biases"]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ModelFileError(f"malformed network2 model ({type(exc).__name__}: {exc}).") from None
    if not isinstance(weights, list) or not isinstance(biases, list):
        raise ModelFileError("'weights' and 'biases' must be lists of arrays.")
    if len(sizes) < 2 or len(weights) != len(sizes) - 1 or len(biases) != len(sizes) - 1:
        raise ModelFileError(f"sizes {sizes} need {len(sizes) - 1} weight and bias arrays; "
                             f"the file has {len(weights)} and {len(biases)}.")
    for i, (n_in, n_out, w, b) in enumerate(zip(sizes[:-1], sizes[1:], weights, biases)):
        for what, v, shape in (("weights", w, (n_out, n_in)), ("biases", b, (n_out, 1))):
            got = nested_shape(v, 2)
            if got != shape:
                raise ModelFileError(f"sizes {sizes} need {what}[{i}] of shape {shape}; the file holds "
                                     f"{got if got is not None else 'an array of another depth'}.")
    try:
        net = Network(sizes, activation=d.get("activation", "sigmoid"), cost=cost,
                      output=d.get("output"), dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(str(exc)) from None
    for i, (layer, w, b) in enumerate(zip(net.modules[::2], weights, biases)):
        layer.W[...] = checked_array(w, (layer.n_out, layer.n_in), f"weights[{i}]", layer.W.dtype).T
        layer.b[...] = checked_array(b, (layer.n_out, 1), f"biases[{i}]", layer.b.dtype)[:, 0]
    return net


def load(path: str | os.PathLike, dtype: Any = None) -> Sequential:
    """Load a network saved by netlearn or by the book's ``network2.save`` (told apart by content)."""
    path = Path(path)
    d = read_json(path)
    if not isinstance(d, dict):
        raise ModelFileError(f"{path} is not a model file: expected a JSON object.")
    try:
        if d.get("format") == "netlearn":
            net = from_dict(d)
            return net.astype(dtype) if dtype is not None else net
        if {"sizes", "weights", "biases"} <= d.keys():
            return from_network2(d, dtype)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except RecursionError:
        raise ModelFileError(f"{path}: nested too deeply to be a model.") from None
    raise ModelFileError(f"{path} is not a netlearn or network2 model: it has keys {sorted(d)[:8]}.")
