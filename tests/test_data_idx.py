"""IDX reading and the data root: small files written here, including corrupt ones."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from netlearn.data import DataError, load_fashion_mnist, load_mnist, read_idx
from netlearn.data import mnist as M

N_TRAIN_FILE = M.N_VALIDATION + 5  # the smallest training file the book's split accepts, plus a few


def idx_bytes(a: np.ndarray, type_byte: int = 0x08) -> bytes:
    return bytes([0, 0, type_byte, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape) + a.tobytes()


def write_idx(path, a: np.ndarray, gz: bool = True):
    data = idx_bytes(a)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_set(folder, n_train=N_TRAIN_FILE, n_test=7, side=2, gz=True, seed=0):
    """Four tiny IDX files (``side`` x ``side`` images) in ``folder``; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = [rng.integers(0, 256, (n_train, side, side), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8),
              rng.integers(0, 256, (n_test, side, side), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8)]
    for stem, a in zip(M.FILES, arrays):
        write_idx(folder / (stem + (".gz" if gz else "")), a, gz)
    return arrays


@pytest.fixture(autouse=True)
def no_download(monkeypatch, tmp_path):
    """No test here may reach the network: the cache is a temp folder and downloading fails loudly."""
    monkeypatch.delenv("NETLEARN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def refuse(*a, **k):
        raise AssertionError("download attempted")

    monkeypatch.setattr("netlearn.data.download.download", refuse)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = read_idx(write_idx(tmp_path / "x", a, gz))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\0", "longer than its header says"),
    (lambda b: b"\x08\x03" + b[2:], "bad magic number"),
    (lambda b: b[:2] + b"\x42" + b[3:], "bad magic number"),   # unknown element type
    (lambda b: b[:6], "header is incomplete"),
    (lambda b: b"", "bad magic number"),
])
def test_read_idx_refuses_damaged_files(tmp_path, gz, damage, message):
    raw = damage(idx_bytes(np.zeros((3, 2, 2), np.uint8)))
    p = tmp_path / "damaged"
    p.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(DataError, match=message) as err:
        read_idx(p)
    assert str(p) in str(err.value)


def test_read_idx_refuses_broken_gzip_streams(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((50, 4, 4), np.uint8)))
    truncated = tmp_path / "cut.gz"
    truncated.write_bytes(good[: len(good) // 2])
    garbage = tmp_path / "garbage.gz"
    garbage.write_bytes(good[:10] + bytes(range(256)) * 4)
    for p in (truncated, garbage):
        with pytest.raises(DataError, match="cannot be read as an IDX file"):
            read_idx(p)


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_split_and_scaling(tmp_path, gz):
    tr_x, tr_y, te_x, te_y = make_set(tmp_path / "mnist", gz=gz)
    (X, y), (Xv, yv), (Xt, yt) = load_mnist(tmp_path)
    assert X.shape == (5, 4) and Xv.shape == (M.N_VALIDATION, 4) and Xt.shape == (7, 4)
    for a in (X, Xv, Xt):
        assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    np.testing.assert_allclose(X, tr_x[:5].reshape(5, 4) / 255, rtol=1e-6)
    np.testing.assert_array_equal(yv, tr_y[5:])   # validation = the last 10,000 training images
    np.testing.assert_array_equal(yt, te_y)
    assert np.issubdtype(y.dtype, np.integer)


def test_fashion_mnist_has_its_own_folder(tmp_path):
    make_set(tmp_path / "fashion-mnist", seed=1)
    (X, y), _, _ = load_fashion_mnist(tmp_path)
    assert X.shape == (5, 4) and y.max() <= 9
    with pytest.raises(DataError, match="mnist files missing"):
        load_mnist(tmp_path)


def test_environment_variable_is_an_explicit_root(tmp_path, monkeypatch):
    make_set(tmp_path / "mnist")
    monkeypatch.setenv("NETLEARN_DATA", str(tmp_path))
    assert load_mnist()[0][0].shape == (5, 4)


def test_explicit_root_with_missing_files_names_them_and_the_command(tmp_path):
    make_set(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte" in msg and "train-images" not in msg
    assert f"netlearn data download --data mnist --data-dir {tmp_path}" in msg


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")


def test_count_mismatch(tmp_path):
    make_set(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(6, np.uint8))
    with pytest.raises(DataError, match="7 images but t10k-labels-idx1-ubyte.gz has 6 labels"):
        load_mnist(tmp_path)


def test_labels_out_of_range(tmp_path):
    make_set(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.full(7, 10, np.uint8))
    with pytest.raises(DataError, match="label 10"):
        load_mnist(tmp_path)


def test_swapped_files_are_caught(tmp_path):
    arrays = make_set(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", arrays[0])   # images where labels belong
    with pytest.raises(DataError, match="expected 1-D unsigned bytes"):
        load_mnist(tmp_path)


def test_train_and_test_image_sizes_must_agree(tmp_path):
    make_set(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", np.zeros((7, 3, 3), np.uint8))
    with pytest.raises(DataError, match="same size"):
        load_mnist(tmp_path)


def test_too_few_training_images_for_the_split(tmp_path):
    make_set(tmp_path / "mnist", n_train=100)
    with pytest.raises(DataError, match="needs more than 10000"):
        load_mnist(tmp_path)


def test_inspect_folder_reports_each_file(tmp_path):
    folder = tmp_path / "mnist"
    make_set(folder)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"junk")
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    st = {s.name: s for s in M.inspect_folder(folder)}
    assert st["train-images-idx3-ubyte"].ok and "10005 images 2x2" in st["train-images-idx3-ubyte"].detail
    assert st["train-labels-idx1-ubyte"].path is None and not st["train-labels-idx1-ubyte"].ok
    assert not st["t10k-images-idx3-ubyte"].ok and "not an IDX file" in st["t10k-images-idx3-ubyte"].detail
    assert st["t10k-labels-idx1-ubyte"].ok


def test_cache_root_calls_the_downloader(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("netlearn.data.download.download", lambda *a, **k: calls.append(a) or [])
    with pytest.raises(DataError, match="missing"):
        load_mnist()
    assert calls and calls[0][0] == "mnist" and str(calls[0][1]).startswith(str(tmp_path / "cache"))
