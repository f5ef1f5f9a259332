"""BLAS threads under load: an Adam [784,100,10] epoch on the NumPy path beside two busy processes.

Each configuration trains in a fresh process (BLAS reads ``OPENBLAS_NUM_THREADS``
when it loads) while two other processes spin on the CPU, as on a machine
shared with other work:

* ``default``: netlearn as installed, the BLAS with its own thread count
  (fit runs its small products on one BLAS thread by itself, see
  :mod:`netlearn.blas`);
* ``OPENBLAS_NUM_THREADS=1``: the BLAS limited to one thread for the whole
  process, the figure to match (target: ``default`` at most 1.6x this);
* ``unlimited`` (with ``--unlimited``): netlearn's limit switched off
  (``netlearn.blas.SMALL_PRODUCT = 0``), i.e. the behaviour before it, which
  can be very slow under load.

The configurations take turns (in a rotating order), ``--repeats`` times each, and the medians of
the epoch times (``History.epoch_seconds``) are printed side by side.  The data
are MNIST's training images when ``NETLEARN_DATA`` is set, else synthetic
images of the same shape.

    python benchmarks/blas_threads.py --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

WORKER = r"""
import json, os, sys
import numpy as np
import netlearn
from netlearn import optimizers
from threadpoolctl import threadpool_info

n, unlimited = int(sys.argv[1]), sys.argv[2] == "1"
if unlimited:
    netlearn.blas.SMALL_PRODUCT = 0
if os.environ.get("NETLEARN_DATA"):
    (X, y), _, _ = netlearn.data.load_mnist()
    X, y = X[:n], y[:n]
else:
    g = np.random.default_rng(0)
    X = g.random((n, 784), dtype=np.float32)
    y = g.integers(0, 10, n)
net = netlearn.Network([784, 100, 10], cost="log-likelihood", seed=0)
h = net.fit((X, y), 1, 10, optimizer=optimizers.adam(1e-3), seed=0, engine="numpy")
blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
print(json.dumps({"seconds": h.epoch_seconds[0], "blas_threads": blas}))
"""

BUSY = "while True: pass"


def run(config: str, n: int) -> dict:
    env = dict(os.environ)
    env.pop("OPENBLAS_NUM_THREADS", None)
    if config == "OPENBLAS_NUM_THREADS=1":
        env["OPENBLAS_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", WORKER, str(n), "1" if config == "unlimited" else "0"],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="epochs timed per configuration")
    p.add_argument("--train-size", type=int, default=50_000, help="examples in the epoch")
    p.add_argument("--busy", type=int, default=2, help="busy processes running beside the epoch")
    p.add_argument("--unlimited", action="store_true", help="also time netlearn's limit switched off")
    args = p.parse_args()
    configs = ["default", "OPENBLAS_NUM_THREADS=1"] + (["unlimited"] if args.unlimited else [])
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.busy)]
    times: dict[str, list[float]] = {c: [] for c in configs}
    threads: dict[str, list[int]] = {}
    try:
        for r in range(args.repeats):
            k = r % len(configs)  # each configuration takes each place in the turn: no order bias
            for c in configs[k:] + configs[:k]:
                res = run(c, args.train_size)
                times[c].append(res["seconds"])
                threads[c] = res["blas_threads"]
                print(f"repeat {r + 1}: {c:<24} {res['seconds']:.2f} s", file=sys.stderr)
    finally:
        for b in busy:
            b.kill()
            b.wait()
    ref = statistics.median(times["OPENBLAS_NUM_THREADS=1"])
    data = "MNIST" if os.environ.get("NETLEARN_DATA") else "synthetic"
    print(f"Adam [784,100,10], batch 10, {args.train_size} {data} examples, NumPy path, "
          f"{args.busy} busy processes, {os.cpu_count()} CPUs; median of {args.repeats} epochs")
    print(f"{'configuration':<24} {'s/epoch':>8} {'x one thread':>13}  BLAS threads after fit")
    for c in configs:
        m = statistics.median(times[c])
        print(f"{c:<24} {m:8.2f} {m / ref:12.2f}x  {threads[c]}")


if __name__ == "__main__":
    main()
