"""Where the data lives: the data root, the data sets' folders and file names, and checked paths.

The data root is ``data_dir``, else ``$NETLEARN_DATA``, else a per-user cache
folder; MNIST lives in ``<root>/mnist/``, Fashion-MNIST in
``<root>/fashion-mnist/``, each as the four IDX files, gzipped or not.

Paths are looked at before they are opened, so that a folder where a file
should be, a symbolic-link loop or a permission problem is one line naming
the path (a :class:`DataError`), never a traceback or a misleading
"missing".
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np

from .errors import DataError

#: The IDX files of each data set: (train images, train labels, test images, test labels).
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: Data set name -> folder under the data root.
DATASETS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist"}
N_TRAIN, N_VALIDATION = 50_000, 10_000
N_CLASSES = 10


def default_root() -> Path:
    """The per-user cache folder (``$XDG_CACHE_HOME/netlearn`` or ``~/.cache/netlearn``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "netlearn"


def data_root(data_dir: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """The data root and whether it was given explicitly (argument or ``$NETLEARN_DATA``).

    A value that cannot be a path (a NUL byte in it) is a :class:`DataError`
    naming where it came from.
    """
    if data_dir is not None:
        value, origin = os.fspath(data_dir), "the data root"
    else:
        value, origin = os.environ.get("NETLEARN_DATA") or "", "NETLEARN_DATA"
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if "\0" in value:
        raise DataError(f"{origin} {value!r} contains a NUL character; give the path of a folder.")
    if data_dir is not None:
        return Path(value).expanduser(), True
    if value.strip():
        return Path(value).expanduser(), True
    return default_root(), False


def describe_oserror(path: Path, exc: OSError) -> str:
    """One line for an OSError met on ``path``: loops, permissions and folders named as such."""
    if exc.errno == errno.ELOOP:
        return f"{path} is a symbolic link loop; point it at a real file or folder."
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{path} cannot be read: permission denied. Make it readable (chmod) or use another data root."
    if exc.errno == errno.EISDIR:
        return f"{path} is a folder, not a file."
    if exc.errno == errno.ENOTDIR:
        return f"{path}: a part of this path is a file, not a folder."
    return f"{path} cannot be read: {exc.strerror or exc}."


def entry_kind(path: Path) -> str:
    """``"file"``, ``"dir"`` or ``"missing"`` for ``path``; a DataError for loops, permissions, dangling links.

    Unlike ``Path.is_file`` (which answers False for all of these), it tells
    the user which of them it is.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise DataError(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist.") from None
        return "missing"
    except OSError as exc:
        raise DataError(describe_oserror(path, exc)) from None
    except ValueError as exc:  # embedded NUL
        raise DataError(f"{path!r} is not a usable path ({exc}).") from None
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"


def check_folder(folder: Path, what: str = "data folder") -> bool:
    """True if ``folder`` is a readable folder, False if it does not exist; a DataError otherwise."""
    kind = entry_kind(folder)
    if kind == "missing":
        return False
    if kind != "dir":
        raise DataError(f"The {what} {folder} is a file, not a folder; give the folder that holds the data.")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise DataError(f"The {what} {folder} cannot be read: permission denied. Make it readable (chmod) "
                        f"or use another data root.")
    return True


def candidates(stem: str) -> tuple[str, ...]:
    """The names an IDX file ``stem`` may have: gzipped or raw, also the ``stem.idx3-ubyte`` spelling."""
    return (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx"))


def find_file(folder: Path, stem: str) -> Path | None:
    """The IDX file ``stem`` in ``folder`` (None if absent); a DataError for a folder or loop in its place."""
    for name in candidates(stem):
        p = folder / name
        kind = entry_kind(p)
        if kind == "file":
            return p
        if kind != "missing":
            raise DataError(f"{p} is a {'folder' if kind == 'dir' else 'special file'}, not a data file; "
                            f"remove it and put the IDX file {stem}[.gz] there.")
    return None


def split_training(X: np.ndarray, y: np.ndarray, where: object):
    """The book's split of the 60,000 training pairs: the last 10,000 become the validation set."""
    if X.shape[0] <= N_VALIDATION:
        raise DataError(f"{where} has only {X.shape[0]} training images; the book's split needs more than "
                        f"{N_VALIDATION} (the last {N_VALIDATION} become the validation set).")
    n_train = X.shape[0] - N_VALIDATION
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])
