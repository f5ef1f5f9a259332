"""Small helpers shared by the test modules (imported as ``from helpers import ...``)."""
from __future__ import annotations

import gzip
import tracemalloc

import numpy as np


def idx_bytes(a: np.ndarray, dims=None) -> bytes:
    """An IDX file of unsigned bytes: the header (magic 0x08, dimensions ``dims``, by default ``a.shape``), then the data."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    dims = a.shape if dims is None else dims
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims) + a.tobytes()


def write_idx(path, a: np.ndarray) -> None:
    """A gzipped IDX file of unsigned bytes, as MNIST ships them."""
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(idx_bytes(a))


def peak_bytes(fn, *args):
    """Run ``fn`` and return (its exception or None, the peak of traced memory it allocated)."""
    tracemalloc.start()
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - the caller checks the type
        err = exc
    else:
        err = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return err, peak


def one_line(capsys) -> str:
    """What the command wrote on standard error, checked to be one line from netlearn without a traceback."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("netlearn"), err
    return err
