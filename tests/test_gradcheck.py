"""Finite-difference gradient checks (float64) for every module, cost, pairing and regularizer."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import netlearn
from netlearn import gradcheck
from netlearn.costs import COSTS
from netlearn.layers import Dense, Identity, ReLU, Sigmoid, Softmax, Tanh

TOL = 1e-6


def _module_errors(module, shape, seed=0):
    u = np.random.default_rng(seed).standard_normal(shape)
    return gradcheck.check_module(module, u)


@pytest.mark.parametrize("cls", [Sigmoid, Tanh, Identity, Softmax])
def test_smooth_activations(cls):
    errs = _module_errors(cls(), (4, 5))
    assert max(errs.values()) < TOL, errs


def test_relu_away_from_kink():
    u = np.random.default_rng(1).standard_normal((4, 5))
    u[np.abs(u) < 0.05] = 0.5  # finite differences straddling 0 are meaningless
    errs = gradcheck.check_module(ReLU(), u)
    assert max(errs.values()) < TOL, errs


def test_dense_weights_biases_and_input():
    layer = Dense(5, 3, seed=0, dtype="float64")
    errs = _module_errors(layer, (4, 5))
    assert set(errs) == {"input", "param0", "param1"}
    assert max(errs.values()) < TOL, errs


@settings(max_examples=15, deadline=None)
@given(m=st.integers(1, 6), n_in=st.integers(1, 7), n_out=st.integers(1, 5), seed=st.integers(0, 10_000),
       init=st.sampled_from(["default", "large", "glorot", "he"]))
def test_dense_random_shapes(m, n_in, n_out, seed, init):
    layer = Dense(n_in, n_out, init=init, seed=seed, dtype="float64")
    errs = _module_errors(layer, (m, n_in), seed)
    assert max(errs.values()) < TOL, errs


def _targets(cost, m, n_out, seed):
    labels = np.random.default_rng(seed).integers(0, n_out, m)
    return cost.targets(labels, n_out, np.float64)


@pytest.mark.parametrize("cost_name", sorted(COSTS))
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "identity", "softmax"])
def test_every_cost_activation_pairing(cost_name, act):
    """The general chain rule works for every pairing; natural pairings also check the fused delta."""
    cost = netlearn.costs.get(cost_name)
    activation = netlearn.layers.activations.get(act)
    g = np.random.default_rng(3)
    z = g.standard_normal((5, 4))
    if cost_name == "hinge":
        z = np.where(np.abs(1 - np.abs(z)) < 0.05, z + 0.2, z)  # keep margins off the hinge's kink
    if cost_name in ("cross-entropy",) and act in ("tanh", "identity"):
        pytest.skip("cross-entropy needs outputs in (0, 1)")
    if cost_name == "log-likelihood" and act in ("tanh", "identity"):
        pytest.skip("log-likelihood needs positive outputs")
    y = _targets(cost, 5, 4, 4)
    errs = gradcheck.check_cost(cost, activation, z, y)
    assert max(errs.values()) < 1e-6, errs
    if activation.name == cost.natural:
        assert "fused" in errs


@pytest.mark.parametrize("cost,act", [("cross-entropy", "sigmoid"), ("log-likelihood", "softmax"),
                                      ("quadratic", "identity"), ("hinge", "identity")])
def test_fused_value_is_stable_for_huge_z(cost, act):
    c = netlearn.costs.get(cost)
    z = np.array([[1e4, -1e4, 0.0], [-800.0, 800.0, 3.0]])
    y = c.targets(np.array([1, 0]), 3, np.float64)
    v = c.fn_z(z, y)
    assert np.isfinite(v)
    a = netlearn.layers.activations.get(act).forward(z)
    assert np.all(np.isfinite(a))
    assert np.all(np.isfinite(c.delta_z(a, y)))


@pytest.mark.parametrize("cost,activation,output", [
    ("cross-entropy", "sigmoid", None), ("log-likelihood", "tanh", None), ("quadratic", "sigmoid", None),
    ("quadratic", "relu", "identity"), ("hinge", "tanh", None), ("cross-entropy", ["tanh", "relu"], None),
])
@pytest.mark.parametrize("lmbda,l1", [(0.0, 0.0), (2.0, 0.0), (0.0, 1.5), (1.0, 0.7)])
def test_whole_network_with_regularization(cost, activation, output, lmbda, l1):
    sizes = [4, 5, 3] if isinstance(activation, str) else [4, 5, 4, 3]
    net = netlearn.Network(sizes, activation=activation, cost=cost, output=output, seed=7, dtype="float64")
    g = np.random.default_rng(8)
    X = g.standard_normal((6, 4))
    y = g.integers(0, 3, 6)
    errs = gradcheck.check_network(net, X, y, lmbda=lmbda, l1=l1, n=20)
    assert max(errs.values()) < 1e-5, errs


def test_network_with_float_targets():
    net = netlearn.Network([3, 4, 2], cost="quadratic", output="identity", seed=1, dtype="float64")
    g = np.random.default_rng(2)
    X, Y = g.standard_normal((5, 3)), g.standard_normal((5, 2))
    errs = gradcheck.check_network(net, X, Y, lmbda=0.5)
    assert max(errs.values()) < 1e-6, errs


def test_gradcheck_detects_a_wrong_gradient():
    class WrongSigmoid(Sigmoid):
        def _df(self, grad, a, out):
            out[...] = grad * a  # missing (1 - a)
            return out

    errs = _module_errors(WrongSigmoid(), (3, 4))
    assert errs["input"] > 1e-2


def test_gradcheck_refuses_float32():
    with pytest.raises(ValueError, match="float64"):
        gradcheck.check_module(Dense(3, 2, seed=0), np.ones((2, 3)))


def test_relative_error_compares_near_zero_entries_to_the_arrays_scale():
    # An entry a million times smaller than its neighbour carries the loss's rounding error: judged absolutely.
    assert gradcheck.relative_error(np.array([1.0, 1e-9]), np.array([1.0, 1.5e-9])) < 1e-6
    # A wrong entry of ordinary size is still caught, relative to itself.
    assert gradcheck.relative_error(np.array([1.0, 0.1]), np.array([1.0, 0.1001])) > 1e-4
    # Arrays of small gradients keep the absolute floor of 1e-6.
    assert gradcheck.relative_error(np.array([2e-7]), np.array([2.2e-7])) == pytest.approx(2e-8 / 1e-6)
