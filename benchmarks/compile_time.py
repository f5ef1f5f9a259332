"""CPU seconds of the one-time compile of the compiled engine, for one setting, with an empty cache.

    python benchmarks/compile_time.py --batch 10 [--sizes 784,30,10] [--population]

Run in a fresh process with ``NUMBA_CACHE_DIR`` pointing at an empty folder
(``NUMBA_CACHE_DIR=$(mktemp -d)``): the figure is the CPU time (user + system,
``time.process_time``) of the first ``fit`` on a small synthetic set, Numba
already imported, so it is the compile alone and does not depend on how busy
the machine is.  A second ``fit`` in the same process shows what is left.
"""
from __future__ import annotations

import argparse
import time

import numba  # noqa: F401  (imported before the clock starts)
import numpy as np

import netlearn


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="CPU seconds of the first compile (empty NUMBA_CACHE_DIR)")
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--sizes", default="784,30,10")
    p.add_argument("--population", action="store_true", help="a Population of 16 networks instead")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    g = np.random.default_rng(0)
    X = g.random((400, sizes[0])).astype(np.float32)
    X[X < 0.8] = 0
    y = g.integers(0, sizes[-1], 400)
    for run in ("first", "second"):
        t0, w0 = time.process_time(), time.perf_counter()
        if args.population:
            netlearn.Population(sizes, [0.1] * 16).fit((X, y), 1, args.batch)
        else:
            netlearn.Network(sizes).fit((X, y), 1, args.batch, 0.1, engine="numba")
        print(f"{run} fit: {time.process_time() - t0:.2f} s CPU, {time.perf_counter() - w0:.2f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
