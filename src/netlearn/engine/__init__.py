"""The compiled (Numba) training engine, one concept per module.

============== ===============================================================
``codes``      activation codes, output-delta kinds and set-up constants
``support``    what the engine can train (:func:`describe`,
               :func:`sgd_coefficients`) and the ``NETLEARN_ENGINE`` /
               ``NETLEARN_THREADS`` settings -- plain Python, no Numba
``compiler``   the one Numba decorator and the "compiling" notice
``intrinsics`` 16-wide vector steps, prefetch and compress, written as LLVM IR
``threads``    atomics, a barrier, one kernel on several threads
``inputs``     the index of the training inputs' non-zeros, prefetching
``step``       the training step's math, each rule once: ``f``, ``f'``, the
               output delta per cost, the lazy-decay / L1 update, the bias step
``single``     the one-network kernels and :class:`CompiledEpochs`, their runner
``population`` the kernels that train K networks in lockstep
============== ===============================================================

``import netlearn`` does not import Numba: only :func:`load` does (the first
time a run takes the compiled path), because importing Numba and loading the
cached kernels costs about half a second.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from .codes import (ACTIVATION_CODES, CHAINED, FUSED, HINGE, IDENTITY, RELU, SIGMOID, SOFTMAX, TANH,  # noqa: F401
                    pad_width)
from .support import (ENGINES, EngineUnavailable, describe, engine_setting, env_threads,  # noqa: F401
                      resolve_threads, sgd_coefficients)


def load(module: str = "single") -> ModuleType:
    """The compiled module ``netlearn.engine.<module>`` (``"single"`` or ``"population"``), importing Numba.

    Raises :class:`EngineUnavailable` where Numba is missing or can neither
    write nor read its cache (a read-only install with no writable home: Numba
    then refuses ``cache=True`` functions at import); the caller decides
    whether to fall back to NumPy.
    """
    try:
        return importlib.import_module(f"{__name__}.{module}")
    except ImportError as exc:  # pragma: no cover - Numba is a core dependency
        raise EngineUnavailable(f"Numba cannot be imported ({exc})") from None
    except RuntimeError as exc:
        if "cannot cache" not in str(exc):
            raise
        raise EngineUnavailable("Numba can neither write nor read a cache for the compiled kernels here "
                                "(a read-only install and no writable home); set NUMBA_CACHE_DIR to a "
                                "writable folder") from None
