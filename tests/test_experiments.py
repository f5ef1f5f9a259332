"""``netlearn reproduce`` and netlearn.experiments in quick mode on tiny synthetic MNIST-shaped data."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from netlearn import History, experiments
from netlearn.cli import main

PNG = b"\x89PNG\r\n\x1a\n"

#: The files each experiment writes into OUT/NAME/ (more-data's comparison plot needs scikit-learn).
FILES = {
    "overfitting": ["overfitting.json", "overfitting.png", "overfitting_comparison.png"],
    "regularized": ["regularized.json", "regularized.png", "regularized_comparison.png"],
    "overfitting-full": ["overfitting-full.json", "overfitting_full.png", "overfitting_full_comparison.png"],
    "regularized-full": ["regularized-full.json", "regularized_full.png", "regularized_full_comparison.png"],
    "weight-init": ["weight-init.json", "weight_initialization_30.png", "weight_initialization_100.png"],
    "multiple-eta": ["multiple-eta.json", "multiple_eta.png"],
    "more-data": ["more-data.json", "more_data.png", "more_data_log.png"],
    "slowdown": ["slowdown.json", "slowdown_0.6_0.9.png", "slowdown_2_2.png"],
    "hidden-100": ["hidden-100.json", "hidden_100.png"],
    "expanded": ["expanded.json", "expanded.png", "expanded_log.png"],
}


def write_idx(path: Path, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a, dtype=np.uint8)
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + a.tobytes())


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """mnist/ with 10,100 random training images (100 left after the 10,000 validation ones) and 100 test."""
    root = tmp_path_factory.mktemp("data")
    (root / "mnist").mkdir()
    g = np.random.default_rng(0)
    for prefix, n in (("train", 10_100), ("t10k", 100)):
        images = (g.random((n, 28, 28)) < 0.1).astype(np.uint8) * 255
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", g.integers(0, 10, n))
    return root


@pytest.fixture(scope="module")
def all_quick(data_root, tmp_path_factory):
    """``netlearn reproduce all --quick`` once, through NETLEARN_DATA; the output folder and its stdout."""
    out = tmp_path_factory.mktemp("results")
    mp = pytest.MonkeyPatch()
    mp.setenv("NETLEARN_DATA", str(data_root))
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = main(["reproduce", "all", "--quick", "--out", str(out)])
    mp.undo()
    assert status == 0
    return out, buf.getvalue()


@pytest.mark.parametrize("name", list(FILES))
def test_each_experiment_writes_json_and_png(all_quick, name):
    out, _ = all_quick
    for f in FILES[name]:
        path = out / name / f
        assert path.is_file(), path
        if f.endswith(".png"):
            assert path.read_bytes()[:8] == PNG
    doc = json.loads((out / name / f"{name}.json").read_text())
    assert doc["experiment"] == name and doc["quick"] is True and doc["seed"] == experiments.BOOK_SEED


def test_all_prints_tables_and_a_summary(all_quick):
    _, text = all_quick
    for name in FILES:
        assert f"== {name}:" in text and f"-- {name} done in" in text
    assert "summary" in text and "total " in text
    assert "only 100 training images; skipping sizes 200, 500, 1000" in text


def test_overfitting_records_every_figure_per_epoch(all_quick):
    out, _ = all_quick
    doc = json.loads((out / "overfitting" / "overfitting.json").read_text())
    (run,) = doc["runs"]
    s = run["settings"]
    assert (s["init"], s["eta"], s["lmbda"], s["batch_size"], s["evaluation"]) == ("large", 0.5, 0.0, 10, "test")
    assert s["train_size"] == 100  # all that the tiny data has (the book: 1,000)
    h = run["history"]
    for key in ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy", "epoch_seconds"):
        assert len(h[key]) == s["epochs"] == 30
    assert h["book_evaluation_cost"] == pytest.approx(h["evaluation_cost"])  # lmbda 0: the two test costs agree
    reg = json.loads((out / "regularized" / "regularized.json").read_text())
    assert reg["runs"][0]["settings"]["lmbda"] == 0.1
    assert len(reg["runs"][0]["history"]["book_evaluation_cost"]) == 30


def test_weight_init_and_multiple_eta_settings(all_quick):
    out, _ = all_quick
    doc = json.loads((out / "weight-init" / "weight-init.json").read_text())
    got = [(r["settings"]["sizes"][1], r["settings"]["init"]) for r in doc["runs"]]
    assert got == [(30, "default"), (30, "large"), (100, "default"), (100, "large")]
    assert all(len(r["history"]["evaluation_accuracy"]) == 3 for r in doc["runs"])
    doc = json.loads((out / "multiple-eta" / "multiple-eta.json").read_text())
    assert [r["settings"]["eta"] for r in doc["runs"]] == [0.025, 0.25, 2.5]
    assert all(r["settings"]["init"] == "default" and r["settings"]["lmbda"] == 5.0 for r in doc["runs"])
    assert all(len(r["history"]["training_cost"]) == 3 for r in doc["runs"])


def test_more_data_settings_and_svm(all_quick):
    out, _ = all_quick
    doc = json.loads((out / "more-data" / "more-data.json").read_text())
    (net,) = doc["networks"]
    assert net["size"] == 100 and net["epochs"] == 150 and net["lmbda"] == pytest.approx(0.01)
    assert net["init"] == "large" and 0 <= net["validation_accuracy"] <= 1
    try:
        import sklearn  # noqa: F401
    except ImportError:
        assert doc["svm"] == [] and "scikit-learn" in doc["svm_note"]
    else:
        assert [r["size"] for r in doc["svm"]] == [100]
        assert (out / "more-data" / "more_data_comparison.png").is_file()


def test_more_data_without_sklearn_says_so(monkeypatch, tmp_path):
    from netlearn.experiments import more_data

    monkeypatch.setattr(more_data, "_have_sklearn", lambda: False)
    g = np.random.default_rng(1)
    X = g.random((120, 784), dtype=np.float32)
    data = ((X[:100], g.integers(0, 10, 100)), (X[100:], g.integers(0, 10, 20)), (X[100:], g.integers(0, 10, 20)))
    lines = []
    (summary,) = experiments.run("more-data", out=tmp_path, quick=True, data=data, log=lines.append)
    assert any("scikit-learn is not installed" in line for line in lines)
    assert "scikit-learn is not installed" in summary.headline
    assert not (tmp_path / "more-data" / "more_data_comparison.png").exists()
    assert json.loads((tmp_path / "more-data" / "more-data.json").read_text())["svm"] == []


def test_same_seed_same_results(tmp_path):
    g = np.random.default_rng(2)
    X = g.random((150, 784), dtype=np.float32)
    data = ((X[:100], g.integers(0, 10, 100)), (X[100:], g.integers(0, 10, 50)), (X[100:], g.integers(0, 10, 50)))
    costs = []
    for sub in ("a", "b"):
        experiments.run("multiple-eta", out=tmp_path / sub, quick=True, data=data, seed=5, log=lambda s: None)
        doc = json.loads((tmp_path / sub / "multiple-eta" / "multiple-eta.json").read_text())
        costs.append([r["history"]["training_cost"] for r in doc["runs"]])
    assert costs[0] == costs[1]


def test_reproduce_errors(capsys, tmp_path, data_root):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "underfitting"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "invalid choice" in err
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    status = main(["reproduce", "overfitting", "--quick", "--data-dir", str(data_root), "--out", str(not_a_folder)])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert "is a file" in err and "Traceback" not in err
    assert main(["reproduce", "overfitting", "--data-dir", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_experiment_from_python(tmp_path):
    with pytest.raises(experiments.ExperimentError, match="unknown experiment"):
        experiments.run("nope", out=tmp_path, data=((), (), ()))


# -- the plots on their own ------------------------------------------------------------------------

def _history(epochs: int) -> History:
    h = History()
    h.training_cost = list(np.linspace(2, 0.1, epochs))
    h.training_accuracy = list(np.linspace(0.5, 1.0, epochs))
    h.evaluation_cost = list(np.linspace(2, 1, epochs))
    h.evaluation_accuracy = list(np.linspace(0.5, 0.8, epochs))
    h.epoch_seconds = [0.1] * epochs
    return h


def test_book_plots(tmp_path):
    from netlearn import plot

    plot.plot_overfitting(_history(5), tmp_path / "o.png")  # xmin 200 beyond 5 epochs falls back to 0
    plot.plot_accuracy_comparison(_history(5), tmp_path / "c.png")
    plot.plot_curve(_history(400).training_cost, tmp_path / "tc.png", "Cost on the training data", xmin=200)
    plot.plot_multiple_eta([_history(4), _history(4)], [0.25, 2.5], tmp_path / "m.png")
    plot.plot_weight_init([0.9, 0.95], [0.8, 0.93], tmp_path / "w.png")
    sizes = [100, 1000, 10000]
    plot.plot_more_data(sizes, [0.6, 0.8, 0.9], tmp_path / "l.png")
    plot.plot_more_data(sizes, [0.6, 0.8, 0.9], tmp_path / "g.png", kind="log")
    plot.plot_more_data(sizes, [0.6, 0.8, 0.9], tmp_path / "s.png", kind="combined", svm_accuracies=[0.3, 0.8, 0.9])
    for f in ("o", "c", "tc", "m", "w", "l", "g", "s"):
        assert (tmp_path / f"{f}.png").read_bytes()[:8] == PNG
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left
    with pytest.raises(ValueError, match="'kind'"):
        plot.plot_more_data(sizes, [0.6, 0.8, 0.9], tmp_path / "x.png", kind="cubic")


def test_more_data_no_svm(data_root, tmp_path, capsys):
    assert main(["reproduce", "more-data", "--quick", "--no-svm", "--data-dir", str(data_root),
                 "--out", str(tmp_path)]) == 0
    assert "--no-svm" in capsys.readouterr().out
    doc = json.loads((tmp_path / "more-data" / "more-data.json").read_text())
    assert doc["svm"] == [] and "--no-svm" in doc["svm_note"]


# -- slowdown: one sigmoid neuron ------------------------------------------------------------------

def test_slowdown_json_matches_the_contract_and_the_book(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NETLEARN_DATA", raising=False)
    # No MNIST anywhere: slowdown makes its own one example, so an absent data root does not matter.
    assert main(["reproduce", "slowdown", "--out", str(tmp_path), "--data-dir", str(tmp_path / "absent")]) == 0
    doc = json.loads((tmp_path / "slowdown" / "slowdown.json").read_text())
    runs = doc["runs"]
    assert [(r["cost"], r["w"], r["b"], r["eta"]) for r in runs] == [
        (c, w, b, e) for w, b in ((0.6, 0.9), (2.0, 2.0))
        for c, e in (("quadratic", 0.15), ("cross-entropy", 0.15), ("cross-entropy", 0.005))]
    for r in runs:
        assert len(r["output"]) == len(r["cost_value"]) == 301
        z = r["w"] + r["b"]
        assert r["output"][0] == pytest.approx(1 / (1 + np.exp(-z)))  # before training: sigma(w * 1 + b)
        assert all(b <= a for a, b in zip(r["cost_value"], r["cost_value"][1:]))  # gradient descent on one example
    quad = {(r["w"], r["b"]): r for r in runs if r["cost"] == "quadratic"}
    # The book: 0.82 -> about 0.09 from 0.6/0.9; 0.98 -> about 0.20 from 2/2, after a long plateau.
    assert quad[(0.6, 0.9)]["output"][-1] == pytest.approx(0.09, abs=0.01)
    assert quad[(2.0, 2.0)]["output"][-1] == pytest.approx(0.20, abs=0.01)
    plateau = quad[(2.0, 2.0)]["output"]
    assert plateau[0] - plateau[100] < 0.02  # the learning slowdown: 100 epochs barely move it
    ce = next(r for r in runs if (r["cost"], r["w"], r["eta"]) == ("cross-entropy", 2.0, 0.15))
    assert ce["output"][0] - ce["output"][100] > 0.9  # cross-entropy learns fastest when most wrong
    # The quadratic cost is (y - a)^2 / 2 with y = 0.
    assert quad[(0.6, 0.9)]["cost_value"][-1] == pytest.approx(quad[(0.6, 0.9)]["output"][-1] ** 2 / 2)
    for name in ("slowdown_0.6_0.9.png", "slowdown_2_2.png"):
        assert (tmp_path / "slowdown" / name).read_bytes()[:8] == PNG
    assert "0.20 from w,b = 2,2" in capsys.readouterr().out


def test_book_evaluation_cost_divides_the_l2_term_by_the_evaluated_set():
    from netlearn import Network
    from netlearn.experiments.common import BookEvaluationCost

    g = np.random.default_rng(3)
    X = g.random((60, 784), dtype=np.float32)
    y = g.integers(0, 10, 60)
    train_set, test_set = (X[:40], y[:40]), (X[40:], y[40:])  # 40 training images, 20 evaluated
    net = Network([784, 5, 10], seed=1)
    book = BookEvaluationCost()
    h = net.fit(train_set, 2, 10, 0.5, lmbda=5.0, evaluation_data=test_set, seed=1, callbacks=[book],
                monitor_evaluation_cost=True)
    assert len(book.values) == 2
    # The book's total_cost(test_data, lmbda): the L2 term over len(test_data) (netlearn's default n).
    assert book.values[-1] == pytest.approx(net.total_cost(test_set, lmbda=5.0), rel=1e-5)
    assert h.evaluation_cost[-1] == pytest.approx(net.total_cost(test_set, lmbda=5.0, n=40), rel=1e-5)
    assert book.values[-1] > h.evaluation_cost[-1]  # 1/20 > 1/40


def test_book_figures_count_epochs_from_zero_and_keep_the_books_ranges():
    from matplotlib.figure import Figure

    from netlearn import plot

    ax = Figure().subplots()
    plot._epochs_axis(ax, [0.5, 0.6, 0.7], 0, None, True, plot.BOOK_BLUE)
    assert list(ax.lines[0].get_xdata()) == [0, 1, 2]  # the value after the first epoch sits at epoch 0
    assert list(ax.lines[0].get_ydata()) == pytest.approx([50, 60, 70])
    plot.book_ylim(ax, [91.0, 97.5], 90, 100)
    assert ax.get_ylim() == (90, 100)
    plot.book_ylim(ax, [72.0, 97.5], 90, 100)  # a curve below the range widens it, in steps of 5
    assert ax.get_ylim() == (70, 100)


def test_hidden_100_and_expanded_settings(all_quick):
    out, _ = all_quick
    doc = json.loads((out / "hidden-100" / "hidden-100.json").read_text())
    got = [(r["settings"]["sizes"], r["settings"]["eta"], r["settings"]["lmbda"], r["settings"]["init"],
            len(r["history"]["evaluation_accuracy"])) for r in doc["runs"]]
    assert got == [([784, 100, 10], 0.5, 5.0, "large", 3), ([784, 100, 10], 0.1, 5.0, "large", 6)]  # quick epochs
    assert [r["settings"]["book_validation_accuracy"] for r in doc["runs"]] == [0.9792, 0.9804]
    doc = json.loads((out / "expanded" / "expanded.json").read_text())
    (r,) = doc["runs"]  # only 100 training images in the tiny data
    assert r["size"] == 100 and r["unexpanded"]["images"] == 100 and r["expanded"]["images"] == 500
    # The book's rule, 15,000 examples per quick run: 150 epochs of 100 images, 30 of 500; lmbda 0.0001 per image.
    assert (r["unexpanded"]["epochs"], r["expanded"]["epochs"]) == (150, 30)
    assert r["unexpanded"]["lmbda"] == pytest.approx(0.01) and r["expanded"]["lmbda"] == pytest.approx(0.05)
    assert all(0 <= r[k]["validation_accuracy"] <= 1 for k in ("unexpanded", "expanded"))
