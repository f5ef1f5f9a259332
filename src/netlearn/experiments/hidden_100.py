"""100 hidden neurons: ``[784, 100, 10]`` with eta 0.5, lmbda 5, 30 epochs, then eta 0.1, lmbda 5, 60 epochs.

The book's regularization section, after the ``[784, 30, 10]`` runs: with
100 hidden neurons, cross-entropy, the large N(0, 1) initialization (the
chapter's networks until its weight-initialization section), mini-batches
of 10 and L2 regularization lmbda = 5.0, training on all 50,000 images

* for 30 epochs at eta 0.5 gives 97.92% on the validation data, and
* for 60 epochs at eta 0.1, "fine-tuning" a little, 98.04%: past 98%.

Validation accuracy is recorded after every epoch.  What to look for: a
larger network, kept from overfitting by regularization, beats the 30-neuron
network's ~96.5%; the smaller eta learns more slowly but, with twice the
epochs, ends a little higher.
"""
from __future__ import annotations

from ..plot import FULL_DATA_YLIM
from .common import Context, Summary, format_table, pct, run_record, timed, train, write_results
from .figures import plot_accuracy_runs

DESCRIPTION = "[784,100,10], lmbda 5, large init: eta 0.5 for 30 epochs and eta 0.1 for 60, validation accuracy"

#: (eta, epochs, the book's validation accuracy) of the two runs; lmbda 5.0 for both.
RUNS = ((0.5, 30, 0.9792), (0.1, 60, 0.9804))
LMBDA, QUICK_EPOCHS = 5.0, (3, 6)


def run(ctx: Context) -> Summary:
    """The two runs; one plot of their validation accuracy per epoch (90-100%, as the book's full-data figures)."""
    runs, rows, curves = [], [], []
    for (eta, epochs, book), quick in zip(RUNS, QUICK_EPOCHS):
        epochs = quick if ctx.quick else epochs
        settings = {"sizes": [784, 100, 10], "cost": "cross-entropy", "init": "large", "epochs": epochs,
                    "batch_size": 10, "eta": eta, "lmbda": LMBDA, "evaluation": "validation",
                    "train_size": int(ctx.training[0].shape[0]), "book_validation_accuracy": book}
        ctx.log(f"   [784,100,10] eta {eta:g}, lmbda {LMBDA:g}, {epochs} epochs")
        (net, h), seconds = timed(train, ctx, [784, 100, 10], "large", ctx.training, epochs, eta, LMBDA,
                                  evaluation_data=ctx.validation, monitor_evaluation_accuracy=True)
        runs.append(run_record(f"eta {eta:g}, {epochs} epochs", settings, h, seconds))
        acc = h.evaluation_accuracy
        curves.append((f"$\\eta$ = {eta:g}, {epochs} epochs", acc))
        rows.append([f"{eta:g}", f"{epochs}", pct(acc[-1]), pct(max(acc)), pct(book), f"{seconds:.1f}s"])
    path = write_results(ctx, {"settings": {"sizes": [784, 100, 10], "lmbda": LMBDA, "init": "large"}, "runs": runs})
    png = ctx.out / "hidden_100.png"
    plot_accuracy_runs(curves, png, "[784,100,10], lmbda = 5: accuracy on the validation data", FULL_DATA_YLIM)
    ctx.log(format_table(["eta", "epochs", "final", "best", "book", "time"], rows))
    headline = "; ".join(f"eta {r[0]}, {r[1]} epochs: {r[2]} (book {r[4]})" for r in rows)
    return Summary(ctx.name, f"validation accuracy {headline}", [str(path), str(png)])
