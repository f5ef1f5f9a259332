"""Data sets: MNIST and Fashion-MNIST readers, the data root, downloads and expanded training data.

* :func:`load_mnist`, :func:`load_fashion_mnist`: ``(training, validation, test)``
  from the data root (IDX files; for MNIST also the book's ``mnist.pkl.gz`` or
  Keras' ``mnist.npz``), see :mod:`netlearn.data.mnist`;
* :func:`load_mnist_pkl`, :func:`load_mnist_npz`: the same from one named file
  (:mod:`netlearn.data.formats`);
* :func:`read_idx`: one IDX file, every declared size checked (:mod:`netlearn.data.idx`);
* :func:`netlearn.data.download.download`: fetch the IDX files from public mirrors;
* :mod:`netlearn.data.augment`: shifted, rotated, elastic and noisy copies
  (imported on first use, since it needs SciPy).
"""
from .errors import DataError, DownloadError
from .formats import UnsafePickleError, load_mnist_npz, load_mnist_pkl
from .idx import read_idx
from .layout import data_root
from .mnist import load_dataset, load_fashion_mnist, load_mnist

__all__ = ["DataError", "DownloadError", "UnsafePickleError", "data_root", "load_dataset",
           "load_mnist", "load_fashion_mnist", "load_mnist_pkl", "load_mnist_npz", "read_idx", "augment"]


def __getattr__(name: str):
    if name == "augment":
        import importlib

        return importlib.import_module(".augment", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
