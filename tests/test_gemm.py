"""The GEMM engine: every kernel set and both paths (small, packed) against NumPy in float64,
edge tiles, strides, alpha/beta semantics, threads, the fused epilogue and fastmlp.ops.gemm.
"""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import _reference as ref
from conftest import assert_close, core, package_parent

# Subprocesses run outside the source tree and import the fastmlp under test (installed,
# or built in place) from the folder that holds it.
PACKAGE_PARENT = package_parent()

TRANSPOSES = list(itertools.product([False, True], repeat=2))


def archs():
    """Kernel sets this build and this CPU can run (all three on an AVX-512 machine)."""
    return core().supported_archs()


@pytest.fixture(params=["generic", "avx2", "avx512"])
def arch(request):
    """Forces one kernel set for the test, then restores the one chosen at import."""
    c = core()
    if request.param not in c.supported_archs():
        pytest.skip(f"the {request.param} kernels are not usable on this machine")
    before = c.arch()
    c._set_arch(request.param)
    yield request.param
    c._set_arch(before)


def blocking(arch, dtype):
    return core().gemm_blocking(arch, np.dtype(dtype).name)


def rand(rng, shape, dtype):
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def operands(rng, m, n, k, dtype, trans_a=False, trans_b=False):
    a = rand(rng, (k, m) if trans_a else (m, k), dtype)
    b = rand(rng, (n, k) if trans_b else (k, n), dtype)
    return a, b, rand(rng, (m, n), dtype)


def check(got, a, b, c0, dtype, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, msg=""):
    k = a.shape[0] if trans_a else a.shape[1]
    expected = ref.gemm(a, b, c0, alpha, beta, trans_a, trans_b)
    mag = ref.gemm_magnitude(a, b, c0, alpha, beta, trans_a, trans_b)
    assert_close(got, expected, dtype, k=k, mag=mag, msg=msg)


def edge_shapes(arch, dtype):
    """Sizes that break tiled code, from the kernel set's own blocking: 1, MR +- 1, NR +- 1,
    KC + 1, primes, tall-skinny and short-wide."""
    b = blocking(arch, dtype)
    mr, nr, kc = b["mr"], b["nr"], b["kc"]
    return sorted({
        (1, 1, 1), (mr - 1, nr - 1, 7), (mr + 1, nr + 1, 13), (mr, nr, kc + 1),
        (2 * mr + 1, 3 * nr - 1, 3), (17, 13, 29), (31, 61, 67), (1, 257, 19), (257, 1, 19),
        (3, 5, kc + 1), (300, 2, 11), (2, 300, 11),
    })


def packed_shape(arch, dtype):
    """A product above the kernel set's small-product limits (it takes the packed path) with
    edge tiles in every direction and more than one k-panel."""
    b = blocking(arch, dtype)
    c = max(int(round(b["sup_mnk"] ** (1 / 3))) + 1, b["sup_m"] + 1, 2 * b["kc"] + 1)
    m = c - c % b["mr"] + b["mr"] + 1
    n = c - c % b["nr"] + b["nr"] + 3
    k = c + 1
    assert m > b["sup_m"] and m * n * k > b["sup_mnk"] and k > b["kc"]
    return m, n, k


def shape_for(path, arch, dtype, small):
    return packed_shape(arch, dtype) if path == "packed" else small


# ------------------------------------------------------------------ every kernel set
def test_edge_shapes_and_transposes(arch, rng, dtype):
    for (m, n, k), (ta, tb) in itertools.product(edge_shapes(arch, dtype), TRANSPOSES):
        a, b, c = operands(rng, m, n, k, dtype, ta, tb)
        core().gemm(a, b, c, 1.0, 0.0, ta, tb)
        check(c, a, b, None, dtype, 1.0, 0.0, ta, tb, msg=f"{arch} {(m, n, k)} ta={ta} tb={tb}")


@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_packed_path(arch, rng, dtype, trans_a, trans_b):
    m, n, k = packed_shape(arch, dtype)
    a, b, c = operands(rng, m, n, k, dtype, trans_a, trans_b)
    c0 = c.copy()
    core().gemm(a, b, c, 0.5, -1.5, trans_a, trans_b)
    check(c, a, b, c0, dtype, 0.5, -1.5, trans_a, trans_b, msg=f"{arch} packed")


def test_naive_reference_agrees(arch, rng, dtype):
    a, b, c = operands(rng, 23, 37, 41, dtype)
    want = c.copy()
    core().gemm(a, b, want, 1.0, 0.0, reference=True)
    core().gemm(a, b, c, 1.0, 0.0)
    assert_close(c, want, dtype, k=41, mag=ref.gemm_magnitude(a, b), msg="vs fm_gemm_ref")


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.5, 1.5)])
def test_one_row_products_have_the_bits_of_the_tiles(arch, rng, dtype, alpha, beta):
    # products of one or two rows stream B row by row instead of running the micro-kernel;
    # each row must come out exactly as the same row of a larger product does
    for n, k in [(64, 1), (257, 19), (1100, 37), (700, 600), (2100, 5)]:
        a, b, c = operands(rng, 9, n, k, dtype)
        whole = c.copy()
        core().gemm(a, b, whole, alpha, beta)
        for rows in (slice(0, 1), slice(3, 5), slice(8, 9)):
            part = c[rows].copy()
            core().gemm(a[rows], b, part, alpha, beta)
            np.testing.assert_array_equal(part, whole[rows], err_msg=f"{arch} n={n} k={k}")
    # and through the dense layer's fused bias and activation
    x, w = rand(rng, (6, 33), dtype), rand(rng, (33, 130), dtype)
    bias = rand(rng, 130, dtype)
    for act in ("relu", "sigmoid", "tanh", "softmax"):
        y_all = np.empty((6, 130), dtype)
        core().dense_forward(x, w, bias, core().ACTIVATIONS[act], 0.0, None, y_all)
        for r in range(6):
            y_one = np.empty((1, 130), dtype)
            core().dense_forward(x[r:r + 1], w, bias, core().ACTIVATIONS[act], 0.0, None, y_one)
            np.testing.assert_array_equal(y_one[0], y_all[r], err_msg=f"{arch} {act} row {r}")


# ------------------------------------------------------------------ alpha and beta
ALPHA_BETA = [(1.0, 0.0), (1.0, 1.0), (-2.0, 0.5), (0.0, 3.0), (0.0, 0.0), (0.25, -1.0)]


@pytest.mark.parametrize("path,alpha,beta",
                         [(p, a, b) for p in ("tiny", "small") for a, b in ALPHA_BETA]
                         + [("packed", 1.0, 1.0), ("packed", 0.0, 3.0)])
def test_alpha_beta(arch, rng, dtype, alpha, beta, path):
    m, n, k = shape_for(path, arch, dtype, (10, 16, 8) if path == "tiny" else (70, 37, 600))
    a, b, c = operands(rng, m, n, k, dtype)
    c0 = c.copy()
    core().gemm(a, b, c, alpha, beta)
    check(c, a, b, c0, dtype, alpha, beta)


@pytest.mark.parametrize("path", [(10, 16, 8), (5, 3, 0), (131, 97, 600), (10, 100, 200),
                                  "packed"])
def test_beta_zero_overwrites_nan(arch, rng, dtype, path):
    m, n, k = shape_for(path, arch, dtype, path)
    a, b, c = operands(rng, m, n, k, dtype, trans_b=True)
    c[...] = np.nan
    core().gemm(a, b, c, 1.0, 0.0, trans_b=True)
    assert np.isfinite(c).all()
    check(c, a, b, None, dtype, trans_b=True)


# ------------------------------------------------------------------ strides and layouts
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
@pytest.mark.parametrize("shape", [(9, 14, 11), (61, 67, 300)])
def test_strided_read_only_inputs(arch, rng, dtype, trans_a, trans_b, shape):
    m, n, k = shape
    big_a = rand(rng, (3 * k, 2 * m) if trans_a else (3 * m, 2 * k), dtype)
    big_b = rand(rng, (2 * n, 3 * k) if trans_b else (2 * k, 3 * n), dtype)
    a, b = big_a[::3, ::2], big_b[::2, ::3]
    a.flags.writeable = False
    b.flags.writeable = False
    big_c = rand(rng, (m, 3 * n), dtype)
    c = big_c[:, ::3]  # columns strided: the kernels go through a contiguous tile
    c0, before = c.copy(), big_c.copy()
    core().gemm(a, b, c, 0.5, 1.5, trans_a, trans_b)
    check(c, a, b, c0, dtype, 0.5, 1.5, trans_a, trans_b, msg="strided")
    assert np.array_equal(big_c[:, 1::3], before[:, 1::3])  # columns between stay
    assert np.array_equal(big_c[:, 2::3], before[:, 2::3])


def test_fortran_and_negative_strides(arch, rng, dtype):
    m, n, k = 29, 45, 70
    a, b, _ = operands(rng, m, n, k, dtype)
    c = np.asfortranarray(rand(rng, (m, n), dtype))
    c0 = c.copy()
    core().gemm(np.asfortranarray(a), b[::-1][::-1], c, 1.0, 1.0)
    check(c, a, b, c0, dtype, 1.0, 1.0)
    out = np.zeros((m, n), dtype)
    core().gemm(a[::-1], b[:, ::-1], out)
    check(out, a[::-1], b[:, ::-1], None, dtype, msg="negative strides")


def test_untouched_outside_c(arch, rng, dtype):
    m, n, k = 13, 35, 9
    a, b, _ = operands(rng, m, n, k, dtype)
    big = np.full((m + 2, n + 40), 7.0, dtype)
    c = big[1:-1, 3:3 + n]
    core().gemm(a, b, c)
    check(c, a, b, None, dtype)
    big[1:-1, 3:3 + n] = 7.0
    assert (big == 7.0).all()


# ------------------------------------------------------------------ threads
@pytest.mark.threads
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
@pytest.mark.parametrize("path", [(300, 40, 170), (20, 400, 190), (131, 97, 700),
                                  (8, 9, 20000), "packed"])
def test_threads_bitwise_identical(arch, rng, dtype, trans_a, trans_b, path):
    m, n, k = shape_for(path, arch, dtype, path)
    assert m * n * k >= blocking(arch, dtype)["par_mnk"]  # two threads really run
    a, b, c = operands(rng, m, n, k, dtype, trans_a, trans_b)
    c1, c2 = c.copy(), c.copy()
    core().gemm(a, b, c1, 0.5, 2.0, trans_a, trans_b, 1)
    core().gemm(a, b, c2, 0.5, 2.0, trans_a, trans_b, 2)
    assert np.array_equal(c1, c2)
    bias = rand(rng, n, dtype)
    y1, y2 = np.empty_like(c), np.empty_like(c)
    z1, z2 = c.copy(), c.copy()
    core().gemm_ex(a, b, z1, bias, "tanh", 0.0, y1, trans_a=trans_a, trans_b=trans_b,
                   n_threads=1)
    core().gemm_ex(a, b, z2, bias, "tanh", 0.0, y2, trans_a=trans_a, trans_b=trans_b,
                   n_threads=2)
    assert np.array_equal(z1, z2) and np.array_equal(y1, y2)


@pytest.mark.threads
@pytest.mark.parametrize("m,n,k", [(1, 1024, 300), (2, 700, 400), (1, 130, 2100)])
def test_one_row_products_split_their_columns_with_the_same_bits(arch, rng, dtype, m, n, k):
    # a row or two streams B from memory: two threads take half its columns each from
    # GEMM_ROW_PAR_MNK multiply-adds (below the SIMD sets' par_mnk), and nothing changes a bit
    assert m * n * k >= core().GEMM_ROW_PAR_MNK
    a, b, c = operands(rng, m, n, k, dtype)
    bias = rand(rng, n, dtype)
    got = []
    for nt in (1, 2):
        z, y = c.copy(), np.empty_like(c)
        core().gemm_ex(a, b, z, bias, "relu", 0.0, y, 0.5, 1.5, n_threads=nt)
        got.append((z, y))
    assert np.array_equal(got[0][0], got[1][0]) and np.array_equal(got[0][1], got[1][1])
    check(got[0][0] - bias, a, b, c, dtype, 0.5, 1.5)


@pytest.mark.parametrize("trans_a", [False, True])
def test_one_column_products_have_the_bits_of_wider_ones(arch, rng, dtype, trans_a):
    # a product of one column (a single-output layer's forward and dW) gives the micro-kernel
    # one lane of each vector: the column must keep the bits it has in a wider product, for
    # row counts around the vector widths and the row blocks, k around the k-panels, with
    # alpha, beta, bias, relu or another activation, on 1 and 2 threads, C strided
    kc = blocking(arch, dtype)["kc"]
    for m, k in [(1, 1), (1, 9), (7, 3), (10, 8), (17, 1), (33, 31), (255, 7), (257, 12),
                 (600, kc + 3), (20000, 60)]:
        a, b_wide, c_wide = operands(rng, m, 9, k, dtype, trans_a)
        bias = rand(rng, 9, dtype)
        for alpha, beta in [(1.0, 0.0), (-0.5, 1.5)]:
            wide = c_wide.copy()
            core().gemm(a, b_wide, wide, alpha, beta, trans_a=trans_a)
            for nt in (1, 2):
                got = np.zeros((m, 3), dtype)[:, 1:2]  # row stride 3
                got[...] = c_wide[:, :1]
                core().gemm(a, b_wide[:, :1], got, alpha, beta, trans_a=trans_a, n_threads=nt)
                np.testing.assert_array_equal(got, wide[:, :1], err_msg=f"{arch} {(m, k)}")
        for act in ("linear", "relu", "sigmoid"):
            z_wide, y_wide = np.empty((m, 9), dtype), np.empty((m, 9), dtype)
            core().gemm_ex(a, b_wide, z_wide, bias, act, 0.0, y_wide, trans_a=trans_a)
            for nt in (1, 2):
                z = np.empty((m, 1), dtype)
                core().gemm_ex(a, b_wide[:, :1].copy(), z, bias[:1].copy(), act,
                               trans_a=trans_a, n_threads=nt)
                np.testing.assert_array_equal(z, y_wide[:, :1], err_msg=f"{arch} {act}")
            if m * k <= core().GEMM_SMALL_MNK:
                small = np.empty((m, 1), dtype)
                core().gemm_small(a, b_wide[:, :1].copy(), small, bias[:1].copy(), act,
                                  trans_a=trans_a)
                np.testing.assert_array_equal(small, y_wide[:, :1], err_msg=f"{arch} {act}")
        check(wide[:, :1], a, b_wide[:, :1], c_wide[:, :1], dtype, -0.5, 1.5, trans_a)


# ------------------------------------------------------------------ dense layer's small entry
@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "softmax"])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
@pytest.mark.parametrize("shape", [(10, 16, 8), (10, 1, 8), (8, 1, 10), (10, 8, 1), (1, 70, 9),
                                   (2, 64, 3), (13, 33, 29), (32, 32, 32), (5, 300, 21)])
def test_small_entry_gives_the_bits_of_gemm_ex(arch, rng, dtype, act, trans_a, trans_b, shape):
    # dense layers compute products this small through gemm_small, larger batches through
    # gemm_ex: a row must not depend on which one computed it
    m, n, k = shape
    assert m * n * k <= core().GEMM_SMALL_MNK
    a, b, _ = operands(rng, m, n, k, dtype, trans_a, trans_b)
    bias = rand(rng, n, dtype)
    z1, y1, z2, y2 = (np.full((m, n), np.nan, dtype) for _ in range(4))
    core().gemm_ex(a, b, z1, bias, act, 0.0, y1, trans_a=trans_a, trans_b=trans_b)
    core().gemm_small(a, b, z2, bias, act, 0.0, y2, trans_a=trans_a, trans_b=trans_b)
    assert np.array_equal(z1, z2) and np.array_equal(y1, y2)
    z3 = np.full((m, n), np.nan, dtype)  # in place, no bias
    core().gemm_small(a, b, z3, None, act, 0.0, None, trans_a=trans_a, trans_b=trans_b)
    if act == "linear":
        check(z3, a, b, None, dtype, trans_a=trans_a, trans_b=trans_b)
    y4 = np.empty((m, n), dtype)
    core().gemm_ex(a, b, np.empty((m, n), dtype), None, act, 0.0, y4, trans_a=trans_a,
                   trans_b=trans_b)
    assert np.array_equal(z3, y4)


@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_narrow_products_have_the_bits_of_wider_ones(arch, rng, dtype, trans_a, trans_b):
    # products of at most half a vector of columns may run on half-width vectors (AVX-512):
    # each column of C must keep the bits it has as part of a wider product, whose tiles
    # are full-width; every row count of the tile, through both small entries
    lanes = blocking(arch, dtype)["nr"] // 2
    for m, k in [(1, 8), (3, 1), (10, 8), (10, 16), (12, 10), (13, 5), (16, 10), (25, 3)]:
        a, b_wide, _ = operands(rng, m, 2 * lanes, k, dtype, trans_a, trans_b)
        bias = rand(rng, 2 * lanes, dtype)
        wide = np.empty((m, 2 * lanes), dtype)
        core().gemm_ex(a, b_wide, wide, bias, trans_a=trans_a, trans_b=trans_b)
        for n in sorted({1, 2, 3, max(1, lanes // 2), lanes - 1, lanes} - {0}):
            b = b_wide[:n] if trans_b else b_wide[:, :n]
            got_small, got_ex = np.empty((m, n), dtype), np.empty((m, n), dtype)
            core().gemm_small(a, b, got_small, bias[:n].copy(), trans_a=trans_a,
                              trans_b=trans_b)
            core().gemm_ex(a, b, got_ex, bias[:n].copy(), trans_a=trans_a, trans_b=trans_b)
            msg = f"{arch} {(m, n, k)}"
            np.testing.assert_array_equal(got_small, wide[:, :n], err_msg=msg)
            np.testing.assert_array_equal(got_ex, wide[:, :n], err_msg=msg)
        plain = np.empty((m, 2 * lanes), dtype)
        core().gemm_small(a, b_wide, plain, None, trans_a=trans_a, trans_b=trans_b)
        check(plain, a, b_wide, None, dtype, trans_a=trans_a, trans_b=trans_b)
    # several k-panels (beta = 1 on the later ones), beta != 0, and C strided both ways (the
    # tile goes through a contiguous copy)
    m, k = 13, blocking(arch, dtype)["kc"] + 1
    a, b_wide, c_wide = operands(rng, m, 2 * lanes, k, dtype, trans_a, trans_b)
    wide = c_wide.copy()
    core().gemm(a, b_wide, wide, 0.5, -1.5, trans_a=trans_a, trans_b=trans_b)
    check(wide, a, b_wide, c_wide, dtype, 0.5, -1.5, trans_a, trans_b)
    for n in sorted({1, 3, lanes}):
        b = b_wide[:n] if trans_b else b_wide[:, :n]
        got = np.zeros((2 * m, 2 * n), dtype)[::2, ::2]
        got[...] = c_wide[:, :n]
        core().gemm(a, b, got, 0.5, -1.5, trans_a=trans_a, trans_b=trans_b)
        np.testing.assert_array_equal(got, wide[:, :n], err_msg=f"{arch} {(m, n, k)} strided")


@pytest.mark.parametrize("trans_a", [False, True])
def test_a_row_does_not_depend_on_the_path(arch, rng, dtype, trans_a):
    # k spans three k-panels; all m rows take the packed path, a few rows the unpacked one,
    # one or two rows the streamed one: each row of C must come out with the same bits
    blk = blocking(arch, dtype)
    m_, n, k = 0, 80, 2 * blk["kc"] + 37
    m_ = max(blk["sup_m"] + 1, blk["sup_mnk"] // (n * k) + 1)
    a, b, c0 = operands(rng, m_, n, k, dtype, trans_a)
    bias = rand(rng, n, dtype)
    whole = c0.copy()
    core().gemm_ex(a, b, whole, bias, "tanh", 0.0, None, 0.5, 0.75, trans_a=trans_a)
    for lo, hi in [(0, 1), (3, 5), (7, 20), (m_ - 13, m_)]:
        part = c0[lo:hi].copy()
        a_rows = a[:, lo:hi] if trans_a else a[lo:hi]
        core().gemm_ex(a_rows, b, part, bias, "tanh", 0.0, None, 0.5, 0.75, trans_a=trans_a)
        assert np.array_equal(part, whole[lo:hi]), (lo, hi)
    a64 = (a.T if trans_a else a).astype(np.float64)
    want = np.tanh(0.5 * a64 @ b.astype(np.float64) + 0.75 * c0 + bias)
    np.testing.assert_allclose(whole, want, rtol=0, atol=1e-3 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("k,n", [(64, 128), (200, 100), (700, 100)])
def test_transposed_b_too_large_for_the_stack(arch, rng, dtype, k, n):
    # dZ @ W^T on few rows packs W^T whole for the unpacked path: on the stack up to 32 KiB
    # (64 x 128 float32), in an allocated buffer up to 120 KiB (64 x 128 float64, 200 x 100
    # float32), on the packed path beyond (700 x 100); the rows keep the packed path's bits
    m = 32
    a, b, c0 = operands(rng, m, n, k, dtype, trans_b=True)
    bias = rand(rng, n, dtype)
    c = c0.copy()
    core().gemm(a, b, c, 1.0, 0.0, False, True)
    check(c, a, b, None, dtype, 1.0, 0.0, False, True, msg=f"{arch} {(m, n, k)}")
    reps = blocking(arch, dtype)["sup_mnk"] // (m * n * k) + 1  # the rows repeated: packed
    whole = np.empty((reps * m, n), dtype)
    core().gemm_ex(np.tile(a, (reps, 1)), b, whole, bias, "relu", 0.0, None, trans_b=True)
    part = np.empty((m, n), dtype)
    core().gemm_ex(a, b, part, bias, "relu", 0.0, None, trans_b=True)
    assert np.array_equal(part, whole[:m]) and np.array_equal(part, whole[-m:])


def test_small_entry_refuses_larger_products(rng, dtype):
    side = int(round(core().GEMM_SMALL_MNK ** (1 / 3))) + 1
    a, b, c = operands(rng, side, side, side, dtype)
    with pytest.raises(ValueError, match="gemm_small"):
        core().gemm_small(a, b, c)


# ------------------------------------------------------------------ fused epilogue
@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "tanh", "elu", "softmax"])
@pytest.mark.parametrize("path", [(10, 16, 8), (10, 1, 8), (37, 70, 300), "packed"])
def test_fused_epilogue_equals_separate_steps(arch, rng, dtype, act, path):
    m, n, k = shape_for(path, arch, dtype, path)
    a, b, _ = operands(rng, m, n, k, dtype)
    bias = rand(rng, n, dtype)
    alpha = 1.0 if act == "elu" else 0.0
    # separate: z = a @ b, z += bias, y = act(z)
    z_sep = np.empty((m, n), dtype)
    core().gemm(a, b, z_sep)
    z_sep += bias
    y_sep = np.empty_like(z_sep)
    core().act_forward(act, z_sep, y_sep, alpha)
    # fused, keeping z
    z, y = np.full((m, n), np.nan, dtype), np.full((m, n), np.nan, dtype)
    core().gemm_ex(a, b, z, bias, act, alpha, y)
    assert np.array_equal(z, z_sep) and np.array_equal(y, y_sep)
    # fused, in place
    c = np.full((m, n), np.nan, dtype)
    core().gemm_ex(a, b, c, bias, act, alpha)
    assert np.array_equal(c, y_sep)


@pytest.mark.parametrize("shape", [(10, 16, 8), (10, 4, 8), (13, 37, 5), (48, 70, 300)])
def test_relu_in_the_kernel_has_the_bits_of_the_activation(arch, rng, dtype, shape):
    # small products apply relu in the micro-kernel's store (a max with 0): NaN, -0, +-inf
    # and ties must come out as the element-wise relu (x > 0 ? x : 0) gives them
    m, n, k = shape
    a, b, _ = operands(rng, m, n, k, dtype)
    a[0, 0], a[1, :], a[2, 0], a[3, 0] = np.nan, 0.0, np.inf, -np.inf
    bias = rand(rng, n, dtype)
    bias[:2] = [-0.0, 0.0]
    for alpha, entry in [(1.0, "small"), (1.0, "ex"), (-1.0, "ex"), (0.5, "ex")]:
        if entry == "small" and m * n * k > core().GEMM_SMALL_MNK:
            continue
        z = np.empty((m, n), dtype)
        core().gemm_ex(a, b, z, None if alpha != 1.0 else bias, alpha=alpha)
        expected = np.empty_like(z)
        core().act_forward("relu", z, expected, 0.0)
        got = np.full((m, n), np.nan, dtype)
        if entry == "small":
            core().gemm_small(a, b, got, bias, "relu")
        else:
            core().gemm_ex(a, b, got, None if alpha != 1.0 else bias, "relu", alpha=alpha)
        assert np.array_equal(got.view(f"u{got.itemsize}"),
                              expected.view(f"u{got.itemsize}")), (entry, alpha)
        assert not np.isnan(got).any() and (np.signbit(got) == 0).all()


def test_fused_epilogue_against_numpy(rng, dtype):
    a, b, _ = operands(rng, 45, 33, 21, dtype)
    bias = rand(rng, 33, dtype)
    c = np.empty((45, 33), dtype)
    core().gemm_ex(a, b, c, bias, "relu")
    want = np.maximum(ref.gemm(a, b) + bias.astype(np.float64), 0.0)
    assert_close(c, want, dtype, k=21, mag=ref.gemm_magnitude(a, b) + np.abs(bias))


def test_dense_forward_uses_fused_gemm(rng, dtype):
    x, w, _ = operands(rng, 10, 16, 8, dtype)
    bias = rand(rng, 16, dtype)
    z, y = np.empty((10, 16), dtype), np.empty((10, 16), dtype)
    core().dense_forward(x, w, bias, "relu", 0.0, z, y)
    z2, y2 = np.empty_like(z), np.empty_like(y)
    core().gemm_ex(x, w, z2, bias, "relu", 0.0, y2)
    assert np.array_equal(z, z2) and np.array_equal(y, y2)


def test_gemm_ex_refuses_strided_output(rng, dtype):
    a, b, _ = operands(rng, 4, 5, 3, dtype)
    c = np.empty((5, 4), dtype).T
    with pytest.raises(ValueError, match="gemm_ex"):
        core().gemm_ex(a, b, c, None, "relu")


# ------------------------------------------------------------------ dispatch
def test_arch_switch_and_blocking():
    c = core()
    assert c.arch() in c.supported_archs()
    for name in c.supported_archs():
        for dt in ("float32", "float64"):
            blk = c.gemm_blocking(name, dt)
            assert blk["mr"] >= 1 and blk["nr"] >= 1
            assert blk["mc"] % blk["mr"] == 0 and blk["kc"] >= 1 and blk["nc"] % blk["nr"] == 0
    with pytest.raises(ValueError):
        c._set_arch("sse9")


@pytest.mark.parametrize("name", ["generic", "avx2", "avx512"])
def test_fastmlp_arch_environment(name, tmp_path):
    """A fresh process honours FASTMLP_ARCH and computes correctly with that kernel set."""
    if name not in archs():
        pytest.skip(f"the {name} kernels are not usable on this machine")
    code = (
        "import numpy as np, fastmlp._core as c\n"
        "assert c.arch() == %r, c.arch()\n"
        "rng = np.random.default_rng(0)\n"
        "for dt in (np.float32, np.float64):\n"
        "    for m, n, k in ((10, 16, 8), (131, 97, 700)):\n"
        "        a = rng.uniform(-1, 1, (m, k)).astype(dt)\n"
        "        b = rng.uniform(-1, 1, (n, k)).astype(dt)\n"
        "        out = np.empty((m, n), dt); c.gemm(a, b, out, trans_b=True)\n"
        "        ref = a.astype(np.float64) @ b.astype(np.float64).T\n"
        "        assert np.abs(out - ref).max() < (1e-4 if dt == np.float32 else 1e-12) * k\n"
        "print('ok')\n" % name)
    env = dict(os.environ, FASTMLP_ARCH=name, PYTHONPATH=PACKAGE_PARENT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_fastmlp_arch_unknown_fails_at_import(tmp_path):
    env = dict(os.environ, FASTMLP_ARCH="sse9", PYTHONPATH=PACKAGE_PARENT)
    out = subprocess.run([sys.executable, "-c", "import fastmlp"], capture_output=True,
                         text=True, env=env, cwd=str(tmp_path), timeout=120)
    assert out.returncode != 0 and "FASTMLP_ARCH" in out.stderr


# ------------------------------------------------------------------ fastmlp.ops.gemm
def test_ops_gemm_matches_numpy(rng, dtype):
    from fastmlp.ops import gemm
    for (m, n, k), (ta, tb) in itertools.product([(10, 16, 8), (1, 1, 1), (70, 33, 129)],
                                                 TRANSPOSES):
        a, b, c = operands(rng, m, n, k, dtype, ta, tb)
        out = gemm(a, b, trans_a=ta, trans_b=tb)
        assert out.dtype == dtype and out.shape == (m, n) and out.flags.c_contiguous
        check(out, a, b, None, dtype, trans_a=ta, trans_b=tb)
        c0 = c.copy()
        assert gemm(a, b, ta, tb, alpha=2.0, beta=-1.0, out=c) is c
        check(c, a, b, c0, dtype, 2.0, -1.0, ta, tb)


def test_ops_gemm_accepts_array_likes_and_views(rng):
    from fastmlp.ops import gemm
    out = gemm([[1.0, 2.0]], [[3.0], [4.0]])
    assert out.dtype == np.float64 and out.tolist() == [[11.0]]
    a = rand(rng, (20, 30), np.float32)
    ro = a[::2, ::3]
    ro.flags.writeable = False
    check(gemm(ro, ro, trans_b=True), ro, ro, None, np.float32, trans_b=True)
    f = np.empty((10, 10), np.float32, order="F")
    check(gemm(ro, ro, trans_b=True, out=f), ro, ro, None, np.float32, trans_b=True)
    empty = gemm(np.ones((0, 3)), np.ones((3, 4)))
    assert empty.shape == (0, 4)
    zero_k = gemm(np.ones((2, 0)), np.ones((0, 3)))
    assert (zero_k == 0).all()


@pytest.mark.parametrize("call,exc,match", [
    (lambda g, f: g(f((2, 3)), f((4, 5))), ValueError, "inner dimensions"),
    (lambda g, f: g(f((2, 3)), f((2, 5)), trans_b=True), ValueError, "inner dimensions"),
    (lambda g, f: g(f(3), f((3, 2))), ValueError, "2-D"),
    (lambda g, f: g(f((2, 3)), f((3, 2)).astype(np.float64)), TypeError, "same dtype"),
    (lambda g, f: g(np.ones((2, 3), np.int64), f((3, 2))), TypeError, "float32 or float64"),
    (lambda g, f: g(f((2, 3)), np.ones((3, 2), bool)), TypeError, "float32 or float64"),
    (lambda g, f: g(f((2, 3)), f((3, 2)), beta=1.0), ValueError, "beta"),
    (lambda g, f: g(f((2, 3)), f((3, 2)), out=f((3, 2))), ValueError, "shape"),
    (lambda g, f: g(f((2, 3)), f((3, 2)), out=f((2, 2)).astype(np.float64)), TypeError, "dtype"),
    (lambda g, f: g(f((2, 3)), f((3, 2)), out=[[0.0, 0.0], [0.0, 0.0]]), TypeError, "ndarray"),
    (lambda g, f: g(f((2, 3)), f((3, 2)), out=_read_only(f((2, 2)))), ValueError, "writeable"),
    (lambda g, f: g(f((2, 3)), f((3, 2)), out=f((4, 4))[::2, ::2]), ValueError, "contiguous"),
    (lambda g, f: g(f((2, 3)), f((3, 2)), out=np.broadcast_to(f((1, 2)), (2, 2))), ValueError,
     "writeable|contiguous"),
], ids=["shape", "shape-trans", "ndim", "mixed-dtype", "int", "bool", "beta-no-out",
        "out-shape", "out-dtype", "out-list", "out-read-only", "out-strided", "out-broadcast"])
def test_ops_gemm_validation(call, exc, match):
    from fastmlp.ops import gemm
    with pytest.raises(exc, match=match):
        call(gemm, lambda shape: np.ones(shape, np.float32))


def test_ops_gemm_refuses_overlapping_out():
    from fastmlp.ops import gemm
    a = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="overlap"):
        gemm(a, a, out=a)
    with pytest.raises(ValueError, match="overlap"):
        gemm(a[:2], a[:, :2], out=a[2:, 2:][:, :2])


def _read_only(x):
    x.flags.writeable = False
    return x


# ------------------------------------------------------------------ configuration
def test_sysinfo_reports_gemm_configuration():
    import io
    from fastmlp import _sysinfo
    cfg = _sysinfo.config()
    assert cfg["kernel"] == core().arch()
    assert set(cfg["gemm"]) == {"float32", "float64"}
    assert cfg["gemm"]["float32"] == core().gemm_blocking(cfg["kernel"], "float32")
    assert set(cfg["cpu_features"]) <= {"sse2", "avx", "fma", "avx2", "avx512f", "avx512dq",
                                        "avx512vl", "avx512bw"}
    buf = io.StringIO()
    _sysinfo.show_config(file=buf)
    text = buf.getvalue()
    assert "MR x NR" in text and cfg["kernel"] in text
