"""More training data: accuracy against training set size, beside an SVM (the book's ``more_data.py``).

For each of the book's nine sizes 100, 200, 500, 1,000, 2,000, 5,000,
10,000, 20,000 and 50,000 a ``[784, 30, 10]`` cross-entropy network starts
from the *large* N(0, 1) initialization and trains on the first ``size``
images for ``1,500,000 / size`` epochs (every run sees 1.5 million examples,
i.e. 30 epochs' worth of the full set) with mini-batches of 10, eta 0.5 and
``lmbda = size * 0.0001`` (keeping ``lmbda / n`` fixed); its accuracy on the
validation data is measured once, at the end.

Beside it, as in the book, scikit-learn's support vector machine
``SVC`` with an RBF kernel trains on the same sizes (``gamma="auto"``, i.e.
1/784: the default of the scikit-learn the book used; today's default
``"scale"`` gives a stronger SVM).  scikit-learn is an optional extra
(``pip install netlearn[svm]``); without it the SVM line is skipped with a
note, and ``--no-svm`` skips it on purpose (it takes most of the time).

The book's plots: accuracy against size on a linear axis (``more_data.png``:
the curve is still rising at 50,000), on a log axis (``more_data_log.png``)
and beside the SVM (``more_data_comparison.png``): more data helps both
algorithms, and a simple algorithm with more data can beat a better one with
less.
"""
from __future__ import annotations

import os

import numpy as np

from ..plot import plot_more_data
from .common import Context, Summary, format_table, pct, timed, train, training_sizes, write_results

DESCRIPTION = "[784,30,10] on 100..50,000 images, 1,500,000/size epochs, lmbda size*0.0001, large init; vs SVM"

SIZES = (100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000)
EXAMPLES = 1_500_000
QUICK_SIZES = (100, 200, 500, 1000)
QUICK_EXAMPLES = 15_000
ETA = 0.5


def svm_accuracy(training, validation, size: int) -> float:
    """Validation accuracy of ``sklearn.svm.SVC(gamma="auto")`` trained on the first ``size`` images."""
    from sklearn.svm import SVC

    from concurrent.futures import ThreadPoolExecutor

    clf = SVC(gamma="auto", cache_size=1000)  # a larger kernel cache (MB) than the default 200 speeds up fit
    clf.fit(training[0][:size], training[1][:size])
    # libsvm predicts one row at a time and releases the GIL: two threads use two cores.
    X, y = validation
    chunks = np.array_split(np.arange(X.shape[0]), max(1, min(2, os.cpu_count() or 1)))
    with ThreadPoolExecutor(len(chunks)) as pool:
        pred = np.concatenate(list(pool.map(lambda idx: clf.predict(X[idx]), chunks)))
    return float(np.mean(pred == y))


def _have_sklearn() -> bool:
    try:
        import sklearn.svm  # noqa: F401
    except ImportError:
        return False
    return True


def run(ctx: Context) -> Summary:
    """Train the network (and the SVM, if scikit-learn is installed) on each size; plot the three figures."""
    sizes, examples = (QUICK_SIZES, QUICK_EXAMPLES) if ctx.quick else (SIZES, EXAMPLES)
    sizes = training_sizes(ctx, "more-data", sizes)
    nets, rows = [], []
    for size in sizes:
        epochs = max(1, examples // size)
        lmbda = size * 0.0001
        ctx.log(f"   network on {size} images: {epochs} epochs, lmbda={lmbda:g}")
        (net, h), seconds = timed(train, ctx, [784, 30, 10], "large", ctx.first(size), epochs, ETA, lmbda,
                                  monitor_evaluation_accuracy=False)
        acc = net.accuracy(ctx.validation)
        nets.append({"size": size, "epochs": epochs, "batch_size": 10, "eta": ETA, "lmbda": lmbda, "init": "large",
                     "validation_accuracy": acc, "seconds": round(seconds, 3),
                     "epoch_seconds_mean": float(np.mean(h.epoch_seconds))})
    svms, svm_note = [], None
    if not ctx.svm:
        svm_note = "SVM comparison not asked for (--no-svm)"
        ctx.log(f"   note: {svm_note}")
    elif _have_sklearn():
        for size in sizes:
            ctx.log(f"   SVM on {size} images")
            acc, seconds = timed(svm_accuracy, ctx.training, ctx.validation, size)
            svms.append({"size": size, "validation_accuracy": acc, "seconds": round(seconds, 3)})
    else:
        svm_note = "scikit-learn is not installed (pip install 'netlearn[svm]'): SVM comparison skipped"
        ctx.log(f"   note: {svm_note}")
    path = write_results(ctx, {"settings": {"sizes": sizes, "examples_per_run": examples, "eta": ETA,
                                            "lmbda_per_image": 0.0001, "svm": "sklearn.svm.SVC(gamma='auto')"},
                               "networks": nets, "svm": svms, "svm_note": svm_note})
    accs = [r["validation_accuracy"] for r in nets]
    files = [str(path)]
    for kind, stem in (("linear", "more_data"), ("log", "more_data_log")):
        plot_more_data(sizes, accs, ctx.out / f"{stem}.png", kind=kind)
        files.append(str(ctx.out / f"{stem}.png"))
    if svms:
        plot_more_data(sizes, accs, ctx.out / "more_data_comparison.png", kind="combined",
                       svm_accuracies=[r["validation_accuracy"] for r in svms])
        files.append(str(ctx.out / "more_data_comparison.png"))
    for i, r in enumerate(nets):
        s = svms[i] if svms else None
        rows.append([r["size"], r["epochs"], f"{r['lmbda']:g}", pct(r["validation_accuracy"]), f"{r['seconds']:.1f}s",
                     pct(s["validation_accuracy"]) if s else "-", f"{s['seconds']:.1f}s" if s else "-"])
    ctx.log(format_table(["size", "epochs", "lmbda", "network", "time", "SVM", "SVM time"], rows))
    headline = f"validation accuracy at {sizes[-1]} images: network {pct(accs[-1])}"
    headline += f", SVM {pct(svms[-1]['validation_accuracy'])}" if svms else f"; {svm_note}"
    return Summary(ctx.name, headline, files)
