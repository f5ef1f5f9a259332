"""netlearn.sklearn: scikit-learn's own estimator checks, Pipeline, GridSearchCV, partial_fit, the History."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_iris, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import netlearn  # noqa: E402
from netlearn.sklearn import NetworkClassifier, NetworkRegressor  # noqa: E402


def results(estimator) -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {r["check_name"]: r["status"] for r in check_estimator(estimator, on_fail=None)}


# scikit-learn's MLP, briefly trained: which checks it runs and which it skips does not depend on how
# well it learns (a few of its quality checks fail at 5 iterations; they must pass for ours).
@pytest.mark.parametrize("ours, theirs", [(NetworkClassifier(), MLPClassifier(max_iter=5)),
                                          (NetworkRegressor(), MLPRegressor(max_iter=5))],
                         ids=["classifier", "regressor"])
def test_check_estimator_passes_every_check_the_mlp_runs(ours, theirs):
    mine, ref = results(ours), results(theirs)
    failed = sorted(k for k, v in mine.items() if v == "failed")
    assert failed == []
    # Skipped only where scikit-learn's own MLP is skipped too (pandas absent, array API off, ...).
    skipped = {k for k, v in mine.items() if v == "skipped"}
    assert skipped <= {k for k, v in ref.items() if v == "skipped"}
    assert sorted(k for k, v in ref.items() if v != "skipped" and mine.get(k) != "passed") == []


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, np.array(["setosa", "versicolor", "virginica"])[y]


def test_defaults_learn_a_small_table(iris):
    X, y = iris
    clf = make_pipeline(StandardScaler(), NetworkClassifier(random_state=0)).fit(X, y)
    assert clf.score(X, y) > 0.95
    net = clf[-1]
    assert list(net.classes_) == ["setosa", "versicolor", "virginica"]
    assert net.n_iter_ == 200 == len(net.loss_curve_) and net.loss_curve_[-1] < net.loss_curve_[0]
    assert isinstance(net.history_, netlearn.History) and isinstance(net.network_, netlearn.Network)
    P = net.predict_proba(StandardScaler().fit(X).transform(X))
    np.testing.assert_allclose(P.sum(axis=1), 1)


def test_grid_search_over_dropout_and_batch_norm(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), NetworkClassifier(hidden_layer_sizes=(16,), epochs=40, random_state=0))
    grid = GridSearchCV(pipe, {"networkclassifier__dropout": [0.0, 0.2],
                               "networkclassifier__batch_norm": [False, True]}, cv=3)
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4 and grid.best_score_ > 0.8
    best = grid.best_estimator_[-1].network_
    assert best.options()["dropout"] == grid.best_params_["networkclassifier__dropout"]


def test_same_random_state_same_network(iris):
    X, y = iris
    a = NetworkClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=3).fit(X, y)
    b = NetworkClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_early_stopping_keeps_the_best_validation_weights(iris):
    X, y = iris
    clf = NetworkClassifier(early_stopping=True, epochs=300, eta=0.01, random_state=0).fit(X, y)
    assert clf.n_iter_ < 300 and clf.best_validation_score_ == max(clf.validation_scores_)


def test_partial_fit_continues(iris):
    X, y = iris
    clf = NetworkClassifier(hidden_layer_sizes=(16,), eta=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    for _ in range(30):
        clf.partial_fit(X, y, classes=np.unique(y))
    assert clf.n_iter_ == 30 and len(clf.loss_curve_) == 30 and clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_regressor_in_a_pipeline_and_its_units():
    X, y = make_regression(n_samples=200, n_features=5, noise=5.0, random_state=0)
    y = 1000 + 50 * y  # far from 0 and wide: the regressor standardizes targets itself
    reg = make_pipeline(StandardScaler(), NetworkRegressor(random_state=0)).fit(X, y)
    assert reg.score(X, y) > 0.9
    est = reg[-1]
    assert est.history_.training_cost and est.predict(StandardScaler().fit(X).transform(X)).shape == (200,)
    with pytest.raises(ValueError, match="regression"):
        est.network_.accuracy((X[:5], np.zeros(5, int)))


def test_pickle_round_trip(iris):
    X, y = iris
    clf = NetworkClassifier(hidden_layer_sizes=(8,), epochs=3, batch_norm=True, dropout=0.1, random_state=0).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("params, word", [({"eta": -1.0}, "'eta'"), ({"optimizer": "fast"}, "'optimizer'"),
                                          ({"cost": "quadratic"}, "'cost'"), ({"hidden_layer_sizes": (0,)},
                                                                              "hidden_layer_sizes"),
                                          ({"dropout": 1.0}, "'dropout'")])
def test_bad_parameters_are_named(iris, params, word):
    X, y = iris
    with pytest.raises(ValueError, match=word):
        NetworkClassifier(**params).fit(X, y)


def test_sample_weight_is_a_repetition_count(iris):
    X, y = iris
    with pytest.raises(ValueError, match="whole numbers"):
        NetworkClassifier(epochs=1).fit(X, y, sample_weight=np.full(len(y), 0.5))
