"""What is displayed never changes what is learned: progress bars (drawn to a terminal), verbose lines and
callbacks that only read leave weights, biases and History bit-identical, on both engines."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest

import netlearn
from netlearn.training import Callback


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so tqdm draws its bars into it."""

    def isatty(self) -> bool:
        return True


class Reader(Callback):
    """A callback that only looks: accuracy and the weights' norm after every epoch."""

    def __init__(self, data):
        self.data, self.seen = data, []

    def on_epoch_end(self, state):
        self.seen.append((state.net.accuracy(self.data), sum(float(np.abs(p).sum()) for p in state.net.parameters())))


def data(n=1500, d=40, k=5, seed=0):
    g = np.random.default_rng(seed)
    X = g.random((n, d)).astype(np.float32)
    X[g.random((n, d)) > 0.3] = 0
    return X, g.integers(0, k, n)


def train(engine, batch, **fit_kw):
    X, y = data()
    net = netlearn.Network([40, 24, 5], seed=1)
    h = net.fit((X, y), 3, batch, 0.5, lmbda=5.0, evaluation_data=(X[:300], y[:300]), seed=2, engine=engine,
                monitor_evaluation_cost=True, monitor_training_cost=True, **fit_kw)
    d = h.to_dict()
    del d["epoch_seconds"]
    return [p.copy() for p in net.parameters()], d


@pytest.mark.parametrize("engine, batch", [("numpy", 10), ("numba", 10), ("numba", 50)])
def test_progress_verbose_and_readers_change_nothing(engine, batch, monkeypatch, capsys):
    params, history = train(engine, batch)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    reader = Reader(data())
    shown_params, shown_history = train(engine, batch, progress=True, verbose=True, callbacks=[reader])
    assert "Epoch 1/3" in terminal.getvalue()        # the bar was drawn
    assert "Epoch 3/3" in capsys.readouterr().out    # and the verbose lines printed
    assert len(reader.seen) == 3
    assert shown_history == history
    for p, q in zip(params, shown_params):
        np.testing.assert_array_equal(p, q)


def test_progress_bars_use_tqdm_auto():
    import tqdm.auto

    from netlearn import progress

    assert progress.tqdm is tqdm.auto.tqdm  # the notebook widget inside Jupyter, a text bar elsewhere
