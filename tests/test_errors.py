"""Bad input gets one clear ValueError naming the argument and what is accepted."""
import numpy as np
import pytest

from netlearn import Dense, Network, Sequential, Sigmoid

from conftest import make_blobs


@pytest.fixture
def net():
    return Network([8, 5, 3], seed=0)


@pytest.fixture
def data():
    return make_blobs(n=40)


@pytest.mark.parametrize("kwargs,match", [
    ({"sizes": [784]}, "'sizes'"),
    ({"sizes": "784,30"}, "'sizes'"),
    ({"sizes": [784, 0, 10]}, "positive integers"),
    ({"sizes": [4, 3, 2], "activation": "swish"}, "'activation' parameter must be one of"),
    ({"sizes": [4, 3, 3, 2], "activation": ["relu"]}, "one per hidden layer"),
    ({"sizes": [4, 3, 2], "cost": "mae"}, "'cost' parameter must be one of"),
    ({"sizes": [4, 3, 2], "init": "zeros"}, "'init' parameter must be one of"),
    ({"sizes": [4, 3, 2], "output": "gelu"}, "'activation' parameter"),
    ({"sizes": [4, 3, 2], "dtype": "int8"}, "'dtype'"),
    ({"sizes": [4, 3, 2], "seed": -1}, "'seed'"),
])
def test_bad_network_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Network(**kwargs)


def test_mismatched_layer_sizes():
    with pytest.raises(ValueError, match="Mismatched layer sizes.*30 outputs.*31 inputs"):
        Sequential([Dense(784, 30), Sigmoid(), Dense(31, 10), Sigmoid()])


@pytest.mark.parametrize("args,kwargs,match", [
    ((0, 10, 0.5), {}, "'epochs'"),
    ((1, 0, 0.5), {}, "'batch_size'"),
    ((1, 10, -0.5), {}, "'eta'"),
    ((1, 10, 0.0), {}, "'eta'"),
    ((1, 10, float("nan")), {}, "'eta'"),
    ((1, 10, 0.5), {"lmbda": -1.0}, "'lmbda'"),
    ((1, 10, 0.5), {"l1": -1.0}, "'l1'"),
    ((1.5, 10, 0.5), {}, "'epochs'"),
    ((1, 10, 0.5), {"optimizer": "rmsprop-ish"}, "'optimizer'"),
])
def test_bad_hyper_parameters(net, data, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        net.fit(data, *args, **kwargs)


def test_bad_data(net, data):
    X, y = data
    cases = [
        ((X, y[:-1]), "different lengths"),
        ((X[:, :7], y), "7 features per example but the network takes 8"),
        ((X[:0], y[:0]), "empty"),
        ((X, y + 3), r"labels in \[3, 5\].*3 outputs"),
        ((X, -y - 1), "labels in"),
        ((X, y + 0.5), "non-integer"),
        ((X, y.astype(str)), "integer class labels"),
        ((X.ravel(), y), "2-D"),
        ((X, np.ones((len(y), 4))), "4 target columns"),
        ([X], "pair"),
    ]
    for d, match in cases:
        with pytest.raises(ValueError, match=match):
            net.fit(d, 1, 10, 0.5)
    Xn = X.copy()
    Xn[3, 2] = np.nan
    Xi = X.copy()
    Xi[0, 0] = np.inf
    for bad in (Xn, Xi):
        with pytest.raises(ValueError, match="NaN or infinite"):
            net.fit((bad, y), 1, 10, 0.5)
        with pytest.raises(ValueError, match="NaN or infinite"):
            net.predict(bad)
    with pytest.raises(ValueError, match="evaluation_data"):
        net.fit(data, 1, 10, 0.5, evaluation_data=(X[:, :3], y))
    with pytest.raises(ValueError, match="7 features"):
        net.accuracy((X[:, :7], y))


def test_data_checked_before_any_training(net, data):
    X, y = data
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(ValueError):
        net.fit((X, y), 1, 10, 0.5, evaluation_data=(X, y + 7))
    assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))
