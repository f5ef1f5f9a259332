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

When a folder lacks the IDX files, two other common packagings are read
instead (see :mod:`netlearn.data.formats`): the book's ``mnist.pkl.gz``
(MNIST only) and the Keras-style ``<dataset>.npz``.

The IDX format and its bounded reader live in :mod:`netlearn.data.idx`, the
data root and file names in :mod:`netlearn.data.layout`, the errors in
:mod:`netlearn.data.errors`; this module puts them together.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import formats
from .download import ensure
from .errors import DataError
from .idx import REDOWNLOAD as _REDOWNLOAD, read_idx
from .layout import (DATASETS, FILES, N_CLASSES, N_TRAIN, N_VALIDATION, check_folder, data_root, default_root,
                     entry_kind, find_file, split_training)

__all__ = ["DATASETS", "FILES", "N_CLASSES", "N_TRAIN", "N_VALIDATION", "DataError", "FileStatus", "data_root",
           "default_root", "find_file", "inspect_folder", "load_dataset", "load_fashion_mnist", "load_idx_set",
           "load_mnist", "read_idx", "split_training"]


def _missing_message(dataset: str, folder: Path, missing: list[str]) -> str:
    alt = " (or the book's mnist.pkl.gz, or mnist.npz)" if dataset == "mnist" else f" (or {dataset}.npz)"
    return (f"{dataset} files missing from {folder}: {', '.join(m + '[.gz]' for m in missing)}. "
            f"Download them with: netlearn data download --data {dataset} --data-dir {folder.parent}  "
            f"-- or put the four IDX files{alt} into {folder}.")


def _check_pair(images: np.ndarray, labels: np.ndarray, pimg: Path, plab: Path, dataset: str) -> None:
    """Images ``(n, rows, cols)`` and labels ``(n,)`` of unsigned bytes, equally many, labels 0-9."""
    for p, a, want in ((pimg, images, 3), (plab, labels, 1)):
        if a.ndim != want or a.dtype != np.uint8:
            raise DataError(f"{p} holds a {a.ndim}-D {a.dtype} array; expected {want}-D unsigned bytes "
                            f"({'images' if want == 3 else 'labels'}). Is it the right file?")
    if images.shape[0] == 0:
        raise DataError(f"{pimg} holds no images (its header says 0); a data set needs at least one. "
                        f"{_REDOWNLOAD}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{pimg.name} has {images.shape[0]} images but {plab.name} has {labels.shape[0]} labels; "
                        f"they must be equally many. One of them is from another data set or damaged.")
    if labels.size and labels.max() >= N_CLASSES:
        raise DataError(f"{plab} holds label {int(labels.max())}; {dataset} labels are 0-{N_CLASSES - 1}.")


def load_idx_set(folder: Path, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read and cross-check the four IDX files of ``folder``: (train images, train labels, test images, test labels)."""
    paths = [find_file(folder, stem) for stem in FILES]
    missing = [stem for stem, p in zip(FILES, paths) if p is None]
    if missing:
        raise DataError(_missing_message(dataset, folder, missing))
    tr_x, tr_y, te_x, te_y = (read_idx(p) for p in paths)
    _check_pair(tr_x, tr_y, paths[0], paths[1], dataset)
    _check_pair(te_x, te_y, paths[2], paths[3], dataset)
    if tr_x.shape[1:] != te_x.shape[1:]:
        raise DataError(f"training images ({paths[0].name}) are {tr_x.shape[1:]} but test images "
                        f"({paths[2].name}) are {te_x.shape[1:]}; both must have the same size.")
    return tr_x, tr_y, te_x, te_y


@dataclass
class FileStatus:
    """What :func:`inspect_folder` found for one file: its path (None if missing) and a verdict."""

    name: str
    path: Path | None
    ok: bool
    detail: str


def inspect_folder(folder: Path, dataset: str = "mnist") -> list[FileStatus]:
    """Check each IDX file of ``folder`` by structure, without stopping at the first problem.

    Used by ``netlearn data info``.  Each file gets ``ok`` and a one-line
    detail ("60000 images 28x28", "missing", or the reason it is unusable);
    image/label count mismatches are reported on the label file.
    """
    out: list[FileStatus] = []
    arrays: dict[str, np.ndarray] = {}
    for stem in FILES:
        try:
            p = find_file(folder, stem)
        except DataError as exc:  # a folder, a loop or an unreadable entry where the file should be
            out.append(FileStatus(stem, folder / stem, False, str(exc)))
            continue
        if p is None:
            out.append(FileStatus(stem, None, False, "missing"))
            continue
        try:
            a = read_idx(p)
        except DataError as exc:
            out.append(FileStatus(stem, p, False, str(exc)))
            continue
        arrays[stem] = a
        kind = "images" if "images" in stem else "labels"
        want = 3 if kind == "images" else 1
        if a.ndim != want or a.dtype != np.uint8:
            out.append(FileStatus(stem, p, False, f"holds a {a.ndim}-D {a.dtype} array, not {kind}"))
        elif a.shape[0] == 0:
            out.append(FileStatus(stem, p, False, f"holds no {kind} (its header says 0)"))
        elif stem == FILES[0] and a.shape[0] <= N_VALIDATION:
            out.append(FileStatus(stem, p, False, f"only {a.shape[0]} images; the book's split needs more than "
                                                  f"{N_VALIDATION} (the last {N_VALIDATION} become the validation set)"))
        elif kind == "images":
            out.append(FileStatus(stem, p, True, f"{a.shape[0]} images {a.shape[1]}x{a.shape[2]}"))
        else:
            out.append(FileStatus(stem, p, True, f"{a.shape[0]} labels"))
    for i in (0, 2):  # pair images with labels
        img, lab = arrays.get(FILES[i]), arrays.get(FILES[i + 1])
        st = out[i + 1]
        if img is None or lab is None or not (out[i].ok and st.ok):
            continue
        try:
            _check_pair(img, lab, out[i].path, st.path, dataset)
        except DataError as exc:
            out[i + 1] = FileStatus(st.name, st.path, False, str(exc))
    return out


def _to_xy(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = images.reshape(images.shape[0], -1).astype(np.float32)
    X *= np.float32(1 / 255)
    return X, labels.astype(np.int64)


def _load_folder(folder: Path, dataset: str):
    """IDX files if all four are there, else the book's pickle or an npz, else a missing-files error."""
    have_idx = all(find_file(folder, stem) is not None for stem in FILES)
    if not have_idx:
        for path in formats.alternatives(folder, dataset):
            if entry_kind(path) == "file":
                return formats.load_path(path)
    tr_x, tr_y, te_x, te_y = load_idx_set(folder, dataset)
    training, validation = split_training(*_to_xy(tr_x, tr_y), folder)
    return training, validation, _to_xy(te_x, te_y)


def load_dataset(dataset: str = "mnist", data_dir: str | os.PathLike | None = None):
    """``(training, validation, test)`` for ``dataset`` from the data root (see the module's docstring).

    Only the per-user cache is filled automatically (by downloading); an
    explicit root (``data_dir`` or ``$NETLEARN_DATA``) must exist and hold
    the files, else :class:`DataError` says what is missing and how to get it.
    """
    if dataset not in DATASETS:
        raise DataError(f"The 'dataset' parameter must be one of {sorted(DATASETS)}. Got {dataset!r} instead.")
    root, explicit = data_root(data_dir)
    if not check_folder(root, "data root") and explicit:
        raise DataError(f"The data root {root} does not exist. Create it and download the data with: "
                        f"netlearn data download --data {dataset} --data-dir {root}")
    folder = root / DATASETS[dataset]
    check_folder(folder)
    if not explicit:
        if not any(entry_kind(p) == "file" for p in formats.alternatives(folder, dataset)):
            ensure(dataset, root)
    return _load_folder(folder, dataset)


def load_mnist(data_dir: str | os.PathLike | None = None):
    """MNIST as ``(training, validation, test)``: 50,000 / 10,000 / 10,000 pairs ``(X, y)``.

    ``X`` is float32 ``(n, 784)`` in [0, 1]; ``y`` holds integer labels 0-9.
    The files come from ``<root>/mnist/`` (see :func:`data_root`).
    """
    return load_dataset("mnist", data_dir)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None):
    """Fashion-MNIST (Zalando's clothing images, labels 0-9), with the same shapes and split as :func:`load_mnist`."""
    return load_dataset("fashion-mnist", data_dir)
