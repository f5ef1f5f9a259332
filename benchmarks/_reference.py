"""Reference trainers timed beside netlearn: the plain NumPy matrix loop and a book-style per-example loop.

Both implement the book's mini-batch SGD with L2 (``network2.py``'s
``update_mini_batch``), sigmoid neurons and the cross-entropy cost, in float32
(the plain loop) or float64 (the book-style loop, like the book).
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit


def init(sizes, seed=0, dtype=np.float32):
    """Weights N(0, 1/n_in) as (n_in, n_out), biases N(0, 1)."""
    g = np.random.default_rng(seed)
    Ws = [(g.standard_normal((a, b)) / np.sqrt(a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [g.standard_normal(b).astype(dtype) for b in sizes[1:]]
    return Ws, bs


def plain_numpy_epoch(X, Y, Ws, bs, m, eta, lmbda, seed=0):
    """One epoch of the plain NumPy loop: shuffle, slice, two products forward, one for the hidden delta,
    two for the weight gradients, update.  (Written for two weight layers, as [784, h, 10].)"""
    n = X.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    Xs, Ys = X[perm], Y[perm]
    W1, W2 = Ws
    b1, b2 = bs
    decay = np.float32(1 - eta * lmbda / n)
    for s in range(0, n, m):
        x, y = Xs[s:s + m], Ys[s:s + m]
        a1 = expit(x @ W1 + b1)
        a2 = expit(a1 @ W2 + b2)
        d2 = (a2 - y) / len(x)
        d1 = (d2 @ W2.T) * a1 * (1 - a1)
        W2 *= decay
        W2 -= eta * (a1.T @ d2)
        b2 -= eta * d2.sum(0)
        W1 *= decay
        W1 -= eta * (x.T @ d1)
        b1 -= eta * d1.sum(0)


def book_style_epoch(X, Y, Ws, bs, m, eta, lmbda, seed=0):
    """One epoch in the style of the book's network2.py: back-propagate each example alone (column vectors)."""
    n = X.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    weights = [W.T.astype(np.float64) for W in Ws]
    biases = [b[:, None].astype(np.float64) for b in bs]
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    for s in range(0, n, m):
        idx = perm[s:s + m]
        nb = [np.zeros(b.shape) for b in biases]
        nw = [np.zeros(w.shape) for w in weights]
        for k in idx:
            x, y = X[k][:, None], Y[k][:, None]
            activation, activations, zs = x, [x], []
            for b, w in zip(biases, weights):
                z = w @ activation + b
                zs.append(z)
                activation = sig(z)
                activations.append(activation)
            delta = activations[-1] - y
            dnb = [None] * len(biases)
            dnw = [None] * len(weights)
            dnb[-1], dnw[-1] = delta, delta @ activations[-2].T
            for l in range(2, len(weights) + 1):
                sp = sig(zs[-l]) * (1 - sig(zs[-l]))
                delta = (weights[-l + 1].T @ delta) * sp
                dnb[-l], dnw[-l] = delta, delta @ activations[-l - 1].T
            nb = [a + d for a, d in zip(nb, dnb)]
            nw = [a + d for a, d in zip(nw, dnw)]
        weights = [(1 - eta * lmbda / n) * w - (eta / len(idx)) * g for w, g in zip(weights, nw)]
        biases = [b - (eta / len(idx)) * g for b, g in zip(biases, nb)]
    for W, w in zip(Ws, weights):
        W[...] = w.T
    for b, bb in zip(bs, biases):
        b[...] = bb[:, 0]
