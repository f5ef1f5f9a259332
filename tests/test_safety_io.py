"""Model files whose sizes lie, deep nesting, huge networks, atomic writes and leftover temporary files (issue 13)."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import netlearn
from netlearn import ModelFileError, Network
from netlearn.cli import main
from netlearn.files import (OutputError, atomic_write_text, check_writable, check_writable_folder,
                            clean_stale_temporaries, write_with_fallback)
from netlearn.memory import NetworkTooLargeError

from helpers import one_line, peak_bytes  # noqa: E402

MB = 1 << 20


@pytest.fixture
def saved(tmp_path):
    net = Network([4, 3, 2], seed=0)
    path = tmp_path / "net.json"
    net.save(path)
    return path, json.loads(path.read_text())


def test_sizes_that_disagree_with_the_weights_are_refused(saved, tmp_path, capsys):
    path, d = saved
    d["network"]["sizes"] = [4, 30, 2]
    path.write_text(json.dumps(d))
    with pytest.raises(ModelFileError, match="disagree"):
        netlearn.load(path)
    assert main(["evaluate", str(path)]) == 2
    assert "disagree" in one_line(capsys)


def test_activation_that_disagrees_with_the_modules_is_refused(saved):
    path, d = saved
    d["network"]["activation"] = "relu"
    path.write_text(json.dumps(d))
    with pytest.raises(ModelFileError, match="disagree"):
        netlearn.load(path)


def test_declared_shapes_are_checked_before_allocating(saved):
    path, d = saved
    d["modules"][0]["config"].update(n_in=100_000, n_out=100_000)  # 40 GB if it were built
    path.write_text(json.dumps(d))
    err, peak = peak_bytes(netlearn.load, path)
    assert isinstance(err, ModelFileError) and "declares parameter 0 of shape (100000, 100000)" in str(err)
    assert peak < MB


def test_network2_sizes_are_checked_before_allocating(tmp_path):
    path = tmp_path / "book.json"
    path.write_text(json.dumps({"sizes": [100_000, 100_000], "weights": [[[0.0]]], "biases": [[[0.0]]],
                                "cost": "CrossEntropyCost"}))
    err, peak = peak_bytes(netlearn.load, path)
    assert isinstance(err, ModelFileError) and "shape (100000, 100000)" in str(err)
    assert peak < MB


def test_deep_nesting_is_a_model_file_error(tmp_path, saved, capsys):
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ModelFileError, match="nested too deeply"):
        netlearn.load(path)
    assert main(["evaluate", str(path)]) == 2
    assert "nested too deeply" in one_line(capsys)
    p2, d = saved
    d["modules"][0]["params"][0] = [[0.0] * 3] * 3 + [json.loads("[" * 50 + "]" * 50)]
    p2.write_text(json.dumps(d))
    with pytest.raises(ModelFileError):
        netlearn.load(p2)


@pytest.mark.parametrize("change", [
    lambda d: d.update(modules={"a": 1}),
    lambda d: d["modules"].__setitem__(0, 7),
    lambda d: d["modules"][0].update(config=[1]),
    lambda d: d["modules"][0].update(params="x"),
    lambda d: d["modules"][0]["config"].update(n_in="4"),
    lambda d: d["modules"][0]["params"][0].__setitem__(0, ["a", "b", "c"]),
    lambda d: d.update(dtype="int8"),
    lambda d: d.update(cost=None),
    lambda d: d.update(network=[1]),
    lambda d: d["network"].pop("sizes"),
    lambda d: d["network"].update(sizes="784"),
    lambda d: d["modules"][1].update(type="Nope"),
])
def test_wrong_types_are_one_model_file_error(saved, change):
    path, d = saved
    change(d)
    path.write_text(json.dumps(d))
    with pytest.raises(ModelFileError):
        netlearn.load(path)


def test_good_models_still_round_trip(tmp_path):
    net = Network([4, 5, 3], activation="relu", cost="log-likelihood", dropout=0.2, batch_norm=True,
                  input_noise=0.1, seed=1)
    net.save(tmp_path / "a.json")
    back = netlearn.load(tmp_path / "a.json")
    assert repr(back) == repr(net)
    assert all((p == q).all() for p, q in zip(net.parameters(), back.parameters()))


def test_huge_network_is_one_line_naming_the_memory(capsys):
    with pytest.raises(NetworkTooLargeError, match=r"needs about [\d.]+ TiB") as info:
        Network([784, 1_000_000_000, 10])
    assert isinstance(info.value, ValueError) and isinstance(info.value, MemoryError)
    assert main(["train", "--layers", "784,1000000000,10", "--quiet"]) == 2
    err = one_line(capsys)
    assert "TiB" in err and "available" in err


# -- atomic writes ---------------------------------------------------------------------------------
def _disk_full_in(folder, monkeypatch):
    """Make fsync fail with ENOSPC for files in ``folder`` (a full disk, without root or a tmpfs)."""
    real = os.fsync

    def fsync(fd):
        if os.path.dirname(os.readlink(f"/proc/self/fd/{fd}")) == str(folder):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text("old")
    _disk_full_in(tmp_path, monkeypatch)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_write_with_fallback_names_where_it_went(tmp_path, monkeypatch):
    full = tmp_path / "full"
    full.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    _disk_full_in(full, monkeypatch)
    where, err = write_with_fallback(full / "h.json", lambda p: atomic_write_text(p, "data"))
    assert err is not None and where.parent == tmp_path and where.name.endswith("h.json")
    assert where.read_text() == "data" and list(full.iterdir()) == []


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".net.json.{dead}-0123456789ab.tmp"
    live = tmp_path / f".net.json.{os.getpid()}-0123456789ab.tmp"
    other = tmp_path / ".net.json.notours"
    for p in (stale, live, other):
        p.write_text("x")
    assert clean_stale_temporaries(tmp_path) == [stale]
    assert live.exists() and other.exists() and not stale.exists()


def test_check_writable(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="this is a folder"):
        check_writable(tmp_path / "d", "--save")
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(tmp_path / "nope" / "x.json", "--json")
    assert check_writable(tmp_path / "x.json", "--json") == tmp_path / "x.json"
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="this is a file"):
        check_writable_folder(tmp_path / "f", "--checkpoint")
    assert check_writable_folder(tmp_path / "new" / "ck", "--checkpoint").is_dir()
    assert list((tmp_path / "new" / "ck").iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    with pytest.raises(OutputError, match="cannot write"):
        check_writable(ro / "x.json", "--save")


def test_download_removes_half_downloads_of_killed_runs(tmp_path):
    import gzip
    import hashlib

    from netlearn.data import download as D

    src = tmp_path / "mirror"
    src.mkdir()
    payload = gzip.compress(b"x" * 100, mtime=0)
    (src / "f.gz").write_bytes(payload)
    dest = tmp_path / "root" / "f.gz"
    dest.parent.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    half = dest.parent / f".f.gz.{dead}-0123456789ab.part"
    half.write_bytes(payload[:10])
    D.fetch([src.as_uri() + "/f.gz"], dest, hashlib.md5(payload).hexdigest(), progress=False)
    assert dest.read_bytes() == payload and not half.exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.gz"]


# -- cases the fuzz suite found, kept as plain tests ------------------------------------------------------------
def test_values_beyond_float32_are_refused(saved, tmp_path):
    path, d = saved
    d["modules"][0]["params"][1][0] = 1e300
    path.write_text(json.dumps(d))
    with pytest.raises(ModelFileError, match="beyond the range of float32"):
        netlearn.load(path)
    Network([3, 2], seed=0).save(tmp_path / "b.json", format="network2")
    b = json.loads((tmp_path / "b.json").read_text())
    b["weights"][0][0][0] = 1e300
    (tmp_path / "b.json").write_text(json.dumps(b))
    with pytest.raises(ModelFileError, match="beyond the range of float32"):
        netlearn.load(tmp_path / "b.json")


def test_checkpoint_parts_the_fuzz_suite_broke(tmp_path):
    from netlearn.checkpoints import Checkpoint, CheckpointError, load_checkpoint

    X, y = np.random.default_rng(0).random((20, 3)), np.arange(20) % 2
    Network([3, 4, 2], seed=0).fit((X, y), 1, 5, 0.5, optimizer="momentum", callbacks=[Checkpoint(tmp_path)])
    path = tmp_path / "checkpoint-0001.json"
    base = json.loads(path.read_text())
    for change in (lambda d: d["order"].update(dtype=["int64"]),      # an unhashable dtype
                   lambda d: d.update(eta=10 ** 400),                 # a JSON integer no float can hold
                   lambda d: d["optimizer"]["1"]["v"][0].update(__ndarray__=[1e300] * 12)):
        d = json.loads(json.dumps(base))
        change(d)
        path.write_text(json.dumps(d))
        with pytest.raises(CheckpointError):
            load_checkpoint(path)
    d = json.loads(json.dumps(base))
    d["eta"] = 10 ** 30  # a finite rate, given as an integer: read as a float
    path.write_text(json.dumps(d))
    assert load_checkpoint(path)["eta"] == 1e30
