"""The vector steps of the compiled engine, written directly as LLVM IR (no training math here).

Why: a loop ``for j in range(n): W[i, j] += g * d[e, j]`` over a short
runtime width (32 for the book's hidden layer) is vectorized by LLVM for
64 elements at a time, with the rest in a narrow or scalar remainder loop,
so these widths never reach the fast path; a constant 16-element loop is
unrolled first and then not vectorized at all, for fear that ``W`` and
``d`` overlap.  These helpers say "one 16-element vector operation"
outright: LLVM maps a <16 x float> to one AVX-512 register (two AVX2 ones,
or four SSE ones elsewhere).  Offsets are flat element indices into
C-contiguous arrays; the layer widths are padded to multiples of 16.

Also here: a cache-line prefetch, a vector compress (the non-zeros of 16
inputs packed in one step), storing an integer's bits in a float array, and
``2**n`` built from exponent bits, a cast to an array's dtype
(:func:`as_dtype_of`), and a request to LLVM to compile a cold helper for size
(:func:`small_code`).  Each is tested in ``tests/test_engine_intrinsics.py``.
"""
from __future__ import annotations

from llvmlite import ir as _ir
from numba.core import cgutils as _cgutils
from numba.core import types as _types
from numba.extending import intrinsic

from .codes import B
from .compiler import helper, inline

@intrinsic
def pow2(typingctx, n):
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



@intrinsic
def as_dtype_of(typingctx, X, x):
    """``x`` converted to the dtype of the array ``X`` (a float64 coefficient meeting float32 weights is
    rounded once, so the loops stay float32)."""
    if not (isinstance(X, _types.Array) and isinstance(x, (_types.Float, _types.Integer))):
        return None
    sig = X.dtype(X, x)

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[1], signature.args[1], X.dtype)

    return sig, codegen


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


@inline
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


@inline
def panel_blocks(left):
    """The widest panel of 8, 4, 2 or 1 blocks of 16 columns that fits in ``left`` blocks.

    :func:`vrows` covers a row in such panels (7 blocks: 4, 2, 1), so only four of the eight
    ``vrows{P}`` are compiled into each of its specializations.  Each column's sum is the same whatever the panel (the blocks' accumulators
    are independent), so the numbers do not change.  The row-by-row update (:func:`vpanel_pairs`)
    keeps every width: there a row of 7 blocks in three passes measured slower at batch 100.
    """
    return 8 if left >= 8 else (4 if left >= 4 else (2 if left >= 2 else 1))


@inline
def vpanel(P, Z, iz, W, n, j, cols, vals, p0, p1, alpha):
    """The intrinsic ``vrows{P}`` for a run-time ``P`` of 8, 4, 2 or 1 (see :func:`panel_blocks`)."""
    if P == 8:
        vrows8(Z, iz, W, n, j, cols, vals, p0, p1, alpha)
    elif P == 4:
        vrows4(Z, iz, W, n, j, cols, vals, p0, p1, alpha)
    elif P == 2:
        vrows2(Z, iz, W, n, j, cols, vals, p0, p1, alpha)
    else:
        vrows1(Z, iz, W, n, j, cols, vals, p0, p1, alpha)


@helper
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
        P = panel_blocks((n - j) // B)
        vpanel(P, Z, iz + j, W, n, j, cols, vals, p0, p1, 1.0)
        j += P * B


@helper
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


@intrinsic
def small_code(typingctx):
    """Ask LLVM to optimize the function being compiled for size (call it first in a cold helper).

    The attributes ``optsize`` and ``minsize`` keep LLVM from vectorizing and
    unrolling loops that run a few times per batch: less code to optimize and
    emit.  Not for :func:`~netlearn.engine.compiler.inline` functions (it
    would mark their caller).
    """
    sig = _types.none()

    def codegen(context, builder, signature, args):
        builder.function.attributes.add("optsize")
        builder.function.attributes.add("minsize")
        return context.get_dummy_value()

    return sig, codegen
