"""Numba kernels behind :mod:`netlearn.kernels` and :mod:`netlearn.population`.

Imported only when a compiled path is first used, so ``import netlearn`` does
not pay for Numba.  Every function is compiled with ``cache=True`` (the
machine code is kept on disk next to this file, or in Numba's user cache) and
allocates nothing per mini-batch.  Each call runs on the thread that makes
it, without the GIL; :func:`train_rows` is made to be called by several
threads at once (they meet at a :func:`barrier`), the others by one.

Notation follows the book: ``z = a W + b`` (batch-first, ``W`` is
``(n_in, n_out)``), ``a = f(z)``, ``delta = dC/dz``; ``eta`` the learning
rate, ``c2 = lmbda/n`` (L2) and ``c1 = lmbda/n`` (L1) the regularization
coefficients.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir as _ir
from numba.core import cgutils as _cgutils
from numba.core import types as _types
from numba.extending import intrinsic

from .kernels import FUSED, HINGE, RELU, SIGMOID, SOFTMAX, TANH, _MIN_SCALE

#: Fused multiply-add and reassociation (so dot products vectorize); no
#: "finite math" assumptions, so a diverging network still shows NaN/inf.
FASTMATH = {"contract", "reassoc", "nsz"}

jit = numba.njit(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy")



# ---------------------------------------------------------------------------
# float32 exp that vectorizes (Cephes' expf: range reduction + degree-5 polynomial)
# ---------------------------------------------------------------------------


@intrinsic
def _pow2(typingctx, n):
    """``2.0**n`` for a float32 ``n`` holding an integer in [-126, 127]: the exponent bits built directly.

    (An LLVM ``fptosi``, add, shift and ``bitcast``, so loops that use it stay vectorizable.)
    """
    if n != _types.float32:
        return None

    def codegen(context, builder, signature, args):
        i32 = _ir.IntType(32)
        e = builder.add(builder.fptosi(args[0], i32), _ir.Constant(i32, 127))
        return builder.bitcast(builder.shl(e, _ir.Constant(i32, 23)), _ir.FloatType())

    return _types.float32(_types.float32), codegen


_F = np.float32
_EXP_HI, _EXP_LO = _F(88.0), _F(-87.0)
_LOG2E, _HALF, _ONE = _F(1.44269504088896341), _F(0.5), _F(1.0)
_LN2_HI, _LN2_LO = _F(0.693359375), _F(-2.12194440e-4)
_P0, _P1, _P2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3, _P4, _P5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)


@jit
def expf(x):
    """``exp(x)`` for a float32 ``x`` within about 1 ulp (clamped to [-87, 88], NaN stays NaN).

    ``math.exp`` is a call into libm that LLVM cannot vectorize; this is plain
    float32 arithmetic, so a loop of it becomes AVX-512 code.
    """
    x = min(max(x, _EXP_LO), _EXP_HI)
    n = np.floor(x * _LOG2E + _HALF)
    r = x - n * _LN2_HI - n * _LN2_LO
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * (r * r) + r + _ONE
    return p * _pow2(n)


@jit
def derivative(a, code):
    """``f'(z)`` in terms of ``a = f(z)`` for an element-wise activation (identity: 1)."""
    if code == SIGMOID:
        return a * (1.0 - a)
    if code == TANH:
        return 1.0 - a * a
    if code == RELU:
        return 1.0 if a > 0 else 0.0
    return 1.0


@jit
def csr_counts(X, counts):
    """``counts[r]`` = number of non-zero inputs in row ``r``."""
    for r in range(X.shape[0]):
        c = 0
        for i in range(X.shape[1]):
            c += X[r, i] != 0
        counts[r] = c


@jit
def csr_fill(X, indptr, cols, vals):
    """Write the positions and values of each row's non-zeros at ``indptr[r]:indptr[r+1]``.

    Branch-free: every input is written at position ``p`` and ``p`` advances
    only past non-zeros (so ``cols``/``vals`` need one spare slot at the end).
    """
    for r in range(X.shape[0]):
        p = indptr[r]
        for i in range(X.shape[1]):
            x = X[r, i]
            cols[p] = i
            vals[p] = x
            p += x != 0


@jit
def csr_fill32(X, indptr, cols, vals):
    """:func:`csr_fill` for float32 ``X``, sixteen inputs at a time with :func:`vcompress`.

    About three times faster on MNIST.  The last ``n_in % 16`` inputs of a row
    go one at a time as in :func:`csr_fill`.  ``cols``/``vals`` need ``B``
    spare slots at the end.
    """
    N = X.shape[1]
    N16 = N - N % B
    for r in range(X.shape[0]):
        p = indptr[r]
        for i in range(0, N16, B):
            p += vcompress(X, r * N + i, vals, cols, p, i)
        for i in range(N16, N):
            x = X[r, i]
            cols[p] = i
            vals[p] = x
            p += x != 0


@jit
def scale_rows(W, s):
    """``W *= s`` (folding a lazy decay scale back into the weights)."""
    for i in range(W.shape[0]):
        w = W[i]
        for j in range(w.shape[0]):
            w[j] *= s


# ---------------------------------------------------------------------------
# 16-wide SIMD steps, written directly as LLVM vector operations
# ---------------------------------------------------------------------------
# Why: a loop ``for j in range(n): W[i, j] += g * d[e, j]`` over a short
# runtime width (32 for the book's hidden layer) is vectorized by LLVM for
# 64 elements at a time, with the rest in a narrow or scalar remainder loop,
# so these widths never reach the fast path; a constant 16-element loop is
# unrolled first and then not vectorized at all, for fear that ``W`` and
# ``d`` overlap.  These helpers say "one 16-element vector operation"
# outright: LLVM maps a <16 x float> to one AVX-512 register (two AVX2 ones,
# or four SSE ones elsewhere).  Offsets are flat element indices into
# C-contiguous arrays; the layer widths are padded to multiples of 16.

#: The SIMD block: widths are padded to multiples of this.
B = 16


def _vector_ptr(context, builder, aryty, ary, idx, idxty):
    """Pointer to the <16 x dtype> vector starting at flat element ``idx`` of the array ``ary``."""
    data = context.make_array(aryty)(context, builder, ary).data
    i = context.cast(builder, idx, idxty, _types.intp)
    elem = context.get_data_type(aryty.dtype)
    return builder.bitcast(builder.gep(data, [i]), _ir.VectorType(elem, B).as_pointer())


def _load(builder, ptr, aryty):
    return builder.load(ptr, align=aryty.dtype.bitwidth // 8)


def _splat(builder, x, vecty):
    v = builder.insert_element(_ir.Constant(vecty, _ir.Undefined), x, _ir.Constant(_ir.IntType(32), 0))
    zeros = _ir.Constant(_ir.VectorType(_ir.IntType(32), B), [0] * B)
    return builder.shuffle_vector(v, _ir.Constant(vecty, _ir.Undefined), zeros)


def _fma(builder, a, b, c):
    """``a * b + c`` element-wise, as the vector ``llvm.fma`` intrinsic."""
    vt = a.type
    name = f"llvm.fma.v{vt.count}f{vt.element.intrinsic_name[1:]}"  # llvm.fma.v16f32 / v16f64
    fn = _cgutils.get_or_insert_function(builder.module, _ir.FunctionType(vt, [vt, vt, vt]), name)
    return builder.call(fn, [a, b, c])


def _same_float_arrays(*arys):
    """Are these all C-contiguous arrays of one float dtype?  (The helpers index them flat, unchecked.)"""
    return all(isinstance(a, _types.Array) and a.layout == "C" and a.dtype == arys[0].dtype
               and a.dtype in (_types.float32, _types.float64) for a in arys)


@intrinsic
def vaxpy(typingctx, Y, iy, a, X, ix):
    """``Y.flat[iy:iy+16] += a * X.flat[ix:ix+16]`` (fused multiply-add)."""
    if not _same_float_arrays(Y, X):
        return None
    sig = _types.none(Y, iy, Y.dtype, X, ix)

    def codegen(context, builder, signature, args):
        Yv, iyv, av, Xv, ixv = args
        py = _vector_ptr(context, builder, Y, Yv, iyv, iy)
        px = _vector_ptr(context, builder, X, Xv, ixv, ix)
        yv, xv = _load(builder, py, Y), _load(builder, px, X)
        builder.store(_fma(builder, _splat(builder, av, yv.type), xv, yv), py, align=Y.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vmuladd(typingctx, Y, iy, X1, i1, X2, i2):
    """``Y.flat[iy:iy+16] += X1.flat[i1:i1+16] * X2.flat[i2:i2+16]`` element by element (fused)."""
    if not _same_float_arrays(Y, X1, X2):
        return None
    sig = _types.none(Y, iy, X1, i1, X2, i2)

    def codegen(context, builder, signature, args):
        Yv, iyv, X1v, i1v, X2v, i2v = args
        py = _vector_ptr(context, builder, Y, Yv, iyv, iy)
        a = _load(builder, _vector_ptr(context, builder, X1, X1v, i1v, i1), X1)
        b = _load(builder, _vector_ptr(context, builder, X2, X2v, i2v, i2), X2)
        builder.store(_fma(builder, a, b, _load(builder, py, Y)), py, align=Y.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vaxpy4(typingctx, Y, iy, W, i0, i1, i2, i3, x0, x1, x2, x3):
    """``Y.flat[iy:iy+16] += x0 W.flat[i0:i0+16] + ... + x3 W.flat[i3:i3+16]``.

    Summing four rows before touching ``Y`` breaks the chain of load-add-store
    through ``Y`` that otherwise limits a long sum of rows to one per ~10 cycles.
    """
    if not _same_float_arrays(Y, W):
        return None
    sig = _types.none(Y, iy, W, i0, i1, i2, i3, Y.dtype, Y.dtype, Y.dtype, Y.dtype)

    def codegen(context, builder, signature, args):
        Yv, iyv, Wv = args[0], args[1], args[2]
        idx, xs = args[3:7], args[7:11]
        py = _vector_ptr(context, builder, Y, Yv, iyv, iy)
        rows = [_load(builder, _vector_ptr(context, builder, W, Wv, i, signature.args[3 + k]), W)
                for k, i in enumerate(idx)]
        vecty = rows[0].type
        xv = [_splat(builder, x, vecty) for x in xs]
        s01 = _fma(builder, xv[1], rows[1], builder.fmul(xv[0], rows[0]))
        s23 = _fma(builder, xv[3], rows[3], builder.fmul(xv[2], rows[2]))
        yv = _load(builder, py, Y)
        builder.store(builder.fadd(yv, builder.fadd(s01, s23)), py, align=Y.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vdot(typingctx, X, ix, Y, iy):
    """``sum(X.flat[ix:ix+16] * Y.flat[iy:iy+16])`` (a pairwise tree of sums)."""
    if not _same_float_arrays(X, Y):
        return None
    sig = X.dtype(X, ix, Y, iy)

    def codegen(context, builder, signature, args):
        Xv, ixv, Yv, iyv = args
        v = builder.fmul(_load(builder, _vector_ptr(context, builder, X, Xv, ixv, ix), X),
                         _load(builder, _vector_ptr(context, builder, Y, Yv, iyv, iy), Y))
        i32 = _ir.IntType(32)
        h = B
        while h > 1:  # fold the upper half onto the lower half
            h //= 2
            mask = _ir.Constant(_ir.VectorType(i32, B), list(range(h, 2 * h)) + list(range(B - h)))
            v = builder.fadd(v, builder.shuffle_vector(v, v, mask))
        return builder.extract_element(v, _ir.Constant(i32, 0))

    return sig, codegen


@intrinsic
def prefetch(typingctx, X, ix):
    """Ask for the cache line holding ``X.flat[ix]`` ahead of use (a hint: never faults, no effect on results)."""
    if not (isinstance(X, _types.Array) and X.layout == "C"):
        return None
    sig = _types.none(X, ix)

    def codegen(context, builder, signature, args):
        data = context.make_array(X)(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [context.cast(builder, args[1], ix, _types.intp)]),
                              _ir.IntType(8).as_pointer())
        i32 = _ir.IntType(32)
        fnty = _ir.FunctionType(_ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = _cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, _ir.Constant(i32, 0), _ir.Constant(i32, 3), _ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


#: Examples ahead whose inputs and targets are prefetched.
PREFETCH = 2


@jit
def prefetch_example(r, sparse, indptr, cols, vals, X, T):
    """Start loading example ``r``'s inputs and targets into the cache (rows are visited in random order,
    so the hardware cannot guess them)."""
    if sparse:
        p0, p1 = indptr[r], indptr[r + 1]
        for p in range(p0, p1, 32):
            prefetch(cols, p)
        for p in range(p0, p1, 16):
            prefetch(vals, p)
    else:
        for i in range(0, X.shape[1], 16):
            prefetch(X, r * X.shape[1] + i)
    prefetch(T, r * T.shape[1])


@intrinsic
def store_index(typingctx, X, ix, i):
    """``X.flat[ix]`` = the bits of the non-negative integer ``i`` (a row index kept beside a value in a
    float array, read back by :func:`vpanel_pairs`; no conversion either way)."""
    if not (isinstance(X, _types.Array) and X.layout == "C" and X.dtype in (_types.float32, _types.float64)
            and isinstance(i, _types.Integer)):
        return None
    sig = _types.none(X, ix, i)

    def codegen(context, builder, signature, args):
        data = context.make_array(X)(context, builder, args[0]).data
        ptr = builder.gep(data, [context.cast(builder, args[1], ix, _types.intp)])
        ity = _ir.IntType(X.dtype.bitwidth)
        val = context.cast(builder, args[2], i, _types.int64)
        val = builder.trunc(val, ity) if X.dtype.bitwidth < 64 else val
        builder.store(builder.bitcast(val, context.get_data_type(X.dtype)), ptr)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vcompress(typingctx, X, ix, vals, cols, p, first):
    """Append the non-zeros of ``X.flat[ix:ix+16]`` to ``vals[p:]`` and their positions
    (``first``, ``first+1``, ...) to ``cols[p:]``; return how many there were.

    The non-zeros are packed in a register (LLVM's ``vector.compress``: one
    AVX-512 ``vcompressps`` / ``vpcompressw``) and stored as a whole vector, so
    up to 16 slots past the last one written are overwritten and ``vals`` and
    ``cols`` need 16 spare slots at the end.  (A compress straight to memory is
    microcoded and very slow on AMD Zen 4.)  NaN counts as non-zero.  Float32 only
    (the 16 x float64 form crashed LLVM's x86 back end when tried).
    """
    if not (_same_float_arrays(X, vals) and X.dtype == _types.float32
            and isinstance(cols, _types.Array) and cols.layout == "C"
            and isinstance(cols.dtype, _types.Integer)):
        return None
    sig = _types.intp(X, ix, vals, cols, p, first)

    def codegen(context, builder, signature, args):
        Xv, ixv, valsv, colsv, pv, firstv = args
        xv = _load(builder, _vector_ptr(context, builder, X, Xv, ixv, ix), X)
        vecty = xv.type
        mask = builder.fcmp_unordered("!=", xv, _ir.Constant(vecty, None))
        p = context.cast(builder, pv, signature.args[4], _types.intp)
        vdata = builder.gep(context.make_array(vals)(context, builder, valsv).data, [p])
        cdata = builder.gep(context.make_array(cols)(context, builder, colsv).data, [p])
        cty = context.get_data_type(cols.dtype)
        first = builder.trunc(context.cast(builder, firstv, signature.args[5], _types.intp), cty)
        iota = _ir.Constant(_ir.VectorType(cty, B), list(range(B)))
        idx = builder.add(_splat(builder, first, _ir.VectorType(cty, B)), iota)
        for v, ptr, ty in ((xv, vdata, vals.dtype), (idx, cdata, cols.dtype)):
            name = f"llvm.experimental.vector.compress.v{B}{v.type.element.intrinsic_name}"
            fnty = _ir.FunctionType(v.type, [v.type, mask.type, v.type])
            fn = _cgutils.get_or_insert_function(builder.module, fnty, name)
            packed = builder.call(fn, [v, mask, _ir.Constant(v.type, _ir.Undefined)])
            builder.store(packed, builder.bitcast(ptr, v.type.as_pointer()), align=ty.bitwidth // 8)
        i16 = _ir.IntType(B)
        ctpop = _cgutils.get_or_insert_function(builder.module, _ir.FunctionType(i16, [i16]), f"llvm.ctpop.i{B}")
        return builder.zext(builder.call(ctpop, [builder.bitcast(mask, i16)]), _ir.IntType(64))

    return sig, codegen


def _row_sum(context, builder, P, Z, Zv, iz, W, Wv, n, j, count, term, alpha):
    """Emit ``Z.flat[iz + 16b : iz + 16b + 16] += alpha * sum_l x_l W.flat[i_l n + j + 16b ...]`` for the
    ``P`` blocks ``b``, where ``term(l)`` gives the row ``i_l`` and value ``x_l`` of term ``l < count``.

    Two sets of ``P`` accumulators (even and odd terms): ``2P`` independent
    chains of additions, all in registers; ``Z`` is loaded and stored once.
    """
    intp = _types.intp
    i64 = _ir.IntType(64)
    vecty = _ir.VectorType(context.get_data_type(Z.dtype), B)
    accs = [_cgutils.alloca_once_value(builder, _ir.Constant(vecty, None)) for _ in range(2 * P)]

    def add_term(l, half):
        i, xs = term(l)
        x = _splat(builder, xs, vecty)
        base = builder.add(builder.mul(i, n), j)
        for b in range(P):
            row = _load(builder, _vector_ptr(context, builder, W, Wv, builder.add(base, _ir.Constant(i64, b * B)),
                                             intp), W)
            acc = accs[half * P + b]
            builder.store(_fma(builder, x, row, builder.load(acc)), acc)

    npairs = builder.sdiv(count, _ir.Constant(i64, 2))
    with _cgutils.for_range(builder, npairs) as loop:
        l = builder.mul(loop.index, _ir.Constant(i64, 2))
        add_term(l, 0)
        add_term(builder.add(l, _ir.Constant(i64, 1)), 1)
    last = builder.mul(npairs, _ir.Constant(i64, 2))
    with builder.if_then(builder.icmp_signed("<", last, count)):
        add_term(last, 0)
    a = _splat(builder, alpha, vecty)
    for b in range(P):
        pz = _vector_ptr(context, builder, Z, Zv, builder.add(iz, _ir.Constant(i64, b * B)), intp)
        total = builder.fadd(builder.load(accs[b]), builder.load(accs[P + b]))
        builder.store(_fma(builder, a, total, _load(builder, pz, Z)), pz, align=Z.dtype.bitwidth // 8)


def _make_vrows(P):
    """The intrinsic ``vrows{P}`` (see :func:`vrows`) for a panel of ``P`` blocks of 16."""

    def vrows_p(typingctx, Z, iz, W, n, j, cols, vals, p0, p1, alpha):
        dense = cols == _types.none
        if not (_same_float_arrays(Z, W, vals) and (dense or (
                isinstance(cols, _types.Array) and cols.layout == "C" and isinstance(cols.dtype, _types.Integer)))):
            return None
        sig = _types.none(Z, iz, W, n, j, cols, vals, p0, p1, Z.dtype)

        def codegen(context, builder, signature, args):
            Zv, izv, Wv, nv, jv, cv, xv, p0v, p1v, av = args
            intp = _types.intp
            cast = lambda v, k: context.cast(builder, v, signature.args[k], intp)  # noqa: E731
            cdata = None if dense else context.make_array(cols)(context, builder, cv).data
            xdata = context.make_array(vals)(context, builder, xv).data
            q0, q1 = cast(p0v, 7), cast(p1v, 8)

            def term(l):
                q = builder.add(q0, l)
                i = l if dense else context.cast(builder, builder.load(builder.gep(cdata, [q])), cols.dtype, intp)
                return i, builder.load(builder.gep(xdata, [q]))

            _row_sum(context, builder, P, Z, Zv, cast(izv, 1), W, Wv, cast(nv, 3), cast(jv, 4),
                     builder.sub(q1, q0), term, av)
            return context.get_dummy_value()

        return sig, codegen

    vrows_p.__name__ = f"vrows{P}"
    return intrinsic(vrows_p)


vrows1, vrows2, vrows3, vrows4, vrows5, vrows6, vrows7, vrows8 = (_make_vrows(P) for P in range(1, 9))


def _make_vpairs(P):
    """The intrinsic ``vpairs{P}``: ``Z.flat[iz:iz+16P] += alpha * sum(x * W[e, j:j+16P])`` over the
    pairs ``(x, e)`` ``p0:p1`` then ``p2:p3`` of ``vals`` (``vals[2q]`` a value, ``vals[2q+1]`` its row's
    bits, :func:`store_index`), as one sequence: the same sums, in the same order, as over those pairs
    copied one after the other."""

    def vpairs_p(typingctx, Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha):
        if not _same_float_arrays(Z, W, vals):
            return None
        sig = _types.none(Z, iz, W, n, j, vals, p0, p1, p2, p3, Z.dtype)

        def codegen(context, builder, signature, args):
            Zv, izv, Wv, nv, jv, xv, p0v, p1v, p2v, p3v, av = args
            intp = _types.intp
            cast = lambda v, k: context.cast(builder, v, signature.args[k], intp)  # noqa: E731
            i64 = _ir.IntType(64)
            xdata = context.make_array(vals)(context, builder, xv).data
            q0, q1, q2, q3 = cast(p0v, 6), cast(p1v, 7), cast(p2v, 8), cast(p3v, 9)
            n0 = builder.sub(q1, q0)
            shift = builder.sub(q2, q1)  # term l lies at q0 + l, or past the first run at q0 + l + shift

            def term(l):
                q = builder.add(q0, l)
                q = builder.select(builder.icmp_signed("<", l, n0), q, builder.add(q, shift))
                q2x = builder.mul(q, _ir.Constant(i64, 2))
                bits = builder.load(builder.gep(xdata, [builder.add(q2x, _ir.Constant(i64, 1))]))
                i = builder.zext(builder.bitcast(bits, _ir.IntType(vals.dtype.bitwidth)), i64) \
                    if vals.dtype.bitwidth < 64 else builder.bitcast(bits, i64)
                return i, builder.load(builder.gep(xdata, [q2x]))

            _row_sum(context, builder, P, Z, Zv, cast(izv, 1), W, Wv, cast(nv, 3), cast(jv, 4),
                     builder.add(n0, builder.sub(q3, q2)), term, av)
            return context.get_dummy_value()

        return sig, codegen

    vpairs_p.__name__ = f"vpairs{P}"
    return intrinsic(vpairs_p)


vpairs1, vpairs2, vpairs3, vpairs4, vpairs5, vpairs6, vpairs7, vpairs8 = (_make_vpairs(P) for P in range(1, 9))


@jit
def vpanel_pairs(P, Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha):
    """The intrinsic ``vpairs{P}`` for a run-time ``P`` (1 to 8)."""
    if P == 8:
        vpairs8(Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha)
    elif P == 7:
        vpairs7(Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha)
    elif P == 6:
        vpairs6(Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha)
    elif P == 5:
        vpairs5(Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha)
    elif P == 4:
        vpairs4(Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha)
    elif P == 3:
        vpairs3(Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha)
    elif P == 2:
        vpairs2(Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha)
    else:
        vpairs1(Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha)

#: The widest panel of 16-column blocks summed in registers at once (2 x 8 accumulators + 8 rows
#: fit the 32 vector registers of AVX-512).
PANEL = 8


@jit
def vpanel(P, Z, iz, W, n, j, cols, vals, p0, p1, alpha):
    """The intrinsic ``vrows{P}`` for a run-time ``P`` (1 to 8)."""
    if P == 8:
        vrows8(Z, iz, W, n, j, cols, vals, p0, p1, alpha)
    elif P == 7:
        vrows7(Z, iz, W, n, j, cols, vals, p0, p1, alpha)
    elif P == 6:
        vrows6(Z, iz, W, n, j, cols, vals, p0, p1, alpha)
    elif P == 5:
        vrows5(Z, iz, W, n, j, cols, vals, p0, p1, alpha)
    elif P == 4:
        vrows4(Z, iz, W, n, j, cols, vals, p0, p1, alpha)
    elif P == 3:
        vrows3(Z, iz, W, n, j, cols, vals, p0, p1, alpha)
    elif P == 2:
        vrows2(Z, iz, W, n, j, cols, vals, p0, p1, alpha)
    else:
        vrows1(Z, iz, W, n, j, cols, vals, p0, p1, alpha)


@jit
def vrows(Z, iz, W, n, cols, vals, p0, p1):
    """``Z.flat[iz:iz+n] += sum(vals[p] * W[cols[p], :n] for p in range(p0, p1))`` (``W`` has ``n`` columns).

    With ``cols=None``: ``W[p - p0]`` in place of ``W[cols[p]]`` (a dense vector-matrix product).

    The sum runs in registers, up to 128 columns (``PANEL`` 16-wide blocks)
    at a time with two accumulators per block, and ``Z`` is loaded and
    stored once: a long sum of rows is then limited by loading them, not by
    a chain of load-add-store through ``Z``.
    """
    j = 0
    while j < n:
        P = min(PANEL, (n - j) // B)
        vpanel(P, Z, iz + j, W, n, j, cols, vals, p0, p1, 1.0)
        j += P * B


@jit
def vrows_by4(Z, iz, W, n, cols, vals, p0, p1):
    """:func:`vrows` summing 4 blocks of 16 columns at a time, each width its own intrinsic (no dispatch:
    cheaper for many short sums of long rows, as in :func:`pop_update0`)."""
    j = 0
    while j + 4 * B <= n:
        vrows4(Z, iz + j, W, n, j, cols, vals, p0, p1, 1.0)
        j += 4 * B
    left = (n - j) // B
    if left == 3:
        vrows3(Z, iz + j, W, n, j, cols, vals, p0, p1, 1.0)
    elif left == 2:
        vrows2(Z, iz + j, W, n, j, cols, vals, p0, p1, 1.0)
    elif left == 1:
        vrows1(Z, iz + j, W, n, j, cols, vals, p0, p1, 1.0)


@jit
def times_derivative(D, e, A, n, s, code):
    """``D[e, :n] *= s f'(z)`` with ``f'`` written in terms of ``a = A[e, :n]``, one loop per activation
    (so each vectorizes)."""
    if code == SIGMOID:
        for j in range(n):
            a = A[e, j]
            D[e, j] *= s * (a * (1 - a))
    elif code == TANH:
        for j in range(n):
            a = A[e, j]
            D[e, j] *= s * (1 - a * a)
    elif code == RELU:
        for j in range(n):
            D[e, j] = s * D[e, j] if A[e, j] > 0 else 0.0
    else:
        for j in range(n):
            D[e, j] *= s


@jit
def activate_row(Z, e, n, code):
    """Apply activation ``code`` in place to ``Z[e, :n]`` (the padding ``Z[e, n:]`` stays 0).

    Float32 sigmoid goes through :func:`expf`, so the loop vectorizes.
    """
    if code == SIGMOID:
        if Z.itemsize == 4:  # (the float64 kernel compiles this branch too, hence the cast)
            for j in range(n):
                Z[e, j] = _ONE / (_ONE + expf(np.float32(-Z[e, j])))
        else:
            for j in range(n):
                Z[e, j] = 1.0 / (1.0 + math.exp(-Z[e, j]))
    elif code == TANH:
        for j in range(n):
            Z[e, j] = math.tanh(Z[e, j])
    elif code == RELU:
        for j in range(n):
            if Z[e, j] < 0:
                Z[e, j] = 0.0
    elif code == SOFTMAX:
        mx = Z[e, 0]
        for j in range(1, n):
            if Z[e, j] > mx:
                mx = Z[e, j]
        tot = 0.0
        for j in range(n):
            Z[e, j] = math.exp(Z[e, j] - mx)
            tot += Z[e, j]
        inv = 1.0 / tot
        for j in range(n):
            Z[e, j] *= inv


@jit
def train(X, sparse, indptr, cols, vals, T, perm, start, stop, m, Ws, bs, widths, acts, kind, A, D, scales,
          eta, c2, c1):
    """Mini-batch SGD over the batches ``perm[s:s+m]`` for ``s`` in ``range(start, stop, m)``.

    ``Ws``/``bs``: each Dense layer's weights ``(n_in, n_out)`` and biases,
    updated in place, padded with zero columns (and, after the first layer,
    zero rows) to a multiple of 16 outputs so that the inner loops are whole
    16-wide vector steps (:func:`vaxpy` and friends); ``widths`` holds the
    real ``n_out``.  Padded activations are kept at 0, so padded weights stay
    0.  ``A[l]``/``D[l]``: ``(m, n_out)`` buffers for each layer's activations
    and deltas.  ``scales``: one lazy-decay scalar per layer (the true weights
    are ``s V`` and ``V`` lives in ``W`` during the call; the true weights are
    written back before returning).  The rule is the book's
    ``W -> W - eta (dC/dW + c2 W + c1 sgn W)``, ``b -> b - eta dC/db``.

    Every scalar that meets the weights is first cast to their dtype (through
    ``one``): a float64 factor would turn float32 loops into float64 ones.
    """
    L = len(Ws)
    n = perm.shape[0]
    n_in0 = Ws[0].shape[0]
    one = np.empty(1, Ws[0].dtype)  # casts a float64 coefficient to the weights' dtype
    for l in range(L):
        scales[l] = 1.0
    decay = 1.0 - eta * c2
    one[0] = -eta
    neg_eta = one[0]
    for s0 in range(start, stop, m):
        mb = min(m, n - s0)
        one[0] = 1.0 / mb
        inv_m = one[0]
        # ---- forward, layer 0: z = s (x V) + b over the non-zero inputs only
        W0 = Ws[0]
        a0 = A[0]
        one[0] = scales[0]
        s = one[0]
        b = bs[0]
        H = W0.shape[1]
        for e in range(mb):
            r = perm[s0 + e]
            if s0 + e + PREFETCH < n:  # (the next batch's first examples too)
                prefetch_example(perm[s0 + e + PREFETCH], sparse, indptr, cols, vals, X, T)
            ze = e * H
            for j in range(H):
                a0[e, j] = 0.0
            if sparse:
                vrows(a0, ze, W0, H, cols, vals, indptr[r], indptr[r + 1])
            else:
                for i in range(n_in0):
                    x = X[r, i]
                    if x != 0:
                        for j0 in range(0, H, B):
                            vaxpy(a0, ze + j0, x, W0, i * H + j0)
            for j in range(H):
                a0[e, j] = s * a0[e, j] + b[j]
            activate_row(a0, e, widths[0], acts[0])
        # ---- forward, later layers (dense)
        for l in range(1, L):
            W = Ws[l]
            u = A[l - 1]
            a = A[l]
            one[0] = scales[l]
            s = one[0]
            b = bs[l]
            I, J = widths[l - 1], W.shape[1]
            for e in range(mb):
                ze = e * J
                for j in range(J):
                    a[e, j] = 0.0
                i = 0
                while i + 4 <= I:
                    for j0 in range(0, J, B):
                        vaxpy4(a, ze + j0, W, i * J + j0, (i + 1) * J + j0, (i + 2) * J + j0, (i + 3) * J + j0,
                               u[e, i], u[e, i + 1], u[e, i + 2], u[e, i + 3])
                    i += 4
                while i < I:
                    for j0 in range(0, J, B):
                        vaxpy(a, ze + j0, u[e, i], W, i * J + j0)
                    i += 1
                for j in range(J):
                    a[e, j] = s * a[e, j] + b[j]
                activate_row(a, e, widths[l], acts[l])
        # ---- output delta (padded entries stay 0)
        nl = widths[L - 1]
        aL = A[L - 1]
        dL = D[L - 1]
        code = acts[L - 1]
        for e in range(mb):
            r = perm[s0 + e]
            for j in range(nl):
                if kind == FUSED:
                    dL[e, j] = (aL[e, j] - T[r, j]) * inv_m
                elif kind == HINGE:
                    dL[e, j] = -T[r, j] * inv_m if T[r, j] * aL[e, j] < 1 else 0.0
                else:  # CHAINED: quadratic cost through f'(z)
                    dL[e, j] = (aL[e, j] - T[r, j]) * inv_m * derivative(aL[e, j], code)
        # ---- backward with the pre-update weights: delta_{l-1} = s (delta_l V^T) * f'(a_{l-1})
        for l in range(L - 1, 0, -1):
            W = Ws[l]
            one[0] = scales[l]
            s = one[0]
            dn = D[l]
            dp = D[l - 1]
            u = A[l - 1]
            J = W.shape[1]
            code = acts[l - 1]
            for e in range(mb):
                for i in range(widths[l - 1]):
                    acc = vdot(W, i * J, dn, e * J)
                    for j0 in range(B, J, B):
                        acc += vdot(W, i * J + j0, dn, e * J + j0)
                    dp[e, i] = s * acc * derivative(u[e, i], code)
        # ---- update each layer: decay (lazy unless L1), then W += -eta x delta^T per example
        for l in range(L):
            W = Ws[l]
            d = D[l]
            J = W.shape[1]
            if c1 != 0.0:
                for i in range(W.shape[0]):
                    for j in range(J):
                        sg = 1.0 if W[i, j] > 0 else (-1.0 if W[i, j] < 0 else 0.0)
                        W[i, j] -= eta * (c2 * W[i, j] + c1 * sg)
                coef = -eta
            else:
                sc = scales[l] * decay
                if abs(sc) < _MIN_SCALE:
                    scale_rows(W, sc)
                    sc = 1.0
                scales[l] = sc
                coef = -eta / sc
            one[0] = coef
            coef = one[0]
            if l == 0:
                for e in range(mb):
                    r = perm[s0 + e]
                    de = e * J
                    if sparse:
                        for p in range(indptr[r], indptr[r + 1]):
                            g = coef * vals[p]
                            i = np.intp(cols[p]) * J
                            for j0 in range(0, J, B):
                                vaxpy(W, i + j0, g, d, de + j0)
                    else:
                        for i in range(n_in0):
                            xv = X[r, i]
                            if xv != 0:
                                for j0 in range(0, J, B):
                                    vaxpy(W, i * J + j0, coef * xv, d, de + j0)
            else:
                u = A[l - 1]
                for e in range(mb):
                    for i in range(widths[l - 1]):
                        g = coef * u[e, i]
                        for j0 in range(0, J, B):
                            vaxpy(W, i * J + j0, g, d, e * J + j0)
            b = bs[l]
            for e in range(mb):
                for j0 in range(0, J, B):
                    vaxpy(b, j0, neg_eta, d, e * J + j0)
    # ---- write the true weights back: W = s V, s = 1
    for l in range(L):
        if scales[l] != 1.0:
            scale_rows(Ws[l], scales[l])
            scales[l] = 1.0


# ---------------------------------------------------------------------------
# Threads: atomics and a barrier, for train_rows run by several threads at once
# ---------------------------------------------------------------------------


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


@jit
def barrier(sync, nthreads):
    """Wait until all ``nthreads`` threads have called this (a central counting barrier).

    The last to arrive resets the count and starts the next round; the others
    spin on the round number, then yield the CPU if it is slow to change (a
    thread that lost its core).  The atomics order memory: everything written
    before the barrier is seen by every thread after it.
    """
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


# ---------------------------------------------------------------------------
# Mini-batches by weight rows: the first layer's update grouped by input
# ---------------------------------------------------------------------------


@jit
def add_rows(W, d, J, rows, nu, pairs, starts, ends, coef):
    """``W[i] += coef * sum(x * d[e] for (x, e) in the pairs of row i)`` for ``i = rows[u]``, ``u < nu``.

    The pairs of row ``rows[u]`` are ``pairs[starts[0, u]:ends[0, u]]`` followed by
    ``pairs[starts[1, u]:ends[1, u]]``, taken as one sequence (:func:`vpanel_pairs`);
    ``pairs[2q]`` is a value and ``pairs[2q+1]`` its example (:func:`store_index`).
    The gradient of one weight row is summed in registers and added to ``W``
    once per batch, not once per example, up to ``PANEL`` blocks of 16
    columns per pass over the pairs.
    """
    j = 0
    while j < J:
        P = min(PANEL, (J - j) // B)
        for u in range(nu):
            vpanel_pairs(P, W, np.intp(rows[u]) * J + j, d, J, j, pairs, starts[0, u], ends[0, u], starts[1, u],
                         ends[1, u], coef)
        j += P * B


@jit
def example_pass(X, sparse, indptr, cols, vals, T, r, e, Ws, WTs, bs, widths, acts, kind, A, D, sw, inv_m,
                 used, ent):
    """Forward and backward pass of one example (input row ``r``, batch slot ``e``) with the current weights.

    Leaves its activations in ``A[l][e]``, its deltas ``dC/dz`` in
    ``D[l][e]`` and files each non-zero input ``x_i`` as the pair ``(x_i, e)``
    (``e`` kept as integer bits, :func:`store_index`) in slot ``used[i]`` of
    row ``i`` of ``ent``, counting it in ``used[i]``: the batch filed by input
    position, for the grouped first-layer update, value and example side by
    side so that filing touches one cache line.  ``sw``: the layers' lazy-decay
    scales (``W = s V``) in the weights' dtype; ``WTs[l]`` (``l >= 1``) the
    transpose of ``Ws[l]``.
    """
    L = len(Ws)
    W0 = Ws[0]
    a0 = A[0]
    H = W0.shape[1]
    ze = e * H
    for j in range(H):
        a0[e, j] = 0.0
    if sparse:
        p0, p1 = indptr[r], indptr[r + 1]
        vrows(a0, ze, W0, H, cols, vals, p0, p1)
        for p in range(p0, p1):
            c = cols[p]
            k = used[c]
            used[c] = k + 1
            ent[c, 2 * k] = vals[p]
            store_index(ent, np.intp(c) * ent.shape[1] + 2 * k + 1, e)
    else:
        for i in range(W0.shape[0]):
            x = X[r, i]
            if x != 0:
                k = used[i]
                used[i] = k + 1
                ent[i, 2 * k] = x
                store_index(ent, np.intp(i) * ent.shape[1] + 2 * k + 1, e)
                for j0 in range(0, H, B):
                    vaxpy(a0, ze + j0, x, W0, i * H + j0)
    s = sw[0]
    b = bs[0]
    for j in range(H):
        a0[e, j] = s * a0[e, j] + b[j]
    activate_row(a0, e, widths[0], acts[0])
    for l in range(1, L):
        W = Ws[l]
        u = A[l - 1]
        a = A[l]
        s = sw[l]
        b = bs[l]
        I, J = widths[l - 1], W.shape[1]
        ze = e * J
        for j in range(J):
            a[e, j] = 0.0
        iu = e * u.shape[1]
        vrows(a, ze, W, J, None, u, iu, iu + I)
        for j in range(J):
            a[e, j] = s * a[e, j] + b[j]
        activate_row(a, e, widths[l], acts[l])
    # output delta (padded entries stay 0)
    aL = A[L - 1]
    dL = D[L - 1]
    code = acts[L - 1]
    for j in range(widths[L - 1]):
        if kind == FUSED:
            dL[e, j] = (aL[e, j] - T[r, j]) * inv_m
        elif kind == HINGE:
            dL[e, j] = -T[r, j] * inv_m if T[r, j] * aL[e, j] < 1 else 0.0
        else:
            dL[e, j] = (aL[e, j] - T[r, j]) * inv_m * derivative(aL[e, j], code)
    # backward with the pre-update weights: delta_{l-1} = s (delta_l V^T) * f'(a_{l-1}),
    # a sum of the rows of V^T (``WTs[l]``, kept beside V) weighted by delta_l
    for l in range(L - 1, 0, -1):
        WT = WTs[l]
        s = sw[l]
        dn = D[l]
        dp = D[l - 1]
        u = A[l - 1]
        I = WT.shape[1]
        code = acts[l - 1]
        for i in range(I):
            dp[e, i] = 0.0
        idn = e * dn.shape[1]
        vrows(dp, e * I, WT, I, None, dn, idn, idn + widths[l])
        times_derivative(dp, e, u, widths[l - 1], s, code)


@jit
def transpose_rows(W, WT, i0, i1):
    """``WT[:, i] = W[i, :]`` for ``i0 <= i < i1``."""
    for i in range(i0, i1):
        for j in range(W.shape[1]):
            WT[j, i] = W[i, j]


@jit
def row_range(l, n_rows, split, tid, nthreads):
    """The rows of layer ``l``'s weights that thread ``tid`` updates (first layer: ``split``, else an even share)."""
    if l == 0:
        return split[tid], split[tid + 1]
    return n_rows * tid // nthreads, n_rows * (tid + 1) // nthreads


@jit
def example_range(indptr, perm, s0, mb, sparse, tid, nthreads):
    """Thread ``tid``'s share ``e0:e1`` of the batch ``perm[s0:s0+mb]``: about equal numbers of non-zero inputs.

    Boundary ``k`` is the first example whose preceding examples hold at
    least ``k/nthreads`` of the batch's non-zeros, so the shares of all
    threads tile ``0:mb`` exactly.
    """
    if nthreads == 1:
        return 0, mb
    if not sparse:
        return mb * tid // nthreads, mb * (tid + 1) // nthreads
    total = 0
    for e in range(mb):
        r = perm[s0 + e]
        total += indptr[r + 1] - indptr[r]
    lo, hi = total * tid // nthreads, total * (tid + 1) // nthreads
    e0 = 0 if tid == 0 else mb
    e1 = mb
    seen = 0
    for e in range(mb):
        if tid > 0 and e0 == mb and seen >= lo:
            e0 = e
        if tid < nthreads - 1 and seen >= hi:
            e1 = e
            break
        r = perm[s0 + e]
        seen += indptr[r + 1] - indptr[r]
    return e0, max(e0, e1)


@jit
def train_rows(X, sparse, indptr, cols, vals, T, perm, start, stop, m, Ws, WTs, bs, widths, acts, kind, A, D,
               scales, eta, c2, c1, used, ent, merged, rows, starts, ends, split, tid, nthreads, sync):
    """:func:`train` with each weight matrix updated row by row, run by thread ``tid`` of ``nthreads``.

    The same mini-batch SGD, in two phases per batch:

    1. each thread takes its share of the batch's examples through
       :func:`example_pass` (forward, output delta, backward), which also
       files each of their non-zero inputs under its input position;
    2. after a :func:`barrier`, each thread updates its own rows of every
       weight matrix (first layer: input positions ``split[tid]`` to
       ``split[tid+1]``), summing each row's gradient over the batch in
       registers (:func:`add_rows`: one pass over each used row of ``W`` per
       batch instead of one per example), and one thread per layer its biases.

    A second barrier ends the batch.  Every row sums its batch's terms in
    example order, whichever thread filed them, so the result does not depend
    on ``nthreads`` (tested bit for bit).  Buffers: ``WTs[l]`` (``l >= 1``)
    the transposes of ``Ws[l]`` (the backward pass sums rows of them);
    ``scales`` ``(nthreads, L)`` each thread's copy of the lazy-decay scales;
    ``used`` ``(nthreads, n_in)`` and ``ent`` ``(nthreads, n_in, 2c)`` each
    thread's filed inputs, pairs of value and example (``c`` at least the
    batch size: shares follow the examples' non-zero counts,
    :func:`example_range`); per thread, ``merged`` ``(nthreads, 2 n_in c)``
    (with more than two threads) its rows' pairs one row after the other,
    ``rows`` ``(nthreads, n_in)`` its used rows and ``starts``/``ends``
    ``(nthreads, 2, n_in)`` the one or two runs of pairs of each; ``sync`` the
    barrier's counters.  With ``nthreads == 1`` no barrier runs.
    """
    L = len(Ws)
    n = perm.shape[0]
    n_in = Ws[0].shape[0]
    one = np.empty(1, Ws[0].dtype)
    sw = np.empty(L, Ws[0].dtype)  # the scales in the weights' dtype
    sc = scales[tid]
    for l in range(L):
        sc[l] = 1.0
    decay = 1.0 - eta * c2
    one[0] = -eta
    neg_eta = one[0]
    my_used, my_ent, my_rows = used[tid], ent[tid], rows[tid]
    my_merged, my_start, my_end = merged[tid], starts[tid], ends[tid]
    for l in range(1, L):
        i0, i1 = row_range(l, Ws[l].shape[0], split, tid, nthreads)
        transpose_rows(Ws[l], WTs[l], i0, i1)
    if nthreads > 1:
        barrier(sync, nthreads)
    for s0 in range(start, stop, m):
        mb = min(m, n - s0)
        one[0] = 1.0 / mb
        inv_m = one[0]
        for l in range(L):
            sw[l] = sc[l]
        for i in range(n_in):
            my_used[i] = 0
        e0, e1 = example_range(indptr, perm, s0, mb, sparse, tid, nthreads)
        for e in range(e0, e1):
            if e + PREFETCH < e1:
                prefetch_example(perm[s0 + e + PREFETCH], sparse, indptr, cols, vals, X, T)
            example_pass(X, sparse, indptr, cols, vals, T, perm[s0 + e], e, Ws, WTs, bs, widths, acts, kind, A, D,
                         sw, inv_m, my_used, my_ent)
        if nthreads > 1:
            barrier(sync, nthreads)
        for l in range(L):
            W = Ws[l]
            d = D[l]
            J = W.shape[1]
            i0, i1 = row_range(l, W.shape[0], split, tid, nthreads)
            if c1 != 0.0:
                for i in range(i0, i1):
                    for j in range(J):
                        sg = 1.0 if W[i, j] > 0 else (-1.0 if W[i, j] < 0 else 0.0)
                        W[i, j] -= eta * (c2 * W[i, j] + c1 * sg)
                coef = -eta
            else:
                s = sc[l] * decay
                if abs(s) < _MIN_SCALE:
                    for i in range(i0, i1):
                        for j in range(J):
                            W[i, j] *= s
                    s = 1.0
                sc[l] = s
                coef = -eta / s
            one[0] = coef
            coef = one[0]
            if l == 0:
                # My rows' pairs, in example order, as one or two runs: with one or two threads, where
                # they were filed; with more, the threads' lists of each row copied one after the other.
                # Every row thus sums its terms in the same order, whatever the number of threads.
                nu = 0
                q = 0
                cap = my_ent.shape[1] // 2
                block = my_ent.shape[0] * cap  # pairs per thread in ``ent``
                for i in range(i0, i1):
                    if nthreads <= 2:
                        k0 = used[0, i]
                        k1 = used[1, i] if nthreads == 2 else 0
                        if k0 + k1:
                            my_rows[nu] = i
                            my_start[0, nu], my_end[0, nu] = i * cap, i * cap + k0
                            my_start[1, nu], my_end[1, nu] = block + i * cap, block + i * cap + k1
                            nu += 1
                        continue
                    q0 = q
                    for t in range(nthreads):
                        src = ent[t, i]
                        for c in range(2 * used[t, i]):
                            my_merged[2 * q + c] = src[c]
                        q += used[t, i]
                    if q > q0:
                        my_rows[nu] = i
                        my_start[0, nu], my_end[0, nu] = q0, q
                        my_start[1, nu], my_end[1, nu] = 0, 0
                        nu += 1
                pairs = ent.reshape(-1) if nthreads <= 2 else my_merged
                add_rows(W, d, J, my_rows, nu, pairs, my_start, my_end, coef)
            else:
                u = A[l - 1]
                i1 = min(i1, widths[l - 1])
                for e in range(mb):
                    for i in range(i0, i1):
                        g = coef * u[e, i]
                        for j0 in range(0, J, B):
                            vaxpy(W, i * J + j0, g, d, e * J + j0)
                transpose_rows(W, WTs[l], i0, i1)
            if l % nthreads == tid:
                b = bs[l]
                for e in range(mb):
                    for j0 in range(0, J, B):
                        vaxpy(b, j0, neg_eta, d, e * J + j0)
        if nthreads > 1:
            barrier(sync, nthreads)
    # write this thread's rows of the true weights back: W = s V, s = 1
    for l in range(L):
        if sc[l] != 1.0:
            W = Ws[l]
            i0, i1 = row_range(l, W.shape[0], split, tid, nthreads)
            for i in range(i0, i1):
                for j in range(W.shape[1]):
                    W[i, j] *= sc[l]
            sc[l] = 1.0


# ---------------------------------------------------------------------------
# Population kernels: K networks of one architecture, K the last (fastest) axis
# ---------------------------------------------------------------------------
# Layer l of all K networks is stored as W (n_in, n_out, K) and b (n_out, K);
# activations and deltas as (m, n, K).  Every inner loop runs over the K
# networks, contiguous in memory, so it vectorizes whatever the layer sizes.


@jit
def pop_gather(perm, s0, mb, indptr, cols, vals, stamp, bid, rows, rptr, cursor, ent_e, ent_x):
    """Group the non-zero inputs of the batch ``perm[s0:s0+mb]`` by input row.

    Afterwards ``rows[:nu]`` are the input positions used by any example of
    the batch, and ``ent_e[rptr[u]:rptr[u+1]]`` / ``ent_x[...]`` the examples
    and values that use position ``rows[u]``.  Each weight row is then read
    (and updated) once per batch, not once per example.  Returns ``nu``.
    """
    nu = 0
    for e in range(mb):
        r = perm[s0 + e]
        for p in range(indptr[r], indptr[r + 1]):
            i = cols[p]
            if stamp[i] != bid:
                stamp[i] = bid
                cursor[i] = 0
                rows[nu] = i
                nu += 1
            cursor[i] += 1
    pos = 0
    for u in range(nu):
        i = rows[u]
        rptr[u] = pos
        c = cursor[i]
        cursor[i] = pos
        pos += c
    rptr[nu] = pos
    for e in range(mb):
        r = perm[s0 + e]
        for p in range(indptr[r], indptr[r + 1]):
            i = cols[p]
            q = cursor[i]
            ent_e[q] = e
            ent_x[q] = vals[p]
            cursor[i] = q + 1
    return nu


@jit
def pop_forward0(perm, s0, mb, indptr, cols, vals, W0, Z, scale, b):
    """First layer of all K networks: ``Z[e] = s * (x_e W0) + b`` for the batch ``perm[s0:s0+mb]``.

    ``W0`` is ``(n_in, H*K)``: one wide matrix for all networks (the
    ``(n_in, H, K)`` weights seen flat, so the inner loop is one long
    contiguous run whatever K); ``Z`` is ``(m, H*K)``; each example's
    non-zero inputs come from the CSR index.  ``scale`` (per network) is the
    lazy-decay scale and ``b`` the ``(H*K,)`` biases.

    Each example sums four weight rows in registers (:func:`vaxpy4`) before
    it stores to ``Z``: the stores, not the arithmetic, limit this loop.
    (Column tiles, to keep rows in L1/L2, and the all-in-registers sum of
    :func:`vrows` measured slower here, where the rows come from L3.)
    """
    n = Z.shape[1]
    K = scale.shape[0]
    for e in range(mb):
        for j in range(n):
            Z[e, j] = 0.0
    for e in range(mb):
        r = perm[s0 + e]
        ze = e * n
        p, p1 = indptr[r], indptr[r + 1]
        while p + 4 <= p1:
            i0, i1 = np.intp(cols[p]) * n, np.intp(cols[p + 1]) * n
            i2, i3 = np.intp(cols[p + 2]) * n, np.intp(cols[p + 3]) * n
            x0, x1, x2, x3 = vals[p], vals[p + 1], vals[p + 2], vals[p + 3]
            for j in range(0, n, B):
                vaxpy4(Z, ze + j, W0, i0 + j, i1 + j, i2 + j, i3 + j, x0, x1, x2, x3)
            p += 4
        while p < p1:
            i0 = np.intp(cols[p]) * n
            for j in range(0, n, B):
                vaxpy(Z, ze + j, vals[p], W0, i0 + j)
            p += 1
    for e in range(mb):
        for j0 in range(0, n, K):
            for k in range(K):
                Z[e, j0 + k] = scale[k] * Z[e, j0 + k] + b[j0 + k]


@jit
def pop_update0(rows, nu, rptr, ent_e, ent_x, target, d):
    """``target[i] += sum_e x_ei d[e]`` over the batch's non-zero inputs (the first layer's gradient step).

    ``target`` is ``W0`` (or, with momentum, its velocity) seen flat as
    ``(n_in, H*K)``; ``d`` ``(m, H*K)`` holds the first layer's deltas already
    multiplied by each network's step coefficient.
    """
    n = d.shape[1]
    for u in range(nu):
        # target[i] += sum over the examples q using input i of ent_x[q] * d[ent_e[q]], summed in registers
        vrows_by4(target, rows[u] * n, d, n, ent_e, ent_x, rptr[u], rptr[u + 1])


@jit
def pop_forward(U, W, b, scale, Z, mb):
    """A later layer of all K networks: ``Z[e, j, k] = s_k sum_i U[e, i, k] W[i, j, k] + b[j, k]``."""
    I, J, K = W.shape
    for e in range(mb):
        for j in range(J):
            for k in range(K):
                Z[e, j, k] = 0.0
        for i in range(I):
            for j in range(J):
                for k in range(K):
                    Z[e, j, k] += U[e, i, k] * W[i, j, k]
        for j in range(J):
            for k in range(K):
                Z[e, j, k] = scale[k] * Z[e, j, k] + b[j, k]


@jit
def pop_softmax(Z, mb):
    """Softmax over axis 1 of ``Z (m, J, K)`` for each example and network, in place."""
    J, K = Z.shape[1], Z.shape[2]
    for e in range(mb):
        for k in range(K):
            mx = Z[e, 0, k]
            for j in range(1, J):
                mx = max(mx, Z[e, j, k])
            tot = 0.0
            for j in range(J):
                Z[e, j, k] = math.exp(Z[e, j, k] - mx)
                tot += Z[e, j, k]
            for j in range(J):
                Z[e, j, k] /= tot


@jit
def pop_step(A, D, Ws, bs, Vs, Vbs, T, perm, s0, mb, kind, acts, scales, etas, c2s, mus, active, momentum,
             coef):
    """Back-propagate the batch through all K networks and update them in place.

    Output delta (as :func:`output_delta`), hidden deltas with the pre-update
    weights, then per network ``k`` the SGD rule of its own ``eta_k``,
    ``c2_k = lmbda_k/n`` and momentum ``mu_k`` (Nielsen's
    ``v -> mu v - eta (dC/dw + c2 w)``, ``w -> w + v``; with no momentum the
    decay is lazy, through ``scales``).  Networks with ``active[k] == 0`` are
    frozen: nothing of theirs changes.  The first layer's deltas are left in
    ``D[0]`` multiplied by each network's step coefficient, for
    :func:`pop_update0` to add to the batch's non-zero input rows of ``Ws[0]``
    (with momentum, this function runs the decay pass over its velocity).
    """
    L = len(Ws)
    K = etas.shape[0]
    inv_m = 1.0 / mb
    # ---- output delta
    aL = A[L - 1]
    dL = D[L - 1]
    J = aL.shape[1]
    for e in range(mb):
        r = perm[s0 + e]
        for j in range(J):
            t = T[r, j]
            for k in range(K):
                a = aL[e, j, k]
                if kind == FUSED:
                    dL[e, j, k] = (a - t) * inv_m
                elif kind == HINGE:
                    dL[e, j, k] = -t * inv_m if t * a < 1 else 0.0
                else:
                    dL[e, j, k] = (a - t) * inv_m * derivative(a, acts[L - 1])
    # ---- hidden deltas, with the pre-update weights
    for l in range(L - 1, 0, -1):
        W = Ws[l]
        dn = D[l]
        dp = D[l - 1]
        u = A[l - 1]
        I, J = W.shape[0], W.shape[1]
        for e in range(mb):
            for i in range(I):
                for k in range(K):
                    dp[e, i, k] = 0.0
                # (16 networks per step: K is padded to a multiple of 16)
                for j in range(J):
                    for k in range(0, K, B):
                        vmuladd(dp, (e * I + i) * K + k, W, (i * J + j) * K + k, dn, (e * J + j) * K + k)
                for k in range(K):
                    dp[e, i, k] *= scales[l, k] * derivative(u[e, i, k], acts[l - 1])
    # ---- per-network coefficients of the gradient step
    for l in range(L):
        W = Ws[l]
        d = D[l]
        b = bs[l]
        I, J = W.shape[0], W.shape[1]
        if momentum:
            V = Vs[l]
            Vb = Vbs[l]
            for k in range(K):
                coef[k] = -etas[k] * active[k]
            if l > 0:  # the first layer's decay pass runs over all rows below
                for i in range(I):
                    for j in range(J):
                        for k in range(K):
                            V[i, j, k] = mus[k] * V[i, j, k] - etas[k] * c2s[k] * W[i, j, k]
        else:
            for k in range(K):
                if active[k] != 0.0:
                    s = scales[l, k] * (1.0 - etas[k] * c2s[k])
                    if abs(s) < _MIN_SCALE:
                        for i in range(I):
                            for j in range(J):
                                W[i, j, k] *= s
                        s = 1.0
                    scales[l, k] = s
                    coef[k] = -etas[k] / s
                else:
                    coef[k] = 0.0
        # bias: b -> b - eta sum_e delta (or through its velocity)
        for j in range(J):
            for k in range(K):
                acc = d[0, j, k]
                for e in range(1, mb):
                    acc += d[e, j, k]
                if momentum:
                    Vb[j, k] = mus[k] * Vb[j, k] - etas[k] * active[k] * acc
                    b[j, k] += Vb[j, k]
                else:
                    b[j, k] -= etas[k] * active[k] * acc
        # scale the deltas by coef_k (the bias step above has used them)
        for e in range(mb):
            for j in range(J):
                for k in range(K):
                    d[e, j, k] *= coef[k]
        if l > 0:
            target = Vs[l] if momentum else W
            u = A[l - 1]
            for e in range(mb):
                for i in range(I):
                    for j in range(J):
                        for k in range(0, K, B):
                            vmuladd(target, (i * J + j) * K + k, u, (e * I + i) * K + k, d, (e * J + j) * K + k)
            if momentum:
                V = Vs[l]
                for i in range(I):
                    for j in range(J):
                        for k in range(K):
                            W[i, j, k] += V[i, j, k]
        else:
            # (pop_update0 adds x_i * delta, delta scaled by coef_k above, to the used rows)
            if momentum:
                V = Vs[0]
                for i in range(I):
                    for j in range(J):
                        for k in range(K):
                            V[i, j, k] = mus[k] * V[i, j, k] - etas[k] * c2s[k] * W[i, j, k]
    # (the first layer's step itself is pop_update0, run next)


@jit
def pop_activate(Z, mb, code):
    """Apply activation ``code`` in place to the first ``mb`` examples of ``Z (m, J, K)``."""
    if code == SOFTMAX:
        pop_softmax(Z, mb)
        return
    for e in range(mb):
        for j in range(Z.shape[1]):
            activate_row(Z[e], j, Z.shape[2], code)


@jit
def pop_train(perm, start, stop, m, indptr, cols, vals, stamp, rows, rptr, cursor, ent_e, ent_x, W0, A0, D0, V0,
              b0, A, D, Ws, bs, Vs, Vbs, T, kind, acts, scales, etas, c2s, mus, active, momentum, coef, bid):
    """The batches ``perm[s:s+m]`` for ``s`` in ``range(start, stop, m)``, for all K networks.

    One call per epoch instead of several Python calls per mini-batch; each
    batch is :func:`pop_gather`, :func:`pop_forward0`, :func:`pop_forward`
    (with the activations), :func:`pop_step`, :func:`pop_update0` and, with
    momentum, :func:`pop_momentum0`.  ``W0``, ``A0``, ``D0``, ``V0``, ``b0``
    are the first layer's arrays seen flat (see :func:`pop_forward0`).
    ``bid`` numbers the batches for :func:`pop_gather` (``stamp`` must hold no
    number from ``bid`` on); returns the next unused number.
    """
    n = perm.shape[0]
    L = len(Ws)
    for s0 in range(start, stop, m):
        mb = min(m, n - s0)
        nu = pop_gather(perm, s0, mb, indptr, cols, vals, stamp, bid, rows, rptr, cursor, ent_e, ent_x)
        bid += 1
        pop_forward0(perm, s0, mb, indptr, cols, vals, W0, A0, scales[0], b0)
        pop_activate(A[0], mb, acts[0])
        for l in range(1, L):
            pop_forward(A[l - 1], Ws[l], bs[l], scales[l], A[l], mb)
            pop_activate(A[l], mb, acts[l])
        pop_step(A, D, Ws, bs, Vs, Vbs, T, perm, s0, mb, kind, acts, scales, etas, c2s, mus, active, momentum, coef)
        pop_update0(rows, nu, rptr, ent_e, ent_x, V0 if momentum else W0, D0)
        if momentum:
            pop_momentum0(Ws[0], Vs[0])
    return bid


@jit
def pop_momentum0(W, V):
    """``W += V``: the first layer's momentum step, after pop_update0 added the gradient to ``V``."""
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            for k in range(W.shape[2]):
                W[i, j, k] += V[i, j, k]


@jit
def pop_fold_scales(Ws, scales):
    """Write the true weights back (``W[..., k] *= s_k``) and reset every scale to 1."""
    for l in range(len(Ws)):
        W = Ws[l]
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                for k in range(W.shape[2]):
                    W[i, j, k] *= scales[l, k]
        for k in range(W.shape[2]):
            scales[l, k] = 1.0
