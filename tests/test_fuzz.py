"""Property-based tests (hypothesis) of the ops and the public API.

Random shapes (0 and 1 included), both float dtypes and integer dtypes, strided,
reversed, Fortran-ordered and read-only arrays, NaN, infinities, huge and tiny values
and arguments of the wrong type. Every call must either return the right answer
(checked against the NumPy oracles in ``_reference.py``) or raise a clear Python
exception (ValueError, TypeError or MemoryError, with a message): never crash the
interpreter, hang, or silently return garbage.

The short profile (the default, see conftest.py) runs in CI;
``pytest tests/test_fuzz.py --hypothesis-profile=long`` runs 10 000 examples per test.
"""

import faulthandler
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, note, strategies as st
from hypothesis.extra import numpy as hnp

import _reference as ref
from conftest import assert_close, core, tolerance

# A call that hangs is a failure: dump the stacks and end the run after this many seconds.
HANG_SECONDS = 600
CLEAR_ERRORS = (ValueError, TypeError, MemoryError)

FLOATS = [np.float32, np.float64]
INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
        np.bool_]
ACTS = ["linear", "relu", "leaky_relu", "elu", "sigmoid", "hard_sigmoid", "tanh", "softplus",
        "softmax", "selu", "softsign", "exponential"]
KERAS_LOSSES = ["mean_squared_error", "sum_squared_error", "mean_absolute_error",
                "binary_crossentropy", "categorical_crossentropy",
                "sparse_categorical_crossentropy"]


@pytest.fixture(autouse=True)
def no_hang():
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def expect_clear_error(fn, *args, **kwargs):
    """Runs fn; it must raise one of CLEAR_ERRORS with a message. Returns the exception."""
    try:
        fn(*args, **kwargs)
    except CLEAR_ERRORS as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return exc
    raise AssertionError(f"{getattr(fn, '__name__', fn)} accepted invalid input")


def attempt(fn, *args, **kwargs):
    """(True, result) or (False, exception) where the exception must be a clear one."""
    try:
        return True, fn(*args, **kwargs)
    except CLEAR_ERRORS as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return False, exc


# ------------------------------------------------------------------ strategies
DIM = st.one_of(st.integers(0, 3), st.integers(0, 17), st.sampled_from([31, 33, 64, 65]))
SMALL_DIM = st.integers(0, 9)


def moderate(dtype, bound=4.0):
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False,
                     width=32 if np.dtype(dtype) == np.float32 else 64)


def extreme(dtype):
    """Values that break naive code: NaN, infinities, the largest and smallest magnitudes."""
    fi = np.finfo(dtype)
    specials = [0.0, -0.0, np.nan, np.inf, -np.inf, float(fi.max), -float(fi.max),
                float(fi.tiny), -float(fi.tiny), float(fi.smallest_subnormal),
                -float(fi.smallest_subnormal), 1e30, -1e30, 88.8, -88.8, 710.0, -745.0]
    specials = [float(dtype(v)) for v in specials if np.isfinite(dtype(v)) or not np.isfinite(v)]
    return st.one_of(st.sampled_from(specials), moderate(dtype, 100.0))


def matrix(dtype, shape, elements=None):
    return hnp.arrays(dtype, shape, elements=elements if elements is not None
                      else moderate(dtype))


@st.composite
def relaid(draw, arr, allow_readonly=True, kinds=("C", "F", "strided", "reversed")):
    """The same values as ``arr`` in another memory layout, maybe read-only."""
    kind = draw(st.sampled_from(kinds))
    if kind == "C":
        out = np.ascontiguousarray(arr).copy()
    elif kind == "F":
        out = np.asfortranarray(arr).copy()
    elif kind == "strided":
        steps = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))[:arr.ndim]
        big = np.zeros(tuple(max(s * d, 1) for s, d in zip(steps, arr.shape)), dtype=arr.dtype)
        out = big[tuple(slice(None, s * d, s) for s, d in zip(steps, arr.shape))]
        out[...] = arr
    else:
        rev = tuple(slice(None, None, -1) for _ in arr.shape)
        out = np.array(arr[rev], copy=True)[rev]
    assert out.shape == arr.shape and np.array_equal(out, arr, equal_nan=True)
    if allow_readonly and draw(st.booleans()):
        out.flags.writeable = False
    return out


def close(got, expected, dtype, k=1, mag=1.0, rtol=None, msg=""):
    """assert_close plus an absolute floor of a few smallest normals: results in the
    subnormal range carry fewer significant bits than the format's epsilon promises."""
    floor = 4 * float(np.finfo(dtype).tiny) / tolerance(dtype, k)[1]
    assert_close(got, expected, dtype, k=k, mag=np.asarray(mag, dtype=np.float64) + floor,
                 rtol=rtol, msg=msg)


def assert_matches_where_defined(got, expected, dtype, k=1, msg=""):
    """For inputs with infinities or extreme magnitudes: where the float64 oracle, rounded to
    ``dtype``, is finite the result must match it; where it is +-inf the result must be the
    same infinity; where it is NaN anything goes."""
    got = np.asarray(got, dtype=np.float64)
    with np.errstate(all="ignore"):
        exp = np.asarray(expected, dtype=np.float64).astype(dtype).astype(np.float64)
    assert got.shape == exp.shape
    finite = np.isfinite(exp)
    inf = np.isinf(exp)
    assert np.array_equal(got[inf], exp[inf]), f"{msg}: infinities differ"
    if finite.any():
        close(got[finite], exp[finite], dtype, k=k, mag=np.maximum(np.abs(exp[finite]), 1),
              msg=msg)


# ------------------------------------------------------------------------ GEMM
@given(data=st.data())
def test_gemm_matches_reference(data):
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    m, n, k = data.draw(DIM, "m"), data.draw(DIM, "n"), data.draw(DIM, "k")
    ta, tb = data.draw(st.booleans(), "trans_a"), data.draw(st.booleans(), "trans_b")
    a = data.draw(matrix(dtype, (k, m) if ta else (m, k)).flatmap(relaid), "a")
    b = data.draw(matrix(dtype, (n, k) if tb else (k, n)).flatmap(relaid), "b")
    alpha = data.draw(st.sampled_from([1.0, 0.0, -1.0, 0.5, 3.0]), "alpha")
    beta = data.draw(st.sampled_from([0.0, 1.0, -0.5, 2.0]), "beta")
    # beta == 0 must ignore C's old contents, NaN included
    c_elems = st.just(np.nan) if beta == 0 and data.draw(st.booleans()) else moderate(dtype)
    c0 = data.draw(matrix(dtype, (m, n), c_elems), "c0")
    cm = data.draw(relaid(c0, allow_readonly=False), "c")
    threads = data.draw(st.sampled_from([1, 2]), "n_threads")
    out = c.gemm(a, b, cm, alpha, beta, ta, tb, n_threads=threads)
    assert out is cm
    expected = ref.gemm(a, b, c0, alpha, beta, ta, tb)
    mag = ref.gemm_magnitude(a, b, c0 if beta else None, alpha, beta, ta, tb)
    close(cm, expected, dtype, k=max(k, 1), mag=mag, msg="gemm")


@given(data=st.data())
def test_gemm_extreme_values_never_crash(data):
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS))
    m, n, k = data.draw(SMALL_DIM), data.draw(SMALL_DIM), data.draw(SMALL_DIM)
    a = data.draw(matrix(dtype, (m, k), extreme(dtype)))
    b = data.draw(matrix(dtype, (k, n), extreme(dtype)))
    cm = np.zeros((m, n), dtype=dtype)
    c.gemm(a, b, cm)
    with np.errstate(all="ignore"):
        expected = ref.gemm(a, b)
        mag = ref.gemm_magnitude(a, b)
    # only the products of finite operands with moderate sums are order-independent; check
    # the rows and columns whose operands are all moderate
    ok_rows = np.all(np.isfinite(a) & (np.abs(a) < 1e3), axis=1)
    ok_cols = np.all(np.isfinite(b) & (np.abs(b) < 1e3), axis=0)
    sub = np.ix_(ok_rows, ok_cols)
    close(cm[sub], expected[sub], dtype, k=max(k, 1), mag=mag[sub], msg="gemm (moderate part)")


BAD_GEMM_OPERANDS = [
    ("list", lambda a: a.tolist()),
    ("int64", lambda a: a.astype(np.int64)),
    ("float16", lambda a: a.astype(np.float16)),
    ("1-D", lambda a: a.ravel()),
    ("3-D", lambda a: a[None]),
    ("None", lambda a: None),
    ("string", lambda a: "matrix"),
    ("other dtype", lambda a: a.astype(np.float64 if a.dtype == np.float32 else np.float32)),
]


@given(data=st.data())
def test_gemm_wrong_arguments_raise(data):
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS))
    m, n, k = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)), data.draw(
        st.integers(1, 6))
    a, b, cm = (np.ones((m, k), dtype), np.ones((k, n), dtype), np.zeros((m, n), dtype))
    which = data.draw(st.sampled_from(["a", "b", "c", "shape", "readonly", "alias"]))
    if which in ("a", "b", "c"):
        name, bad = data.draw(st.sampled_from(BAD_GEMM_OPERANDS))
        args = {"a": a, "b": b, "c": cm}
        args[which] = bad(args[which])
        note(f"{which} is {name}")
        expect_clear_error(c.gemm, args["a"], args["b"], args["c"])
    elif which == "shape":
        expect_clear_error(c.gemm, a, np.ones((k + 1, n), dtype), cm)
        expect_clear_error(c.gemm, a, b, np.zeros((m, n + 1), dtype))
    elif which == "readonly":
        cm.flags.writeable = False
        expect_clear_error(c.gemm, a, b, cm)
    else:  # the output overlapping an input can only give garbage: refused
        sq = np.ones((m, m), dtype)
        expect_clear_error(c.gemm, sq, sq, sq)
        expect_clear_error(c.gemm, sq, np.ones((m, m), dtype), sq.T)


# ----------------------------------------------------------------- activations
KERAS_ALPHA = {"leaky_relu": 0.2, "elu": 1.0}


def alpha_for(data, name):
    """The alpha the op gets (its Keras default or another) and the one the oracle gets."""
    if name in KERAS_ALPHA:
        alpha = data.draw(st.sampled_from([KERAS_ALPHA[name], 0.0, 0.1, 1.7]))
        return alpha, alpha
    return 0.0, None


@given(data=st.data())
def test_activation_forward_and_backward(data):
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS))
    name = data.draw(st.sampled_from(ACTS))
    shape = (data.draw(DIM), data.draw(SMALL_DIM))
    x = data.draw(matrix(dtype, shape, moderate(dtype, 30.0)).flatmap(relaid))
    alpha, ref_alpha = alpha_for(data, name)
    y = np.full(shape, np.nan, dtype=dtype)
    ok, err = attempt(c.act_forward, c.ACTIVATIONS[name], x, y, alpha)
    if not ok:
        # only layouts the op documents as unsupported may be refused
        assert not x.flags.c_contiguous, err
        return
    if 0 in shape:
        return
    expected = ref.act_forward(name, x, ref_alpha)
    close(y, expected, dtype, mag=np.maximum(np.abs(expected), 1), msg=name)
    dy = data.draw(matrix(dtype, shape))
    dx = np.full(shape, np.nan, dtype=dtype)
    c.act_backward(c.ACTIVATIONS[name], y, dy, dx, alpha)
    expected = ref.act_backward(name, y, dy, ref_alpha)
    close(dx, expected, dtype, k=max(shape[1], 1),
          mag=np.maximum(np.abs(expected), np.abs(dy)), msg=f"{name} backward")


@given(data=st.data())
def test_activation_extreme_values(data):
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS))
    name = data.draw(st.sampled_from(ACTS))
    shape = (data.draw(SMALL_DIM), data.draw(SMALL_DIM))
    x = data.draw(matrix(dtype, shape, extreme(dtype)))
    x64 = x.astype(np.float64)
    alpha, ref_alpha = alpha_for(data, name)
    # in place (y is x) or not
    y = x if data.draw(st.booleans()) else np.empty_like(x)
    c.act_forward(c.ACTIVATIONS[name], x, y, alpha)
    if 0 in shape:
        return
    with np.errstate(all="ignore"):
        expected = ref.act_forward(name, x64, ref_alpha)
    finite_rows = np.all(np.isfinite(x64), axis=1)
    # a finite input never gives NaN (softmax subtracts the row maximum)
    assert not np.any(np.isnan(y[finite_rows])), (name, x64[finite_rows], y[finite_rows])
    if np.any(np.isinf(x64)) and name in KERAS_ALPHA and alpha == 0.0:
        return  # 0 * -inf: NaN or 0 are both fair
    if name == "softmax":
        with np.errstate(all="ignore"):
            rows_ok = finite_rows & np.all(np.isfinite(x64 - x64.max(axis=1, keepdims=True)),
                                           axis=1)
        assert_matches_where_defined(y[rows_ok], expected[rows_ok], dtype, k=shape[1], msg=name)
    else:
        assert_matches_where_defined(y, expected, dtype, msg=name)


@given(data=st.data())
def test_activation_wrong_arguments_raise(data):
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS))
    x = np.ones((3, 4), dtype)
    case = data.draw(st.sampled_from(["id", "name", "int", "shape", "readonly", "overlap",
                                      "1-D", "type"]))
    if case == "id":
        expect_clear_error(c.act_forward, data.draw(st.sampled_from([-1, 12, 99, 2**40])), x,
                           np.empty_like(x))
    elif case == "name":
        expect_clear_error(c.act_forward, "swish", x, np.empty_like(x))
    elif case == "int":
        expect_clear_error(c.act_forward, 1, x.astype(data.draw(st.sampled_from(INTS))),
                           np.empty_like(x))
    elif case == "shape":
        expect_clear_error(c.act_forward, 1, x, np.empty((4, 3), dtype))
    elif case == "readonly":
        y = np.empty_like(x)
        y.flags.writeable = False
        expect_clear_error(c.act_forward, 1, x, y)
    elif case == "overlap":  # y partly over x (not the same array): refused
        buf = np.ones((5, 4), dtype)
        expect_clear_error(c.act_forward, 8, buf[:3], buf[1:4])
        expect_clear_error(c.act_backward, 4, buf[:3], buf[1:4], buf[2:5])
    elif case == "1-D":
        expect_clear_error(c.act_forward, 1, x.ravel(), np.empty(12, dtype))
    else:
        expect_clear_error(c.act_forward, 1, "x", None)


# ---------------------------------------------------------------------- dense
@given(data=st.data())
def test_dense_forward_and_backward(data):
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS))
    m, n_in, n_out = data.draw(DIM), data.draw(SMALL_DIM), data.draw(SMALL_DIM)
    name = data.draw(st.sampled_from(ACTS))
    alpha, ref_alpha = alpha_for(data, name)
    x = data.draw(matrix(dtype, (m, n_in)).flatmap(relaid))
    w = data.draw(matrix(dtype, (n_in, n_out)))
    b = data.draw(st.one_of(st.none(), matrix(dtype, (n_out,))))
    keep_z = data.draw(st.booleans())
    z = np.full((m, n_out), np.nan, dtype) if keep_z else None
    y = np.full((m, n_out), np.nan, dtype)
    c.dense_forward(x, w, b, c.ACTIVATIONS[name], alpha, z, y)
    if m == 0 or n_out == 0:
        return
    with np.errstate(all="ignore"):
        z_ref, y_ref = ref.dense_forward(x, w, b, name, ref_alpha)
    mag = ref.gemm_magnitude(x, w) + (0 if b is None else np.abs(b.astype(np.float64)))
    if keep_z:
        close(z, z_ref, dtype, k=max(n_in, 1), mag=mag, msg="z")
    # y may overflow the format (exponential): compared where the oracle fits in it
    assert_matches_where_defined(y, y_ref, dtype, k=max(n_in, 1) * int(np.max(mag) + 1),
                                 msg="y")
    dz = data.draw(matrix(dtype, (m, n_out)))
    dw = np.full((n_in, n_out), np.nan, dtype)
    db = np.full(n_out, np.nan, dtype) if data.draw(st.booleans()) else None
    dx = np.full((m, n_in), np.nan, dtype) if data.draw(st.booleans()) else None
    c.dense_backward(x, w, dz, dx, dw, db)
    dx_ref, dw_ref, db_ref = ref.dense_backward(x, w, dz)
    close(dw, dw_ref, dtype, k=max(m, 1), mag=ref.gemm_magnitude(x, dz, trans_a=True),
          msg="dw")
    if db is not None:
        close(db, db_ref, dtype, k=max(m, 1), mag=np.abs(dz.astype(np.float64)).sum(0),
              msg="db")
    if dx is not None and n_in:
        close(dx, dx_ref, dtype, k=max(n_out, 1), mag=ref.gemm_magnitude(dz, w, trans_b=True),
              msg="dx")


# --------------------------------------------------------------------- losses
def targets_for(data, loss, dtype, m, n):
    if loss == "sparse_categorical_crossentropy":
        return None, data.draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, n - 1)))
    if loss in ("binary_crossentropy", "categorical_crossentropy"):
        return data.draw(matrix(dtype, (m, n), st.sampled_from([0.0, 1.0, 0.25, 0.5]))), None
    return data.draw(matrix(dtype, (m, n))), None


@given(data=st.data())
def test_loss_matches_reference(data):
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS))
    loss = data.draw(st.sampled_from(KERAS_LOSSES))
    cce = loss in ("categorical_crossentropy", "sparse_categorical_crossentropy")
    out_act = data.draw(st.sampled_from(["softmax", "sigmoid"] if cce else
                                        ["sigmoid", "linear", "tanh", "relu", "softplus"]
                                        if loss != "binary_crossentropy" else
                                        ["sigmoid", "hard_sigmoid", "softmax"]))
    m, n = data.draw(DIM), data.draw(st.integers(1, 7))
    # a cross-entropy on probabilities (not fused with its activation) is ill-conditioned
    # near saturation: 1 - p loses the digits the oracle keeps. Fused pairs go far out.
    fused = (loss, out_act) in ref.FUSED or (cce and out_act == "softmax")
    bound = 20.0 if fused or loss not in ("binary_crossentropy", *KERAS_LOSSES[4:]) else 3.0
    z = data.draw(matrix(dtype, (m, n), moderate(dtype, bound)))
    y = np.empty_like(z)
    c.act_forward(c.ACTIVATIONS[out_act], z, y)
    t, labels = targets_for(data, loss, dtype, m, n)
    if loss == "mean_absolute_error":
        # |y - t| has a kink at y = t: its slope there depends on the last bit of y
        with np.errstate(all="ignore"):
            gap = np.abs(ref.act_forward(out_act, z) - t)
        assume(np.all(gap > 1e3 * np.finfo(dtype).eps * (np.abs(t) + 1)))
    sw = data.draw(st.one_of(st.none(), matrix(dtype, (m,), st.floats(0, 3, width=32))))
    dz = np.full((m, n), np.nan, dtype)
    scale = 1.0 / max(m, 1)
    total = c.loss(c.LOSSES[loss], c.ACTIVATIONS[out_act], z, y, t, labels, sw, dz, scale)
    assert np.isfinite(total)
    if m == 0:
        assert total == 0.0
        return
    ref_total, ref_dz = ref.loss(loss, out_act, z, t, labels, sw, scale, dtype=dtype)
    eps = np.finfo(dtype).eps
    # on probabilities, log p and log(1 - p) amplify the rounding of p by 1 / min(p, 1 - p)
    cond = 1.0
    if not fused and loss in ("binary_crossentropy", *KERAS_LOSSES[4:]):
        p_ref = ref.act_forward(out_act, z)
        cond = 1.0 + 1.0 / np.maximum(np.minimum(p_ref, 1.0 - p_ref), ref.EPSILON)
    limit = 64 * eps * max(1.0, abs(ref_total)) * max(m * n, 1) * float(np.max(cond))
    assert abs(total - ref_total) <= limit, (total, ref_total)
    close(dz, ref_dz, dtype, k=4 * n, mag=np.maximum(np.abs(ref_dz), scale) * cond,
          rtol=64 * eps, msg=f"{loss}/{out_act} dz")


@given(data=st.data())
def test_fused_losses_stay_finite_on_saturated_logits(data):
    # sigmoid + binary and softmax + categorical cross-entropy work from the logits: any
    # finite logit gives a finite loss and gradient
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS))
    loss, act = data.draw(st.sampled_from([("binary_crossentropy", "sigmoid"),
                                           ("categorical_crossentropy", "softmax"),
                                           ("sparse_categorical_crossentropy", "softmax")]))
    m, n = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    # saturated: far beyond where the sigmoid rounds to 0 or 1, but not so large that the
    # loss itself (which grows like |z|) leaves the format
    big = float(np.finfo(dtype).max) ** 0.5
    huge = st.sampled_from([big, -big, 1e4, -1e4, 0.0, 1e30 if dtype == np.float64 else 1e15])
    z = data.draw(matrix(dtype, (m, n), st.one_of(huge, moderate(dtype, 100.0))))
    y = np.empty_like(z)
    c.act_forward(c.ACTIVATIONS[act], z, y)
    t, labels = targets_for(data, loss, dtype, m, n)
    dz = np.empty_like(z)
    total = c.loss(c.LOSSES[loss], c.ACTIVATIONS[act], z, y, t, labels, None, dz, 1.0 / m)
    assert np.isfinite(total) and np.all(np.isfinite(dz)), (z, total, dz)


@given(data=st.data())
def test_metric_matches_reference(data):
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS))
    name = data.draw(st.sampled_from(list(ref.METRICS)))
    m, n = data.draw(DIM), data.draw(st.integers(1, 6))
    y = data.draw(matrix(dtype, (m, n), st.floats(0, 1, width=32)))
    if name == "sparse_categorical_accuracy":
        t, labels = None, data.draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, n - 1)))
    else:
        t, labels = data.draw(matrix(dtype, (m, n), st.sampled_from([0.0, 1.0, 0.3]))), None
    sw = data.draw(st.one_of(st.none(), matrix(dtype, (m,), st.floats(0, 2, width=32))))
    # ties in argmax may resolve either way: only fair inputs are compared
    if name in ("categorical_accuracy", "sparse_categorical_accuracy") and m:
        top = np.sort(y, axis=1)
        assume(n == 1 or np.all(top[:, -1] > top[:, -2]))
        if t is not None:
            tt = np.sort(t, axis=1)
            assume(n == 1 or np.all(tt[:, -1] > tt[:, -2]))
    if name == "binary_accuracy":
        assume(not np.any(y == 0.5))
    num, den = c.metric(c.METRICS[name], y, t, labels, sw)
    if m == 0:
        assert (num, den) == (0.0, 0.0)
        return
    rnum, rden = ref.metric(name, y, t, labels, sw)
    tol = 1e-5 * max(1.0, abs(rnum)) * m
    assert abs(num - rnum) <= tol and abs(den - rden) <= tol, ((num, den), (rnum, rden))


# ----------------------------------------------------------------- optimizers
@given(data=st.data())
def test_optimizer_steps_match_reference(data):
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS))
    name = data.draw(st.sampled_from(["sgd", "adam", "rmsprop", "adagrad"]))
    n = data.draw(st.integers(1, 40))
    cfg = {"learning_rate": data.draw(st.sampled_from([0.1, 0.01, 1e-3, 0.5]))}
    if name == "sgd":
        cfg.update(momentum=data.draw(st.sampled_from([0.0, 0.5, 0.9])),
                   nesterov=data.draw(st.booleans()))
    elif name == "adam":
        cfg.update(amsgrad=data.draw(st.booleans()))
    elif name == "rmsprop":
        cfg.update(centered=data.draw(st.booleans()),
                   momentum=data.draw(st.sampled_from([0.0, 0.5])))
    clip = data.draw(st.sampled_from([None, "clipnorm", "clipvalue", "global_clipnorm"]))
    if clip:
        cfg[clip] = data.draw(st.sampled_from([0.1, 1.0, 5.0]))
    params = data.draw(matrix(dtype, (n,)))
    r = ref.Optimizer(name, n, **cfg)
    p_ref = params.astype(np.float64)
    state = np.zeros(3 * n, dtype)
    if name == "adagrad":
        state[:] = ref.full_config("adagrad")["initial_accumulator_value"]
    steps = data.draw(st.integers(1, 4))
    for it in range(steps):
        g = data.draw(matrix(dtype, (n,)))
        c.optimizer_step(c.OPTIMIZERS[name], dict(cfg), params, g.copy(), state, it)
        p_ref = r.step(p_ref, g)
    eps = np.finfo(dtype).eps
    # rounding differs between float32 and the float64 oracle by a few ulps per step, scaled
    # by the largest update (lr / sqrt(eps-sized moments) can amplify in the first steps)
    close(params, p_ref, dtype, mag=1 + np.abs(p_ref), rtol=256 * eps * steps,
          msg=f"{name} {cfg}")


@given(data=st.data())
def test_optimizer_wrong_settings_raise(data):
    c = core()
    p = np.zeros(4)
    key, value = data.draw(st.sampled_from([
        ("learning_rate", -1.0), ("learning_rate", float("nan")), ("learning_rate", float("inf")),
        ("beta_1", 1.0), ("beta_2", -0.1), ("rho", 2.0), ("momentum", -0.5), ("epsilon", -1e-7),
        ("clipnorm", -1.0), ("nonsense", 1.0), ("learning_rate", "fast")]))
    expect_clear_error(c.optimizer_step, c.OPTIMIZERS["adam"], {key: value}, p, np.zeros(4),
                       np.zeros(12), 0)


@given(data=st.data())
def test_shuffle_is_a_permutation(data):
    c = core()
    n = data.draw(st.integers(0, 300))
    order = np.arange(n, dtype=np.int64)
    state = c.seed_rng(data.draw(st.integers(-2**70, 2**70)))
    c.shuffle(order, state)
    assert np.array_equal(np.sort(order), np.arange(n))


# ----------------------------------------------------------------- the engine
@given(data=st.data())
def test_engine_rejects_bad_descriptions(data):
    c = core()
    case = data.draw(st.sampled_from(["width0", "huge", "overflow", "act", "dropout", "l2",
                                      "loss", "dtype", "count"]))
    units, acts, loss, dtype = [3, 4, 1], [1, 4], 3, np.float32
    dropout, l2 = [0.0, 0.0], [0.0, 0.0]
    if case == "width0":
        units = [3, 0, 1]
    elif case == "huge":
        units = [3, 10**12, 1]
    elif case == "overflow":
        units = [2**40, 2**40, 2**40]
    elif case == "act":
        acts = [1, 99]
    elif case == "dropout":
        dropout = [0.0, data.draw(st.sampled_from([1.0, -0.1, float("nan")]))]
    elif case == "l2":
        l2 = [0.0, data.draw(st.sampled_from([-1.0, float("nan"), float("inf")]))]
    elif case == "loss":
        loss = data.draw(st.sampled_from([-1, 99]))
    elif case == "dtype":
        dtype = data.draw(st.sampled_from([np.int32, np.float16, "complex128"]))
    else:
        acts = [1]
    expect_clear_error(c.Engine, units, acts, [0.0] * len(acts), [True] * len(acts), dropout,
                       [0.0] * len(acts), l2, loss, dtype)


@given(data=st.data())
def test_engine_train_rejects_bad_orderings(data):
    # the epoch ordering indexes the caller's rows: any out-of-range entry is refused
    c = core()
    dtype = data.draw(st.sampled_from(FLOATS))
    e = c.Engine([3, 2], [0], [0.0], [True], [0.0], [0.0], [0.0], 0, dtype)
    n = data.draw(st.integers(1, 20))
    x, t = np.ones((n, 3), dtype), np.ones((n, 2), dtype)
    order = np.arange(n, dtype=np.int64)
    order[data.draw(st.integers(0, n - 1))] = data.draw(
        st.sampled_from([-1, n, n + 1000, 2**62, -2**63]))
    before = e.params.copy()
    expect_clear_error(e.train, x, t, None, None, order, 0, 1, n, 0)
    assert np.array_equal(e.params, before)
    expect_clear_error(e.prepare, 2**62)


# -------------------------------------------------------------- the public API
@st.composite
def models(draw):
    from fastmlp import MLP, initializers
    from fastmlp.layers import Dense
    dtype = draw(st.sampled_from(FLOATS))
    n_in = draw(st.integers(1, 6))
    widths = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    acts = [draw(st.sampled_from(ACTS)) for _ in widths]
    bias = [draw(st.booleans()) for _ in widths]
    init = initializers.RandomUniform(-1.0, 1.0, seed=draw(st.integers(0, 100)))
    layers = [Dense(w, activation=a, use_bias=b, kernel_initializer=init, bias_initializer=init,
                    input_dim=n_in if i == 0 else None)
              for i, (w, a, b) in enumerate(zip(widths, acts, bias))]
    model = MLP(layers, dtype=dtype, seed=draw(st.integers(0, 2**31 - 1)))
    model.build(n_in)
    return model, n_in, widths, acts


def reference_predict(model, x, acts):
    """The float64 oracle, and which rows stay within the model dtype's range at every layer
    (a row that overflows on the way can turn inf - inf into NaN in the model's dtype, where
    the float64 oracle may come back into range or reach a clean infinity)."""
    h = np.asarray(x, dtype=np.float64)
    big = float(np.finfo(model.dtype).max)
    in_range = np.ones(len(h), dtype=bool)
    for layer, act in zip(model.layers, acts):
        weights = layer.get_weights()
        b = weights[1] if len(weights) > 1 else None
        with np.errstate(all="ignore"):
            z, h = ref.dense_forward(h, weights[0], b, act)
            in_range &= np.all(np.abs(z) <= big, axis=1) & np.all(np.abs(h) <= big, axis=1)
    return h, in_range


@st.composite
def features(draw, n_in, n_max=9):
    """x of any real dtype and layout (values representable in float32 after the cast)."""
    dtype = draw(st.sampled_from(FLOATS + INTS + [np.float16]))
    n = draw(st.integers(1, n_max))
    if np.dtype(dtype).kind == "f":
        x = draw(hnp.arrays(dtype, (n, n_in), elements=st.floats(-3, 3, width=16)))
    elif dtype == np.bool_:
        x = draw(hnp.arrays(dtype, (n, n_in)))
    else:
        x = draw(hnp.arrays(dtype, (n, n_in), elements=st.integers(0, 3)))
    return draw(relaid(x))


@given(data=st.data())
def test_predict_matches_reference(data):
    model, n_in, widths, acts = data.draw(models())
    x = data.draw(features(n_in))
    batch = data.draw(st.one_of(st.integers(1, 12), st.just(10**12)))
    out = model.predict(x, batch_size=batch)
    assert out.shape == (len(x), widths[-1]) and out.dtype == model.dtype
    expected, in_range = reference_predict(model, x, acts)
    dtype = model.dtype.type
    assert_matches_where_defined(out[in_range], expected[in_range], dtype,
                                 k=8 * max(widths + [n_in]) ** 2, msg="predict")


BAD_FEATURES = [
    ("empty", lambda n_in: np.zeros((0, n_in))),
    ("NaN", lambda n_in: np.full((2, n_in), np.nan)),
    ("inf", lambda n_in: np.full((2, n_in), np.inf)),
    ("overflows float32", lambda n_in: np.full((2, n_in), 1e300)),
    ("1-D", lambda n_in: np.zeros(n_in)),
    ("3-D", lambda n_in: np.zeros((2, n_in, 1))),
    ("wrong width", lambda n_in: np.zeros((2, n_in + 1))),
    ("string", lambda n_in: "data"),
    ("strings", lambda n_in: np.array([["a"] * n_in])),
    ("complex", lambda n_in: np.zeros((2, n_in), np.complex128)),
    ("objects", lambda n_in: np.array([[object()] * n_in], dtype=object)),
    ("None", lambda n_in: None),
    ("dict", lambda n_in: {"x": 1}),
    ("ragged", lambda n_in: [[1.0] * n_in, [1.0] * (n_in + 1)]),
    ("datetime", lambda n_in: np.zeros((2, n_in), "datetime64[s]")),
]


@given(data=st.data())
def test_bad_features_raise_clearly(data):
    model, n_in, widths, acts = data.draw(models())
    name, make = data.draw(st.sampled_from(BAD_FEATURES))
    note(name)
    if model.dtype == np.float64 and name == "overflows float32":
        return
    expect_clear_error(model.predict, make(n_in))


@given(data=st.data())
def test_fit_then_evaluate(data):
    from fastmlp import MLP
    from fastmlp.layers import Dense
    dtype = data.draw(st.sampled_from(FLOATS))
    loss = data.draw(st.sampled_from(KERAS_LOSSES))
    n_in, n_out = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    out_act = {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax",
               "sparse_categorical_crossentropy": "softmax"}.get(
        loss, data.draw(st.sampled_from(["linear", "tanh", "relu"])))
    if loss == "sparse_categorical_crossentropy":
        n_out = max(n_out, 2)
    hidden = data.draw(st.sampled_from(ACTS[:8]))
    model = MLP([Dense(data.draw(st.integers(1, 6)), activation=hidden, input_dim=n_in),
                 Dense(n_out, activation=out_act)],
                loss=loss, optimizer=data.draw(st.sampled_from(["sgd", "adam", "rmsprop",
                                                                 "adagrad"])),
                metrics=["mae"] if "sparse" not in loss else ["accuracy"], dtype=dtype,
                seed=data.draw(st.integers(0, 1000)))
    x = data.draw(features(n_in, n_max=30))
    n = len(x)
    if loss == "sparse_categorical_crossentropy":
        y = data.draw(hnp.arrays(data.draw(st.sampled_from([np.int64, np.int8, np.uint16,
                                                             np.float32])),
                                 (n,), elements=st.integers(0, n_out - 1)))
    elif loss in ("binary_crossentropy", "categorical_crossentropy"):
        y = data.draw(hnp.arrays(np.float64, (n, n_out), elements=st.sampled_from([0.0, 1.0])))
    else:
        y = data.draw(hnp.arrays(np.float64, (n, n_out), elements=st.floats(-2, 2)))
    if n_out == 1 and data.draw(st.booleans()):
        y = y[:, 0]
    before = model.get_weights()
    batch = data.draw(st.one_of(st.integers(1, n + 3), st.just(10**12)))
    ok, result = attempt(model.fit, x, y, epochs=data.draw(st.integers(0, 3)),
                         batch_size=batch, verbose=0)
    if not ok:
        # the only acceptable failure on finite, valid data: the loss diverged; the weights
        # are then restored
        from fastmlp.mlp import NonFiniteLossError
        assert isinstance(result, NonFiniteLossError), result
        assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
        return
    weights = model.get_weights()
    assert all(np.all(np.isfinite(w)) for w in weights)
    for values in result.history.values():
        assert all(np.isfinite(v) for v in values)
    evaluated = model.evaluate(x, y, batch_size=data.draw(st.integers(1, n + 2)), verbose=0)
    # the loss evaluate reports equals the oracle's on the trained weights
    engine = model._engine
    net = ref.Net(engine.layout(), [hidden, out_act])
    z = net.forward(engine.params, np.asarray(x, dtype=np.float64))[0][-1]
    t = labels = None
    if loss == "sparse_categorical_crossentropy":
        labels = np.asarray(y, dtype=np.int64)
    else:
        t = np.asarray(y, dtype=np.float64).reshape(n, n_out)
    if loss == "sum_squared_error":  # a plain sum per batch: depends on the batching
        return
    total, _ = ref.loss(loss, out_act, z, t, labels, dtype=dtype)
    expected = total / n
    eps = np.finfo(dtype).eps
    assert abs(evaluated[0] - expected) <= 1e3 * eps * max(1.0, abs(expected)), \
        (evaluated, expected)


@given(data=st.data())
def test_fit_bad_arguments_raise_and_change_nothing(data):
    from fastmlp import MLP
    from fastmlp.layers import Dense
    model = MLP([Dense(3, input_dim=2, activation="relu"), Dense(1, activation="sigmoid")],
                loss="binary_crossentropy", optimizer="adam", seed=1)
    x = np.random.default_rng(0).normal(size=(10, 2))
    y = (x[:, 0] > 0).astype(float)
    model.fit(x, y, epochs=1, verbose=0)
    before = model.get_weights()
    state = model._engine.opt_state.copy()
    case = data.draw(st.sampled_from([
        {"x": x[:5]}, {"y": y[:5]}, {"y": y + 2}, {"y": np.full(10, np.nan)},
        {"batch_size": 0}, {"batch_size": -3}, {"batch_size": 2.5}, {"batch_size": "32"},
        {"epochs": -1}, {"epochs": None}, {"validation_split": 1.5},
        {"validation_split": float("nan")}, {"sample_weight": -np.ones(10)},
        {"sample_weight": np.ones(3)}, {"class_weight": [1, 2]}, {"verbose": 7},
        {"validation_data": (x, )}, {"validation_data": (x[:, :1], y)},
        {"x": np.full((10, 2), np.inf)}, {"x": x.astype(np.complex64)}, {"y": "labels"},
        {"callbacks": [object()]}, {"initial_epoch": -1},
    ]))
    note(repr(case))
    kwargs = {"x": x, "y": y, "epochs": 2, "batch_size": 4, "verbose": 0, **case}
    expect_clear_error(model.fit, kwargs.pop("x"), kwargs.pop("y"), **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    assert np.array_equal(model._engine.opt_state, state)
