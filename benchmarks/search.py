"""Hyper-parameter search: 64 random trials as populations, beside Optuna driving one network at a time.

    NETLEARN_DATA=/path/to/data python benchmarks/search.py [--trials 64] [--epochs 10]
        [--single 8] [--torch 3] [--skip single,torch]

The same random space for every contender: ``[784, 30, 10]`` (sigmoid,
cross-entropy), batch 10, ``--epochs`` epochs, eta log-uniform in [0.01, 10],
lmbda log-uniform in [0.1, 100], monitoring validation accuracy:

- ``netlearn.search``: the trials trained as one Population (up to 64);
- the same with ``pruner="halving"`` (same seed: the same parameters asked in the same order);
- Optuna's ``study.optimize`` driving one netlearn ``Network`` per trial (``--single`` trials);
- Optuna driving a plain PyTorch loop (``--torch`` trials; needs ``pip install torch``);
- population-based training (``strategy="pbt"``, 64 members, ``--interval``) at the same
  network-epochs as the unpruned search;
- compaction: one epoch of the 64-member Population with 64, 32 and 16 members still active (the
  others frozen), the saving that halving's pruned members bring.

Each prints its wall time per trial-epoch (whole trials, evaluation included,
divided by the epochs trained), its network-epochs and its best validation
accuracy; the reference is ten epochs of one network on the plain NumPy path
(``engine="numpy"``), timed in the same run.
"""
from __future__ import annotations

import argparse
import sys
import time


import numpy as np

import netlearn
from netlearn.search.storage import optuna as load_optuna

SIZES = [784, 30, 10]
SPACE = {"eta": "0.01:10:log", "lmbda": "0.1:100:log"}


def line(name: str, seconds: float, epochs: int, best: float, extra: str = "") -> None:
    print(f"  {name:<34} {seconds:8.1f} s  {epochs:5d} network-epochs  {1000 * seconds / max(epochs, 1):8.1f} ms "
          f"per trial-epoch  best {100 * best:.2f}%{extra}")


def run_search(training, validation, args, pruner: str) -> tuple[float, int, float]:
    t = time.perf_counter()
    r = netlearn.search(training, validation, **SPACE, layers=SIZES, batch_size=10, epochs=args.epochs,
                        trials=args.trials, seed=args.seed, pruner=pruner, threads=args.threads)
    s = r.summary
    return time.perf_counter() - t, s["network_epochs"], s["best"]["value"]


def run_single(training, validation, args) -> tuple[float, int, float]:
    """Optuna's optimize loop, one netlearn Network per trial, values reported each epoch."""
    optuna = load_optuna()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=args.seed))

    def objective(trial) -> float:
        eta = trial.suggest_float("eta", 0.01, 10, log=True)
        lmbda = trial.suggest_float("lmbda", 0.1, 100, log=True)
        net = netlearn.Network(SIZES, seed=trial.number)
        try:
            h = net.fit(training, args.epochs, 10, eta, lmbda=lmbda, evaluation_data=validation, seed=args.seed,
                        threads=args.threads)
        except netlearn.DivergenceError:
            return 0.0
        for e, acc in enumerate(h.evaluation_accuracy):
            trial.report(acc, e + 1)
        return max(h.evaluation_accuracy)

    t = time.perf_counter()
    study.optimize(objective, n_trials=args.single)
    return time.perf_counter() - t, args.single * args.epochs, study.best_value


def run_torch(training, validation, args) -> tuple[float, int, float] | None:
    try:
        import torch
    except ImportError:
        return None
    optuna = load_optuna()
    X, y = (torch.from_numpy(a) for a in training)
    Xv, yv = (torch.from_numpy(a) for a in validation)
    Y = torch.nn.functional.one_hot(y.long(), 10).float()
    n = X.shape[0]

    def objective(trial) -> float:
        eta = trial.suggest_float("eta", 0.01, 10, log=True)
        lmbda = trial.suggest_float("lmbda", 0.1, 100, log=True)
        torch.manual_seed(trial.number)
        model = torch.nn.Sequential(torch.nn.Linear(784, 30), torch.nn.Sigmoid(), torch.nn.Linear(30, 10))
        weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
        biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
        opt = torch.optim.SGD([{"params": weights, "weight_decay": lmbda / n}, {"params": biases}], lr=eta)
        loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
        best = 0.0
        for epoch in range(args.epochs):
            perm = torch.randperm(n)
            for s in range(0, n, 10):
                idx = perm[s:s + 10]
                opt.zero_grad()
                loss = loss_fn(model(X[idx]), Y[idx]) / idx.shape[0]
                loss.backward()
                opt.step()
            with torch.no_grad():
                acc = float((model(Xv).argmax(1) == yv).float().mean())
            trial.report(acc, epoch + 1)
            best = max(best, acc)
        return best

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=args.seed))
    t = time.perf_counter()
    study.optimize(objective, n_trials=args.torch)
    return time.perf_counter() - t, args.torch * args.epochs, study.best_value


def run_pbt(training, validation, args) -> tuple[float, int, float]:
    t = time.perf_counter()
    r = netlearn.search(training, validation, **SPACE, layers=SIZES, batch_size=10, epochs=args.epochs,
                        population=args.trials, seed=args.seed, strategy="pbt", interval=args.interval,
                        threads=args.threads)
    return time.perf_counter() - t, r.summary["network_epochs"], r.summary["best"]["value"]


def compaction(training, args) -> list[tuple[int, float]]:
    """Seconds of one training epoch with ``active`` of 64 members still training (the rest frozen)."""
    K = 64
    etas = [float(e) for e in np.geomspace(0.05, 3.0, K)]
    out = []
    for active in (64, 32, 16):
        pop = netlearn.Population(SIZES, etas, 5.0, seed=list(range(K)))

        def freeze(p, epoch, active=active):
            if epoch == 1:
                for k in range(active, K):
                    p.freeze(k)

        hs = pop.fit(training, 2, 10, seed=0, callbacks=[freeze], threads=args.threads)
        out.append((active, hs[0].epoch_seconds[1]))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="64 random trials: populations against one network at a time",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--trials", type=int, default=64)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--single", type=int, default=8, help="trials of Optuna driving one netlearn Network")
    p.add_argument("--torch", type=int, default=3, help="trials of Optuna driving a plain PyTorch loop")
    p.add_argument("--interval", type=int, default=2, help="epochs between PBT's exploit/explore steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--skip", default="", help="comma-separated: search, halving, single, torch, pbt, compaction")
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    training, validation, _ = netlearn.data.load_mnist()
    # Compile once before timing (the kernels are cached on disk after the first run).
    netlearn.Population(SIZES, [0.1] * 2, 1.0, seed=[0, 1]).fit((training[0][:100], training[1][:100]), 1, 10)
    netlearn.Network(SIZES, seed=0).fit((training[0][:100], training[1][:100]), 1, 10, 0.1)

    net = netlearn.Network(SIZES, seed=0)
    t = time.perf_counter()
    net.fit(training, 1, 10, 0.5, lmbda=5.0, seed=0, engine="numpy")
    numpy_epoch = time.perf_counter() - t
    ref = 10 * numpy_epoch
    print(f"{args.trials} random trials, {SIZES}, batch 10, {args.epochs} epochs, eta 0.01..10 (log), lmbda "
          f"0.1..100 (log), validation accuracy every epoch")
    print(f"  reference: ten plain-NumPy epochs of one network {ref:.1f} s ({numpy_epoch:.2f} s per epoch)")
    results = {}
    if "search" not in skip:
        results["search"] = run_search(training, validation, args, "none")
        line("netlearn search", *results["search"], f"  ({results['search'][0] / ref:.1f}x the reference)")
    if "halving" not in skip:
        results["halving"] = run_search(training, validation, args, "halving")
        extra = ""
        if "search" in results:
            extra = (f"  ({100 * results['halving'][1] / results['search'][1]:.0f}% of the network-epochs, "
                     f"{100 * (results['search'][2] - results['halving'][2]):+.2f} pp from unpruned)")
        line("netlearn search --pruner halving", *results["halving"], extra)
    if "single" not in skip and args.single:
        results["single"] = run_single(training, validation, args)
        line(f"Optuna + one Network ({args.single} trials)", *results["single"])
    if "torch" not in skip and args.torch:
        r = run_torch(training, validation, args)
        if r is None:
            print("  Optuna + PyTorch: skipped (PyTorch is not installed: pip install torch)")
        else:
            results["torch"] = r
            extra = ""
            if "search" in results:
                ratio = (r[0] / r[1]) / (results["search"][0] / results["search"][1])
                extra = f"  (netlearn search is {ratio:.0f}x cheaper per trial-epoch)"
            line(f"Optuna + PyTorch ({args.torch} trials)", *r, extra)
    if "pbt" not in skip:
        results["pbt"] = run_pbt(training, validation, args)
        line(f"PBT, {args.trials} members, interval {args.interval}", *results["pbt"], "  (best = final accuracy)")
    if "compaction" not in skip:
        print("  compaction: one training epoch of a 64-member Population with only some still active")
        for active, seconds in compaction(training, args):
            print(f"    {active:2d} active {seconds:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
