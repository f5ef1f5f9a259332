"""Early stopping (no-improvement-in-n), checkpoints, and resumed runs equal to uninterrupted ones."""
import json

import numpy as np
import pytest

import netlearn
from netlearn import optimizers
from netlearn.callbacks import Checkpoint, EarlyStopping, load_checkpoint
from netlearn.schedules import HalveOnPlateau, StepDecay
from netlearn.training import Callback


class Scripted(Callback):
    """Overwrites the last recorded validation accuracy with a scripted value (runs before early stopping)."""

    order = -1

    def __init__(self, values):
        self.values = values

    def on_epoch_end(self, state):
        state.history.evaluation_accuracy[-1] = self.values[state.epoch]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.random((120, 6))
    y = (X[:, 0] + X[:, 1] > X[:, 2] + 0.5).astype(int) + (X[:, 3] > 0.8)
    return (X[:90], y[:90]), (X[90:], y[90:])


@pytest.mark.parametrize("n,expected_best", [(1, 2), (3, 4), (5, 4)])
def test_stopped_run_has_best_epoch_plus_n_epochs(data, n, expected_best):
    train, val = data
    script = [0.1, 0.5, 0.4, 0.6, 0.55, 0.6, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    net = netlearn.Network([6, 5, 3], seed=0)
    weights = {}

    class Snapshot(Callback):
        order = 1

        def on_epoch_end(self, state):
            weights[state.epoch + 1] = [p.copy() for p in state.net.parameters()]

    h = net.fit(train, len(script), 10, 0.5, evaluation_data=val, seed=0,
                callbacks=[Scripted(script), EarlyStopping(n), Snapshot()])
    best = 1 + int(np.argmax(script[:h.epochs]))  # first epoch with the best value (ties do not count)
    assert h.best_epoch == best == expected_best
    assert h.epochs == h.best_epoch + n
    assert all(np.array_equal(p, q) for p, q in zip(net.parameters(), weights[best]))


def test_early_stopping_on_a_cost_and_without_stopping(data):
    train, val = data
    net = netlearn.Network([6, 5, 3], seed=0)
    h = net.fit(train, 4, 10, 0.5, evaluation_data=val, seed=0, monitor_training_cost=True,
                callbacks=[EarlyStopping(10, monitor="training_cost")])
    assert h.epochs == 4
    assert h.best_epoch == 1 + int(np.argmin(h.training_cost))


def test_early_stopping_errors(data):
    train, _ = data
    with pytest.raises(ValueError, match="'patience' parameter must be an integer >= 1. Got 0"):
        EarlyStopping(0)
    with pytest.raises(ValueError, match="'monitor' parameter must be one of"):
        EarlyStopping(3, monitor="validation_accuracy")
    with pytest.raises(ValueError, match="watches 'evaluation_accuracy', which this run does not record"):
        netlearn.Network([6, 5, 3]).fit(train, 2, 10, 0.5, callbacks=[EarlyStopping(3)])


def build():
    return netlearn.Network([6, 8, 3], activation="relu", cost="log-likelihood", dropout=0.3, batch_norm=True,
                            input_noise=0.05, seed=1)


def train(data, epochs, callbacks=(), resume=None, optimizer=None):
    tr, val = data
    net = build()
    h = net.fit(tr, epochs, 7, lmbda=0.5, evaluation_data=val, seed=3, monitor_training_cost=True,
                optimizer=optimizer or optimizers.momentum(0.05, 0.8), max_norm=2.0, callbacks=callbacks,
                resume=resume)
    return net, h


def same_run(a, b):
    (na, ha), (nb, hb) = a, b
    assert all(np.array_equal(p, q) for p, q in zip(na.parameters(), nb.parameters()))
    for m, k in zip(na.modules, nb.modules):
        for key, v in m.get_state().items():
            np.testing.assert_array_equal(v, k.get_state()[key])
    da, db = ha.to_dict(), hb.to_dict()
    da.pop("epoch_seconds"), db.pop("epoch_seconds")
    assert da == db


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_resumed_run_equals_uninterrupted_run(data, tmp_path, optimizer):
    """Dropout, input noise, batch norm, momentum/Adam state, a schedule and early stopping all resume exactly."""
    def cbs(ckpt=None):
        out = [StepDecay(3, 0.5), EarlyStopping(50)]
        return out + ([Checkpoint(ckpt, every=2)] if ckpt else [])

    opt = (lambda: optimizers.momentum(0.05, 0.8)) if optimizer == "momentum" else (lambda: optimizers.adam(0.01))
    full = train(data, 7, cbs(), optimizer=opt())
    train(data, 4, cbs(tmp_path), optimizer=opt())          # an interrupted run: 4 of 7 epochs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-0002.json", "checkpoint-0004.json"]
    resumed = train(data, 7, cbs(), resume=tmp_path / "checkpoint-0004.json", optimizer=opt())
    same_run(full, resumed)
    assert resumed[1].epochs == 7 and len(resumed[1].eta) == 7
    from_two = train(data, 7, cbs(), resume=load_checkpoint(tmp_path / "checkpoint-0002.json"), optimizer=opt())
    same_run(full, from_two)


def test_resume_with_halving_schedule(data, tmp_path):
    full = train(data, 6, [HalveOnPlateau(1)])
    train(data, 3, [HalveOnPlateau(1), Checkpoint(tmp_path, every=3)])
    resumed = train(data, 6, [HalveOnPlateau(1)], resume=tmp_path / "checkpoint-0003.json")
    same_run(full, resumed)


def test_checkpoint_contents_and_keep(data, tmp_path):
    train(data, 4, [Checkpoint(tmp_path, every=1, keep=2)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-0003.json", "checkpoint-0004.json"]
    d = json.loads((tmp_path / "checkpoint-0004.json").read_text())
    assert d["format"] == "netlearn-checkpoint" and d["epoch"] == 4
    assert {"model", "optimizer", "shuffle_rng", "noise_rng", "history", "eta", "order"} <= d.keys()
    assert len(d["history"]["evaluation_accuracy"]) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_resume_refuses_a_different_run(data, tmp_path):
    train(data, 2, [Checkpoint(tmp_path, every=2)])
    path = tmp_path / "checkpoint-0002.json"
    tr, val = data
    with pytest.raises(ValueError, match="batch_size 7; this run has 10"):
        build().fit(tr, 4, 10, 0.05, evaluation_data=val, seed=3, resume=path)
    with pytest.raises(ValueError, match="different network"):
        netlearn.Network([6, 4, 3], cost="log-likelihood").fit(tr, 4, 7, 0.05, evaluation_data=val, resume=path)
    with pytest.raises(ValueError, match="not a netlearn checkpoint"):
        (tmp_path / "x.json").write_text("{}")
        build().fit(tr, 4, 7, 0.05, resume=tmp_path / "x.json")
    with pytest.raises(ValueError, match="'every' parameter must be an integer >= 1"):
        Checkpoint(tmp_path, every=0)


def test_resume_with_augmentation_equals_uninterrupted(data, tmp_path):
    """Augment's draws are part of the checkpoint: a resumed run sees the same distortions."""
    from netlearn.data.augment import Augment

    def run(epochs, ckpt=None, resume=None):
        (X, y), val = data
        cbs = [Augment(noise_sigma=0.1, seed=4)] + ([Checkpoint(ckpt, every=2)] if ckpt else [])
        net = build()
        h = net.fit((X.astype(np.float32), y), epochs, 7, 0.05, evaluation_data=val, seed=3, callbacks=cbs,
                    resume=resume)
        return net, h

    full = run(5)
    run(2, ckpt=tmp_path)
    same_run(full, run(5, resume=tmp_path / "checkpoint-0002.json"))
