"""The errors of the data package, in a module of their own so that every reader can raise them.

:class:`DataError` is a ``ValueError``: a data file or folder that cannot be
used.  Its message is one line that names the path and what to do about it.
:class:`DownloadError` is a :class:`DataError` raised when no mirror delivered
a file.  (:class:`netlearn.data.formats.UnsafePickleError`, a refused pickle,
is one too.)
"""
from __future__ import annotations


class DataError(ValueError):
    """A data file or folder that cannot be used (missing, truncated, corrupt, inconsistent, unreadable)."""


class DownloadError(DataError):
    """No mirror delivered a file with the right checksum (offline, blocked, or all mirrors broken)."""
