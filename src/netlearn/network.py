"""Networks: a ``Sequential`` stack of modules with a cost, and the book's ``Network(sizes)`` shorthand."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from . import blas, modelfile, optimizers, training
from . import costs as costs_mod
from .callbacks import Callback
from .backend import as_dtype, rng as make_rng
from .costs import Cost
from .history import History
from .layers import BatchNorm, Dropout, GaussianNoise, activations
from .layers.base import Module
from .layers.dense import Dense
from .layers.dropout import check_probability
from .memory import check_network_fits
from .regularizers import L1, L2
from .validation import check_X, check_data
from .init import get as get_init

#: Rows per chunk when evaluating a whole data set (bounds memory on MNIST-size data).
EVAL_CHUNK = 10_000


class Sequential:
    """Modules applied in order, then a cost on the output.

    >>> from netlearn import Sequential, Dense, Sigmoid
    >>> net = Sequential([Dense(784, 30), Sigmoid(), Dense(30, 10), Sigmoid()], cost="cross-entropy")
    """

    def __init__(self, modules: Sequence[Module], cost: str | Cost = "cross-entropy", dtype: Any = None) -> None:
        modules = list(modules)
        if not modules or not all(isinstance(m, Module) for m in modules):
            raise ValueError("The 'modules' parameter must be a non-empty list of netlearn modules "
                             "(Dense, Sigmoid, ...).")
        dense = [m for m in modules if isinstance(m, Dense)]
        if not dense:
            raise ValueError("A network needs at least one Dense layer.")
        for a, b in zip(dense, dense[1:]):
            if a.n_out != b.n_in:
                raise ValueError(f"Mismatched layer sizes: {a!r} gives {a.n_out} outputs but the next layer "
                                 f"{b!r} takes {b.n_in} inputs. Make each layer's n_in equal the previous n_out.")
        self.modules = modules
        self.cost = costs_mod.get(cost)
        self.dtype = as_dtype(dtype)
        for m in modules:
            if m.params and m.params[0].dtype != self.dtype:
                m.astype(self.dtype)
        self.n_in = dense[0].n_in
        self.n_out = dense[-1].n_out

    #: How raw data becomes inputs and outputs become answers (a
    #: :class:`netlearn.data.tabular.Preprocessing`: scaling, class labels), or None.
    preprocessing: Any = None
    _task: str | None = None

    @property
    def task(self) -> str:
        """``"classification"`` (the answer is the most active output) or ``"regression"`` (the outputs).

        Set it, or let it follow the preprocessing; otherwise a network with
        one output does regression (the argmax of one output is always 0).
        """
        if self._task is not None:
            return self._task
        task = getattr(self.preprocessing, "task", None)
        if task is not None:
            return task
        return "regression" if self.n_out == 1 else "classification"

    @task.setter
    def task(self, value: str | None) -> None:
        if value not in (None, "classification", "regression"):
            raise ValueError(f"The 'task' parameter must be 'classification' or 'regression'. Got {value!r} instead.")
        self._task = value

    def _check_classifier(self, what: str) -> None:
        if self.task == "regression":
            raise ValueError(f"{what} is for classification, but this network does regression (task='regression'); "
                             f"judge it by R², RMSE and MAE (netlearn.metrics.regression_scores).")

    # -- parameters --------------------------------------------------------
    def parameters(self) -> list[np.ndarray]:
        """Every parameter array, module by module."""
        return [p for m in self.modules for p in m.params]

    def gradients(self) -> list[np.ndarray]:
        """The gradient buffers matching ``parameters()`` (filled by back-propagation)."""
        return [g for m in self.modules for g in m.grads]

    def decay_mask(self) -> list[bool]:
        """For each parameter: does weight decay apply (weights yes, biases no)?"""
        return [d for m in self.modules for d in m.decay]

    def weights(self) -> list[np.ndarray]:
        """The parameters that regularization penalizes."""
        return [p for p, d in zip(self.parameters(), self.decay_mask()) if d]

    def astype(self, dtype: Any) -> "Sequential":
        """Cast the network to ``float32`` or ``float64`` in place (gradient checks use float64)."""
        self.dtype = as_dtype(dtype)
        for m in self.modules:
            m.astype(self.dtype)
        return self

    def reset_parameters(self, seed: int | np.random.Generator | None = None) -> None:
        """Redraw every parameter from its module's initializer."""
        g = make_rng(seed)
        for m in self.modules:
            m.reset_parameters(g)

    # -- forward and backward -------------------------------------------------
    @property
    def fused(self) -> bool:
        """Is the last module the cost's natural output activation (so ``dC/dz = a - y``)?"""
        last = self.modules[-1]
        return isinstance(last, activations.Activation) and last.name == self.cost.natural

    def forward(self, X: np.ndarray, train: bool = False) -> np.ndarray:
        """Output activations for a batch (no input checks: see ``predict_proba``)."""
        a = X
        for m in self.modules:
            a = m.forward(a, train)
        return a

    def backprop(self, X: np.ndarray, Y: np.ndarray) -> None:
        """Fill every module's ``grads`` with dC/dparam for the batch mean cost on targets ``Y``.

        Forward in training mode, the output delta (fused when the pairing is
        natural), then ``backward`` through the modules in reverse.  The first
        module only needs its weight gradients, not dC/dX.
        """
        a = self.forward(X, train=True)
        mods = self.modules
        if self.fused:
            delta = self.cost.delta_z(a, Y, out=mods[-1]._buffer("delta", a.shape, a.dtype))
            mods = mods[:-1]
        else:
            delta = self.cost.delta(a, Y)
        for m in reversed(mods[1:]):
            delta = m.backward(delta)
        first = mods[0]
        if isinstance(first, Dense):
            first.weight_grads(delta)
        else:
            first.backward(delta)

    def uses_standard_backprop(self) -> bool:
        """Is back-propagation this class's own, not a subclass's? (The compiled engine reproduces only this one.)"""
        return type(self).backprop is Sequential.backprop

    # -- evaluation ----------------------------------------------------------
    def _blas_threads(self, rows: int):
        """One BLAS thread while evaluating ``rows`` examples if the products are small (see :mod:`netlearn.blas`)."""
        return blas.limited(blas.largest_product(min(rows, EVAL_CHUNK), self.weights()))

    def _outputs(self, X: np.ndarray, pre_activation: bool = False) -> Iterable[np.ndarray]:
        mods = self.modules[:-1] if pre_activation else self.modules
        for s in range(0, X.shape[0], EVAL_CHUNK):
            a = X[s:s + EVAL_CHUNK]
            for m in mods:
                a = m.forward(a, False)
            yield a

    def predict_proba(self, X: Any) -> np.ndarray:
        """The network's output activations for inputs ``X`` of shape ``(n, n_in)``."""
        X = check_X(X, self.n_in, self.dtype)
        with self._blas_threads(X.shape[0]):
            return np.concatenate(list(self._outputs(X)))

    def predict(self, X: Any) -> np.ndarray:
        """Class labels: the index of the most active output neuron for each row of ``X``.

        A regression network (``task == "regression"``) returns its outputs ``(n, n_out)`` instead.
        """
        X = check_X(X, self.n_in, self.dtype)
        with self._blas_threads(X.shape[0]):
            if self.task == "regression":
                return np.concatenate(list(self._outputs(X)))
            return np.concatenate([np.argmax(a, axis=1) for a in self._outputs(X)])

    def _targets(self, y: np.ndarray) -> np.ndarray:
        return y if y.ndim == 2 else self.cost.targets(y, self.n_out, self.dtype)

    def accuracy(self, data: tuple[Any, Any]) -> float:
        """The fraction of examples whose predicted class is right (for targets: the argmax of the target)."""
        X, y = check_data(data, self.n_in, self.n_out, self.dtype, name="data")
        with self._blas_threads(X.shape[0]):
            return self._accuracy(X, y)

    def _accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        self._check_classifier("Accuracy")
        labels = y if y.ndim == 1 else np.argmax(y, axis=1)
        pred = np.concatenate([np.argmax(a, axis=1) for a in self._outputs(X)])
        return float(np.count_nonzero(pred == labels)) / X.shape[0]

    def total_cost(self, data: tuple[Any, Any], lmbda: float = 0.0, l1: float = 0.0, n: int | None = None) -> float:
        """Mean cost on ``data`` plus the regularization terms (the book's ``total_cost``).

        ``n`` is the size of the training set that scales ``lmbda`` (default ``len(data)``).
        """
        X, y = check_data(data, self.n_in, self.n_out, self.dtype, name="data")
        with self._blas_threads(X.shape[0]):
            return self._total_cost(X, y, lmbda, l1, n)

    def _total_cost(self, X: np.ndarray, y: np.ndarray, lmbda: float = 0.0, l1: float = 0.0,
                    n: int | None = None) -> float:
        fused = self.fused
        total = 0.0
        for s, out in zip(range(0, X.shape[0], EVAL_CHUNK), self._outputs(X, pre_activation=fused)):
            Y = self._targets(y[s:s + EVAL_CHUNK])
            c = self.cost.fn_z(out, Y) if fused else self.cost.fn(out, Y)
            total += c * out.shape[0]
        total /= X.shape[0]
        n = X.shape[0] if n is None else n
        if lmbda:
            total += L2(lmbda).penalty(self.weights(), n)
        if l1:
            total += L1(l1).penalty(self.weights(), n)
        return total

    # -- training and saving --------------------------------------------------
    def fit(self, training_data, epochs: int, batch_size: int, eta: float | None = None, lmbda: float = 0.0,
            evaluation_data=None, seed: int | None = None, *, l1: float = 0.0,
            optimizer: str | optimizers.Optimizer | None = None,
            monitor_evaluation_cost: bool = False, monitor_evaluation_accuracy: bool | None = None,
            monitor_training_cost: bool = False, monitor_training_accuracy: bool = False,
            callbacks: Sequence[Callback] = (), verbose: bool = False, progress: bool = False,
            max_norm: float | None = None, resume: Any = None, engine: str | None = None,
            threads: int | None = None, announce: bool | None = None) -> History:
        """Train by mini-batch stochastic gradient descent (the book's ``network2.SGD``).

        ``training_data`` is a pair ``(X, y)``; each of ``epochs`` epochs
        shuffles it (seeded by ``seed``) into mini-batches of ``batch_size``
        and takes one step of the optimizer (plain SGD with learning rate
        ``eta`` unless ``optimizer`` says otherwise; an optimizer object
        carries its own rate, so ``eta`` may then be left out) on each.
        ``lmbda`` and ``l1`` are the L2 and L1 regularization strengths in
        the book's form (scaled by the training set size); ``max_norm`` caps
        each neuron's incoming weight norm.  ``evaluation_data`` is monitored
        after every epoch (its accuracy by default; the ``monitor_*`` flags
        choose the figures).  ``callbacks`` (early stopping, schedules,
        checkpoints, augmentation) run at the start and end of each epoch;
        ``verbose`` prints a line per epoch, ``progress`` draws a bar.
        ``resume`` continues from a checkpoint; ``engine`` (``"auto"``,
        ``"numpy"``, ``"numba"``) and ``threads`` choose how the epochs are
        computed, not what they compute; ``announce`` (default: ``verbose`` or
        ``progress``) says on standard error when the compiled engine's first
        compile is slow.  Returns a :class:`History`; see
        :func:`netlearn.training.fit` for every detail.
        """
        return training.fit(self, training_data, epochs, batch_size, eta, lmbda=lmbda,
                            evaluation_data=evaluation_data, seed=seed, l1=l1, optimizer=optimizer,
                            monitor_evaluation_cost=monitor_evaluation_cost,
                            monitor_evaluation_accuracy=monitor_evaluation_accuracy,
                            monitor_training_cost=monitor_training_cost,
                            monitor_training_accuracy=monitor_training_accuracy, callbacks=callbacks,
                            verbose=verbose, progress=progress, max_norm=max_norm, resume=resume, engine=engine,
                            threads=threads, announce=announce)

    def save(self, path, format: str = "netlearn") -> None:
        """Write the network as JSON: netlearn's own format, or ``format="network2"`` for the book's."""
        modelfile.save(self, path, format=format)

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {m!r}" for m in self.modules)
        return f"{type(self).__name__}([\n{inner}\n], cost={self.cost.name!r})"


class Network(Sequential):
    """The book's network: ``Network([784, 30, 10])`` is Dense 784->30, sigmoid, Dense 30->10, sigmoid.

    Parameters
    ----------
    sizes : list of int
        Neurons per layer, input layer first.
    activation : str or list of str
        The hidden layers' neuron: one name for all, or one per hidden layer.
    cost : str
        ``cross-entropy`` (default), ``quadratic``, ``log-likelihood`` or ``hinge``.
    init : str
        ``default`` (weights N(0, 1/n_in)), ``large`` (N(0, 1)), ``glorot`` or ``he``.
    output : str, optional
        The last layer's activation; by default the one the texts pair with the
        cost (cross-entropy and quadratic: sigmoid, log-likelihood: softmax,
        hinge: identity).
    seed : int, optional
        Seeds the initialization only.
    dropout : float
        Inverted dropout with this drop probability on every hidden layer's
        output (after its activation); ``0`` (default) adds none.
    batch_norm : bool
        Insert :class:`BatchNorm` after every hidden ``Dense``, before its activation.
    input_noise : float
        Gaussian noise of this standard deviation added to the inputs during training.
    """

    def __init__(self, sizes: Sequence[int], activation: str | Sequence[str] = "sigmoid",
                 cost: str | Cost = "cross-entropy", init: str = "default", output: str | None = None,
                 seed: int | None = None, dtype: Any = None, *, dropout: float = 0.0, batch_norm: bool = False,
                 input_noise: float = 0.0) -> None:
        sizes, hidden_names, cost_obj, out_name, dropout, batch_norm = _parse_options(
            sizes, activation, cost, output, dropout, batch_norm)
        check_network_fits(sizes, as_dtype(dtype))  # one clear error, not a MemoryError mid-allocation
        g = make_rng(seed)
        dt = as_dtype(dtype)
        modules = [_build(kind, cfg, init, g, dt)
                   for kind, cfg in _layout(sizes, hidden_names, out_name, dropout, batch_norm, input_noise)]
        super().__init__(modules, cost=cost_obj, dtype=dt)
        self._set_options(sizes, hidden_names, activation, out_name, dropout, batch_norm, input_noise)

    @classmethod
    def from_modules(cls, modules: Sequence[Module], *, sizes: Sequence[int],
                     activation: str | Sequence[str] = "sigmoid", cost: str | Cost = "cross-entropy",
                     init: str = "default", output: str | None = None, dtype: Any = None, dropout: float = 0.0,
                     batch_norm: bool = False, input_noise: float = 0.0) -> "Network":
        """A Network around modules that already exist (how :func:`netlearn.load` rebuilds a saved one).

        The options must describe ``modules`` exactly as ``Network(sizes, ...)``
        would build them -- the same layer sizes, activations, initializer and
        regularization modules -- else a ValueError names the first
        disagreement (a file cannot call a 30-output network ``[784, 30, 10]``).
        """
        sizes, hidden_names, cost_obj, out_name, dropout, batch_norm = _parse_options(
            sizes, activation, cost, output, dropout, batch_norm)
        modules = list(modules)
        plan = _layout(sizes, hidden_names, out_name, dropout, batch_norm, input_noise)
        init_name = get_init(init).name
        if len(plan) != len(modules):
            raise ValueError(f"A Network {sizes} with these options has {len(plan)} modules; "
                             f"{len(modules)} were given ({[type(m).__name__ for m in modules]}).")
        for i, ((kind, cfg), m) in enumerate(zip(plan, modules)):
            if kind == "activation":
                ok = isinstance(m, activations.Activation) and m.name == cfg
                want = cfg
            else:
                got = m.get_config() if type(m).__name__ == kind else None
                ok = got is not None and all(got.get(k) == v for k, v in cfg.items())
                if ok and kind == "Dense":
                    ok = m.init.name == init_name
                want = f"{kind}({cfg}{', init=' + init_name if kind == 'Dense' else ''})"
            if not ok:
                raise ValueError(f"Module {i} is {m!r}, but a Network {sizes} (activation {hidden_names or '-'}, "
                                 f"output {out_name}) has {want} there: the options disagree with the layers.")
        net = cls.__new__(cls)
        Sequential.__init__(net, modules, cost=cost_obj, dtype=dtype)
        net._set_options(sizes, hidden_names, activation, out_name, dropout, batch_norm, input_noise)
        return net

    def _set_options(self, sizes, hidden_names, activation, out_name, dropout, batch_norm, input_noise) -> None:
        self.dropout, self.batch_norm = dropout, bool(batch_norm)
        self.input_noise = float(input_noise)
        self.sizes = sizes
        self.activation = hidden_names[0] if len(set(hidden_names)) == 1 else hidden_names
        if len(sizes) == 2:
            self.activation = "sigmoid" if isinstance(activation, (list, tuple)) else activations.get(activation).name
        self.output = out_name
        self.init = next(m for m in self.modules if isinstance(m, Dense)).init.name

    def options(self) -> dict:
        """The regularization modules' shorthand options (``dropout``, ``batch_norm``, ``input_noise``)."""
        return {"dropout": getattr(self, "dropout", 0.0), "batch_norm": getattr(self, "batch_norm", False),
                "input_noise": getattr(self, "input_noise", 0.0)}

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.options().items() if v)
        return (f"Network({self.sizes}, activation={self.activation!r}, cost={self.cost.name!r}, "
                f"init={self.init!r}, output={self.output!r}{extra})")


def _parse_options(sizes, activation, cost, output, dropout, batch_norm):
    """Check ``Network``'s options; return them resolved to names and plain values."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
        raise ValueError(f"The 'sizes' parameter must be a list of at least two layer sizes, e.g. "
                         f"[784, 30, 10]. Got {sizes!r} instead.")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(f"The 'sizes' parameter must hold positive integers. Got {list(sizes)!r}.")
    sizes = [int(s) for s in sizes]
    n_hidden = len(sizes) - 2
    if isinstance(activation, str) or isinstance(activation, activations.Activation):
        hidden = [activation] * n_hidden
    else:
        hidden = list(activation)
        if len(hidden) != n_hidden:
            raise ValueError(f"The 'activation' parameter must be one name or one per hidden layer "
                             f"({n_hidden} for sizes {sizes}). Got {len(hidden)} names: {hidden!r}.")
    hidden_names = [activations.get(a).name for a in hidden]
    cost_obj = costs_mod.get(cost)
    out_name = activations.get(output if output is not None else costs_mod.DEFAULT_OUTPUT[cost_obj.name]).name
    dropout = check_probability("dropout", dropout)
    if not isinstance(batch_norm, (bool, np.bool_)):
        raise ValueError(f"The 'batch_norm' parameter must be True or False. Got {batch_norm!r} instead.")
    return sizes, hidden_names, cost_obj, out_name, dropout, batch_norm


def _layout(sizes, hidden_names, out_name, dropout, batch_norm, input_noise) -> list[tuple[str, Any]]:
    """The modules of ``Network(sizes, ...)`` as (kind, config) pairs, before anything is allocated."""
    n_hidden = len(sizes) - 2
    plan: list[tuple[str, Any]] = []
    if input_noise:
        plan.append(("GaussianNoise", {"sigma": float(input_noise)}))
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        plan.append(("Dense", {"n_in": n_in, "n_out": n_out}))
        if i < n_hidden and batch_norm:
            plan.append(("BatchNorm", {"n": n_out}))
        plan.append(("activation", hidden_names[i] if i < n_hidden else out_name))
        if i < n_hidden and dropout:
            plan.append(("Dropout", {"p": dropout}))
    return plan


def _build(kind: str, cfg: Any, init, rng, dtype) -> Module:
    if kind == "activation":
        return activations.get(cfg)
    if kind == "Dense":
        return Dense(cfg["n_in"], cfg["n_out"], init=init, seed=rng, dtype=dtype)
    if kind == "BatchNorm":
        return BatchNorm(cfg["n"], dtype=dtype)
    return {"Dropout": Dropout, "GaussianNoise": GaussianNoise}[kind](**cfg)
