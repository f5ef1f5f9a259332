"""Seconds per epoch on MNIST: netlearn beside other ways of training the same network (issue 5's table).

    NETLEARN_DATA=/path/to/data python benchmarks/compare.py [--repeats 3] [--skip torch,sklearn,book]

For each setting -- [784,30,10] batch 10, [784,100,10] batch 10 and batch 100;
all sigmoid, cross-entropy, eta 0.5, lmbda 5 -- it times, in the same run:

* netlearn: ``net.fit(training_data, 3, batch, 0.5, lmbda=5.0)`` end to end
  (input checks included), divided by 3;
* the plain NumPy matrix loop (``_reference.plain_numpy_epoch``), over the same 3 epochs;
* a per-example loop in the style of the book's network2.py (first setting only);
* PyTorch eager on the CPU and scikit-learn's MLPClassifier(solver="sgd"), if installed;
* the compute floor: FLOPs per example = 2 sum n_in n_out (forward) + 2 sum n_in n_out
  (weight gradients) + 2 sum over layers after the first n_in n_out (deltas), times
  50,000, divided by the float32 matrix-product peak measured here: once at the start,
  and again before each repeat of each setting (the floor uses the median of the
  latter, so that a shared machine that slows down mid-run is judged by its speed then).

Every figure is the median over ``--repeats`` runs, each started after a 0.5 s pause (see
``settle``); "ratio" is each one's time over netlearn's (above 1: slower than netlearn).  ``--memory`` adds the peak memory of a
fresh process that loads MNIST and trains one epoch.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reference import book_style_epoch, init, plain_numpy_epoch  # noqa: E402

import netlearn  # noqa: E402

SETTINGS = [([784, 30, 10], 10), ([784, 100, 10], 10), ([784, 100, 10], 100)]
ETA, LMBDA = 0.5, 5.0


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matrix product (all BLAS threads)."""
    g = np.random.default_rng(0)
    a = g.random((n, n), dtype=np.float32)
    b = g.random((n, n), dtype=np.float32)
    c = np.empty_like(a)
    np.matmul(a, b, out=c)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def floor_seconds(sizes: list[int], n: int, peak_gflops: float) -> float:
    """The issue's compute floor for one epoch of n examples."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    flops = 4 * sum(a * b for a, b in pairs) + 2 * sum(a * b for a, b in pairs[1:])
    return flops * n / (peak_gflops * 1e9)


def settle(seconds: float = 0.5) -> None:
    """Pause before a timed run: the worker threads of the previous run's BLAS or OpenMP spin for a
    while after their last task (OpenBLAS about 0.1 s), taking a core from whatever runs next."""
    time.sleep(seconds)


def time_netlearn(training, sizes, batch, epochs=3) -> float:
    net = netlearn.Network(sizes, seed=0)
    t = time.perf_counter()
    net.fit(training, epochs, batch, ETA, lmbda=LMBDA, seed=0, engine="numba")
    return (time.perf_counter() - t) / epochs


def time_netlearn_numpy(training, sizes, batch, epochs=1) -> float:
    net = netlearn.Network(sizes, seed=0)
    t = time.perf_counter()
    net.fit(training, epochs, batch, ETA, lmbda=LMBDA, seed=0, engine="numpy")
    return (time.perf_counter() - t) / epochs


def time_plain(X, Y, sizes, batch, epochs=3) -> float:
    Ws, bs = init(sizes)
    t = time.perf_counter()
    for e in range(epochs):
        plain_numpy_epoch(X, Y, Ws, bs, batch, ETA, LMBDA, seed=e)
    return (time.perf_counter() - t) / epochs


def time_book(X, Y, sizes, batch) -> float:
    Ws, bs = init(sizes)
    t = time.perf_counter()
    book_style_epoch(X, Y, Ws, bs, batch, ETA, LMBDA)
    return time.perf_counter() - t


def time_torch(X, Y, sizes, batch, threads: int | None = None) -> float:
    """PyTorch eager: Linear/Sigmoid modules, BCE-with-logits summed per example, SGD with weight decay
    lmbda/n on the weights only.  ``threads``: torch's intra-op threads for this run (restored after)."""
    import torch

    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _time_torch(torch, X, Y, sizes, batch)
    finally:
        torch.set_num_threads(saved)


def _time_torch(torch, X, Y, sizes, batch) -> float:
    torch.manual_seed(0)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers[:-1])  # the last sigmoid is inside the loss
    n = X.shape[0]
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": LMBDA / n}, {"params": biases}], lr=ETA)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    t = time.perf_counter()
    perm = torch.randperm(n)
    for s in range(0, n, batch):
        idx = perm[s:s + batch]
        xb, yb = Xt[idx], Yt[idx]
        opt.zero_grad()
        loss = loss_fn(model(xb), yb) / xb.shape[0]
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def time_sklearn(X, y, sizes, batch) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    n = X.shape[0]
    clf = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="logistic", solver="sgd",
                        learning_rate_init=ETA, alpha=LMBDA * batch / n, batch_size=batch, momentum=0.0,
                        max_iter=1, shuffle=True, random_state=0, tol=0, n_iter_no_change=10 ** 9)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return time.perf_counter() - t


def _vm(key: str) -> float:
    """A line of /proc/self/status in MB (VmHWM: peak resident memory of this process image)."""
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_child() -> None:
    """Run in a fresh process: peak resident memory growth while loading MNIST and training one epoch.

    (``getrusage``'s ``ru_maxrss`` survives ``exec`` on Linux, so the parent's peak would show;
    ``VmHWM`` of /proc/self/status belongs to this process alone.)
    """
    net = netlearn.Network([784, 30, 10], seed=0)
    net.fit((np.random.default_rng(0).random((50, 784), dtype=np.float32), np.zeros(50, int)), 1, 10, 0.5,
            engine="numba")
    base = _vm("VmHWM")
    training, validation, test = netlearn.data.load_mnist()
    data_mb = sum(x.nbytes for x, _ in (training, validation, test)) / 2 ** 20
    net.fit(training, 1, 10, ETA, lmbda=LMBDA, evaluation_data=validation, seed=0)
    print(f"{data_mb:.0f} {_vm('VmHWM') - base:.0f}")


def thread_report() -> str:
    try:
        from threadpoolctl import threadpool_info

        info = threadpool_info()
        return ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}) "
                         f"{i['num_threads']} threads" for i in info)
    except ImportError:
        return "threadpoolctl not installed"


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} CPUs, load average {load:.1f}, Python {platform.python_version()}, " \
           f"NumPy {np.__version__}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip", default="", help="comma-separated: torch, sklearn, book, numpy-path")
    p.add_argument("--settings", default="0,1,2", help="which settings (indices into the list above)")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch.set_num_threads for its runs (0: torch's default; on a busy machine its "
                        "spinning OpenMP threads can make it 50x slower)")
    p.add_argument("--blas-threads", type=int, default=0,
                   help="limit BLAS threads (threadpoolctl) during the timed training runs, not the peak "
                        "measurement; 0: leave as is. On a busy machine multi-threaded BLAS at batch 100 can "
                        "stall 50x")
    p.add_argument("--memory", action="store_true", help="also measure peak memory in a fresh process")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        memory_child()
        return 0
    skip = set(filter(None, args.skip.split(",")))
    for name in ("torch", "sklearn"):
        if name not in skip:
            try:
                __import__(name)
            except ImportError:
                print(f"({name} not installed: skipped)")
                skip.add(name)
    training, validation, test = netlearn.data.load_mnist()
    X, y = training
    Y = np.eye(10, dtype=np.float32)[y]
    print(f"machine: {machine()}")
    print(f"BLAS: {thread_report()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '-')}")
    t = time.perf_counter()
    # Load (or compile) every kernel the settings use, so that no timed run pays for it.
    for sizes, batch in SETTINGS:
        netlearn.Network(sizes).fit((X[:200], y[:200]), 1, batch, ETA, engine="numba")
    print(f"first fits in this process (import Numba, load the cached kernels): {time.perf_counter() - t:.2f} s")
    peaks = [matmul_peak() for _ in range(args.repeats)]
    peak = statistics.median(peaks)
    print(f"float32 matmul peak: {peak:.0f} GFLOP/s (median of {len(peaks)})\n")
    limit = None
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(args.blas_threads, user_api="blas")
        print(f"(BLAS limited to {args.blas_threads} thread(s) for the timed runs)\n")
    for si in (int(s) for s in args.settings.split(",")):
        sizes, batch = SETTINGS[si]
        runs: dict[str, list[float]] = {}
        timers = {"netlearn": lambda: time_netlearn(training, sizes, batch),
                  "plain NumPy loop": lambda: time_plain(X, Y, sizes, batch)}
        if "numpy-path" not in skip:
            timers["netlearn engine='numpy'"] = lambda: time_netlearn_numpy(training, sizes, batch)
        if "torch" not in skip:
            timers["PyTorch eager CPU"] = lambda: time_torch(X, Y, sizes, batch, args.torch_threads)
        if "sklearn" not in skip:
            timers["scikit-learn MLPClassifier"] = lambda: time_sklearn(X, y, sizes, batch)
        setting_peaks = []
        for r in range(args.repeats):
            settle()
            setting_peaks.append(matmul_peak(repeats=3))  # the machine's state now (a shared machine drifts)
            for name, timer in timers.items():
                settle()
                runs.setdefault(name, []).append(timer())
            if "book" not in skip and si == 0 and r == 0:
                settle()
                runs.setdefault("book-style per-example loop", []).append(time_book(X, Y, sizes, batch))
        ref = statistics.median(runs["netlearn"])
        print(f"{sizes} batch {batch}: seconds per epoch (median of {args.repeats}; book-style: 1 run)")
        for name, times in runs.items():
            med = statistics.median(times)
            print(f"  {name:<30} {med:8.3f}   ratio {med / ref:6.2f}")
        local_peak = statistics.median(setting_peaks)
        fl = floor_seconds(sizes, X.shape[0], local_peak)
        print(f"  {'compute floor':<30} {fl:8.3f}   netlearn / floor {ref / fl:5.2f}   (peak during these "
              f"runs: {local_peak:.0f} GFLOP/s)")
        print(f"  (netlearn runs: {', '.join(f'{x:.3f}' for x in runs['netlearn'])})\n")
    if limit is not None:
        limit.restore_original_limits()
    if args.memory:
        out = subprocess.run([sys.executable, __file__, "--memory-child"], capture_output=True, text=True,
                             check=True).stdout.split()
        data_mb, grew = float(out[0]), float(out[1])
        print(f"memory: MNIST as float32 is {data_mb:.0f} MB; loading it and training one epoch raised the "
              f"peak RSS by {grew:.0f} MB (allowed: {data_mb + 150:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
