"""Two other packagings of MNIST: the book's ``mnist.pkl.gz`` and Keras' ``mnist.npz``.

Both return the same ``(training, validation, test)`` contract as
:func:`netlearn.data.load_mnist`: pairs ``(X, y)`` with ``X`` float32
``(n, 784)`` in [0, 1] and ``y`` int64 labels 0-9, split 50,000 / 10,000 /
10,000.  :func:`netlearn.data.load_mnist` falls back to them when
``<root>/mnist/`` holds no IDX files.

Why a restricted unpickler?  A pickle is a small program: loading one may
call any importable function (``os.system`` included) that the file names.
The book's file only needs NumPy to rebuild arrays, so
:class:`RestrictedUnpickler` resolves exactly those few names and refuses
every other one *before* anything is called.  The book's file is a Python 2
pickle; ``encoding="latin1"`` turns its byte strings (the arrays' raw
buffers) back into bytes unchanged, which is what NumPy expects.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .mnist import N_CLASSES, DataError, split_training

#: The names a pickled NumPy array may refer to: the array reconstructor under its NumPy 1
#: (``numpy.core``) and NumPy 2 (``numpy._core``) homes, the array type and the dtype type,
#: ``_frombuffer`` (how NumPy rebuilds an array from a protocol-5 pickle's raw buffer);
#: and ``_codecs.encode``, with which Python 3 writes bytes into a protocol-2 pickle (allowed
#: here only as ``encode(text, "latin1")``, which turns the text back into the same bytes).
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
})


def _numpy_function(name: str):
    """NumPy's own ``_reconstruct`` / ``_frombuffer``, from wherever this NumPy keeps them."""
    import importlib

    home = {"_reconstruct": "multiarray", "_frombuffer": "numeric"}[name]
    try:
        return getattr(importlib.import_module(f"numpy._core.{home}"), name)
    except ImportError:  # pragma: no cover - NumPy 1.x
        return getattr(importlib.import_module(f"numpy.core.{home}"), name)


class UnsafePickleError(DataError, pickle.UnpicklingError):
    """A pickle asked for a global that is not on :data:`ALLOWED_GLOBALS`; nothing was executed."""


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """``_codecs.encode`` narrowed to what pickled bytes need: ``str -> bytes`` by latin-1."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise UnsafePickleError(f"a pickle called _codecs.encode with {type(text).__name__}, {encoding!r}, "
                                f"{errors!r}; only latin-1 text is accepted.")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds NumPy arrays (plus tuples, lists, numbers, strings).

    ``find_class`` is the single door through which a pickle reaches code;
    here it opens only for :data:`ALLOWED_GLOBALS` and raises
    :class:`UnsafePickleError` for anything else (``os.system``,
    ``builtins.eval``, ``subprocess.Popen``, ...).  Persistent ids are
    refused too.  Use :func:`restricted_loads` rather than this class.
    """

    def __init__(self, file, *, source: object = "pickle", **kwargs) -> None:
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle's API
        if (module, name) in ALLOWED_GLOBALS:
            if name in ("_reconstruct", "_frombuffer"):
                return _numpy_function(name)
            if name == "encode":
                return _latin1_encode
            return getattr(np, name)
        raise UnsafePickleError(
            f"{self.source} refers to {module}.{name}, which netlearn refuses to load: only NumPy arrays "
            f"are accepted from a pickle (a pickle can run arbitrary code). Nothing in it was executed. "
            f"Use the IDX files instead (netlearn data download).")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source} uses persistent ids, which netlearn refuses to load.")


def restricted_loads(data: bytes, *, source: object = "pickle", encoding: str = "latin1"):
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (``latin1`` for Python 2 pickles)."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source, encoding=encoding).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError) as exc:
        raise DataError(f"{source} is not a readable pickle of NumPy arrays: {exc or type(exc).__name__}.") from None


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} cannot be read: {exc or type(exc).__name__}.") from None


def _as_pair(X, y, where: str, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check one ``(X, y)`` pair from a file and bring it to float32 [0, 1] / int64."""
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataError(f"{where}: expected a pair of NumPy arrays (images, labels), got "
                        f"({type(X).__name__}, {type(y).__name__}).")
    if X.ndim < 2 or X.shape[0] == 0:
        raise DataError(f"{where}: images have shape {X.shape}; expected (n, 784) or (n, 28, 28).")
    if X.dtype == np.uint8:
        X = X.reshape(X.shape[0], -1).astype(np.float32) * np.float32(1 / 255)
    elif np.issubdtype(X.dtype, np.floating):
        X = X.reshape(X.shape[0], -1).astype(np.float32)
    else:
        raise DataError(f"{where}: images have dtype {X.dtype}; expected unsigned bytes or floats in [0, 1].")
    if n_features is not None and X.shape[1] != n_features:
        raise DataError(f"{where}: images have {X.shape[1]} pixels but the other splits have {n_features}.")
    if not (np.isfinite(X).all() and X.min() >= 0.0 and X.max() <= 1.0):
        raise DataError(f"{where}: pixel values must be finite and in [0, 1] (or bytes 0-255).")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels have shape {y.shape} and dtype {y.dtype}; expected integers (n,).")
    if y.shape[0] != X.shape[0]:
        raise DataError(f"{where}: {X.shape[0]} images but {y.shape[0]} labels; they must be equally many.")
    if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
        raise DataError(f"{where}: labels must be 0-{N_CLASSES - 1}; found {int(y.min())}..{int(y.max())}.")
    return np.ascontiguousarray(X, dtype=np.float32), y.astype(np.int64)


def load_mnist_pkl(path: str | os.PathLike):
    """The book's ``mnist.pkl.gz`` (gzipped or not) as ``(training, validation, test)``.

    The file (from the book's repository, ``data/mnist.pkl.gz``) is a Python 2
    pickle of three ``(images, labels)`` tuples: 50,000 / 10,000 / 10,000,
    images float32 ``(n, 784)`` in [0, 1], labels int64.  It is read through
    :class:`RestrictedUnpickler`: a file that refers to anything but NumPy's
    array reconstruction raises :class:`UnsafePickleError` without running it.
    """
    path = Path(path)
    obj = restricted_loads(_read_bytes(path), source=path)
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3
            and all(isinstance(s, (tuple, list)) and len(s) == 2 for s in obj)):
        raise DataError(f"{path} does not have the book's structure: a tuple of three (images, labels) pairs "
                        f"(training, validation, test).")
    out, n_features = [], None
    for split, (X, y) in zip(("training", "validation", "test"), obj):
        X, y = _as_pair(X, y, f"{path} ({split})", n_features)
        n_features = X.shape[1]
        out.append((X, y))
    return tuple(out)


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_mnist_npz(path: str | os.PathLike):
    """A Keras-style ``mnist.npz`` as ``(training, validation, test)``.

    The file holds ``x_train`` (60,000, 28, 28) and ``x_test`` (10,000, 28, 28)
    unsigned bytes and ``y_train`` / ``y_test`` labels; it is opened with
    ``allow_pickle=False``, so it cannot carry code.  As with the IDX files,
    the last 10,000 training images become the validation set.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise DataError(f"{path} lacks the array(s) {', '.join(missing)}; a Keras-style MNIST .npz holds "
                                f"{', '.join(NPZ_KEYS)}.")
            arrays = {k: z[k] for k in NPZ_KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path} cannot be read as an .npz file: {exc or type(exc).__name__}.") from None
    X, y = _as_pair(arrays["x_train"], arrays["y_train"], f"{path} (x_train, y_train)")
    test = _as_pair(arrays["x_test"], arrays["y_test"], f"{path} (x_test, y_test)", X.shape[1])
    training, validation = split_training(X, y, path)
    return training, validation, test


def alternatives(folder: Path, dataset: str) -> list[Path]:
    """The non-IDX files :func:`netlearn.data.load_mnist` accepts in ``folder``, in order of preference."""
    names = (["mnist.pkl.gz", "mnist.pkl"] if dataset == "mnist" else []) + [f"{dataset}.npz"]
    return [folder / n for n in names]


def load_path(path: str | os.PathLike):
    """Load ``path`` by its name: ``*.pkl[.gz]`` (the book's pickle) or ``*.npz`` (Keras)."""
    path = Path(path)
    if path.name.endswith((".pkl", ".pkl.gz")):
        return load_mnist_pkl(path)
    if path.suffix == ".npz":
        return load_mnist_npz(path)
    raise DataError(f"{path}: unknown format; expected a .pkl.gz (the book's) or an .npz (Keras') file.")
