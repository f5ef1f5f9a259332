"""BLAS threads: one thread inside fit and evaluation when the products are small, the setting restored after."""
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import netlearn
from netlearn import blas
from netlearn.callbacks import Callback

if not any(lib["user_api"] == "blas" for lib in threadpool_info()):  # pragma: no cover - NumPy without a BLAS
    pytest.skip("threadpoolctl finds no BLAS library in this process", allow_module_level=True)


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def data(n=80, d=6, seed=0):
    g = np.random.default_rng(seed)
    X = g.random((n, d), dtype=np.float32)
    return X, (X[:, 0] > X[:, 1]).astype(int)


class Spy(Callback):
    def __init__(self):
        self.seen = []

    def on_epoch_end(self, state):
        self.seen.append(blas_threads())


def test_fit_trains_small_products_on_one_blas_thread_and_restores_the_count():
    spy = Spy()
    with threadpool_limits(limits=2, user_api="blas"):
        assert set(blas_threads()) == {2}
        netlearn.Network([6, 5, 2], seed=0).fit(data(), 2, 10, 0.5, engine="numpy", callbacks=[spy])
        assert set(blas_threads()) == {2}
    assert spy.seen == [[1] * len(blas_threads())] * 2


def test_fit_restores_the_count_when_it_raises():
    class Boom(Callback):
        def on_epoch_end(self, state):
            raise RuntimeError("boom")

    with threadpool_limits(limits=2, user_api="blas"):
        with pytest.raises(RuntimeError, match="boom"):
            netlearn.Network([6, 5, 2], seed=0).fit(data(), 2, 10, 0.5, engine="numpy", callbacks=[Boom()])
        assert set(blas_threads()) == {2}


def test_evaluation_limits_only_small_products_and_restores(monkeypatch):
    net = netlearn.Network([6, 5, 2], seed=0)
    seen = []
    outputs = type(net)._outputs

    def spying(self, X, pre_activation=False):
        seen.append(blas_threads())
        return outputs(self, X, pre_activation)

    monkeypatch.setattr(type(net), "_outputs", spying)
    with threadpool_limits(limits=2, user_api="blas"):
        net.accuracy(data()), net.total_cost(data()), net.predict(data()[0]), net.predict_proba(data()[0])
        assert set(blas_threads()) == {2}
        monkeypatch.setattr(blas, "SMALL_PRODUCT", 0)  # every product counts as large: nothing changes
        net.accuracy(data())
    ones = [1] * len(blas_threads())
    assert seen == [ones] * 4 + [[2] * len(ones)]


def test_importing_and_training_leave_the_process_blas_threads_alone():
    # Importing netlearn loads more libraries (SciPy's own BLAS, Numba's); those loaded before must keep
    # their thread counts, and every one must have the same count after fit as before it.
    code = ("from threadpoolctl import threadpool_info; import numpy as np\n"
            "threads = lambda: {l['filepath']: l['num_threads'] for l in threadpool_info()}\n"
            "before = threads()\n"
            "import netlearn\n"
            "loaded = threads()\n"
            "assert {k: loaded[k] for k in before} == before, ('import', before, loaded)\n"
            "X = np.random.default_rng(0).random((50, 4), dtype=np.float32); y = (X[:, 0] > 0.5).astype(int)\n"
            "net = netlearn.Network([4, 3, 2], seed=0); net.fit((X, y), 1, 10, 0.5); net.accuracy((X, y))\n"
            "after = threads()\n"
            "assert {k: after[k] for k in loaded} == loaded, ('fit', loaded, after)\n")
    subprocess.run([sys.executable, "-c", code], check=True)
