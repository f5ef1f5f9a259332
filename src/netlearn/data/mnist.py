"""MNIST and Fashion-MNIST from the four IDX files, split as in the book.

``load_mnist()`` returns ``(training, validation, test)``, each ``(X, y)``:
50,000 / 10,000 / 10,000 examples, the validation set being the last 10,000
training images (as in the book's ``mnist.pkl.gz``); ``X`` is float32
``(n, 784)`` in [0, 1] and ``y`` holds integer labels.

The data root is ``data_dir``, else ``$NETLEARN_DATA``, else a per-user cache
folder; MNIST lives in ``<root>/mnist/``, Fashion-MNIST in
``<root>/fashion-mnist/``, each as the four IDX files, gzipped or not.  Local
files are checked by structure (magic number, dimensions, counts, length),
not by gzip checksum, because redistributors recompress.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

#: The IDX files of each data set: (train images, train labels, test images, test labels).
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DATASETS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist"}
N_TRAIN, N_VALIDATION = 50_000, 10_000

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(ValueError):
    """A data file or folder that cannot be used (missing, truncated, corrupt, inconsistent)."""


def default_root() -> Path:
    """The per-user cache folder (``$XDG_CACHE_HOME/netlearn`` or ``~/.cache/netlearn``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "netlearn"


def data_root(data_dir: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """The data root and whether it was given explicitly (argument or ``$NETLEARN_DATA``)."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), True
    env = os.environ.get("NETLEARN_DATA")
    if env:
        return Path(env).expanduser(), True
    return default_root(), False


def _open(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or raw), checking its magic number, dimensions and length."""
    path = Path(path)
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} cannot be read as an IDX file: {exc}. Delete it and download it again "
                        f"(netlearn data download).") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'none'}). "
                        "Delete it and download it again (netlearn data download).")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: its header is incomplete.")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{path} is {what}: {len(raw)} bytes for dimensions {dims} (expected {expected}). "
                        "Delete it and download it again (netlearn data download).")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def find_file(folder: Path, stem: str) -> Path | None:
    """The IDX file ``stem`` in ``folder``, gzipped or raw (also the ``stem.idx3-ubyte`` spelling)."""
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        p = folder / name
        if p.is_file():
            return p
    return None


def _missing_message(dataset: str, folder: Path, missing: list[str]) -> str:
    return (f"{dataset} files missing from {folder}: {', '.join(m + '[.gz]' for m in missing)}. "
            f"Download them with: netlearn data download --data {dataset} --data-dir {folder.parent}")


def load_idx_set(folder: Path, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read and cross-check the four IDX files of ``folder``: (train images, train labels, test images, test labels)."""
    paths = [find_file(folder, stem) for stem in FILES]
    missing = [stem for stem, p in zip(FILES, paths) if p is None]
    if missing:
        raise DataError(_missing_message(dataset, folder, missing))
    arrays = [read_idx(p) for p in paths]
    for p, a, want in zip(paths, arrays, (3, 1, 3, 1)):
        if a.ndim != want or a.dtype != np.uint8:
            raise DataError(f"{p} holds a {a.ndim}-D {a.dtype} array; expected {want}-D unsigned bytes "
                            f"({'images' if want == 3 else 'labels'}).")
    tr_x, tr_y, te_x, te_y = arrays
    for x, y, px, py in ((tr_x, tr_y, paths[0], paths[1]), (te_x, te_y, paths[2], paths[3])):
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{px.name} has {x.shape[0]} images but {py.name} has {y.shape[0]} labels.")
        if y.size and y.max() > 9:
            raise DataError(f"{py} holds label {int(y.max())}; {dataset} labels are 0-9.")
    if tr_x.shape[1:] != te_x.shape[1:]:
        raise DataError(f"training images are {tr_x.shape[1:]} but test images are {te_x.shape[1:]}.")
    return tr_x, tr_y, te_x, te_y


def _to_xy(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = images.reshape(images.shape[0], -1).astype(np.float32)
    X *= np.float32(1 / 255)
    return X, labels.astype(np.int64)


def load_dataset(dataset: str = "mnist", data_dir: str | os.PathLike | None = None):
    """``(training, validation, test)`` for ``dataset`` from the data root (see the module's docstring)."""
    if dataset not in DATASETS:
        raise DataError(f"The 'dataset' parameter must be one of {sorted(DATASETS)}. Got {dataset!r} instead.")
    root, explicit = data_root(data_dir)
    if explicit and not root.is_dir():
        raise DataError(f"The data root {root} does not exist. Create it and download the data with: "
                        f"netlearn data download --data {dataset} --data-dir {root}")
    folder = root / DATASETS[dataset]
    if not explicit:
        from . import download

        download.ensure(dataset, root)
    tr_x, tr_y, te_x, te_y = load_idx_set(folder, dataset)
    if tr_x.shape[0] <= N_VALIDATION:
        raise DataError(f"{folder} has only {tr_x.shape[0]} training images; the book's split needs more than "
                        f"{N_VALIDATION}.")
    X, y = _to_xy(tr_x, tr_y)
    n_train = X.shape[0] - N_VALIDATION
    training = (X[:n_train], y[:n_train])
    validation = (X[n_train:], y[n_train:])
    return training, validation, _to_xy(te_x, te_y)


def load_mnist(data_dir: str | os.PathLike | None = None):
    """MNIST as ``(training, validation, test)``: 50,000 / 10,000 / 10,000 pairs ``(X, y)``.

    ``X`` is float32 ``(n, 784)`` in [0, 1]; ``y`` holds integer labels 0-9.
    """
    return load_dataset("mnist", data_dir)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None):
    """Fashion-MNIST, with the same shapes and split as :func:`load_mnist`."""
    return load_dataset("fashion-mnist", data_dir)
