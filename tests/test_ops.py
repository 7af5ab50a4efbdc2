"""Every low-level C op of ``fastmlp._core`` against the NumPy oracle."""

import itertools

import numpy as np
import pytest

import _reference as ref
from conftest import DTYPES, assert_close, core

ACT_NAMES = list(ref.ACTIVATIONS)

# Shapes that break tiled code: 1, primes, one more than powers of two.
GEMM_SHAPES = [
    (1, 1, 1), (1, 7, 13), (7, 1, 13), (13, 17, 1), (17, 13, 7),
    (31, 61, 67), (67, 31, 61), (61, 67, 129), (129, 17, 31), (33, 65, 257),
]


def rand(rng, shape, dtype, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(dtype)


# --------------------------------------------------------------------- gemm
def _operands(rng, m, n, k, dtype, trans_a, trans_b):
    a = rand(rng, (k, m) if trans_a else (m, k), dtype)
    b = rand(rng, (n, k) if trans_b else (k, n), dtype)
    c = rand(rng, (m, n), dtype)
    return a, b, c


def _check_gemm(a, b, c_before, c_after, dtype, alpha, beta, trans_a, trans_b, k):
    expected = ref.gemm(a, b, c_before, alpha, beta, trans_a, trans_b)
    mag = ref.gemm_magnitude(a, b, c_before, alpha, beta, trans_a, trans_b)
    assert_close(c_after, expected, dtype, k=k, mag=mag, msg="gemm")


@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("m,n,k", GEMM_SHAPES)
def test_gemm_shapes_and_transposes(rng, dtype, m, n, k, trans_a, trans_b):
    a, b, c = _operands(rng, m, n, k, dtype, trans_a, trans_b)
    c0 = c.copy()
    out = core().gemm(a, b, c, alpha=1.0, beta=0.0, trans_a=trans_a, trans_b=trans_b)
    assert out is c or np.shares_memory(out, c)
    _check_gemm(a, b, c0, c, dtype, 1.0, 0.0, trans_a, trans_b, k)


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (-0.5, 0.0), (0.3, -2.0),
                                        (0.0, 0.75), (2.0, 1.0)])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (13, 7, 31), (67, 61, 129)])
def test_gemm_alpha_beta(rng, dtype, m, n, k, alpha, beta):
    a, b, c = _operands(rng, m, n, k, dtype, False, True)
    c0 = c.copy()
    core().gemm(a, b, c, alpha=alpha, beta=beta, trans_a=False, trans_b=True)
    _check_gemm(a, b, c0, c, dtype, alpha, beta, False, True, k)


def test_gemm_beta_zero_ignores_nan_in_c(rng, dtype):
    # BLAS convention (and fastmlp.h): beta == 0 means C's old contents are not read.
    a, b, _ = _operands(rng, 17, 13, 7, dtype, False, False)
    c = np.full((17, 13), np.nan, dtype=dtype)
    core().gemm(a, b, c, alpha=1.0, beta=0.0)
    assert np.all(np.isfinite(c))
    _check_gemm(a, b, None, c, dtype, 1.0, 0.0, False, False, 7)


def test_gemm_k_zero_scales_c(rng, dtype):
    # An empty sum: C := beta * C.
    a = np.zeros((5, 0), dtype=dtype)
    b = np.zeros((0, 3), dtype=dtype)
    c = rand(rng, (5, 3), dtype)
    c0 = c.copy()
    core().gemm(a, b, c, alpha=1.0, beta=0.5)
    assert_close(c, 0.5 * c0.astype(np.float64), dtype, msg="k=0, beta=0.5")
    core().gemm(a, b, c, alpha=1.0, beta=0.0)
    assert np.all(c == 0)


@pytest.mark.parametrize("m,n", [(0, 5), (5, 0), (0, 0)])
def test_gemm_empty_output(rng, dtype, m, n):
    a = rand(rng, (m, 4), dtype)
    b = rand(rng, (4, n), dtype)
    c = np.zeros((m, n), dtype=dtype)
    core().gemm(a, b, c)
    assert c.shape == (m, n)


@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
def test_gemm_strided_views(rng, dtype, trans_a, trans_b):
    # Every operand a slice with steps: a transpose is a stride swap, no copy needed.
    m, n, k = 13, 17, 31
    big_a = rand(rng, (3 * max(m, k) + 2, 3 * max(m, k) + 3), dtype)
    big_b = rand(rng, (3 * max(n, k) + 2, 3 * max(n, k) + 3), dtype)
    big_c = rand(rng, (2 * m + 3, 3 * n + 1), dtype)
    sa = (k, m) if trans_a else (m, k)
    sb = (n, k) if trans_b else (k, n)
    a = big_a[1::3, ::2][:sa[0], :sa[1]]
    b = big_b[::2, 2::3][:sb[0], :sb[1]]
    c = big_c[1::2, ::3][:m, :n]
    assert a.shape == sa and b.shape == sb and c.shape == (m, n)
    assert not a.flags.c_contiguous and not c.flags.c_contiguous
    big_c_before = big_c.copy()
    c0 = c.copy()
    core().gemm(a, b, c, alpha=0.5, beta=1.5, trans_a=trans_a, trans_b=trans_b)
    _check_gemm(a, b, c0, c, dtype, 0.5, 1.5, trans_a, trans_b, k)
    # nothing outside the view of c was touched
    mask = np.ones(big_c.shape, dtype=bool)
    mask[1::2, ::3][:m, :n] = False
    np.testing.assert_array_equal(big_c[mask], big_c_before[mask])


def test_gemm_fortran_order(rng, dtype):
    m, n, k = 31, 13, 67
    a = np.asfortranarray(rand(rng, (m, k), dtype))
    b = np.asfortranarray(rand(rng, (k, n), dtype))
    c = np.asfortranarray(rand(rng, (m, n), dtype))
    c0 = c.copy()
    core().gemm(a, b, c, alpha=1.0, beta=1.0)
    assert c.flags.f_contiguous
    _check_gemm(a, b, c0, c, dtype, 1.0, 1.0, False, False, k)


def test_gemm_transposed_views(rng, dtype):
    # a.T / b.T views (Fortran-ordered) with the trans flags: op(a.T) = a.
    m, n, k = 17, 61, 7
    a = rand(rng, (m, k), dtype)
    b = rand(rng, (k, n), dtype)
    c = np.zeros((m, n), dtype=dtype)
    core().gemm(a.T, b.T, c, trans_a=True, trans_b=True)
    _check_gemm(a, b, None, c, dtype, 1.0, 0.0, False, False, k)


def test_gemm_negative_strides(rng, dtype):
    m, n, k = 7, 13, 17
    a = rand(rng, (m, k), dtype)[::-1, ::-1]
    b = rand(rng, (k, n), dtype)[::-1]
    c = np.zeros((m, n), dtype=dtype)
    core().gemm(a, b, c)
    _check_gemm(a, b, None, c, dtype, 1.0, 0.0, False, False, k)


def test_gemm_read_only_inputs(rng, dtype):
    a, b, c = _operands(rng, 13, 31, 17, dtype, False, False)
    a.setflags(write=False)
    b.setflags(write=False)
    a0, b0 = a.copy(), b.copy()
    core().gemm(a, b, c)
    _check_gemm(a, b, None, c, dtype, 1.0, 0.0, False, False, 17)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


def test_gemm_threads_bitwise(rng, dtype):
    a, b, c1 = _operands(rng, 129, 67, 257, dtype, False, False)
    c2 = c1.copy()
    core().gemm(a, b, c1, alpha=1.0, beta=0.0, n_threads=1)
    core().gemm(a, b, c2, alpha=1.0, beta=0.0, n_threads=2)
    np.testing.assert_array_equal(c1, c2)


@pytest.mark.parametrize("case", ["inner", "c_rows", "c_cols", "trans_inner"])
def test_gemm_shape_mismatch_raises(rng, case):
    d = np.float64
    a, b, c = rand(rng, (5, 4), d), rand(rng, (4, 3), d), np.zeros((5, 3), d)
    if case == "inner":
        b = rand(rng, (5, 3), d)
    elif case == "c_rows":
        c = np.zeros((4, 3), d)
    elif case == "c_cols":
        c = np.zeros((5, 4), d)
    elif case == "trans_inner":
        pass  # op(a) = a.T is (4, 5): inner 5 != 4
    with pytest.raises(ValueError):
        core().gemm(a, b, c, trans_a=(case == "trans_inner"))


def test_gemm_dtype_mismatch_raises(rng):
    a = rand(rng, (5, 4), np.float32)
    b = rand(rng, (4, 3), np.float64)
    c = np.zeros((5, 3), np.float32)
    with pytest.raises(ValueError):
        core().gemm(a, b, c)


def test_gemm_read_only_output_raises(rng):
    a, b, c = _operands(rng, 5, 3, 4, np.float64, False, False)
    c.setflags(write=False)
    with pytest.raises(ValueError):
        core().gemm(a, b, c)


def test_gemm_not_2d_raises(rng):
    a = rand(rng, (4,), np.float64)
    b = rand(rng, (4, 3), np.float64)
    c = np.zeros((1, 3))
    with pytest.raises(ValueError):
        core().gemm(a, b, c)


# -------------------------------------------------------------- activations
def act_input(rng, name, shape, dtype):
    """Inputs spread over the interesting range, away from kinks."""
    x = rng.uniform(-4.0, 4.0, size=shape)
    if name in ("relu", "leaky_relu", "elu", "selu", "softsign"):
        x = np.where(np.abs(x) < 1e-3, 0.5, x)
    if name == "hard_sigmoid":
        x = np.where(np.abs(np.abs(x) - 3.0) < 1e-3, 0.0, x)
    return x.astype(dtype)


ALPHA_CASES = [(n, None) for n in ACT_NAMES] + [("leaky_relu", 0.3), ("elu", 0.5)]


def _alpha(name, alpha):
    if alpha is not None:
        return alpha
    return {"leaky_relu": 0.2, "elu": 1.0}.get(name, 0.0)


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (3, 129)])
@pytest.mark.parametrize("name,alpha", ALPHA_CASES)
def test_act_forward(rng, dtype, name, alpha, shape):
    x = act_input(rng, name, shape, dtype)
    y = np.full(shape, np.nan, dtype=dtype)
    a = _alpha(name, alpha)
    core().act_forward(core().ACTIVATIONS[name], x, y, a)
    assert_close(y, ref.act_forward(name, x, a), dtype, msg=name)


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (3, 129)])
@pytest.mark.parametrize("name,alpha", ALPHA_CASES)
def test_act_backward(rng, dtype, name, alpha, shape):
    a = _alpha(name, alpha)
    x = act_input(rng, name, shape, dtype)
    y = ref.act_forward(name, x, a).astype(dtype)
    dy = rand(rng, shape, dtype)
    dx = np.full(shape, np.nan, dtype=dtype)
    core().act_backward(core().ACTIVATIONS[name], y, dy, dx, a)
    assert_close(dx, ref.act_backward(name, y, dy, a), dtype, k=shape[1], msg=name)


@pytest.mark.parametrize("name", ACT_NAMES)
def test_act_forward_in_place(rng, dtype, name):
    x = act_input(rng, name, (13, 7), dtype)
    expected = ref.act_forward(name, x, _alpha(name, None))
    core().act_forward(core().ACTIVATIONS[name], x, x, _alpha(name, None))
    assert_close(x, expected, dtype, msg=name)


def test_act_backward_matches_derivative_from_input(rng):
    # Guards the oracle itself: act'(x) through y equals act'(x) from x.
    for name in ACT_NAMES:
        if name == "softmax":
            continue
        x = act_input(rng, name, (5, 11), np.float64)
        y = ref.act_forward(name, x)
        np.testing.assert_allclose(ref.act_derivative_from_output(name, y),
                                   ref.act_derivative_from_input(name, x),
                                   rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "tanh", "softmax",
                                  "softsign", "hard_sigmoid", "selu", "elu"])
def test_act_forward_extreme_inputs_finite(dtype, name):
    big = 80.0 if dtype == np.float32 else 700.0
    x = np.array([[-big, -1e3 if name == "softmax" else -big, 0.0, big],
                  [1e3, 1e3 - 1.0, 1e3 - 2.0, 1e3 - 3.0]], dtype=dtype)
    if name != "softmax":
        x = np.array([[-big, -20.0, 0.0, 20.0, big]], dtype=dtype)
    y = np.empty_like(x)
    core().act_forward(core().ACTIVATIONS[name], x, y, _alpha(name, None))
    assert np.all(np.isfinite(y)), y
    assert_close(y, ref.act_forward(name, x), dtype, msg=name)


def test_softmax_rows_sum_to_one(rng, dtype):
    x = rand(rng, (17, 31), dtype, -30, 30)
    y = np.empty_like(x)
    core().act_forward(core().ACTIVATIONS["softmax"], x, y, 0.0)
    assert_close(y.astype(np.float64).sum(axis=1), np.ones(17), dtype, k=31)


def test_act_read_only_input(rng, dtype):
    x = rand(rng, (7, 5), dtype)
    x.setflags(write=False)
    y = np.empty_like(x)
    core().act_forward(core().ACTIVATIONS["tanh"], x, y, 0.0)
    assert_close(y, np.tanh(x.astype(np.float64)), dtype)
    dx = np.empty_like(x)
    y.setflags(write=False)
    core().act_backward(core().ACTIVATIONS["tanh"], y, x, dx, 0.0)
    assert_close(dx, ref.act_backward("tanh", y, x), dtype)


@pytest.mark.parametrize("act_id", [-1, 12, 99])
def test_act_unknown_id_raises(act_id):
    x = np.zeros((2, 2))
    with pytest.raises(ValueError):
        core().act_forward(act_id, x, np.empty_like(x), 0.0)
    with pytest.raises(ValueError):
        core().act_backward(act_id, x, x, np.empty_like(x), 0.0)


def test_act_shape_mismatch_raises():
    with pytest.raises(ValueError):
        core().act_forward(0, np.zeros((2, 3)), np.zeros((3, 2)), 0.0)
    with pytest.raises(ValueError):
        core().act_backward(0, np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 2)), 0.0)


def test_act_non_contiguous_or_mixed_dtype_raises():
    x = np.zeros((4, 6))[:, ::2]
    with pytest.raises(ValueError):
        core().act_forward(0, x, np.zeros((4, 3)), 0.0)
    with pytest.raises(ValueError):
        core().act_forward(0, np.zeros((2, 2)), np.zeros((2, 2), np.float32), 0.0)


# -------------------------------------------------------------------- dense
DENSE_SHAPES = [(1, 1, 1), (7, 13, 1), (13, 1, 7), (31, 17, 61), (67, 129, 13)]


@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "softmax", "tanh"])
@pytest.mark.parametrize("m,n_in,n_out", DENSE_SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_dense_forward(rng, dtype, m, n_in, n_out, act, bias):
    x = rand(rng, (m, n_in), dtype)
    w = rand(rng, (n_in, n_out), dtype)
    b = rand(rng, (n_out,), dtype) if bias else None
    z = np.full((m, n_out), np.nan, dtype=dtype)
    y = np.full((m, n_out), np.nan, dtype=dtype)
    core().dense_forward(x, w, b, core().ACTIVATIONS[act], 0.0, z, y)
    z_ref, _ = ref.dense_forward(x, w, b, act)
    mag = ref.gemm_magnitude(x, w) + (0 if b is None else np.abs(b.astype(np.float64)))
    assert_close(z, z_ref, dtype, k=n_in + 1, mag=mag, msg="z")
    # y = act(z) for the z the engine computed (activation rounding only)
    assert_close(y, ref.act_forward(act, z), dtype, k=n_out, msg="y")


@pytest.mark.parametrize("m,n_in,n_out", DENSE_SHAPES)
@pytest.mark.parametrize("with_dx,with_db", [(True, True), (False, True), (True, False)])
def test_dense_backward(rng, dtype, m, n_in, n_out, with_dx, with_db):
    x = rand(rng, (m, n_in), dtype)
    w = rand(rng, (n_in, n_out), dtype)
    dz = rand(rng, (m, n_out), dtype)
    # outputs prefilled with NaN: the contract is dw = ..., not dw += ...
    dx = np.full((m, n_in), np.nan, dtype=dtype) if with_dx else None
    dw = np.full((n_in, n_out), np.nan, dtype=dtype)
    db = np.full((n_out,), np.nan, dtype=dtype) if with_db else None
    core().dense_backward(x, w, dz, dx, dw, db)
    dx_ref, dw_ref, db_ref = ref.dense_backward(x, w, dz)
    assert_close(dw, dw_ref, dtype, k=m, mag=ref.gemm_magnitude(x, dz, trans_a=True), msg="dw")
    if with_db:
        assert_close(db, db_ref, dtype, k=m, mag=np.abs(dz.astype(np.float64)).sum(0), msg="db")
    if with_dx:
        assert_close(dx, dx_ref, dtype, k=n_out,
                     mag=ref.gemm_magnitude(dz, w, trans_b=True), msg="dx")


def test_dense_read_only_inputs(rng, dtype):
    x, w, b = rand(rng, (7, 5), dtype), rand(rng, (5, 3), dtype), rand(rng, (3,), dtype)
    for arr in (x, w, b):
        arr.setflags(write=False)
    z = np.empty((7, 3), dtype)
    y = np.empty((7, 3), dtype)
    core().dense_forward(x, w, b, core().ACTIVATIONS["tanh"], 0.0, z, y)
    assert_close(y, ref.dense_forward(x, w, b, "tanh")[1], dtype, k=6)


def test_dense_threads_bitwise(rng, dtype):
    x, w, b = rand(rng, (128, 64), dtype), rand(rng, (64, 256), dtype), rand(rng, (256,), dtype)
    outs = []
    for nt in (1, 2):
        z = np.empty((128, 256), dtype)
        y = np.empty((128, 256), dtype)
        core().dense_forward(x, w, b, core().ACTIVATIONS["relu"], 0.0, z, y, n_threads=nt)
        dx = np.empty((128, 64), dtype)
        dw = np.empty((64, 256), dtype)
        db = np.empty((256,), dtype)
        core().dense_backward(x, w, y, dx, dw, db, n_threads=nt)
        outs.append((z, y, dx, dw, db))
    for a1, a2 in zip(*outs):
        np.testing.assert_array_equal(a1, a2)


def test_dense_shape_mismatch_raises(rng):
    d = np.float64
    x, w, b = rand(rng, (4, 3), d), rand(rng, (3, 2), d), rand(rng, (2,), d)
    z, y = np.empty((4, 2)), np.empty((4, 2))
    with pytest.raises(ValueError):
        core().dense_forward(x, rand(rng, (4, 2), d), b, 0, 0.0, z, y)
    with pytest.raises(ValueError):
        core().dense_forward(x, w, rand(rng, (3,), d), 0, 0.0, z, y)
    with pytest.raises(ValueError):
        core().dense_forward(x, w, b, 0, 0.0, np.empty((4, 3)), y)
    with pytest.raises(ValueError):
        core().dense_forward(x, w, b, 42, 0.0, z, y)
    with pytest.raises(ValueError):
        core().dense_backward(x, w, np.empty((4, 3)), None, np.empty((3, 2)), None)
    with pytest.raises(ValueError):
        core().dense_backward(x, w, z, None, np.empty((2, 3)), None)


# ------------------------------------------------------------------- losses
def loss_targets(rng, loss, shape):
    """(t, labels) fitting the loss."""
    m, n = shape
    if loss == "sparse_categorical_crossentropy":
        return None, rng.integers(0, n, size=m).astype(np.int64)
    if loss == "categorical_crossentropy":
        t = rng.uniform(0, 1, size=shape)
        t[np.arange(m), rng.integers(0, n, size=m)] += 2.0
        return t / t.sum(axis=1, keepdims=True), None
    if loss == "binary_crossentropy":
        t = (rng.uniform(size=shape) > 0.5).astype(np.float64)
        t[:, 0] = rng.uniform(size=m)  # soft labels too
        return t, None
    return rng.normal(size=shape), None


def loss_logits(rng, loss, out_act, shape):
    if out_act == "linear" and loss == "binary_crossentropy":
        z = rng.uniform(0.02, 0.98, size=shape)
        z.flat[::5] = 1.3  # clipped by the 1e-7 clip: zero gradient
        return z
    if out_act == "linear" and loss == "categorical_crossentropy":
        return rng.uniform(0.1, 2.0, size=shape)
    if out_act == "hard_sigmoid":
        return rng.uniform(-2.5, 2.5, size=shape)
    z = rng.uniform(-3, 3, size=shape)
    if loss == "mean_absolute_error":
        z = np.where(np.abs(z) < 1e-3, 0.5, z)
    return z


LOSS_CASES = [
    ("mean_squared_error", "linear"), ("mean_squared_error", "tanh"),
    ("mean_squared_error", "sigmoid"), ("mean_squared_error", "softmax"),
    ("sum_squared_error", "linear"), ("sum_squared_error", "relu"),
    ("mean_absolute_error", "linear"), ("mean_absolute_error", "tanh"),
    ("binary_crossentropy", "sigmoid"), ("binary_crossentropy", "linear"),
    ("binary_crossentropy", "hard_sigmoid"), ("binary_crossentropy", "softmax"),
    ("categorical_crossentropy", "softmax"), ("categorical_crossentropy", "sigmoid"),
    ("categorical_crossentropy", "linear"),
    ("sparse_categorical_crossentropy", "softmax"),
    ("sparse_categorical_crossentropy", "sigmoid"),
]


def call_loss(name, out_act, z, t, labels, sw, grad_scale, dtype, alpha=0.0):
    c = core()
    z = np.ascontiguousarray(z, dtype=dtype)
    y = ref.act_forward(out_act, z, alpha or None).astype(dtype)
    tt = None if t is None else np.ascontiguousarray(t, dtype=dtype)
    ww = None if sw is None else np.ascontiguousarray(sw, dtype=dtype)
    dz = np.full(z.shape, np.nan, dtype=dtype)
    value = c.loss(c.LOSSES[name], c.ACTIVATIONS[out_act], z, y, tt, labels, ww, dz,
                   grad_scale, alpha)
    return value, dz, z, y, tt, ww


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (13, 1), (31, 5)])
@pytest.mark.parametrize("name,out_act", LOSS_CASES)
def test_loss(rng, dtype, name, out_act, shape, weighted):
    if name in ("categorical_crossentropy", "sparse_categorical_crossentropy") \
            and shape[1] == 1 and out_act == "softmax":
        shape = (shape[0], 2)
    z = loss_logits(rng, name, out_act, shape)
    t, labels = loss_targets(rng, name, shape)
    sw = rng.uniform(0.2, 3.0, size=shape[0]) if weighted else None
    gs = 1.0 / shape[0]
    value, dz, z, y, tt, ww = call_loss(name, out_act, z, t, labels, sw, gs, dtype)
    exp_value, exp_dz = ref.loss(name, out_act, z, tt, labels, ww, gs, dtype=dtype)
    assert isinstance(value, float)
    if np.dtype(dtype) == np.float64:
        np.testing.assert_allclose(value, exp_value, rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_allclose(value, exp_value, rtol=2e-5, atol=1e-5)
    # per-element gradients are small sums; allow the output width as k
    assert_close(dz, exp_dz, dtype, k=4 * shape[1],
                 mag=np.abs(exp_dz) + gs, msg=f"{name}/{out_act} dz")


@pytest.mark.parametrize("grad_scale", [1.0, 0.25, 3.0])
def test_loss_grad_scale_scales_dz_not_value(rng, dtype, grad_scale):
    z = rng.normal(size=(9, 3))
    t = rng.normal(size=(9, 3))
    v1, dz1, *_ = call_loss("mean_squared_error", "linear", z, t, None, None, 1.0, dtype)
    v2, dz2, *_ = call_loss("mean_squared_error", "linear", z, t, None, None, grad_scale, dtype)
    assert v1 == v2
    assert_close(dz2, grad_scale * dz1.astype(np.float64), dtype)


def test_fused_losses_finite_when_saturated(dtype):
    big = 80.0 if dtype == np.float32 else 800.0
    # sigmoid + BCE: wrong side of a saturated sigmoid costs exactly |z|
    z = np.array([[big], [-big], [big], [-big]])
    t = np.array([[0.0], [1.0], [1.0], [0.0]])
    value, dz, *_ = call_loss("binary_crossentropy", "sigmoid", z, t, None, None, 1.0, dtype)
    assert np.isfinite(value) and np.all(np.isfinite(dz))
    np.testing.assert_allclose(value, 2 * big, rtol=1e-6)
    np.testing.assert_allclose(dz[:, 0], [1.0, -1.0, 0.0, 0.0], atol=1e-6)
    # softmax + CCE on logits far apart
    z = np.array([[big, 0.0, -big], [-big, big, 0.0]])
    t = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    value, dz, *_ = call_loss("categorical_crossentropy", "softmax", z, t, None, None, 1.0, dtype)
    assert np.isfinite(value) and np.all(np.isfinite(dz))
    np.testing.assert_allclose(value, 2 * big, rtol=1e-6)
    np.testing.assert_allclose(dz, [[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]], atol=1e-6)
    labels = np.array([2, 1], dtype=np.int64)
    value, dz, *_ = call_loss("sparse_categorical_crossentropy", "softmax", z, None, labels,
                              None, 1.0, dtype)
    np.testing.assert_allclose(value, 2 * big, rtol=1e-6)


def test_unfused_bce_is_clipped_like_keras(dtype):
    # linear output 0 / 1 with the wrong target: -log(eps) and -log(1 - (1 - eps)),
    # with the clip bounds formed in the model's dtype as Keras does; finite.
    z = np.array([[0.0, 1.0]])
    t = np.array([[1.0, 0.0]])
    value, dz, *_ = call_loss("binary_crossentropy", "linear", z, t, None, None, 1.0, dtype)
    lo, hi = ref.clip_bounds(dtype)
    np.testing.assert_allclose(value, (-np.log(lo) - np.log(1 - hi)) / 2, rtol=1e-6)
    assert 15.9 < value < 16.2
    assert np.all(np.isfinite(dz))


def test_sse_is_a_sum_and_mse_a_mean(dtype):
    # The tutorial's cost: prediction 9, target 10 -> error 1, SSE 1, MSE 1.
    z = np.array([[9.0, 5.0]])
    t = np.array([[10.0, 3.0]])
    sse, dz, *_ = call_loss("sum_squared_error", "linear", z, t, None, None, 1.0, dtype)
    assert sse == 5.0                   # (-1)^2 + 2^2
    np.testing.assert_array_equal(dz, [[-2.0, 4.0]])  # 2 (y - t)
    mse, dz, *_ = call_loss("mean_squared_error", "linear", z, t, None, None, 1.0, dtype)
    assert mse == 2.5
    np.testing.assert_array_equal(dz, [[-1.0, 2.0]])


def test_loss_bad_arguments_raise(rng):
    c = core()
    d = np.float64
    z = rng.normal(size=(4, 3))
    y = z.copy()
    t = rng.normal(size=(4, 3))
    dz = np.empty_like(z)
    sparse = c.LOSSES["sparse_categorical_crossentropy"]
    mse = c.LOSSES["mean_squared_error"]
    softmax = c.ACTIVATIONS["softmax"]
    lin = c.ACTIVATIONS["linear"]
    cases = [
        (99, lin, z, y, t, None, None, dz),                                   # loss id
        (mse, 99, z, y, t, None, None, dz),                                   # act id
        (mse, lin, z, y, t[:3], None, None, dz),                              # t rows
        (mse, lin, z, y, t[:, :2].copy(), None, None, dz),                    # t cols
        (mse, lin, z, y, None, None, None, dz),                               # t missing
        (mse, lin, z, y, t, None, np.ones(3), dz),                            # weights len
        (mse, lin, z, y, t, None, None, np.empty((4, 2))),                    # dz shape
        (sparse, softmax, z, y, None, None, None, dz),                        # labels missing
        (sparse, softmax, z, y, None, np.array([0, 1, 3, 0]), None, dz),      # label >= n
        (sparse, softmax, z, y, None, np.array([0, -1, 2, 0]), None, dz),     # label < 0
        (sparse, softmax, z, y, None, np.array([0, 1, 2]), None, dz),         # labels len
    ]
    for i, (lid, aid, zz, yy, tt, lab, w, dzz) in enumerate(cases):
        if lab is not None:
            lab = lab.astype(np.int64)
        with pytest.raises(ValueError):
            c.loss(lid, aid, zz, yy, tt, lab, None if w is None else w.astype(d), dzz, 1.0, 0.0)
            pytest.fail(f"case {i} did not raise")


# ------------------------------------------------------------------ metrics
METRIC_CASES = [("binary_accuracy", 1), ("binary_accuracy", 3),
                ("categorical_accuracy", 5), ("sparse_categorical_accuracy", 5),
                ("sparse_categorical_accuracy", 2), ("mse", 3), ("mae", 1), ("mae", 4)]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name,n_out", METRIC_CASES)
def test_metric(rng, dtype, name, n_out, weighted):
    m = 37
    y = rng.uniform(0.01, 0.99, size=(m, n_out))
    y = np.where(np.abs(y - 0.5) < 1e-3, 0.7, y).astype(dtype)
    labels = None
    t = None
    if name == "sparse_categorical_accuracy":
        labels = rng.integers(0, n_out, size=m).astype(np.int64)
        labels[::3] = np.argmax(y[::3], axis=1)  # some hits
    elif name == "categorical_accuracy":
        t = np.eye(n_out)[rng.integers(0, n_out, size=m)]
        t[::3] = np.eye(n_out)[np.argmax(y[::3], axis=1)]
        t = t.astype(dtype)
    elif name == "binary_accuracy":
        t = (rng.uniform(size=(m, n_out)) > 0.5).astype(dtype)
    else:
        t = rng.normal(size=(m, n_out)).astype(dtype)
    sw = rng.uniform(0.1, 2.0, size=m).astype(dtype) if weighted else None
    num, den = core().metric(core().METRICS[name], y, t, labels, sw)
    e_num, e_den = ref.metric(name, y, t, labels, sw)
    rt = 1e-12 if np.dtype(dtype) == np.float64 else 1e-5
    np.testing.assert_allclose([num, den], [e_num, e_den], rtol=rt)
    if not weighted:
        assert den == m


def test_metric_bad_arguments_raise(rng):
    c = core()
    y = rng.uniform(size=(4, 3))
    with pytest.raises(ValueError):
        c.metric(99, y, y, None, None)
    with pytest.raises(ValueError):
        c.metric(c.METRICS["mse"], y, y[:3].copy(), None, None)
    with pytest.raises(ValueError):
        c.metric(c.METRICS["sparse_categorical_accuracy"], y, None, None, None)


# ------------------------------------------------------------ RNG, shuffle
def test_seed_rng_deterministic():
    c = core()
    s1, s2, s3 = c.seed_rng(7), c.seed_rng(7), c.seed_rng(8)
    assert s1.dtype == np.uint64 and s1.shape == (4,)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(s1, s3)


@pytest.mark.parametrize("n", [0, 1, 2, 17, 768])
def test_shuffle_is_a_permutation(n):
    c = core()
    state = c.seed_rng(123)
    before = state.copy()
    order = np.arange(n, dtype=np.int64)
    c.shuffle(order, state)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    if n > 1:
        assert not np.array_equal(state, before), "the RNG state must advance"


def test_shuffle_reproducible_and_seed_dependent():
    c = core()

    def run(seed):
        st = c.seed_rng(seed)
        orders = []
        for _ in range(3):
            o = np.arange(50, dtype=np.int64)
            c.shuffle(o, st)
            orders.append(o)
        return orders

    a, b, other = run(1), run(1), run(2)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], other[0])
    assert not np.array_equal(a[0], a[1]), "consecutive epochs must differ"


def test_shuffle_order_is_the_same_on_every_build():
    # the order of a seed is part of reproducibility: builds with and without 128-bit
    # integers (FASTMLP_NO_INT128=1, CI's generic variant) and every kernel set draw it alike
    c = core()
    st = c.seed_rng(123)
    o = np.arange(20, dtype=np.int64)
    c.shuffle(o, st)
    assert o.tolist() == [10, 13, 12, 1, 7, 19, 16, 0, 11, 6, 4, 9, 17, 15, 14, 5, 2, 8, 18, 3]
    o = np.arange(1000, dtype=np.int64)
    c.shuffle(o, st)
    assert o[:8].tolist() == [824, 775, 951, 890, 447, 417, 83, 432]


def test_shuffle_uniform():
    # 20000 shuffles of 3 items: each of the 6 orders about 3333 times
    # (sd ~53). A biased swap (j drawn from the whole range) gives 2963/3704.
    c = core()
    st = c.seed_rng(2024)
    counts = {}
    for _ in range(20000):
        o = np.arange(3, dtype=np.int64)
        c.shuffle(o, st)
        counts[tuple(o)] = counts.get(tuple(o), 0) + 1
    assert len(counts) == 6
    assert all(3083 < v < 3583 for v in counts.values()), counts


def test_shuffle_bad_arguments_raise():
    c = core()
    with pytest.raises(ValueError):
        c.shuffle(np.arange(5, dtype=np.int64), np.zeros(3, dtype=np.uint64))


def test_enum_tables_match_spec():
    c = core()
    assert c.ACTIVATIONS == ref.ACTIVATIONS
    assert c.LOSSES == ref.LOSSES
    assert c.METRICS == ref.METRICS
    assert c.OPTIMIZERS == ref.OPTIMIZERS


@pytest.mark.parametrize("dt", DTYPES)
def test_gemm_big_prime_shape(rng, dt):
    # one product beyond any cache block in all three dimensions
    m, n, k = 257, 131, 521
    a, b, c = _operands(rng, m, n, k, dt, True, False)
    c0 = c.copy()
    core().gemm(a, b, c, alpha=1.0, beta=-1.0, trans_a=True)
    _check_gemm(a, b, c0, c, dt, 1.0, -1.0, True, False, k)


@pytest.fixture
def restore_arch():
    before = core().arch()
    yield
    core()._set_arch(before)


@pytest.mark.parametrize("arch", ["generic", "avx2", "avx512"])
def test_gemm_every_kernel_set(rng, dtype, arch, restore_arch):
    # Each instruction set's kernels against the oracle and the naive C loop,
    # on shapes around the micro-tile sizes and past the cache blocks.
    if arch not in core().supported_archs():
        pytest.skip(f"this CPU lacks {arch}")
    core()._set_arch(arch)
    assert core().arch() == arch
    for (m, n, k) in [(1, 1, 1), (5, 7, 3), (15, 17, 33), (31, 49, 257), (97, 130, 65)]:
        for ta, tb in itertools.product([False, True], repeat=2):
            a, b, c = _operands(rng, m, n, k, dtype, ta, tb)
            c0, c_ref = c.copy(), c.copy()
            core().gemm(a, b, c, alpha=0.75, beta=0.5, trans_a=ta, trans_b=tb)
            _check_gemm(a, b, c0, c, dtype, 0.75, 0.5, ta, tb, k)
            core().gemm(a, b, c_ref, alpha=0.75, beta=0.5, trans_a=ta, trans_b=tb, reference=True)
            _check_gemm(a, b, c0, c_ref, dtype, 0.75, 0.5, ta, tb, k)


def test_unknown_arch_is_refused(restore_arch):
    with pytest.raises(ValueError):
        core()._set_arch("sse9")
