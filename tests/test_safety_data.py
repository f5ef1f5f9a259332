"""Data files whose sizes lie, empty data sets, unreadable paths: one DataError, bounded memory (issue 13)."""
from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from netlearn.cli import main
from netlearn.data import DataError, UnsafePickleError, load_mnist, load_mnist_npz, load_mnist_pkl, read_idx
from netlearn.data import download as D
from netlearn.data import idx as idx_mod
from netlearn.data.formats import restricted_loads
from netlearn.data.layout import FILES, N_VALIDATION

from helpers import idx_bytes, one_line, peak_bytes  # noqa: E402

SIDE = 3
MB = 1 << 20


def write_set(folder, n_train=N_VALIDATION + 3, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = [rng.integers(0, 256, (n_train, SIDE, SIDE), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8),
              rng.integers(0, 256, (n_test, SIDE, SIDE), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8)]
    for stem, a in zip(FILES, arrays):
        (folder / (stem + ".gz")).write_bytes(gzip.compress(idx_bytes(a), mtime=0))
    return folder


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("NETLEARN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(D.MIRRORS, "mnist", ("file:///nonexistent-netlearn-mirror/",))


# -- sizes that lie -----------------------------------------------------------------------------
def test_gzip_header_claiming_2_31_images_is_refused_before_unpacking(tmp_path):
    # A body of zeros compresses about 1000:1; the header claims 2^31 images of 28x28.
    body = gzip.compress(idx_bytes(np.zeros(4 * MB, np.uint8), dims=(2 ** 31, 28, 28)), compresslevel=9)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(body)
    err, peak = peak_bytes(read_idx, path)
    assert isinstance(err, DataError) and "header lies" in str(err) and str(path) in str(err)
    assert peak < 2 * MB


def test_gzip_header_within_deflate_ratio_but_short_body_stops_at_the_data(tmp_path):
    # Declares 40 MB (within 1032x of the file), carries 1 MB: the buffer grows with the data, not the header.
    noise = np.random.default_rng(0).integers(0, 256, MB, dtype=np.uint8)  # incompressible
    body = gzip.compress(idx_bytes(noise, dims=(40 * MB,)))
    (tmp_path / "a.gz").write_bytes(body)
    assert 40 * MB < idx_mod.MAX_DEFLATE_RATIO * len(body)
    err, peak = peak_bytes(read_idx, tmp_path / "a.gz")
    assert isinstance(err, DataError) and "truncated" in str(err)
    assert peak < 24 * MB


def test_raw_header_larger_than_the_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "raw"
    path.write_bytes(idx_bytes(np.zeros(10, np.uint8), dims=(2 ** 31, 28, 28)))
    err, peak = peak_bytes(read_idx, path)
    assert isinstance(err, DataError) and "truncated" in str(err)
    assert peak < MB


def test_idx_reads_back_exactly(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "x.gz").write_bytes(gzip.compress(idx_bytes(a)))
    (tmp_path / "x").write_bytes(idx_bytes(a))
    for p in ("x.gz", "x"):
        b = read_idx(tmp_path / p)
        assert np.array_equal(a, b) and not b.flags.writeable


def _reduce_pickle(fn, args) -> bytes:
    """A protocol-2 pickle calling ``fn(*args)`` where fn is given as (module, name)."""
    module, name = fn
    return (b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + pickle.dumps(args, protocol=2)[2:-1]
            + b"R.")


def test_pickle_calling_ndarray_directly_is_refused():
    data = _reduce_pickle(("numpy", "ndarray"), ((10 ** 10,),))
    assert len(data) < 120
    err, peak = peak_bytes(restricted_loads, data)
    assert isinstance(err, UnsafePickleError) and "numpy.ndarray" in str(err)
    assert peak < MB


def test_pickle_reconstruct_with_a_huge_shape_is_refused():
    data = _reduce_pickle(("numpy.core.multiarray", "_reconstruct"), (None, (10 ** 9,), b"b"))  # subtype None
    err, peak = peak_bytes(restricted_loads, data)
    assert isinstance(err, UnsafePickleError)
    assert peak < MB


def test_pickle_reconstruct_huge_shape_with_the_real_subtype_is_refused():
    shape = pickle.dumps((10 ** 9,), protocol=2)[2:-1]
    data = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + shape + b"C\x01b\x87R.")
    err, peak = peak_bytes(restricted_loads, data)
    assert isinstance(err, UnsafePickleError) and "uninitialised" in str(err)
    assert peak < MB


def test_pickle_array_with_state_larger_than_its_data_is_refused():
    good = pickle.dumps(np.arange(4, dtype=np.float32), protocol=2)
    bad = good.replace(b"K\x04\x85", b"J" + struct.pack("<i", 10 ** 9) + b"\x85")  # the shape (4,) -> (10**9,)
    assert bad != good
    err, peak = peak_bytes(restricted_loads, bad)
    assert isinstance(err, DataError)
    assert peak < MB


def test_pickle_memo_index_far_beyond_the_payload_is_refused():
    data = b"\x80\x02K\x01r\xff\xff\xff\xff."  # LONG_BINPUT 4294967295: a 32 GB memo table
    err, peak = peak_bytes(restricted_loads, data)
    assert isinstance(err, UnsafePickleError) and "memo" in str(err)
    assert peak < MB


def test_pickle_frombuffer_length_must_match_shape():
    data = _reduce_pickle(("numpy._core.numeric", "_frombuffer"), (b"abcd", np.dtype("f8"), (10 ** 6,), "C"))
    err, _ = peak_bytes(restricted_loads, data)
    assert isinstance(err, DataError)


def test_pickle_object_dtype_is_refused():
    data = pickle.dumps(np.array([1, "a"], dtype=object), protocol=2)
    with pytest.raises(DataError):
        restricted_loads(data)


def test_real_array_pickles_still_load():
    for protocol in (2, 4, 5):
        a = np.arange(12, dtype=np.float32).reshape(3, 4)
        b = restricted_loads(pickle.dumps(((a, np.arange(3)),), protocol=protocol))
        assert np.array_equal(b[0][0], a) and b[0][0].dtype == np.float32


def test_gzip_bomb_pickle_is_refused_within_the_bound(tmp_path, monkeypatch):
    from netlearn.data import formats

    monkeypatch.setattr(formats, "MAX_PICKLE_BYTES", 4 * MB)
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(b"\0" * (16 * MB), compresslevel=9))
    err, peak = peak_bytes(load_mnist_pkl, path)
    assert isinstance(err, DataError) and "unpacks to more than" in str(err)
    assert peak < 12 * MB


def _npz_with_header(tmp_path, shape, dtype="|u1", data=b"\0" * 16, compress=False) -> os.PathLike:
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    path = tmp_path / "mnist.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as zf:
        for k in ("x_train", "y_train", "x_test", "y_test"):
            zf.writestr(k + ".npy", buf.getvalue() + data)
    return path


def test_npz_header_declaring_more_than_the_member_holds_is_refused(tmp_path):
    for compress in (False, True):
        path = _npz_with_header(tmp_path, (10 ** 6, 1000, 1000), compress=compress)
        err, peak = peak_bytes(load_mnist_npz, path)
        assert isinstance(err, DataError) and "declares shape" in str(err)
        assert peak < MB


def test_npz_object_and_structured_dtypes_are_refused(tmp_path):
    for dtype in ("|O", [("a", "<i4")], "|V8"):
        path = _npz_with_header(tmp_path, (2,), dtype=dtype)
        with pytest.raises(DataError, match="refused|cannot be read"):
            load_mnist_npz(path)


# -- empty and unreadable data -----------------------------------------------------------------
def test_zero_test_images_is_an_error_and_not_ready(tmp_path, capsys):
    root = tmp_path / "root"
    write_set(root / "mnist", n_test=0)
    with pytest.raises(DataError, match="holds no images"):
        load_mnist(root)
    assert main(["data", "info", "--data-dir", str(root)]) == 1
    out = capsys.readouterr().out
    assert "(not ready)" in out and "holds no images" in out and "(ready)" not in out
    assert main(["train", "--data-dir", str(root), "--layers", "9,3,10", "--epochs", "1", "--quiet"]) == 2
    assert "holds no images" in one_line(capsys)


def test_too_few_training_images_is_not_ready(tmp_path, capsys):
    root = tmp_path / "root"
    write_set(root / "mnist", n_train=50)
    assert main(["data", "info", "--data-dir", str(root)]) == 1
    assert "only 50 images" in capsys.readouterr().out


def test_folder_where_a_file_should_be(tmp_path, capsys):
    root = tmp_path / "root"
    folder = write_set(root / "mnist")
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    (folder / "t10k-images-idx3-ubyte.gz").mkdir()
    with pytest.raises(DataError, match="is a folder, not a data file"):
        load_mnist(root)
    assert main(["data", "info", "--data-dir", str(root)]) == 1
    assert "is a folder" in capsys.readouterr().out
    assert main(["train", "--data-dir", str(root), "--layers", "9,3,10", "--epochs", "1", "--quiet"]) == 2
    assert "t10k-images-idx3-ubyte.gz is a folder" in one_line(capsys)


def test_symlink_loop(tmp_path, capsys):
    root = tmp_path / "root"
    folder = write_set(root / "mnist")
    target = folder / "train-labels-idx1-ubyte.gz"
    target.unlink()
    os.symlink(folder / "loop-b", target)
    os.symlink(target, folder / "loop-b")
    with pytest.raises(DataError, match="symbolic link loop"):
        load_mnist(root)
    assert main(["data", "info", "--data-dir", str(root)]) == 1
    assert "symbolic link loop" in capsys.readouterr().out
    assert main(["train", "--data-dir", str(root), "--layers", "9,3,10", "--epochs", "1", "--quiet"]) == 2
    assert "symbolic link loop" in one_line(capsys)


def test_dangling_symlink_names_its_target(tmp_path):
    root = tmp_path / "root"
    folder = write_set(root / "mnist")
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    os.symlink(tmp_path / "gone", folder / "train-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(root)


def test_permission_denied_names_the_path(tmp_path, capsys, monkeypatch):
    root = tmp_path / "root"
    folder = write_set(root / "mnist")
    locked = folder / "train-images-idx3-ubyte.gz"
    real_open = open

    def fake_open(path, *a, **k):
        if os.fspath(path) == os.fspath(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(idx_mod, "open", fake_open, raising=False)
    with pytest.raises(DataError, match="permission denied") as info:
        load_mnist(root)
    assert str(locked) in str(info.value) and "download it again" not in str(info.value)
    assert main(["train", "--data-dir", str(root), "--layers", "9,3,10", "--epochs", "1", "--quiet"]) == 2
    assert "permission denied" in one_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_for_real(tmp_path):
    root = tmp_path / "root"
    folder = write_set(root / "mnist")
    (folder / "train-images-idx3-ubyte.gz").chmod(0)
    with pytest.raises(DataError, match="permission denied"):
        load_mnist(root)


def test_data_root_that_is_a_file(tmp_path, capsys, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        load_mnist(f)
    monkeypatch.setenv("NETLEARN_DATA", str(f))
    for argv in (["data", "info"], ["data", "download"], ["train", "--epochs", "1", "--quiet"]):
        assert main(argv) == 2
        assert "is a file, not a folder" in one_line(capsys)


def test_data_root_with_a_nul_character():
    with pytest.raises(DataError, match="NUL"):
        load_mnist("bad\0root")


# -- cases the fuzz suite found, kept as plain tests ------------------------------------------------------------
def test_idx_dimensions_no_array_can_have(tmp_path):
    path = tmp_path / "x-idx"
    path.write_bytes(bytes([0, 0, 8, 4]) + struct.pack(">IIII", 0, 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1))
    with pytest.raises(DataError, match="no array can have"):
        read_idx(path)


def test_npz_header_that_is_not_a_literal(tmp_path):
    path = tmp_path / "mnist.npz"
    header = b"\x93NUMPY\x01\x00" + struct.pack("<H", 6) + b"{'a':\n"
    with zipfile.ZipFile(path, "w") as zf:
        for k in ("x_train", "y_train", "x_test", "y_test"):
            zf.writestr(k + ".npy", header)
    with pytest.raises(DataError, match="cannot be read"):
        load_mnist_npz(path)
