"""Search workers in separate processes: a journal file shared by several, PostgreSQL with a killed worker, Ctrl-C.

Each worker is a real ``netlearn search run`` process on a small fake MNIST.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna

from netlearn.cli import main
from netlearn.search.storage import open_storage

sys.path.insert(0, str(Path(__file__).parent))
from test_search import small_root  # noqa: E402,F401  (the fake MNIST fixture)

S = optuna.trial.TrialState
NET = ["--layers", "784,6,10", "--train-size", "300"]


def worker(storage, study, root, *extra):
    env = {**os.environ, "NETLEARN_DATA": str(root), "NETLEARN_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "netlearn.cli", "search", "run", "--storage", storage, "--study", study,
                             "--heartbeat", "1", "--quiet", *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(procs, timeout=240):
    out = []
    for p in procs:
        so, se = p.communicate(timeout=timeout)
        out.append((p.returncode, se))
    return out


def load(storage, name):
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def wait_running(study, proc, timeout=120):
    """Until the study has RUNNING trials (the worker asked its population)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if study.get_trials(deepcopy=False, states=(S.RUNNING,)):
            return
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.1)
    raise AssertionError("the worker never started a trial")


def test_journal_workers_at_once_share_the_study(small_root, tmp_path):
    storage = str(tmp_path / "journal.log")
    assert main(["search", "init", "--storage", storage, "--study", "j", "--eta", "0.05:5:log", "--lmbda", "0.1:10:log",
                 "--epochs", "2", "--trials", "24", "--population", "4", *NET]) == 0
    results = finish([worker(storage, "j", small_root) for _ in range(3)])
    assert [rc for rc, _ in results] == [0, 0, 0], results
    trials = load(storage, "j").trials
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    states = Counter(t.state for t in trials)
    assert states[S.RUNNING] == 0 and states[S.WAITING] == 0
    # Workers that count the study at once may each start a last trial: a few beyond 24, never fewer.
    assert 24 <= states[S.COMPLETE] <= 24 + 2 * 4


def test_postgres_workers_a_killed_one_and_its_trials_retried(small_root, postgres_url):
    etas = ",".join(str(0.05 * (k + 1)) for k in range(12))
    assert main(["search", "init", "--storage", postgres_url, "--study", "pg", "--sampler", "grid", "--eta", etas,
                 "--lmbda", "1", "--epochs", "12", "--population", "4", *NET]) == 0
    study = load(postgres_url, "pg")
    a = worker(postgres_url, "pg", small_root)
    wait_running(study, a)
    time.sleep(0.5)
    a.send_signal(signal.SIGKILL)
    a.wait()
    killed = [t.number for t in study.get_trials(states=(S.RUNNING,))]
    assert killed, "the worker was killed before or after its population, not in the middle"
    results = finish([worker(postgres_url, "pg", small_root) for _ in range(2)])
    assert [rc for rc, _ in results] == [0, 0], results
    trials = load(postgres_url, "pg").trials
    states = Counter(t.state for t in trials)
    assert states[S.RUNNING] == 0 and states[S.WAITING] == 0
    done = [t for t in trials if t.state == S.COMPLETE]
    points = [t.params["eta"] for t in done]
    assert sorted(points) == sorted(0.05 * (k + 1) for k in range(12))  # every grid point once, none twice
    failed = {t.number for t in trials if t.state == S.FAIL}
    assert set(killed) <= failed
    retried = {n for t in done for n in t.system_attrs.get("retry_history", [])}
    assert set(killed) <= retried
    by_number = {t.number: t for t in trials}
    for t in done:
        if "failed_trial" in t.system_attrs:  # a retry keeps its trial's parameters and seed
            orig = by_number[t.system_attrs["failed_trial"]]
            # (a trial killed before its parameters were written has only its queued grid point)
            assert t.params == (orig.params or orig.system_attrs["fixed_params"])
            assert t.user_attrs["init_seed"] == orig.user_attrs.get("init_seed", t.user_attrs["init_seed"])


def test_ctrl_c_marks_the_workers_trials_failed_and_queues_them_again(small_root, tmp_path):
    storage = str(tmp_path / "journal.log")
    assert main(["search", "init", "--storage", storage, "--study", "c", "--eta", "0.05:5:log", "--epochs", "30",
                 "--trials", "8", "--population", "4", *NET]) == 0
    study = load(storage, "c")
    a = worker(storage, "c", small_root)
    wait_running(study, a)
    time.sleep(0.5)
    a.send_signal(signal.SIGINT)
    _, err = a.communicate(timeout=60)
    assert a.returncode == 130, err
    assert "Traceback" not in err and "queued again" in err.strip().splitlines()[-1]
    trials = load(storage, "c").trials
    failed = [t for t in trials if t.state == S.FAIL]
    waiting = [t for t in trials if t.state == S.WAITING]
    assert failed and not [t for t in trials if t.state == S.RUNNING]
    assert sorted(t.number for t in failed) == sorted(t.system_attrs["failed_trial"] for t in waiting)
    assert sorted(str(t.params) for t in failed) == sorted(str(t.params) for t in waiting)
