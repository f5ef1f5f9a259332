"""Training: the book's update rule exactly, monitoring, History, seeds, divergence."""
import numpy as np
import pytest

import netlearn
from netlearn import Network

from conftest import make_blobs


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def book_sgd(weights, biases, X, y, epochs, m, eta, lmbda, l1, seed, n_out):
    """The book's network2.SGD, one example at a time (weights (n_out, n_in), column biases), as reference."""
    n = len(X)
    perm = np.arange(n)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        rng.shuffle(perm)
        for s in range(0, n, m):
            idx = perm[s:s + m]
            nw = [np.zeros_like(w) for w in weights]
            nb = [np.zeros_like(b) for b in biases]
            for i in idx:
                x = X[i][:, None]
                t = np.zeros((n_out, 1))
                t[y[i]] = 1
                acts, zs, a = [x], [], x
                for w, b in zip(weights, biases):
                    z = w @ a + b
                    zs.append(z)
                    a = sigmoid(z)
                    acts.append(a)
                delta = acts[-1] - t  # cross-entropy with sigmoid
                nb[-1] += delta
                nw[-1] += delta @ acts[-2].T
                for k in range(2, len(weights) + 1):
                    sp = sigmoid(zs[-k]) * (1 - sigmoid(zs[-k]))
                    delta = (weights[-k + 1].T @ delta) * sp
                    nb[-k] += delta
                    nw[-k] += delta @ acts[-k - 1].T
            mb = len(idx)
            weights = [(1 - eta * lmbda / n) * w - (eta * l1 / n) * np.sign(w) - (eta / mb) * g
                       for w, g in zip(weights, nw)]
            biases = [b - (eta / mb) * g for b, g in zip(biases, nb)]
    return weights, biases


@pytest.mark.parametrize("engine", ["numpy", "numba"])
@pytest.mark.parametrize("lmbda,l1,m", [(0.0, 0.0, 7), (5.0, 0.0, 10), (0.0, 3.0, 4), (2.0, 1.0, 13)])
def test_matches_the_books_per_example_sgd(lmbda, l1, m, engine):
    X, y = make_blobs(n=53, n_in=6, n_out=3, seed=1, dtype=np.float64)
    net = Network([6, 5, 3], seed=2, dtype="float64")
    weights = [d.W.T.copy() for d in net.modules[::2]]
    biases = [d.b[:, None].copy() for d in net.modules[::2]]
    net.fit((X, y), 3, m, 0.5, lmbda=lmbda, l1=l1, seed=3, engine=engine)
    w_ref, b_ref = book_sgd(weights, biases, X, y, 3, m, 0.5, lmbda, l1, 3, 3)
    for d, w, b in zip(net.modules[::2], w_ref, b_ref):
        np.testing.assert_allclose(d.W, w.T, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(d.b, b[:, 0], rtol=1e-10, atol=1e-12)


def test_float32_by_default_and_learns(blobs):
    X, y = blobs
    net = Network([8, 10, 3], seed=0)
    assert all(p.dtype == np.float32 for p in net.parameters())
    before = net.accuracy((X, y))
    h = net.fit((X.astype(np.float64), y), 20, 10, 1.0, evaluation_data=(X, y), seed=1)
    assert h.evaluation_accuracy[-1] > max(0.9, before)
    assert all(p.dtype == np.float32 for p in net.parameters())


def test_history_monitoring_flags(blobs):
    X, y = blobs
    net = Network([8, 6, 3], seed=0)
    h = net.fit((X, y), 4, 16, 0.5, lmbda=1.0, evaluation_data=(X[:50], y[:50]), seed=0,
                monitor_training_cost=True, monitor_training_accuracy=True, monitor_evaluation_cost=True)
    d = h.to_dict()
    for key in ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy", "epoch_seconds"):
        assert len(d[key]) == 4, key
    assert all(0 <= a <= 1 for a in h.training_accuracy + h.evaluation_accuracy)
    assert h.training_cost[-1] < h.training_cost[0]
    h2 = net.fit((X, y), 2, 16, 0.5, seed=0)
    assert h2.training_cost == [] and h2.evaluation_accuracy == [] and len(h2.epoch_seconds) == 2
    ec, ea, tc, ta = h  # unpacks like the book's 4-tuple
    assert ea == h.evaluation_accuracy


def test_total_cost_includes_regularization(blobs):
    X, y = blobs
    net = Network([8, 6, 3], seed=0, dtype="float64")
    base = net.total_cost((X, y))
    sq = sum(float((w ** 2).sum()) for w in net.weights())
    ab = sum(float(np.abs(w).sum()) for w in net.weights())
    assert net.total_cost((X, y), lmbda=2.0, n=1000) == pytest.approx(base + 0.5 * 2.0 / 1000 * sq)
    assert net.total_cost((X, y), l1=3.0, n=500) == pytest.approx(base + 3.0 / 500 * ab)
    # the book's quadratic total cost: mean of 0.5 ||a - y||^2
    q = Network([8, 6, 3], cost="quadratic", seed=0, dtype="float64")
    a = q.predict_proba(X)
    t = np.eye(3)[y]
    assert q.total_cost((X, y)) == pytest.approx(0.5 * ((a - t) ** 2).sum() / len(X))


def test_same_seeds_same_numbers_and_different_seeds_differ(blobs):
    X, y = blobs
    runs = []
    for init_seed, shuffle_seed in [(1, 2), (1, 2), (1, 3), (4, 2)]:
        net = Network([8, 6, 3], seed=init_seed)
        net.fit((X, y), 2, 10, 0.5, seed=shuffle_seed)
        runs.append(np.concatenate([p.ravel() for p in net.parameters()]))
    assert np.array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])
    assert not np.allclose(runs[0], runs[3])


@pytest.mark.parametrize("n", [23, 5])  # batches of 10, 10, 3; one batch smaller than batch_size
@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_last_batch_smaller(n, engine):
    # A short last batch takes the mean over its own examples, as the book's loop does.
    X, y = make_blobs(n=n, n_in=6, n_out=3, seed=1, dtype=np.float64)
    net = Network([6, 5, 3], seed=2, dtype="float64")
    weights = [d.W.T.copy() for d in net.modules[::2]]
    biases = [d.b[:, None].copy() for d in net.modules[::2]]
    net.fit((X, y), 2, 10, 0.5, lmbda=1.0, seed=3, engine=engine)
    w_ref, b_ref = book_sgd(weights, biases, X, y, 2, 10, 0.5, 1.0, 0.0, 3, 3)
    for d, w, b in zip(net.modules[::2], w_ref, b_ref):
        np.testing.assert_allclose(d.W, w.T, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(d.b, b[:, 0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cost", ["cross-entropy", "log-likelihood", "quadratic", "hinge"])
def test_every_cost_trains(cost, blobs):
    X, y = blobs
    net = Network([8, 12, 3], cost=cost, seed=0)
    h = net.fit((X, y), 15, 10, 0.1 if cost == "hinge" else 0.5, evaluation_data=(X, y), seed=0)
    assert h.evaluation_accuracy[-1] > 0.85


def test_tanh_relu_hidden_layers_train(blobs):
    X, y = blobs
    for act, init in (("tanh", "glorot"), ("relu", "he"), (["relu", "tanh"], "default")):
        sizes = [8, 10, 3] if isinstance(act, str) else [8, 10, 6, 3]
        net = Network(sizes, activation=act, cost="log-likelihood", init=init, seed=0)
        h = net.fit((X, y), 15, 10, 0.1, evaluation_data=(X, y), seed=0)
        assert h.evaluation_accuracy[-1] > 0.85, act


def test_regression_targets(blobs):
    g = np.random.default_rng(0)
    X = g.standard_normal((100, 3)).astype(np.float32)
    Y = (X @ np.array([[1.0], [-2.0], [0.5]])).astype(np.float32)
    net = Network([3, 8, 1], cost="quadratic", output="identity", seed=0)
    before = net.total_cost((X, Y))
    net.fit((X, Y), 30, 10, 0.05, seed=0)
    assert net.total_cost((X, Y)) < 0.1 * before


def test_divergence_stops_with_last_finite_weights(blobs):
    X, y = blobs
    net = Network([8, 6, 3], cost="quadratic", output="identity", activation="relu", seed=0)
    X = X * 1e3
    with pytest.raises(netlearn.DivergenceError, match="smaller eta") as exc:
        net.fit((X, y), 5, 10, 1e3, seed=0)
    assert isinstance(exc.value, ValueError)
    assert all(np.isfinite(p).all() for p in net.parameters())


def test_step_activation_forward_only():
    net = Network([2, 2, 1], activation="step", output="step", cost="quadratic", seed=0)
    assert set(np.unique(net.predict_proba(np.array([[0.5, -1.0], [3.0, 2.0]])))) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="no useful gradient"):
        net.fit((np.ones((4, 2)), np.zeros((4, 1))), 1, 2, 0.1)


def test_sequential_container_and_repr():
    from netlearn import Dense, ReLU, Sequential, Softmax

    net = Sequential([Dense(4, 5, seed=0), ReLU(), Dense(5, 3, seed=1), Softmax()], cost="log-likelihood")
    assert net.fused
    assert "Dense(4, 5)" in repr(net) and "Softmax()" in repr(net)
    assert "Network([784, 30, 10]" in repr(Network([784, 30, 10], seed=0))
    assert len(net.parameters()) == 4 == len(net.gradients())
    X = np.random.default_rng(0).standard_normal((7, 4))
    assert net.predict(X).shape == (7,)
    np.testing.assert_allclose(net.predict_proba(X).sum(axis=1), 1, rtol=1e-5)


def test_initializers_have_the_books_spread():
    big = Network([784, 30, 10], init="large", seed=0).modules[0].W
    small = Network([784, 30, 10], init="default", seed=0).modules[0].W
    assert big.std() == pytest.approx(1.0, rel=0.05)
    assert small.std() == pytest.approx(1 / np.sqrt(784), rel=0.05)
    he = Network([784, 30, 10], init="he", seed=0).modules[0]
    assert he.W.std() == pytest.approx(np.sqrt(2 / 784), rel=0.05) and not he.b.any()


def test_importing_changes_no_process_wide_state():
    import subprocess
    import sys

    code = ("import numpy as np, os, logging; before = (np.geterr(), dict(os.environ), logging.root.level, "
            "len(logging.root.handlers)); import netlearn; "
            "after = (np.geterr(), dict(os.environ), logging.root.level, len(logging.root.handlers)); "
            "assert before == after, (before, after)")
    subprocess.run([sys.executable, "-c", code], check=True)
