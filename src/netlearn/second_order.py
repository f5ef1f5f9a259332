"""Second-order training on the whole training set: L-BFGS, conjugate gradient, and Newton's method.

All three see the network as a function of one flat parameter vector ``w``
(every module's ``params``, in order) and minimize the book's total cost
``C(w) = mean cost + (lmbda/2n) sum w^2 + (l1/n) sum |w|`` over the whole
training set, with the gradient from back-propagation (``Sequential.backprop``)
plus the regularization terms (L1 through its sub-gradient ``sgn(w)``).

* :func:`minimize` with ``method="lbfgs"`` (Nocedal 1980; Liu & Nocedal 1989)
  or ``"cg"`` (Polak-Ribiere nonlinear conjugate gradient, Nocedal & Wright
  ch. 5) hands ``C`` and ``grad C`` to ``scipy.optimize.minimize``, whose line
  searches choose the steps: no learning rate.
* :func:`newton` is the Hessian technique of Nielsen ch. 3 ("Other
  techniques"): with ``H`` the exact Hessian (central differences of the
  back-propagated gradient, one column per parameter), take damped steps
  ``dw = -eta (H + damping I)^-1 grad C``.  A network's Hessian has ``P^2``
  entries and costs ``2P`` back-propagations, so it is refused for more than
  ``max_params`` parameters.

The networks are computed in float64 during these methods (line searches and
finite differences need it) and cast back to their dtype at the end.  Modules
that make the cost random or batch-dependent (Dropout, GaussianNoise,
BatchNorm) are refused: a line search needs a deterministic ``C(w)``.
"""
from __future__ import annotations

from contextlib import contextmanager

import time
from typing import Any

import numpy as np

from . import metrics
from .layers import BatchNorm, Stochastic
from .history import History, format_epoch
from .validation import check_data, check_int, check_positive
from .regularizers import L1, L2

#: The largest network (in parameters) whose Hessian :func:`newton` builds by default (a 2,000 x 2,000 matrix).
MAX_NEWTON_PARAMS = 2000

METHODS = {"lbfgs": "L-BFGS-B", "l-bfgs": "L-BFGS-B", "l-bfgs-b": "L-BFGS-B", "cg": "CG"}


def get_flat(net) -> np.ndarray:
    """All parameters as one float64 vector (module by module, in ``parameters()`` order)."""
    return np.concatenate([p.ravel() for p in net.parameters()]).astype(np.float64)


def set_flat(net, w: np.ndarray) -> None:
    """Copy the flat vector ``w`` back into the network's parameter arrays."""
    i = 0
    for p in net.parameters():
        p[...] = w[i:i + p.size].reshape(p.shape)
        i += p.size


def _decay_vector(net) -> np.ndarray:
    return np.concatenate([np.full(p.size, d, dtype=bool) for p, d in zip(net.parameters(), net.decay_mask())])


def _check_deterministic(net) -> None:
    bad = [type(m).__name__ for m in net.modules if isinstance(m, (Stochastic, BatchNorm))]
    if bad:
        raise ValueError(f"Full-batch second-order methods need a deterministic cost, but this network has "
                         f"{sorted(set(bad))}. Remove dropout, input noise and batch norm, or train with a "
                         f"first-order optimizer.")


class Objective:
    """``C(w)`` and ``grad C(w)`` of a network on a full data set (what the three methods minimize)."""

    def __init__(self, net, X: np.ndarray, y: np.ndarray, lmbda: float = 0.0, l1: float = 0.0,
                 n: int | None = None) -> None:
        self.net, self.X, self.y = net, X, y
        self.T = net._targets(y)
        self.n = X.shape[0] if n is None else n
        self.lmbda, self.l1 = lmbda, l1
        self.mask = _decay_vector(net)
        self.evaluations = 0

    def cost(self, w: np.ndarray) -> float:
        set_flat(self.net, w)
        return self.net._total_cost(self.X, self.y, lmbda=self.lmbda, l1=self.l1, n=self.n)

    def grad(self, w: np.ndarray) -> np.ndarray:
        """Back-propagation's gradient plus ``(lmbda/n) w + (l1/n) sgn(w)`` on the weights."""
        set_flat(self.net, w)
        self.net.backprop(self.X, self.T)
        g = np.concatenate([gr.ravel() for gr in self.net.gradients()]).astype(np.float64)
        if self.lmbda:
            g += np.where(self.mask, self.lmbda / self.n * w, 0.0)
        if self.l1:
            g += np.where(self.mask, self.l1 / self.n * np.sign(w), 0.0)
        return g

    def __call__(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        self.evaluations += 1
        return self.cost(w), self.grad(w)


def hessian(objective: Objective, w: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """The exact Hessian ``d^2 C / dw_i dw_j`` by central differences of the gradient, symmetrized.

    Column ``i`` is ``(grad C(w + h e_i) - grad C(w - h e_i)) / 2h``: second-order
    accurate, ``2P`` back-propagations for ``P`` parameters.
    """
    P = w.size
    H = np.empty((P, P))
    x = w.copy()
    for i in range(P):
        x[i] = w[i] + h
        gp = objective.grad(x)
        x[i] = w[i] - h
        gm = objective.grad(x)
        x[i] = w[i]
        H[:, i] = (gp - gm) / (2 * h)
    objective.grad(w)  # leave the network at w
    return 0.5 * (H + H.T)


def hessian_vector_product(objective: Objective, w: np.ndarray, v: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """``H v`` without forming ``H``: ``(grad C(w + h v) - grad C(w - h v)) / 2h`` (Pearlmutter 1994's quantity)."""
    scale = h / max(np.linalg.norm(v), 1e-300)
    hv = (objective.grad(w + scale * v) - objective.grad(w - scale * v)) / (2 * scale)
    set_flat(objective.net, w)
    return hv


def _prepare(net, training_data, evaluation_data, lmbda, l1):
    _check_deterministic(net)
    lmbda, l1 = L2(lmbda).lmbda, L1(l1).lmbda
    X, y = check_data(training_data, net.n_in, net.n_out, np.dtype(np.float64))
    ev = None
    if evaluation_data is not None:
        ev = check_data(evaluation_data, net.n_in, net.n_out, np.dtype(np.float64), name="evaluation_data")
    return X, y, ev, lmbda, l1


class _Recorder:
    """Fills a History with one entry per iteration (the analogue of an epoch)."""

    def __init__(self, net, objective: Objective, evaluation, monitor_training_accuracy: bool,
                 monitor_evaluation_cost: bool, monitor_evaluation_accuracy: bool, verbose: bool) -> None:
        self.net, self.obj, self.ev = net, objective, evaluation
        self.flags = (monitor_training_accuracy, monitor_evaluation_cost, monitor_evaluation_accuracy)
        self.verbose = verbose
        self.history = History()
        self.t0 = time.perf_counter()

    def record(self, w: np.ndarray, cost: float | None = None, eta: float | None = None) -> None:
        h, net, obj = self.history, self.net, self.obj
        h.epoch_seconds.append(time.perf_counter() - self.t0)
        set_flat(net, w)
        h.training_cost.append(float(obj.cost(w) if cost is None else cost))
        if eta is not None:
            h.eta.append(float(eta))
        if self.flags[0]:
            self._quality("training", obj.X, obj.y)
        if self.ev is not None and self.flags[1]:
            h.evaluation_cost.append(net._total_cost(*self.ev, lmbda=obj.lmbda, l1=obj.l1, n=obj.n))
        if self.ev is not None and self.flags[2]:
            self._quality("evaluation", *self.ev)
        if self.verbose:
            print(format_epoch(h, h.epochs - 1, h.epochs).replace("Epoch", "Iteration"))
        self.t0 = time.perf_counter()

    def _quality(self, which: str, X: np.ndarray, y: np.ndarray) -> None:
        """Accuracy, or for a regression network R², RMSE and MAE (as the Monitor of ``fit`` records them)."""
        if self.net.task == "regression":
            for k, v in metrics.network_regression_scores(self.net, X, y).items():
                getattr(self.history, f"{which}_{k}").append(v)
        else:
            getattr(self.history, f"{which}_accuracy").append(self.net._accuracy(X, y))


@contextmanager
def _full_batch(net, training_data, evaluation_data, lmbda, l1, monitor_training_accuracy, monitor_evaluation_cost,
                monitor_evaluation_accuracy, verbose):
    """What every full-batch method shares: validated data, the network in float64 for the run (its own
    dtype back afterwards, whatever happens), the objective and the per-iteration recorder."""
    X, y, ev, lmbda, l1 = _prepare(net, training_data, evaluation_data, lmbda, l1)
    dtype = net.dtype
    net.astype(np.float64)
    try:
        obj = Objective(net, X, y, lmbda, l1)
        if monitor_evaluation_accuracy is None:
            monitor_evaluation_accuracy = ev is not None
        yield obj, _Recorder(net, obj, ev, monitor_training_accuracy, monitor_evaluation_cost,
                             monitor_evaluation_accuracy, verbose)
    finally:
        net.astype(dtype)


def minimize(net, training_data, method: str = "lbfgs", max_iter: int = 100, lmbda: float = 0.0,
             l1: float = 0.0, evaluation_data=None, *, tol: float | None = None,
             monitor_training_accuracy: bool = False, monitor_evaluation_cost: bool = False,
             monitor_evaluation_accuracy: bool | None = None, verbose: bool = False) -> History:
    """Train ``net`` by full-batch L-BFGS or conjugate gradient through ``scipy.optimize.minimize``.

    Parameters
    ----------
    method : str
        ``"lbfgs"`` (scipy's L-BFGS-B without bounds) or ``"cg"`` (Polak-Ribiere).
    max_iter : int
        Iterations (each is one History entry, like an epoch; scipy may
        evaluate ``C`` several times per iteration in its line search).
    lmbda, l1 : float
        L2 and L1 strengths in the book's ``lambda/n`` form, ``n`` the training-set size.
    tol : float, optional
        scipy's ``tol`` (convergence tolerance).

    Returns a :class:`History`: ``training_cost`` every iteration, the
    evaluation accuracy when ``evaluation_data`` is given, no ``eta``.
    The network keeps the final weights (in its own dtype).
    """
    from scipy.optimize import minimize as scipy_minimize

    key = str(method).lower()
    if key not in METHODS:
        raise ValueError(f"The 'method' parameter must be 'lbfgs' or 'cg'. Got {method!r} instead.")
    max_iter = check_int("max_iter", max_iter)
    with _full_batch(net, training_data, evaluation_data, lmbda, l1, monitor_training_accuracy,
                     monitor_evaluation_cost, monitor_evaluation_accuracy, verbose) as (obj, rec):
        last: dict[str, Any] = {}

        def fun(w):
            c, g = obj(w)
            last["w"], last["c"] = w.copy(), c
            return c, g

        def callback(wk):
            cached = last.get("w")
            rec.record(wk, last["c"] if cached is not None and np.array_equal(cached, wk) else None)

        res = scipy_minimize(fun, get_flat(net), jac=True, method=METHODS[key], tol=tol, callback=callback,
                             options={"maxiter": max_iter})
        set_flat(net, res.x)
        rec.history.stop_reason = str(res.message)  # type: ignore[attr-defined]
    return rec.history


def newton(net, training_data, iterations: int = 10, eta: float = 1.0, damping: float = 1e-4,
           lmbda: float = 0.0, l1: float = 0.0, evaluation_data=None, *, max_params: int = MAX_NEWTON_PARAMS,
           h: float = 1e-5, monitor_training_accuracy: bool = False, monitor_evaluation_cost: bool = False,
           monitor_evaluation_accuracy: bool | None = None, verbose: bool = False) -> History:
    """The Hessian technique: damped Newton steps ``dw = -eta (H + damping I)^-1 grad C`` on the full training set.

    ``H`` is the exact Hessian of the total cost (:func:`hessian`).  Away
    from a minimum a network's Hessian is usually indefinite, where a Newton
    step can climb.  So ``mu`` is at least ``1.1 |lambda_min(H)|`` when ``H``
    has a negative eigenvalue (then ``H + mu I`` is positive definite and the
    step a descent direction), at least ``damping``, and, as in
    Levenberg-Marquardt, raised ten-fold while a step would raise the cost
    (the adaptive part shrinks ten-fold after each success).  Large ``mu``
    turns the step into gradient descent with rate ``eta/mu``.

    Parameters
    ----------
    iterations : int
        Newton steps (each a History entry).
    eta : float
        Step length in (0, inf); 1 is the pure Newton step.
    damping : float
        The least ``mu`` added to the diagonal, ``>= 0``.
    max_params : int
        Refuse networks with more parameters than this (the Hessian needs
        ``P^2`` floats and ``2P`` back-propagations per step).

    Returns a :class:`History` (``eta`` per step; the damping actually used
    at each step is in the extra list ``history.damping``).
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve, eigh

    iterations = check_int("iterations", iterations)
    eta = check_positive("eta", eta)
    damping = check_positive("damping", damping, allow_zero=True)
    max_params = check_int("max_params", max_params)
    P = sum(p.size for p in net.parameters())
    if P > max_params:
        raise ValueError(f"The Hessian technique needs the full {P:,} x {P:,} Hessian: this network has {P:,} "
                         f"parameters, more than the limit of {max_params:,} (max_params). Use a network with fewer "
                         f"parameters, raise max_params, or train with 'lbfgs' or 'cg'.")
    with _full_batch(net, training_data, evaluation_data, lmbda, l1, monitor_training_accuracy,
                     monitor_evaluation_cost, monitor_evaluation_accuracy, verbose) as (obj, rec):
        used: list[float] = []
        w = get_flat(net)
        extra = 0.0  # Levenberg-Marquardt's adaptive part of the damping
        cost = obj.cost(w)
        for _ in range(iterations):
            g = obj.grad(w)
            H = hessian(obj, w, h)
            # the least shift that makes H + mu I positive definite: -lambda_min, with a margin
            lam = eigh(H, eigvals_only=True, subset_by_index=[0, 0])[0]
            shift = 1.1 * -lam + 1e-10 * max(1.0, float(np.abs(np.diag(H)).max())) if lam <= 0 else 0.0
            for _attempt in range(40):
                mu = max(damping, shift, extra)
                try:
                    factor = cho_factor(H + mu * np.eye(P), lower=True)
                except LinAlgError:
                    extra = max(10 * mu, 1e-8)
                    continue
                trial = w - eta * cho_solve(factor, g)
                trial_cost = obj.cost(trial)
                if np.isfinite(trial_cost) and trial_cost <= cost:
                    break
                extra = max(10 * mu, 1e-8)  # the step climbed: shorten it towards gradient descent
            else:
                trial, trial_cost = w, cost
            w, cost = trial, trial_cost
            used.append(float(mu))
            rec.record(w, cost=cost, eta=eta)
            extra /= 10  # trust the quadratic model more after a successful step
        set_flat(net, w)
        rec.history.damping = used  # type: ignore[attr-defined]
    return rec.history
