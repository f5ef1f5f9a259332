"""Optimizers as chains of small gradient transformations (in the manner of Optax).

A transformation takes the list of gradients ("updates") and rewrites it in
place, keeping whatever state it needs (momentum's velocity, Adam's
moments).  An optimizer is a ``chain`` of them whose last link scales by
``-eta``; ``Optimizer.step`` then adds the updates to the parameters::

    sgd(eta)            = chain(scale_by_learning_rate(eta))
    L2 + sgd            = chain(add_decayed_weights(lmbda/n), scale_by_learning_rate(eta))

so the book's rule ``w -> (1 - eta lmbda/n) w - eta dC/dw`` is one
``add_decayed_weights`` link in front of plain SGD, and the same link works
in front of any other optimizer.  Everything happens in place: the hot loop
allocates nothing.
"""
from __future__ import annotations

import inspect
from typing import Sequence

import numpy as np

from .validation import check_positive, check_unit


def _arrays_state(**named: list) -> dict:
    """State of per-parameter arrays (``None`` where a parameter has none), copied for a checkpoint."""
    return {k: [None if a is None else a.copy() for a in v] for k, v in named.items()}


def _load_arrays(target: list, saved: list, what: str) -> None:
    if len(saved) != len(target):
        raise ValueError(f"Optimizer state for '{what}' has {len(saved)} arrays; this network needs {len(target)}.")
    for i, (t, s) in enumerate(zip(target, saved)):
        if t is None:
            continue
        s = np.asarray(s, dtype=t.dtype)
        if s.shape != t.shape:
            raise ValueError(f"Optimizer state '{what}'[{i}] has shape {s.shape}; expected {t.shape}.")
        t[...] = s


class GradientTransformation:
    """One link of an optimizer chain."""

    def init(self, params: Sequence[np.ndarray], decay: Sequence[bool]) -> None:
        """Allocate state for ``params``; ``decay[i]`` says whether weight decay applies to ``params[i]``."""
        self.decay = list(decay)

    def update(self, updates: list[np.ndarray], params: Sequence[np.ndarray]) -> None:
        """Rewrite ``updates`` in place."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Arrays and numbers needed to resume (for checkpoints)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args().items())
        return f"{type(self).__name__}({args})"

    def _repr_args(self) -> dict:
        return {}


class scale_by_learning_rate(GradientTransformation):
    """``u -> -eta u``: the last link of every first-order optimizer. ``eta`` may be changed between steps (schedules do)."""

    def __init__(self, eta: float) -> None:
        self.eta = check_positive("eta", eta)

    def update(self, updates, params):
        s = -self.eta
        for u in updates:
            u *= s

    def _repr_args(self):
        return {"eta": self.eta}


class add_decayed_weights(GradientTransformation):
    """L2 weight decay: ``u -> u + c w`` for decaying parameters (``c = lmbda/n`` in the book's form).

    It is the gradient of the L2 term ``(lmbda/2n) sum w^2`` (the book's eq. 85).
    """

    def __init__(self, c: float) -> None:
        self.c = check_positive("lmbda", c, allow_zero=True)

    def init(self, params, decay):
        super().init(params, decay)
        self._tmp = [np.empty_like(p) if d else None for p, d in zip(params, decay)]

    def update(self, updates, params):
        for u, w, d, tmp in zip(updates, params, self.decay, self._tmp):
            if d:
                np.multiply(w, w.dtype.type(self.c), out=tmp)
                u += tmp

    def _repr_args(self):
        return {"c": self.c}


class add_l1(GradientTransformation):
    """L1 decay: ``u -> u + c sgn(w)`` (``c = lmbda/n``; the gradient of the book's eq. 95)."""

    def __init__(self, c: float) -> None:
        self.c = check_positive("l1", c, allow_zero=True)

    def init(self, params, decay):
        super().init(params, decay)
        self._tmp = [np.empty_like(p) if d else None for p, d in zip(params, decay)]

    def update(self, updates, params):
        for u, w, d, tmp in zip(updates, params, self.decay, self._tmp):
            if d:
                np.sign(w, out=tmp)
                tmp *= w.dtype.type(self.c)
                u += tmp

    def _repr_args(self):
        return {"c": self.c}


class chain(GradientTransformation):
    """Apply transformations one after the other."""

    def __init__(self, *links: GradientTransformation) -> None:
        flat: list[GradientTransformation] = []
        for link in links:
            flat.extend(link.links if isinstance(link, chain) else [link])
        self.links = flat

    def init(self, params, decay):
        for link in self.links:
            link.init(params, decay)

    def update(self, updates, params):
        for link in self.links:
            link.update(updates, params)

    def state_dict(self):
        return {str(i): link.state_dict() for i, link in enumerate(self.links)}

    def load_state_dict(self, state):
        for i, link in enumerate(self.links):
            link.load_state_dict(state.get(str(i), {}))

    def __repr__(self):
        return "chain(" + ", ".join(map(repr, self.links)) + ")"


class Optimizer:
    """A chain of transformations applied to a network's parameters.

    ``step(params, grads)`` overwrites ``grads`` with the updates and adds them
    to ``params``.  ``eta`` reads and sets the learning rate of the chain's
    ``scale_by_learning_rate`` link.
    """

    def __init__(self, transform: GradientTransformation, name: str = "optimizer") -> None:
        self.transform = transform if isinstance(transform, chain) else chain(transform)
        self.name = name

    def _lr_link(self) -> scale_by_learning_rate:
        for link in reversed(self.transform.links):
            if isinstance(link, scale_by_learning_rate):
                return link
        raise ValueError(f"The optimizer {self!r} has no learning rate.")

    @property
    def eta(self) -> float:
        return self._lr_link().eta

    @eta.setter
    def eta(self, value: float) -> None:
        self._lr_link().eta = check_positive("eta", value)

    def init(self, params: Sequence[np.ndarray], decay: Sequence[bool]) -> None:
        self.transform.init(params, decay)

    def step(self, params: Sequence[np.ndarray], grads: list[np.ndarray]) -> None:
        self.transform.update(grads, params)
        for p, u in zip(params, grads):
            p += u

    def prepend(self, *links: GradientTransformation) -> "Optimizer":
        """A new optimizer with ``links`` run before this one's (used to add regularization)."""
        return Optimizer(chain(*links, self.transform), self.name)

    def append(self, *links: GradientTransformation) -> "Optimizer":
        """A new optimizer with ``links`` run after this one's (used for constraints such as max-norm)."""
        return Optimizer(chain(self.transform, *links), self.name)

    def state_dict(self) -> dict:
        return self.transform.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.transform.load_state_dict(state)

    def __repr__(self) -> str:
        return f"Optimizer({self.name}: {self.transform!r})"


# ---------------------------------------------------------------------------
# Links that rescale the gradient (run before ``scale_by_learning_rate``)
# ---------------------------------------------------------------------------
class scale_by_adagrad(GradientTransformation):
    """Adagrad (Duchi, Hazan & Singer 2011): ``G -> G + g^2``, ``u = g / (sqrt(G) + eps)``.

    Each weight's step shrinks with the sum of its past squared gradients, so
    rarely-updated weights keep larger steps.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        self.eps = check_positive("eps", eps)

    def init(self, params, decay):
        super().init(params, decay)
        self.G = [np.zeros_like(p) for p in params]
        self._tmp = [np.empty_like(p) for p in params]

    def update(self, updates, params):
        for g, G, tmp in zip(updates, self.G, self._tmp):
            np.multiply(g, g, out=tmp)
            G += tmp
            np.sqrt(G, out=tmp)
            tmp += self.eps
            g /= tmp

    def state_dict(self):
        return _arrays_state(G=self.G)

    def load_state_dict(self, state):
        if state:
            _load_arrays(self.G, state["G"], "G")

    def _repr_args(self):
        return {"eps": self.eps}


class scale_by_rms(GradientTransformation):
    """RMSProp (Tieleman & Hinton 2012; the MIT 6.036 notes call it "adadelta").

    ``s -> rho s + (1 - rho) g^2`` (a running average of squared gradients),
    ``u = g / (sqrt(s) + eps)``.
    """

    def __init__(self, rho: float = 0.9, eps: float = 1e-8) -> None:
        self.rho = check_unit("rho", rho)
        self.eps = check_positive("eps", eps)

    def init(self, params, decay):
        super().init(params, decay)
        self.s = [np.zeros_like(p) for p in params]
        self._tmp = [np.empty_like(p) for p in params]

    def update(self, updates, params):
        for g, s, tmp in zip(updates, self.s, self._tmp):
            dt = g.dtype.type
            np.multiply(g, g, out=tmp)
            tmp *= dt(1 - self.rho)
            s *= dt(self.rho)
            s += tmp
            np.sqrt(s, out=tmp)
            tmp += dt(self.eps)
            g /= tmp

    def state_dict(self):
        return _arrays_state(s=self.s)

    def load_state_dict(self, state):
        if state:
            _load_arrays(self.s, state["s"], "s")

    def _repr_args(self):
        return {"rho": self.rho, "eps": self.eps}


class scale_by_adadelta(GradientTransformation):
    """Adadelta (Zeiler 2012, "ADADELTA: an adaptive learning rate method", Algorithm 1).

    ``Eg2 -> rho Eg2 + (1 - rho) g^2``;
    ``u = sqrt(Edx2 + eps) / sqrt(Eg2 + eps) g``;
    ``Edx2 -> rho Edx2 + (1 - rho) u^2``.
    The ratio of RMS values gives steps in the units of the weights, so
    Zeiler's method needs no learning rate (use ``eta = 1``).
    """

    def __init__(self, rho: float = 0.95, eps: float = 1e-6) -> None:
        self.rho = check_unit("rho", rho)
        self.eps = check_positive("eps", eps)

    def init(self, params, decay):
        super().init(params, decay)
        self.Eg2 = [np.zeros_like(p) for p in params]
        self.Edx2 = [np.zeros_like(p) for p in params]
        self._tmp = [np.empty_like(p) for p in params]

    def update(self, updates, params):
        for g, Eg2, Edx2, tmp in zip(updates, self.Eg2, self.Edx2, self._tmp):
            dt = g.dtype.type
            rho, eps = dt(self.rho), dt(self.eps)
            np.multiply(g, g, out=tmp)
            tmp *= dt(1) - rho
            Eg2 *= rho
            Eg2 += tmp
            # g *= sqrt(Edx2 + eps) / sqrt(Eg2 + eps)
            np.add(Eg2, eps, out=tmp)
            np.sqrt(tmp, out=tmp)
            g /= tmp
            np.add(Edx2, eps, out=tmp)
            np.sqrt(tmp, out=tmp)
            g *= tmp
            np.multiply(g, g, out=tmp)
            tmp *= dt(1) - rho
            Edx2 *= rho
            Edx2 += tmp

    def state_dict(self):
        return _arrays_state(Eg2=self.Eg2, Edx2=self.Edx2)

    def load_state_dict(self, state):
        if state:
            _load_arrays(self.Eg2, state["Eg2"], "Eg2")
            _load_arrays(self.Edx2, state["Edx2"], "Edx2")

    def _repr_args(self):
        return {"rho": self.rho, "eps": self.eps}


class scale_by_adam(GradientTransformation):
    """Adam (Kingma & Ba 2015, Algorithm 1) with bias correction.

    ``m -> beta1 m + (1 - beta1) g``, ``v -> beta2 v + (1 - beta2) g^2``,
    ``m_hat = m / (1 - beta1^t)``, ``v_hat = v / (1 - beta2^t)``,
    ``u = m_hat / (sqrt(v_hat) + eps)``; ``t`` counts the steps from 1.
    """

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.beta1 = check_unit("beta1", beta1)
        self.beta2 = check_unit("beta2", beta2)
        self.eps = check_positive("eps", eps)

    def init(self, params, decay):
        super().init(params, decay)
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self._tmp = [np.empty_like(p) for p in params]

    def update(self, updates, params):
        self.t += 1
        c1 = 1.0 - self.beta1 ** self.t
        c2 = 1.0 - self.beta2 ** self.t
        for g, m, v, tmp in zip(updates, self.m, self.v, self._tmp):
            dt = g.dtype.type
            b1, b2 = dt(self.beta1), dt(self.beta2)
            m *= b1
            np.multiply(g, dt(1) - b1, out=tmp)
            m += tmp
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= dt(1) - b2
            v += tmp
            # u = (m / c1) / (sqrt(v / c2) + eps)
            np.multiply(v, dt(1.0 / c2), out=tmp)
            np.sqrt(tmp, out=tmp)
            tmp += dt(self.eps)
            np.divide(m, tmp, out=g)
            g *= dt(1.0 / c1)

    def state_dict(self):
        return {"t": self.t, **_arrays_state(m=self.m, v=self.v)}

    def load_state_dict(self, state):
        if state:
            self.t = int(state["t"])
            _load_arrays(self.m, state["m"], "m")
            _load_arrays(self.v, state["v"], "v")

    def _repr_args(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


# ---------------------------------------------------------------------------
# Links that act on the step itself (run after ``scale_by_learning_rate``)
# ---------------------------------------------------------------------------
class trace(GradientTransformation):
    """Momentum in the book's form (Nielsen ch. 3, eqs. 107-108): ``v -> mu v - eta grad``, ``w -> w + v``.

    This link comes *after* ``scale_by_learning_rate``, so it receives
    ``-eta grad`` and accumulates it into the velocity ``v``; a schedule that
    changes ``eta`` changes only the new contribution, as in the book.

    With ``nesterov=True`` it is Nesterov's accelerated gradient in the form of
    Sutskever et al. (2013) rewritten for the weights actually stored (Bengio,
    Boulanger-Lewandowski & Pascanu 2013): ``v_new = mu v - eta grad``,
    ``w -> w - mu v + (1 + mu) v_new``.

    ``mu`` is the momentum coefficient (the book's "friction" is ``1 - mu``),
    in ``[0, 1)``: ``mu = 0`` is plain SGD.
    """

    def __init__(self, mu: float = 0.9, nesterov: bool = False) -> None:
        self.mu = check_unit("mu", mu)
        self.nesterov = bool(nesterov)

    def init(self, params, decay):
        super().init(params, decay)
        self.v = [np.zeros_like(p) for p in params]
        self._prev = [np.empty_like(p) for p in params] if self.nesterov else None

    def update(self, updates, params):
        for i, (u, v) in enumerate(zip(updates, self.v)):
            mu = u.dtype.type(self.mu)
            if self.nesterov:
                prev = self._prev[i]
                np.multiply(v, mu, out=prev)      # mu v_old
                v *= mu
                v += u                             # v_new = mu v_old - eta g
                np.multiply(v, 1 + mu, out=u)
                u -= prev                          # u = (1 + mu) v_new - mu v_old
            else:
                v *= mu
                v += u
                u[...] = v

    def state_dict(self):
        return _arrays_state(v=self.v)

    def load_state_dict(self, state):
        if state:
            _load_arrays(self.v, state["v"], "v")

    def _repr_args(self):
        return {"mu": self.mu, "nesterov": self.nesterov}


class constrain_max_norm(GradientTransformation):
    """Max-norm constraint (Srebro & Shraibman 2005; used with dropout by Srivastava et al. 2014, sec. 5.1).

    After the step, each neuron's vector of incoming weights (a column of
    ``W``, which is ``(n_in, n_out)``) is projected back onto the ball
    ``||w_j||_2 <= c``.  As a link it rewrites the step ``u`` into
    ``project(w + u) - w``; it must therefore be the last link of the chain.
    Only 2-D decaying parameters (``Dense`` weights) are constrained.
    """

    def __init__(self, c: float) -> None:
        self.c = check_positive("max_norm", c)

    def init(self, params, decay):
        super().init(params, decay)
        self._new = [np.empty_like(p) if d and p.ndim == 2 else None for p, d in zip(params, decay)]

    def update(self, updates, params):
        for u, w, new in zip(updates, params, self._new):
            if new is None:
                continue
            np.add(w, u, out=new)
            norms = np.sqrt(np.einsum("ij,ij->j", new, new))
            over = norms > self.c
            if over.any():
                scale = np.where(over, self.c / np.maximum(norms, np.finfo(norms.dtype).tiny), 1.0)
                new *= scale.astype(new.dtype)
                np.subtract(new, w, out=u)

    def _repr_args(self):
        return {"c": self.c}


# ---------------------------------------------------------------------------
# The optimizers (aliases): chains of the links above
# ---------------------------------------------------------------------------
def sgd(eta: float) -> Optimizer:
    """Plain mini-batch stochastic gradient descent (Nielsen eq. 20-21): ``w -> w - eta dC/dw``.

    ``eta`` is the learning rate.
    """
    return Optimizer(chain(scale_by_learning_rate(eta)), "sgd")


def momentum(eta: float, mu: float = 0.9) -> Optimizer:
    """Momentum-based gradient descent (Nielsen ch. 3, "Variations on stochastic gradient descent").

    ``v -> mu v - eta dC/dw``, ``w -> w + v``.  ``eta``: learning rate;
    ``mu``: momentum coefficient in ``[0, 1)`` (``0`` is plain SGD).
    """
    return Optimizer(chain(scale_by_learning_rate(eta), trace(mu)), "momentum")


def nesterov(eta: float, mu: float = 0.9) -> Optimizer:
    """Nesterov's accelerated gradient (Nesterov 1983; Sutskever, Martens, Dahl & Hinton 2013).

    The gradient is in effect taken at the look-ahead point ``w + mu v``:
    ``v -> mu v - eta dC/dw(w + mu v)``, ``w -> w + v`` (implemented in the
    equivalent form of :class:`trace` with ``nesterov=True``).  ``eta``:
    learning rate; ``mu``: momentum coefficient in ``[0, 1)``.
    """
    return Optimizer(chain(scale_by_learning_rate(eta), trace(mu, nesterov=True)), "nesterov")


def adagrad(eta: float, eps: float = 1e-8) -> Optimizer:
    """Adagrad (Duchi, Hazan & Singer 2011): ``G -> G + g^2``, ``w -> w - eta g / (sqrt(G) + eps)``.

    ``eta``: learning rate (about 0.01-0.1); ``eps``: guards the division.
    """
    return Optimizer(chain(scale_by_adagrad(eps), scale_by_learning_rate(eta)), "adagrad")


def rmsprop(eta: float, rho: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """RMSProp (Tieleman & Hinton 2012, Coursera lecture 6.5), the MIT 6.036 notes' "adadelta".

    ``s -> rho s + (1 - rho) g^2``, ``w -> w - eta g / (sqrt(s) + eps)``.
    ``eta``: learning rate (about 0.001); ``rho``: decay of the running
    average in ``[0, 1)``; ``eps``: guards the division.
    """
    return Optimizer(chain(scale_by_rms(rho, eps), scale_by_learning_rate(eta)), "rmsprop")


def adadelta(eta: float = 1.0, rho: float = 0.95, eps: float = 1e-6) -> Optimizer:
    """Zeiler's Adadelta (2012): steps ``sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) g``.

    ``eta``: a multiplier of the step, ``1`` in Zeiler's method; ``rho``:
    decay of both running averages, in ``[0, 1)`` (paper: 0.95);
    ``eps``: the paper's constant (1e-6), which also sets the first steps' size.
    """
    return Optimizer(chain(scale_by_adadelta(rho, eps), scale_by_learning_rate(eta)), "adadelta")


def adam(eta: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam (Kingma & Ba 2015): bias-corrected running moments of ``g`` and ``g^2``.

    ``w -> w - eta m_hat / (sqrt(v_hat) + eps)``.  ``eta``: learning rate
    (paper: 0.001); ``beta1``, ``beta2``: decay rates of the first and second
    moment estimates, in ``[0, 1)`` (0.9, 0.999); ``eps``: 1e-8.
    """
    return Optimizer(chain(scale_by_adam(beta1, beta2, eps), scale_by_learning_rate(eta)), "adam")


OPTIMIZERS = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adagrad": adagrad,
              "rmsprop": rmsprop, "adadelta": adadelta, "adam": adam}


def get(optimizer: str | Optimizer | None, eta: float | None = None, **hyper) -> Optimizer:
    """An optimizer from its name (with learning rate ``eta`` and hyper-parameters) or an Optimizer passed through.

    ``hyper`` holds the named optimizer's own arguments (``mu``, ``beta1``,
    ``beta2``, ``rho``, ``eps``); an argument that the optimizer does not take
    is an error.  With ``eta=None`` a name gets its own default learning rate
    where its function has one (``adam``: 0.001, ``adadelta``: 1); the others
    (``sgd``, ``momentum``, ``nesterov``, ``adagrad``, ``rmsprop``) have no
    rate that suits every problem, so leaving ``eta`` out is an error.
    """
    if optimizer is None:
        optimizer = "sgd"
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        make = OPTIMIZERS[optimizer.lower()]
        params = inspect.signature(make).parameters
        accepted = [p for p in params if p != "eta"]
        unknown = sorted(set(hyper) - set(accepted))
        if unknown:
            raise ValueError(f"The optimizer {optimizer!r} takes the hyper-parameters {accepted}; "
                             f"got {unknown} as well.")
        if eta is None:
            if params["eta"].default is inspect.Parameter.empty:
                raise ValueError(f"The optimizer {optimizer!r} has no default learning rate: give eta "
                                 f"(e.g. fit(data, 30, 10, 0.5, optimizer={optimizer!r})) or an optimizer "
                                 f"that carries its rate (optimizer=optimizers.{optimizer.lower()}(0.5)).")
            return make(**hyper)
        return make(eta, **hyper)
    raise ValueError(f"The 'optimizer' parameter must be one of {sorted(OPTIMIZERS)}. Got {optimizer!r} instead.")
