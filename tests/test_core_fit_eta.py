"""fit keeps an optimizer's own learning rate (and never changes the optimizer it is given)."""
import numpy as np
import pytest

from netlearn import Network, optimizers, schedules


def data(n=60, seed=0):
    g = np.random.default_rng(seed)
    X = g.random((n, 4), dtype=np.float32)
    return X, (X[:, 0] > X[:, 1]).astype(int)


def test_optimizer_rate_needs_no_eta_and_is_recorded():
    opt = optimizers.adam(1e-3)
    h = Network([4, 5, 2], seed=0).fit(data(), 3, 10, optimizer=opt, seed=0)
    assert h.eta == [1e-3, 1e-3, 1e-3]


def test_same_eta_as_optimizer_is_accepted_and_trains_the_same():
    a = Network([4, 5, 2], seed=0)
    b = Network([4, 5, 2], seed=0)
    a.fit(data(), 2, 10, optimizer=optimizers.momentum(0.2, 0.5), seed=1)
    b.fit(data(), 2, 10, 0.2, optimizer=optimizers.momentum(0.2, 0.5), seed=1)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)


def test_eta_that_differs_from_the_optimizer_is_an_error_naming_both():
    with pytest.raises(ValueError) as exc:
        Network([4, 5, 2], seed=0).fit(data(), 1, 10, 0.5, optimizer=optimizers.adam(1e-3))
    assert "0.5" in str(exc.value) and "0.001" in str(exc.value)


def test_the_optimizer_given_is_not_mutated():
    opt = optimizers.adam(1e-3)
    before = repr(opt)
    net = Network([4, 5, 2], seed=0)
    h = net.fit(data(), 4, 10, optimizer=opt, seed=0, callbacks=[schedules.StepDecay(1, 0.5)])
    assert h.eta == [1e-3, 5e-4, 2.5e-4, 1.25e-4]
    assert opt.eta == 1e-3 and repr(opt) == before
    assert not hasattr(opt.transform.links[0], "m")  # no moments were stored in it
    # so the same object starts a second, identical run
    other = Network([4, 5, 2], seed=0)
    other.fit(data(), 4, 10, optimizer=opt, seed=0, callbacks=[schedules.StepDecay(1, 0.5)])
    for p, q in zip(net.parameters(), other.parameters()):
        np.testing.assert_array_equal(p, q)


def test_eta_stays_the_fourth_positional_parameter():
    h = Network([4, 5, 2], seed=0).fit(data(), 2, 10, 0.5)
    assert h.eta == [0.5, 0.5]


def test_a_name_without_eta_uses_its_own_default_or_says_what_is_missing():
    h = Network([4, 5, 2], seed=0).fit(data(), 1, 10, optimizer="adam")
    assert h.eta == [0.001]
    for name in (None, "sgd", "momentum"):
        with pytest.raises(ValueError, match="no default learning rate: give eta"):
            Network([4, 5, 2], seed=0).fit(data(), 1, 10, optimizer=name)
