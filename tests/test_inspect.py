"""``netlearn inspect`` and netlearn.inspection: the confusion matrix, confident mistakes, weights, regression."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import synthetic_digits, write_idx

import netlearn
from netlearn.cli import main
from netlearn.inspection import inspect_network
from netlearn.metrics import confusion_matrix


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "mnist").mkdir()
    for n, seed, prefix in ((10_100, 0, "train"), (300, 1, "t10k")):
        X, y = synthetic_digits(n, seed)
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", X)
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", y)
    return root


def test_confusion_matrix_rows_are_true_classes():
    C = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    np.testing.assert_array_equal(C, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_inspect_a_classifier_of_images(mnist_root, tmp_path, capsys):
    model = tmp_path / "m.json"
    # Two epochs on 100 images: good enough to be mostly right, weak enough to make mistakes.
    assert main(["train", "--data-dir", str(mnist_root), "--train-size", "100", "--epochs", "2", "--hidden", "12",
                 "--seed", "0", "--quiet", "--save", str(model)]) == 0
    out = tmp_path / "new" / "folder"
    assert main(["inspect", str(model), "--data-dir", str(mnist_root), "--out", str(out)]) == 0
    assert "confusion_matrix.png" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    C = np.array(summary["confusion_matrix"])
    assert C.shape == (10, 10) and C.sum() == 300
    # Rows are the true classes: each row sums to that class's count in the test labels.
    _, _, (X, y) = netlearn.data.load_mnist(mnist_root)
    np.testing.assert_array_equal(C.sum(axis=1), np.bincount(y, minlength=10))
    net = netlearn.load(model)
    np.testing.assert_array_equal(C.sum(axis=0), np.bincount(net.predict(X), minlength=10))
    assert np.isclose(summary["accuracy"], np.trace(C) / 300)
    for c, acc in summary["per_class_accuracy"].items():
        assert acc is None or np.isclose(acc, C[int(c), int(c)] / C[int(c)].sum())
    wrong = summary["misclassified"]
    assert len(wrong) == min(24, 300 - np.trace(C))
    conf = [w["confidence"] for w in wrong]
    assert conf == sorted(conf, reverse=True)
    assert all(w["true"] == int(y[w["index"]]) and w["predicted"] != w["true"] for w in wrong)
    for name in ("confusion_matrix.png", "misclassified.png", "weights.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(summary["files"]) == {"confusion_matrix.png", "misclassified.png", "weights.png"}


def test_inspect_a_regression_network(tmp_path):
    g = np.random.default_rng(0)
    X = g.uniform(-1, 1, (200, 3)).astype(np.float32)
    Y = (2 * X[:, :1] - X[:, 1:2] ** 2).astype(np.float32)
    net = netlearn.Network([3, 16, 1], activation="tanh", cost="quadratic", output="identity", seed=0)
    net.fit((X, Y), 30, 10, 0.05, seed=0)
    summary = inspect_network(net, X, Y, tmp_path / "r")
    assert set(summary) >= {"r2", "rmse", "mae", "cost"} and summary["r2"] > 0.8
    assert summary["files"] == ["predicted_vs_true.png"]  # no image pictures for 3 inputs
    assert (tmp_path / "r" / "predicted_vs_true.png").stat().st_size > 1000


def test_inspect_own_csv_and_errors(tmp_path, capsys):
    rows = ["a,b,label"] + [f"{x:.3f},{1 - x:.3f},{'hi' if x > 0.5 else 'lo'}"
                            for x in np.random.default_rng(0).random(60)]
    data = tmp_path / "d.csv"
    data.write_text("\n".join(rows) + "\n")
    model = tmp_path / "m.json"
    assert main(["train", "--data", str(data), "--epochs", "20", "--lmbda", "0", "--quiet", "--seed", "0",
                 "--save", str(model)]) == 0
    assert main(["inspect", str(model), "--data", str(data), "--out", str(tmp_path / "o")]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["classes"] == ["hi", "lo"] and set(summary["per_class_accuracy"]) == {"hi", "lo"}
    assert "weights.png" not in summary["files"]
    (tmp_path / "file").write_text("x")
    capsys.readouterr()
    assert main(["inspect", str(model), "--data", str(data), "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
