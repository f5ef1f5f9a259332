"""Optimizers: each against a hand-computed step, on a quadratic bowl, state round trips, and bad hyper-parameters."""
import numpy as np
import pytest

from netlearn import optimizers as O
from netlearn.regularizers import MaxNorm


def one_step(opt, w, g, decay=(True,)):
    """Apply ``steps`` of ``opt`` to a copy of the arrays ``w`` with gradients ``g``; return the new weights."""
    params = [np.array(x, dtype=np.float64) for x in w]
    opt.init(params, list(decay))
    opt.step(params, [np.array(x, dtype=np.float64) for x in g])
    return params


def run_steps(opt, w0, grad_fn, steps):
    w = [np.array(w0, dtype=np.float64)]
    opt.init(w, [True])
    for _ in range(steps):
        opt.step(w, [grad_fn(w[0])])
    return w[0]


W0 = np.array([1.0, -2.0, 0.5])
G1 = np.array([0.3, -0.1, 2.0])
G2 = np.array([-0.2, 0.4, 1.0])


def two_steps(opt):
    w = [W0.copy()]
    opt.init(w, [True])
    opt.step(w, [G1.copy()])
    opt.step(w, [G2.copy()])
    return w[0]


def test_sgd_step():
    np.testing.assert_allclose(one_step(O.sgd(0.1), [W0], [G1])[0], W0 - 0.1 * G1)


def test_momentum_is_the_books_form():
    eta, mu = 0.1, 0.9
    v1 = -eta * G1
    v2 = mu * v1 - eta * G2
    np.testing.assert_allclose(two_steps(O.momentum(eta, mu)), W0 + v1 + v2)


def test_momentum_zero_mu_is_sgd():
    np.testing.assert_allclose(two_steps(O.momentum(0.1, 0.0)), W0 - 0.1 * G1 - 0.1 * G2)


def test_nesterov_step():
    eta, mu = 0.1, 0.9
    v1 = -eta * G1
    w1 = W0 - mu * 0 + (1 + mu) * v1
    v2 = mu * v1 - eta * G2
    w2 = w1 - mu * v1 + (1 + mu) * v2
    np.testing.assert_allclose(two_steps(O.nesterov(eta, mu)), w2)


def test_adagrad_step():
    eta, eps = 0.1, 1e-8
    G = G1 ** 2
    w1 = W0 - eta * G1 / (np.sqrt(G) + eps)
    G = G + G2 ** 2
    w2 = w1 - eta * G2 / (np.sqrt(G) + eps)
    np.testing.assert_allclose(two_steps(O.adagrad(eta)), w2)


def test_rmsprop_step():
    eta, rho, eps = 0.01, 0.9, 1e-8
    s = (1 - rho) * G1 ** 2
    w1 = W0 - eta * G1 / (np.sqrt(s) + eps)
    s = rho * s + (1 - rho) * G2 ** 2
    w2 = w1 - eta * G2 / (np.sqrt(s) + eps)
    np.testing.assert_allclose(two_steps(O.rmsprop(eta, rho)), w2)


def test_adadelta_is_zeilers_algorithm():
    rho, eps = 0.95, 1e-6
    w, Eg2, Edx2 = W0.copy(), np.zeros(3), np.zeros(3)
    for g in (G1, G2):
        Eg2 = rho * Eg2 + (1 - rho) * g ** 2
        dx = -np.sqrt(Edx2 + eps) / np.sqrt(Eg2 + eps) * g
        Edx2 = rho * Edx2 + (1 - rho) * dx ** 2
        w = w + dx
    np.testing.assert_allclose(two_steps(O.adadelta()), w)


def test_adam_bias_correction():
    eta, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    w, m, v = W0.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate((G1, G2), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        w = w - eta * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(two_steps(O.adam(eta)), w)
    # the first bias-corrected step has size about eta in every coordinate
    first = one_step(O.adam(eta), [W0], [G1])[0]
    np.testing.assert_allclose(np.abs(first - W0), eta, rtol=1e-6)


@pytest.mark.parametrize("name,eta,steps", [("sgd", 0.1, 200), ("momentum", 0.05, 200), ("nesterov", 0.05, 200),
                                            ("adagrad", 0.5, 400), ("rmsprop", 0.02, 400), ("adadelta", 1.0, 3000),
                                            ("adam", 0.05, 400)])
def test_quadratic_bowl(name, eta, steps):
    """Every optimizer finds the minimum of C(w) = 1/2 (w - c)^T A (w - c), an ill-conditioned bowl."""
    A = np.diag([1.0, 10.0])
    c = np.array([1.0, -1.0])
    w = run_steps(O.get(name, eta), [3.0, 2.0], lambda w: A @ (w - c), steps)
    np.testing.assert_allclose(w, c, atol=0.05)


def test_momentum_beats_sgd_on_ill_conditioned_bowl():
    A = np.diag([0.01, 1.0])
    grad = lambda w: A @ w  # noqa: E731
    plain = run_steps(O.sgd(0.5), [1.0, 1.0], grad, 100)
    fast = run_steps(O.momentum(0.5, 0.9), [1.0, 1.0], grad, 100)
    assert np.linalg.norm(fast) < 0.5 * np.linalg.norm(plain)


def test_weight_decay_combines_with_any_optimizer():
    """L2 in the book's form is a link in front: w -> w - eta (g + lmbda/n w) for SGD."""
    opt = O.sgd(0.1).prepend(O.add_decayed_weights(0.5))
    w = one_step(opt, [W0, W0], [G1, G1], decay=(True, False))
    np.testing.assert_allclose(w[0], W0 - 0.1 * (G1 + 0.5 * W0))
    np.testing.assert_allclose(w[1], W0 - 0.1 * G1)  # biases do not decay
    opt = O.adam(0.01).prepend(O.add_l1(0.2))
    ref = one_step(O.adam(0.01), [W0], [G1 + 0.2 * np.sign(W0)])[0]
    np.testing.assert_allclose(one_step(opt, [W0], [G1])[0], ref)


def test_max_norm_projects_columns():
    W = np.array([[3.0, 0.1], [4.0, 0.1]])  # column norms 5 and ~0.14
    opt = O.sgd(0.1).append(MaxNorm(2.0).transform())
    params = [W.copy(), np.array([10.0, 10.0])]
    opt.init(params, [True, False])
    opt.step(params, [np.zeros_like(W), np.zeros(2)])
    np.testing.assert_allclose(np.linalg.norm(params[0], axis=0), [2.0, np.hypot(0.1, 0.1)])
    np.testing.assert_allclose(params[0][:, 0], [1.2, 1.6])  # direction kept
    np.testing.assert_allclose(params[1], [10.0, 10.0])     # 1-D (biases) untouched


@pytest.mark.parametrize("name", sorted(O.OPTIMIZERS))
def test_state_dict_round_trip(name):
    """Two optimizers, one restored from the other's state mid-run, take identical steps."""
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(4) for _ in range(6)]
    a = [np.ones(4)]
    opt = O.get(name, 0.01)
    opt.init(a, [True])
    for g in grads[:3]:
        opt.step(a, [g.copy()])
    b = [a[0].copy()]
    opt2 = O.get(name, 0.01)
    opt2.init(b, [True])
    opt2.load_state_dict(opt.state_dict())
    for g in grads[3:]:
        opt.step(a, [g.copy()])
        opt2.step(b, [g.copy()])
    np.testing.assert_array_equal(a[0], b[0])


def test_float32_updates_stay_float32():
    w = [np.ones((3, 2), np.float32)]
    for name in O.OPTIMIZERS:
        opt = O.get(name, 0.01)
        opt.init(w, [True])
        g = [np.full((3, 2), 0.5, np.float32)]
        opt.step(w, g)
        assert w[0].dtype == np.float32 and g[0].dtype == np.float32


@pytest.mark.parametrize("make,msg", [
    (lambda: O.momentum(0.1, mu=1.5), "The 'mu' parameter must be a float in the range [0, 1). Got 1.5 instead."),
    (lambda: O.nesterov(0.1, mu=-0.1), "'mu' parameter must be a float in the range [0, 1)"),
    (lambda: O.adam(beta1=1.0), "'beta1' parameter must be a float in the range [0, 1). Got 1.0"),
    (lambda: O.adam(beta2=2), "'beta2'"),
    (lambda: O.adam(eps=0), "'eps' parameter must be a float in the range (0, inf)"),
    (lambda: O.rmsprop(0.1, rho=1), "'rho'"),
    (lambda: O.sgd(-1), "The 'eta' parameter must be a float in the range (0, inf). Got -1 instead."),
    (lambda: O.add_decayed_weights(-0.5), "The 'lmbda' parameter must be a float in the range [0, inf)"),
    (lambda: MaxNorm(0), "The 'max_norm' parameter must be a float in the range (0, inf). Got 0 instead."),
    (lambda: O.get("adamw", 0.1), "The 'optimizer' parameter must be one of"),
    (lambda: O.get("sgd", 0.1, mu=0.9), "takes the hyper-parameters"),
])
def test_bad_hyper_parameters(make, msg):
    with pytest.raises(ValueError) as exc:
        make()
    assert msg in str(exc.value)


def test_eta_is_settable_on_every_optimizer():
    for name in O.OPTIMIZERS:
        opt = O.get(name, 0.3)
        assert opt.eta == 0.3
        opt.eta = 0.1
        assert opt.eta == 0.1
