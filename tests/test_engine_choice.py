"""engine="auto" decides by the run alone, and bad NETLEARN_ENGINE / NETLEARN_THREADS values are one clear error
on every path (the NumPy one included)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import netlearn
from netlearn import engine, optimizers
from netlearn.training import AUTO_MIN_EXAMPLES, Callback, choose_engine

from test_cli import data_root, run_error  # noqa: F401  (a fixture and a helper)


class Spy(Callback):
    def on_train_begin(self, state):
        self.engine = state.engine


def data(n, seed=0):
    g = np.random.default_rng(seed)
    X = g.random((n, 20)).astype(np.float32)
    X[X < 0.7] = 0
    return X, g.integers(0, 4, n)


def engine_of(n, epochs, **kw):
    spy = Spy()
    netlearn.Network([20, 5, 4], seed=0).fit(data(n), epochs, 10, 0.1, callbacks=[spy], **kw)
    return spy.engine


def test_auto_depends_on_the_run_not_on_what_was_loaded_before():
    engine_of(100, 1, engine="numba")        # the kernels are loaded and compiled in this process now
    assert "netlearn.engine.single" in sys.modules
    assert engine_of(100, 1) == "numpy"      # a short run stays on NumPy all the same
    assert engine_of(AUTO_MIN_EXAMPLES // 2, 2) == "numba"   # n x epochs decides
    assert engine_of(AUTO_MIN_EXAMPLES // 2 - 1, 2) == "numpy"


def test_auto_in_a_fresh_process_chooses_the_same():
    code = ("import numpy as np, netlearn; from netlearn.training import choose_engine, AUTO_MIN_EXAMPLES; "
            "g = np.random.default_rng(0); X = g.random((AUTO_MIN_EXAMPLES, 20)).astype(np.float32); "
            "T = np.eye(4, dtype=np.float32)[g.integers(0, 4, len(X))]; net = netlearn.Network([20, 5, 4]); "
            "opt = netlearn.optimizers.get(None, 0.1); "
            "print(choose_engine(None, net, opt, X[:100], T[:100], 10) is None, "
            "choose_engine(None, net, opt, X, T, 10) is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]
    X, y = data(AUTO_MIN_EXAMPLES)
    T = np.eye(4, dtype=np.float32)[y]
    net, opt = netlearn.Network([20, 5, 4]), optimizers.get(None, 0.1)
    assert choose_engine(None, net, opt, X[:100], T[:100], 10) is None
    assert choose_engine(None, net, opt, X, T, 10) is not None


@pytest.mark.parametrize("which", ["numpy", "numba", None])
def test_a_bad_engine_variable_is_an_error_on_every_path(which, monkeypatch):
    monkeypatch.setenv("NETLEARN_ENGINE", "fortran")
    with pytest.raises(ValueError, match="NETLEARN_ENGINE must be one of .*'fortran'"):
        netlearn.Network([20, 5, 4]).fit(data(50), 1, 10, 0.1, engine=which)
    monkeypatch.setenv("NETLEARN_ENGINE", "NumPy")  # (case does not matter)
    assert engine_of(50, 1) == "numpy"
    assert engine.engine_setting(None) == "numpy"


@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5"])
def test_a_bad_threads_variable_is_an_error_on_every_path(value, monkeypatch):
    monkeypatch.setenv("NETLEARN_THREADS", value)
    for which in ("numpy", "numba", "auto"):
        with pytest.raises(ValueError, match=f"NETLEARN_THREADS must be a whole number.*'{value}'"):
            netlearn.Network([20, 5, 4]).fit(data(50), 1, 10, 0.1, engine=which)
    with pytest.raises(ValueError, match="NETLEARN_THREADS"):
        netlearn.Population([20, 5, 4], [0.1, 0.2]).fit(data(50), 1, 10)
    with pytest.raises(ValueError, match="threads must be a whole number"):
        monkeypatch.delenv("NETLEARN_THREADS")
        netlearn.Network([20, 5, 4]).fit(data(50), 1, 10, 0.1, engine="numpy", threads=0)


def test_the_command_line_reports_a_bad_variable_in_one_line(capsys, data_root, monkeypatch):  # noqa: F811
    monkeypatch.setenv("NETLEARN_THREADS", "many")
    line = run_error(capsys, ["train", "--data-dir", str(data_root), "--epochs", "1", "--train-size", "100", "--quiet"])
    assert "NETLEARN_THREADS" in line
    monkeypatch.delenv("NETLEARN_THREADS")
    monkeypatch.setenv("NETLEARN_ENGINE", "gpu")
    line = run_error(capsys, ["train", "--data-dir", str(data_root), "--epochs", "1", "--train-size", "100", "--quiet"])
    assert "NETLEARN_ENGINE" in line
