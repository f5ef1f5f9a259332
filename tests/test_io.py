"""Saving and loading: netlearn's JSON (exact round trip) and the book's network2.py format."""
import json

import numpy as np
import pytest

import netlearn
from netlearn import Dense, Network, Sequential, Tanh, Softmax, load

from conftest import make_blobs


def _same(a, b):
    pa, pb = a.parameters(), b.parameters()
    return len(pa) == len(pb) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(pa, pb))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_netlearn_format_round_trips_exactly(tmp_path, dtype):
    X, y = make_blobs(n=60)
    net = Network([8, 7, 3], activation="tanh", cost="log-likelihood", seed=0, dtype=dtype)
    net.fit((X, y), 2, 10, 0.1, seed=0)
    net.save(tmp_path / "m.json")
    back = load(tmp_path / "m.json")
    assert isinstance(back, Network) and back.sizes == [8, 7, 3] and back.cost.name == "log-likelihood"
    assert _same(net, back)
    np.testing.assert_array_equal(net.predict_proba(X), back.predict_proba(X))


def test_any_module_stack_round_trips(tmp_path):
    net = Sequential([Dense(4, 6, seed=0), Tanh(), Dense(6, 5, init="he", seed=1), netlearn.ReLU(),
                      Dense(5, 3, seed=2), Softmax()], cost="log-likelihood")
    net.save(tmp_path / "s.json")
    back = load(tmp_path / "s.json")
    assert type(back) is Sequential and [type(m) for m in back.modules] == [type(m) for m in net.modules]
    assert _same(net, back)


def test_book_format_keys_and_shapes(tmp_path):
    net = Network([8, 7, 3], seed=0)
    net.save(tmp_path / "b.json", format="network2")
    d = json.loads((tmp_path / "b.json").read_text())
    assert d["sizes"] == [8, 7, 3] and d["cost"] == "CrossEntropyCost"
    assert [np.shape(w) for w in d["weights"]] == [(7, 8), (3, 7)]
    assert [np.shape(b) for b in d["biases"]] == [(7, 1), (3, 1)]
    back = load(tmp_path / "b.json")
    assert isinstance(back, Network) and _same(net, back)


def test_reads_a_file_written_by_the_books_network2(tmp_path):
    """The book's save(): json.dump of sizes, weights (n_out, n_in), biases (n_out, 1), cost name only."""
    g = np.random.default_rng(0)
    sizes = [5, 4, 2]
    weights = [g.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
    biases = [g.standard_normal((y, 1)) for y in sizes[1:]]
    data = {"sizes": sizes, "weights": [w.tolist() for w in weights], "biases": [b.tolist() for b in biases],
            "cost": "QuadraticCost"}
    (tmp_path / "book.json").write_text(json.dumps(data))
    net = load(tmp_path / "book.json", dtype="float64")
    assert net.cost.name == "quadratic" and net.output == "sigmoid"
    x = g.standard_normal((5, 1))
    a = x
    for w, b in zip(weights, biases):  # the book's feedforward
        a = 1 / (1 + np.exp(-(w @ a + b)))
    np.testing.assert_allclose(net.predict_proba(x.T)[0], a[:, 0], rtol=1e-12)


def test_book_format_refuses_what_it_cannot_hold(tmp_path):
    net = Sequential([Dense(4, 6), Tanh(), Dense(6, 5), netlearn.ReLU(), Dense(5, 3), Softmax()])
    with pytest.raises(ValueError, match="one activation for all hidden layers"):
        net.save(tmp_path / "x.json", format="network2")
    assert not (tmp_path / "x.json").exists()
    with pytest.raises(ValueError, match="'format'"):
        Network([2, 2]).save(tmp_path / "x.json", format="pickle")


@pytest.mark.parametrize("content,match", [
    ("not json", "invalid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"hello": 1}', "not a netlearn or network2 model"),
    ('{"sizes": [2, 2], "weights": [[[1, 2]]], "biases": [[[1], [2]]], "cost": "CrossEntropyCost"}', "shape"),
    ('{"sizes": [2, 2], "weights": [[[1, 2], [3, 4]]], "biases": [[[1], [2]]], "cost": "FooCost"}', "cost"),
    ('{"sizes": [2, 2], "weights": [[[1, NaN], [3, 4]]], "biases": [[[1], [2]]], "cost": "CrossEntropyCost"}',
     "NaN"),
    ('{"format": "netlearn", "version": 1, "cost": "quadratic", "modules": [{"type": "Evil"}]}', "unknown type"),
    ('{"format": "netlearn", "version": 7, "modules": []}', "version"),
    ('{"format": "netlearn", "version": 1, "cost": "quadratic", "modules": [{"type": "Dense", '
     '"config": {"n_in": 2, "n_out": 1}, "params": [[1, 2]]}]}', "parameter arrays"),
])
def test_malformed_model_files(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(netlearn.ModelFileError, match=match) as exc:
        load(p)
    assert str(p) in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_binary_and_missing_files(tmp_path):
    p = tmp_path / "bin.json"
    p.write_bytes(b"\x80\x81\xff\x00")
    with pytest.raises(netlearn.ModelFileError, match="UTF-8"):
        load(p)
    with pytest.raises(FileNotFoundError, match="No model file"):
        load(tmp_path / "nope.json")


def test_save_is_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves the old file intact and no temporary behind."""
    net = Network([3, 2], seed=0)
    path = tmp_path / "m.json"
    net.save(path)
    old = path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        Network([3, 4, 2], seed=1).save(path)
    assert path.read_text() == old
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    with pytest.raises(ValueError, match="does not exist"):
        net.save(tmp_path / "no" / "such" / "dir.json")
