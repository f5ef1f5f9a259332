"""How much memory a network needs, checked against what the machine has before anything is allocated.

``Network([784, 1000000000, 10])`` would ask NumPy for terabytes: depending on
the system that is a ``MemoryError`` deep in a traceback, or a process that
the kernel kills once the untouched pages are first written.  So the sizes
are turned into bytes first and compared with the memory available now
(``MemAvailable`` on Linux, else the physical memory; also the address-space
limit when one is set), and a network that cannot fit is one
:class:`NetworkTooLargeError` saying how much it would need.
"""
from __future__ import annotations

import os
import resource
from typing import Sequence

import numpy as np


class NetworkTooLargeError(ValueError, MemoryError):
    """A network (or a saved model) that needs more memory than this machine has available."""


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def available_bytes() -> int | None:
    """Memory this process can still get: MemAvailable (Linux), else physical memory; None if unknown."""
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            avail = soft if avail is None else min(avail, soft)
    except (OSError, ValueError):
        pass
    return avail


def dense_parameters(sizes: Sequence[int]) -> int:
    """Weights and biases of the Dense layers ``sizes[0] -> sizes[1] -> ...``."""
    return sum(int(a) * int(b) + int(b) for a, b in zip(sizes[:-1], sizes[1:]))


def check_network_fits(sizes: Sequence[int], dtype) -> None:
    """Raise :class:`NetworkTooLargeError` if a network of ``sizes`` cannot even be built in the memory available.

    Building one holds its weights and their gradients in ``dtype`` and, for
    a moment, one layer's initial weights drawn in float64; training adds the
    optimizer's state and the mini-batch buffers on top.
    """
    count = dense_parameters(sizes)
    itemsize = np.dtype(dtype).itemsize
    widest = max((int(a) * int(b) for a, b in zip(sizes[:-1], sizes[1:])), default=0)
    build = count * 2 * itemsize + widest * 8
    avail = available_bytes()
    if avail is not None and build > avail:
        raise NetworkTooLargeError(
            f"The network {list(sizes)} has {count:,} weights and biases: building it needs about "
            f"{format_bytes(build)} of memory ({np.dtype(dtype).name} weights and gradients), and training more, but "
            f"this machine has {format_bytes(avail)} available. Use fewer or smaller layers.")
