"""Downloading from mirrors, without the network: file:// mirrors and an http.server on 127.0.0.1."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import struct
import threading

import numpy as np
import pytest

from netlearn.data import DataError, DownloadError, load_mnist
from netlearn.data import download as D
from netlearn.data.mnist import FILES, N_VALIDATION


def idx_bytes(a: np.ndarray) -> bytes:
    return bytes([0, 0, 8, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape) + a.tobytes()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A folder of four small gzipped IDX files, with the checksums patched to theirs; no real mirrors."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    rng = np.random.default_rng(0)
    n = N_VALIDATION + 3
    arrays = [rng.integers(0, 256, (n, 2, 2), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8),
              rng.integers(0, 256, (4, 2, 2), dtype=np.uint8), rng.integers(0, 10, 4, dtype=np.uint8)]
    md5 = {}
    for stem, a in zip(FILES, arrays):
        data = gzip.compress(idx_bytes(a), mtime=0)
        (folder / (stem + ".gz")).write_bytes(data)
        md5[stem + ".gz"] = hashlib.md5(data).hexdigest()
    monkeypatch.setitem(D.MD5, "mnist", md5)
    monkeypatch.setitem(D.CONTENT_MD5, "mnist", {})
    monkeypatch.setitem(D.MIRRORS, "mnist", ("file:///nonexistent-netlearn-mirror/",))
    monkeypatch.delenv("NETLEARN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return folder


def url(folder) -> str:
    return folder.as_uri() + "/"


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_download_from_a_file_mirror(mirror, tmp_path):
    root = tmp_path / "root"
    written = D.download("mnist", root, mirrors=[url(mirror)], progress=False)
    assert sorted(p.name for p in written) == sorted(s + ".gz" for s in FILES)
    for p in written:
        assert p.read_bytes() == (mirror / p.name).read_bytes()
    assert D.download("mnist", root, mirrors=[url(mirror)]) == []   # present and sound: nothing to do
    (X, _), _, _ = load_mnist(root)
    assert X.shape == (3, 4)


def test_a_failing_first_mirror_is_skipped(mirror, tmp_path):
    dead = tmp_path / "dead"
    dead.mkdir()
    written = D.download("mnist", tmp_path / "root", mirrors=[url(dead), url(mirror)], progress=False)
    assert len(written) == 4


def test_bad_checksum_is_refused_and_leaves_no_file(mirror, tmp_path, monkeypatch):
    monkeypatch.setitem(D.MD5["mnist"], "train-images-idx3-ubyte.gz", "0" * 32)
    root = tmp_path / "root"
    with pytest.raises(DownloadError) as err:
        D.download("mnist", root, mirrors=[url(mirror)], progress=False)
    msg = str(err.value)
    assert "checksum mismatch" in msg and "train-images-idx3-ubyte.gz" in msg and str(root / "mnist") in msg
    folder = root / "mnist"
    assert not (folder / "train-images-idx3-ubyte.gz").exists()
    assert (folder / "t10k-labels-idx1-ubyte.gz").exists()   # the others were still fetched
    assert leftovers(folder) == []


def test_bad_checksum_on_first_mirror_then_good_one(mirror, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in mirror.iterdir():
        (bad / p.name).write_bytes(gzip.compress(b"not the file"))
    D.download("mnist", tmp_path / "root", mirrors=[url(bad), url(mirror)], progress=False)
    got = tmp_path / "root" / "mnist" / "train-images-idx3-ubyte.gz"
    assert got.read_bytes() == (mirror / got.name).read_bytes()


def test_recompressed_file_accepted_by_content_checksum(mirror, tmp_path, monkeypatch):
    name = "train-labels-idx1-ubyte.gz"
    content = gzip.decompress((mirror / name).read_bytes())
    (mirror / name).write_bytes(gzip.compress(content, compresslevel=1, mtime=12345))   # other bytes, same content
    monkeypatch.setitem(D.CONTENT_MD5, "mnist", {name: hashlib.md5(content).hexdigest()})
    D.download("mnist", tmp_path / "root", mirrors=[url(mirror)], progress=False)
    assert gzip.decompress((tmp_path / "root" / "mnist" / name).read_bytes()) == content


def test_offline_error_names_missing_files_and_where_to_put_them(mirror, tmp_path):
    root = tmp_path / "root"
    with pytest.raises(DownloadError) as err:
        D.download("mnist", root, mirrors=[url(tmp_path / "gone")], progress=False)
    msg = str(err.value)
    assert "\n" not in msg
    for stem in FILES:
        assert stem + ".gz" in msg
    assert f"put them into {root / 'mnist'}" in msg and "NETLEARN_DATA" in msg


def test_unsound_local_file_is_replaced(mirror, tmp_path):
    folder = tmp_path / "root" / "mnist"
    folder.mkdir(parents=True)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01\0\0\0\x09short")   # raw, truncated
    written = D.download("mnist", tmp_path / "root", mirrors=[url(mirror)], progress=False)
    assert folder / "t10k-labels-idx1-ubyte.gz" in written
    assert not (folder / "t10k-labels-idx1-ubyte").exists()


def test_cache_root_downloads_automatically(mirror, monkeypatch):
    monkeypatch.setitem(D.MIRRORS, "mnist", (url(mirror),))
    (X, y), (Xv, _), (Xt, _) = load_mnist()
    assert X.shape == (3, 4) and Xv.shape[0] == N_VALIDATION and Xt.shape == (4, 4)


def test_explicit_root_never_downloads(mirror, tmp_path, monkeypatch):
    monkeypatch.setitem(D.MIRRORS, "mnist", (url(mirror),))
    (tmp_path / "explicit").mkdir()
    with pytest.raises(DataError, match="netlearn data download --data mnist --data-dir"):
        load_mnist(tmp_path / "explicit")
    assert not (tmp_path / "explicit" / "mnist").exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="'dataset'"):
        D.download("cifar", tmp_path)
    with pytest.raises(DataError, match="'timeout'"):
        D.download("mnist", tmp_path, timeout=0)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def http_mirror(mirror):
    """The mirror folder served on 127.0.0.1 (a real HTTP exchange with Content-Length)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Handler, directory=str(mirror.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_mirror_after_a_404(http_mirror, tmp_path):
    mirrors = [f"{http_mirror}/missing/", f"{http_mirror}/mirror/"]
    written = D.download("mnist", tmp_path / "root", mirrors=mirrors, timeout=5, progress=False)
    assert len(written) == 4


def test_fetch_reports_every_url_tried(http_mirror, tmp_path):
    with pytest.raises(DownloadError) as err:
        D.fetch([f"{http_mirror}/missing/x.gz", f"{http_mirror}/also-missing/x.gz"], tmp_path / "x.gz",
                "0" * 32, timeout=5, progress=False)
    msg = str(err.value)
    assert msg.count("HTTP 404") == 2 and not (tmp_path / "x.gz").exists()
    assert leftovers(tmp_path) == []
