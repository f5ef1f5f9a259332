"""Compiling ahead: one-network kernels compiled by a second process while this one trains populations.

A kernel's first compile takes several seconds of one core, and a command
that needs several kernels used to pay for them one after another:
``netlearn tune`` trains populations first, then single networks at batch 10
and at 32 or more, three compiles of 4-7 s each.  :func:`ahead` starts a child
process that compiles the named one-network kernels into Numba's disk cache
on another core; when a ``fit`` first needs one of them
(:meth:`CompiledEpochs.compile <netlearn.engine.single.CompiledEpochs.compile>`),
it waits for the child to be done with it (:func:`wait`) and loads it from the
cache.  (Started before the data set loads, in a command that needs one
kernel, it measured no gain: a cold ``netlearn train --batch-size 100``
took 8.3 / 7.0 s without and 7.5 / 8.2 s with it.)  The machine code is the
same whichever process compiled it, so nothing learned depends on this.
If the child fails, or is not done within ``WAIT_SECONDS``, the waiting
process compiles the kernel itself.  A child still running when the process
exits is stopped.

Plain Python: importing this module does not import Numba (the child does).
"""
from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .support import kernel_key, resolve_threads, row_by_row

#: The longest a process waits for a child's kernel before compiling it itself.
WAIT_SECONDS = 600.0

#: A run whose mini-batch of synthetic inputs would take more than this is compiled where it is used.
MAX_SYNTHETIC_BYTES = 40 << 20

#: Kernel key -> set when the child has compiled it, or has ended without it.
_events: dict[str, threading.Event] = {}
_children: list[subprocess.Popen] = []
_lock = threading.Lock()


def ahead(runs: Sequence[tuple[Sequence[int], Any, int, int | None]]) -> list[str]:
    """Start compiling, in one child process, the kernels of these one-network runs in turn; returns their keys.

    Each run is ``(sizes, dtype, m, threads)``: the layer sizes, the dtype,
    the mini-batch size (at most the number of examples) and ``fit``'s
    ``threads``.  Kernels already started by an earlier call, or sharing a
    key (:func:`~netlearn.engine.support.kernel_key`), are compiled once.  A
    run whose mini-batch needs more than ``MAX_SYNTHETIC_BYTES`` of synthetic
    inputs is left to compile where it is used.
    """
    jobs, keys = [], []
    with _lock:
        for sizes, dtype, m, threads in runs:
            sizes, dt = [int(v) for v in sizes], np.dtype(dtype)
            try:
                rows = row_by_row(m, resolve_threads(threads, m), sizes[0], dt.itemsize)
            except ValueError:  # (bad threads: the run itself says so)
                continue
            key = kernel_key(rows, len(sizes) - 1, dt)
            if key in _events or key in keys or m * sizes[0] * dt.itemsize > MAX_SYNTHETIC_BYTES:
                continue
            jobs.append({"sizes": sizes, "dtype": dt.name, "m": int(m), "threads": threads})
            keys.append(key)
        if not jobs:
            return []
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])  # (the child imports this same netlearn)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        try:
            child = subprocess.Popen([sys.executable, "-m", "netlearn.engine.background", json.dumps(jobs)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, text=True)
        except OSError:  # no second process here: each kernel compiles where it is first used
            return []
        events = {key: threading.Event() for key in keys}
        _events.update(events)
        _children.append(child)
    threading.Thread(target=_listen, args=(child, events), daemon=True).start()
    return keys


def _listen(child: subprocess.Popen, events: dict[str, threading.Event]) -> None:
    """Set each key's event as the child reports it compiled, and every remaining one when the child ends."""
    assert child.stdout is not None
    with child.stdout as out:
        for line in out:
            event = events.get(line.strip())
            if event is not None:
                event.set()
    child.wait()
    for event in events.values():
        event.set()


def wait(key: str) -> None:
    """If a child is compiling the kernel ``key``, wait until it is done (or has failed, or ``WAIT_SECONDS``)."""
    event = _events.get(key)
    if event is not None:
        event.wait(WAIT_SECONDS)


@atexit.register
def _stop_children() -> None:
    for child in _children:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                child.kill()


def _compile(job: dict) -> str:
    """Compile the kernel of one run on synthetic data of its shape; returns the kernel's key."""
    from .. import optimizers
    from ..network import Network
    from . import load

    sizes, dtype, m = job["sizes"], np.dtype(job["dtype"]), job["m"]
    X = np.zeros((m, sizes[0]), dtype)
    X[:, 0] = 1  # (one non-zero input per example: the types do not depend on the values)
    T = np.zeros((m, sizes[-1]), dtype)
    epochs = load("single").CompiledEpochs(Network(sizes, dtype=dtype), optimizers.get(None, 0.1), X, T, m,
                                           job["threads"])
    epochs.compile()
    return epochs.key


def main(argv: Sequence[str] | None = None) -> int:
    """The child: compile each run of the JSON list ``argv[0]`` in turn, printing each kernel's key when done."""
    jobs = json.loads((sys.argv[1:] if argv is None else argv)[0])
    for job in jobs:
        print(_compile(job), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
