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
Writes are atomic: a temporary file in the same folder, then a rename.
"""
from __future__ import annotations

import inspect
import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from . import costs as costs_mod
from .layers import MODULES, activations
from .layers.dense import Dense
from .data.tabular import Preprocessing
from .network import Network, Sequential

FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be read: not JSON, or not a netlearn / network2 model."""


def temporary_file(path: Path, suffix: str) -> tuple[int, str]:
    """Create a fresh temporary file beside ``path``: ``(fd, name)``.

    Unlike ``tempfile.mkstemp`` (always mode 0600) it is created with mode
    0666 less the umask, so that after the rename the result has the
    permissions of any other file the user writes.
    """
    for _ in range(100):
        tmp = os.path.join(path.parent or ".", f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"Cannot create a temporary file beside {path}.")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise ValueError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    fd, tmp = temporary_file(path, ".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_dict(net: Sequential) -> dict:
    """netlearn's JSON structure for ``net``."""
    mods = []
    for m in net.modules:
        entry: dict[str, Any] = {"type": type(m).__name__}
        cfg = m.get_config()
        if cfg:
            entry["config"] = cfg
        if m.params:
            entry["params"] = [p.tolist() for p in m.params]
        st = m.get_state()
        if st:
            entry["state"] = {k: v.tolist() for k, v in st.items()}
        mods.append(entry)
    d: dict[str, Any] = {"format": "netlearn", "version": FORMAT_VERSION, "cost": net.cost.name,
                         "dtype": net.dtype.name, "modules": mods}
    if isinstance(net, Network):
        d["network"] = {"sizes": net.sizes, "activation": net.activation, "output": net.output, "init": net.init,
                        **{k: v for k, v in net.options().items() if v}}
    pre = preprocessing_dict(net)
    if pre is not None:
        d["preprocessing"] = pre
    return d


def preprocessing_dict(net: Sequential) -> dict | None:
    """The data side of a model (scaling, class labels, task) for the ``"preprocessing"`` key, or None."""
    if net.preprocessing is not None:
        return {**net.preprocessing.to_dict(), "task": net.task}
    return {"task": net._task} if net._task is not None else None


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


def to_network2(net: Sequential) -> dict:
    """The book's JSON structure; refused for stacks that the book's format cannot describe."""
    mods = net.modules
    ok = len(mods) % 2 == 0 and all(isinstance(d, Dense) and isinstance(a, activations.Activation)
                                      and type(a) is not activations.Activation
                                      for d, a in zip(mods[::2], mods[1::2]))
    hidden = {type(a).name for a in mods[1:-1:2]} if ok else set()
    if not ok or len(hidden) > 1:
        raise ValueError("The network2 format holds only Dense layers, each followed by an activation, with one "
                         "activation for all hidden layers. This network has "
                         f"{[type(m).__name__ for m in mods]}; save it in netlearn's format instead "
                         "(format='netlearn').")
    dense = mods[::2]
    return {"sizes": [dense[0].n_in] + [d.n_out for d in dense],
            "weights": [d.W.T.tolist() for d in dense],
            "biases": [d.b[:, None].tolist() for d in dense],
            "cost": net.cost.book_name,
            "activation": hidden.pop() if hidden else "sigmoid",
            "output": mods[-1].name}


def save(net: Sequential, path: str | os.PathLike, format: str = "netlearn") -> None:
    """Save ``net`` to ``path`` as JSON (``format`` is ``"netlearn"`` or ``"network2"``), atomically."""
    if format == "netlearn":
        d = to_dict(net)
    elif format == "network2":
        if preprocessing_dict(net) is not None:
            raise ValueError("The network2 format cannot hold the data preprocessing (scaling, class labels, task) "
                             "this network carries; save it in netlearn's format (format='netlearn').")
        d = to_network2(net)
    else:
        raise ValueError(f"The 'format' parameter must be 'netlearn' or 'network2'. Got {format!r} instead.")
    atomic_write_text(path, json.dumps(d, separators=(",", ":")))


def _array(value: Any, shape: tuple, what: str, dtype) -> np.ndarray:
    try:
        a = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelFileError(f"{what} is not an array of numbers.") from None
    if a.shape != shape:
        raise ModelFileError(f"{what} has shape {a.shape}; expected {shape}.")
    if not np.all(np.isfinite(a)):
        raise ModelFileError(f"{what} contains NaN or infinite values.")
    return a.astype(dtype)


def from_dict(d: dict) -> Sequential:
    """Build a network from netlearn's JSON structure."""
    if d.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"unsupported netlearn format version {d.get('version')!r} (this netlearn reads {FORMAT_VERSION}).")
    dtype = d.get("dtype", "float32")
    mods = []
    try:
        specs = list(d["modules"])
        for i, spec in enumerate(specs):
            cls = MODULES.get(spec.get("type"))
            if cls is None:
                raise ModelFileError(f"module {i} has unknown type {spec.get('type')!r}; known: {sorted(MODULES)}.")
            cfg = dict(spec.get("config", {}))
            if "dtype" in inspect.signature(cls).parameters:
                cfg["dtype"] = dtype
            m = cls(**cfg)
            params = spec.get("params", [])
            if len(params) != len(m.params):
                raise ModelFileError(f"module {i} ({spec['type']}) has {len(params)} parameter arrays; expected {len(m.params)}.")
            for j, (p, v) in enumerate(zip(m.params, params)):
                p[...] = _array(v, p.shape, f"module {i} parameter {j}", p.dtype)
            if "state" in spec:
                m.set_state({k: np.asarray(v, dtype=dtype) for k, v in spec["state"].items()})
            mods.append(m)
        net_info = d.get("network")
        if net_info:
            net = Network.__new__(Network)
            Sequential.__init__(net, mods, cost=d["cost"], dtype=dtype)
            net.sizes, net.activation = list(net_info["sizes"]), net_info["activation"]
            net.output, net.init = net_info["output"], net_info["init"]
            net.dropout = float(net_info.get("dropout", 0.0))
            net.batch_norm = bool(net_info.get("batch_norm", False))
            net.input_noise = float(net_info.get("input_noise", 0.0))
        else:
            net = Sequential(mods, cost=d["cost"], dtype=dtype)
        if "preprocessing" in d:
            set_preprocessing(net, d["preprocessing"])
        return net
    except ModelFileError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ModelFileError(f"malformed netlearn model ({type(exc).__name__}: {exc}).") from None


def from_network2(d: dict, dtype: Any = None) -> Network:
    """Build a :class:`Network` from the book's ``network2.py`` JSON structure."""
    try:
        sizes = [int(s) for s in d["sizes"]]
        cost = costs_mod.get(d["cost"])
        weights, biases = d["weights"], d["biases"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"malformed network2 model ({type(exc).__name__}: {exc}).") from None
    if len(sizes) < 2 or len(weights) != len(sizes) - 1 or len(biases) != len(sizes) - 1:
        raise ModelFileError(f"sizes {sizes} need {len(sizes) - 1} weight and bias arrays; "
                             f"the file has {len(weights)} and {len(biases)}.")
    try:
        net = Network(sizes, activation=d.get("activation", "sigmoid"), cost=cost,
                      output=d.get("output"), dtype=dtype)
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None
    for i, (layer, w, b) in enumerate(zip(net.modules[::2], weights, biases)):
        layer.W[...] = _array(w, (layer.n_out, layer.n_in), f"weights[{i}]", np.float64).T
        layer.b[...] = _array(b, (layer.n_out, 1), f"biases[{i}]", np.float64)[:, 0]
    return net


def load(path: str | os.PathLike, dtype: Any = None) -> Sequential:
    """Load a network saved by netlearn or by the book's ``network2.save`` (told apart by content)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"No model file at {path}.") from None
    except UnicodeDecodeError:
        raise ModelFileError(f"{path} is not a model file: it is not UTF-8 text (netlearn models are JSON).") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path} is not a model file: invalid JSON ({exc}).") from None
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
    raise ModelFileError(f"{path} is not a netlearn or network2 model: it has keys {sorted(d)[:8]}.")
