"""Full-batch L-BFGS / CG, the exact Hessian, and damped Newton steps."""
import numpy as np
import pytest

import netlearn
from netlearn import second_order as so
from netlearn.gradcheck import numerical_gradient, relative_error
from netlearn.layers import Dense, Identity
from netlearn.network import Sequential


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] - X[:, 1] > 0).astype(int) + (X[:, 2] > 0.7)
    return X, y


@pytest.mark.parametrize("method", ["lbfgs", "cg"])
def test_minimize_lowers_the_total_cost(data, method):
    net = netlearn.Network([4, 5, 3], activation="tanh", cost="log-likelihood", seed=0)
    before = net.total_cost(data, lmbda=0.1)
    h = so.minimize(net, data, method, max_iter=30, lmbda=0.1, evaluation_data=data)
    assert net.dtype == np.float32                         # cast back after float64 optimization
    assert h.epochs == len(h.training_cost) == len(h.evaluation_accuracy) <= 30
    assert h.training_cost[-1] < 0.5 * before
    assert abs(net.total_cost(data, lmbda=0.1) - h.training_cost[-1]) < 1e-4
    assert h.evaluation_accuracy[-1] > 0.85


def test_objective_gradient_matches_finite_differences(data):
    net = netlearn.Network([4, 3, 3], activation="sigmoid", cost="cross-entropy", seed=1, dtype="float64")
    obj = so.Objective(net, *data, lmbda=0.3, l1=0.2, n=100)
    w = so.get_flat(net) + 0.01  # away from exact zeros (L1's kink)
    g = obj.grad(w)
    x = w.copy()
    numeric = numerical_gradient(lambda: obj.cost(x), x)
    assert relative_error(g, numeric) < 1e-6


def test_hessian_is_exact_for_least_squares():
    """For a linear network with the quadratic cost, C = (1/2m) ||X W + b - Y||^2 and H = [X 1]^T [X 1] / m per output."""
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))
    net = Sequential([Dense(3, 1, dtype="float64"), Identity()], cost="quadratic", dtype="float64")
    obj = so.Objective(net, X, Y)
    H = so.hessian(obj, so.get_flat(net))
    Xa = np.hstack([X, np.ones((20, 1))])
    np.testing.assert_allclose(H, Xa.T @ Xa / 20, atol=1e-7)
    v = rng.standard_normal(4)
    np.testing.assert_allclose(so.hessian_vector_product(obj, so.get_flat(net), v), H @ v, atol=1e-6)


def test_one_newton_step_solves_least_squares():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 3))
    Y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3 + 0.01 * rng.standard_normal((30, 1))
    net = Sequential([Dense(3, 1, dtype="float64"), Identity()], cost="quadratic", dtype="float64")
    h = so.newton(net, (X, Y), iterations=1, eta=1.0, damping=0.0)
    Xa = np.hstack([X, np.ones((30, 1))])
    best, *_ = np.linalg.lstsq(Xa, Y, rcond=None)
    np.testing.assert_allclose(so.get_flat(net), best.ravel(), atol=1e-6)
    assert h.eta == [1.0] and h.damping == [0.0]


def test_newton_descends_on_a_small_network(data):
    net = netlearn.Network([4, 3, 3], activation="tanh", cost="log-likelihood", seed=0)
    before = net.total_cost(data, lmbda=0.1)
    h = so.newton(net, data, iterations=4, eta=1.0, lmbda=0.1)
    costs = [before] + h.training_cost
    assert all(b <= a for a, b in zip(costs, costs[1:]))
    assert h.training_cost[-1] < 0.6 * before, costs


def test_newton_refuses_large_networks(data):
    net = netlearn.Network([4, 100, 3])
    with pytest.raises(ValueError, match=r"this network has 803 parameters, more than the limit of 500"):
        so.newton(net, data, max_params=500)


def test_second_order_refuses_random_modules(data):
    with pytest.raises(ValueError, match=r"deterministic cost.*Dropout"):
        so.minimize(netlearn.Network([4, 5, 3], dropout=0.5), data)
    with pytest.raises(ValueError, match="'method' parameter must be 'lbfgs' or 'cg'"):
        so.minimize(netlearn.Network([4, 5, 3]), data, method="bfgs")
    with pytest.raises(ValueError, match="'eta' parameter"):
        so.newton(netlearn.Network([4, 2, 3]), data, eta=0)
