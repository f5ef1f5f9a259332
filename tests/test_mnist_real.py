"""Real MNIST through the public API (skipped when $NETLEARN_DATA does not hold it)."""
import os
from pathlib import Path

import numpy as np
import pytest

import netlearn

ROOT = os.environ.get("NETLEARN_DATA")
pytestmark = pytest.mark.skipif(not ROOT or not (Path(ROOT) / "mnist").is_dir(),
                                reason="set NETLEARN_DATA to a data root holding mnist/ to run")


@pytest.fixture(scope="module")
def mnist():
    return netlearn.data.load_mnist()


def test_split_and_types(mnist):
    (X, y), (Xv, yv), (Xt, yt) = mnist
    assert X.shape == (50_000, 784) and Xv.shape == (10_000, 784) and Xt.shape == (10_000, 784)
    assert X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    assert list(y[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the first ten MNIST training labels
    assert list(yt[:5]) == [7, 2, 1, 0, 4]
    assert np.bincount(y, minlength=10).min() > 4000


def test_book_network_learns_on_a_slice(mnist):
    training, validation, _ = mnist
    net = netlearn.Network([784, 30, 10], seed=0)
    h = net.fit((training[0][:10_000], training[1][:10_000]), 1, 10, 0.5, lmbda=5.0,
                evaluation_data=validation, seed=0)
    assert h.evaluation_accuracy[0] > 0.88
