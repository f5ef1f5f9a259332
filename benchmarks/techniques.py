"""MNIST comparisons of the techniques of Nielsen ch. 3 and the MIT 6.036 notes (seeded; prints a table).

Usage::

    NETLEARN_DATA=/path/to/data python benchmarks/techniques.py [--only NAME[,NAME...]] [--json FILE]

Every experiment is seeded (initialization and shuffling), so a rerun gives
the same accuracies; times depend on the machine and its load.  To keep the
whole script to some minutes on two cores, most experiments train on the
first N training images (stated in the table); evaluation is on the 10,000
validation images, test accuracy on the 10,000 test images.

The headline run (a plain fully-connected net at >= 98.5% test accuracy in
under 5 minutes of training) is a ``netlearn train`` command, printed at the end.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import netlearn
from netlearn import optimizers, second_order
from netlearn.callbacks import EarlyStopping
from netlearn.data import load_mnist
from netlearn.schedules import HalveOnPlateau
from netlearn.training import Callback

HEADLINE = ("netlearn train --layers 784,500,300,10 --activation relu --cost log-likelihood --init he "
            "--batch-norm --dropout 0.2 --optimizer adam --eta 0.002 --schedule exponential --gamma 0.8 "
            "--lmbda 0 --batch-size 100 --epochs 9 --eval test --seed 1")

ROWS: list[dict] = []


def row(experiment: str, setting: str, result: str, seconds: float, **extra) -> None:
    ROWS.append({"experiment": experiment, "setting": setting, "result": result, "train_s": round(seconds, 1),
                 **extra})
    print(f"{experiment:<18} {setting:<46} {result:<44} {seconds:7.1f}s", flush=True)


def subset(data, n):
    return data[0][:n], data[1][:n]


def first_epoch_reaching(acc: list[float], target: float) -> str:
    for i, a in enumerate(acc):
        if a >= target:
            return str(i + 1)
    return f">{len(acc)}"


class TestAccuracy(Callback):
    """Record the test accuracy after each epoch too (the early-stopping comparison needs it)."""

    def __init__(self, test):
        self.test, self.values = test, []

    def on_epoch_end(self, state):
        self.values.append(state.net._accuracy(*self.test))


def optimizers_vs_sgd(tr, va, te):
    """Momentum, Nesterov and Adam against plain SGD: epochs to reach 95% validation accuracy."""
    data = subset(tr, 10_000)
    target = 0.95
    for name, opt, eta in [("sgd", optimizers.sgd(0.1), 0.1), ("momentum", optimizers.momentum(0.1, 0.9), 0.1),
                           ("nesterov", optimizers.nesterov(0.1, 0.9), 0.1), ("adam", optimizers.adam(1e-3), 1e-3)]:
        net = netlearn.Network([784, 100, 10], activation="sigmoid", cost="log-likelihood", seed=1)
        h = net.fit(data, 12, 20, eta, evaluation_data=va, seed=1, optimizer=opt)
        row("optimizer", f"[784,100,10] sigmoid, 10k imgs, {name} eta={eta}",
            f"95% val at epoch {first_epoch_reaching(h.evaluation_accuracy, target)}; "
            f"best {100 * max(h.evaluation_accuracy):.2f}%", sum(h.epoch_seconds))


def activations(tr, va, te):
    """tanh and ReLU against sigmoid hidden neurons (same net, optimizer and epochs)."""
    data = subset(tr, 10_000)
    for act, init in [("sigmoid", "default"), ("tanh", "default"), ("relu", "he")]:
        net = netlearn.Network([784, 100, 10], activation=act, cost="log-likelihood", init=init, seed=1)
        h = net.fit(data, 10, 20, 0.05, evaluation_data=va, seed=1, optimizer="momentum")
        row("activation", f"[784,100,10] {act}, 10k imgs, momentum 0.05",
            f"95% val at epoch {first_epoch_reaching(h.evaluation_accuracy, 0.95)}; "
            f"best {100 * max(h.evaluation_accuracy):.2f}%", sum(h.epoch_seconds))


def dropout(tr, va, te):
    """Dropout p=0.5 on a wide [784,800,10] ReLU net vs none, on 5k images (where it overfits)."""
    data = subset(tr, 5000)
    for p in (0.0, 0.5):
        net = netlearn.Network([784, 800, 10], activation="relu", cost="log-likelihood", init="he", seed=1,
                               dropout=p)
        h = net.fit(data, 20, 50, 0.02, evaluation_data=va, seed=1, optimizer="momentum")
        row("dropout", f"[784,800,10] relu, 5k imgs, 20 ep, dropout={p}",
            f"test {100 * net.accuracy(te):.2f}%, best val {100 * max(h.evaluation_accuracy):.2f}%",
            sum(h.epoch_seconds))


def batch_norm(tr, va, te):
    """Batch normalization in a deeper sigmoid net, same eta."""
    data = subset(tr, 10_000)
    for bn in (False, True):
        net = netlearn.Network([784, 100, 100, 10], activation="sigmoid", cost="log-likelihood", seed=1,
                               batch_norm=bn)
        h = net.fit(data, 10, 50, 0.5, evaluation_data=va, seed=1)
        row("batch norm", f"[784,100,100,10] sigmoid, 10k imgs, SGD 0.5, bn={bn}",
            f"95% val at epoch {first_epoch_reaching(h.evaluation_accuracy, 0.95)}; "
            f"best {100 * max(h.evaluation_accuracy):.2f}%", sum(h.epoch_seconds))


def early_stopping(tr, va, te):
    """No-improvement-in-10/20/50 on one long overfitting run (the book's 1,000 images, 300 epochs).

    The rules are applied to the recorded validation accuracies; each row gives
    where the rule stops, the epoch it keeps, and that epoch's test accuracy.
    """
    data = subset(tr, 1000)
    net = netlearn.Network([784, 30, 10], cost="cross-entropy", seed=1)
    test = TestAccuracy(te)
    h = net.fit(data, 300, 10, 0.5, evaluation_data=va, seed=1, callbacks=[test])
    acc, total = h.evaluation_accuracy, sum(h.epoch_seconds)
    for n in (10, 20, 50):
        best, stop = 0, len(acc)
        for e in range(1, len(acc)):
            if acc[e] > acc[best]:
                best = e
            elif e - best >= n:
                stop = e + 1
                break
        row("early stopping", f"[784,30,10], 1k imgs, no-improvement-in-{n}",
            f"stops at {stop}, keeps {best + 1}: test {100 * test.values[best]:.2f}%",
            sum(h.epoch_seconds[:stop]))
    row("early stopping", "[784,30,10], 1k imgs, none (300 epochs)",
        f"test {100 * test.values[-1]:.2f}% (best val epoch {1 + int(np.argmax(acc))})", total)
    # the same rule as a callback, to show it agrees with the table
    net = netlearn.Network([784, 30, 10], cost="cross-entropy", seed=1)
    h2 = net.fit(data, 300, 10, 0.5, evaluation_data=va, seed=1, callbacks=[EarlyStopping(20)])
    assert h2.epochs == h2.best_epoch + 20


def halving(tr, va, te):
    """The book's halving schedule (no-improvement-in-3, stop at eta/128) vs a fixed eta, at most 40 epochs."""
    data = subset(tr, 5000)
    for sched in (None, HalveOnPlateau(3)):
        net = netlearn.Network([784, 30, 10], cost="cross-entropy", seed=1)
        h = net.fit(data, 40, 10, 0.5, lmbda=1.0, evaluation_data=va, seed=1,
                    callbacks=[sched] if sched else [])
        name = "halve on no-improvement-in-3" if sched else "fixed eta=0.5"
        row("schedule", f"[784,30,10], 5k imgs, {name}",
            f"{h.epochs} epochs, final eta {h.eta[-1]:g}, test {100 * net.accuracy(te):.2f}%", sum(h.epoch_seconds))


def lbfgs(tr, va, te):
    """Full-batch L-BFGS and CG against mini-batch SGD on 1,000 images."""
    data = subset(tr, 1000)
    for method in ("lbfgs", "cg"):
        net = netlearn.Network([784, 30, 10], cost="cross-entropy", seed=1)
        t = time.perf_counter()
        h = second_order.minimize(net, data, method, max_iter=200, lmbda=1.0, evaluation_data=va)
        row("second order", f"[784,30,10], 1k imgs, {method}, lmbda=1, {h.epochs} iterations",
            f"test {100 * net.accuracy(te):.2f}%, cost {h.training_cost[-1]:.4f}", time.perf_counter() - t)
    net = netlearn.Network([784, 30, 10], cost="cross-entropy", seed=1)
    h = net.fit(data, 60, 10, 0.5, lmbda=1.0, evaluation_data=va, seed=1, monitor_training_cost=True)
    row("second order", "[784,30,10], 1k imgs, SGD 0.5, lmbda=1, 60 epochs",
        f"test {100 * net.accuracy(te):.2f}%, cost {h.training_cost[-1]:.4f}", sum(h.epoch_seconds))


EXPERIMENTS = {"optimizers": optimizers_vs_sgd, "activations": activations, "dropout": dropout,
               "batchnorm": batch_norm, "early": early_stopping, "halving": halving, "lbfgs": lbfgs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(EXPERIMENTS), help=f"comma-separated: {','.join(EXPERIMENTS)}")
    p.add_argument("--json", default=None, help="write the rows as JSON")
    args = p.parse_args(argv)
    names = [s for s in args.only.split(",") if s]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        p.error(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    tr, va, te = load_mnist()
    print(f"{'experiment':<18} {'setting':<46} {'result':<44} {'train':>8}")
    for name in names:
        EXPERIMENTS[name](tr, va, te)
    print("\n| experiment | setting | result | training time |\n|---|---|---|---|")
    for r in ROWS:
        print(f"| {r['experiment']} | {r['setting']} | {r['result']} | {r['train_s']:.0f} s |")
    print(f"\nheadline (run separately): {HEADLINE}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(ROWS, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
