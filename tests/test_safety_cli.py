"""Outputs, checkpoints and resume, divergence and Ctrl-C through `netlearn train` and the Python API (issues 13, 12)."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import netlearn
from netlearn.checkpoints import Checkpoint, CheckpointError, KeepLast, load_checkpoint, resume_with
from netlearn.cli import augmentation, main
from netlearn.training import Callback

sys.path.insert(0, os.path.dirname(__file__))
from helpers import one_line  # noqa: E402
from test_safety_data import write_set  # noqa: E402

BASE = ["--layers", "9,5,10", "--quiet", "--train-size", "200", "--batch-size", "20", "--seed", "1"]


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    root = tmp_path / "root"
    write_set(root / "mnist", n_train=10_200, n_test=20)
    monkeypatch.setenv("NETLEARN_DATA", str(root))
    monkeypatch.setenv("NETLEARN_ENGINE", "numpy")
    monkeypatch.chdir(tmp_path)
    return root


def train(*args) -> int:
    return main(["train", *BASE, *map(str, args)])


def weights(path):
    return [p.copy() for p in netlearn.load(path).parameters()]


def same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# -- outputs checked before training ----------------------------------------------------------------------------
@pytest.mark.parametrize("opt", ["--save", "--json", "--plot"])
def test_a_folder_given_as_the_file(tmp_path, capsys, opt):
    (tmp_path / "d").mkdir()
    assert train("--epochs", 1, opt, tmp_path / "d") == 2
    assert "this is a folder" in one_line(capsys)


def test_a_missing_parent_and_a_file_given_as_the_checkpoint_folder(tmp_path, capsys):
    assert train("--epochs", 1, "--save", tmp_path / "no" / "net.json") == 2
    assert "does not exist" in one_line(capsys)
    (tmp_path / "f").write_text("x")
    assert train("--epochs", 1, "--checkpoint", tmp_path / "f") == 2
    assert "this is a file; --checkpoint takes a folder" in one_line(capsys)


def test_a_read_only_folder(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.open

    def fake_open(path, flags, *a, **k):  # as a read-only folder answers, also when the tests run as root
        if os.path.dirname(os.fspath(path)) == str(ro) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", fake_open)
    for opt in ("--json", "--save", "--plot"):
        assert train("--epochs", 1, opt, ro / "out") == 2
        assert "cannot write into" in one_line(capsys)
    assert train("--epochs", 1, "--checkpoint", ro) == 2
    assert "cannot write into this folder" in one_line(capsys)


# -- a write that fails after training ------------------------------------------------------------------------------
def test_disk_full_keeps_the_old_file_removes_the_temporary_and_rescues_the_result(tmp_path, capsys, monkeypatch):
    full, rescue = tmp_path / "full", tmp_path / "rescue"
    full.mkdir()
    rescue.mkdir()
    (full / "net.json").write_text("older model")
    (full / "h.json").write_text("older history")
    monkeypatch.setattr("tempfile.tempdir", str(rescue))
    real = os.fsync

    def fsync(fd):  # the disk of `full` is full; the check before training passes, the writes after it fail
        if os.path.dirname(os.readlink(f"/proc/self/fd/{fd}")) == str(full):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert train("--epochs", 2, "--save", full / "net.json", "--json", full / "h.json") == 74
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("No space left on device" in line and "written to" in line for line in err)
    assert (full / "net.json").read_text() == "older model" and (full / "h.json").read_text() == "older history"
    assert sorted(p.name for p in full.iterdir()) == ["h.json", "net.json"]  # no temporary file left
    saved = {p.name.split("-")[-1]: p for p in rescue.iterdir()}
    assert set(saved) == {"net.json", "h.json"}
    assert str(saved["net.json"]) in "\n".join(err)
    assert netlearn.load(saved["net.json"]).sizes == [9, 5, 10]
    assert len(json.loads(saved["h.json"].read_text())["evaluation_accuracy"]) == 2


def test_leftover_temporaries_of_killed_runs_are_cleaned_at_the_next_start(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    left = [tmp_path / f".net.json.{dead}-00112233aabb.tmp", tmp_path / "ck" / f".checkpoint-0001.json.{dead}-00112233aabb.tmp"]
    (tmp_path / "ck").mkdir()
    for p in left:
        p.write_text("half")
    assert train("--epochs", 1, "--save", tmp_path / "net.json", "--checkpoint", tmp_path / "ck") == 0
    assert not any(p.exists() for p in left)


def test_checkpoints_of_another_run_get_a_warning(tmp_path, capsys):
    assert train("--epochs", 2, "--checkpoint", tmp_path / "ck") == 0
    assert "warning" not in capsys.readouterr().err
    assert train("--epochs", 1, "--checkpoint", tmp_path / "ck") == 0
    err = capsys.readouterr().err
    assert "netlearn: warning:" in err and "another run" in err and "checkpoint-0001.json" in err
    # resuming the same run in its own folder is not another run
    assert train("--epochs", 3, "--checkpoint", tmp_path / "ck2") == 0
    capsys.readouterr()
    assert train("--epochs", 4, "--checkpoint", tmp_path / "ck2", "--resume", tmp_path / "ck2" / "checkpoint-0003.json") == 0
    assert "warning" not in capsys.readouterr().err


def test_checkpoint_warning_in_python(tmp_path):
    X = np.random.default_rng(0).random((40, 4))
    y = np.arange(40) % 2
    netlearn.Network([4, 3, 2], seed=0).fit((X, y), 1, 10, 0.5, callbacks=[Checkpoint(tmp_path)])
    with pytest.warns(RuntimeWarning, match="another run"):
        netlearn.Network([4, 3, 2], seed=0).fit((X, y), 1, 10, 0.5, callbacks=[Checkpoint(tmp_path)])


# -- checkpoints and resume ------------------------------------------------------------------------------------
@pytest.fixture
def ckpt(tmp_path):
    assert train("--epochs", 2, "--eta", 0.3, "--lmbda", 1, "--checkpoint", tmp_path / "ck") == 0
    return tmp_path / "ck" / "checkpoint-0002.json"


@pytest.mark.parametrize("part", ["optimizer", "model", "history", "fit", "epoch"])
def test_a_checkpoint_missing_a_part(ckpt, capsys, part):
    d = json.loads(ckpt.read_text())
    del d[part]
    ckpt.write_text(json.dumps(d))
    assert train("--epochs", 3, "--resume", ckpt) == 2
    assert f"lacks its '{part}' part" in one_line(capsys)
    with pytest.raises(CheckpointError, match=part):
        load_checkpoint(ckpt)


@pytest.mark.parametrize("part, value", [("optimizer", [1]), ("eta", "fast"), ("epoch", 1.5), ("history", 3),
                                         ("shuffle_rng", 7), ("order", [0, 1])])
def test_a_checkpoint_part_of_the_wrong_type(ckpt, capsys, part, value):
    d = json.loads(ckpt.read_text())
    d[part] = value
    ckpt.write_text(json.dumps(d))
    assert train("--epochs", 3, "--resume", ckpt) == 2
    assert part in one_line(capsys)


def test_a_checkpoint_whose_order_is_not_a_permutation(ckpt, capsys):
    d = json.loads(ckpt.read_text())
    d["order"]["__ndarray__"][0] = 10 ** 9  # would index far outside the training set
    ckpt.write_text(json.dumps(d))
    assert train("--epochs", 3, "--resume", ckpt) == 2
    assert "not a permutation" in one_line(capsys)


def test_a_checkpoint_with_garbage_optimizer_state_in_python(ckpt):
    d = load_checkpoint(ckpt)
    d["optimizer"] = {"links": "nonsense"}
    X = np.random.default_rng(0).random((200, 9))
    y = np.arange(200) % 10
    with pytest.raises(CheckpointError, match="optimizer state does not fit this run"):
        netlearn.Network([9, 5, 10]).fit((X, y), 3, 20, 0.3, lmbda=1.0, resume=d)


def test_resume_refuses_contradicting_options_naming_each(ckpt, capsys):
    assert train("--epochs", 3, "--resume", ckpt, "--eta", 0.5, "--lmbda", 2, "--cost", "quadratic",
                 "--optimizer", "momentum", "--layers", "9,6,10") == 2
    err = one_line(capsys)
    for piece in ("--eta 0.5 (the run has 0.3)", "--lmbda 2 (the run has 1)", "--cost quadratic",
                  "--optimizer momentum", "--layers 9,6,10 (the run has 9,5,10)", "--override"):
        assert piece in err


def test_resume_compares_only_options_given(ckpt, tmp_path):
    # BASE gives --layers, --batch-size, --seed; eta 0.3 and lmbda 1 are not repeated and are taken from the run.
    assert train("--epochs", 3, "--resume", ckpt, "--save", tmp_path / "a.json") == 0
    assert train("--epochs", 3, "--eta", 0.3, "--lmbda", 1, "--save", tmp_path / "b.json") == 0
    assert same(weights(tmp_path / "a.json"), weights(tmp_path / "b.json"))
    assert train("--epochs", 3, "--resume", ckpt, "--eta", 0.3) == 0  # the same value is no contradiction


def test_a_schedules_changed_eta_is_no_contradiction(tmp_path):
    assert train("--epochs", 2, "--eta", 0.4, "--schedule", "exponential", "--gamma", 0.5,
                 "--checkpoint", tmp_path / "ck") == 0
    d = load_checkpoint(tmp_path / "ck" / "checkpoint-0002.json")
    assert d["eta"] != 0.4 and d["settings"]["eta"] == 0.4
    assert train("--epochs", 3, "--eta", 0.4, "--schedule", "exponential", "--gamma", 0.5,
                 "--resume", tmp_path / "ck" / "checkpoint-0002.json") == 0


def test_override_changes_the_learning_settings_on_purpose(ckpt, tmp_path, capsys):
    assert train("--epochs", 4, "--resume", ckpt, "--override", "eta,lmbda", "--eta", 0.05, "--lmbda", 3,
                 "--json", tmp_path / "h.json", "--checkpoint", tmp_path / "ck") == 0
    assert "resuming with eta=0.05, lmbda=3" in capsys.readouterr().err
    h = json.loads((tmp_path / "h.json").read_text())
    assert h["eta"] == [0.3, 0.3, 0.05, 0.05]
    d = load_checkpoint(tmp_path / "ck" / "checkpoint-0004.json")
    assert d["settings"]["eta"] == 0.05 and d["settings"]["lmbda"] == 3.0
    assert d["overrides"] == [{"epoch": 2, "eta": 0.05, "lmbda": 3.0}]
    # and the next resume holds the new settings
    assert train("--epochs", 5, "--resume", tmp_path / "ck" / "checkpoint-0004.json", "--eta", 0.3) == 2
    assert "--eta 0.3 (the run has 0.05)" in one_line(capsys)


def test_override_needs_resume_a_value_and_a_learning_setting(ckpt, capsys):
    assert train("--epochs", 3, "--override", "eta", "--eta", 0.1) == 2
    assert "needs --resume" in one_line(capsys)
    assert train("--epochs", 3, "--resume", ckpt, "--override", "eta") == 2
    assert "needs the new value" in one_line(capsys)
    assert train("--epochs", 3, "--resume", ckpt, "--override", "cost", "--cost", "quadratic") == 2
    assert "only eta, lmbda, l1" in one_line(capsys)


def test_resume_with_in_python(ckpt):
    X = np.random.default_rng(0).random((200, 9))
    y = np.arange(200) % 10
    net = netlearn.Network([9, 5, 10])
    h = net.fit((X, y), 3, 20, 0.05, lmbda=1.0, resume=resume_with(ckpt, eta=0.05))
    assert h.eta[-1] == 0.05
    with pytest.raises(ValueError, match="only eta, lmbda, l1"):
        resume_with(ckpt, cost="quadratic")


def test_epochs_at_or_below_the_checkpoint_is_an_error(ckpt, capsys):
    for epochs in (1, 2):
        assert train("--epochs", epochs, "--resume", ckpt) == 2
        assert "has finished 2 epochs" in one_line(capsys)
    X = np.random.default_rng(0).random((200, 9))
    y = np.arange(200) % 10
    with pytest.raises(CheckpointError, match="nothing to train"):
        netlearn.Network([9, 5, 10]).fit((X, y), 2, 20, 0.3, lmbda=1.0, resume=ckpt)


# -- divergence and Ctrl-C: one mechanism keeps the result ----------------------------------------------------
class _Fault(Callback):
    """At the start of epoch ``at`` (0-based), break the run the way a user or the numbers would."""

    order = -1

    def __init__(self, at: int, kind: str) -> None:
        self.at, self.kind = at, kind

    def on_epoch_begin(self, state) -> None:
        if state.epoch != self.at:
            return
        if self.kind == "nan":
            state.net.parameters()[0][0, 0] = np.nan  # the epoch ends with NaN weights: divergence
        else:
            count = [0]

            def hook(n):  # Ctrl-C in the middle of the epoch, after a few mini-batches changed the weights
                count[0] += 1
                if count[0] == 3:
                    raise KeyboardInterrupt

            state.batch_hooks.append(hook)


def _inject(monkeypatch, at, kind):
    real = augmentation.callbacks
    monkeypatch.setattr(augmentation, "callbacks", lambda args: real(args) + [_Fault(at, kind)])


@pytest.mark.parametrize("kind, status", [("nan", 1), ("interrupt", 130)])
def test_a_stopped_run_writes_the_last_finished_epoch(tmp_path, capsys, monkeypatch, kind, status):
    assert train("--epochs", 2, "--save", tmp_path / "ref.json", "--json", tmp_path / "ref-h.json") == 0
    capsys.readouterr()
    _inject(monkeypatch, 2, kind)
    assert train("--epochs", 5, "--save", tmp_path / "net.json", "--json", tmp_path / "h.json",
                 "--plot", tmp_path / "p.png") == status
    err = one_line(capsys)
    assert "epoch 2" in err and "net.json" in err and "h.json" in err
    assert ("diverged in epoch 3" in err) if kind == "nan" else ("interrupted in epoch 3" in err)
    assert same(weights(tmp_path / "net.json"), weights(tmp_path / "ref.json"))
    h, ref = json.loads((tmp_path / "h.json").read_text()), json.loads((tmp_path / "ref-h.json").read_text())
    assert h["evaluation_accuracy"] == ref["evaluation_accuracy"] and len(h["epoch_seconds"]) == 2
    assert (tmp_path / "p.png").stat().st_size > 0


def test_interrupt_before_any_epoch_writes_the_start(tmp_path, capsys, monkeypatch):
    _inject(monkeypatch, 0, "interrupt")
    assert train("--epochs", 3, "--json", tmp_path / "h.json") == 130
    assert "interrupted in epoch 1" in one_line(capsys)
    assert json.loads((tmp_path / "h.json").read_text())["epoch_seconds"] == []


def test_keep_last_in_python():
    X = np.random.default_rng(0).random((100, 4))
    y = np.arange(100) % 2
    ref = netlearn.Network([4, 3, 2], seed=0)
    ref.fit((X, y), 2, 10, 0.5, seed=0)
    net, keep = netlearn.Network([4, 3, 2], seed=0), KeepLast()
    with pytest.raises(KeyboardInterrupt):
        net.fit((X, y), 4, 10, 0.5, seed=0, callbacks=[keep, _Fault(2, "interrupt")])
    assert not same(net.parameters(), ref.parameters())  # mid-epoch weights
    keep.restore(net)
    assert same(net.parameters(), ref.parameters()) and keep.epochs == 2 and keep.history.epochs == 2


def test_a_real_sigint(tmp_path, env):
    """Ctrl-C from outside, in a fresh process: waits for a finished epoch, not for a time."""
    cmd = [sys.executable, "-m", "netlearn.cli", "train", "--layers", "9,5,10", "--train-size", "200",
           "--batch-size", "20", "--epochs", "100000", "--save", str(tmp_path / "net.json"),
           "--json", str(tmp_path / "h.json")]
    err_path = tmp_path / "stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**os.environ, "NETLEARN_DATA": str(env), "NETLEARN_ENGINE": "numpy",
                                     "PYTHONUNBUFFERED": "1"})
        try:
            for line in proc.stdout:  # the per-epoch lines
                if line.startswith("Epoch 3/"):  # epoch 2 is kept by now
                    proc.send_signal(signal.SIGINT)
                    break
            proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    rest = err_path.read_text()
    assert proc.returncode == 130, rest
    assert "interrupted in epoch" in rest and "--save" in rest
    n = len(json.loads((tmp_path / "h.json").read_text())["epoch_seconds"])
    assert n >= 2 and f"epoch {n}." in rest
    assert netlearn.load(tmp_path / "net.json").sizes == [9, 5, 10]


def test_callback_state_survives_a_resume_with_or_without_quiet(tmp_path, monkeypatch):
    """Early stopping's state is restored whether or not the progress bar and epoch log are on."""
    common = ["--layers", "9,5,10", "--train-size", "200", "--batch-size", "20", "--seed", "1",
              "--early-stopping", "50", "--schedule", "exponential"]
    assert main(["train", *common, "--epochs", "4", "--quiet", "--json", str(tmp_path / "ref.json")]) == 0
    assert main(["train", *common, "--epochs", "2", "--quiet", "--checkpoint", str(tmp_path / "ck")]) == 0
    d = load_checkpoint(tmp_path / "ck" / "checkpoint-0002.json")
    assert set(d["callbacks"]) == {"0:Exponential", "0:EarlyStopping"}
    assert main(["train", *common, "--epochs", "4", "--resume", str(tmp_path / "ck" / "checkpoint-0002.json"),
                 "--json", str(tmp_path / "h.json")]) == 0  # not quiet: two more callbacks in the list
    h, ref = (json.loads((tmp_path / n).read_text()) for n in ("h.json", "ref.json"))
    assert h["eta"] == ref["eta"] and h["evaluation_accuracy"] == ref["evaluation_accuracy"]
    assert h["best_epoch"] == ref["best_epoch"]
