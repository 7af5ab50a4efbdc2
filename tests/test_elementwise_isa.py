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
