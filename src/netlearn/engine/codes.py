"""The numbers the compiled kernels understand: activation codes, output-delta kinds and set-up constants.

Plain Python (no Numba), so that deciding whether the compiled engine applies
costs nothing.
"""
from __future__ import annotations

#: Activation codes (the kernels branch on them).
IDENTITY, SIGMOID, TANH, RELU, SOFTMAX = 0, 1, 2, 3, 4
ACTIVATION_CODES = {"identity": IDENTITY, "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU, "softmax": SOFTMAX}

#: How the output delta ``dC/dz`` is formed.
FUSED = 0      # (a - y)/m: cross-entropy+sigmoid, log-likelihood+softmax, quadratic+identity
HINGE = 1      # -y/m where y a < 1, else 0 (hinge with a linear output)
CHAINED = 2    # quadratic cost with an element-wise output f: (a - y) f'(a) / m

#: The SIMD block: layer widths (and a population's network axis) are padded to multiples of this.
B = 16

#: Inputs with fewer than this fraction of non-zeros use the sparse first layer.
SPARSE_DENSITY = 0.5

#: Below this the lazy decay scale ``s`` is folded back into the weights.
MIN_SCALE = 1e-4

#: Mini-batches of at least this many examples update the weights row by row (threads allowed);
#: smaller ones example by example, which is faster there.
ROWS_MIN_BATCH = 32

#: The row-by-row path files each batch's non-zero inputs by input position; beyond this many bytes
#: of such buffers the batch goes example by example.
ROWS_MAX_BYTES = 64 << 20

#: Threads used by default: at most this many, and at least 25 examples each.
MAX_AUTO_THREADS = 4


def pad_width(n: int, multiple: int = B) -> int:
    """``n`` rounded up to a multiple of 16: whole AVX-512 (or two AVX2) registers of float32."""
    return -(-int(n) // multiple) * multiple
