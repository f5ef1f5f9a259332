"""``netlearn search --data FILE``: a search on the user's own CSV, in one process, with workers, from Python."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")

import netlearn  # noqa: E402
from netlearn.cli import main  # noqa: E402
from netlearn.search.storage import SearchError, open_storage  # noqa: E402
from netlearn.search.study import load_study  # noqa: E402

SMALL = ["--epochs", "2", "--trials", "4", "--eta", "0.1:3:log", "--seed", "3", "--quiet"]


def blobs_csv(path: Path, n: int = 200, k: int = 3, seed: int = 0, labels=("ant", "bee", "cat")) -> Path:
    """Three Gaussian blobs in 4 columns, on different scales, with text labels in the last column."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 3.0, (k, 4))
    y = rng.integers(0, k, n)
    X = (centers[y] + rng.normal(0.0, 1.0, (n, 4))) * np.array([1.0, 10.0, 100.0, 0.1])
    lines = ["a,b,c,d,kind"] + [",".join(f"{v:.5f}" for v in x) + f",{labels[c]}" for x, c in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def blobs(tmp_path) -> Path:
    return blobs_csv(tmp_path / "blobs.csv")


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("netlearn: error:"), err
    return err


def test_cli_search_on_a_csv_takes_its_layers_from_the_data(blobs, tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["search", "--data", str(blobs), "--hidden", "8", "16", "--json", str(out), *SMALL]) == 0
    s = json.loads(out.read_text())
    assert len(s["trials"]) == 4 and {t["state"] for t in s["trials"]} == {"COMPLETE"}
    assert {t["params"]["hidden"] for t in s["trials"]} <= {8, 16}
    # 160 training rows, 40 held out: a value is a fraction of 40
    assert all(abs(t["value"] * 40 - round(t["value"] * 40)) < 1e-6 for t in s["trials"])
    assert s["best"]["value"] > 0.6  # three well-separated blobs, chance is 1/3


def test_search_init_stores_the_file_and_workers_elsewhere_read_the_same_split(blobs, tmp_path, monkeypatch,
                                                                                 capsys):
    journal = str(tmp_path / "journal.log")
    monkeypatch.chdir(tmp_path)
    assert main(["search", "init", "--storage", journal, "--study", "own", "--data", "blobs.csv",
                 "--validation-split", "0.25", "--scale", "minmax", "--layers", "4,5,3",
                 "--trials", "4", "--epochs", "2", "--eta", "0.1:3:log", "--seed", "7"]) == 0
    said = capsys.readouterr().out
    assert "layers 4,5,3" in said and str(blobs) in said
    _, settings = load_study(open_storage(journal), "own")
    assert settings.data == str(blobs) and settings.layers == [4, 5, 3]
    assert (settings.validation_split, settings.scale, settings.seed) == (0.25, "minmax", 7)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the stored path is absolute
    assert main(["search", "run", "--storage", journal, "--study", "own"]) == 0
    err = capsys.readouterr().err
    assert "training on 150 rows" in err and "(50 rows)" in err
    assert main(["search", "show", "--storage", journal, "--study", "own", "--json", "t.json"]) == 0
    s = json.loads(Path("t.json").read_text())
    assert len(s["trials"]) == 4 and all(t["state"] == "COMPLETE" for t in s["trials"])
    # The same split for every worker: the search's seed draws it, not the worker's own sampler seed.
    from netlearn.search.api import load_search_data

    a = load_search_data(settings)[1][0]
    b = load_search_data(load_study(open_storage(journal), "own")[1])[1][0]
    np.testing.assert_array_equal(a, b)


def test_python_search_returns_a_network_with_its_preprocessing(blobs, tmp_path, capsys):
    result = netlearn.search(data=str(blobs), hidden=[6, [8, 4]], eta=(0.1, 3.0, "log"), epochs=2, trials=4,
                             seed=1, validation_split=0.3)
    net = result.network
    assert net.preprocessing.classes == ["ant", "bee", "cat"] and net.preprocessing.features == list("abcd")
    assert net.sizes[0] == 4 and net.sizes[-1] == 3
    assert result.summary["best"]["value"] == max(t["value"] for t in result.summary["trials"])
    # Saved, the best network scores the raw file through evaluate (60 of 200 rows were held out).
    model = tmp_path / "best.json"
    netlearn.io.save(net, model)
    scores = tmp_path / "scores.json"
    assert main(["evaluate", str(model), "--data", str(blobs), "--json", str(scores)]) == 0
    assert 0.0 <= json.loads(scores.read_text())["accuracy"] <= 1.0


def test_a_regression_target_is_refused_in_one_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    rows = ["a,b,c,y"] + [",".join(f"{v:.4f}" for v in x) + f",{x.sum() + 0.1 * rng.normal():.4f}" for x in X]
    path = tmp_path / "reg.csv"
    path.write_text("\n".join(rows) + "\n")
    err = one_line_error(capsys, ["search", "--data", str(path), *SMALL])
    assert "regression target" in err and "--task classification" in err
    err = one_line_error(capsys, ["search", "init", "--storage", str(tmp_path / "j.log"), "--study", "r",
                                  "--data", str(path), "--trials", "2"])
    assert "regression target" in err
    if (tmp_path / "j.log").exists():  # the file is read before the study is created
        with pytest.raises(SearchError, match="no study named 'r'"):
            load_study(open_storage(str(tmp_path / "j.log")), "r")
    with pytest.raises(SearchError, match="regression target"):
        netlearn.search(data=str(path), epochs=1, trials=1)


def test_bad_files_and_misplaced_options_get_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,0\n3,oops,1\n")
    err = one_line_error(capsys, ["search", "--data", str(bad), *SMALL])
    assert "line 3" in err and "'b'" in err
    err = one_line_error(capsys, ["search", "--data", str(tmp_path / "missing.csv"), *SMALL])
    assert "no such file" in err
    blobs = blobs_csv(tmp_path / "b.csv")
    err = one_line_error(capsys, ["search", "--data", str(blobs), "--layers", "5,8,3", *SMALL])
    assert "4 input columns and 3 classes" in err and "--hidden 8" in err
    err = one_line_error(capsys, ["search", "--data", str(blobs), "--validation-split", "0", *SMALL])
    assert "--validation-split" in err
    err = one_line_error(capsys, ["search", "--target", "kind", *SMALL])
    assert "--target" in err and "not to mnist" in err
    err = one_line_error(capsys, ["search", "--data", str(blobs), "--eval", "test", *SMALL])
    assert "--test FILE" in err


def test_a_worker_that_lacks_the_file_is_told_which_path_to_copy(tmp_path, capsys):
    blobs = blobs_csv(tmp_path / "gone.csv")
    journal = str(tmp_path / "j.log")
    assert main(["search", "init", "--storage", journal, "--study", "g", "--data", str(blobs), "--trials", "2",
                 "--epochs", "1"]) == 0
    blobs.unlink()
    err = one_line_error(capsys, ["search", "run", "--storage", journal, "--study", "g", "--quiet"])
    assert "no such file" in err and "copy it to that path" in err and str(blobs) in err


def test_pbt_on_a_csv_returns_a_network_with_its_preprocessing(blobs):
    result = netlearn.search(data=str(blobs), strategy="pbt", population=4, interval=1, eta=(0.1, 3.0, "log"),
                             epochs=2, seed=0)
    assert result.network.preprocessing.classes == ["ant", "bee", "cat"] and result.network.sizes == [4, 30, 3]
