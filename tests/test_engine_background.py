"""Compiling ahead (netlearn.engine.background): a child process compiles a one-network kernel into the disk
cache; the first fit that needs it waits and loads it from there, with the same numbers."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import netlearn
from netlearn import optimizers
from netlearn.engine import background
from netlearn.search import book
from netlearn.training import expects_compiled

# In a fresh process with an empty cache: compile [20, 7, 4] at batch 10 ahead, then fit.  The fit must find
# the kernel in the cache (a cache hit, no compile of its own), and train as a fit without the child does.
SCRIPT = r"""
import json, sys, time
import numpy as np
import netlearn
from netlearn.engine import background, load

g = np.random.default_rng(0)
X = g.random((300, 20)).astype(np.float32)
X[X < 0.6] = 0
y = g.integers(0, 4, 300)
keys = background.ahead([([20, 7, 4], np.float32, 10, None)]) if sys.argv[1] == "ahead" else []
net = netlearn.Network([20, 7, 4], seed=3)
net.fit((X, y), 2, 10, 0.5, lmbda=1.0, seed=2, engine="numba")
kernel = load("single").train
print(json.dumps({"keys": keys, "hits": sum(kernel.stats.cache_hits.values()),
                  "misses": sum(kernel.stats.cache_misses.values()),
                  "params": [p.tolist() for p in net.parameters()]}))
"""


def run_script(tmp_path, mode: str) -> dict:
    cache = tmp_path / f"cache-{mode}"
    cache.mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop("NETLEARN_ENGINE", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_kernel_compiled_ahead_is_loaded_from_the_cache_with_the_same_numbers(tmp_path):
    ahead = run_script(tmp_path, "ahead")
    assert ahead["keys"] == ["train:2:float32"]
    assert (ahead["hits"], ahead["misses"]) == (1, 0)  # the child compiled it; this process only loaded it
    # the same run here, with this process's own kernel
    g = np.random.default_rng(0)
    X = g.random((300, 20)).astype(np.float32)
    X[X < 0.6] = 0
    y = g.integers(0, 4, 300)
    net = netlearn.Network([20, 7, 4], seed=3)
    net.fit((X, y), 2, 10, 0.5, lmbda=1.0, seed=2, engine="numba")
    assert ahead["params"] == [p.tolist() for p in net.parameters()]


def test_without_a_child_the_fit_compiles_itself(tmp_path):
    alone = run_script(tmp_path, "alone")
    assert alone["keys"] == [] and (alone["hits"], alone["misses"]) == (0, 1)


def test_a_failed_child_lets_the_process_compile_itself(monkeypatch):
    # float16 has no kernels: the child fails, and waiting for its kernel ends as soon as the child does.
    keys = background.ahead([([20, 7, 4], np.float16, 10, 1)])
    assert keys == ["train:2:float16"]
    background.wait(keys[0])
    assert background._events[keys[0]].is_set()
    assert background._children[-1].wait(60) != 0  # it failed, and the wait ended with it
    assert background.ahead([([20, 7, 4], np.float16, 10, 1)]) == []  # started once per process
    background.wait("train:9:float64")  # nothing compiling it: returns at once


def test_no_second_process_means_no_waiting(monkeypatch):
    monkeypatch.setattr(background.sys, "executable", "/nonexistent/python")
    assert background.ahead([([20, 7, 4], np.float32, 40, 2)]) == []
    assert "train_rows:2:float32" not in background._events


def test_large_batches_are_left_to_compile_where_used():
    assert background.ahead([([100_000, 5, 2], np.float32, 1000, 1)]) == []


def test_expects_compiled_follows_the_engine_choice(monkeypatch):
    monkeypatch.delenv("NETLEARN_ENGINE", raising=False)
    net = netlearn.Network([20, 7, 4])
    assert expects_compiled(net, 50_000, 2, 0.1, lmbda=5.0, l1=1.0)
    assert not expects_compiled(net, 100, 2, 0.1)  # too short to repay loading the kernel
    assert expects_compiled(net, 100, 2, 0.1, engine="numba")
    assert not expects_compiled(net, 50_000, 2, 0.1, engine="numpy")
    assert not expects_compiled(net, 50_000, 2, optimizer=optimizers.get("adam", 0.001))
    assert not expects_compiled(net, 50_000, 2, 0.1, max_norm=3.0)
    assert not expects_compiled(net, 50_000, 2, -1.0)  # a bad setting: fit says what is wrong
    assert not expects_compiled(netlearn.Network([20, 7, 4], dropout=0.5), 50_000, 2, 0.1)
    monkeypatch.setenv("NETLEARN_ENGINE", "numpy")
    assert not expects_compiled(net, 50_000, 2, 0.1)


def tiny(n: int, seed: int):
    g = np.random.default_rng(seed)
    X = g.random((n, 16)).astype(np.float32)
    return X, (X[:, :3].argmax(axis=1))


def test_tune_compiles_its_one_network_kernels_ahead(monkeypatch):
    started = []
    monkeypatch.setattr(background, "ahead", lambda runs: started.append(list(runs)) or [])
    kw = dict(sizes=[16, 6, 3], seed=4, max_epochs=3, patience=1, threshold_images=100, threshold_epochs=1,
              batch_sizes=(10, 40, 10), batch_seconds=0.05, log=lambda line: None)
    book.tune(tiny(8_000, 1), tiny(100, 2), **kw)
    assert started == [[([16, 6, 3], np.dtype(np.float32), 10, None), ([16, 6, 3], np.dtype(np.float32), 40, None)]]
    started.clear()
    book.tune(tiny(8_000, 1), tiny(100, 2), compile_ahead=False, **kw)
    book.tune(tiny(200, 1), tiny(100, 2), **kw)  # 200 x 3 examples: the one-network runs stay on NumPy
    assert started == []
