"""A Population trains K networks in lockstep exactly as K separate Network.fit runs would."""
from __future__ import annotations

import numpy as np
import pytest

import netlearn
from netlearn import optimizers
from netlearn.callbacks import Callback
from netlearn.population import Population


def sparse_data(n=210, d=20, k=4, density=0.35, seed=0):
    g = np.random.default_rng(seed)
    X = g.random((n, d)).astype(np.float32)
    X[g.random((n, d)) > density] = 0
    return X, g.integers(0, k, n)


def assert_same_network(a, b, atol=3e-5):
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=atol)


@pytest.mark.parametrize("net_kw", [
    {},
    {"activation": "tanh", "cost": "log-likelihood"},
    {"cost": "quadratic"},
    {"activation": "relu", "cost": "hinge"},
])
def test_each_network_matches_its_single_run(net_kw):
    data = sparse_data()
    etas, lmbdas, seeds = [0.3, 0.1, 1.0, 0.5], [0.0, 5.0, 1.0, 2.0], [1, 2, 3, 1]
    pop = Population([20, 7, 5, 4], etas, lmbdas, 0.0, seeds, **net_kw)
    hists = pop.fit(data, 3, 7, evaluation_data=data, seed=4, monitor_evaluation_cost=True,
                    monitor_training_accuracy=True)
    for k in range(len(pop)):
        net = netlearn.Network([20, 7, 5, 4], seed=seeds[k], **net_kw)
        h = net.fit(data, 3, 7, etas[k], lmbda=lmbdas[k], seed=4, evaluation_data=data,
                    monitor_evaluation_cost=True, monitor_training_accuracy=True, engine="numpy")
        assert_same_network(net, pop.networks[k])
        assert h.evaluation_accuracy == hists[k].evaluation_accuracy
        assert h.training_accuracy == hists[k].training_accuracy
        np.testing.assert_allclose(h.evaluation_cost, hists[k].evaluation_cost, rtol=1e-4)
        assert hists[k].eta == [etas[k]] * 3 and len(hists[k].epoch_seconds) == 3


def test_dense_inputs_and_a_partial_last_batch():
    X, y = sparse_data(n=103, density=1.0)
    pop = Population([20, 6, 4], [0.2, 0.7], 1.0, seed=[5, 6])
    pop.fit((X, y), 2, 10, seed=9)
    for k, s in enumerate([5, 6]):
        net = netlearn.Network([20, 6, 4], seed=s)
        net.fit((X, y), 2, 10, [0.2, 0.7][k], lmbda=1.0, seed=9, engine="numpy")
        assert_same_network(net, pop.networks[k])


class Momentum(optimizers.GradientTransformation):
    """Nielsen's momentum as a link placed before scale_by_learning_rate: u -> mu u_prev + u."""

    def __init__(self, mu):
        self.mu = mu

    def init(self, params, decay):
        super().init(params, decay)
        self.v = [np.zeros_like(p) for p in params]

    def update(self, updates, params):
        for u, v in zip(updates, self.v):
            v *= self.mu
            v += u
            u[...] = v


def test_momentum_matches_a_momentum_chain():
    data = sparse_data()
    n = data[0].shape[0]
    etas, lmbdas, mus = [0.2, 0.5, 0.3], [1.0, 0.0, 3.0], [0.5, 0.0, 0.9]
    pop = Population([20, 8, 4], etas, lmbdas, mus, seed=[0, 1, 2])
    pop.fit(data, 2, 5, seed=1)
    for k in range(3):
        opt = optimizers.Optimizer(optimizers.chain(optimizers.add_decayed_weights(lmbdas[k] / n),
                                                    Momentum(mus[k]), optimizers.scale_by_learning_rate(etas[k])))
        net = netlearn.Network([20, 8, 4], seed=k)
        net.fit(data, 2, 5, etas[k], seed=1, optimizer=opt, engine="numpy")
        assert_same_network(net, pop.networks[k], atol=1e-4)


def test_a_diverging_network_is_frozen_and_the_others_are_undisturbed():
    X, y = sparse_data()
    X = X * 50
    kw = {"activation": "relu", "cost": "quadratic", "output": "identity"}
    pop = Population([20, 6, 4], [0.001, 50.0, 0.002], 0.0, seed=[1, 2, 3], **kw)
    hists = pop.fit((X, y), 3, 10, evaluation_data=(X, y), seed=0)
    assert pop.diverged[1] is not None and pop.diverged[0] is None and pop.diverged[2] is None
    assert len(hists[1].evaluation_accuracy) == pop.diverged[1] - 1
    assert all(np.isfinite(p).all() for p in pop.networks[1].parameters())
    for k in (0, 2):
        net = netlearn.Network([20, 6, 4], seed=k + 1, **kw)
        net.fit((X, y), 3, 10, [0.001, 50.0, 0.002][k], seed=0, engine="numpy")
        assert_same_network(net, pop.networks[k], atol=1e-4)
        assert len(hists[k].evaluation_accuracy) == 3


def test_grid_order_and_configs():
    pop = Population.grid([20, 5, 4], eta=[0.1, 1.0], lmbda=[0.0, 5.0], mu=[0.0], seeds=[7, 8])
    assert len(pop) == 8
    assert pop.configs[0] == {"eta": 0.1, "lmbda": 0.0, "mu": 0.0, "seed": 7}
    assert pop.configs[-1] == {"eta": 1.0, "lmbda": 5.0, "mu": 0.0, "seed": 8}
    # Same seed, same initial weights as the Network it stands for.
    assert_same_network(pop.networks[1], netlearn.Network([20, 5, 4], seed=8), atol=0)


def test_bad_parameters_are_refused_clearly():
    with pytest.raises(ValueError, match="'eta'"):
        Population([20, 5, 4], [0.1, -1.0])
    with pytest.raises(ValueError, match="'mu'"):
        Population([20, 5, 4], 0.1, mu=1.0)
    with pytest.raises(ValueError, match="one per network"):
        Population([20, 5, 4], [0.1, 0.2, 0.3], lmbda=[1.0, 2.0])
    with pytest.raises(ValueError, match="softmax"):
        Population([20, 5, 4], 0.1, activation="softmax")
    pop = Population([20, 5, 4], [0.1, 0.2])
    with pytest.raises(ValueError, match="features"):
        pop.fit((np.zeros((5, 3)), np.zeros(5, int)), 1, 2)


def test_best_and_accuracy():
    data = sparse_data()
    pop = Population([20, 8, 4], [0.01, 1.0], seed=[0, 0])
    pop.fit(data, 2, 10, evaluation_data=data, seed=0)
    acc = pop.accuracy(data)
    assert acc.shape == (2,)
    assert pop.best() == int(np.argmax([h.evaluation_accuracy[-1] for h in pop.histories]))


@pytest.mark.parametrize("mu", [0.0, 0.5])
def test_threads_train_groups_of_16_networks_with_the_same_numbers(mu):
    # 40 networks: three blocks of 16 lanes, so up to three threads; one network diverges.
    X, y = sparse_data()
    kw = {"activation": "relu", "cost": "quadratic", "output": "identity"}
    etas = [0.01 + 0.002 * k for k in range(40)]
    etas[25] = 500.0
    results = []
    for threads in (1, 2, 3, 8):
        pop = Population([20, 6, 4], etas, 1.0, mu, seed=list(range(40)), **kw)
        hists = pop.fit((X * 5, y), 2, 10, evaluation_data=(X, y), seed=3, threads=threads)
        results.append((pop, hists))
    ref_pop, ref_hists = results[0]
    assert ref_pop.diverged[25] is not None and sum(d is not None for d in ref_pop.diverged) == 1
    for pop, hists in results[1:]:
        assert pop.diverged == ref_pop.diverged
        for a, b in zip(ref_pop.networks, pop.networks):
            for p, q in zip(a.parameters(), b.parameters()):
                np.testing.assert_array_equal(p, q)
        assert [h.evaluation_accuracy for h in hists] == [h.evaluation_accuracy for h in ref_hists]
    if mu == 0:  # and a network of the second group still equals its single run
        net = netlearn.Network([20, 6, 4], seed=30, **kw)
        net.fit((X * 5, y), 2, 10, etas[30], lmbda=1.0, seed=3, engine="numpy")
        assert_same_network(net, results[1][0].networks[30], atol=1e-4)


# -- member operations --------------------------------------------------------------------------------
class ResetAt(Callback):
    """Network.fit callback: at the end of epoch ``e`` put back the network's initial weights (a fresh start)."""

    def __init__(self, e, params):
        self.e, self.params = e, [p.copy() for p in params]

    def on_epoch_end(self, state):
        if state.epoch + 1 == self.e:
            for p, q in zip(state.net.parameters(), self.params):
                p[...] = q


def test_a_replaced_member_trains_like_a_fresh_network_from_that_epoch():
    data = sparse_data()
    pop = Population([20, 7, 4], [0.3, 0.1, 1.0], [0.0, 5.0, 1.0], 0.0, [1, 2, 3])

    def at_epoch(p, epoch):
        if epoch == 2:
            p.replace(1, eta=0.7, lmbda=2.0, seed=11)

    hists = pop.fit(data, 5, 7, evaluation_data=data, seed=4, callbacks=[at_epoch])
    assert pop.configs[1] == {"eta": 0.7, "lmbda": 2.0, "mu": 0.0, "seed": 11}
    assert len(hists[1].evaluation_accuracy) == 3 and hists[1].eta == [0.7] * 3
    fresh = netlearn.Network([20, 7, 4], seed=11)
    net = netlearn.Network([20, 7, 4], seed=11)
    h = net.fit(data, 5, 7, 0.7, lmbda=2.0, seed=4, evaluation_data=data,
                callbacks=[ResetAt(2, fresh.parameters())], engine="numpy")
    assert_same_network(net, pop.networks[1])
    assert h.evaluation_accuracy[2:] == hists[1].evaluation_accuracy
    # The others were not disturbed.
    for k in (0, 2):
        ref = netlearn.Network([20, 7, 4], seed=k + 1)
        ref.fit(data, 5, 7, [0.3, 0.1, 1.0][k], lmbda=[0.0, 5.0, 1.0][k], seed=4)
        assert_same_network(ref, pop.networks[k])


@pytest.mark.parametrize("mu", [0.0, 0.6])
def test_a_copy_is_bit_identical_and_trains_on_identically(mu):
    data = sparse_data()
    pop = Population([20, 7, 4], [0.3, 0.5, 0.2], [1.0, 2.0, 0.5], mu, [1, 2, 3])
    seen = {}

    def at_epoch(p, epoch):
        if epoch == 2:
            p.copy(0, 2)
            p.set(2, eta=0.3, lmbda=1.0, mu=mu)
            for a, b in zip(p.networks[0].parameters(), p.networks[2].parameters()):
                np.testing.assert_array_equal(a, b)
            seen["v"] = p.velocities(0)
            if mu:
                assert all(np.array_equal(a, b) for a, b in zip(p.velocities(0), p.velocities(2)))
                assert any(np.any(v) for v in p.velocities(0))

    pop.fit(data, 4, 7, seed=4, callbacks=[at_epoch])
    assert (seen["v"] is None) == (mu == 0)
    for a, b in zip(pop.networks[0].parameters(), pop.networks[2].parameters()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(pop.networks[0].parameters()[0], pop.networks[1].parameters()[0])


def test_set_changes_eta_from_the_next_epoch():
    data = sparse_data()
    pop = Population([20, 7, 4], [0.3, 0.1], 1.0, 0.0, [1, 2])
    hists = pop.fit(data, 4, 7, seed=4, callbacks=[lambda p, e: p.set(0, eta=0.05) if e == 2 else None])
    assert hists[0].eta == [0.3, 0.3, 0.05, 0.05] and hists[1].eta == [0.1] * 4
    # The same as two runs of one network at each eta, the second continuing on the same shuffle.
    class SetEta(Callback):
        def on_epoch_end(self, state):
            if state.epoch + 1 == 2:
                state.optimizer.eta = 0.05

    net = netlearn.Network([20, 7, 4], seed=1)
    h = net.fit(data, 4, 7, 0.3, lmbda=1.0, seed=4, callbacks=[SetEta()], engine="numpy")
    assert h.eta == hists[0].eta
    assert_same_network(net, pop.networks[0])


def test_frozen_members_keep_their_weights_and_stop_their_history():
    data = sparse_data()
    pop = Population([20, 7, 4], [0.3, 0.1, 0.5], 1.0, 0.0, [1, 2, 3])
    kept = {}

    def at_epoch(p, epoch):
        if epoch == 1:
            p.freeze(1)
            kept["w"] = [q.copy() for q in p.networks[1].parameters()]
        if epoch == 3:
            assert p.active == [0, 2]
            p.stop()

    hists = pop.fit(data, 10, 7, evaluation_data=data, seed=4, callbacks=[at_epoch])
    assert [len(h.evaluation_accuracy) for h in hists] == [3, 1, 3]
    for a, b in zip(kept["w"], pop.networks[1].parameters()):
        np.testing.assert_array_equal(a, b)
    ref = netlearn.Network([20, 7, 4], seed=3)
    ref.fit(data, 3, 7, 0.5, lmbda=1.0, seed=4)
    assert_same_network(ref, pop.networks[2])


def test_compaction_gives_the_same_numbers_as_training_everyone():
    # Freezing members re-packs the rest into fewer blocks of 16; the survivors' numbers do not change.
    X, y = sparse_data()
    etas = [0.05 + 0.01 * k for k in range(40)]
    full = Population([20, 6, 4], etas, 1.0, 0.0, seed=list(range(40)))
    full.fit((X, y), 3, 10, seed=3)
    part = Population([20, 6, 4], etas, 1.0, 0.0, seed=list(range(40)))
    part.fit((X, y), 3, 10, seed=3, callbacks=[lambda p, e: [p.freeze(k) for k in range(0, 40, 3)] if e == 1
                                               else None])
    for k in range(40):
        if k % 3:
            for a, b in zip(full.networks[k].parameters(), part.networks[k].parameters()):
                np.testing.assert_array_equal(a, b)


def test_member_operations_refuse_bad_input():
    pop = Population([20, 5, 4], [0.1, 0.2])
    with pytest.raises(ValueError, match="member index"):
        pop.freeze(2)
    with pytest.raises(ValueError, match="'eta'"):
        pop.set(0, eta=-1.0)
    with pytest.raises(ValueError, match="'mu'"):
        pop.replace(1, eta=0.1, mu=1.5)
