"""BLAS threads for small matrix products: one thread inside netlearn's call, restored afterwards.

A mini-batch step multiplies small matrices (a batch of 10 through a
``784 x 100`` layer is under a million multiply-adds).  A multi-threaded BLAS
splits even these between its threads and makes them wait for each other
after every product; on a machine whose cores are busy with other work, each
wait can cost a scheduler time slice, and an epoch that takes 2 s on one
thread took 43-55 s with OpenBLAS's default threads beside two busy processes.
One thread loses nothing measurable on products this small, so ``fit`` and
the evaluation methods run them on one BLAS thread and give the BLAS back its
own setting when they return (threadpoolctl does the setting and restoring).

Nothing here runs at import: the process's BLAS threads are changed only
inside a call, and only while the call runs.  (Like every process-wide
setting, this one is shared by the Python threads of the process: two
threads that train at the same time see each other's limit while both run.)
"""
from __future__ import annotations

import contextlib
from typing import ContextManager

from threadpoolctl import ThreadpoolController

#: Products of fewer multiply-adds than this (rows x n_in x n_out) run on one BLAS thread: a
#: couple of milliseconds of work on one core, too little to share between threads.
SMALL_PRODUCT = 1 << 24

_controller: ThreadpoolController | None = None


def _blas() -> ThreadpoolController:
    """The BLAS libraries loaded in this process, found once (a search of the loaded libraries)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def limited(multiply_adds: int) -> ContextManager:
    """One BLAS thread while the block runs if its largest product is small, else no change.

    ``multiply_adds`` is the size of the largest matrix product in the block,
    ``rows * n_in * n_out``.  The previous thread count is restored on leaving
    the block, also when it raises.
    """
    if multiply_adds >= SMALL_PRODUCT:
        return contextlib.nullcontext()
    return _blas().limit(limits=1, user_api="blas")


def largest_product(rows: int, weights) -> int:
    """``rows x n_in x n_out`` for the largest weight matrix in ``weights`` (0 when there is none)."""
    return rows * max((w.size for w in weights), default=0)
