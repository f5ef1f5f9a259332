"""One epoch of the book's network on MNIST: netlearn beside a plain NumPy loop, timed in the same run.

    NETLEARN_DATA=/path/to/data python benchmarks/epoch.py [--repeats 5]

[784, 30, 10], sigmoid, cross-entropy, eta 0.5, lmbda 5, mini-batches of 10.
netlearn's figure is ``net.fit(training_data, 3, 10, 0.5, lmbda=5.0)`` end to
end divided by 3 (input checks included); the plain loop runs the same 3
epochs.  Medians over the repeats; the floor of issue 2 is "no slower than the
plain loop", issue 5's target is 0.10 s and 2.5x faster.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import machine, time_netlearn, time_netlearn_numpy, time_plain  # noqa: E402

import netlearn  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="seconds per epoch: netlearn vs a plain NumPy loop")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    training, _, _ = netlearn.data.load_mnist()
    X, y = training
    Y = np.eye(10, dtype=np.float32)[y]
    print(f"machine: {machine()}")
    t = time.perf_counter()
    netlearn.Network([784, 30, 10]).fit((X[:100], y[:100]), 1, 10, 0.5, engine="numba")
    print(f"first fit in this process (imports Numba, loads the cached kernel): {time.perf_counter() - t:.2f} s")
    nl, plain, nlnp = [], [], []
    for _ in range(args.repeats):
        nl.append(time_netlearn(training, [784, 30, 10], 10))
        plain.append(time_plain(X, Y, [784, 30, 10], 10))
        nlnp.append(time_netlearn_numpy(training, [784, 30, 10], 10))
    a, b, c = statistics.median(nl), statistics.median(plain), statistics.median(nlnp)
    print(f"[784, 30, 10] batch 10, seconds per epoch, median of {args.repeats}:")
    print(f"  netlearn (auto: compiled)   {a:.3f}")
    print(f"  netlearn engine='numpy'     {c:.3f}")
    print(f"  plain NumPy loop            {b:.3f}")
    print(f"  plain loop / netlearn       {b / a:.2f}x   (all runs: netlearn {[round(v, 3) for v in nl]}, "
          f"plain {[round(v, 3) for v in plain]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
