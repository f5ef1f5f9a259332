"""The ``netlearn`` command on tiny synthetic MNIST-shaped data: options, errors, outputs, round trips."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netlearn.cli import main

FIGURES = ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy")


def write_idx(path: Path, a: np.ndarray) -> None:
    """An IDX file of unsigned bytes (gzipped), as MNIST ships them."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + a.tobytes())


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images where class c lights rows 2+2c..3+2c, plus sparse noise: learnable in a few epochs."""
    g = np.random.default_rng(seed)
    y = g.integers(0, 10, n).astype(np.uint8)
    X = np.zeros((n, 28, 28), np.uint8)
    for c in range(10):
        X[y == c, 2 + 2 * c: 4 + 2 * c, 4:24] = 200
    X += (g.random((n, 28, 28)) < 0.05).astype(np.uint8) * 50
    return X, y


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A data root with mnist/ holding 10,100 training images (100 after the book's 10,000 validation) and 200 test."""
    root = tmp_path_factory.mktemp("data")
    (root / "mnist").mkdir()
    X, y = synthetic_digits(10_100, 0)
    write_idx(root / "mnist" / "train-images-idx3-ubyte.gz", X)
    write_idx(root / "mnist" / "train-labels-idx1-ubyte.gz", y)
    X, y = synthetic_digits(200, 1)
    write_idx(root / "mnist" / "t10k-images-idx3-ubyte.gz", X)
    write_idx(root / "mnist" / "t10k-labels-idx1-ubyte.gz", y)
    return root


@pytest.fixture(scope="session")
def model(data_root, tmp_path_factory) -> Path:
    """A [784,30,10] network trained for 5 epochs on the synthetic data and saved with --save."""
    path = tmp_path_factory.mktemp("model") / "net.json"
    assert main(["train", "--data-dir", str(data_root), "--epochs", "5", "--eta", "0.5", "--lmbda", "0.1",
                 "--seed", "3", "--quiet", "--save", str(path)]) == 0
    return path


def run_error(capsys, argv) -> str:
    """Run the command expecting exit status 2; return its single stderr line (and check: no traceback)."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse errors exit from inside parse_args
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- help --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["evaluate", "--help"], ["predict", "--help"],
                                  ["reproduce", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: netlearn" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


# -- argument errors: one line, exit 2, no traceback -----------------------------------------------

@pytest.mark.parametrize("args, expect", [
    (["--eta", "-1"], "--eta"),
    (["--eta", "fast"], "--eta"),
    (["--lmbda", "-0.5"], "--lmbda"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "ten"], "--batch-size"),
    (["--layers", "784"], "--layers"),
    (["--layers", "784,x,10"], "--layers"),
    (["--layers", "100,30,10"], "--layers"),
    (["--layers", "784,30,5"], "--layers"),
    (["--cost", "hamming"], "--cost"),
    (["--init", "zeros"], "--init"),
    (["--eval", "training"], "--eval"),
    (["--activation", "bogus"], "activation"),
    (["--layers", "784,20,15,10", "--activation", "relu,tanh,sigmoid"], "one per hidden layer"),
    (["--output", "bogus"], "--output"),
    (["--train-size", "101"], "--train-size"),
    (["--monitor", "speed"], "--monitor"),
    (["--seed", "-3"], "seed"),
    (["--json", "/nonexistent-folder/h.json"], "--json"),
    (["--plot", "/nonexistent-folder/h.png"], "--plot"),
    (["--threads", "0"], "--threads"),
])
def test_train_argument_errors(args, expect, capsys, data_root):
    line = run_error(capsys, ["train", "--data-dir", str(data_root), "--epochs", "1", *args])
    assert expect in line


def test_missing_data_root_is_usage_error(capsys, tmp_path):
    line = run_error(capsys, ["train", "--data-dir", str(tmp_path / "absent")])
    assert "does not exist" in line and "netlearn data download" in line


def test_missing_files_name_them(capsys, tmp_path):
    line = run_error(capsys, ["train", "--data-dir", str(tmp_path)])
    assert "train-images-idx3-ubyte" in line


def test_console_script_error_has_no_traceback(data_root):
    """The real entry point, in a fresh process: exit status 2 and one line on standard error."""
    proc = subprocess.run([sys.executable, "-m", "netlearn.cli", "train", "--data-dir", str(data_root),
                           "--layers", "784,30,5"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# -- train: outputs -------------------------------------------------------------------------------

def test_train_json_holds_the_history_lists(data_root, tmp_path, capsys):
    out = tmp_path / "history.json"
    status = main(["train", "--data-dir", str(data_root), "--epochs", "3", "--layers", "784,20,10",
                   "--monitor", ",".join(FIGURES), "--seed", "1", "--json", str(out), "--eval", "test"])
    assert status == 0
    text = capsys.readouterr().out
    assert text.count("Epoch ") == 3  # one line per epoch
    assert "final test accuracy" in text
    h = json.loads(out.read_text())
    for key in FIGURES + ("epoch_seconds",):
        assert isinstance(h[key], list) and len(h[key]) == 3, key
    assert all(0 <= a <= 1 for a in h["training_accuracy"] + h["evaluation_accuracy"])
    assert h["training_cost"][-1] < h["training_cost"][0]


def test_train_default_monitors_evaluation_accuracy_only(data_root, tmp_path):
    out = tmp_path / "h.json"
    assert main(["train", "--data-dir", str(data_root), "--epochs", "2", "--quiet", "--json", str(out)]) == 0
    h = json.loads(out.read_text())
    assert len(h["evaluation_accuracy"]) == 2
    assert h["training_cost"] == [] and h["training_accuracy"] == [] and h["evaluation_cost"] == []


def test_train_quiet_prints_no_epoch_lines(data_root, capsys):
    assert main(["train", "--data-dir", str(data_root), "--epochs", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "Epoch" not in captured.out + captured.err


def test_train_same_seed_same_numbers(data_root, tmp_path):
    for name in ("a", "b"):
        assert main(["train", "--data-dir", str(data_root), "--epochs", "2", "--quiet", "--seed", "7",
                     "--monitor", "training_cost", "--json", str(tmp_path / f"{name}.json")]) == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["training_cost"] == b["training_cost"]


def test_train_threads_option_keeps_the_numbers(data_root, tmp_path, monkeypatch):
    """--threads shares each batch of 32+ between threads: the same training within float32 rounding."""
    monkeypatch.setenv("NETLEARN_ENGINE", "numba")  # (the small test set would stay on NumPy)
    costs = []
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}.json"
        assert main(["train", "--data-dir", str(data_root), "--epochs", "2", "--quiet", "--seed", "3",
                     "--batch-size", "40", "--threads", threads, "--monitor", "training_cost",
                     "--json", str(out)]) == 0
        costs.append(json.loads(out.read_text())["training_cost"])
    assert costs[0] == pytest.approx(costs[1], rel=1e-4)


def test_train_options_end_to_end(data_root, tmp_path):
    """Per-layer activations, another cost and init, --train-size, --plot and --save together."""
    png, saved = tmp_path / "curves.png", tmp_path / "net.json"
    assert main(["train", "--data-dir", str(data_root), "--layers", "784,20,15,10", "--activation", "relu,tanh",
                 "--cost", "log-likelihood", "--init", "he", "--eta", "0.1", "--lmbda", "0", "--batch-size", "5",
                 "--epochs", "2", "--train-size", "60", "--seed", "2", "--quiet", "--plot", str(png),
                 "--save", str(saved)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from netlearn import load

    net = load(saved)
    assert net.sizes == [784, 20, 15, 10] and net.activation == ["relu", "tanh"] and net.output == "softmax"


# -- evaluate ---------------------------------------------------------------------------------------

def test_evaluate_matches_the_python_api(model, data_root, capsys):
    from netlearn import load
    from netlearn.data import load_mnist

    _, validation, test = load_mnist(data_root)
    net = load(model)
    for split, data in (("test", test), ("validation", validation)):
        assert main(["evaluate", str(model), "--data-dir", str(data_root), "--split", split]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{split} accuracy {100 * net.accuracy(data):.2f}%")
        assert f"cost {net.total_cost(data):.4f}" in out


def test_evaluate_reads_the_books_format(model, data_root, tmp_path, capsys):
    from netlearn import load

    book = tmp_path / "network2.json"
    load(model).save(book, format="network2")
    assert main(["evaluate", str(book), "--data-dir", str(data_root)]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_evaluate_errors(capsys, tmp_path, data_root, model):
    line = run_error(capsys, ["evaluate", str(tmp_path / "none.json"), "--data-dir", str(data_root)])
    assert "no model file" in line and "--save" in line
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "invalid JSON" in run_error(capsys, ["evaluate", str(bad), "--data-dir", str(data_root)])
    bad.write_text(json.dumps({"sizes": [784, 10], "weights": [[[0.0]]], "biases": [[[0.0]]],
                               "cost": "CrossEntropyCost"}))
    assert "shape" in run_error(capsys, ["evaluate", str(bad), "--data-dir", str(data_root)])
    assert "--split" in run_error(capsys, ["evaluate", str(model), "--split", "all"])
    from netlearn import Network

    small = tmp_path / "small.json"
    Network([100, 10]).save(small)
    assert "100 inputs" in run_error(capsys, ["evaluate", str(small), "--data-dir", str(data_root)])


# -- predict ----------------------------------------------------------------------------------------

def test_predict_idx_range_with_labels(model, data_root, capsys):
    from netlearn import load
    from netlearn.data import load_mnist

    images = data_root / "mnist" / "t10k-images-idx3-ubyte.gz"
    labels = data_root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert main(["predict", str(model), str(images), "--index", "5:25", "--labels", str(labels)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 21 and lines[0].startswith(f"{images}[5]: ")
    _, _, (X, y) = load_mnist(data_root)
    net = load(model)
    expected = net.predict(X[5:25])
    assert [int(line.split(": ")[1].split()[0]) for line in lines[:20]] == list(expected)
    right = int(np.sum(expected == y[5:25]))
    assert lines[-1] == f"accuracy {100 * right / 20:.2f}% ({right}/20)"


def test_predict_single_index_and_all(model, data_root, capsys):
    images = data_root / "mnist" / "t10k-images-idx3-ubyte.gz"
    assert main(["predict", str(model), str(images), "--index", "-1"]) == 0
    assert capsys.readouterr().out.startswith(f"{images}[199]: ")
    assert main(["predict", str(model), str(images)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 200


def test_predict_png_matches_the_network(model, data_root, tmp_path, capsys):
    from matplotlib.image import imsave

    from netlearn import load
    from netlearn.data import load_mnist

    _, _, (X, y) = load_mnist(data_root)
    net = load(model)
    digit = X[3].reshape(28, 28)
    white_on_black, black_on_white = tmp_path / "digit.png", tmp_path / "paper.png"
    imsave(white_on_black, digit, cmap="gray", vmin=0, vmax=1)
    imsave(black_on_white, 1 - digit, cmap="gray", vmin=0, vmax=1)
    expected = int(net.predict(X[3:4])[0])

    assert main(["predict", str(model), str(white_on_black), "--no-preprocess"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{white_on_black}: {expected} ")
    assert "--invert" not in captured.err

    assert main(["predict", str(model), str(black_on_white), "--no-preprocess"]) == 0
    assert "--invert" in capsys.readouterr().err  # a hint that the polarity looks wrong
    assert main(["predict", str(model), str(black_on_white), "--no-preprocess", "--invert"]) == 0
    assert capsys.readouterr().out.startswith(f"{black_on_white}: {expected} ")


def test_predict_resizes_other_png_sizes_with_a_note(model, tmp_path, capsys):
    from matplotlib.image import imsave

    big = tmp_path / "big.png"
    img = np.zeros((56, 56, 3))
    img[10:46, 24:32] = 1.0  # a "1", white on black, RGB
    imsave(big, img)
    assert main(["predict", str(model), str(big), "--no-preprocess"]) == 0
    captured = capsys.readouterr()
    assert "resized to 28x28" in captured.err
    assert captured.out.startswith(f"{big}: ")


def test_predict_errors(model, data_root, tmp_path, capsys):
    images = data_root / "mnist" / "t10k-images-idx3-ubyte.gz"
    labels = data_root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert "no image file" in run_error(capsys, ["predict", str(model), str(tmp_path / "x.png")])
    assert "200 images" in run_error(capsys, ["predict", str(model), str(images), "--index", "200"])
    assert "--index" in run_error(capsys, ["predict", str(model), str(images), "--index", "a:b"])
    assert "selects no image" in run_error(capsys, ["predict", str(model), str(images), "--index", "5:5"])
    assert "--labels" in run_error(capsys, ["predict", str(model), str(labels)])
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    err = run_error(capsys, ["predict", str(model), str(text)])
    assert "not an image" in err and "elete" not in err
    assert "no model file" in run_error(capsys, ["predict", str(tmp_path / "m.json"), str(images)])
    assert "give the files to predict" in run_error(capsys, ["predict", str(model)])  # no IMAGE


def test_outputs_have_ordinary_permissions(data_root, tmp_path):
    """Atomic writes must not leave the 0600 mode of a temporary file on --json, --save and --plot outputs."""
    import os

    files = [tmp_path / name for name in ("h.json", "net.json", "curves.png")]
    assert main(["train", "--data-dir", str(data_root), "--epochs", "1", "--quiet", "--json", str(files[0]),
                 "--save", str(files[1]), "--plot", str(files[2])]) == 0
    umask = os.umask(0)
    os.umask(umask)
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask, f
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.name for f in files)  # no temporary left over
