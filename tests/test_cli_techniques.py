"""``netlearn train`` with the technique options, on small synthetic data (no MNIST needed)."""
import json

import numpy as np
import pytest

from netlearn.cli import main
from netlearn.cli import train as train_cli


@pytest.fixture(autouse=True)
def synthetic(monkeypatch):
    rng = np.random.default_rng(0)

    def split(n):
        X = rng.random((n, 12)).astype(np.float32)
        return X, (X[:, :4].sum(axis=1) > 2).astype(int) + 2 * (X[:, 5] > 0.7)

    data = (split(200), split(80), split(80))
    monkeypatch.setattr(train_cli, "load_data", lambda args: data)


BASE = ["train", "--layers", "12,8,4", "--cost", "log-likelihood", "--epochs", "4", "--batch-size", "10",
        "--seed", "1", "--quiet"]


def run(tmp_path, *extra):
    out = tmp_path / "h.json"
    rc = main(BASE + ["--json", str(out), *extra])
    return rc, (json.loads(out.read_text()) if out.exists() else None)


@pytest.mark.parametrize("opt,eta", [("sgd", 0.5), ("momentum", 0.1), ("nesterov", 0.1), ("adagrad", 0.1),
                                     ("rmsprop", 0.01), ("adadelta", 1.0), ("adam", 0.01)])
def test_first_order_optimizers(tmp_path, opt, eta):
    rc, h = run(tmp_path, "--optimizer", opt, "--eta", str(eta), "--lmbda", "0.1")
    assert rc == 0 and len(h["evaluation_accuracy"]) == 4
    assert h["eta"] == [eta] * 4 and h["best_epoch"] is None


@pytest.mark.parametrize("opt", ["lbfgs", "cg", "newton"])
def test_second_order_optimizers(tmp_path, opt):
    extra = ["--layers", "12,3,4"] if opt == "newton" else []
    rc, h = run(tmp_path, "--optimizer", opt, "--eta", "1", *extra)
    assert rc == 0 and 1 <= len(h["training_cost"]) <= 4


def test_regularization_and_schedule_options(tmp_path, capsys):
    rc, h = run(tmp_path, "--optimizer", "momentum", "--mu", "0.5", "--eta", "0.2", "--l1", "0.1",
                "--max-norm", "2", "--dropout", "0.2", "--batch-norm", "--input-noise", "0.05",
                "--activation", "relu", "--schedule", "step", "--step-size", "2", "--gamma", "0.5")
    assert rc == 0 and h["eta"] == [0.2, 0.2, 0.1, 0.1]
    rc, h = run(tmp_path, "--schedule", "exponential", "--gamma", "0.5", "--eta", "0.4")
    assert rc == 0 and h["eta"] == [0.4, 0.2, 0.1, 0.05]


def test_early_stopping_and_stop_on(tmp_path, capsys):
    rc, h = run(tmp_path, "--epochs", "40", "--early-stopping", "2", "--eta", "0.5")
    assert rc == 0 and len(h["eta"]) == h["best_epoch"] + 2
    assert "kept the weights of epoch" in capsys.readouterr().out
    rc, h = run(tmp_path, "--epochs", "30", "--early-stopping", "3", "--stop-on", "training_cost")
    assert rc == 0 and len(h["training_cost"]) == len(h["eta"])
    assert h["best_epoch"] == 1 + int(np.argmin(h["training_cost"]))
    # without --stop-on, the first --monitor figure when evaluation accuracy is not monitored
    rc, h = run(tmp_path, "--epochs", "5", "--early-stopping", "50", "--monitor", "evaluation_cost")
    assert rc == 0 and h["best_epoch"] == 1 + int(np.argmin(h["evaluation_cost"]))


def test_halving_schedule(tmp_path):
    rc, h = run(tmp_path, "--epochs", "200", "--schedule", "halve", "--patience", "1", "--eta", "0.5")
    assert rc == 0 and len(h["eta"]) < 200 and min(h["eta"]) == 0.5 / 64


def test_checkpoint_and_resume_equal_an_uninterrupted_run(tmp_path):
    common = ["--optimizer", "adam", "--eta", "0.01", "--dropout", "0.3", "--schedule", "step", "--step-size", "2"]
    rc, full = run(tmp_path, *common, "--epochs", "5")
    assert rc == 0
    ck = tmp_path / "ck"
    assert main(BASE + [*common, "--epochs", "3", "--checkpoint", str(ck), "--checkpoint-every", "3"]) == 0
    rc, resumed = run(tmp_path, *common, "--epochs", "5", "--resume", str(ck / "checkpoint-0003.json"))
    assert rc == 0
    for d in (full, resumed):
        d.pop("epoch_seconds")
    assert resumed == full


@pytest.mark.parametrize("extra,msg", [
    (["--optimizer", "momentum", "--mu", "1.5"], "The 'mu' parameter must be a float in the range [0, 1). Got 1.5"),
    (["--optimizer", "adam", "--beta2", "1"], "'beta2' parameter"),
    (["--dropout", "1"], "The 'dropout' parameter must be a float in the range [0, 1). Got 1.0"),
    (["--optimizer", "cg", "--dropout", "0.5"], "does not take --dropout"),
    (["--optimizer", "newton", "--layers", "12,200,4"], "3,404 parameters, more than the limit of 2,000"),
    (["--resume", "/nonexistent/ck.json"], "no such checkpoint file"),
    (["--schedule", "step", "--gamma", "2"], "--gamma must be in (0, 1]"),
])
def test_bad_options_exit_2(tmp_path, capsys, extra, msg):
    rc = main(BASE + extra)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert msg in err and "Traceback" not in err


@pytest.mark.parametrize("extra", [["--optimizer", "adamw"], ["--l1", "-1"], ["--max-norm", "0"],
                                   ["--early-stopping", "0"], ["--stop-on", "accuracy"], ["--input-noise", "-1"]])
def test_argparse_errors_exit_2(capsys, extra):
    with pytest.raises(SystemExit) as exc:
        main(BASE + extra)
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
