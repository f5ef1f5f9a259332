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

Refusing code is not enough: the allowed constructors can also be asked for
memory.  ``ndarray((10**10,))`` in a 100-byte pickle would allocate 40 GB of
uninitialised memory, and a memo index of 2^32 makes the unpickler itself
grow a table of 32 GB.  So every opcode is first read by
:func:`pickletools.genops` (which executes nothing) and checked against the
payload, and the constructors are replaced by narrow versions: an array is
built only from bytes that the pickle carries (its shape times its item size
must equal their length), and only of plain numeric dtypes.  The gzip around
it is decompressed in chunks up to :data:`MAX_PICKLE_BYTES`.

The npz reader does the same for ``.npy`` headers: each member's declared
shape and dtype are checked against the member's size before a byte of the
array is read, and ``allow_pickle`` is never on.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import pickletools
import tokenize
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError
from .idx import MAX_DEFLATE_RATIO
from .layout import N_CLASSES, describe_oserror, split_training

#: The most bytes a pickle may unpack to (the book's mnist.pkl.gz unpacks to about 220 MB).
MAX_PICKLE_BYTES = 1 << 30
#: The element types an array from a data file may have: booleans, integers and floats, at most 8 bytes.
NUMERIC_KINDS = "biuf"

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


class UnsafePickleError(DataError, pickle.UnpicklingError):
    """A pickle asked for a global that is not on :data:`ALLOWED_GLOBALS`, or for more than it carries."""


def numeric_dtype(dtype, where: object) -> np.dtype:
    """``dtype`` if it is a plain boolean, integer or float type of at most 8 bytes; else a DataError."""
    try:
        d = np.dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: {dtype!r} is not a NumPy dtype ({exc}).") from None
    if d.kind not in NUMERIC_KINDS or d.itemsize > 8 or d.hasobject or d.fields is not None or d.subdtype is not None:
        raise DataError(f"{where} cannot be read: arrays of dtype {d} are refused; only plain numbers (bool, int, uint, float) "
                        f"are accepted.")
    return d


def checked_shape(shape, where: object) -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints (at most 32 of them), or a DataError."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or len(shape) > 32 or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise DataError(f"{where}: {shape!r} is not an array shape (non-negative whole numbers).")
    return tuple(int(n) for n in shape)


class _NdarrayMarker:
    """What ``numpy.ndarray`` resolves to inside a pickle: a name for the reconstructor, not a constructor.

    Calling ``ndarray(shape)`` directly would allocate uninitialised memory of
    any size the pickle asks for, so it is refused.
    """

    def __call__(self, *args, **kwargs):
        raise UnsafePickleError("a pickle called numpy.ndarray(...) directly, which would allocate memory the "
                                "pickle does not carry; netlearn refuses it.")

    def __reduce__(self):  # pragma: no cover - never pickled back
        raise TypeError("not picklable")


_NDARRAY = _NdarrayMarker()


def _reconstruct(subtype, shape, dtype):
    """``numpy.core.multiarray._reconstruct`` narrowed: the empty array that a pickle's BUILD then fills.

    NumPy pickles always ask for ``(0,)``; the data come with ``__setstate__``,
    which checks their length against the shape.
    """
    if subtype is not _NDARRAY:
        raise UnsafePickleError(f"a pickle asked to rebuild an array of type {subtype!r}; only numpy.ndarray is "
                                f"accepted.")
    shape = checked_shape(shape, "pickle")
    if int(np.prod(shape, dtype=object)) != 0:
        raise UnsafePickleError(f"a pickle asked for an uninitialised array of shape {shape}; NumPy's own pickles "
                                f"ask for shape (0,) and then fill it from their data.")
    return np.ndarray(shape, dtype=numeric_dtype(dtype, "pickle") if not isinstance(dtype, bytes) else np.uint8)


def _frombuffer(buf, dtype, shape, order):
    """``numpy.core.numeric._frombuffer`` narrowed: the buffer's length must be exactly what the shape needs."""
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise UnsafePickleError(f"a pickle gave {type(buf).__name__} as an array's buffer; expected bytes.")
    d = numeric_dtype(dtype, "pickle")
    shape = checked_shape(shape, "pickle")
    if int(np.prod(shape, dtype=object)) * d.itemsize != len(buf) or order not in ("C", "F"):
        raise UnsafePickleError(f"a pickle's array of shape {shape} and dtype {d} needs "
                                f"{int(np.prod(shape, dtype=object)) * d.itemsize} bytes; its buffer has {len(buf)}.")
    return np.frombuffer(buf, dtype=d).reshape(shape, order=order)


def _dtype(obj, align=False, copy=False):
    """``numpy.dtype`` narrowed to plain numeric types."""
    return numeric_dtype(np.dtype(obj, bool(align), bool(copy)), "pickle")


#: Opcodes that an array pickle never needs: persistent ids, the extension registry, the old
#: class-instantiating opcodes and out-of-band buffers.  Refused before anything is unpickled.
_REFUSED_OPCODES = frozenset({"PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX",
                              "NEXT_BUFFER", "READONLY_BUFFER"})
_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def scan_pickle(data: bytes, source: object = "pickle") -> None:
    """Read every opcode of ``data`` without executing any; refuse what an array pickle never needs.

    Memo indices must be below the number of opcodes (a pickler numbers them
    from 0): the unpickler grows its memo table to the largest index it is
    given, so a single ``LONG_BINPUT 4294967295`` would cost 32 GB.
    """
    count = 0
    try:
        with warnings.catch_warnings():  # pickletools warns about odd escapes in old STRING opcodes
            warnings.simplefilter("ignore", DeprecationWarning)
            for op, arg, _pos in pickletools.genops(data):
                count += 1
                if op.name in _REFUSED_OPCODES:
                    raise UnsafePickleError(f"{source} uses the pickle opcode {op.name}, which netlearn refuses (it "
                                            f"is not needed for NumPy arrays). Nothing in it was executed.")
                if op.name in _MEMO_PUTS and not (isinstance(arg, int) and 0 <= arg <= count):
                    raise UnsafePickleError(f"{source} stores into memo slot {arg} after {count} opcodes; a pickler "
                                            f"never does that (it would make the unpickler allocate a huge table).")
    except UnsafePickleError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, UnicodeDecodeError) as exc:
        raise DataError(f"{source} is not a readable pickle: {exc or type(exc).__name__}.") from None


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
            return {"_reconstruct": _reconstruct, "_frombuffer": _frombuffer, "encode": _latin1_encode,
                    "ndarray": _NDARRAY, "dtype": _dtype}[name]
        raise UnsafePickleError(
            f"{self.source} refers to {module}.{name}, which netlearn refuses to load: only NumPy arrays "
            f"are accepted from a pickle (a pickle can run arbitrary code). Nothing in it was executed. "
            f"Use the IDX files instead (netlearn data download).")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source} uses persistent ids, which netlearn refuses to load.")


def restricted_loads(data: bytes, *, source: object = "pickle", encoding: str = "latin1"):
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (``latin1`` for Python 2 pickles).

    :func:`scan_pickle` reads it first, so nothing is built from a pickle
    whose opcodes ask for what it does not carry.
    """
    scan_pickle(data, source)
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source, encoding=encoding).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, OverflowError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"{source} is not a readable pickle of NumPy arrays: {exc or type(exc).__name__}.") from None


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The file's bytes, gunzipped if it is a gzip: in chunks, and never more than ``limit``."""
    limit = MAX_PICKLE_BYTES if limit is None else limit
    try:
        with open(path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            limit = min(limit, MAX_DEFLATE_RATIO * size) if gz else limit
            if not gz and size > limit:
                raise DataError(f"{path} has {size} bytes; netlearn reads pickles of at most {limit} bytes.")
            f = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
            chunks, total = [], 0
            while chunk := f.read(min(1 << 20, limit + 1 - total)):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise DataError(f"{path} unpacks to more than {limit} bytes; netlearn refuses it "
                                    f"(the book's mnist.pkl.gz unpacks to about 220 MB).")
            return b"".join(chunks)
    except DataError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} cannot be read: {exc or type(exc).__name__}.") from None
    except OSError as exc:
        raise DataError(describe_oserror(path, exc)) from None


def _as_pair(X, y, where: str, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check one ``(X, y)`` pair from a file and bring it to float32 [0, 1] / int64."""
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataError(f"{where}: expected a pair of NumPy arrays (images, labels), got "
                        f"({type(X).__name__}, {type(y).__name__}).")
    for name, a in (("images", X), ("labels", y)):
        if a.dtype.kind not in NUMERIC_KINDS or a.dtype.fields is not None or a.dtype.subdtype is not None:
            raise DataError(f"{where}: {name} have dtype {a.dtype}; expected plain numbers.")
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
    arrays = read_npz(path, NPZ_KEYS)
    X, y = _as_pair(arrays["x_train"], arrays["y_train"], f"{path} (x_train, y_train)")
    test = _as_pair(arrays["x_test"], arrays["y_test"], f"{path} (x_test, y_test)", X.shape[1])
    training, validation = split_training(X, y, path)
    return training, validation, test


def _npy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> np.ndarray:
    """One ``.npy`` member: header checked against the member's size before the data are read."""
    fmt = np.lib.format
    declared = info.file_size
    if info.compress_type != zipfile.ZIP_STORED and declared > MAX_DEFLATE_RATIO * max(info.compress_size, 1):
        raise DataError(f"{where} claims {declared} bytes from {info.compress_size} compressed ones: more than "
                        f"any zip can hold.")
    with zf.open(info) as f:
        version = fmt.read_magic(f)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise DataError(f"{where}: unknown .npy version {version}.")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(f, max_header_size=10_000)
        d = numeric_dtype(dtype, where)
        shape = checked_shape(shape, where)
        nbytes = int(np.prod(shape, dtype=object)) * d.itemsize
        if nbytes > declared - f.tell():
            raise DataError(f"{where} declares shape {shape} of {d} ({nbytes} bytes) but the member holds only "
                            f"{max(declared - f.tell(), 0)} bytes of data.")
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise DataError(f"{where} is truncated: {len(buf)} of {nbytes} bytes.")
    return np.frombuffer(buf, dtype=d).reshape(shape, order="F" if fortran else "C")


def read_npz(path: str | os.PathLike, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` file, each checked against its member's size before it is read.

    No pickled object is ever loaded (``allow_pickle`` is never on); a member
    whose header declares more data than it holds, or a non-numeric dtype,
    is a :class:`DataError` before anything is allocated.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            missing = [k for k in keys if k not in members]
            if missing:
                raise DataError(f"{path} lacks the array(s) {', '.join(missing)}; it should hold {', '.join(keys)}.")
            return {k: _npy_member(zf, members[k], f"{path} ({k})") for k in keys}
    except DataError:
        raise
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, SyntaxError, TypeError,
            OverflowError, RuntimeError, NotImplementedError, tokenize.TokenError) as exc:
        # (a .npy header is a Python literal: NumPy parses it with the tokenizer and ast.literal_eval)
        raise DataError(f"{path} cannot be read as an .npz file: {exc or type(exc).__name__}.") from None
    except OSError as exc:
        raise DataError(describe_oserror(path, exc)) from None


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
