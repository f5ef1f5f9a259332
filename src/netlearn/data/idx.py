"""The IDX format (LeCun's), read with every declared size checked against what the file can hold.

An IDX file is a 4-byte magic number ``0 0 T D`` -- ``T`` the element type
(``0x08`` unsigned byte, ...), ``D`` the number of dimensions -- then ``D``
big-endian 32-bit sizes, then the elements in C order.  Image files are
``(n, rows, cols)`` unsigned bytes, label files ``(n,)``.

A header is a promise that the file may not keep: a few kilobytes of gzip can
claim 2^31 images.  So the header is read first, and the body it declares is
compared with what the file can hold *before* anything is decompressed: a raw
file must have exactly that many bytes, and a gzip stream at most
:data:`MAX_DEFLATE_RATIO` times its compressed size (deflate's largest
ratio).  The body is then decompressed in chunks into a buffer that grows
only as data arrives, and never past the declared size, so memory stays
bounded by the data the file really carries.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError
from .layout import describe_oserror

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
#: Deflate never turns one byte into more than about 1032 (its best case is 258 bytes per 2 bits).
MAX_DEFLATE_RATIO = 1032
REDOWNLOAD = "Delete it and download it again (netlearn data download)."
_CHUNK = 1 << 20


def _exact(f, n: int) -> bytes:
    out = f.read(n)
    return out if out is not None else b""


def _read_body(f, body: int, start: int) -> np.ndarray | None:
    """Exactly ``body`` bytes from ``f`` into a growing buffer; None if the stream ends first."""
    buf = np.empty(min(body, max(start, 1)), np.uint8)
    got = 0
    while got < body:
        if got == buf.shape[0]:  # grow only as the data arrives, never past the declared size
            bigger = np.empty(min(body, 2 * buf.shape[0]), np.uint8)
            bigger[:got] = buf[:got]
            buf = bigger
        n = f.readinto(memoryview(buf)[got:min(buf.shape[0], got + _CHUNK)])
        if not n:
            return None
        got += n
    return buf


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or raw), checking its magic number, dimensions and length.

    Returns a read-only array of the file's type and shape.  Anything that is
    not exactly one well-formed IDX file (a bad gzip stream, a truncated or
    over-long body, a wrong magic number, a header that declares more than
    the file can hold) raises :class:`DataError` naming the file; no
    partially read array is ever returned.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            f = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
            head = _exact(f, 4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES or head[3] == 0:
                raise DataError(f"{path} is not an IDX file (bad magic number {head.hex() or 'none'}; "
                                f"expected 0000 then a type byte and a dimension count). {REDOWNLOAD}")
            dtype, ndim = np.dtype(IDX_DTYPES[head[2]]), head[3]
            sizes = _exact(f, 4 * ndim)
            if len(sizes) < 4 * ndim:
                raise DataError(f"{path} is truncated: its header is incomplete. {REDOWNLOAD}")
            dims = tuple(int.from_bytes(sizes[4 * i: 4 * i + 4], "big") for i in range(ndim))
            header = 4 + 4 * ndim
            body = int(np.prod(dims, dtype=object)) * dtype.itemsize
            if gz:
                can_hold = MAX_DEFLATE_RATIO * size
                if body > can_hold:
                    raise DataError(f"{path} declares dimensions {dims} ({body} bytes), but a gzip file of {size} "
                                    f"bytes can hold at most {can_hold}: its header lies. {REDOWNLOAD}")
            elif header + body != size:
                what = "truncated" if size < header + body else "longer than its header says"
                raise DataError(f"{path} is {what}: {size} bytes for dimensions {dims} (expected "
                                f"{header + body}). {REDOWNLOAD}")
            buf = _read_body(f, body, start=8 * size if gz else body)
            if buf is None:
                raise DataError(f"{path} is truncated: it ends before the {body} bytes that its dimensions "
                                f"{dims} declare. {REDOWNLOAD}")
            if gz and _exact(f, 1):
                raise DataError(f"{path} is longer than its header says (dimensions {dims}). {REDOWNLOAD}")
    except DataError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        # A truncated gzip stream is an EOFError; a corrupt one a BadGzipFile or zlib.error.
        raise DataError(f"{path} cannot be read as an IDX file: {exc or type(exc).__name__}. {REDOWNLOAD}") from None
    except OSError as exc:
        raise DataError(describe_oserror(path, exc)) from None
    try:
        a = buf.view(dtype).reshape(dims)
    except ValueError:  # e.g. (0, 2^32, 2^32, 2^32): no data, but a shape NumPy cannot represent
        raise DataError(f"{path} declares dimensions {dims}, which no array can have. {REDOWNLOAD}") from None
    a.flags.writeable = False
    return a
