"""Cold start: a slow first compile is announced on standard error ("compiling", then the seconds it took),
only when the run shows progress or is verbose (the command line unless --quiet)."""
from __future__ import annotations

import io
import time

import numpy as np

import netlearn
from netlearn.engine import compiler, single


def test_a_slow_build_is_announced_with_its_time(monkeypatch):
    monkeypatch.setattr(compiler, "ANNOUNCE_AFTER", 0.0)
    out = io.StringIO()
    compiler.compile_with_notice(lambda: time.sleep(0.3), "training kernel", True, stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "compiling the training kernel" in lines[0]
    assert lines[1].startswith("netlearn: compiled the training kernel in ") and lines[1].endswith(" s")
    quiet = io.StringIO()
    compiler.compile_with_notice(lambda: time.sleep(0.3), "training kernel", False, stream=quiet)
    assert quiet.getvalue() == ""


def test_a_fast_build_prints_nothing():
    out = io.StringIO()
    calls = []
    compiler.compile_with_notice(lambda: calls.append(1), "training kernel", True, stream=out)
    assert calls == [1] and out.getvalue() == ""


def _spy_on_notices(monkeypatch, module) -> list:
    """The ``announce`` argument of every ``module.compile_with_notice`` call from now on, in order."""
    seen = []
    real = module.compile_with_notice

    def spy(build, what, announce, stream=None):
        seen.append(announce)
        return real(build, what, announce, stream)

    monkeypatch.setattr(module, "compile_with_notice", spy)
    return seen


def test_fit_announces_only_when_it_shows_something(monkeypatch):
    seen = _spy_on_notices(monkeypatch, single)
    X = np.random.default_rng(0).random((50, 6)).astype(np.float32)
    y = np.arange(50) % 3
    for kw in ({}, {"verbose": True}, {"progress": True}):
        netlearn.Network([6, 4, 3]).fit((X, y), 1, 10, 0.1, engine="numba", **kw)
    assert seen == [False, True, True]


def test_population_fit_and_search_announce_when_asked(monkeypatch):
    from netlearn.engine import population as pop_kernels

    seen = _spy_on_notices(monkeypatch, pop_kernels)
    g = np.random.default_rng(0)
    X = g.random((64, 6)).astype(np.float32)
    y = np.arange(64) % 3
    for kw in ({}, {"verbose": True}, {"announce": True}, {"verbose": True, "announce": False}):
        netlearn.Population([6, 4, 3], [0.1, 0.2]).fit((X, y), 1, 10, print_fn=lambda s: None, **kw)
    assert seen == [False, True, True, False]
    # a search that prints its trials announces the compile too; a quiet one does not
    seen.clear()
    for verbose in (True, False):
        netlearn.search((X, y), (X, y), eta="0.1,0.5", layers=[6, 4, 3], epochs=1, trials=2, sampler="grid",
                        verbose=verbose, print_fn=lambda s: None)
    assert seen == [True, False]


def test_tune_announces_its_compiles_when_asked(monkeypatch):
    # `netlearn tune` compiles up to three kernels (a population, one network at batch 10, one at 32+)
    from netlearn.engine import population as pop_kernels
    from netlearn.search import book

    pop_seen = _spy_on_notices(monkeypatch, pop_kernels)
    one_seen = _spy_on_notices(monkeypatch, single)
    g = np.random.default_rng(0)
    X = g.random((120, 6)).astype(np.float32)
    y = np.arange(120) % 3
    for announce in (True, False):
        pop_seen.clear()
        one_seen.clear()
        book.tune((X, y), (X, y), sizes=[6, 4, 3], max_epochs=2, patience=1, threshold_images=60,
                  threshold_epochs=1, batch_sizes=(10, 40), batch_seconds=0.01, log=lambda s: None,
                  announce=announce)
        assert pop_seen and set(pop_seen) == {announce}
        assert set(one_seen) <= {announce}


def test_a_helper_called_from_python_says_so_instead_of_crashing():
    import pytest

    from netlearn.engine import step

    with pytest.raises(TypeError, match="compiled helper"):
        step.activate_row(np.zeros((1, 16), np.float32), 0, 4, 0)
