"""The compiled (Numba) engine: it gives the NumPy path's numbers (float32 rounding aside), is chosen only where
it applies, and its threads do not change the numbers."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import netlearn
from netlearn import engine, optimizers
from netlearn.engine import inputs, single, support
from netlearn.training import Callback, DivergenceError


def sparse_data(n=240, d=20, k=4, density=0.35, seed=0):
    g = np.random.default_rng(seed)
    X = g.random((n, d)).astype(np.float32)
    X[g.random((n, d)) > density] = 0
    return X, g.integers(0, k, n)


def train_both(sizes, data, epochs=2, batch=7, eta=0.3, net_kw=None, **fit_kw):
    nets, hists = [], []
    for engine in ("numpy", "numba"):
        net = netlearn.Network(sizes, seed=1, **(net_kw or {}))
        hists.append(net.fit(data, epochs, batch, eta, seed=3, engine=engine, **fit_kw))
        nets.append(net)
    return nets, hists


def assert_same_params(a, b, atol=2e-5):
    for p, q in zip(a.parameters(), b.parameters()):
        assert p.dtype == q.dtype
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=atol)


PAIRINGS = [
    {},                                                   # sigmoid + cross-entropy (fused)
    {"activation": "tanh", "cost": "log-likelihood"},     # softmax output (fused)
    {"activation": "relu", "cost": "quadratic", "output": "identity"},
    {"cost": "quadratic"},                                # the book's quadratic + sigmoid (chain rule)
    {"activation": "relu", "cost": "hinge"},
]


@pytest.mark.parametrize("net_kw", PAIRINGS)
@pytest.mark.parametrize("reg", [{}, {"lmbda": 5.0}, {"l1": 2.0}, {"lmbda": 1.0, "l1": 0.5}])
def test_compiled_matches_numpy(net_kw, reg):
    nets, hists = train_both([20, 9, 6, 4], sparse_data(), net_kw=net_kw, **reg)
    assert_same_params(*nets)


def test_dense_inputs_and_partial_last_batch():
    X, y = sparse_data(n=101, density=1.0)
    nets, _ = train_both([20, 5, 4], (X, y), batch=10, lmbda=2.0)
    assert_same_params(*nets)


def test_float64_networks_use_the_compiled_path_too():
    nets, _ = train_both([20, 5, 4], sparse_data(), net_kw={"dtype": "float64"}, lmbda=1.0)
    assert nets[1].parameters()[0].dtype == np.float64
    assert_same_params(*nets, atol=1e-10)


def test_lazy_decay_scale_is_folded_back_when_tiny():
    # 1 - eta*lmbda/n = 0.8 per batch of one example: the scale passes 1e-4 within the epoch.
    X, y = sparse_data(n=50)
    nets, _ = train_both([20, 5, 4], (X, y), epochs=2, batch=1, eta=0.5, lmbda=20.0)
    assert_same_params(*nets)


def test_monitoring_and_history_match():
    data = sparse_data()
    _, (h_np, h_nb) = train_both([20, 8, 4], data, evaluation_data=data, lmbda=1.0,
                                 monitor_evaluation_cost=True, monitor_training_accuracy=True)
    assert h_np.evaluation_accuracy == h_nb.evaluation_accuracy
    assert h_np.training_accuracy == h_nb.training_accuracy
    np.testing.assert_allclose(h_np.evaluation_cost, h_nb.evaluation_cost, rtol=1e-5)


class EngineSpy(Callback):
    def on_train_begin(self, state):
        self.engine = state.engine


class HalveEta(Callback):
    """A schedule: halve eta after every epoch (the compiled path must read it afresh)."""

    def on_epoch_end(self, state):
        state.optimizer.eta = state.optimizer.eta / 2


def test_auto_picks_numba_and_env_var_forces_numpy(monkeypatch):
    data = sparse_data(n=20_000, density=0.1)
    spy = EngineSpy()
    netlearn.Network([20, 5, 4]).fit(data, 1, 100, 0.1, callbacks=[spy])
    assert spy.engine == "numba"
    monkeypatch.setenv("NETLEARN_ENGINE", "numpy")
    netlearn.Network([20, 5, 4]).fit(data, 1, 10, 0.1, callbacks=[spy])
    assert spy.engine == "numpy"
    netlearn.Network([20, 5, 4]).fit(data, 1, 10, 0.1, callbacks=[spy], engine="numba")
    assert spy.engine == "numba"


def test_schedule_changing_eta_between_epochs():
    nets, hists = train_both([20, 6, 4], sparse_data(), epochs=3, lmbda=1.0, callbacks=[HalveEta()])
    assert hists[1].eta == [0.3, 0.15, 0.075]
    assert_same_params(*nets)


def test_progress_hooks_see_every_example():
    X, y = sparse_data(n=233)
    seen = []

    class Counter(Callback):
        def on_train_begin(self, state):
            state.batch_hooks.append(seen.append)

    netlearn.Network([20, 5, 4]).fit((X, y), 2, 4, 0.1, callbacks=[Counter()], engine="numba")
    # (each epoch is one kernel call, watched from another thread: at least one report per epoch)
    assert sum(seen) == 2 * 233 and len(seen) >= 2


def test_unsupported_cases_fall_back_or_explain():
    data = sparse_data()
    seq = netlearn.Sequential([netlearn.Dense(20, 5), netlearn.Softmax(), netlearn.Dense(5, 4), netlearn.Sigmoid()])
    spy = EngineSpy()
    seq.fit(data, 1, 10, 0.1, callbacks=[spy])
    assert spy.engine == "numpy"
    with pytest.raises(engine.EngineUnavailable, match="softmax"):
        seq.fit(data, 1, 10, 0.1, engine="numba")

    class Clip(optimizers.GradientTransformation):
        def update(self, updates, params):
            for u in updates:
                np.clip(u, -1, 1, out=u)

    opt = optimizers.Optimizer(optimizers.chain(Clip(), optimizers.scale_by_learning_rate(0.1)))
    with pytest.raises(ValueError, match="Clip"):
        netlearn.Network([20, 5, 4]).fit(data, 1, 10, 0.1, optimizer=opt, engine="numba")
    netlearn.Network([20, 5, 4]).fit(data, 1, 10, 0.1, optimizer=opt, callbacks=[spy])
    assert spy.engine == "numpy"
    with pytest.raises(ValueError, match="'engine' parameter"):
        netlearn.Network([20, 5, 4]).fit(data, 1, 10, 0.1, engine="fortran")


def test_divergence_restores_last_good_weights_on_compiled_path():
    X, y = sparse_data()
    net = netlearn.Network([20, 5, 4], activation="relu", cost="quadratic", output="identity", seed=0)
    net.fit((X, y), 1, 10, 0.01, engine="numba")
    good = [p.copy() for p in net.parameters()]
    with pytest.raises(DivergenceError, match="diverged in epoch 1"):
        net.fit((X * 1e3, y), 3, 10, 1e3, seed=2, engine="numba")
    # The failed call restores the weights of its own last good epoch: here, the ones it started with.
    for p, q in zip(net.parameters(), good):
        np.testing.assert_array_equal(p, q)


def test_import_stays_light():
    code = "import sys, netlearn; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_short_runs_do_not_load_numba():
    code = ("import sys, numpy as np, netlearn; X = np.eye(20, dtype=np.float32); "
            "netlearn.Network([20, 3, 20]).fit((X, np.arange(20)), 2, 5, 0.1); print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fit_changes_no_thread_settings():
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    netlearn.Network([20, 5, 4]).fit(sparse_data(), 1, 10, 0.1, engine="numba")
    assert numba.get_num_threads() == before


def test_sparse_rows_index_matches_the_data():
    X, _ = sparse_data(n=30)
    indptr, cols, vals = inputs.sparse_rows(X)
    for r in range(X.shape[0]):
        nz = np.flatnonzero(X[r])
        np.testing.assert_array_equal(cols[indptr[r]:indptr[r + 1]], nz)
        np.testing.assert_array_equal(vals[indptr[r]:indptr[r + 1]], X[r, nz])
    assert inputs.sparse_rows(np.ones((4, 3), np.float32)) is None


def test_row_counts_across_blocks_count_nan_and_not_negative_zero():
    # 3000 inputs: blocks of 349 rows, so 1000 rows take three blocks and a partial one
    g = np.random.default_rng(3)
    X = g.random((1000, 3000)).astype(np.float32)
    X[X < 0.9] = 0
    X[5, 7], X[700, 1] = np.nan, -0.0
    counts = inputs.row_counts(X)
    np.testing.assert_array_equal(counts, [np.sum(row != 0) for row in X])
    assert counts[5] == np.sum(X[5] != 0) and np.isnan(X[5, 7])


def test_population_scale_write_back_is_one_float64_product_per_weight():
    from netlearn.engine import population as pop_kernels
    g = np.random.default_rng(4)
    W = g.standard_normal((5, 3, 16)).astype(np.float32)
    s = g.random((1, 16)) * 1e-3 + 0.3
    want = (W.astype(np.float64) * s[0]).astype(np.float32)
    pop_kernels.pop_fold_scales((W,), s)
    np.testing.assert_array_equal(W, want)
    np.testing.assert_array_equal(s, 1.0)


@pytest.mark.parametrize("n_in, dtype", [(20, np.float32), (16, np.float32), (7, np.float32), (50, np.float64),
                                         (70_000, np.float32)])
def test_sparse_rows_for_any_width_and_dtype(n_in, dtype):
    # float32 goes 16 inputs at a time (vector compress) with a scalar tail; wide inputs need int32 positions
    g = np.random.default_rng(n_in)
    X = g.random((9, n_in)).astype(dtype)
    X[g.random(X.shape) > 0.3] = 0
    X[2] = 0
    indptr, cols, vals = inputs.sparse_rows(X, force=True)
    r, c = np.nonzero(X)
    np.testing.assert_array_equal(np.diff(indptr), np.bincount(r, minlength=X.shape[0]))
    np.testing.assert_array_equal(cols[:indptr[-1]], c)
    np.testing.assert_array_equal(vals[:indptr[-1]], X[r, c])
    assert cols.dtype == (np.int32 if n_in > 65536 else np.uint16)


def test_float32_exp_is_accurate():
    import numba

    from netlearn.engine import step

    @numba.njit
    def exps(x, out):
        for j in range(x.shape[0]):
            out[j] = step.expf(x[j])

    x = np.linspace(-87, 88, 100_001).astype(np.float32)
    out = np.empty_like(x)
    exps(x, out)
    np.testing.assert_allclose(out, np.exp(x.astype(np.float64)), rtol=5e-7)
    exps(np.array([np.nan, -1e4, 1e4], np.float32), out[:3])
    assert np.isnan(out[0]) and 0 <= out[1] < 1e-37 and out[2] > 1e38


def test_a_kernel_that_cannot_be_built_falls_back_to_numpy(monkeypatch):
    """engine='auto' warns and trains on NumPy when the platform cannot compile the kernel; 'numba' raises."""
    X, y = sparse_data()

    def broken(self, announce=False):
        raise RuntimeError("LLVM cannot select this vector instruction")

    monkeypatch.setattr(single.CompiledEpochs, "compile", broken)
    monkeypatch.setattr(netlearn.training, "AUTO_MIN_EXAMPLES", 0)  # 'auto' takes the compiled path for this run
    ref = netlearn.Network([20, 6, 4], seed=0)
    ref.fit((X, y), 2, 7, 0.3, seed=1, engine="numpy")
    net = netlearn.Network([20, 6, 4], seed=0)
    with pytest.warns(RuntimeWarning, match="NumPy path instead"):
        net.fit((X, y), 2, 7, 0.3, seed=1, engine="auto")
    assert all(np.array_equal(a, b) for a, b in zip(ref.parameters(), net.parameters()))
    with pytest.raises(RuntimeError, match="LLVM"):
        netlearn.Network([20, 6, 4], seed=0).fit((X, y), 2, 7, 0.3, seed=1, engine="numba")


# ---- mini-batches of 32 or more: the row-by-row kernel, on one or more threads


@pytest.mark.parametrize("net_kw", PAIRINGS)
@pytest.mark.parametrize("reg", [{}, {"lmbda": 5.0}, {"l1": 2.0}])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_row_by_row_kernel_matches_numpy(net_kw, reg, threads):
    nets, _ = train_both([20, 9, 6, 4], sparse_data(n=300), batch=40, threads=threads, net_kw=net_kw, **reg)
    assert_same_params(*nets)


def test_row_by_row_kernel_is_the_one_used(monkeypatch):
    X, y = sparse_data()
    T = np.eye(4, dtype=np.float32)[y]
    net = netlearn.Network([20, 5, 4])
    opt = optimizers.get(None, 0.1)
    assert single.CompiledEpochs(net, opt, X, T, 40, threads=2).rows_mode
    assert not single.CompiledEpochs(net, opt, X, T, 10, threads=2).rows_mode
    small = single.CompiledEpochs(net, opt, X, T, 10, threads=2)
    assert small.threads == 1  # the example-by-example kernel runs on one thread
    assert single.CompiledEpochs(net, opt, X, T, 40, threads=2).key == "train_rows:2:float32"
    assert small.key == "train:2:float32"
    monkeypatch.setattr(support, "ROWS_MAX_BYTES", 1000)
    assert not single.CompiledEpochs(net, opt, X, T, 40).rows_mode
    assert single.CompiledEpochs(net, opt, X, T, 40).key == "train:2:float32"


@pytest.mark.parametrize("threads", [1, 2])
def test_row_by_row_dense_inputs_float64_and_partial_batch(threads):
    X, y = sparse_data(n=203, density=1.0)
    nets, _ = train_both([20, 5, 4], (X, y), batch=50, lmbda=2.0, threads=threads)
    assert_same_params(*nets)
    nets, _ = train_both([20, 5, 4], sparse_data(n=203), batch=64, lmbda=1.0, threads=threads,
                         net_kw={"dtype": "float64"})
    assert_same_params(*nets, atol=1e-10)


def test_row_by_row_blank_examples_and_tiny_last_batch():
    # Examples without a single non-zero input still count (their share of the batch is by non-zeros);
    # a last batch of one example leaves a thread with nothing to do.
    X, y = sparse_data(n=161)
    X[::3] = 0
    nets, _ = train_both([20, 6, 4], (X, y), batch=32, lmbda=1.0, threads=3)
    assert_same_params(*nets)


def test_row_by_row_lazy_decay_fold_schedule_and_hooks():
    X, y = sparse_data(n=320)
    # (1 - 0.5*100/320)^10 batches per epoch: the scale passes 1e-4 within the epoch
    nets, hists = train_both([20, 5, 4], (X, y), epochs=3, batch=32, eta=0.5, lmbda=100.0, threads=2,
                             callbacks=[HalveEta()])
    assert hists[1].eta == [0.5, 0.25, 0.125]
    assert_same_params(*nets)
    seen = []

    class Counter(Callback):
        def on_train_begin(self, state):
            state.batch_hooks.append(seen.append)

    netlearn.Network([20, 5, 4]).fit((X, y), 2, 32, 0.1, callbacks=[Counter()], engine="numba", threads=2)
    assert sum(seen) == 2 * 320 and len(seen) >= 2


@pytest.mark.parametrize("net_kw, reg", [({}, {"lmbda": 1.0}), ({"activation": "relu", "cost": "hinge"}, {"l1": 1.0})])
def test_thread_count_does_not_change_the_numbers(net_kw, reg):
    X, y = sparse_data(n=400)
    X[::7] = 0  # (blank examples move the shares of the threads)
    nets = []
    for threads in (1, 2, 3, 4):
        net = netlearn.Network([20, 7, 4], seed=1, **net_kw)
        net.fit((X, y), 2, 50, 0.3, seed=2, engine="numba", threads=threads, **reg)
        nets.append(net)
    for other in nets[1:]:
        for p, q in zip(nets[0].parameters(), other.parameters()):
            np.testing.assert_array_equal(p, q)


def test_threads_setting_is_checked(monkeypatch):
    assert engine.resolve_threads(3, 100) == 3
    assert 1 <= engine.resolve_threads(None, 100) <= engine.codes.MAX_AUTO_THREADS
    assert engine.resolve_threads(None, 40) == 1  # at least 25 examples a thread
    monkeypatch.setenv("NETLEARN_THREADS", "2")
    assert engine.resolve_threads(None, 10) == 2
    assert engine.resolve_threads(1, 100) == 1  # the argument wins
    monkeypatch.setenv("NETLEARN_THREADS", "two")
    with pytest.raises(ValueError, match="NETLEARN_THREADS must be a whole number"):
        engine.resolve_threads(None, 100)
    with pytest.raises(ValueError, match="NETLEARN_THREADS must be a whole number"):
        engine.resolve_threads(2, 100)  # a bad variable is reported even when the argument is given
    monkeypatch.delenv("NETLEARN_THREADS")
    for bad in (0, -1, 2.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be a whole number"):
            engine.resolve_threads(bad, 100)
    with pytest.raises(ValueError, match="threads must be"):
        netlearn.Network([20, 5, 4]).fit(sparse_data(), 1, 40, 0.1, engine="numba", threads=0)


def test_a_thread_that_cannot_start_stops_the_call_cleanly(monkeypatch):
    import threading

    X, y = sparse_data()
    net = netlearn.Network([20, 5, 4], seed=0)
    before = [p.copy() for p in net.parameters()]

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        net.fit((X, y), 1, 40, 0.1, engine="numba", threads=2)
    assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))


def test_huge_zeros_are_zeroed_aligned_and_separate():
    specs = [((3, 5), np.float32), ((7,), np.int64), ((2, 2, 3), np.float64), ((1,), np.uint8)]
    arrays = single.huge_zeros(specs)
    for a, (shape, dtype) in zip(arrays, specs):
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
        assert a.ctypes.data % 64 == 0 and not a.any()
    for k, a in enumerate(arrays):
        a[...] = k + 1
    assert all((a == k + 1).all() for k, a in enumerate(arrays))  # no two overlap
