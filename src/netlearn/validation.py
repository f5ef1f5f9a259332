"""Input checks at the boundary: validate once where data enters, then trust it inside."""
from __future__ import annotations

from typing import Any

import numpy as np


def check_X(X: Any, n_in: int, dtype: np.dtype, name: str = "X") -> np.ndarray:
    """A C-contiguous ``(n, n_in)`` array of ``dtype`` with finite values (copied only when needed)."""
    try:
        X = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be a 2-D numeric array of shape (n, {n_in}); it could not be read as one ({exc}).") from None
    if X.ndim == 1 and X.shape[0] == n_in:
        X = X[None, :]
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n, {n_in}). Got an array of shape {X.shape}.")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: it needs at least one example (row).")
    if X.shape[1] != n_in:
        raise ValueError(f"{name} has {X.shape[1]} features per example but the network takes {n_in} inputs. "
                         f"Reshape the data to (n, {n_in}) or build the network with {X.shape[1]} inputs.")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer) or X.dtype == bool):
        raise ValueError(f"{name} must hold numbers. Got dtype {X.dtype}.")
    X = np.ascontiguousarray(X, dtype=dtype)
    # One pass, no mask of the whole array: a NaN or inf makes the sum NaN or inf.  (A sum of huge
    # finite values may overflow too; the exact count below then finds nothing to complain about.)
    if not np.isfinite(X.sum()) and (bad := int(np.count_nonzero(~np.isfinite(X)))):
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s). Remove or impute them before training.")
    return X


def check_y(y: Any, n: int, n_out: int, dtype: np.dtype, name: str = "y") -> np.ndarray:
    """Integer class labels ``(n,)`` in ``[0, n_out)``, or float targets ``(n, n_out)``."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1 and n_out > 1:
        y = y[:, 0]
    if y.shape[0] != n:
        raise ValueError(f"X and {name} have different lengths: {n} examples but {y.shape[0]} labels.")
    if y.ndim == 1:
        if np.issubdtype(y.dtype, np.floating):
            if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
                raise ValueError(f"{name} holds non-integer values; class labels must be integers in [0, {n_out}).")
            y = y.astype(np.int64)
        elif not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class labels in [0, {n_out}). Got dtype {y.dtype}.")
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_out:
            raise ValueError(f"{name} holds labels in [{lo}, {hi}] but the network has {n_out} outputs, so labels "
                             f"must be in [0, {n_out - 1}]. Use a last layer of {hi + 1} neurons or relabel the data.")
        return y.astype(np.intp, copy=False)
    if y.ndim == 2:
        if y.shape[1] != n_out:
            raise ValueError(f"{name} has {y.shape[1]} target columns but the network has {n_out} outputs.")
        y = np.ascontiguousarray(y, dtype=dtype)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or infinite targets.")
        return y
    raise ValueError(f"{name} must be integer labels of shape (n,) or targets of shape (n, {n_out}). Got shape {y.shape}.")


def check_data(data: Any, n_in: int, n_out: int, dtype: np.dtype, name: str = "training_data") -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair ``(X, y)``."""
    if isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
    else:
        raise ValueError(f"{name} must be a pair (X, y) of inputs (n, {n_in}) and labels (n,). Got {type(data).__name__}.")
    X = check_X(X, n_in, dtype, name=f"{name} X")
    y = check_y(y, X.shape[0], n_out, dtype, name=f"{name} y")
    return X, y


# ---------------------------------------------------------------------------
# Hyper-parameters: one message form everywhere (scikit-learn's), e.g.
# "The 'eta' parameter must be a float in the range (0, inf). Got -1 instead."
# ---------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    """An integer in ``[low, high]`` (``high=None``: no upper bound); bools and floats are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low \
            or (high is not None and value > high):
        rule = f">= {low}" if high is None else f"in the range [{low}, {high}]"
        raise ValueError(f"The '{name}' parameter must be an integer {rule}. Got {value!r} instead.")
    return int(value)


def _bound(x: float) -> str:
    return "inf" if x == np.inf else "-inf" if x == -np.inf else f"{x:g}"


def check_float(name: str, value: Any, low: float = -np.inf, high: float = np.inf, *,
                low_open: bool = False, high_open: bool = False) -> float:
    """A finite number in the range from ``low`` to ``high``, each end closed unless ``*_open``.

    >>> check_float("eta", 0.5, 0, low_open=True)
    0.5
    """
    ok = _is_number(value) and bool(np.isfinite(value))
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo = "(" if low_open or low == -np.inf else "["
        hi = ")" if high_open or high == np.inf else "]"
        raise ValueError(f"The '{name}' parameter must be a float in the range {lo}{_bound(low)}, {_bound(high)}{hi}. "
                         f"Got {value!r} instead.")
    return float(value)


def check_positive(name: str, value: Any, allow_zero: bool = False) -> float:
    """A finite float in ``(0, inf)``, or ``[0, inf)`` with ``allow_zero``: rates, strengths, widths."""
    return check_float(name, value, 0.0, low_open=not allow_zero)


def check_unit(name: str, value: Any, closed_low: bool = True) -> float:
    """A float in ``[0, 1)`` (``(0, 1)`` with ``closed_low=False``): probabilities, momentum, decay rates."""
    return check_float(name, value, 0.0, 1.0, low_open=not closed_low, high_open=True)


def check_choice(name: str, value: Any, choices) -> str:
    """One of ``choices`` (names, compared without case); returns the name as the choices spell it."""
    if isinstance(value, str):
        for c in choices:
            if c.lower() == value.lower():
                return c
    raise ValueError(f"The '{name}' parameter must be one of {list(choices)}. Got {value!r} instead.")
