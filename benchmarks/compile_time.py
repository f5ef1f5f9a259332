"""CPU seconds of the one-time compile of the compiled engine, for one setting, with an empty cache.

    python benchmarks/compile_time.py --batch 10 [--sizes 784,30,10] [--population [--mu 0.5]] [--by-function 15]

Run in a fresh process with ``NUMBA_CACHE_DIR`` pointing at an empty folder
(``NUMBA_CACHE_DIR=$(mktemp -d)``): the figure is the CPU time (user + system,
``time.process_time``) of the first ``fit`` on a small synthetic set, Numba
already imported, so it is the compile alone and does not depend on how busy
the machine is.  A second ``fit`` in the same process shows what is left.

``--by-function N`` also lists the N slowest compiles of single functions (one
line per function and argument types), from Numba's compile events.  A
kernel's figure includes the compiles of the helpers it calls (they are
compiled while it is typed), so the lines overlap and do not add up.
"""
from __future__ import annotations

import argparse
import time

import numba  # noqa: F401  (imported before the clock starts)
import numpy as np
from numba.core import event

import netlearn


class CompileTimes(event.Listener):
    """CPU seconds of each ``numba:compile`` event: ``(seconds, function name, argument types)``."""

    def __init__(self) -> None:
        self.started: dict = {}
        self.times: list[tuple[float, str, str]] = []

    def on_start(self, ev) -> None:
        self.started[id(ev.data["dispatcher"]), str(ev.data["args"])] = time.process_time()

    def on_end(self, ev) -> None:
        key = id(ev.data["dispatcher"]), str(ev.data["args"])
        self.times.append((time.process_time() - self.started.pop(key), ev.data["dispatcher"].py_func.__name__,
                           str(ev.data["args"])))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="CPU seconds of the first compile (empty NUMBA_CACHE_DIR)")
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--sizes", default="784,30,10")
    p.add_argument("--population", action="store_true", help="a Population of 16 networks instead")
    p.add_argument("--mu", type=float, default=0.0, help="the population's momentum (default 0)")
    p.add_argument("--by-function", type=int, default=0, metavar="N",
                   help="also list the N slowest single-function compiles (0: none)")
    args = p.parse_args(argv)
    times = CompileTimes()
    if args.by_function > 0:
        event.register("numba:compile", times)
    sizes = [int(s) for s in args.sizes.split(",")]
    g = np.random.default_rng(0)
    X = g.random((400, sizes[0])).astype(np.float32)
    X[X < 0.8] = 0
    y = g.integers(0, sizes[-1], 400)
    for run in ("first", "second"):
        t0, w0 = time.process_time(), time.perf_counter()
        if args.population:
            netlearn.Population(sizes, [0.1] * 16, mu=[args.mu] * 16).fit((X, y), 1, args.batch)
        else:
            netlearn.Network(sizes).fit((X, y), 1, args.batch, 0.1, engine="numba")
        print(f"{run} fit: {time.process_time() - t0:.2f} s CPU, {time.perf_counter() - w0:.2f} s wall")
    for seconds, name, types in sorted(times.times, reverse=True)[:args.by_function]:
        print(f"{seconds:6.2f} s  {name}  {types[:90]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
