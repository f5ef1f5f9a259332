"""64 book networks at once: seconds per epoch of a Population beside 64 single runs' estimate.

    NETLEARN_DATA=/path/to/data python benchmarks/population.py [--networks 64] [--repeats 2]

Trains K networks [784, 30, 10] (sigmoid, cross-entropy, batch 10; etas spread
over 0.05..3, lmbda 5, seeds 0..K-1) for one epoch as one Population, and times
one epoch of a single netlearn network and of the plain NumPy loop in the same
run; "K separate" is K times those.  Issue 5's target: 64 networks in at most
2.5 s per epoch on 2 cores.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import machine, time_netlearn, time_plain  # noqa: E402

import netlearn  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="seconds per epoch of a Population of K networks")
    p.add_argument("--networks", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    training, validation, _ = netlearn.data.load_mnist()
    X, y = training
    Y = np.eye(10, dtype=np.float32)[y]
    K = args.networks
    etas = [float(e) for e in np.geomspace(0.05, 3.0, K)]
    print(f"machine: {machine()}")
    netlearn.Population([784, 30, 10], etas, 5.0, seed=list(range(K))).fit((X[:100], y[:100]), 1, 10)
    time_netlearn((X[:100], y[:100]), [784, 30, 10], 10, epochs=1)  # (the one-network kernel too: no compile timed)
    pop_s, eval_s, one, plain = [], [], [], []
    for _ in range(args.repeats):
        pop = netlearn.Population([784, 30, 10], etas, 5.0, seed=list(range(K)))
        t = time.perf_counter()
        hs = pop.fit(training, 1, 10, evaluation_data=validation, seed=0)
        eval_s.append(time.perf_counter() - t)
        pop_s.append(hs[0].epoch_seconds[0])
        one.append(time_netlearn(training, [784, 30, 10], 10, epochs=1))
        plain.append(time_plain(X, Y, [784, 30, 10], 10, epochs=1))
    best = max(h.evaluation_accuracy[-1] for h in hs if h.evaluation_accuracy)
    a, b, c, d = (statistics.median(v) for v in (pop_s, eval_s, one, plain))
    print(f"{K} networks [784, 30, 10], batch 10, median of {args.repeats}:")
    print(f"  Population, training epoch        {a:7.2f} s   ({a / K * 1000:.0f} ms per network)")
    print(f"  Population, with validation        {b:7.2f} s   (best validation accuracy {100 * best:.2f}%)")
    print(f"  {K} x one netlearn network          {K * c:7.2f} s")
    print(f"  {K} x the plain NumPy loop          {K * d:7.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
