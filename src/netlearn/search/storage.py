"""Where a study lives, chosen by the ``--storage`` value.

- nothing: in memory, for a search in one process;
- a file path: Optuna's journal file, for several processes on one machine
  (the file is locked for each write, so any number of workers may share it);
- ``postgresql://...`` or ``postgresql+psycopg://...``: a PostgreSQL
  database through psycopg 3 (extra ``postgres``), for several machines;
- ``sqlite:///...``: one process at a time (workers refuse a second one:
  SQLite hands a queued trial to two workers that ask at once).

Optuna is imported here, lazily, so that ``import netlearn`` and the searches
that need no Optuna work without the ``search`` extra.
"""
from __future__ import annotations

import importlib
from typing import Any


class SearchError(Exception):
    """A search that cannot go on (missing extra, unreachable database, missing study): one line for the user."""


INSTALL = 'pip install "netlearn[search]"'


def optuna() -> Any:
    """The ``optuna`` module, or a SearchError naming the extra to install."""
    try:
        module = importlib.import_module("optuna")
    except ImportError:
        raise SearchError(f"hyper-parameter search needs Optuna: {INSTALL}") from None
    module.logging.set_verbosity(module.logging.WARNING)  # Optuna's own logger only, not the process's
    return module


def kind(url: str | None) -> str:
    """``"memory"``, ``"journal"``, ``"postgresql"`` or ``"sqlite"`` for a ``--storage`` value."""
    if not url:
        return "memory"
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return "postgresql"
    if url.startswith("sqlite:///"):
        return "sqlite"
    if "://" in url:
        raise SearchError(f"--storage {url}: use a file path (journal), postgresql[+psycopg]://... or sqlite:///...")
    return "journal"


def open_storage(url: str | None) -> Any:
    """An Optuna storage for ``url`` (see the module docstring), connected and with its schema in place."""
    opt = optuna()
    which = kind(url)
    if which == "memory":
        return opt.storages.InMemoryStorage()
    if which == "journal":
        from pathlib import Path

        parent = Path(url).expanduser().resolve().parent
        if not parent.is_dir():
            raise SearchError(f"--storage {url}: the folder {parent} does not exist.")
        backend = opt.storages.journal.JournalFileBackend(str(Path(url).expanduser()))
        return opt.storages.JournalStorage(backend)
    if which == "postgresql":
        try:
            importlib.import_module("psycopg")
        except ImportError:
            raise SearchError('PostgreSQL storage needs psycopg 3: pip install "netlearn[postgres]"') from None
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        # pool_pre_ping: a worker that waited long finds its connection alive or opens a new one.
        return opt.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True} if which == "postgresql" else None)
    except Exception as exc:  # SQLAlchemy's OperationalError and kin, whose text spans many lines
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SearchError(f"cannot open the storage {_safe(url)}: {first}") from None


def _safe(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}" if ":" in cred else url
    return url


__all__ = ["SearchError", "open_storage", "optuna", "kind", "INSTALL"]
