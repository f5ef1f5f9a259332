"""The learning slowdown: one sigmoid neuron learning to output 0 from input 1 (the opening of the book's chapter 3).

The neuron computes ``a = sigma(z)``, ``z = w x + b``, with input ``x = 1``
and target ``y = 0``.  It is trained by gradient descent (one example, so
every epoch is one step) for 300 epochs from two starting points:

* ``w = 0.6, b = 0.9``: output ``sigma(1.5) = 0.82``; learning is quick, and
  after 300 epochs at eta = 0.15 the output is about 0.09;
* ``w = 2.0, b = 2.0``: output ``sigma(4) = 0.98``; with the quadratic cost
  the neuron barely moves for the first 150 or so epochs (a long plateau) and
  ends near 0.20.

Why: with the quadratic cost ``C = (y - a)^2 / 2`` the gradients are
``dC/dw = (a - y) sigma'(z) x`` and ``dC/db = (a - y) sigma'(z)``, and
``sigma'(z)`` is tiny when the output is near 1 -- the neuron learns slowest
when it is most wrong.  The cross-entropy ``C = -[y ln a + (1 - y) ln(1 - a)]``
gives ``dC/dw = (a - y) x``, ``dC/db = a - y`` (the book's eqs. 61-62): no
``sigma'(z)``, so the more wrong the neuron, the faster it learns.

Runs: each start with the quadratic cost and with cross-entropy at eta 0.15,
plus cross-entropy at eta 0.005, the rate the book's cross-entropy figures
use (so their costs fall over the same 300 epochs without being instant).
``output[e]`` and ``cost_value[e]`` are the neuron's output and cost after
epoch ``e`` (``e = 0``: before training), so each list has 301 entries.
Float64 throughout: the figures are a few hundred steps of one neuron.
"""
from __future__ import annotations

import numpy as np

from ..training import Callback, TrainingState
from .common import Context, Summary, format_table, write_results

DESCRIPTION = "one sigmoid neuron, input 1 -> target 0, 300 epochs from w,b = 0.6,0.9 and 2,2: quadratic vs cross-entropy"

#: This experiment makes its own data (one example): it needs no MNIST.
NEEDS_DATA = False

STARTS = ((0.6, 0.9), (2.0, 2.0))
EPOCHS = 300
#: (cost, eta) for each start: both costs at the book's eta 0.15, and cross-entropy at the book's 0.005.
RUNS = (("quadratic", 0.15), ("cross-entropy", 0.15), ("cross-entropy", 0.005))


class _Trace(Callback):
    """Record the neuron's output and cost after every epoch."""

    def __init__(self, x: np.ndarray, t: np.ndarray, output: list, cost: list) -> None:
        self.x, self.t, self.output, self.cost = x, t, output, cost

    def on_epoch_end(self, state: TrainingState) -> None:
        _record(state.net, self.x, self.t, self.output, self.cost)


def _record(net, x, t, output, cost) -> None:
    output.append(float(net.forward(x)[0, 0]))
    cost.append(float(net.total_cost((x, t))))


def neuron_run(cost: str, w: float, b: float, eta: float, epochs: int = EPOCHS) -> dict:
    """Train the one-neuron network from ``w``, ``b`` for ``epochs`` steps; its run record for the JSON."""
    from ..network import Network

    net = Network([1, 1], cost=cost, dtype=np.float64)
    dense = net.modules[0]
    dense.W[...] = w
    dense.b[...] = b
    x = np.ones((1, 1))
    t = np.zeros((1, 1))  # a float target: the output should be 0
    output: list[float] = []
    values: list[float] = []
    _record(net, x, t, output, values)
    net.fit((x, t), epochs, 1, eta, callbacks=[_Trace(x, t, output, values)], monitor_evaluation_accuracy=False,
            engine="numpy")
    return {"cost": cost, "w": w, "b": b, "eta": eta, "output": output, "cost_value": values}


def run(ctx: Context) -> Summary:
    """The six runs (two starts x three cost/eta pairs); one figure of cost against epoch per start and cost."""
    from .figures import plot_slowdown

    runs = [neuron_run(cost, w, b, eta) for (w, b) in STARTS for cost, eta in RUNS]
    path = write_results(ctx, {"settings": {"x": 1.0, "y": 0.0, "epochs": EPOCHS, "starts": [list(s) for s in STARTS]},
                               "runs": runs})
    files = [str(path)]
    for w, b in STARTS:
        mine = [r for r in runs if (r["w"], r["b"]) == (w, b)]
        png = ctx.out / f"slowdown_{w:g}_{b:g}.png"
        plot_slowdown(mine, png, title=f"Starting from w = {w:g}, b = {b:g} (output {mine[0]['output'][0]:.2f})")
        files.append(str(png))
    rows = []
    for r in runs:
        o = r["output"]
        rows.append([r["cost"], f"{r['w']:g}, {r['b']:g}", f"{r['eta']:g}", f"{o[0]:.3f}", f"{o[50]:.3f}",
                     f"{o[150]:.3f}", f"{o[-1]:.3f}", f"{r['cost_value'][-1]:.4f}"])
    ctx.log(format_table(["cost", "w, b", "eta", "output 0", "epoch 50", "epoch 150", f"epoch {EPOCHS}",
                          "final cost"], rows))
    q = {(r["w"], r["b"]): r["output"][-1] for r in runs if r["cost"] == "quadratic"}
    headline = ("quadratic cost, eta 0.15: output after 300 epochs "
                + ", ".join(f"{q[s]:.2f} from w,b = {s[0]:g},{s[1]:g}" for s in STARTS))
    return Summary(ctx.name, headline, files)
