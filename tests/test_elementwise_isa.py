"""The element-wise kernels of training (activation backward, bias gradient, optimizer
updates) are compiled once per instruction set; each set must give the generic kernels'
results bit for bit, at sizes that exercise full vectors, masked tails and scalars."""

import numpy as np
import pytest

import _reference as ref
from conftest import core
from test_optimizers import OPT_CASES

SHAPES = [(1, 1), (3, 5), (10, 16), (7, 33), (2, 129)]
SIZES = [1, 7, 16, 17, 100, 289]


def other_archs():
    return [a for a in core().supported_archs() if a != "generic"]


@pytest.fixture
def on_arch():
    """Runs a function under a forced kernel set, restoring the one chosen at import."""
    c = core()
    before = c.arch()

    def run(arch, fn):
        c._set_arch(arch)
        try:
            return fn()
        finally:
            c._set_arch(before)

    return run


def _act_case(rng, name, shape, dtype):
    x = rng.normal(scale=2.0, size=shape)
    x[0, 0] = 0.0  # the kink of relu-like activations
    alpha = {"leaky_relu": 0.2, "elu": 1.0}.get(name, 0.0)
    y = ref.act_forward(name, x, alpha).astype(dtype)
    dy = rng.normal(size=shape).astype(dtype)
    return y, dy, alpha


@pytest.mark.parametrize("name", list(ref.ACTIVATIONS))
def test_act_backward_same_bits_on_every_arch(rng, dtype, name, on_arch):
    if not other_archs():
        pytest.skip("only the generic kernels run on this machine")
    c = core()
    for shape in SHAPES:
        y, dy, alpha = _act_case(rng, name, shape, dtype)

        def run(in_place):
            dx = dy.copy() if in_place else np.full(shape, np.nan, dtype=dtype)
            c.act_backward(c.ACTIVATIONS[name], y, dx if in_place else dy, dx, alpha)
            return dx

        for in_place in (False, True):
            want = on_arch("generic", lambda: run(in_place))
            assert np.all(np.isfinite(want))
            for arch in other_archs():
                got = on_arch(arch, lambda: run(in_place))
                np.testing.assert_array_equal(got, want, err_msg=f"{name} {shape} {arch}")


def test_bias_gradient_same_bits_on_every_arch(rng, dtype, on_arch):
    if not other_archs():
        pytest.skip("only the generic kernels run on this machine")
    c = core()
    for m, n_in, n_out in [(1, 1, 1), (10, 8, 1), (10, 16, 8), (37, 5, 33), (3, 2, 129)]:
        x = rng.normal(size=(m, n_in)).astype(dtype)
        w = rng.normal(size=(n_in, n_out)).astype(dtype)
        dz = rng.normal(size=(m, n_out)).astype(dtype)

        def run():
            dw = np.empty((n_in, n_out), dtype)
            db = np.full(n_out, np.nan, dtype)
            c.dense_backward(x, w, dz, None, dw, db)
            return db

        want = on_arch("generic", run)
        np.testing.assert_allclose(want, dz.astype(np.float64).sum(0),
                                   rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
        for arch in other_archs():
            np.testing.assert_array_equal(on_arch(arch, run), want, err_msg=f"{m}x{n_out}")


@pytest.mark.parametrize("case_id", list(OPT_CASES))
def test_optimizer_same_bits_on_every_arch(rng, dtype, case_id, on_arch):
    if not other_archs():
        pytest.skip("only the generic kernels run on this machine")
    c = core()
    name, overrides = OPT_CASES[case_id]
    cfg = ref.full_config(name, **overrides)
    for n in SIZES:
        p0 = rng.normal(size=n).astype(dtype)
        grads = [rng.normal(size=n).astype(dtype) for _ in range(4)]
        fill = cfg["initial_accumulator_value"] if name == "adagrad" else 0.0

        def run():
            p, state = p0.copy(), np.full(3 * n, fill, dtype=dtype)
            for k, g in enumerate(grads):
                c.optimizer_step(c.OPTIMIZERS[name], dict(cfg), p, g.copy(), state, k)
            return p, state

        want_p, want_s = on_arch("generic", run)
        assert np.any(want_p != p0)
        for arch in other_archs():
            got_p, got_s = on_arch(arch, run)
            np.testing.assert_array_equal(got_p, want_p, err_msg=f"{case_id} n={n} {arch}")
            np.testing.assert_array_equal(got_s, want_s, err_msg=f"{case_id} n={n} {arch}")


# ------------------------------------------------ float32 e^x and log(1 + u) without libm
def _ulp_error(got, want):
    """|got - want| in units of float32 ulp at want (want in float64; subnormals absolute)."""
    want = np.asarray(want, np.float64)
    spacing = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    spacing = np.maximum(spacing, np.float64(np.finfo(np.float32).smallest_subnormal))
    return np.abs(got.astype(np.float64) - want) / spacing


def _dense_grid():
    x = np.concatenate([np.linspace(-110, 110, 200_001), np.linspace(-1e-3, 1e-3, 2001),
                        [0.0, -0.0, 88.72, 88.73, -87.33, -103.9, -104.0, 1e30, -1e30]])
    return x.astype(np.float32)


@pytest.mark.parametrize("arch", ["generic", "avx2", "avx512"])
def test_float32_sigmoid_is_accurate_everywhere(arch, on_arch):
    c = core()
    if arch not in c.supported_archs():
        pytest.skip(f"the {arch} kernels are not usable on this machine")
    x = _dense_grid().reshape(1, -1)
    y = np.empty_like(x)
    on_arch(arch, lambda: c.act_forward(c.ACTIVATIONS["sigmoid"], x, y, 0.0))
    assert np.all((y >= 0) & (y <= 1))
    assert _ulp_error(y, ref.act_forward("sigmoid", x)).max() <= 3
    z = np.array([[np.nan, np.inf, -np.inf]], np.float32)
    out = np.empty_like(z)
    on_arch(arch, lambda: c.act_forward(c.ACTIVATIONS["sigmoid"], z, out, 0.0))
    assert np.isnan(out[0, 0]) and out[0, 1] == 1 and out[0, 2] == 0


def test_float32_sigmoid_of_a_few_elements_has_the_bits_of_a_long_array(on_arch):
    # a few elements (a binary classifier's batch) run in the vector loop's scalar or
    # narrower tail: each must come out as it does inside a long array, on every kernel set,
    # for the grid's values (both arms of the logistic, subnormals, saturation, NaN, +-inf)
    c = core()
    dense = _dense_grid()
    grid = np.concatenate([dense[:-9:499], dense[-9:],  # the special values at its end
                           np.array([np.nan, np.inf, -np.inf], np.float32)])
    sig = c.ACTIVATIONS["sigmoid"]
    for arch in c.supported_archs():
        whole = np.empty((1, grid.size), np.float32)
        on_arch(arch, lambda: c.act_forward(sig, grid.reshape(1, -1), whole, 0.0))
        for n in (1, 2, 7, 10, 15, 16, 17):
            for start in range(0, grid.size - n + 1, 3):
                x = grid[start:start + n].reshape(1, n).copy()
                y = np.empty_like(x)
                on_arch(arch, lambda: c.act_forward(sig, x, y, 0.0))
                np.testing.assert_array_equal(y[0], whole[0, start:start + n],
                                              err_msg=f"{arch} n={n} at {start}")
                on_arch(arch, lambda: c.act_forward(sig, x, x, 0.0))  # in place
                np.testing.assert_array_equal(x, y, err_msg=f"{arch} n={n} in place")


@pytest.mark.parametrize("arch", ["generic", "avx2", "avx512"])
def test_float32_softmax_is_accurate(rng, arch, on_arch):
    c = core()
    if arch not in c.supported_archs():
        pytest.skip(f"the {arch} kernels are not usable on this machine")
    x = (rng.normal(scale=30.0, size=(200, 37))).astype(np.float32)
    y = np.empty_like(x)
    on_arch(arch, lambda: c.act_forward(c.ACTIVATIONS["softmax"], x, y, 0.0))
    # from the float32 differences x - max(x), as the kernel forms them (their rounding,
    # up to |x - max| * 2^-24, is amplified by e^x alike in any float32 softmax)
    e = np.exp((x - x.max(1, keepdims=True)).astype(np.float64))
    want = e / e.sum(1, keepdims=True)
    assert _ulp_error(y, want).max() <= 4


@pytest.mark.parametrize("arch", ["generic", "avx2", "avx512"])
def test_float32_fused_bce_is_accurate(arch, on_arch):
    c = core()
    if arch not in c.supported_archs():
        pytest.skip(f"the {arch} kernels are not usable on this machine")
    z = _dense_grid()[:-2].reshape(-1, 1)  # the loss of 1e30 logits is 1e30: not ulp-sized
    n = z.shape[0]
    for target in (0.0, 1.0, 0.3):
        t = np.full_like(z, target)
        y = np.empty_like(z)
        c.act_forward(c.ACTIVATIONS["sigmoid"], z, y, 0.0)
        dz = np.empty_like(z)
        total = on_arch(arch, lambda: c.loss(c.LOSSES["binary_crossentropy"],
                                            c.ACTIVATIONS["sigmoid"], z, y, t, None, None, dz,
                                            1.0 / n))
        z64, t64 = z.astype(np.float64), t.astype(np.float64)
        per_row = np.maximum(z64, 0) - z64 * t64 + np.log1p(np.exp(-np.abs(z64)))
        np.testing.assert_allclose(total, per_row.sum(), rtol=1e-6)
        # each element's softplus term alone: 2 ulp of log(1 + e^-|z|)
        zero_t = np.zeros((1, 1), np.float32)
        for zi in z64[:: max(1, n // 5000), 0]:
            one = np.array([[zi]], np.float32)
            yy = np.empty_like(one)
            c.act_forward(c.ACTIVATIONS["sigmoid"], one, yy, 0.0)
            got = on_arch(arch, lambda: c.loss(c.LOSSES["binary_crossentropy"],
                                              c.ACTIVATIONS["sigmoid"], one, yy, zero_t, None,
                                              None, np.empty_like(one), 1.0))
            want = max(float(one[0, 0]), 0.0) + np.log1p(np.exp(-abs(float(one[0, 0]))))
            assert abs(got - want) <= 2.5 * np.spacing(np.float32(want)) + 1e-45, (zi, got, want)
        np.testing.assert_allclose(dz, (y.astype(np.float64) - t64) / n, rtol=1e-6, atol=1e-30)


# ------------------------------------- the operation order of each activation's backward
def _backward_in_order(name, y, g, a):
    """dX as the kernels compute it, operation for operation, in the arrays' own dtype."""
    one, zero = y.dtype.type(1), y.dtype.type(0)
    a = y.dtype.type(a)
    six = y.dtype.type(6)
    selu_scale = y.dtype.type(1.0507009873554804934193349852946)
    selu_sa = y.dtype.type(1.0507009873554804934193349852946 * 1.6732632423543772848170429916717)
    return {
        "linear": lambda: g.copy(),
        "relu": lambda: np.where(y > 0, g, zero),
        "leaky_relu": lambda: np.where(y > 0, g, a * g),
        "elu": lambda: np.where(y > 0, g, g * (y + a)),
        "sigmoid": lambda: g * y * (one - y),
        "hard_sigmoid": lambda: np.where((y > 0) & (y < 1), g / six, zero),
        "tanh": lambda: g * (one - y * y),
        "selu": lambda: np.where(y > 0, g * selu_scale, g * (y + selu_sa)),
        "softsign": lambda: g * (one - np.abs(y)) * (one - np.abs(y)),
        "exponential": lambda: g * y,
    }.get(name)


@pytest.mark.parametrize("name", list(ref.ACTIVATIONS))
def test_act_backward_keeps_its_operation_order(rng, dtype, name, on_arch):
    # the exact bits of the element-wise formulas (no contraction into FMA, no reordering),
    # on every kernel set, in place and not
    c = core()
    y, g, alpha = _act_case(rng, name, (7, 33), dtype)
    want = _backward_in_order(name, y, g, alpha)
    if want is None:
        pytest.skip(f"{name}'s backward calls libm or sums a row")
    want = want()
    for arch in ["generic"] + other_archs():
        for in_place in (False, True):
            dx = g.copy() if in_place else np.empty_like(g)
            on_arch(arch, lambda: c.act_backward(c.ACTIVATIONS[name], y, dx if in_place else g,
                                                 dx, alpha))
            np.testing.assert_array_equal(dx, want, err_msg=f"{name} {arch} in_place={in_place}")
