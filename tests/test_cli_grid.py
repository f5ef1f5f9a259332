"""``netlearn grid`` on a tiny synthetic MNIST-shaped data set (4x4 images, IDX files)."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from netlearn.cli import main


def write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """10,200 training and 100 test 4x4 images whose class is the brightest quadrant (mostly zero pixels)."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "mnist"
    folder.mkdir()
    g = np.random.default_rng(0)

    def make(n):
        labels = g.integers(0, 4, n)
        images = np.zeros((n, 4, 4), np.uint8)
        for q in range(4):
            r, c = divmod(q, 2)
            sel = labels == q
            images[sel, 2 * r:2 * r + 2, 2 * c:2 * c + 2] = g.integers(150, 256, (sel.sum(), 2, 2))
        noise = g.random((n, 4, 4)) < 0.1
        images[noise] = g.integers(0, 100, noise.sum())
        return images, labels

    tr, trl = make(10_200)
    te, tel = make(100)
    write_idx(folder / "train-images-idx3-ubyte.gz", tr)
    write_idx(folder / "train-labels-idx1-ubyte.gz", trl)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", te)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", tel)
    return root


def test_grid_prints_a_table_and_writes_json_and_plot(data_root, tmp_path, capsys):
    out_json, out_png = tmp_path / "grid.json", tmp_path / "grid.png"
    rc = main(["grid", "--data-dir", str(data_root), "--layers", "16,6,10", "--eta", "0.1,1,3",
               "--lmbda", "0,1", "--epochs", "2", "--train-size", "150", "--seed", "3",
               "--json", str(out_json), "--plot", str(out_png), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert "final validation" in lines[0] and "best" in lines[0]
    assert len(lines) == 1 + 6
    runs = json.loads(out_json.read_text())["runs"]
    assert [(r["eta"], r["lmbda"]) for r in runs] == [(0.1, 0.0), (0.1, 1.0), (1.0, 0.0), (1.0, 1.0),
                                                       (3.0, 0.0), (3.0, 1.0)]
    for r in runs:
        assert r["mu"] == 0.0 and r["seed"] == 3 and r["diverged"] is False
        assert len(r["history"]["evaluation_accuracy"]) == 2
        assert set(r["history"]) >= {"training_cost", "training_accuracy", "evaluation_cost",
                                     "evaluation_accuracy", "epoch_seconds"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_grid_matches_train_for_one_combination(data_root, tmp_path):
    grid_json, train_json = tmp_path / "g.json", tmp_path / "t.json"
    common = ["--data-dir", str(data_root), "--layers", "16,6,10", "--epochs", "2", "--train-size", "120",
              "--seed", "5", "--quiet"]
    assert main(["grid", "--eta", "0.5", "--lmbda", "2", *common, "--json", str(grid_json)]) == 0
    assert main(["train", "--eta", "0.5", "--lmbda", "2", *common, "--json", str(train_json)]) == 0
    g = json.loads(grid_json.read_text())["runs"][0]["history"]
    t = json.loads(train_json.read_text())
    assert g["evaluation_accuracy"] == t["evaluation_accuracy"]


def test_grid_threads_give_the_same_table(data_root, tmp_path):
    """18 combinations: two groups of 16 networks, one per thread with --threads 2."""
    out = {}
    for threads in ("1", "2"):
        out[threads] = tmp_path / f"t{threads}.json"
        assert main(["grid", "--data-dir", str(data_root), "--layers", "16,6,10", "--eta", "0.1,0.3,1,2,3,5",
                     "--lmbda", "0,1,3", "--epochs", "2", "--train-size", "150", "--seed", "3",
                     "--monitor", "training_cost,evaluation_accuracy", "--threads", threads, "--quiet",
                     "--json", str(out[threads])]) == 0
    runs = [json.loads(out[t].read_text())["runs"] for t in ("1", "2")]
    assert len(runs[0]) == 18
    for a, b in zip(*runs):
        assert a["history"]["training_cost"] == b["history"]["training_cost"]
        assert a["history"]["evaluation_accuracy"] == b["history"]["evaluation_accuracy"]


def test_grid_with_seeds_momentum_and_monitoring(data_root, capsys, tmp_path):
    out_json = tmp_path / "m.json"
    rc = main(["grid", "--data-dir", str(data_root), "--layers", "16,5,10", "--eta", "0.5", "--lmbda", "1",
               "--mu", "0,0.5", "--seeds", "1,2", "--epochs", "1", "--train-size", "100",
               "--monitor", "training_cost", "--json", str(out_json), "--quiet"])
    assert rc == 0
    runs = json.loads(out_json.read_text())["runs"]
    assert [(r["mu"], r["seed"]) for r in runs] == [(0.0, 1), (0.0, 2), (0.5, 1), (0.5, 2)]
    assert all(len(r["history"]["training_cost"]) == 1 for r in runs)
    assert all(len(r["history"]["evaluation_accuracy"]) == 1 for r in runs)


def run_cli(argv) -> int:
    """``main(argv)``'s exit status, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv, message", [
    (["--eta", "0,1"], "positive"),
    (["--eta", "x"], "comma-separated"),
    (["--eta", "1", "--mu", "1"], "[0, 1)"),
    (["--eta", "1", "--lmbda", "-1"], ">= 0"),
    (["--eta", "1", "--seeds", "1.5"], "whole number"),
    (["--eta", "1", "--monitor", "speed"], "unknown figure"),
    (["--eta", "1", "--layers", "16,5,10", "--activation", "softmax"], "softmax"),
    (["--eta", "1", "--threads", "0"], "--threads"),
])
def test_bad_options_one_line_exit_2(data_root, capsys, argv, message):
    rc = run_cli(["grid", "--data-dir", str(data_root), "--epochs", "1", "--train-size", "50", "--quiet", *argv])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_missing_data_root_is_a_usage_error(tmp_path, capsys):
    assert main(["grid", "--eta", "1", "--data-dir", str(tmp_path / "nope"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
