"""The book's mnist.pkl.gz through the restricted unpickler, and Keras' mnist.npz."""
from __future__ import annotations

import gzip
import io
import os
import pickle
import struct

import numpy as np
import pytest

from netlearn.data import DataError, UnsafePickleError, load_mnist, load_mnist_npz, load_mnist_pkl
from netlearn.data.formats import restricted_loads
from netlearn.data.mnist import N_VALIDATION


class Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` (BINSTRING), as the book's Python 2 pickle does."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj if len(obj) < 256
                   else pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def book_structure(seed=0, sizes=(6, 4, 3)):
    rng = np.random.default_rng(seed)
    return tuple((rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n).astype(np.int64)) for n in sizes)


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    # NumPy 1 (which wrote the book's file) names the reconstructor numpy.core.multiarray._reconstruct.
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def assert_same(loaded, expected):
    assert len(loaded) == 3
    for (X, y), (Xe, ye) in zip(loaded, expected):
        assert X.dtype == np.float32 and X.shape == Xe.shape
        np.testing.assert_array_equal(X, Xe)
        np.testing.assert_array_equal(y, ye)


def test_book_pickle_python2_style(tmp_path):
    data = book_structure()
    raw = py2_pickle(data)
    assert b"numpy.core.multiarray" in raw and b"_codecs" not in raw
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(raw))
    assert_same(load_mnist_pkl(path), data)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_book_structure_written_by_python3(tmp_path, protocol):
    data = book_structure(1)
    path = tmp_path / "mnist.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))   # protocol 2 uses _codecs.encode for bytes
    assert_same(load_mnist_pkl(path), data)


def test_load_mnist_falls_back_to_the_pickle(tmp_path):
    data = book_structure(2)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "mnist.pkl.gz").write_bytes(gzip.compress(py2_pickle(data)))
    assert_same(load_mnist(tmp_path), data)


MARKER = "netlearn-pwned-marker"


class Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


class EvalEvil:
    def __reduce__(self):
        return eval, ("__import__('os').system('false')",)


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_malicious_pickle_is_refused_and_never_run(tmp_path, protocol):
    marker = tmp_path / MARKER
    payload = ((np.zeros((2, 784), np.float32), Evil(marker)),) * 3
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(payload, protocol=protocol)))
    with pytest.raises(UnsafePickleError, match="system.*refuses") as err:
        load_mnist_pkl(path)
    assert not marker.exists()
    assert str(path) in str(err.value)
    with pytest.raises(DataError):          # UnsafePickleError is a DataError (a ValueError)
        load_mnist_pkl(path)
    assert not marker.exists()


@pytest.mark.parametrize("obj", [EvalEvil(), pickle.loads, np.load])
def test_other_globals_are_refused(obj):
    with pytest.raises(UnsafePickleError):
        restricted_loads(pickle.dumps(obj))


def test_codecs_encode_is_narrowed_to_latin1():
    # a hand-written pickle calling _codecs.encode("x", "rot13")
    raw = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(UnsafePickleError, match="latin-1"):
        restricted_loads(raw)


@pytest.mark.parametrize("obj, message", [
    ((1, 2), "book's structure"),
    (((np.zeros((2, 784), np.float32), np.zeros(3, np.int64)),) * 3, "2 images but 3 labels"),
    (((np.full((2, 784), 2.0, np.float32), np.zeros(2, np.int64)),) * 3, r"in \[0, 1\]"),
    (((np.zeros((2, 784), np.float32), np.full(2, 10)),) * 3, "labels must be 0-9"),
    (((np.zeros((2, 784), np.float32), np.zeros(2, np.float32)),) * 3, "expected integers"),
])
def test_pickle_with_wrong_contents(tmp_path, obj, message):
    path = tmp_path / "mnist.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(DataError, match=message):
        load_mnist_pkl(path)


def test_truncated_pickle(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(book_structure(), protocol=2))[:300])
    with pytest.raises(DataError, match="cannot be read"):
        load_mnist_pkl(path)
    path.write_bytes(gzip.compress(pickle.dumps(book_structure(), protocol=2)[:300]))
    with pytest.raises(DataError, match="not a readable pickle"):
        load_mnist_pkl(path)


def keras_arrays(n_train=N_VALIDATION + 4, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    return dict(x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                y_train=rng.integers(0, 10, n_train).astype(np.uint8),
                x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                y_test=rng.integers(0, 10, n_test).astype(np.uint8))


def test_keras_npz(tmp_path):
    a = keras_arrays()
    path = tmp_path / "mnist.npz"
    np.savez_compressed(path, **a)
    (X, y), (Xv, yv), (Xt, yt) = load_mnist_npz(path)
    assert X.shape == (4, 784) and Xv.shape == (N_VALIDATION, 784) and Xt.shape == (3, 784)
    assert X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    np.testing.assert_allclose(Xt, a["x_test"].reshape(3, -1) / 255, rtol=1e-6)
    np.testing.assert_array_equal(yv, a["y_train"][4:])


def test_load_mnist_falls_back_to_npz(tmp_path):
    (tmp_path / "mnist").mkdir()
    np.savez(tmp_path / "mnist" / "mnist.npz", **keras_arrays())
    assert load_mnist(tmp_path)[0][0].shape == (4, 784)


def test_npz_missing_key_and_object_arrays(tmp_path):
    a = keras_arrays()
    del a["y_test"]
    np.savez(tmp_path / "a.npz", **a)
    with pytest.raises(DataError, match="lacks the array.*y_test"):
        load_mnist_npz(tmp_path / "a.npz")
    a = keras_arrays()
    a["y_test"] = np.array([Evil("x")] * 3, dtype=object)
    np.savez(tmp_path / "b.npz", **a)
    with pytest.raises(DataError, match="cannot be read"):
        load_mnist_npz(tmp_path / "b.npz")


def test_npz_not_a_zip(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(DataError, match="cannot be read as an .npz"):
        load_mnist_npz(tmp_path / "c.npz")
