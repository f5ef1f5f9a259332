"""`netlearn data download|info` and `netlearn train --expand/--augment`, on tiny IDX files."""
from __future__ import annotations

import gzip
import hashlib
import json
import struct

import numpy as np
import pytest

from netlearn.cli import main
from netlearn.data import download as D
from netlearn.data.mnist import FILES, N_VALIDATION

SIDE = 3  # 3x3 images: 9 inputs


def idx_bytes(a: np.ndarray) -> bytes:
    return bytes([0, 0, 8, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape) + a.tobytes()


def write_set(folder, n_train=N_VALIDATION + 30, n_test=8, seed=0):
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
    monkeypatch.setitem(D.MIRRORS, "fashion-mnist", ("file:///nonexistent-netlearn-mirror/",))


@pytest.fixture
def root(tmp_path):
    write_set(tmp_path / "root" / "mnist")
    return tmp_path / "root"


def one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("netlearn")
    return err


def test_info_lists_files(root, capsys):
    assert main(["data", "info", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"data root: {root}  (--data-dir)" in out
    assert "mnist: " in out and "(ready)" in out and "10030 images 3x3" in out and "8 labels" in out
    assert "fashion-mnist" in out and "absent" in out


def test_info_flags_broken_and_missing_files(root, capsys, monkeypatch):
    (root / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x03garbage"))
    (root / "mnist" / "train-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("NETLEARN_DATA", str(root))
    assert main(["data", "info"]) == 1
    out = capsys.readouterr().out
    assert "($NETLEARN_DATA)" in out and "incomplete" in out
    assert "BAD t10k-images-idx3-ubyte.gz" in out and "train-labels-idx1-ubyte[.gz]: missing" in out


def test_info_on_a_missing_root(tmp_path, capsys):
    assert main(["data", "info", "--data-dir", str(tmp_path / "nope")]) == 0
    assert "does not exist" in capsys.readouterr().out


def test_download_from_a_local_mirror(tmp_path, capsys, monkeypatch):
    mirror = write_set(tmp_path / "mirror")
    monkeypatch.setitem(D.MD5, "mnist", {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in mirror.iterdir()})
    target = tmp_path / "new-root"
    args = ["data", "download", "--data-dir", str(target), "--mirror", "file:///nonexistent-netlearn-mirror/",
            "--mirror", mirror.as_uri() + "/"]
    assert main(args) == 0
    assert "downloaded" in capsys.readouterr().out
    assert sorted(p.name for p in (target / "mnist").iterdir()) == sorted(s + ".gz" for s in FILES)
    assert main(args) == 0
    assert "already present" in capsys.readouterr().out


def test_download_offline_is_one_line_exit_2(tmp_path, capsys):
    assert main(["data", "download", "--data", "fashion-mnist", "--data-dir", str(tmp_path / "r")]) == 2
    err = one_line_error(capsys)
    assert "fashion-mnist files missing" in err and "train-images-idx3-ubyte.gz" in err
    assert str(tmp_path / "r" / "fashion-mnist") in err


def test_train_with_missing_data_names_the_download_command(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data-dir", str(tmp_path / "empty"), "--layers", "9,4,10", "--quiet"]) == 2
    assert "netlearn data download --data mnist --data-dir" in one_line_error(capsys)


def train(root, tmp_path, *extra):
    out = tmp_path / "h.json"
    argv = ["train", "--data-dir", str(root), "--layers", f"{SIDE * SIDE},4,10", "--epochs", "2",
            "--train-size", "20", "--seed", "1", "--quiet", "--json", str(out), *extra]
    return main(argv), out


def test_train_expand(root, tmp_path, capsys):
    rc, out = train(root, tmp_path, "--expand", "shifts,rotations,elastic", "--rotate-degrees", "5")
    assert rc == 0, capsys.readouterr().err
    h = json.loads(out.read_text())
    assert len(h["evaluation_accuracy"]) == 2


def test_train_expand_reports_the_enlarged_set(root, tmp_path, capsys):
    argv = ["train", "--data-dir", str(root), "--layers", "9,4,10", "--epochs", "1", "--train-size", "20",
            "--expand", "shifts", "--seed", "0"]
    assert main(argv) == 0
    assert "training on 100 mnist images" in capsys.readouterr().err


def test_train_augment(root, tmp_path, capsys):
    rc, out = train(root, tmp_path, "--augment", "rotations,elastic,noise", "--elastic-alpha", "2",
                    "--elastic-sigma", "1", "--noise-sigma", "0.05", "--augment-fraction", "0.5")
    assert rc == 0, capsys.readouterr().err
    assert len(json.loads(out.read_text())["evaluation_accuracy"]) == 2


def test_train_augment_is_reproducible(root, tmp_path):
    results = []
    for _ in range(2):
        rc, out = train(root, tmp_path, "--augment", "elastic,noise", "--monitor", "evaluation_cost")
        assert rc == 0
        results.append(json.loads(out.read_text())["evaluation_cost"])
    assert results[0] == results[1]


@pytest.mark.parametrize("extra, message", [
    (["--expand", "shifts,blur"], "--expand"),
    (["--augment", "shifts"], "use --expand shifts"),
    (["--augment", "noise", "--noise-sigma", "-1"], "--noise-sigma"),
    (["--augment", "rotations", "--rotate-degrees", "abc"], "--rotate-degrees"),
    (["--augment", "noise", "--augment-fraction", "1.5"], "--augment-fraction"),
])
def test_bad_augmentation_options(root, tmp_path, capsys, extra, message):
    argv = ["train", "--data-dir", str(root), "--layers", "9,4,10", "--epochs", "1", "--quiet", *extra]
    with pytest.raises(SystemExit) as exit_:
        code = main(argv)
        raise SystemExit(code)
    assert exit_.value.code == 2
    assert message in one_line_error(capsys)


def test_expand_needs_square_images(tmp_path, capsys):
    folder = tmp_path / "r" / "mnist"
    folder.mkdir(parents=True)
    n = N_VALIDATION + 5
    for stem, a in zip(FILES, [np.zeros((n, 2, 3), np.uint8), np.zeros(n, np.uint8),
                               np.zeros((2, 2, 3), np.uint8), np.zeros(2, np.uint8)]):
        (folder / stem).write_bytes(idx_bytes(a))   # raw (not gzipped) IDX files
    argv = ["train", "--data-dir", str(tmp_path / "r"), "--layers", "6,4,10", "--epochs", "1", "--quiet"]
    assert main([*argv, "--expand", "shifts"]) == 2
    assert "not square" in one_line_error(capsys)
    assert main([*argv, "--expand", "noise", "--train-size", "5"]) == 0   # noise needs no image shape
