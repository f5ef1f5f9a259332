"""Learning rates: training cost per epoch for eta = 0.025, 0.25 and 2.5 (the book's ``multiple_eta.py``).

``[784, 30, 10]``, cross-entropy, the default N(0, 1/n_in) initialization,
lmbda 5.0, mini-batches of 10, 30 epochs on all 50,000 images, training
cost recorded after every epoch.

The book's figure: eta = 0.025 decreases the cost slowly, eta = 0.25 quickly,
and eta = 2.5 overshoots -- the cost oscillates from the start because each
step jumps across the valley's floor.  Heuristic drawn from it: find the
order of magnitude of eta at which the cost starts to oscillate and stay a
factor of 2 or so below.
"""
from __future__ import annotations

from ..plot import plot_multiple_eta
from ..history import DivergenceError
from .common import Context, Summary, format_table, run_record, timed, train, write_results

DESCRIPTION = "[784,30,10], eta 0.025 / 0.25 / 2.5, lmbda 5, 30 epochs, default init: training cost per epoch"

ETAS = (0.025, 0.25, 2.5)
LMBDA, EPOCHS, QUICK_EPOCHS = 5.0, 30, 3


def run(ctx: Context) -> Summary:
    """Three runs, one per learning rate; one plot of their training costs."""
    epochs = QUICK_EPOCHS if ctx.quick else EPOCHS
    runs, histories, rows = [], [], []
    for eta in ETAS:
        settings = {"sizes": [784, 30, 10], "cost": "cross-entropy", "init": "default", "epochs": epochs,
                    "batch_size": 10, "eta": eta, "lmbda": LMBDA, "train_size": int(ctx.training[0].shape[0])}
        ctx.log(f"   eta = {eta:g}, {epochs} epochs")
        try:
            (net, h), seconds = timed(train, ctx, [784, 30, 10], "default", ctx.training, epochs, eta, LMBDA,
                                      monitor_training_cost=True, monitor_evaluation_accuracy=False)
        except DivergenceError as exc:  # not expected at these rates; keep the other runs if it happens
            ctx.log(f"   eta = {eta:g} diverged: {exc}")
            continue
        histories.append((h, eta))
        runs.append(run_record(f"eta = {eta:g}", settings, h, seconds))
        c = h.training_cost
        rows.append([f"{eta:g}", f"{c[0]:.4f}", f"{c[len(c) // 2]:.4f}", f"{c[-1]:.4f}", f"{min(c):.4f}",
                     f"{seconds:.1f}s"])
    path = write_results(ctx, {"settings": {"etas": list(ETAS), "lmbda": LMBDA, "epochs": epochs}, "runs": runs})
    png = ctx.out / "multiple_eta.png"
    plot_multiple_eta([h for h, _ in histories], [e for _, e in histories], png)
    ctx.log(format_table(["eta", "epoch 1", f"epoch {epochs // 2 + 1}", f"epoch {epochs}", "lowest", "time"], rows))
    headline = "final training cost " + ", ".join(f"eta {e:g}: {h.training_cost[-1]:.3f}" for h, e in histories)
    return Summary(ctx.name, headline, [str(path), str(png)])
