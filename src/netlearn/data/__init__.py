"""Data sets: MNIST and Fashion-MNIST readers, the data root, and expanded training data."""
from .mnist import DataError, data_root, load_fashion_mnist, load_mnist, read_idx

__all__ = ["DataError", "data_root", "load_mnist", "load_fashion_mnist", "read_idx"]
