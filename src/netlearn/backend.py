"""Array namespace, dtype policy and seeded random numbers.

Everything numeric in netlearn goes through this module, so that a second
array library (CuPy) can be slotted in later without touching the layers.
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: The array namespace the engine computes with.  NumPy today; the helpers
#: below take an array and answer for its own namespace where that matters.
xp = np

#: float32 unless the user asks otherwise: half the memory traffic of float64
#: and all the precision that SGD on MNIST can use.
DEFAULT_DTYPE = np.dtype(np.float32)

_FLOAT_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def as_dtype(dtype: Any) -> np.dtype:
    """Validate a dtype argument: only float32 and float64 are supported."""
    if dtype is None:
        return DEFAULT_DTYPE
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in _FLOAT_DTYPES:
        raise ValueError(
            f"The 'dtype' parameter must be 'float32' or 'float64'. Got {dtype!r} instead."
        )
    return dt


def rng(seed: int | np.random.Generator | None = None) -> np.random.Generator:
    """A NumPy Generator from a seed (an int, None for fresh entropy, or a Generator)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"The 'seed' parameter must be a non-negative integer or None. Got {seed!r} instead.")
    return np.random.default_rng(seed)


def namespace(a: Any):
    """The array namespace of ``a`` (CuPy arrays answer CuPy)."""
    mod = type(a).__module__.split(".")[0]
    if mod == "cupy":  # pragma: no cover - no GPU in CI
        import cupy

        return cupy
    return np
