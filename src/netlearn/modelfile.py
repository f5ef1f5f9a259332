"""netlearn's model JSON, module by module: writing a network, and reading its modules back.

The file format (see :mod:`netlearn.io`, which builds whole networks from it)
without the ``Network`` class: checkpoints and the training loop read and
write their model part through this module, and ``Network.save`` writes
through it, so none of them needs the loader (which needs ``Network``).
A model file is untrusted: every size it declares is checked against the
numbers it carries before anything is allocated, and every problem is one
:class:`ModelFileError`.
"""
from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .layers import MODULES, activations
from .layers.dense import Dense
from .files import atomic_write_text

FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be read: not JSON, not a netlearn / network2 model, or sizes that lie."""


def to_dict(net: Any) -> dict:
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
    if callable(getattr(net, "options", None)):  # a Network: its options, which io checks on loading
        d["network"] = {"sizes": net.sizes, "activation": net.activation, "output": net.output, "init": net.init,
                        **{k: v for k, v in net.options().items() if v}}
    pre = preprocessing_dict(net)
    if pre is not None:
        d["preprocessing"] = pre
    return d


def preprocessing_dict(net: Any) -> dict | None:
    """The data side of a model (scaling, class labels, task) for the ``"preprocessing"`` key, or None."""
    if net.preprocessing is not None:
        return {**net.preprocessing.to_dict(), "task": net.task}
    return {"task": net._task} if net._task is not None else None


def to_network2(net: Any) -> dict:
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


def save(net: Any, path: str | os.PathLike, format: str = "netlearn") -> None:
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


# ---------------------------------------------------------------------------
# Loading.  A model file is untrusted: every size it declares is checked
# against the numbers it carries *before* anything is allocated, and every
# problem is one ModelFileError.  The netlearn format is read in sections
# (header, modules, network options), each by a function of its own, so a
# new top-level key gets a reader of its own beside them.
# ---------------------------------------------------------------------------
def nested_shape(value: Any, ndim: int) -> tuple[int, ...] | None:
    """The shape of ``value`` as nested lists of depth ``ndim``, from the first element at each level.

    Iterative and allocation-free: it only reads list lengths.  None if
    ``value`` is not nested that deep (raggedness is caught when converting).
    """
    shape = []
    v = value
    for _ in range(ndim):
        if not isinstance(v, list):
            return None
        shape.append(len(v))
        v = v[0] if v else None
    if shape and shape[-1] and isinstance(v, (list, dict)):
        return None
    return tuple(shape)


def checked_array(value: Any, shape: tuple, what: str, dtype) -> np.ndarray:
    """``value`` (nested lists from JSON) as an array of ``shape``, checked before it is converted."""
    got = nested_shape(value, len(shape))
    if got != tuple(shape):
        raise ModelFileError(f"{what} has shape {got if got is not None else 'of another depth'}; expected {shape}.")
    try:
        a = np.array(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ModelFileError(f"{what} is not an array of numbers.") from None
    if a.shape != tuple(shape):
        raise ModelFileError(f"{what} has shape {a.shape}; expected {shape}.")
    if not np.all(np.isfinite(a)):
        raise ModelFileError(f"{what} contains NaN or infinite values.")
    if a.size and np.abs(a).max() > np.finfo(dtype).max:
        raise ModelFileError(f"{what} holds values beyond the range of {np.dtype(dtype).name}.")
    return a.astype(dtype)


def _declared_param_shapes(kind: str, cfg: dict) -> list[tuple[int, ...]] | None:
    """The parameter shapes a module's config declares (None for modules without sizes)."""
    def size(key):
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ModelFileError(f"its config {key!r} must be a positive whole number; got {v!r}.")
        return v

    if kind == "Dense":
        return [(size("n_in"), size("n_out")), (size("n_out"),)]
    if kind == "BatchNorm":
        return [(size("n"),), (size("n"),)]
    return None


def module_from(i: int, spec: Any, dtype: str):
    """One module of netlearn's format; its declared sizes are checked against its parameters first."""
    if not isinstance(spec, dict):
        raise ModelFileError(f"module {i} is a {type(spec).__name__}; expected an object with a 'type'.")
    kind = spec.get("type")
    cls = MODULES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ModelFileError(f"module {i} has unknown type {kind!r}; known: {sorted(MODULES)}.")
    cfg, params, state = spec.get("config", {}), spec.get("params", []), spec.get("state", {})
    for name, value, want in (("config", cfg, dict), ("params", params, list), ("state", state, dict)):
        if not isinstance(value, want):
            raise ModelFileError(f"module {i} ({kind}): '{name}' is a {type(value).__name__}; expected a "
                                 f"{want.__name__}.")
    try:
        shapes = _declared_param_shapes(kind, cfg)
    except ModelFileError as exc:
        raise ModelFileError(f"module {i} ({kind}): {exc}") from None
    if shapes is not None:
        if len(params) != len(shapes):
            raise ModelFileError(f"module {i} ({kind}) has {len(params)} parameter arrays; expected {len(shapes)}.")
        for j, (v, shape) in enumerate(zip(params, shapes)):
            got = nested_shape(v, len(shape))
            if got != shape:
                raise ModelFileError(f"module {i} ({kind}) declares parameter {j} of shape {shape}, but the file "
                                     f"holds {got if got is not None else 'an array of another depth'}.")
    cfg = dict(cfg)
    if "dtype" in inspect.signature(cls).parameters:
        cfg["dtype"] = dtype
    m = cls(**cfg)
    if len(params) != len(m.params):
        raise ModelFileError(f"module {i} ({kind}) has {len(params)} parameter arrays; expected {len(m.params)}.")
    for j, (p, v) in enumerate(zip(m.params, params)):
        p[...] = checked_array(v, p.shape, f"module {i} parameter {j}", p.dtype)
    if state:
        expected = m.get_state()
        arrays = {}
        for k, v in state.items():
            if k not in expected:
                raise ModelFileError(f"module {i} ({kind}) has an unknown state entry {k!r}.")
            arrays[k] = checked_array(v, expected[k].shape, f"module {i} state {k!r}", expected[k].dtype)
        m.set_state(arrays)
    return m


def modules_from(d: Any) -> tuple[list, str]:
    """The modules of netlearn's JSON structure ``d`` and its dtype name, every size checked first."""
    if not isinstance(d, dict):
        raise ModelFileError(f"a model is a JSON object; got {type(d).__name__}.")
    if d.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"unsupported netlearn format version {d.get('version')!r} (this netlearn reads {FORMAT_VERSION}).")
    dtype = d.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise ModelFileError(f"'dtype' must be 'float32' or 'float64'; got {dtype!r}.")
    specs = d.get("modules")
    if not isinstance(specs, list) or not specs:
        raise ModelFileError("'modules' must be a non-empty list of modules.")
    if not isinstance(d.get("cost"), str):
        raise ModelFileError(f"'cost' must be a cost's name; got {d.get('cost')!r}.")
    try:
        return [module_from(i, spec, dtype) for i, spec in enumerate(specs)], dtype
    except ModelFileError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as exc:
        raise ModelFileError(f"malformed netlearn model ({type(exc).__name__}: {exc}).") from None


def read_json(path: str | os.PathLike, what: str = "model file", error: type = None) -> Any:
    """The JSON in ``path``; every problem (unreadable, not UTF-8, invalid, nested too deep) is one ``error``."""
    error = ModelFileError if error is None else error
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"No {what} at {path}.") from None
    except IsADirectoryError:
        raise error(f"{path} is a folder, not a {what}.") from None
    except UnicodeDecodeError:
        raise error(f"{path} is not a {what}: it is not UTF-8 text (netlearn writes JSON).") from None
    except OSError as exc:
        raise error(f"{path} cannot be read: {exc.strerror or exc}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path} is not a {what}: invalid JSON ({exc}).") from None
    except RecursionError:
        raise error(f"{path} is not a {what}: its JSON is nested too deeply.") from None
