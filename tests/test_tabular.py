"""The user's own data: CSV / .npz reading, task inference, splits, scaling, regression end to end, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netlearn
from netlearn import metrics
from netlearn.cli import main
from netlearn.data.mnist import DataError
from netlearn.data.tabular import (Preprocessing, TabularError, infer_task, load_tabular, read_for_model,
                                   read_table, split)

SPECIES = np.array(["setosa", "versicolor", "virginica"])


def classification_rows(n=240, seed=0):
    g = np.random.default_rng(seed)
    y = g.integers(0, 3, n)
    centres = np.array([[0, 0, 5], [4, 0, 5], [0, 4, 5]], float) * 10
    X = centres[y] + g.standard_normal((n, 3)) * 4 + 100  # far from 0 and wide: unscaled, sigmoids saturate
    return X, y


def regression_rows(n=300, seed=0):
    g = np.random.default_rng(seed)
    X = g.uniform(-1, 1, (n, 3))
    y = 50 + 20 * X[:, 0] - 10 * X[:, 1] ** 2 + 5 * X[:, 2]
    return X, y


def write_csv(path: Path, header: list[str], rows) -> Path:
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")
    return path


@pytest.fixture
def iris_like(tmp_path) -> Path:
    X, y = classification_rows()
    return write_csv(tmp_path / "flowers.csv", ["a", "b", "c", "species"],
                     [[*np.round(x, 3), SPECIES[c]] for x, c in zip(X, y)])


@pytest.fixture
def prices(tmp_path) -> Path:
    X, y = regression_rows()
    return write_csv(tmp_path / "prices.csv", ["a", "b", "c", "price"],
                     [[*np.round(x, 4), round(v, 4)] for x, v in zip(X, y)])


# -- reading -------------------------------------------------------------------------------------------------
def test_csv_reads_numbers_and_picks_the_target(tmp_path):
    p = write_csv(tmp_path / "t.csv", ["x1", "label", "x2"], [[1.5, 0, 2], [2.5, 1, 3]])
    t = read_table(p)
    assert t.target == "label" and t.features == ["x1", "x2"]
    np.testing.assert_array_equal(t.X, [[1.5, 2], [2.5, 3]])
    np.testing.assert_array_equal(t.y, [0, 1])
    # Without a label/target/y column, the last column is the target; --target overrides.
    p = write_csv(tmp_path / "u.csv", ["a", "b", "c"], [[1, 2, 3], [4, 5, 6]])
    assert read_table(p).target == "c"
    assert read_table(p, target="a").features == ["b", "c"]


@pytest.mark.parametrize("body, words", [
    ("a,b,y\n1,2,0\n1,2\n", ["line 3", "2 cells", "3 columns"]),
    ("a,b,y\n1,2,0\n1,x,1\n", ["line 3", "column 'b'", "'x'", "not a number"]),
    ("a,b,y\n1,,0\n", ["line 2", "column 'b'", "missing value"]),
    ("a,b,y\n1,nan,0\n", ["line 2", "column 'b'", "not a finite number"]),
    ("a,b,y\n1,2,\n", ["line 2", "column 'y'", "target is missing"]),
    ("a,a,y\n1,2,0\n", ["column 'a' twice"]),
    ("", ["empty"]),
    ("a,b,y\n", ["no data rows"]),
])
def test_bad_csv_files_name_the_line_and_column(tmp_path, body, words):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises(TabularError) as e:
        read_table(p)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_missing_target_column_is_named(tmp_path):
    p = write_csv(tmp_path / "t.csv", ["a", "b"], [[1, 2]])
    with pytest.raises(TabularError, match="no column 'price'"):
        read_table(p, target="price")


def test_npz_files(tmp_path):
    g = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=g.random((20, 4)), y=np.arange(20) % 2)
    t = read_table(tmp_path / "d.npz")
    assert t.X.shape == (20, 4) and t.features == ["x0", "x1", "x2", "x3"]
    np.savez(tmp_path / "col.npz", X=g.random((20, 4)), y=(np.arange(20) % 2)[:, None])
    assert read_table(tmp_path / "col.npz").y.shape == (20,)
    np.savez(tmp_path / "bad.npz", X=np.array([[1.0, np.nan]]), y=np.array([0]))
    with pytest.raises(TabularError, match=r"X\[0, 1\]"):
        read_table(tmp_path / "bad.npz")
    np.savez(tmp_path / "noy.npz", X=g.random((3, 2)))
    with pytest.raises(TabularError, match="'X'.*'y'"):
        read_table(tmp_path / "noy.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(TabularError, match="not a readable .npz"):
        read_table(tmp_path / "junk.npz")
    np.savez(tmp_path / "obj.npz", X=np.array([[1.0]]), y=np.array([{"a": 1}], dtype=object))
    with pytest.raises(TabularError, match="Python objects"):
        read_table(tmp_path / "obj.npz")


def test_task_inference():
    assert infer_task(np.array(["a", "b", "a"])) == "classification"
    assert infer_task(np.array([0, 1, 2, 1, 0, 2], float)) == "classification"
    assert infer_task(np.array([0.5, 1.5, 2.0, 3.0])) == "regression"
    assert infer_task(np.arange(100, dtype=float)) == "regression"  # integers, but too many distinct values


def test_stratified_split_keeps_class_shares_and_is_seeded():
    labels = np.array([0] * 80 + [1] * 20)
    keep, held = split(100, 0.25, seed=3, labels=labels)
    assert len(held) == 25 and np.count_nonzero(labels[held] == 1) == 5
    assert set(keep).isdisjoint(held) and len(keep) + len(held) == 100
    np.testing.assert_array_equal(split(100, 0.25, seed=3, labels=labels)[1], held)
    assert not np.array_equal(split(100, 0.25, seed=4, labels=labels)[1], held)


def test_scaling_is_learned_on_training_rows_and_labels_are_mapped(iris_like):
    data = load_tabular(iris_like, validation_split=0.25, seed=0)
    pre = data.preprocessing
    assert pre.task == "classification" and pre.classes == list(SPECIES)
    X, y = data.training
    assert X.dtype == np.float32 and y.dtype.kind == "i" and set(y) == {0, 1, 2}
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-4)
    assert data.validation[0].shape[0] == 60
    mm = load_tabular(iris_like, scale="minmax", validation_split=None).training[0]
    assert mm.min() == 0 and np.isclose(mm.max(), 1)
    # Round trip through the model's dict (what io stores).
    again = Preprocessing.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_allclose(again.x_shift, pre.x_shift)
    assert again.classes == pre.classes


# -- a regression network --------------------------------------------------------------------------------------
def test_regression_network_scores_and_refuses_accuracy(prices, tmp_path):
    data = load_tabular(prices, seed=0)
    assert data.preprocessing.task == "regression"
    net = netlearn.Network(data.sizes([16]), activation="tanh", cost="quadratic", output="identity", seed=0)
    net.preprocessing = data.preprocessing
    h = net.fit(data.training, 40, 10, 0.05, evaluation_data=data.validation, seed=0)
    assert len(h.evaluation_r2) == len(h.evaluation_rmse) == len(h.evaluation_mae) == 40
    assert h.evaluation_accuracy == []
    assert h.evaluation_r2[-1] > 0.9
    assert set(h.to_dict()) >= {"evaluation_r2", "evaluation_rmse", "evaluation_mae"}
    # RMSE is in the target's units (prices around 50, spread about 12), not the scaled ones.
    X, Y = data.validation
    A = data.preprocessing.inverse_y(net.predict(X))
    raw = data.preprocessing.inverse_y(Y)
    assert np.isclose(h.evaluation_rmse[-1], np.sqrt(np.mean((A - raw) ** 2)), rtol=1e-4)
    with pytest.raises(ValueError, match="regression"):
        net.accuracy(data.validation)
    assert net.predict(X).shape == (X.shape[0], 1)  # values, not an argmax
    path = tmp_path / "m.json"
    net.save(path)
    back = netlearn.load(path)
    assert back.task == "regression" and back.preprocessing.target == "price"
    np.testing.assert_allclose(back.preprocessing.y_scale, data.preprocessing.y_scale)
    with pytest.raises(ValueError, match="network2"):
        net.save(tmp_path / "n2.json", format="network2")


def test_regression_scores_match_definitions():
    Y = np.array([[1.0], [2.0], [3.0], [4.0]])
    A = np.array([[1.5], [2.0], [2.0], [4.0]])
    s = metrics.regression_scores(Y, A)
    assert np.isclose(s["r2"], 1 - (0.25 + 1.0) / 5.0)
    assert np.isclose(s["rmse"], np.sqrt(1.25 / 4)) and np.isclose(s["mae"], 1.5 / 4)


def test_early_stopping_on_r2(prices):
    data = load_tabular(prices, seed=0)
    net = netlearn.Network(data.sizes([8]), cost="quadratic", output="identity", seed=0)
    net.preprocessing = data.preprocessing
    h = net.fit(data.training, 30, 10, 0.05, evaluation_data=data.validation, seed=0,
                callbacks=[netlearn.EarlyStopping(3, monitor="evaluation_r2")])
    assert h.best_epoch is not None and h.evaluation_r2


# -- the command line --------------------------------------------------------------------------------------------
def test_cli_classification_csv_end_to_end(iris_like, tmp_path, capsys):
    model, hist, ev = tmp_path / "m.json", tmp_path / "h.json", tmp_path / "e.json"
    assert main(["train", "--data", str(iris_like), "--hidden", "16", "--epochs", "15", "--eta", "0.5",
                 "--lmbda", "0.1", "--seed", "1", "--quiet", "--save", str(model), "--json", str(hist)]) == 0
    assert json.loads(hist.read_text())["evaluation_accuracy"][-1] > 0.9
    assert netlearn.load(model).sizes == [3, 16, 3]
    assert main(["evaluate", str(model), "--data", str(iris_like), "--json", str(ev)]) == 0
    figures = json.loads(ev.read_text())
    assert set(figures) == {"accuracy", "cost"} and figures["accuracy"] > 0.9
    # predict on raw rows without the target column: the stored scaling and labels are applied.
    new = write_csv(tmp_path / "new.csv", ["c", "a", "b"], [[150, 100, 100], [150, 140, 100], [150, 100, 140]])
    out = tmp_path / "p.json"
    capsys.readouterr()
    assert main(["predict", str(model), str(new), "--json", str(out)]) == 0
    preds = json.loads(out.read_text())
    assert [d["prediction"] for d in preds] == ["setosa", "versicolor", "virginica"]
    assert all(np.isclose(sum(d["probabilities"]), 1) for d in preds)
    assert "setosa" in capsys.readouterr().out


def test_cli_regression_csv_end_to_end(prices, tmp_path, capsys):
    model, ev = tmp_path / "m.json", tmp_path / "e.json"
    assert main(["train", "--data", str(prices), "--hidden", "16", "--activation", "tanh", "--epochs", "40",
                 "--eta", "0.05", "--lmbda", "0", "--seed", "0", "--quiet", "--save", str(model)]) == 0
    assert "R²" in capsys.readouterr().out
    assert main(["evaluate", str(model), "--data", str(prices), "--json", str(ev)]) == 0
    figures = json.loads(ev.read_text())
    assert set(figures) == {"r2", "rmse", "mae", "cost"} and figures["r2"] > 0.9
    out = tmp_path / "p.json"
    assert main(["predict", str(model), "--data", str(prices), "--json", str(out)]) == 0
    preds = json.loads(out.read_text())
    _, y = regression_rows()
    got = np.array([d["prediction"] for d in preds])
    assert np.sqrt(np.mean((got - y) ** 2)) < 0.3 * y.std()  # values in the target's units
    assert preds[0]["probabilities"] is None


def test_cli_validation_and_test_files(iris_like, tmp_path):
    rows = iris_like.read_text().splitlines()
    train, val, test = tmp_path / "tr.csv", tmp_path / "va.csv", tmp_path / "te.csv"
    train.write_text("\n".join(rows[:161]) + "\n")
    val.write_text("\n".join([rows[0]] + rows[161:201]) + "\n")
    test.write_text("\n".join([rows[0]] + rows[201:]) + "\n")
    hist = tmp_path / "h.json"
    assert main(["train", "--data", str(train), "--validation", str(val), "--test", str(test), "--eval", "test",
                 "--epochs", "3", "--quiet", "--json", str(hist)]) == 0
    assert len(json.loads(hist.read_text())["evaluation_accuracy"]) == 3


@pytest.mark.parametrize("argv, words", [
    (["--target", "nope"], ["no column 'nope'"]),
    (["--task", "regression", "--cost", "log-likelihood"], ["regression"]),
    (["--layers", "4,10,3"], ["--layers", "--hidden"]),
    (["--eval", "test"], ["--test FILE"]),
    (["--augment", "noise"], ["--augment"]),
    (["--save-format", "network2", "--save", "x.json"], ["network2"]),
])
def test_cli_own_data_errors(iris_like, tmp_path, capsys, argv, words, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", str(iris_like), "--epochs", "1", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    for w in words:
        assert w in err


def test_cli_bad_file_is_one_line(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("a,b,label\n1,2,0\n3,oops,1\n")
    assert main(["train", "--data", str(p), "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "column 'b'" in err and err.count("\n") == 1


def test_cli_table_options_refused_with_mnist(capsys):
    assert main(["train", "--target", "x", "--epochs", "1"]) == 2
    assert "--target" in capsys.readouterr().err


def test_read_for_model_applies_the_saved_columns(iris_like, tmp_path):
    data = load_tabular(iris_like, validation_split=None)
    X, y, _ = read_for_model(iris_like, data.preprocessing, 3)
    np.testing.assert_allclose(X, data.training[0], atol=1e-6)
    np.testing.assert_array_equal(y, data.training[1])


# -- fuzzing: whatever is done to a valid file, the reader ends in its own error or a result ------------------------
VALID = b"a,b,label\n1.5,2,cat\n-3,4e2,dog\n0.25,1,cat\n7,8,dog\n"


@st.composite
def mutated(draw):
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "extend", "header", "insert"]))
        if kind == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif kind == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif kind == "extend":
            data += draw(st.binary(max_size=40))
        elif kind == "header":
            end = data.find(b"\n")
            data = bytearray(draw(st.sampled_from([b"", b"a", b"a,a,label", b",b,label", b"a,b", b"a,b,label,c",
                                                   b"\xff\xfe", b'"a,b', b"a;b;label"]))) + data[max(end, 0):]
        elif kind == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.sampled_from([b",", b"\n", b'"', b"\x00", b"nan", b"inf", b"\r", b",,,\n"]))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=mutated(), task=st.sampled_from([None, "classification", "regression"]))
def test_fuzzed_csv_ends_in_netlearn_errors(tmp_path, body, task):
    p = tmp_path / "fuzz.csv"
    p.write_bytes(body)
    try:
        t = read_table(p)
    except DataError:
        return
    assert t.X.dtype == np.float64 and np.isfinite(t.X).all() and len(t.y) == len(t)
    try:
        data = load_tabular(p, task=task, validation_split=None)
    except DataError:
        return
    assert np.isfinite(data.training[0]).all()


def test_blocks_of_rows_join_up(tmp_path, monkeypatch):
    import netlearn.data.tabular as tab

    monkeypatch.setattr(tab, "BLOCK_ROWS", 3)
    rows = [[i, 2 * i, str(i % 3)] for i in range(10)]
    t = read_table(write_csv(tmp_path / "n.csv", ["a", "b", "y"], rows))
    np.testing.assert_array_equal(t.X, [[i, 2 * i] for i in range(10)])
    np.testing.assert_array_equal(t.y, [i % 3 for i in range(10)])
    rows[8][2] = "cat"  # text in a later block: the whole column is labels, as written
    t = read_table(write_csv(tmp_path / "s.csv", ["a", "b", "y"], rows))
    assert t.y.tolist() == [str(i % 3) for i in range(8)] + ["cat", "0"]
    rows[8][2] = "inf"
    with pytest.raises(TabularError, match="line 10, column 'y'"):
        read_table(write_csv(tmp_path / "i.csv", ["a", "b", "y"], rows))


def test_full_batch_optimizers_score_regression(prices, tmp_path):
    hist = tmp_path / "h.json"
    assert main(["train", "--data", str(prices), "--optimizer", "lbfgs", "--epochs", "30", "--hidden", "8",
                 "--lmbda", "0", "--quiet", "--json", str(hist)]) == 0
    h = json.loads(hist.read_text())
    assert len(h["evaluation_r2"]) == 30 and h["evaluation_accuracy"] == [] and h["evaluation_r2"][-1] > 0.9


def test_model_file_with_mismatched_preprocessing_is_refused(iris_like, tmp_path):
    data = load_tabular(iris_like, validation_split=None)
    net = netlearn.Network(data.sizes([4]), seed=0)
    net.preprocessing = data.preprocessing
    path = tmp_path / "m.json"
    net.save(path)
    d = json.loads(path.read_text())
    d["preprocessing"]["classes"] = ["a", "b"]
    path.write_text(json.dumps(d))
    with pytest.raises(netlearn.ModelFileError, match="2 classes"):
        netlearn.load(path)
