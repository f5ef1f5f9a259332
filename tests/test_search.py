"""Hyper-parameter search in one process: the space, the worker, pruning, grids, the CLI and its errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netlearn
import optuna
from netlearn.cli import main
from netlearn.search.space import Space, SpaceError, parse_numeric, parse_words


sys.path.insert(0, str(Path(__file__).parent))
from test_cli import synthetic_digits, write_idx  # noqa: E402


def blobs(n=260, d=12, k=3, seed=0):
    g = np.random.default_rng(seed)
    centres = g.uniform(0, 1, (k, d))
    y = g.integers(0, k, n)
    X = (centres[y] + 0.15 * g.standard_normal((n, d))).clip(0, None).astype(np.float32)
    return (X[:200], y[:200]), (X[200:], y[200:])


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    """A fake MNIST: 300 training images after the book's 10,000 validation ones, 100 test images."""
    root = tmp_path_factory.mktemp("searchdata")
    (root / "mnist").mkdir()
    X, y = synthetic_digits(10_300, 0)
    write_idx(root / "mnist" / "train-images-idx3-ubyte.gz", X)
    write_idx(root / "mnist" / "train-labels-idx1-ubyte.gz", y)
    X, y = synthetic_digits(100, 1)
    write_idx(root / "mnist" / "t10k-images-idx3-ubyte.gz", X)
    write_idx(root / "mnist" / "t10k-labels-idx1-ubyte.gz", y)
    return root


# -- the space ------------------------------------------------------------------------------------------
def test_space_forms():
    assert parse_numeric("eta", "0.01:10:log") .__dict__ == {"name": "eta", "kind": "float", "low": 0.01,
                                                             "high": 10.0, "log": True, "choices": ()}
    assert parse_numeric("lmbda", "0:5").kind == "float" and not parse_numeric("lmbda", "0:5").log
    assert parse_numeric("batch_size", "10,20").choices == (10, 20)
    assert parse_numeric("batch_size", "5:50").kind == "int"
    assert parse_words("hidden", ["30", "100", "64,32"]).choices == (30, 100, "64,32")
    assert parse_words("optimizer", "sgd,adam").choices == ("sgd", "adam")
    grid = Space({"eta": "0.1,1", "hidden": ["30", "10,10"]}).grid()
    assert grid == [{"eta": 0.1, "hidden": 30}, {"eta": 0.1, "hidden": "10,10"},
                    {"eta": 1.0, "hidden": 30}, {"eta": 1.0, "hidden": "10,10"}]


@pytest.mark.parametrize("name,text,match", [
    ("eta", "0:1:log", "> 0"), ("eta", "1:0.1", "LOW must be less"), ("mu", "0.5,1.0", r"in \[0, 1\)"),
    ("eta", "a:b", "LOW:HIGH"), ("lmbda", "1,1", "repeat"), ("batch_size", "0.5:3", "whole numbers"),
])
def test_bad_space_options_are_refused_clearly(name, text, match):
    with pytest.raises(SpaceError, match=match):
        parse_numeric(name, text)


def test_grid_refuses_ranges():
    with pytest.raises(SpaceError, match="--sampler grid needs lists"):
        Space({"eta": "0.1:1"}).grid()


# -- searches in memory ------------------------------------------------------------------------------
def _strip(s):
    return {k: v for k, v in s.items() if k != "seconds"}


def test_an_in_memory_search_repeats_exactly_with_a_seed():
    training, evaluation = blobs()
    kw = dict(eta="0.05:5:log", lmbda="0.1:10:log", layers=[12, 6, 3], epochs=4, trials=10, population=4,
              seed=5, pruner="halving")
    a = netlearn.search(training, evaluation, **kw)
    b = netlearn.search(training, evaluation, **kw)
    assert _strip(a.summary) == _strip(b.summary)
    c = netlearn.search(training, evaluation, **{**kw, "seed": 6})
    assert [t["params"] for t in c.summary["trials"]] != [t["params"] for t in a.summary["trials"]]
    s = a.summary
    assert set(s) == {"study", "sampler", "best", "trials", "network_epochs", "seconds"}
    assert set(s["best"]) == {"number", "params", "value"}
    for t in s["trials"]:
        assert {"number", "state", "params", "value", "epochs", "history"} <= set(t)
        acc = t["history"]["evaluation_accuracy"]
        assert len(acc) == t["epochs"] and all(0 <= v <= 1 for v in acc)
        assert t["value"] == pytest.approx(max(acc))
        assert isinstance(t["params"]["eta"], float)
    assert s["network_epochs"] == sum(t["epochs"] for t in s["trials"])
    # The best network is the best trial's, at its best epoch.
    assert a.network.accuracy(evaluation) == pytest.approx(s["best"]["value"])


def test_halving_prunes_and_asks_the_same_parameters_in_the_same_order():
    training, evaluation = blobs()
    kw = dict(eta="0.01:20:log", lmbda="0.1:10:log", layers=[12, 6, 3], epochs=9, trials=12, population=6, seed=2)
    full = netlearn.search(training, evaluation, **kw).summary
    pruned = netlearn.search(training, evaluation, pruner="halving", **kw).summary
    params = lambda s: {t["number"]: t["params"] for t in s["trials"]}  # noqa: E731
    assert params(full) == params(pruned)
    states = [t["state"] for t in pruned["trials"]]
    assert states.count("PRUNED") > 0 and states.count("COMPLETE") > 0
    assert all(t["state"] == "COMPLETE" and t["epochs"] == 9 for t in full["trials"])
    assert pruned["network_epochs"] < full["network_epochs"]
    # Pruned trials keep their curves and stop at a rung (1 or 3).
    assert {t["epochs"] for t in pruned["trials"] if t["state"] == "PRUNED"} <= {1, 3}


def test_a_population_trains_each_trial_like_its_own_network():
    training, evaluation = blobs()
    r = netlearn.search(training, evaluation, eta="0.1:3:log", lmbda="1,2", layers=[12, 6, 3], epochs=3, trials=4,
                        seed=1)
    study = r.study
    for t in study.trials:
        net = netlearn.Network([12, 6, 3], seed=t.user_attrs["init_seed"])
        h = net.fit(training, 3, 10, t.params["eta"], lmbda=t.params["lmbda"], evaluation_data=evaluation, seed=1)
        curve = [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
        np.testing.assert_allclose(curve, h.evaluation_accuracy, atol=1.5 / len(evaluation[1]))


def test_settings_a_population_cannot_train_run_one_network_per_trial():
    training, evaluation = blobs()
    r = netlearn.search(training, evaluation, eta="0.001:0.01:log", optimizer="adam,sgd", dropout="0,0.2",
                        layers=[12, 6, 3], epochs=2, trials=6, population=6, seed=0)
    trials = r.summary["trials"]
    assert {t["state"] for t in trials} == {"COMPLETE"} and len(trials) == 6
    assert {t["params"]["optimizer"] for t in trials} <= {"adam", "sgd"}
    assert all(isinstance(t["params"]["dropout"], float) for t in trials)


def test_a_grid_runs_each_point_once_from_the_queue():
    training, evaluation = blobs()
    r = netlearn.search(training, evaluation, sampler="grid", eta="0.1,1,3", lmbda="0,1", layers=[12, 6, 3],
                        epochs=2, seed=0)
    points = sorted((t["params"]["eta"], t["params"]["lmbda"]) for t in r.summary["trials"])
    assert points == sorted((e, lm) for e in (0.1, 1.0, 3.0) for lm in (0.0, 1.0))
    assert r.summary["sampler"] == "grid"


def test_a_diverging_trial_is_complete_with_its_best_accuracy_and_marked():
    training, evaluation = blobs()
    X = training[0] * 400
    r = netlearn.search((X, training[1]), evaluation, sampler="grid", eta="0.1,2000", lmbda="0", layers=[12, 6, 3],
                        cost="quadratic", output="identity", activation="relu", epochs=4, seed=0)
    by_eta = {t["params"]["eta"]: t for t in r.summary["trials"]}
    bad = by_eta[2000.0]
    assert bad["state"] == "COMPLETE" and "diverged" in bad and 0 <= bad["value"] <= 1
    assert "diverged" not in by_eta[0.1]


def test_hidden_and_activation_alternatives_group_trials_into_populations():
    training, evaluation = blobs()
    r = netlearn.search(training, evaluation, sampler="grid", hidden=[4, [5, 3]], activation=["sigmoid", "tanh"],
                        eta="0.5", layers=[12, 6, 3], epochs=2, seed=0)
    params = sorted((str(t["params"]["hidden"]), t["params"]["activation"]) for t in r.summary["trials"])
    assert params == [("4", "sigmoid"), ("4", "tanh"), ("5,3", "sigmoid"), ("5,3", "tanh")]
    assert all(t["state"] == "COMPLETE" for t in r.summary["trials"])


# -- the command line ----------------------------------------------------------------------------------
def test_cli_search_json_show_and_plot(small_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NETLEARN_DATA", str(small_root))
    out, storage = tmp_path / "s.json", tmp_path / "journal.log"
    argv = ["search", "--eta", "0.1:5:log", "--lmbda", "0.1,1", "--layers", "784,6,10", "--epochs", "2",
            "--trials", "4", "--train-size", "300", "--storage", str(storage), "--study", "s", "--quiet",
            "--json", str(out), "--plot", str(tmp_path / "s.png")]
    assert main(argv) == 0
    s = json.loads(out.read_text())
    assert s["study"] == "s" and len(s["trials"]) == 4 and s["network_epochs"] == 8
    assert (tmp_path / "s.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["search", "show", "--storage", str(storage), "--study", "s", "--json", str(tmp_path / "t.json")]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:4] == ["trial", "state", "accuracy", "epochs"]
    assert json.loads((tmp_path / "t.json").read_text())["trials"] == s["trials"]


def test_cli_init_refuses_other_settings_and_a_grid_defaults_its_trials(tmp_path, capsys):
    storage = str(tmp_path / "j.log")
    base = ["search", "init", "--storage", storage, "--study", "g", "--sampler", "grid", "--eta", "0.1,1,2"]
    assert main(base) == 0
    assert main(base) == 0  # the same settings again: the study is reused
    assert main(base[:-1] + ["0.1,1"]) == 2
    assert "exists with other settings" in capsys.readouterr().err
    study = optuna.load_study(study_name="g", storage=netlearn.search.storage.open_storage(storage))
    assert study.user_attrs["netlearn_settings"]["trials"] == 3
    assert len(study.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 3


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_cli_errors_are_one_line(tmp_path, capsys):
    storage = str(tmp_path / "j.log")
    err = _one_line_error(capsys, ["search", "run", "--storage", storage, "--study", "nope"])
    assert "no study named 'nope'" in err and "search init" in err
    err = _one_line_error(capsys, ["search", "show", "--storage", "postgresql://nobody@127.0.0.1:1/none",
                                   "--study", "x"])
    assert "cannot open the storage" in err
    assert "LOW must be less" in _one_line_error(capsys, ["search", "--eta", "1:0.1", "--quiet"])
    assert "needs lists" in _one_line_error(capsys, ["search", "--sampler", "grid", "--eta", "0.1:1", "--quiet"])


def test_sqlite_refuses_a_second_worker(tmp_path, capsys):
    from netlearn.search.storage import open_storage
    from netlearn.search.worker import HEARTBEAT_PREFIX
    import time

    url = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["search", "init", "--storage", url, "--study", "q", "--eta", "0.1:1"]) == 0
    study = optuna.load_study(study_name="q", storage=open_storage(url))
    # Another worker's fresh heartbeat, as a running worker writes it.
    study._storage.set_study_system_attr(study._study_id, HEARTBEAT_PREFIX + "other", [time.time(), 10.0])
    err = _one_line_error(capsys, ["search", "run", "--storage", url, "--study", "q"])
    assert "SQLite" in err and "journal" in err


def test_without_optuna_netlearn_and_grid_still_work_and_search_says_what_to_install(tmp_path):
    code = (
        "import sys; sys.modules['optuna'] = None\n"
        "import netlearn, netlearn.search.space, netlearn.cli\n"
        "from netlearn.cli import main\n"
        "assert callable(netlearn.search)\n"
        "try:\n"
        "    netlearn.search(eta='0.1:1')\n"
        "except netlearn.search.SearchError as e:\n"
        "    print('API:', e)\n"
        "sys.exit(main(['search', '--eta', '0.1:1', '--quiet']))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    assert 'pip install "netlearn[search]"' in p.stdout
    assert p.stderr.strip().count("\n") == 0 and 'pip install "netlearn[search]"' in p.stderr


# -- population-based training ------------------------------------------------------------------------
def test_pbt_exploits_the_top_quarter_and_replays_with_one_network():
    from netlearn.search.pbt import replay
    from netlearn.search.study import Settings

    training, evaluation = blobs()
    kw = dict(eta="0.05:5:log", lmbda="0.1:10:log", layers=[12, 6, 3], epochs=8, population=8, seed=3)
    r = netlearn.search(training, evaluation, strategy="pbt", interval=2, **kw)
    s = r.summary
    assert set(s) >= {"study", "sampler", "best", "trials", "network_epochs", "seconds"}
    trials = s["trials"]
    assert len(trials) == 8 and s["network_epochs"] == 64
    exploits = [(t["number"], e) for t in trials for e in t["lineage"]]
    assert exploits and {e["epoch"] for _, e in exploits} <= {2, 4, 6}
    for epoch in (2, 4, 6):  # each exploit: at most the bottom quarter (2 of 8) copies the top quarter
        at = [(n, e) for n, e in exploits if e["epoch"] == epoch]
        assert len(at) <= 2
        for n, e in at:
            acc = {t["number"]: t["history"]["evaluation_accuracy"][epoch - 1] for t in trials}
            ranked = sorted(acc, key=lambda k: (acc[k], -k))
            assert n in ranked[:2] and e["from"] in ranked[-2:]
            # explore: each value is 0.8 or 1.2 times the source's, or drawn afresh inside the range
            assert 0.05 <= e["params"]["eta"] <= 5 and 0.1 <= e["params"]["lmbda"] <= 10
    # The schedule along the ancestry trains one Network to the member's weights.
    settings = Settings(space={"eta": kw["eta"], "lmbda": kw["lmbda"]}, layers=kw["layers"], epochs=8,
                        population=8, seed=3)
    copied = next(t for t in trials if t["lineage"])
    net = replay(copied, training, evaluation, settings)
    pop_net = netlearn.search(training, evaluation, strategy="pbt", interval=2, **kw)
    assert pop_net.summary["trials"] == trials  # the same seed, the same run
    best = replay(trials[s["best"]["number"]], training, evaluation, settings)
    for p, q in zip(best.parameters(), r.network.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-4)
    assert len(copied["schedule"]["epochs"]) == 8 and len(net.parameters()) == 4


def test_cli_pbt_writes_lineage(small_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NETLEARN_DATA", str(small_root))
    out = tmp_path / "p.json"
    assert main(["search", "--strategy", "pbt", "--interval", "1", "--population", "4", "--eta", "0.1:5:log",
                 "--layers", "784,6,10", "--epochs", "3", "--train-size", "300", "--quiet", "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["sampler"] == "pbt" and all("lineage" in t for t in s["trials"])
    assert any(t["lineage"] for t in s["trials"])
    err = _one_line_error(capsys, ["search", "--strategy", "pbt", "--hidden", "5", "10", "--quiet"])
    assert "eta, lmbda and mu only" in err
