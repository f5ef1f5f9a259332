"""More data by expansion: the more-data experiment again, with each training set expanded by one-pixel shifts.

The book ends its discussion of more training data by making more of it:
each image moved one pixel up, down, left and right (its ``expand_mnist.py``;
:func:`netlearn.data.augment.shifts`) turns ``n`` images into ``5 n``.  Here
the more-data experiment's networks -- ``[784, 30, 10]``, cross-entropy,
the large N(0, 1) initialization, eta 0.5, mini-batches of 10, ``lmbda =
0.0001`` per training image -- train on the first ``size`` images as given
and on those same images expanded, for each of the book's sizes 100 ...
50,000.  Both follow the book's ``more_data.py`` rule of 1,500,000 examples
per run (``1,500,000 / n`` epochs for a set of ``n`` images), so the
expanded run sees each of its five times as many images a fifth as often:
the comparison is at equal training time, and what differs is only how
varied the examples are.  Validation accuracy is measured once, at the end.

What to look for: the shifted copies carry the same digits, yet for small
sets the expanded curve lies well above the unexpanded one -- a cheap way to
more training data.  Towards 50,000 images the gap narrows (the expanded set
is then seen for only a few epochs).  Sizes count the original images.
"""
from __future__ import annotations

import numpy as np

from ..data.augment import shifts
from .common import Context, Summary, format_table, pct, timed, train, training_sizes, write_results
from .figures import plot_expanded
from .more_data import ETA, EXAMPLES, QUICK_EXAMPLES, QUICK_SIZES, SIZES

DESCRIPTION = "more-data's [784,30,10] runs on 100..50,000 images, as given and expanded x5 by one-pixel shifts"

LMBDA_PER_IMAGE = 0.0001


def _run(ctx: Context, training, examples: int) -> dict:
    n = training[0].shape[0]
    epochs = max(1, examples // n)
    lmbda = n * LMBDA_PER_IMAGE
    (net, h), seconds = timed(train, ctx, [784, 30, 10], "large", training, epochs, ETA, lmbda,
                              monitor_evaluation_accuracy=False)
    return {"images": n, "epochs": epochs, "lmbda": lmbda, "validation_accuracy": net.accuracy(ctx.validation),
            "seconds": round(seconds, 3), "epoch_seconds_mean": float(np.mean(h.epoch_seconds))}


def run(ctx: Context) -> Summary:
    """For each size: one network on the images as given, one on them expanded; two plots (linear, log)."""
    sizes, examples = (QUICK_SIZES, QUICK_EXAMPLES) if ctx.quick else (SIZES, EXAMPLES)
    sizes = training_sizes(ctx, "expanded", sizes)
    records, rows = [], []
    for size in sizes:
        given = ctx.first(size)
        plain = _run(ctx, given, examples)
        ctx.log(f"   {size} images: {plain['epochs']} epochs, lmbda {plain['lmbda']:g}: "
                f"{pct(plain['validation_accuracy'])}")
        big = _run(ctx, shifts(*given), examples)
        ctx.log(f"   {size} images expanded to {big['images']}: {big['epochs']} epochs, lmbda {big['lmbda']:g}: "
                f"{pct(big['validation_accuracy'])}")
        records.append({"size": size, "unexpanded": plain, "expanded": big})
        rows.append([size, plain["epochs"], pct(plain["validation_accuracy"]), big["images"], big["epochs"],
                     pct(big["validation_accuracy"]), f"{plain['seconds'] + big['seconds']:.1f}s"])
    path = write_results(ctx, {"settings": {"sizes": sizes, "examples_per_run": examples, "eta": ETA,
                                            "lmbda_per_image": LMBDA_PER_IMAGE, "init": "large",
                                            "expansion": "shifts: each image and its 4 one-pixel shifts"},
                               "runs": records})
    a = [r["unexpanded"]["validation_accuracy"] for r in records]
    e = [r["expanded"]["validation_accuracy"] for r in records]
    files = [str(path)]
    for log, stem in ((False, "expanded"), (True, "expanded_log")):
        plot_expanded(sizes, a, e, ctx.out / f"{stem}.png", log=log)
        files.append(str(ctx.out / f"{stem}.png"))
    ctx.log(format_table(["size", "epochs", "as given", "expanded", "epochs", "expanded acc", "time"], rows))
    headline = f"validation accuracy at {sizes[-1]} images: {pct(a[-1])} as given, {pct(e[-1])} expanded x5"
    return Summary(ctx.name, headline, files)
