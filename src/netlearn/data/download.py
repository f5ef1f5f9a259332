"""Downloading the IDX files from public mirrors, verified and written atomically.

Each file is fetched from the data set's mirrors in turn (each request with a
timeout) until one delivers bytes whose MD5 is the official one for that
gzip file.  The bytes go to a temporary file beside the target and are
renamed into place only once verified, so an interrupted or corrupted
download never leaves a half file under the real name.  A tqdm progress bar
shows on standard error when it is a terminal.

MNIST mirrors sometimes recompress the files; for MNIST the MD5s of the
decompressed files are known too, and a gzip whose *content* matches is
accepted (the bytes that the loader will see are then exactly the official
ones).

Only the standard library's ``urllib`` is used.  :func:`ensure` is what
:func:`netlearn.data.load_mnist` calls for the per-user cache;
:func:`download` is ``netlearn data download``.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Sequence

from ..files import clean_stale_temporaries, temporary_file
from .errors import DataError, DownloadError
from .idx import read_idx
from .layout import DATASETS, FILES, check_folder, data_root, find_file

#: Base URLs tried in turn for each data set (the file name is appended).
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",           # PyTorch's copy
        "https://storage.googleapis.com/cvdf-datasets/mnist/",      # TensorFlow's copy
        "http://yann.lecun.com/exdb/mnist/",                        # the original site
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

#: MD5 of each official ``.gz`` file.
MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {  # zalandoresearch/fashion-mnist README
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

#: MD5 of the decompressed official files, where known: a recompressed gzip with this content is accepted.
CONTENT_MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion-mnist": {},
}

DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 16
_USER_AGENT = "netlearn (https://pypi.org/project/netlearn) Python-urllib"


def _md5():
    try:
        return hashlib.md5(usedforsecurity=False)
    except TypeError:  # pragma: no cover - very old Pythons
        return hashlib.md5()


def _file_md5(path: Path, content: bool = False) -> str:
    h = _md5()
    opener = gzip.open if content else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _show_progress(progress: bool | None) -> bool:
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return progress


def fetch(urls: Sequence[str], dest: Path, md5: str, *, content_md5: str | None = None,
          timeout: float = DEFAULT_TIMEOUT, progress: bool | None = None,
          unreachable: set[str] | None = None) -> Path:
    """Download ``dest`` from the first of ``urls`` that serves it with the right checksum.

    Each URL is tried in turn; a network error, an HTTP error, a timeout
    (``timeout`` seconds without data) or a checksum mismatch moves on to the
    next.  The data are written to a temporary file in ``dest``'s folder and
    renamed onto ``dest`` only when ``md5`` (of the bytes) or ``content_md5``
    (of the decompressed bytes) matches.  Raises :class:`DownloadError`
    listing every URL tried and why it failed.

    ``unreachable`` (optional, shared between calls) collects the hosts that
    failed at the connection level (no route, DNS, timeout); later calls skip
    them, so an offline machine fails in seconds rather than timing out once
    per file and mirror.
    """
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(dest.parent, dest.name)  # half downloads of killed runs
    failures = []
    unreachable = set() if unreachable is None else unreachable
    for url in urls:
        host = urllib.parse.urlsplit(url).netloc
        if host and host in unreachable:
            failures.append(f"{url}: skipped, {host} was unreachable")
            continue
        fd, tmp_name = temporary_file(dest, ".part")
        tmp = Path(tmp_name)
        try:
            h = _md5()
            request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
                total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
                with tqdm(total=int(total) if total and total.isdigit() else None, unit="B", unit_scale=True,
                          unit_divisor=1024, desc=dest.name, leave=False, file=sys.stderr,
                          disable=not _show_progress(progress)) as bar:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            got = h.hexdigest()
            if got != md5 and not (content_md5 and _content_matches(tmp, content_md5)):
                failures.append(f"{url}: checksum mismatch (MD5 {got}, expected {md5})")
                continue
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                reason = f"HTTP {exc.code} {exc.reason}"
            else:
                reason = getattr(exc, "reason", None) or exc
            if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError) and host:
                unreachable.add(host)
            elif isinstance(exc, TimeoutError) and host:
                unreachable.add(host)
            failures.append(f"{url}: {reason}")
        finally:
            if tmp.exists():
                tmp.unlink()
    raise DownloadError(f"could not download {dest.name}: " + "; ".join(failures))


def _content_matches(path: Path, content_md5: str) -> bool:
    try:
        return _file_md5(path, content=True) == content_md5
    except (OSError, EOFError, zlib.error):
        return False


def _needs(folder: Path, stem: str, check: bool) -> tuple[bool, Path | None]:
    """Whether ``stem`` must be fetched (missing, or with ``check`` structurally unsound), and the unsound file."""
    p = find_file(folder, stem)
    if p is None:
        return True, None
    if check:
        try:
            read_idx(p)
        except DataError:
            return True, p
    return False, None


def download(dataset: str = "mnist", root: str | os.PathLike | None = None, *, check: bool = True,
             mirrors: Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
             progress: bool | None = None) -> list[Path]:
    """Download ``dataset``'s four IDX files into ``<root>/<dataset>/``; return the files written.

    ``root`` defaults to the data root (``$NETLEARN_DATA``, else the per-user
    cache) and is created if needed.  Files already present are kept unless
    ``check`` finds them structurally unsound (then they are replaced).
    ``mirrors`` (base URLs ending in ``/``) replaces the built-in list;
    ``timeout`` is in seconds per request.  Every file is attempted before an
    error is raised, so one :class:`DownloadError` names all that failed and
    says where to put them by hand.
    """
    if dataset not in DATASETS:
        raise DataError(f"The 'dataset' parameter must be one of {sorted(DATASETS)}. Got {dataset!r} instead.")
    if not (timeout > 0):
        raise DataError(f"The 'timeout' parameter must be a positive number of seconds. Got {timeout!r} instead.")
    root = data_root(root)[0]
    check_folder(root, "data root")  # a file, a loop or an unreadable folder: one line naming it
    folder = root / DATASETS[dataset]
    check_folder(folder)
    todo = {stem: bad for stem in FILES for need, bad in [_needs(folder, stem, check)] if need}
    if not todo:
        return []
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the data folder {folder}: {exc.strerror or exc}. "
                            f"Choose another data root with --data-dir or NETLEARN_DATA.") from None
    bases = tuple(mirrors) if mirrors is not None else MIRRORS[dataset]
    written, failed, unreachable = [], [], set()
    for stem, bad in todo.items():
        name = stem + ".gz"
        try:
            written.append(fetch([b + name for b in bases], folder / name, MD5[dataset][name],
                                 content_md5=CONTENT_MD5[dataset].get(name), timeout=timeout, progress=progress,
                                 unreachable=unreachable))
        except DownloadError as exc:
            failed.append((name, str(exc)))
            continue
        if bad is not None and bad != folder / name and bad.is_file():
            bad.unlink()  # the unsound file that the fresh download replaces
    if failed:
        names = ", ".join(n for n, _ in failed)
        first_reason = failed[0][1]
        raise DownloadError(
            f"{dataset} files missing from {folder}: {names} (download failed -- {first_reason}). "
            f"Fetch them by hand from {bases[0]} (or {', '.join(bases[1:]) or 'another mirror'}) and put them "
            f"into {folder}, or point NETLEARN_DATA / --data-dir at a root whose {DATASETS[dataset]}/ holds them, "
            f"or name a mirror you can reach: netlearn data download --mirror URL (a base URL such as "
            f"file:///media/mnist/; in Python, download(..., mirrors=[URL])).")
    return written


def ensure(dataset: str, root: Path) -> None:
    """Download whatever of ``dataset``'s four files ``root/dataset`` lacks (the per-user cache path).

    Files already there are not re-read here (the loader checks their
    structure); see :func:`download` for the details and the errors.
    """
    folder = Path(root) / DATASETS[dataset]
    if all(find_file(folder, stem) is not None for stem in FILES):
        return
    download(dataset, root, check=False)
