"""Dropout, batch normalization and input noise: gradient checks, modes, seeding, saving."""
import numpy as np
import pytest

import netlearn
from netlearn.gradcheck import check_module, check_network
from netlearn.layers import MODULES, BatchNorm, Dense, Dropout, GaussianNoise, ReLU, Softmax
from netlearn.network import Sequential

TOL = 1e-6


class FixedRandom:
    """A stand-in generator that returns the same uniform draws every time (a fixed dropout mask)."""

    def __init__(self, values):
        self.values = values

    def random(self, out, dtype=None):
        out[...] = self.values
        return out


def test_dropout_gradcheck_with_fixed_mask():
    rng = np.random.default_rng(0)
    u = rng.standard_normal((5, 7))
    d = Dropout(0.4)
    d.rng = FixedRandom(rng.random((5, 7)))
    errors = check_module(d, u, train=True)
    assert max(errors.values()) < TOL
    v = d.forward(u, train=True)
    kept = d.rng.values >= 0.4
    np.testing.assert_allclose(v, np.where(kept, u / 0.6, 0.0))


def test_dropout_is_inverted_and_identity_in_evaluation():
    u = np.ones((2000, 50))
    d = Dropout(0.5, seed=1)
    assert d.forward(u, train=False) is u
    v = d.forward(u, train=True)
    assert set(np.unique(v)) == {0.0, 2.0}
    assert abs(v.mean() - 1.0) < 0.02          # expected activation unchanged
    assert abs((v == 0).mean() - 0.5) < 0.02   # half the units dropped


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, float("nan"), "0.5", True])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match=r"The 'p' parameter must be a float in the range \[0, 1\)"):
        Dropout(p)
    with pytest.raises(ValueError, match=r"The 'dropout' parameter must be a float in the range \[0, 1\)"):
        netlearn.Network([4, 3, 2], dropout=p)


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_gradcheck(train):
    rng = np.random.default_rng(1)
    bn = BatchNorm(6, dtype="float64")
    bn.G[...] = rng.uniform(0.5, 2, 6)
    bn.B[...] = rng.standard_normal(6)
    bn.running_mean[...] = rng.standard_normal(6)
    bn.running_var[...] = rng.uniform(0.5, 2, 6)
    u = 3 * rng.standard_normal((8, 6)) + 1
    errors = check_module(bn, u, train=train)
    assert max(errors.values()) < TOL, errors


def test_batchnorm_normalizes_and_tracks_running_averages():
    rng = np.random.default_rng(2)
    bn = BatchNorm(4, momentum=0.0, dtype="float64")  # momentum 0: the running values are the last batch's
    z = 5 + 3 * rng.standard_normal((64, 4))
    v = bn.forward(z, train=True)
    np.testing.assert_allclose(v.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(v.std(axis=0), 1, atol=1e-3)
    np.testing.assert_allclose(bn.running_mean, z.mean(axis=0))
    np.testing.assert_allclose(bn.running_var, z.var(axis=0, ddof=1))
    # evaluation uses the running averages: the same batch gives nearly the same output
    np.testing.assert_allclose(bn.forward(z, train=False), v, rtol=0.02, atol=0.02)


def test_batchnorm_bad_arguments():
    with pytest.raises(ValueError, match="'n' parameter must be an integer >= 1"):
        BatchNorm(0)
    with pytest.raises(ValueError, match=r"'momentum' parameter must be a float in the range \[0, 1\)"):
        BatchNorm(3, momentum=1.0)
    with pytest.raises(ValueError, match=r"'eps' parameter must be a float in the range \(0, inf\)"):
        BatchNorm(3, eps=-1)


def test_gaussian_noise_gradcheck_and_modes():
    u = np.random.default_rng(3).standard_normal((4, 5))
    g = GaussianNoise(0.3, seed=0)
    assert max(check_module(g, u, train=False).values()) < TOL
    assert g.forward(u, train=False) is u
    big = np.zeros((4000, 25))
    noisy = g.forward(big, train=True)
    assert abs(noisy.std() - 0.3) < 0.01
    np.testing.assert_array_equal(g.backward(u), u)
    with pytest.raises(ValueError, match=r"The 'sigma' parameter must be a float in the range \[0, inf\). Got -1"):
        GaussianNoise(-1)


def test_network_shorthand_inserts_modules():
    net = netlearn.Network([6, 5, 4, 3], activation="relu", cost="log-likelihood", dropout=0.5, batch_norm=True,
                           input_noise=0.1, seed=0)
    names = [type(m).__name__ for m in net.modules]
    assert names == ["GaussianNoise", "Dense", "BatchNorm", "ReLU", "Dropout", "Dense", "BatchNorm", "ReLU",
                     "Dropout", "Dense", "Softmax"]
    assert "dropout=0.5" in repr(net)


def test_network_gradcheck_with_batchnorm_in_training_mode():
    """The whole network's back-propagation through Dense -> BatchNorm -> ReLU, against train-mode costs."""
    rng = np.random.default_rng(4)
    net = netlearn.Network([5, 6, 3], activation="tanh", cost="log-likelihood", batch_norm=True, seed=1,
                           dtype="float64")
    X, y = rng.standard_normal((10, 5)), rng.integers(0, 3, 10)
    Y = net._targets(y)
    net.backprop(X, Y)
    analytic = [g.copy() for g in net.gradients()]
    from netlearn.gradcheck import numerical_gradient, relative_error

    def loss():
        return net.cost.fn(net.forward(X, train=True), Y)

    for p, g in zip(net.parameters(), analytic):
        assert relative_error(g, numerical_gradient(loss, p)) < TOL


def test_network_gradcheck_l1_l2_eval_mode_modules():
    """Dropout and noise are identities in evaluation; check_network's total cost (L2 + L1) still matches."""
    rng = np.random.default_rng(5)
    net = Sequential([Dense(4, 5, dtype="float64"), ReLU(), Dropout(0.0), Dense(5, 3, dtype="float64"), Softmax()],
                     cost="log-likelihood", dtype="float64")
    errors = check_network(net, rng.standard_normal((7, 4)), rng.integers(0, 3, 7), lmbda=0.3, l1=0.2, n=50)
    assert max(errors.values()) < TOL


def test_registered_and_saved(tmp_path):
    for name in ("Dropout", "BatchNorm", "GaussianNoise"):
        assert name in MODULES
    net = netlearn.Network([6, 5, 3], activation="relu", cost="log-likelihood", dropout=0.25, batch_norm=True,
                           input_noise=0.2, seed=3)
    X = np.random.default_rng(6).random((50, 6))
    net.fit((X, np.arange(50) % 3), 2, 10, 0.1, seed=0, monitor_evaluation_accuracy=False)
    net.save(tmp_path / "m.json")
    back = netlearn.load(tmp_path / "m.json")
    assert repr(back) == repr(net)
    bn, bn2 = net.modules[2], back.modules[2]
    np.testing.assert_array_equal(bn.running_mean, bn2.running_mean)
    np.testing.assert_array_equal(bn.running_var, bn2.running_var)
    np.testing.assert_array_equal(net.predict_proba(X), back.predict_proba(X))
    with pytest.raises(ValueError, match="network2 format holds only Dense"):
        net.save(tmp_path / "b.json", format="network2")


def test_fit_seed_repeats_dropout_runs():
    rng = np.random.default_rng(7)
    X, y = rng.random((80, 6)), rng.integers(0, 3, 80)

    def train(seed):
        net = netlearn.Network([6, 8, 3], cost="log-likelihood", dropout=0.5, input_noise=0.1, seed=0)
        net.fit((X, y), 2, 10, 0.5, seed=seed, monitor_evaluation_accuracy=False)
        return net.parameters()

    a, b, c = train(1), train(1), train(2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c))
