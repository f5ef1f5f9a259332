"""Fuzzing the readers of untrusted files: IDX, mnist.pkl.gz, npz, JSON models and checkpoints (issue 13).

Hypothesis mutates valid files at random -- bytes flipped, truncated, extended, overwritten, headers
altered, JSON values swapped for other types, deeply nested or huge -- and every case must end either
in a result or in netlearn's own error (DataError, ModelFileError, CheckpointError, DivergenceError),
never another exception, with the memory it allocated (traced by tracemalloc) within a bound that the
file's size justifies.  While a case runs, the address space is also capped a little above what the
process already uses, so that a reader that tried a huge allocation would fail the test with a
MemoryError instead of hurting the machine.

CI runs a few dozen cases per reader (well under a minute in all, derandomized so that it is the same
every time).  A longer, random run: ``NETLEARN_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz.py``.
"""
from __future__ import annotations

import contextlib
import copy
import gzip
import json
import os
import pickle
import re
import resource
import struct
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import netlearn  # noqa: E402
from netlearn import ModelFileError  # noqa: E402
from netlearn.checkpoints import Checkpoint, CheckpointError, load_checkpoint  # noqa: E402
from netlearn.data import DataError, load_mnist_npz, load_mnist_pkl, read_idx  # noqa: E402
from netlearn.training import DivergenceError  # noqa: E402

# A NumPy overflow warning would mean a value from the file was silently changed: an error here.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

LONG = int(os.environ.get("NETLEARN_FUZZ_EXAMPLES", "0") or 0)
FUZZ = settings(max_examples=LONG or 40, deadline=None, derandomize=not LONG, database=None,
                suppress_health_check=list(HealthCheck))
MB = 1 << 20
WORK = Path(tempfile.mkdtemp(prefix="netlearn-fuzz-"))


@contextlib.contextmanager
def address_space_headroom(extra: int = 2 << 30):
    """Cap the address space at what the process maps now plus ``extra`` bytes (restored afterwards)."""
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    old = resource.getrlimit(resource.RLIMIT_AS)
    cap = used + extra if old[1] == resource.RLIM_INFINITY else min(used + extra, old[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)


def check(fn, path: Path, allowed: tuple, bound: int):
    """Run ``fn(path)``: it returns, or raises one of ``allowed``; the memory it traced stays under ``bound``."""
    tracemalloc.start()
    try:
        with address_space_headroom():
            try:
                fn(path)
            except allowed:
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= bound, f"{fn.__name__} traced {peak} bytes for a file of {path.stat().st_size} bytes"


# -- mutations -------------------------------------------------------------------------------------------------
@st.composite
def mutated(draw, base: bytes) -> bytes:
    """``base`` with a few random edits, biased towards the header (where sizes are declared)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        pos = draw(st.one_of(st.integers(0, min(n, 64)), st.integers(0, max(n, 1))))
        op = draw(st.sampled_from(["flip", "overwrite", "truncate", "extend", "insert", "int32"]))
        if op == "flip" and pos < n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            data[pos:pos + 8] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[pos:]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "int32":  # a size field: big-endian (IDX) or little-endian (pickle, npz)
            value = draw(st.sampled_from([0, 1, 2 ** 31 - 1, 2 ** 32 - 1, 10 ** 9, 60000]))
            data[pos:pos + 4] = struct.pack(draw(st.sampled_from([">I", "<I"])), value)
    return bytes(data)


def write(name: str, data: bytes) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


# -- IDX -------------------------------------------------------------------------------------------------------
def _idx(a: np.ndarray) -> bytes:
    return bytes([0, 0, 8, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape) + a.tobytes()


IDX = _idx(np.random.default_rng(0).integers(0, 256, (6, 5, 5), dtype=np.uint8))
IDX_GZ = gzip.compress(IDX, mtime=0)


@FUZZ
@given(st.data())
def test_fuzz_idx(data):
    gz = data.draw(st.booleans())
    raw = data.draw(mutated(IDX_GZ if gz else IDX))
    # A gzip may justify up to 1032 bytes per byte; the reader's buffers add a few chunk sizes.
    check(read_idx, write("x-idx3-ubyte" + (".gz" if gz else ""), raw), (DataError,), 4 * MB + 1100 * len(raw))


@FUZZ
@given(st.data())
def test_fuzz_idx_declared_dimensions(data):
    dims = data.draw(st.lists(st.integers(0, 2 ** 32 - 1), min_size=1, max_size=4))
    body = data.draw(st.binary(max_size=256))
    raw = bytes([0, 0, data.draw(st.sampled_from([8, 9, 11, 12, 13, 14])), len(dims)]) + \
        b"".join(struct.pack(">I", d) for d in dims) + body
    if data.draw(st.booleans()):
        raw = gzip.compress(raw)
    check(read_idx, write("dims-idx", raw), (DataError,), 4 * MB + 1100 * len(raw))


# -- the book's pickle -------------------------------------------------------------------------------------------
def _book_pickle(protocol: int) -> bytes:
    rng = np.random.default_rng(1)
    splits = tuple((rng.random((4, 6), dtype=np.float32), rng.integers(0, 10, 4)) for _ in range(3))
    return pickle.dumps(splits, protocol=protocol)


PICKLES = [_book_pickle(p) for p in (2, 4, 5)]


@FUZZ
@given(st.data())
def test_fuzz_mnist_pkl(data):
    raw = data.draw(mutated(data.draw(st.sampled_from(PICKLES))))
    if data.draw(st.booleans()):
        raw = gzip.compress(raw)
    check(load_mnist_pkl, write("mnist.pkl.gz", raw), (DataError,), 4 * MB + 1100 * len(raw))


# -- npz -------------------------------------------------------------------------------------------------------
def _npz(compressed: bool) -> bytes:
    rng = np.random.default_rng(2)
    arrays = {"x_train": rng.integers(0, 256, (10_001, 2, 2), dtype=np.uint8),
              "y_train": rng.integers(0, 10, 10_001, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (3, 2, 2), dtype=np.uint8), "y_test": rng.integers(0, 10, 3)}
    path = WORK / "base.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path.read_bytes()


NPZS = [_npz(False), _npz(True)]


@FUZZ
@given(st.data())
def test_fuzz_npz(data):
    base = data.draw(st.sampled_from(NPZS))
    raw = data.draw(mutated(base))
    # the arrays themselves (about 50 KB here) are converted to float32 (x4) and split
    check(load_mnist_npz, write("mnist.npz", raw), (DataError,), 8 * MB + 1100 * len(raw))


# -- JSON: models and checkpoints --------------------------------------------------------------------------------
def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:4]):  # the first few elements of long arrays are enough
            yield from _paths(v, prefix + (i,))


REPLACEMENTS = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 63), st.floats(allow_nan=False),
    st.sampled_from([10 ** 30, -1, 0, 1e308, "x", "", [], {}, [None], {"__ndarray__": [1], "dtype": "object",
                     "shape": [1]}, {"__ndarray__": [], "dtype": "float32", "shape": [10 ** 9]}]),
    st.integers(1, 100_000).map(lambda depth: f"__DEEP_{depth}__"),  # spliced in as text (see below)
    st.integers(1, 200_000).map(lambda n: [0.5] * n),
)


@st.composite
def mutated_json(draw, base) -> bytes:
    """``base`` (a JSON value) with values swapped for others, keys removed, or its text damaged."""
    if draw(st.integers(0, 3)) == 0:
        return draw(mutated(json.dumps(base).encode()))
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(draw(REPLACEMENTS))  # never share the strategy's constants
    text = json.dumps(doc)
    # Deep nesting is written as text: Python's own json module could not write (or read) it.
    text = re.sub(r'"__DEEP_(\d+)__"', lambda m: "[" * int(m[1]) + "]" * int(m[1]), text)
    return text.encode()


def _model(**kw) -> dict:
    net = netlearn.Network([3, 4, 2], seed=0, **kw)
    net.save(WORK / "m.json")
    return json.loads((WORK / "m.json").read_text())


def _network2() -> dict:
    netlearn.Network([3, 4, 2], seed=0).save(WORK / "b.json", format="network2")
    return json.loads((WORK / "b.json").read_text())


MODELS = [_model(), _model(batch_norm=True, dropout=0.1), _network2()]


@FUZZ
@given(st.data())
def test_fuzz_model_json(data):
    raw = data.draw(mutated_json(data.draw(st.sampled_from(MODELS))))
    # json.loads keeps about 40 bytes per number in Python objects; the arrays are small
    check(netlearn.load, write("model.json", raw), (ModelFileError,), 8 * MB + 64 * len(raw))


TRAIN = (np.random.default_rng(3).random((20, 3)), np.arange(20) % 2)


def _checkpoint() -> dict:
    folder = WORK / "ck"
    netlearn.Network([3, 4, 2], seed=0).fit(TRAIN, 1, 5, 0.5, lmbda=1.0, seed=0, optimizer="momentum",
                                            callbacks=[Checkpoint(folder)], engine="numpy")
    return json.loads((folder / "checkpoint-0001.json").read_text())


CHECKPOINT = _checkpoint()


def resume(path: Path) -> None:
    """Read the checkpoint and continue its run for one more epoch."""
    load_checkpoint(path)
    netlearn.Network([3, 4, 2], seed=0).fit(TRAIN, 2, 5, 0.5, lmbda=1.0, seed=0, optimizer="momentum",
                                            resume=path, engine="numpy")


@FUZZ
@given(st.data())
def test_fuzz_checkpoint(data):
    raw = data.draw(mutated_json(CHECKPOINT))
    check(resume, write("checkpoint.json", raw), (CheckpointError, ModelFileError, DivergenceError),
          8 * MB + 64 * len(raw))


def test_the_unmutated_files_load():
    """The bases are valid, so that the mutations explore near real files (and the harness can pass)."""
    assert read_idx(write("ok-idx", IDX)).shape == (6, 5, 5) and read_idx(write("ok-idx.gz", IDX_GZ)).shape == (6, 5, 5)
    for p in PICKLES:
        assert load_mnist_pkl(write("ok.pkl", p))[0][0].shape == (4, 6)
    for z in NPZS:
        assert load_mnist_npz(write("ok.npz", z))[0][0].shape == (1, 4)
    for m in MODELS:
        assert netlearn.load(write("ok.json", json.dumps(m).encode())).n_out == 2
    resume(write("ok-ck.json", json.dumps(CHECKPOINT).encode()))
