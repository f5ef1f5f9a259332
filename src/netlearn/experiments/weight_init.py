"""Weight initialization: default N(0, 1/n_in) against large N(0, 1) weights (the book's ``weight_initialization.py``).

For ``[784, 30, 10]`` and ``[784, 100, 10]``, cross-entropy, eta 0.1,
lmbda 5.0, mini-batches of 10, 30 epochs on all 50,000 images, validation
accuracy after every epoch -- once from each initialization.

Why it matters: with N(0, 1) weights a hidden neuron's weighted input
``z = sum_j w_j x_j + b`` has a standard deviation of about sqrt(number of
active inputs), so most hidden neurons start saturated and learn slowly.
Scaling the weights by 1/sqrt(n_in) keeps ``z`` near 1 and learning starts
at once.  The book's figures: the default initialization is far ahead after
the first epoch and both end at about the same accuracy (~96% for 30 hidden
neurons, ~98% for 100).
"""
from __future__ import annotations

from ..plot import plot_weight_init
from .common import Context, Summary, format_table, pct, run_record, timed, train, write_results

DESCRIPTION = "[784,30,10] and [784,100,10], eta 0.1, lmbda 5, 30 epochs: default vs large init, validation accuracy"

HIDDEN = (30, 100)
ETA, LMBDA, EPOCHS, QUICK_EPOCHS = 0.1, 5.0, 30, 3


def run(ctx: Context) -> Summary:
    """Four runs (two sizes x two initializations); one plot per size."""
    epochs = QUICK_EPOCHS if ctx.quick else EPOCHS
    runs, rows, files = [], [], []
    finals = {}
    for n in HIDDEN:
        acc = {}
        for init in ("default", "large"):
            settings = {"sizes": [784, n, 10], "cost": "cross-entropy", "init": init, "epochs": epochs,
                        "batch_size": 10, "eta": ETA, "lmbda": LMBDA, "evaluation": "validation",
                        "train_size": int(ctx.training[0].shape[0])}
            ctx.log(f"   [784,{n},10] {init} initialization, {epochs} epochs")
            (net, h), seconds = timed(train, ctx, [784, n, 10], init, ctx.training, epochs, ETA, LMBDA,
                                      evaluation_data=ctx.validation, monitor_evaluation_accuracy=True)
            acc[init] = h.evaluation_accuracy
            runs.append(run_record(f"{n} hidden, {init} init", settings, h, seconds))
            rows.append([f"[784,{n},10]", init, pct(h.evaluation_accuracy[0]), pct(h.evaluation_accuracy[-1]),
                         pct(max(h.evaluation_accuracy)), f"{seconds:.1f}s"])
            finals[(n, init)] = h.evaluation_accuracy[-1]
        png = ctx.out / f"weight_initialization_{n}.png"
        plot_weight_init(acc["default"], acc["large"], png, title=f"Validation accuracy, [784,{n},10]")
        files.append(str(png))
    path = write_results(ctx, {"settings": {"eta": ETA, "lmbda": LMBDA, "epochs": epochs, "hidden": list(HIDDEN)},
                               "runs": runs})
    ctx.log(format_table(["network", "init", "epoch 1", f"epoch {epochs}", "best", "time"], rows))
    headline = "; ".join(f"[784,{n},10] default {pct(finals[(n, 'default')])} vs large {pct(finals[(n, 'large')])}"
                         for n in HIDDEN)
    return Summary(ctx.name, f"validation accuracy after {epochs} epochs: {headline}", [str(path), *files])
