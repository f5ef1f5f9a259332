import numpy as np
import pytest


def make_blobs(n=200, n_in=8, n_out=3, seed=0, dtype=np.float32):
    """A small separable classification problem: Gaussian blobs around random centres in [0, 1]."""
    g = np.random.default_rng(seed)
    centres = g.uniform(0, 1, (n_out, n_in))
    y = g.integers(0, n_out, n)
    X = centres[y] + 0.1 * g.standard_normal((n, n_in))
    return X.astype(dtype), y


@pytest.fixture
def blobs():
    return make_blobs()


from pg import postgres_url  # noqa: E402,F401  (the throwaway PostgreSQL server, tests/pg.py)
