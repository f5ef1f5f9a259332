"""The compiled engine's building blocks, each against NumPy: the LLVM-IR vector steps, the atomics and barrier,
and the step math (f, f', output delta, decay rules) against netlearn's NumPy modules."""
from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from netlearn import costs  # noqa: E402
from netlearn.engine import codes  # noqa: E402
from netlearn.engine import intrinsics as vi  # noqa: E402
from netlearn.engine import step, threads  # noqa: E402
from netlearn.layers import activations  # noqa: E402

B = codes.B
g = np.random.default_rng(0)


def rand(*shape, dtype=np.float32):
    return g.standard_normal(shape).astype(dtype)


@numba.njit
def _pow2_all(n, out):
    for i in range(n.shape[0]):
        out[i] = vi.pow2(n[i])


def test_pow2_builds_exact_powers_of_two():
    n = np.arange(-126, 128, dtype=np.float32)
    out = np.empty_like(n)
    _pow2_all(n, out)
    np.testing.assert_array_equal(out, np.ldexp(np.float32(1), n.astype(np.int32)))  # (exact; np.exp2 is not at 127)


@numba.njit
def _vaxpy(Y, iy, a, X, ix):
    vi.vaxpy(Y, iy, a, X, ix)


@numba.njit
def _vmuladd(Y, iy, X1, i1, X2, i2):
    vi.vmuladd(Y, iy, X1, i1, X2, i2)


@numba.njit
def _vaxpy4(Y, iy, W, i0, i1, i2, i3, x0, x1, x2, x3):
    vi.vaxpy4(Y, iy, W, i0, i1, i2, i3, x0, x1, x2, x3)


@numba.njit
def _vdot(X, ix, Y, iy):
    return vi.vdot(X, ix, Y, iy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_steps_match_numpy(dtype):
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    Y, X = rand(3, 32, dtype=dtype), rand(4, 32, dtype=dtype)
    ref = Y.copy()
    ref.flat[20:36] += dtype(0.5) * X.flat[40:56]
    _vaxpy(Y, 20, dtype(0.5), X, 40)
    np.testing.assert_allclose(Y, ref, rtol=rtol)
    X2 = rand(2, 16, dtype=dtype)
    ref.flat[0:16] += X.flat[16:32] * X2.flat[16:32]
    _vmuladd(Y, 0, X, 16, X2, 16)
    np.testing.assert_allclose(Y, ref, rtol=rtol, atol=1e-6)
    W = rand(6, 16, dtype=dtype)
    xs = [dtype(v) for v in (0.1, -2.0, 3.0, 0.25)]
    ref.flat[48:64] += sum(x * W[r] for x, r in zip(xs, (0, 2, 3, 5)))
    _vaxpy4(Y, 48, W, 0, 32, 48, 80, *xs)
    np.testing.assert_allclose(Y, ref, rtol=rtol, atol=1e-5)
    assert _vdot(X, 16, W, 32) == pytest.approx(float(np.dot(X.flat[16:32], W.flat[32:48])), rel=rtol, abs=1e-5)


@numba.njit
def _prefetch_then_sum(X):
    for i in range(0, X.size, 16):
        vi.prefetch(X, i)
    return X.sum()


def test_prefetch_is_only_a_hint():
    X = rand(8, 16)
    before = X.copy()
    assert _prefetch_then_sum(X) == pytest.approx(float(X.sum()), rel=1e-5)
    np.testing.assert_array_equal(X, before)


@numba.njit
def _store_index(X, ix, i):
    vi.store_index(X, ix, i)


def test_store_index_keeps_the_integer_bits():
    X = np.zeros(4, np.float32)
    _store_index(X, 2, 123456)
    assert X.view(np.int32)[2] == 123456 and X[0] == 0 and X[3] == 0
    X64 = np.zeros(2, np.float64)
    _store_index(X64, 1, 2 ** 40)
    assert X64.view(np.int64)[1] == 2 ** 40


@numba.njit
def _vcompress(X, ix, vals, cols, p, first):
    return vi.vcompress(X, ix, vals, cols, p, first)


def test_vcompress_packs_the_non_zeros_and_their_positions():
    X = rand(2, 16)
    X[X < 0.3] = 0
    X[1, 3] = np.nan  # NaN counts as non-zero
    vals, cols = np.zeros(40, np.float32), np.zeros(40, np.uint16)
    k = _vcompress(X, 16, vals, cols, 5, 100)
    nz = np.flatnonzero(X[1] != 0)
    assert k == len(nz)
    np.testing.assert_array_equal(cols[5:5 + k], 100 + nz)
    np.testing.assert_array_equal(vals[5:5 + k], X[1, nz])


@numba.njit
def _vrows(Z, iz, W, n, cols, vals, p0, p1):
    vi.vrows(Z, iz, W, n, cols, vals, p0, p1)


@numba.njit
def _vrows_by4(Z, iz, W, n, cols, vals, p0, p1):
    vi.vrows_by4(Z, iz, W, n, cols, vals, p0, p1)


@numba.njit
def _vpanel_pairs(P, Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha):
    vi.vpanel_pairs(P, Z, iz, W, n, j, vals, p0, p1, p2, p3, alpha)


@pytest.mark.parametrize("n", [16, 32, 112, 160, 272])
def test_row_sums_match_numpy(n):
    W = rand(50, n)
    cols = np.array([3, 7, 7, 0, 49, 12, 31], np.uint16)
    vals = rand(len(cols))
    ref = vals @ W[cols.astype(np.intp)]
    for fn in (_vrows, _vrows_by4):
        Z = np.zeros((2, n), np.float32)
        fn(Z, n, W, n, cols, vals, 0, len(cols))
        np.testing.assert_allclose(Z[1], ref, rtol=1e-5, atol=1e-5)
        assert not Z[0].any()
    Z = np.zeros(n, np.float32)
    _vrows(Z, 0, W, n, None, vals, 0, 5)   # dense: rows 0..4 weighted by vals[0:5]
    np.testing.assert_allclose(Z, vals[:5] @ W[:5], rtol=1e-5, atol=1e-5)


@numba.njit
def _vrows7(Z, W, n, cols, vals, p0, p1):
    vi.vrows7(Z, 0, W, n, 0, cols, vals, p0, p1, 1.0)


def test_row_sums_in_panels_of_4_2_1_are_the_same_bits_as_one_panel_of_7():
    n = 7 * B
    W = rand(50, n)
    cols = np.array([3, 7, 7, 0, 49, 12, 31, 5, 8], np.uint16)
    vals = rand(len(cols))
    whole, panels = np.zeros(n, np.float32), np.zeros(n, np.float32)
    _vrows7(whole, W, n, cols, vals, 0, len(cols))
    _vrows(panels, 0, W, n, cols, vals, 0, len(cols))
    np.testing.assert_array_equal(panels, whole)


def test_panel_blocks_takes_the_widest_of_8_4_2_1_that_fits():
    got = [numba.njit(lambda k: vi.panel_blocks(k))(k) for k in range(1, 12)]
    assert got == [1, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8]


@numba.njit
def _as_dtype_of(X, x):
    return vi.as_dtype_of(X, x)


def test_as_dtype_of_rounds_like_numpy():
    xs = np.array([0.1, -1e-40, 3.4e38, 1e39, np.inf, np.nan, 1 / 3])
    with np.errstate(over="ignore"):
        ref = xs.astype(np.float32)  # (1e39 overflows to inf, as the cast in the kernel does)
    got = np.array([_as_dtype_of(np.zeros(1, np.float32), float(x)) for x in xs])  # float32 values, as float64
    np.testing.assert_array_equal(got, ref.astype(np.float64))
    assert got[0] != 0.1  # (rounded to float32, not passed through)
    assert _as_dtype_of(np.zeros(1, np.float64), 1 / 3) == 1 / 3
    assert _as_dtype_of(np.zeros(1, np.float32), 7) == 7


@numba.njit
def _sized(a):
    vi.small_code()
    for i in range(a.shape[0]):
        a[i] = 2 * a[i] + 1


def test_small_code_marks_the_function_for_size_and_changes_nothing_else():
    a = np.arange(40, dtype=np.float32)
    _sized(a)
    np.testing.assert_array_equal(a, 2 * np.arange(40, dtype=np.float32) + 1)
    ir = _sized.inspect_llvm(_sized.signatures[0])
    assert "minsize" in ir and "optsize" in ir


@pytest.mark.parametrize("P", [1, 2, 4, 8])
def test_pair_sums_match_numpy(P):
    # pairs (value, example bits) in two runs, summed as one sequence, times alpha
    n = 16 * P
    d = rand(6, n)
    pairs = np.zeros(20, np.float32)
    ex = [4, 0, 5, 2, 2, 1]
    for q, e in enumerate(ex):
        pairs[2 * q] = np.float32(q + 1) / 7
        pairs.view(np.int32)[2 * q + 1] = e
    Z = np.zeros(n, np.float32)
    _vpanel_pairs(P, Z, 0, d, n, 0, pairs, 0, 2, 3, 6, np.float32(-0.5))
    used = [0, 1, 3, 4, 5]
    ref = -0.5 * sum(pairs[2 * q] * d[ex[q]] for q in used)
    np.testing.assert_allclose(Z, ref, rtol=1e-5, atol=1e-6)


@numba.njit
def _atomics(a):
    old = threads.atomic_add(a, 0, 5)
    threads.atomic_store(a, 1, old + 1)
    return threads.atomic_load(a, 1)


def test_atomics():
    a = np.array([2, 0], np.int64)
    assert _atomics(a) == 3 and list(a) == [7, 3]


@numba.njit(nogil=True)
def _count_through_barriers(sync, counts, tid, nthreads, rounds):
    for r in range(rounds):
        threads.atomic_add(counts, r, 1)
        threads.barrier(sync, nthreads)
        # after the barrier every thread has counted this round
        if threads.atomic_load(counts, r) != nthreads:
            return False
    return True


@pytest.mark.parametrize("nthreads", [1, 2, 3])
def test_barrier_holds_every_thread_until_all_arrive(nthreads):
    sync, counts = np.zeros(16, np.int64), np.zeros(50, np.int64)
    ok = []
    threads.run_parallel(lambda tid: ok.append(_count_through_barriers(sync, counts, tid, nthreads, 50)), nthreads)
    assert ok == [True] * nthreads and (counts == nthreads).all()


# ---- the step math against the NumPy modules

ACTS = [(codes.SIGMOID, activations.Sigmoid()), (codes.TANH, activations.Tanh()), (codes.RELU, activations.ReLU()),
        (codes.IDENTITY, activations.Identity()), (codes.SOFTMAX, activations.Softmax())]


@numba.njit
def _activate(Z, code):
    for e in range(Z.shape[0]):
        step.activate_row(Z, e, Z.shape[1], code)


@numba.njit
def _times_derivative(D, A, code):
    for e in range(D.shape[0]):
        step.times_derivative(D, e, A, D.shape[1], 1.0, code)


@pytest.mark.parametrize("code, module", ACTS)
def test_activations_and_derivatives_match_the_layers(code, module):
    z = rand(5, 12) * 3
    a = module.forward(z.copy(), train=True)
    out = z.copy()
    _activate(out, code)
    np.testing.assert_allclose(out, a, rtol=2e-6, atol=1e-7)
    if code == codes.SOFTMAX:
        return
    grad = rand(5, 12)
    D = grad.copy()
    _times_derivative(D, a, code)
    np.testing.assert_allclose(D, module.backward(grad.copy()), rtol=1e-6, atol=1e-7)


@numba.njit
def _deltas(a, t, kind, code, inv_m):
    out = np.empty_like(a)
    for e in range(a.shape[0]):
        step.output_deltas(out, e, a, t, e, a.shape[1], kind, code, inv_m)
    return out


@pytest.mark.parametrize("cost, kind, code", [(costs.CrossEntropyCost(), codes.FUSED, codes.SIGMOID),
                                              (costs.QuadraticCost(), codes.FUSED, codes.IDENTITY),
                                              (costs.HingeCost(), codes.HINGE, codes.IDENTITY),
                                              (costs.QuadraticCost(), codes.CHAINED, codes.SIGMOID)])
def test_output_deltas_match_the_costs(cost, kind, code):
    a = 1 / (1 + np.exp(-rand(4, 6))) if code == codes.SIGMOID else rand(4, 6)
    t = np.eye(6, dtype=np.float32)[[0, 3, 5, 1]]
    if kind == codes.HINGE:
        t = 2 * t - 1
    got = _deltas(a.astype(np.float32), t, kind, code, np.float32(1 / 4))
    if kind == codes.CHAINED:
        ref = cost.delta(a, t) * a * (1 - a)
    else:
        ref = cost.delta_z(a, t)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-8)


@numba.njit
def _decay(W, s, eta, c2, c1):
    return step.decay_rows(W, 0, W.shape[0], s, eta, c2, c1)


def test_decay_rules_match_the_books_update():
    W = rand(4, 3, dtype=np.float64)
    # L1 (and L2): every weight now, w - eta (c2 w + c1 sgn w)
    V = W.copy()
    s, coef = _decay(V, 1.0, 0.5, 0.1, 0.2)
    np.testing.assert_allclose(V, W - 0.5 * (0.1 * W + 0.2 * np.sign(W)), rtol=1e-15)
    assert (s, coef) == (1.0, -0.5)
    # L2 alone is lazy: the scale shrinks, V is untouched, the step is divided by the scale
    V = W.copy()
    s, coef = _decay(V, 1.0, 0.5, 0.1, 0.0)
    assert s == pytest.approx(0.95) and coef == pytest.approx(-0.5 / 0.95)
    np.testing.assert_array_equal(V, W)
    # ... until the scale would pass MIN_SCALE: then it is folded into V and restarts at 1
    s, coef = _decay(V, 1e-4, 0.5, 0.1, 0.0)
    np.testing.assert_allclose(V, W * 0.95e-4, rtol=1e-12)
    assert s == 1.0 and coef == -0.5
