"""How every kernel is compiled: the Numba decorators, and a report on standard error of a slow first compile.

Three decorators with one set of settings: :func:`jit` (kernels and
functions called from Python), :func:`helper` (called by kernels only: no
Python entry point, cheaper to compile) and :func:`inline` (inlined by Numba
into its one caller).  Every function is compiled with ``cache=True`` (the
machine code is kept on disk next to the package, or in Numba's user cache,
keyed on all the engine's sources: :func:`_keyed`), without the GIL, with a
NumPy error model (a division by zero gives inf, not an exception) and with
the fast-math flags that let LLVM fuse and reorder sums, but no "finite math"
assumption, so a diverging network still shows NaN/inf, and without reference
counting (nothing inside a kernel allocates).
"""
from __future__ import annotations

import hashlib
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numba
from numba.core.registry import CPUDispatcher

#: Fused multiply-add and reassociation (so dot products vectorize); no finite-math assumptions.
FASTMATH = {"contract", "reassoc", "nsz"}


def _engine_digest() -> str:
    """A digest of every source file of the engine (this folder's ``*.py``)."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


#: Part of every engine function's cache key (see :func:`_keyed`).
ENGINE_DIGEST = _engine_digest()


def _keyed(dispatcher):
    """Tie ``dispatcher``'s disk cache to the whole engine's sources, not only its own file.

    Numba reuses a cached function while its own source file is unchanged,
    but a kernel carries the compiled code of every helper it calls: after an
    edit of ``step.py`` alone, the cached kernels of ``single.py`` would run
    the old math.  With the digest of all engine sources in the cache's
    source stamp, any edit to the engine makes every cached entry stale, and
    it is compiled again.  (An installed copy is not edited; this guards a
    development checkout.)  Where Numba's cache lacks the expected
    attributes, its own rule stays.
    """
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    if cache_file is not None and hasattr(cache_file, "_source_stamp"):
        cache_file._source_stamp = (cache_file._source_stamp, ENGINE_DIGEST)
    return dispatcher


#: ``_nrt=False``: no reference counting.  The kernels allocate nothing (every buffer comes from Python,
#: which keeps it alive for the call), so Numba's increments and decrements of each array in the bundles
#: were pure overhead to compile: they were about half the population kernel's unoptimized IR (660
#: calls in 21,500 lines, 12,300 lines without), all removed again by LLVM.  About a tenth off the
#: first compile of the population and row-by-row kernels (paired runs); training gives the same bits.
_jit = numba.njit(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy", no_cfunc_wrapper=True, _nrt=False)


def jit(fn: Callable) -> CPUDispatcher:
    """Compile ``fn`` with the engine's settings (a kernel or a function called from Python)."""
    return _keyed(_jit(fn))


_helper = numba.njit(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy", no_cpython_wrapper=True,
                     no_cfunc_wrapper=True, _nrt=False)


class Helper(CPUDispatcher):
    """A compiled function that only compiled code calls: it has no Python entry point (see :func:`helper`)."""

    def __call__(self, *args, **kwargs):
        # (Numba would call a missing entry point and crash the process; say what is wrong instead.)
        raise TypeError(f"{self.py_func.__name__} is a compiled helper with no Python entry point: "
                        "call it from a compiled function")


def helper(fn: Callable) -> Helper:
    """Compile ``fn`` like :func:`jit`, for calls from compiled code only.

    Numba gives every compiled function a wrapper that converts Python
    objects (and a C-callable one), and compiles, optimizes and caches both;
    a helper that only kernels call needs neither.  Leaving them out takes
    about a tenth off the first compile of a kernel (measured on the
    row-by-row kernel, paired runs).
    """
    d = _keyed(_helper(fn))
    d.__class__ = Helper
    return d


#: The same for a function called from one place in a kernel: Numba inlines its code into the caller
#: before compiling, instead of compiling, optimizing and emitting it on its own first and then again
#: inside the caller (Numba optimizes each function's module with all its callees linked in, so every
#: level of nesting repeats the work below it).  The machine code is the same; the first compile of the
#: row-by-row kernel takes about a fifth less CPU time.  Helpers called from several places stay
#: separate :func:`helper` functions (inlining them, or making the inlined ones helpers, measured
#: slower to compile, in paired runs too).
_inline = numba.njit(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy", inline="always", _nrt=False)


def inline(fn: Callable) -> CPUDispatcher:
    """Compile ``fn`` like :func:`jit`, inlined into its callers by Numba (see :data:`_inline`)."""
    return _keyed(_inline(fn))


#: A first call that takes longer than this is announced as a compile (a cached kernel loads in less).
ANNOUNCE_AFTER = 1.0


def compile_with_notice(build: Callable[[], None], what: str, announce: bool, stream=None) -> None:
    """Run ``build`` (a first call that compiles or loads kernels); if ``announce`` and it is slow, say so.

    A line containing "compiling" goes to ``stream`` (standard error) once the
    call has run for ``ANNOUNCE_AFTER`` seconds, and one with the seconds it
    took when it is done: the first run after an install compiles for several
    seconds, and the first epoch would otherwise look hung.  A cached kernel
    loads faster than that and prints nothing.
    """
    if not announce:
        build()
        return
    out = stream if stream is not None else sys.stderr
    t0 = time.perf_counter()
    lock = threading.Lock()
    state = {"said": False, "done": False}

    def notice() -> None:
        with lock:  # (never after the call has ended, so the two lines come in order)
            if not state["done"]:
                state["said"] = True
                print(f"netlearn: compiling the {what} (once; the result is cached on disk)...", file=out,
                      flush=True)

    timer = threading.Timer(ANNOUNCE_AFTER, notice)
    timer.daemon = True
    timer.start()
    try:
        build()
    finally:
        with lock:
            state["done"] = True
        timer.cancel()
    if state["said"]:
        print(f"netlearn: compiled the {what} in {time.perf_counter() - t0:.1f} s", file=out, flush=True)
