"""One divergence rule for both engines: NaN, infinite or overflowing weights (beyond the square root of the
dtype's largest value) end the run with DivergenceError and the last good epoch's weights."""
from __future__ import annotations

import re

import numpy as np
import pytest

import netlearn
from netlearn.training import divergence_limit, diverged


def data(n=600, d=100, k=10, seed=0):
    g = np.random.default_rng(seed)
    X = g.random((n, d)).astype(np.float32)
    X[g.random((n, d)) > 0.2] = 0
    return X, g.integers(0, k, n)


def regression_net():
    return netlearn.Network([100, 30, 10], activation="relu", cost="quadratic", output="identity", seed=1)


def test_the_limit():
    assert divergence_limit(np.float32) == pytest.approx(1.8446743e19, rel=1e-6)
    assert divergence_limit(np.float64) == pytest.approx(1.3407807929942596e154)
    ok = np.full(3, 1e19, np.float32)
    assert not diverged([ok, -ok])
    assert diverged([ok, np.full(2, -2e19, np.float32)])
    assert diverged([np.array([0.0, np.nan], np.float32)])
    assert diverged([np.array([np.inf], np.float32)])


def diverging_epoch(engine, scale, eta):
    """Train until DivergenceError; return the epoch it names and the network."""
    X, y = data()
    net = regression_net()
    with pytest.raises(netlearn.DivergenceError, match="larger than 1.8e\\+19") as exc:
        net.fit((X * scale, y), 30, 100, eta, seed=3, engine=engine)
    return int(re.search(r"diverged in epoch (\d+)", str(exc.value)).group(1)), net


# (inputs x 100, eta 10): weights pass 1e30 in the second epoch.  Before the common rule the NumPy
# engine reached infinity there and raised while the compiled one finished with weights near 1.3e31.
@pytest.mark.parametrize("scale, eta", [(100, 10.0), (1, 3.0)])
def test_both_engines_diverge_in_the_same_epoch_and_keep_the_last_good_one(scale, eta):
    epochs = {}
    for engine in ("numpy", "numba"):
        epoch, net = diverging_epoch(engine, scale, eta)
        epochs[engine] = epoch
        assert epoch >= 2
        X, y = data()
        ref = regression_net()
        ref.fit((X * scale, y), epoch - 1, 100, eta, seed=3, engine=engine)  # the same epochs, stopped in time
        assert not diverged(ref.parameters())
        for p, q in zip(net.parameters(), ref.parameters()):
            np.testing.assert_array_equal(p, q)
    assert epochs["numpy"] == epochs["numba"]
