"""scikit-learn estimators: :class:`NetworkClassifier` and :class:`NetworkRegressor` (extra ``sklearn``).

They wrap a :class:`netlearn.Network` trained by :meth:`netlearn.Network.fit`,
so they work wherever scikit-learn takes an estimator (``Pipeline``,
``GridSearchCV``, ``cross_val_score``) and pass its ``check_estimator``.
What they add over ``MLPClassifier`` / ``MLPRegressor``: dropout
(``dropout=0.2``) and batch normalization (``batch_norm=True``), which
scikit-learn's MLP does not have, the book's cost functions (cross-entropy,
log-likelihood, hinge) and initializations, L1 beside L2, every optimizer
of :mod:`netlearn.optimizers`, and the per-epoch :class:`netlearn.History`
(``history_``).

The defaults are chosen for small tables, not for the book's 50,000 images:
one hidden layer of 100 ReLU neurons with He initialization, Adam, a
light L2 (``lmbda=1e-4``, the book's ``lambda/n`` form), mini-batches of
``min(200, n)`` and 200 epochs -- scikit-learn's MLP defaults, which train a
few hundred rows in about a second -- except that the classifier's learning
rate is 0.01 (see ``eta`` below).  The book's ``eta=0.5``, ``lmbda=5`` and
mini-batches of 10 with sigmoid neurons were tuned for MNIST's 50,000
images; on a table of 100 rows they need many more epochs.  Scale the inputs
first (``make_pipeline(StandardScaler(), NetworkClassifier())``); the
regressor standardizes its targets itself and maps predictions back.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError("netlearn.sklearn needs scikit-learn: pip install 'netlearn[sklearn]'.") from exc
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def validate_data(est, X, y="no_validation", reset=True, **kw):
        return est._validate_data(X, y, reset=reset, **kw)

from . import io, metrics, optimizers
from .callbacks import EarlyStopping
from .data.tabular import Preprocessing
from .network import Network

DTYPES = [np.float64, np.float32]

__all__ = ["NetworkClassifier", "NetworkRegressor"]

#: Epochs without improvement of the validation score before early stopping ends training.
PATIENCE = 10


def _check_param(name: str, value: Any, kind: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, options: tuple = ()) -> None:
    """One parameter against its rule; errors in scikit-learn's words."""
    if options and value in options:
        return
    if kind == "int":
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    elif kind == "bool":
        ok = isinstance(value, (bool, np.bool_))
    else:
        ok = False
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        rng = ""
        if low is not None or high is not None:
            rng = (f" in the range {'(' if low_open or low is None else '['}{'-inf' if low is None else low}, "
                   f"{'inf' if high is None else high}{')' if high_open or high is None else ']'}")
        alt = f" or one of {list(options)}" if options else ""
        raise ValueError(f"The '{name}' parameter of {{cls}} must be {'an' if kind == 'int' else 'a'} {kind}{rng}"
                         f"{alt}. Got {value!r} instead.")


class _NetworkEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, the network, the training."""

    _default_cost = "log-likelihood"
    _costs: tuple = ()

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", cost=None, init="he", eta=0.001, lmbda=1e-4,
                 l1=0.0, mu=0.9, optimizer="adam", batch_size="auto", epochs=200, dropout=0.0, batch_norm=False,
                 early_stopping=False, validation_fraction=0.1, random_state=None, verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.cost = cost
        self.init = init
        self.eta = eta
        self.lmbda = lmbda
        self.l1 = l1
        self.mu = mu
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.epochs = epochs
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    # -- checks ---------------------------------------------------------------------------------------------
    def _check_params(self) -> list[int]:
        cls = type(self).__name__
        try:
            hidden = self.hidden_layer_sizes
            if isinstance(hidden, numbers.Integral):
                hidden = [hidden]
            hidden = list(hidden)
            if not all(isinstance(h, numbers.Integral) and not isinstance(h, bool) and h >= 1 for h in hidden):
                raise ValueError(f"The 'hidden_layer_sizes' parameter of {{cls}} must be a tuple of positive "
                                 f"integers. Got {self.hidden_layer_sizes!r} instead.")
            _check_param("eta", self.eta, "float", 0, low_open=True)
            _check_param("lmbda", self.lmbda, "float", 0)
            _check_param("l1", self.l1, "float", 0)
            _check_param("mu", self.mu, "float", 0, 1, high_open=True)
            _check_param("epochs", self.epochs, "int", 1)
            _check_param("batch_size", self.batch_size, "int", 1, options=("auto",))
            _check_param("dropout", self.dropout, "float", 0, 1, high_open=True)
            _check_param("batch_norm", self.batch_norm, "bool")
            _check_param("early_stopping", self.early_stopping, "bool")
            _check_param("validation_fraction", self.validation_fraction, "float", 0, 1, low_open=True,
                         high_open=True)
            if self.optimizer not in optimizers.OPTIMIZERS:
                raise ValueError(f"The 'optimizer' parameter of {{cls}} must be one of {sorted(optimizers.OPTIMIZERS)}."
                                 f" Got {self.optimizer!r} instead.")
            if self.cost is not None and self.cost not in self._costs:
                raise ValueError(f"The 'cost' parameter of {{cls}} must be one of {list(self._costs)} or None. "
                                 f"Got {self.cost!r} instead.")
        except ValueError as exc:
            raise ValueError(str(exc).replace("{cls}", cls)) from None
        return [int(h) for h in hidden]

    def _optimizer(self):
        hyper = {"mu": self.mu} if self.optimizer in ("momentum", "nesterov") else {}
        return optimizers.get(self.optimizer, self.eta, **hyper)

    def _seeds(self) -> tuple[int, int]:
        """A seed for the initialization and one for the shuffling, drawn from ``random_state``."""
        rs = check_random_state(self.random_state)
        return int(rs.randint(np.iinfo(np.int32).max)), int(rs.randint(np.iinfo(np.int32).max))

    @staticmethod
    def _repeat(X, y, sample_weight):
        """Whole-number sample weights as repetitions of the rows (the meaning scikit-learn tests for)."""
        if sample_weight is None:
            return X, y
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if np.any(sw < 0) or not np.all(sw == np.round(sw)):
            raise ValueError("sample_weight must hold whole numbers >= 0 (how many times each row counts): "
                             "netlearn's networks are trained on repeated rows.")
        if not np.any(sw):
            raise ValueError("sample_weight holds only zero weights; at least one row needs a weight above zero.")
        counts = sw.astype(np.intp)
        return np.repeat(X, counts, axis=0), np.repeat(y, counts, axis=0)

    def _dtype(self, X):
        return np.float32 if X.dtype == np.float32 else np.float64

    def _data(self, X, y="no_validation", reset: bool = True, **kw):
        """Validated dense arrays; a sparse ``X`` is made dense (the network multiplies dense matrices)."""
        if isinstance(y, str) and y == "no_validation":
            X = validate_data(self, X, reset=reset, dtype=DTYPES, accept_sparse=True)
            return X.toarray() if sp.issparse(X) else X
        X, y = validate_data(self, X, y, reset=reset, dtype=DTYPES, accept_sparse=True, **kw)
        return (X.toarray() if sp.issparse(X) else X), y

    # Pickling (and copy.deepcopy) goes through netlearn's own model format: the network's modules hold
    # functions (initializers) that pickle cannot name.
    def __getstate__(self):
        state = self.__dict__.copy()
        if "network_" in state:
            state["network_"] = io.to_dict(state["network_"])
        return state

    def __setstate__(self, state):
        if isinstance(state.get("network_"), dict):
            state["network_"] = io.from_dict(state["network_"])
        self.__dict__.update(state)

    # -- training ---------------------------------------------------------------------------------------------
    def _build(self, n_in: int, n_out: int, dtype, seed: int, cost: str | None = None) -> Network:
        hidden = self._check_params()
        cost = cost or self.cost or self._default_cost
        net = Network([n_in, *hidden, n_out], activation=self.activation, cost=cost, init=self.init,
                      output=self._output(cost), seed=seed, dtype=dtype, dropout=float(self.dropout),
                      batch_norm=bool(self.batch_norm))
        net.task = self._task
        return net

    def _output(self, cost: str) -> str | None:
        return None

    def _train(self, X, T, epochs: int, incremental: bool):
        """Train ``self.network_`` on inputs ``X`` and targets ``T`` (class indices or scaled values)."""
        seed = self._shuffle_seed
        self._shuffle_seed = int(np.random.default_rng(seed).integers(np.iinfo(np.int32).max))
        evaluation, callbacks = None, []
        if self.early_stopping and not incremental:
            stratify = T if self._task == "classification" and T.ndim == 1 else None
            try:
                X, Xv, T, Tv = train_test_split(X, T, test_size=self.validation_fraction, random_state=seed,
                                                stratify=stratify)
            except ValueError:  # a class too small to stratify: split unstratified
                X, Xv, T, Tv = train_test_split(X, T, test_size=self.validation_fraction, random_state=seed)
            evaluation = (Xv, Tv)
            watch = ("evaluation_cost" if getattr(self, "_multilabel", False) else
                     "evaluation_accuracy" if self._task == "classification" else "evaluation_r2")
            callbacks.append(EarlyStopping(PATIENCE, monitor=watch))
        batch = min(200, X.shape[0]) if self.batch_size == "auto" else min(int(self.batch_size), X.shape[0])
        history = self.network_.fit((X, T), epochs, batch, self.eta, lmbda=self.lmbda, l1=self.l1,
                                    evaluation_data=evaluation, seed=seed, optimizer=self._optimizer(),
                                    monitor_training_cost=True, monitor_evaluation_cost=evaluation is not None,
                                    callbacks=callbacks, verbose=bool(self.verbose))
        self._record(history, incremental)
        return self

    def _record(self, history, incremental: bool) -> None:
        if incremental and hasattr(self, "history_"):
            for name, values in history.to_dict().items():
                if isinstance(values, list):
                    getattr(self.history_, name).extend(values)
        else:
            self.history_ = history
        self.n_iter_ = self.history_.epochs
        self.loss_curve_ = list(self.history_.training_cost)
        scores = self.history_.evaluation_accuracy or self.history_.evaluation_r2
        if scores:
            self.validation_scores_ = list(scores)
            self.best_validation_score_ = max(scores)
        self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else None

    def _outputs(self, X):
        check_is_fitted(self, "network_")
        X = self._data(X, reset=False)
        return self.network_.predict_proba(X.astype(self.network_.dtype, copy=False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class NetworkClassifier(ClassifierMixin, _NetworkEstimator):
    """A feed-forward network classifier trained by back-propagation (netlearn's :class:`~netlearn.Network`).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        Neurons in each hidden layer; the input and output layers come from the data.
    activation : str, default "relu"
        The hidden neurons: ``sigmoid``, ``tanh``, ``relu`` or ``identity``.
    cost : str or None, default None
        ``log-likelihood`` (softmax outputs, scikit-learn's log-loss; the default), ``cross-entropy``
        (sigmoid outputs) or ``hinge``.
    init : str, default "he"
        ``default`` (N(0, 1/n_in)), ``large``, ``glorot`` or ``he`` (suits ReLU).
    eta : float, default 0.01
        The learning rate (for ``optimizer="sgd"`` try 0.1).  Adam's usual 0.001 is slow on a few hundred
        rows: with ``min(200, n)`` rows per batch, 200 epochs are only a few hundred steps (on iris,
        5-fold cross-validated, 0.893 at 0.001 and 0.953 at 0.01).
    lmbda : float, default 1e-4
        L2 regularization in the book's form (``lmbda/(2n) sum w²``, as scikit-learn's ``alpha``).
    l1 : float, default 0.0
        L1 regularization (``l1/n sum |w|``).
    mu : float, default 0.9
        Momentum coefficient for ``optimizer="momentum"`` or ``"nesterov"``.
    optimizer : str, default "adam"
        A name from :data:`netlearn.optimizers.OPTIMIZERS`.
    batch_size : int or "auto", default "auto"
        Mini-batch size; ``auto`` is ``min(200, n_samples)``.
    epochs : int, default 200
        Epochs of training per ``fit`` (``partial_fit`` trains one).
    dropout : float, default 0.0
        Dropout probability on every hidden layer's output.
    batch_norm : bool, default False
        Batch normalization after every hidden layer's weights.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the rows (stratified) and stop after 10 epochs without a better
        validation accuracy, keeping the best weights.
    validation_fraction : float, default 0.1
    random_state : int, RandomState or None, default None
        Seeds the initialization, the shuffling, dropout and the validation split.
    verbose : bool, default False
        Print one line per epoch.

    Attributes
    ----------
    classes_, n_features_in_, network_ (the trained :class:`netlearn.Network`), history_ (its
    :class:`netlearn.History`), n_iter_ (epochs trained), loss_curve_ (training cost per epoch, with the
    regularization terms), validation_scores_ and best_validation_score_ (with early stopping).

    ``sample_weight`` in ``fit`` takes whole numbers: how many times each row counts.
    """

    _default_cost = "log-likelihood"
    _costs = ("log-likelihood", "cross-entropy", "hinge")
    _task = "classification"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", cost=None, init="he", eta=0.01, lmbda=1e-4,
                 l1=0.0, mu=0.9, optimizer="adam", batch_size="auto", epochs=200, dropout=0.0, batch_norm=False,
                 early_stopping=False, validation_fraction=0.1, random_state=None, verbose=False):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, cost=cost, init=init,
                         eta=eta, lmbda=lmbda, l1=l1, mu=mu, optimizer=optimizer, batch_size=batch_size,
                         epochs=epochs, dropout=dropout, batch_norm=batch_norm, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, random_state=random_state, verbose=verbose)

    def fit(self, X, y, sample_weight=None):
        """Train a new network on ``X`` (n, features) and class labels ``y`` for ``epochs`` epochs.

        ``y`` may also be a 0/1 indicator matrix ``(n, k)`` (multi-label): then
        each output is one label's sigmoid, trained with the cross-entropy
        cost, and ``predict`` gives the labels whose probability is at least 0.5.
        """
        self._check_params()
        X, y = self._data(X, y, reset=True, multi_output=True)
        self._multilabel = type_of_target(y) == "multilabel-indicator"
        if not self._multilabel:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        X, y = self._repeat(X, y, sample_weight)
        seed, self._shuffle_seed = self._seeds()
        if self._multilabel:
            if self.cost not in (None, "cross-entropy"):
                raise ValueError(f"Multi-label targets need cost='cross-entropy' (one sigmoid per label); got "
                                 f"cost={self.cost!r}.")
            self.classes_ = np.arange(y.shape[1])
            self.network_ = self._build(X.shape[1], y.shape[1], self._dtype(X), seed, cost="cross-entropy")
            return self._train(X, np.asarray(y, dtype=self.network_.dtype), self.epochs, incremental=False)
        self._encoder = LabelEncoder().fit(y)
        self.classes_ = self._encoder.classes_
        if self.classes_.shape[0] < 2:
            raise ValueError(f"NetworkClassifier needs at least two classes in y to learn from; it has one class "
                             f"({self.classes_[0]!r}).")
        self.network_ = self._build(X.shape[1], self.classes_.shape[0], self._dtype(X), seed)
        return self._train(X, self._encoder.transform(y), self.epochs, incremental=False)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train one epoch on ``(X, y)``, continuing from the current weights.

        The first call builds the network and needs ``classes`` (every label
        that will ever appear).  Each call restarts the optimizer's running
        averages (momentum, Adam's moments) from zero.
        """
        first = not hasattr(self, "network_")
        X, y = self._data(X, y, reset=first)
        check_classification_targets(y)
        if not first and getattr(self, "_multilabel", False):
            raise ValueError("partial_fit continues single-label training; this classifier was fitted on "
                             "multi-label targets (use fit).")
        if first:
            self._multilabel = False
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit (every label y may hold).")
            self._check_params()
            self._encoder = LabelEncoder().fit(np.asarray(classes))
            self.classes_ = self._encoder.classes_
            if self.classes_.shape[0] < 2:
                raise ValueError("NetworkClassifier needs at least two classes; 'classes' names one.")
            seed, self._shuffle_seed = self._seeds()
            self.network_ = self._build(X.shape[1], self.classes_.shape[0], self._dtype(X), seed)
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {list(np.unique(classes))} differ from those of the first call "
                             f"{list(self.classes_)}.")
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y holds labels {list(unseen)} that are not in classes {list(self.classes_)}.")
        X, y = self._repeat(X, y, sample_weight)
        return self._train(X, self._encoder.transform(y), 1, incremental=True)

    def predict_proba(self, X):
        """Class probabilities ``(n, n_classes)``, columns ordered as ``classes_`` (rows sum to 1)."""
        check_is_fitted(self, "network_")
        X = self._data(X, reset=False).astype(self.network_.dtype, copy=False)
        if self._multilabel:
            return self.network_.predict_proba(X).astype(np.float64)  # one sigmoid per label
        return metrics.class_probabilities(self.network_, X)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each row, as one of ``classes_`` (multi-label: a 0/1 row per example)."""
        A = self._outputs(X)
        if self._multilabel:
            return (A >= 0.5).astype(np.int64)
        return self.classes_[np.argmax(A, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class NetworkRegressor(RegressorMixin, _NetworkEstimator):
    """A feed-forward network regressor: quadratic cost, linear (identity) outputs, one per target.

    The parameters are :class:`NetworkClassifier`'s (``cost`` takes only
    ``quadratic``), but ``eta`` defaults to Adam's 0.001: a larger rate
    overfits small regression tables sooner (scikit-learn's diabetes data,
    5-fold cross-validated R²: 0.44 at 0.001, 0.28 at 0.01).  The targets are standardized for training (mean 0,
    deviation 1 per column, learned in ``fit``) and predictions mapped back,
    so the defaults work whatever the target's units; ``loss_curve_`` is the
    cost on the standardized targets.  With ``early_stopping`` the watched
    figure is the validation R².  ``y`` may be ``(n,)`` or ``(n, k)`` for
    ``k`` targets.
    """

    _default_cost = "quadratic"
    _costs = ("quadratic",)
    _task = "regression"

    def _output(self, cost: str) -> str | None:
        return "identity"

    def _targets(self, y, first: bool):
        Y = y.reshape(len(y), -1).astype(np.float64)
        if first:
            shift, scale = Y.mean(axis=0), Y.std(axis=0)
            scale = np.where(scale > 0, scale, 1.0)
            self._scaling = Preprocessing("regression", "standard", y_shift=shift, y_scale=scale)
        return ((Y - self._scaling.y_shift) / self._scaling.y_scale)

    def fit(self, X, y, sample_weight=None):
        """Train a new network on ``X`` (n, features) and targets ``y`` (n,) or (n, k) for ``epochs`` epochs."""
        self._check_params()
        X, y = self._data(X, y, reset=True, multi_output=True, y_numeric=True)
        X, y = self._repeat(X, y, sample_weight)
        self._y_ndim = y.ndim
        T = self._targets(y, first=True)
        seed, self._shuffle_seed = self._seeds()
        self.network_ = self._build(X.shape[1], T.shape[1], self._dtype(X), seed)
        self.network_.preprocessing = self._scaling
        return self._train(X, T.astype(self.network_.dtype), self.epochs, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """Train one epoch on ``(X, y)``, continuing from the current weights (the first call builds the network
        and learns the target scaling from its ``y``)."""
        first = not hasattr(self, "network_")
        X, y = self._data(X, y, reset=first, multi_output=True, y_numeric=True)
        X, y = self._repeat(X, y, sample_weight)
        if first:
            self._check_params()
            self._y_ndim = y.ndim
        T = self._targets(y, first)
        if first:
            seed, self._shuffle_seed = self._seeds()
            self.network_ = self._build(X.shape[1], T.shape[1], self._dtype(X), seed)
            self.network_.preprocessing = self._scaling
        elif T.shape[1] != self.network_.n_out:
            raise ValueError(f"y has {T.shape[1]} targets; the network was built for {self.network_.n_out}.")
        return self._train(X, T.astype(self.network_.dtype), 1, incremental=True)

    def predict(self, X):
        """Predicted targets: ``(n,)`` when fitted on a 1-D ``y``, else ``(n, k)``."""
        A = self._outputs(X)
        A = self._scaling.inverse_y(A)
        return A[:, 0] if self._y_ndim == 1 else A

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
