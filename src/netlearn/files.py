"""Writing files so that nothing is ever half-done, and saying early when a file cannot be written.

Every file netlearn writes (models, histories, plots, checkpoints, downloads)
goes to a temporary file beside its target, is flushed to disk, and is then
renamed onto the target: a reader sees the old file or the whole new one,
never a part.  If writing fails (a full disk), the temporary file is removed
and the old file stays as it was.

A run killed with ``kill -9`` cannot remove its temporary file.  Their names
carry the writer's process id -- ``.<name>.<pid>-<random>.tmp`` -- so the
next run can tell a leftover of a dead process from the file that another
running process is writing right now, and removes only the former
(:func:`clean_stale_temporaries`).

:func:`check_writable` and :func:`check_writable_folder` probe the target's
folder before a long job starts; :func:`write_with_fallback` keeps a result
that cannot be written where it was asked for by writing it somewhere that
can take it and naming that place.
"""
from __future__ import annotations

import os
import re
import secrets
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable

#: Leftover temporary files without a process id (older netlearn) are removed once this old (seconds).
STALE_AFTER = 3600.0


class OutputError(ValueError):
    """An output path that cannot be written (a folder given as the file, a missing or read-only folder)."""


def temporary_file(path: str | os.PathLike, suffix: str = ".tmp") -> tuple[int, str]:
    """Create a fresh temporary file beside ``path``: ``(fd, name)``.

    Unlike ``tempfile.mkstemp`` (always mode 0600) it is created with mode
    0666 less the umask, so that after the rename the result has the
    permissions of any other file the user writes.  Its name carries this
    process's id (see the module's docstring).
    """
    path = Path(path)
    for _ in range(100):
        tmp = os.path.join(path.parent or ".", f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"Cannot create a temporary file beside {path}.")


def atomic_write(path: str | os.PathLike, write: Callable, *, binary: bool = False, suffix: str = ".tmp") -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it onto ``path``.

    On any failure (including a full disk while flushing) the temporary file
    is removed, ``path`` keeps its old content, and the error propagates.
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise OutputError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    fd, tmp = temporary_file(path, suffix)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    atomic_write(path, lambda f: f.write(text))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OverflowError:
        return False
    return True


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[0-9a-f]{12}(?:\.[A-Za-z0-9]+)?$")


def clean_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the temporary files that killed writers left in ``folder`` (only for target ``name`` if given).

    A file is removed when the process named in it is gone (or, for a name
    without a process id, when it is older than :data:`STALE_AFTER`).
    Returns the files removed; folders that cannot be listed are skipped.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for e in entries:
        m = _TEMP.match(e.name)
        if not m or (name is not None and m["name"] != name):
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        stale = not _pid_alive(int(m["pid"])) if m["pid"] else now - st.st_mtime > STALE_AFTER
        if stale:
            try:
                os.unlink(e.path)
                removed.append(Path(e.path))
            except OSError:
                pass
    return removed


def _probe(folder: Path) -> str | None:
    """None if a file can be created in ``folder``, else the reason."""
    try:
        fd, tmp = temporary_file(folder / "netlearn-probe")
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(tmp)
    return None


def check_writable(path: str | os.PathLike, what: str) -> Path:
    """Raise :class:`OutputError` (naming ``what``, e.g. ``--save``) unless ``path`` can be written as a file."""
    path = Path(path).expanduser()
    try:
        if path.exists() or path.is_symlink():
            st = path.stat()
            if stat.S_ISDIR(st.st_mode):
                raise OutputError(f"{what} {path}: this is a folder; give a file name (e.g. {path / 'out.json'}).")
            if not stat.S_ISREG(st.st_mode):
                raise OutputError(f"{what} {path}: this is not a regular file; give a file name.")
        parent = path.resolve().parent
        if not parent.exists():
            raise OutputError(f"{what} {path}: the folder {parent} does not exist; create it first.")
        if not parent.is_dir():
            raise OutputError(f"{what} {path}: {parent} is a file, not a folder.")
    except OSError as exc:
        raise OutputError(f"{what} {path}: {exc.strerror or exc}.") from None
    reason = _probe(parent)
    if reason is not None:
        raise OutputError(f"{what} {path}: cannot write into {parent} ({reason}).")
    return path


def check_writable_folder(folder: str | os.PathLike, what: str) -> Path:
    """Create ``folder`` if needed; raise :class:`OutputError` unless files can be written in it."""
    folder = Path(folder).expanduser()
    try:
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{what} {folder}: this is a file; {what} takes a folder (it is created if missing).")
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{what} {folder}: cannot create the folder ({exc.strerror or exc}).") from None
    reason = _probe(folder)
    if reason is not None:
        raise OutputError(f"{what} {folder}: cannot write into this folder ({reason}).")
    return folder


def fallback_paths(path: str | os.PathLike) -> list[Path]:
    """Where a result goes when ``path`` cannot take it: the temporary folder, then the working folder."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"netlearn-rescued-{stamp}-{os.getpid()}-{path.name}"
    out = [Path(tempfile.gettempdir()) / name, Path.cwd() / name]
    return [p for p in out if p.parent.resolve() != path.expanduser().resolve().parent] or out


def write_with_fallback(path: str | os.PathLike, write: Callable[[Path], None]) -> tuple[Path, OSError | None]:
    """``write(path)``; if that fails with an OSError, ``write`` to a fallback path instead.

    Returns ``(where it was written, the first error or None)``.  Raises the
    first error if no fallback could take the result either.
    """
    path = Path(path)
    try:
        write(path)
        return path, None
    except OSError as first:
        for other in fallback_paths(path):
            try:
                write(other)
            except OSError:
                continue
            return other, first
        raise
