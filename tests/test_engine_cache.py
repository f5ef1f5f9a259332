"""No cache, no crash: where Numba can neither write nor read a cache, engine='auto' trains on NumPy with one
warning and engine='numba' says why it cannot run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import netlearn

SCRIPT = r"""
import json, warnings
import numpy as np
import netlearn
from netlearn.training import Callback

class Spy(Callback):
    def on_train_begin(self, state):
        self.engine = state.engine

g = np.random.default_rng(0)
X = g.random((25_000, 12)).astype(np.float32)
X[X < 0.7] = 0
y = g.integers(0, 3, X.shape[0])
spy = Spy()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    net = netlearn.Network([12, 6, 3], seed=0)
    net.fit((X, y), 1, 50, 0.1, seed=1, callbacks=[spy])
ref = netlearn.Network([12, 6, 3], seed=0)
ref.fit((X, y), 1, 50, 0.1, seed=1, engine="numpy")
try:
    netlearn.Network([12, 6, 3]).fit((X[:100], y[:100]), 1, 50, 0.1, engine="numba")
    numba_error = ""
except ValueError as exc:
    numba_error = str(exc)
print(json.dumps({"engine": spy.engine, "warnings": [str(w.message) for w in caught],
                  "same": all(np.array_equal(a, b) for a, b in zip(net.parameters(), ref.parameters())),
                  "numba_error": numba_error}))
"""


def test_no_writable_cache_means_numpy_with_one_warning(tmp_path):
    # A copy of the package whose kernel folder cannot hold a __pycache__ folder (a file of that name is
    # in the way: this holds even for root, who may write to read-only folders), and a home and
    # NUMBA_CACHE_DIR under a plain file, so that no cache locator of Numba's can make its folder.
    src = Path(netlearn.__file__).parent
    pkg = tmp_path / "site" / "netlearn"
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    (pkg / "engine" / "__pycache__").write_text("")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"), HOME=str(blocker),
               XDG_CACHE_HOME=str(blocker / "cache"), NUMBA_CACHE_DIR=str(blocker / "numba"),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("NETLEARN_ENGINE", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["engine"] == "numpy"
    assert result["same"]                     # it trained, on the NumPy path
    assert len(result["warnings"]) == 1, result["warnings"]
    assert "cache" in result["warnings"][0] and "NUMBA_CACHE_DIR" in result["warnings"][0]
    assert "NUMBA_CACHE_DIR" in result["numba_error"] and "cannot cache function" not in result["numba_error"]


STALE_SCRIPT = r"""
import hashlib
import numpy as np
import netlearn
g = np.random.default_rng(0)
X = g.random((200, 12)).astype(np.float32)
y = g.integers(0, 3, X.shape[0])
net = netlearn.Network([12, 6, 3], seed=0)
net.fit((X, y), 1, 10, 0.1, seed=1, engine="numba")
print(hashlib.sha256(b"".join(p.tobytes() for p in net.parameters())).hexdigest())
"""


def test_an_edit_to_any_engine_file_makes_the_cached_kernels_stale(tmp_path):
    # The example-by-example kernel lives in single.py and carries the output delta of step.py: after an
    # edit of step.py alone, a cache keyed on single.py's own file would still run the old delta.
    src = Path(netlearn.__file__).parent
    pkg = tmp_path / "site" / "netlearn"
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("NETLEARN_ENGINE", None)

    def run(cache: str) -> str:
        out = subprocess.run([sys.executable, "-c", STALE_SCRIPT], capture_output=True, text=True,
                             env=dict(env, NUMBA_CACHE_DIR=str(tmp_path / cache)), cwd=tmp_path, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    before = run("cache")
    assert run("cache") == before  # (loaded from the cache: the same code)
    step = pkg / "engine" / "step.py"
    text = step.read_text()
    edited = text.replace("        return (a - t) * inv_m\n", "        return (a - t) * (inv_m + inv_m)\n", 1)
    assert edited != text
    step.write_text(edited)
    after = run("cache")
    assert after != before
    assert after == run("fresh-cache")
