"""Overfitting: [784, 30, 10] on the first 1,000 training images for 400 epochs (the book's ``overfitting.py``).

The book's settings: cross-entropy cost, the *large* N(0, 1) initialization
(the chapter replaces it only later), mini-batches of 10, eta = 0.5, no
regularization, and the test data monitored after every epoch -- cost and
accuracy on both the training and the test data.

What to look for (the book's figures): the training cost falls smoothly all
the way to epoch 400, but the test accuracy stops improving around epoch
280 and the test cost starts rising after about epoch 15.  Training
accuracy reaches 100%: the network memorizes its 1,000 images rather than
learning to recognize digits.  ``regularized`` reruns this with lmbda = 0.1.

This module also holds the shared runner that ``regularized``,
``overfitting-full`` and ``regularized-full`` call with their own settings.
"""
from __future__ import annotations

import dataclasses

from ..plot import FULL_DATA_YLIM, plot_accuracy_comparison, plot_overfitting
from .common import BookEvaluationCost, Context, Summary, format_table, pct, run_record, timed, train, write_results

DESCRIPTION = "[784,30,10], first 1,000 images, 400 epochs, eta 0.5, lmbda 0, large init, test data monitored"


def run_overfitting(ctx: Context, train_size: int, epochs: int, lmbda: float, quick_epochs: int,
                    training_cost_xmin: int = 200, test_accuracy_xmin: int = 200, full_data: bool = False) -> Summary:
    """Train the book's overfitting network with the given size, epochs and lmbda; write JSON and plots.

    The test cost is reported as the book's ``total_cost`` computes it (its L2
    term divided by the 10,000 test images, see
    :class:`~netlearn.experiments.common.BookEvaluationCost`): the history's
    ``book_evaluation_cost``, drawn in the plots and printed in the table;
    the history's ``evaluation_cost`` is netlearn's (divided by the training
    set's size).  ``full_data`` draws the accuracy comparison on the book's
    fixed 90-100% range.
    """
    epochs = quick_epochs if ctx.quick else epochs
    training = ctx.first(train_size)
    settings = {"sizes": [784, 30, 10], "cost": "cross-entropy", "init": "large", "train_size": int(training[0].shape[0]),
                "epochs": epochs, "batch_size": 10, "eta": 0.5, "lmbda": lmbda, "evaluation": "test"}
    ctx.log(f"   training {settings['train_size']} images for {epochs} epochs, lmbda={lmbda:g}, monitoring the "
            "test data (cost and accuracy, training and test)")
    book_cost = BookEvaluationCost()
    (net, h), seconds = timed(train, ctx, [784, 30, 10], "large", training, epochs, 0.5, lmbda,
                              evaluation_data=ctx.test, callbacks=[book_cost], monitor_training_cost=True,
                              monitor_training_accuracy=True, monitor_evaluation_cost=True,
                              monitor_evaluation_accuracy=True)
    record = run_record(ctx.name, settings, h, seconds)
    record["history"]["book_evaluation_cost"] = book_cost.values
    path = write_results(ctx, {"settings": settings, "test_cost": "book_evaluation_cost: the book's total_cost "
                                                                  "(L2 term over the test set's size)",
                               "runs": [record]})
    h = dataclasses.replace(h, evaluation_cost=book_cost.values)  # what the plots and the table show
    stem = ctx.name.replace("-", "_")
    title = f"{ctx.name}: {settings['train_size']} images, lmbda={lmbda:g}"
    plot_overfitting(h, ctx.out / f"{stem}.png", title=title, training_cost_xmin=training_cost_xmin,
                     test_accuracy_xmin=test_accuracy_xmin)
    plot_accuracy_comparison(h, ctx.out / f"{stem}_comparison.png", title=title,
                             ylim=FULL_DATA_YLIM if full_data else None)
    best = max(range(h.epochs), key=lambda i: h.evaluation_accuracy[i])
    low_cost = min(range(h.epochs), key=lambda i: h.evaluation_cost[i])
    rows = [[f"{e + 1}", f"{h.training_cost[e]:.4f}", pct(h.training_accuracy[e]), f"{h.evaluation_cost[e]:.4f}",
             pct(h.evaluation_accuracy[e])] for e in sorted({0, low_cost, best, h.epochs - 1})]
    ctx.log(format_table(["epoch", "training cost", "training acc", "test cost", "test acc"], rows))
    ctx.log(f"   best test accuracy {pct(h.evaluation_accuracy[best])} at epoch {best + 1}; lowest test cost at "
            f"epoch {low_cost + 1}; {seconds:.1f}s")
    headline = (f"test accuracy {pct(h.evaluation_accuracy[-1])} after {h.epochs} epochs "
                f"(best {pct(h.evaluation_accuracy[best])}, epoch {best + 1}); training accuracy "
                f"{pct(h.training_accuracy[-1])}")
    return Summary(ctx.name, headline, [str(path), str(ctx.out / f"{stem}.png"),
                                        str(ctx.out / f"{stem}_comparison.png")])


def run(ctx: Context) -> Summary:
    """The book's overfitting run: 1,000 images, 400 epochs, lmbda 0 (quick: 30 epochs)."""
    return run_overfitting(ctx, train_size=1000, epochs=400, lmbda=0.0, quick_epochs=30)
