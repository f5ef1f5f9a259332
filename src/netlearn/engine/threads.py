"""Threads for the compiled engine: atomics, a barrier, and running one kernel on several threads at once.

The kernels run without the GIL, so plain Python threads give real
parallelism; the threads of one call meet at :func:`barrier`, built on
sequentially consistent atomics written as LLVM IR.  No process-wide setting
(Numba's or BLAS's thread count) changes.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from llvmlite import ir as _ir
from numba.core import cgutils as _cgutils
from numba.core import types as _types
from numba.extending import intrinsic

from .compiler import helper
from .intrinsics import small_code


def _int64_array(a):
    return isinstance(a, _types.Array) and a.dtype == _types.int64 and a.layout == "C"


def _element_ptr(context, builder, aryty, ary, idx, idxty):
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.gep(data, [context.cast(builder, idx, idxty, _types.intp)])


@intrinsic
def atomic_add(typingctx, a, i, v):
    """``a[i] += v`` as one atomic (sequentially consistent) step on an int64 array; returns the old ``a[i]``."""
    if not (_int64_array(a) and isinstance(v, _types.Integer)):
        return None
    sig = _types.int64(a, i, v)

    def codegen(context, builder, signature, args):
        ptr = _element_ptr(context, builder, a, args[0], args[1], i)
        val = context.cast(builder, args[2], v, _types.int64)
        return builder.atomic_rmw("add", ptr, val, "seq_cst")

    return sig, codegen


@intrinsic
def atomic_load(typingctx, a, i):
    """``a[i]`` read atomically (sequentially consistent) from an int64 array."""
    if not _int64_array(a):
        return None
    sig = _types.int64(a, i)

    def codegen(context, builder, signature, args):
        return builder.load_atomic(_element_ptr(context, builder, a, args[0], args[1], i), "seq_cst", 8)

    return sig, codegen


@intrinsic
def atomic_store(typingctx, a, i, v):
    """``a[i] = v`` written atomically (sequentially consistent) to an int64 array."""
    if not (_int64_array(a) and isinstance(v, _types.Integer)):
        return None
    sig = _types.none(a, i, v)

    def codegen(context, builder, signature, args):
        ptr = _element_ptr(context, builder, a, args[0], args[1], i)
        builder.store_atomic(context.cast(builder, args[2], v, _types.int64), ptr, "seq_cst", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def yield_cpu(typingctx):
    """Give the rest of this time slice to another thread (POSIX ``sched_yield``)."""
    sig = _types.none()

    def codegen(context, builder, signature, args):
        fn = _cgutils.get_or_insert_function(builder.module, _ir.FunctionType(_ir.IntType(32), []), "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


#: Busy-wait this many checks before yielding the CPU at each check (a few microseconds).
SPINS = 2000

#: ``sync[COUNT]`` counts the threads arrived at the barrier, ``sync[ROUND]`` numbers its rounds
#: (a cache line apart, so waiting on one does not slow the other).
COUNT, ROUND = 0, 8


@helper
def barrier(sync, nthreads):
    """Wait until all ``nthreads`` threads have called this (a central counting barrier).

    The last to arrive resets the count and starts the next round; the others
    spin on the round number, then yield the CPU if it is slow to change (a
    thread that lost its core).  The atomics order memory: everything written
    before the barrier is seen by every thread after it.
    """
    small_code()
    rnd = atomic_load(sync, ROUND)
    if atomic_add(sync, COUNT, 1) == nthreads - 1:
        atomic_store(sync, COUNT, 0)
        atomic_add(sync, ROUND, 1)
        return
    spins = 0
    while atomic_load(sync, ROUND) == rnd:
        spins += 1
        if spins > SPINS:
            yield_cpu()



def run_parallel(fn: Callable[[int], Any], nthreads: int) -> None:
    """``fn(0)`` here and ``fn(1)`` ... ``fn(nthreads - 1)`` on new threads, all at once; returns when all are done.

    The workers wait until every one of them has started, so that kernels
    meeting at a barrier either all run or (a thread could not start) none do.
    """
    if nthreads == 1:
        fn(0)
        return
    go, abort = threading.Event(), [False]

    def worker(tid: int) -> None:
        go.wait()
        if not abort[0]:
            fn(tid)

    workers = [threading.Thread(target=worker, args=(tid,), daemon=True) for tid in range(1, nthreads)]
    try:
        for w in workers:
            w.start()
    except BaseException:
        abort[0] = True
        go.set()
        raise
    go.set()
    try:
        fn(0)
    finally:
        for w in workers:
            w.join()
