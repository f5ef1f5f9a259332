"""Downloading the IDX files into the per-user cache (completed by the data issue)."""
from __future__ import annotations

from pathlib import Path

from .mnist import FILES, DataError, find_file


def ensure(dataset: str, root: Path) -> None:
    """Make sure ``root/dataset`` holds the four files; this first version only reports what is missing."""
    folder = root / dataset
    missing = [s for s in FILES if find_file(folder, s) is None]
    if missing:
        raise DataError(f"{dataset} files missing from {folder}: {', '.join(missing)}. "
                        f"Point NETLEARN_DATA (or --data-dir) at a folder holding {dataset}/ with the four IDX files.")
