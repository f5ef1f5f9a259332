"""Expanded training data: shapes, label preservation, determinism, and the per-epoch callback."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from netlearn import Network
from netlearn.data import augment as A


def images(n=6, side=8, seed=0):
    return np.random.default_rng(seed).random((n, side * side), dtype=np.float32)


def test_shift_is_exact_with_black_edges():
    X = np.zeros((1, 16), np.float32)
    X[0, 1 * 4 + 2] = 1.0                          # pixel at row 1, column 2 of a 4x4 image
    for (dy, dx), (r, c) in {(-1, 0): (0, 2), (1, 0): (2, 2), (0, -1): (1, 1), (0, 1): (1, 3)}.items():
        out = A.shift(X, dy, dx).reshape(4, 4)
        assert out[r, c] == 1.0 and out.sum() == 1.0
    full = np.ones((1, 16), np.float32)
    up = A.shift(full, -1, 0).reshape(4, 4)
    assert (up[-1] == 0).all() and (up[:-1] == 1).all()     # the vacated row is black, nothing wraps
    assert A.shift(full, 4, 0).sum() == 0


def test_shifts_the_books_expansion():
    X, y = images(5), np.arange(5)
    X2, y2 = A.shifts(X, y)
    assert X2.shape == (25, 64) and X2.dtype == np.float32
    np.testing.assert_array_equal(X2[:5], X)
    np.testing.assert_array_equal(y2, np.tile(y, 5))
    np.testing.assert_array_equal(X2[5:10], A.shift(X, -1, 0))


@pytest.mark.parametrize("kinds, blocks", [("shifts", 5), ("shifts,rotations,elastic", 7),
                                           (["noise"], 2), ("elastic,rotations", 3)])
def test_expand_shapes_and_labels(kinds, blocks):
    X, y = images(4), np.array([3, 1, 4, 1])
    X2, y2 = A.expand(X, y, kinds, seed=0)
    assert X2.shape == (4 * blocks, 64) and X2.dtype == np.float32
    assert X2.min() >= 0 and X2.max() <= 1
    np.testing.assert_array_equal(X2[:4], X)
    np.testing.assert_array_equal(y2, np.tile(y, blocks))


def test_expand_copies():
    X2, y2 = A.expand(images(3), np.arange(3), "rotations,noise", seed=1, copies=3)
    assert X2.shape == (3 * 7, 64) and y2.shape == (21,)
    assert not np.array_equal(X2[3:6], X2[6:9])     # each copy is a fresh draw


@pytest.mark.parametrize("kinds", ["rotations", "elastic", "noise", "shifts,rotations,elastic,noise"])
def test_same_seed_same_output(kinds):
    X, y = images(), np.arange(6)
    a, _ = A.expand(X, y, kinds, seed=7)
    b, _ = A.expand(X, y, kinds, seed=7)
    np.testing.assert_array_equal(a, b)
    if kinds != "shifts":
        c, _ = A.expand(X, y, kinds, seed=8)
        assert not np.array_equal(a, c)


def test_rotation_matches_scipy_rotate():
    X = images(5, side=9, seed=3)
    out = A.rotate(X, 30, seed=11)
    # White-box: distort draws the angles first, uniformly in [-30, 30] degrees.
    angles = np.random.default_rng(11).uniform(-30, 30, 5)
    for i in range(5):
        ref = ndimage.rotate(X[i].reshape(9, 9), -angles[i], reshape=False, order=1, mode="grid-constant")
        np.testing.assert_allclose(out[i], np.clip(ref.ravel(), 0, 1), atol=1e-5)


def test_rotation_keeps_a_centred_disc():
    r, c = np.mgrid[:21, :21]
    disc = ((r - 10) ** 2 + (c - 10) ** 2 <= 36).astype(np.float32).reshape(1, -1)
    out = A.rotate(np.repeat(disc, 4, 0), 20, seed=0)
    assert np.abs(out - disc).mean() < 0.05                     # only the rim is blurred by interpolation
    np.testing.assert_allclose(out.sum(axis=1), disc.sum(), rtol=0.03)


def test_elastic_does_not_mix_images_of_the_batch():
    X = np.zeros((3, 28 * 28), np.float32)
    X[1] = 1.0                                       # a white image between two black ones
    out = A.elastic(X, alpha=34, sigma=4, seed=0)
    assert out[0].max() == 0 and out[2].max() == 0
    assert out[1].mean() > 0.5


def test_elastic_small_alpha_is_nearly_identity_and_alpha_matters():
    X = images(4, side=28)
    assert np.abs(A.elastic(X, alpha=1e-4, seed=0) - X).max() < 1e-3
    assert np.abs(A.elastic(X, alpha=34, seed=0) - X).mean() > 0.05


def test_noise_strength_and_clipping():
    X = np.full((200, 100), 0.5, np.float32)
    out = A.add_noise(X, 0.1, seed=0)
    assert abs(float((out - X).std()) - 0.1) < 0.005
    ext = A.add_noise(np.ones((10, 100), np.float32), 0.5, seed=0)
    assert ext.max() <= 1.0 and ext.min() >= 0.0 and ext.dtype == np.float32


def test_float64_input_gives_float32():
    out, _ = A.expand(images().astype(np.float64), np.arange(6), "rotations", seed=0)
    assert out.dtype == np.float32


def test_bad_arguments():
    X, y = images(), np.arange(6)
    with pytest.raises(ValueError, match="not square"):
        A.expand(np.zeros((2, 10), np.float32), np.arange(2), "rotations")
    A.expand(np.zeros((2, 10), np.float32), np.arange(2), "rotations", shape=(2, 5))
    with pytest.raises(ValueError, match="'kinds'.*blur"):
        A.expand(X, y, "shifts,blur")
    with pytest.raises(ValueError, match="'rotate_degrees'"):
        A.expand(X, y, "rotations", rotate_degrees=-1)
    with pytest.raises(ValueError, match="'elastic_sigma'"):
        A.distort(X, elastic_alpha=3, elastic_sigma=0)
    with pytest.raises(ValueError, match="equally many"):
        A.expand(X, y[:3])
    with pytest.raises(ValueError, match="'copies'"):
        A.expand(X, y, "noise", copies=0)
    with pytest.raises(ValueError, match="'out'"):
        A.distort(X, noise_sigma=0.1, out=X)
    with pytest.raises(ValueError, match="at least one"):
        A.Augment()


def test_distortions_are_computed_for_many_images_at_once(monkeypatch):
    # What keeps distort fast (4,096 images in about 0.5 s) is that scipy resamples and smooths whole
    # chunks of images per call, not one image per call: count the calls instead of timing them.
    calls = {"map_coordinates": 0, "gaussian_filter": 0}
    for name in calls:
        real = getattr(ndimage, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(A.ndimage, name, counted)
    X = images(2 * A._CHUNK + 5, side=28)
    out = A.distort(X, rotate_degrees=10, elastic_alpha=34, noise_sigma=0.1, seed=0)
    assert calls == {"map_coordinates": 3, "gaussian_filter": 3}
    assert out.shape == X.shape and 0 <= out.min() and out.max() <= 1 and not np.allclose(out, X)


class Spy:
    """Wraps a network's backprop to record, per epoch, which training rows each mini-batch came from."""

    def __init__(self, net):
        self.net, self.batches = net, []
        self._backprop = net.backprop
        net.backprop = self.backprop

    def backprop(self, xb, tb):
        self.batches.append(xb.copy())
        return self._backprop(xb, tb)


class Record(A.Augment.__mro__[1]):   # a plain netlearn Callback
    def __init__(self):
        self.seen = []

    def on_epoch_begin(self, state):
        self.seen.append(state.training_data[0].copy())


def tiny_training(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 64), dtype=np.float32), rng.integers(0, 3, n)


def test_augment_callback_feeds_fresh_distortions_and_restores():
    X, y = tiny_training()
    original = X.copy()
    net = Network([64, 5, 3], seed=0)
    spy, rec = Spy(net), Record()
    aug = A.Augment(rotate_degrees=15, elastic_alpha=8, noise_sigma=0.05, seed=3)
    # engine='numpy': the spy wraps backprop, which the compiled engine does not call (and 'auto' picks
    # that engine once an earlier test has loaded it).
    net.fit((X, y), 3, 10, 0.1, callbacks=[aug, rec], seed=0, engine="numpy")
    # Each epoch's mini-batches are rows of that epoch's distorted array, not of the originals.
    assert len(rec.seen) == 3 and len(spy.batches) == 12
    for epoch, seen in enumerate(rec.seen):
        rows = {r.tobytes() for r in seen}
        assert all(r.tobytes() in rows for b in spy.batches[4 * epoch:4 * epoch + 4] for r in b)
        assert not np.allclose(seen, original)
    assert not np.array_equal(rec.seen[0], rec.seen[1])
    np.testing.assert_array_equal(X, original)          # the caller's array is restored at the end


def test_augment_is_deterministic_under_a_seed():
    runs = []
    for _ in range(2):
        X, y = tiny_training()
        rec = Record()
        net = Network([64, 5, 3], seed=0)
        h = net.fit((X, y), 2, 10, 0.1, callbacks=[A.Augment(elastic_alpha=8, seed=5), rec], seed=0,
                    evaluation_data=(X, y))
        runs.append((rec.seen, h.evaluation_accuracy))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


def test_augment_fraction_distorts_only_a_share():
    X, y = tiny_training(100)
    rec = Record()
    Network([64, 5, 3], seed=0).fit((X.copy(), y), 1, 10, 0.1, callbacks=[A.Augment(noise_sigma=0.2, fraction=0.3,
                                                                                     seed=0), rec])
    changed = (rec.seen[0] != X).any(axis=1).sum()
    assert changed == 30


def test_augment_gives_the_same_weights_on_both_engines():
    """The compiled engine indexes the inputs' non-zeros; it must see each epoch's fresh distortion."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(1)
    X = np.where(rng.random((60, 64)) < 0.7, 0, rng.random((60, 64))).astype(np.float32)  # sparse, like MNIST
    y = rng.integers(0, 3, 60)
    weights = []
    for engine in ("numpy", "numba"):
        net = Network([64, 5, 3], seed=0)
        net.fit((X.copy(), y), 3, 10, 0.5, lmbda=1.0, engine=engine, seed=0,
                callbacks=[A.Augment(rotate_degrees=20, elastic_alpha=8, seed=2)])
        weights.append(net.parameters())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
