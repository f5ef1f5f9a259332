"""What the compiled engine can train, and the settings that steer it (no Numba here).

The training loop asks this module before anything is compiled: :func:`describe`
reads a network into activation codes and an output-delta kind,
:func:`sgd_coefficients` reads an optimizer into ``(eta, c2, c1)``, and both
raise :class:`EngineUnavailable` with the reason when the compiled kernels do
not cover the case.  :func:`engine_setting` and :func:`resolve_threads` read
``NETLEARN_ENGINE`` and ``NETLEARN_THREADS``; a bad value is an error whatever
engine then trains.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from .. import costs
from ..layers import activations
from ..layers.dense import Dense
from ..optimizers import Optimizer, add_decayed_weights, add_l1, scale_by_learning_rate
from .codes import ACTIVATION_CODES, CHAINED, FUSED, HINGE, MAX_AUTO_THREADS, ROWS_MAX_BYTES, ROWS_MIN_BATCH, SOFTMAX

#: The values of ``engine=`` and ``NETLEARN_ENGINE``.
ENGINES = ("auto", "numpy", "numba")


class EngineUnavailable(ValueError):
    """The compiled engine cannot train this network/optimizer here (the message says why)."""


def describe(net: Any) -> tuple[list[Dense], list[int], int]:
    """``(dense_layers, activation_codes, delta_kind)`` for a supported network, else EngineUnavailable.

    Supported: ``Sequential`` stacks of exactly ``Dense, activation, Dense,
    activation, ...`` with element-wise activations (sigmoid, tanh, relu,
    identity), ending in the cost's natural output (cross-entropy/sigmoid,
    log-likelihood/softmax, quadratic/identity, hinge/identity) or the quadratic
    cost with any element-wise output (the book's quadratic/sigmoid).
    """
    # The network says whether its back-propagation is Sequential's own (which the kernels reproduce);
    # asking it keeps the engine free of an import of netlearn.network (which imports the training loop).
    standard = getattr(net, "uses_standard_backprop", None)
    if standard is None or not standard():
        raise EngineUnavailable("the network class overrides backprop()")
    mods = net.modules
    if len(mods) % 2:
        raise EngineUnavailable("the modules do not alternate Dense, activation")
    dense, codes = [], []
    for i in range(0, len(mods), 2):
        d, a = mods[i], mods[i + 1]
        if type(d) is not Dense:
            raise EngineUnavailable(f"module {i} is {type(d).__name__}, not Dense")
        if type(a) not in (activations.Sigmoid, activations.Tanh, activations.ReLU, activations.Identity,
                           activations.Softmax):
            raise EngineUnavailable(f"module {i + 1} is {type(a).__name__}, not an element-wise activation")
        dense.append(d)
        codes.append(ACTIVATION_CODES[a.name])
    if SOFTMAX in codes[:-1]:
        raise EngineUnavailable("softmax is only supported as the output activation")
    cost = net.cost
    if type(cost) not in (costs.CrossEntropyCost, costs.LogLikelihoodCost, costs.QuadraticCost, costs.HingeCost):
        raise EngineUnavailable(f"the cost {type(cost).__name__} is not one of netlearn's own")
    if net.fused:
        kind = HINGE if type(cost) is costs.HingeCost else FUSED
    elif type(cost) is costs.QuadraticCost and codes[-1] != SOFTMAX:
        kind = CHAINED
    else:
        raise EngineUnavailable(f"the {cost.name} cost with a {mods[-1].name} output is not a natural pairing")
    dtype = dense[0].W.dtype
    for d in dense:
        for p in (d.W, d.b):
            if p.dtype != dtype or not p.flags.c_contiguous:
                raise EngineUnavailable("parameters are not C-contiguous arrays of one dtype")
    return dense, codes, kind


def sgd_coefficients(opt: Any) -> tuple[float, float, float]:
    """``(eta, c2, c1)`` if ``opt`` is plain SGD with optional L2 (``c2``) / L1 (``c1``) links, else EngineUnavailable.

    Read once per epoch, so learning-rate schedules that change ``opt.eta``
    between epochs keep working.
    """
    if type(opt) is not Optimizer:
        raise EngineUnavailable(f"the optimizer is a {type(opt).__name__}")
    links = opt.transform.links
    if not links or type(links[-1]) is not scale_by_learning_rate:
        raise EngineUnavailable("the optimizer chain does not end in scale_by_learning_rate")
    c2 = c1 = 0.0
    for link in links[:-1]:
        if type(link) is add_decayed_weights:
            c2 += link.c
        elif type(link) is add_l1:
            c1 += link.c
        else:
            raise EngineUnavailable(f"the optimizer link {type(link).__name__} is not compiled")
    return links[-1].eta, c2, c1


def engine_setting(engine: str | None) -> str:
    """``engine`` checked and lower-cased; None reads ``NETLEARN_ENGINE`` (default ``"auto"``).

    ``NETLEARN_ENGINE`` is checked even when ``engine`` is given, so that a
    mistyped variable is reported on every path, not only where it is read.
    """
    env = os.environ.get("NETLEARN_ENGINE", "")
    if env and env.lower() not in ENGINES:
        raise ValueError(f"NETLEARN_ENGINE must be one of {list(ENGINES)}. Got {env!r} instead; "
                         f"unset it or set it to 'auto'.")
    if engine is None:
        engine = env or "auto"
    if not isinstance(engine, str) or engine.lower() not in ENGINES:
        raise ValueError(f"The 'engine' parameter must be one of {list(ENGINES)}. Got {engine!r} instead.")
    return engine.lower()


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def env_threads() -> int | None:
    """``NETLEARN_THREADS`` as a whole number of threads (1 or more), None when unset; a bad value is a ValueError."""
    raw = os.environ.get("NETLEARN_THREADS", "")
    if not raw.strip():
        return None
    try:
        threads = int(raw)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"NETLEARN_THREADS must be a whole number of threads, such as 1 or 2. "
                         f"Got {raw!r} instead; unset it to use the default.")
    return threads


def resolve_threads(threads: int | None, batch_size: int) -> int:
    """How many threads train mini-batches of ``batch_size``: ``threads`` if given, else the
    environment variable ``NETLEARN_THREADS``, else the available cores (at most
    ``MAX_AUTO_THREADS``, and at least 25 examples per thread).

    ``NETLEARN_THREADS`` is checked even when ``threads`` is given.
    """
    source = "threads"
    env = env_threads()
    if threads is None and env is not None:
        threads, source = env, "NETLEARN_THREADS"
    if threads is None:
        if sys.platform == "win32":  # the barrier yields through POSIX sched_yield
            return 1
        return max(1, min(available_cores(), MAX_AUTO_THREADS, batch_size // 25))
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"{source} must be a whole number of threads, 1 or more. Got {threads!r} instead.")
    if threads > 1 and sys.platform == "win32":  # pragma: no cover
        raise ValueError("threads > 1 needs a POSIX system (the threads wait with sched_yield); use threads=1.")
    return int(threads)


def row_by_row(m: int, threads: int, n_in: int, itemsize: int) -> bool:
    """Whether mini-batches of ``m`` examples (``threads`` threads, ``n_in`` inputs) take the row-by-row kernel.

    Batches of ``ROWS_MIN_BATCH`` or more, as long as the buffers that file a
    batch's non-zero inputs by position (pairs of value and example number,
    per thread, a thread's share of a batch being up to all of it) fit in
    ``ROWS_MAX_BYTES``; smaller batches go example by example.
    """
    return ROWS_MIN_BATCH <= m < 2 ** 31 and 2 * threads * n_in * 2 * m * itemsize <= ROWS_MAX_BYTES


def kernel_key(rows: bool, n_layers: int, dtype: Any) -> str:
    """The one-network kernel (and its argument types) that a run compiles: ``"<kernel>:<layers>:<dtype>"``.

    ``rows``: whether it goes row by row (:func:`row_by_row`).  Two runs with
    the same key use the same compiled code.
    """
    return f"{'train_rows' if rows else 'train'}:{n_layers}:{np.dtype(dtype).name}"
