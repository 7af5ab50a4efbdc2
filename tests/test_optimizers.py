"""Optimizers: hand-worked steps to the last digit, then every update rule
against the Keras 3 reference over several steps."""

import numpy as np
import pytest

import _reference as ref
from conftest import assert_close, core, make_engine


def step(name, config, params, grads, state, iteration, offsets=None):
    c = core()
    c.optimizer_step(c.OPTIMIZERS[name], dict(config), params, grads.copy(), state,
                     iteration, offsets)


def new_state(n, dtype, fill=0.0):
    # 3 slots per parameter; Adagrad's accumulator starts at
    # initial_accumulator_value. Filling every slot works whichever slot the
    # engine uses for it.
    return np.full(3 * n, fill, dtype=dtype)


# ----------------------------------------------------------- hand-worked SGD
def test_sgd_one_step_by_hand(dtype):
    # w := w - lr * g with lr = 0.25 (a power of two: every product is exact)
    #   0.5   - 0.25 * 0.5   = 0.375
    #  -1.0   - 0.25 * (-2)  = -0.5
    #   3.0   - 0.25 * 0.125 = 2.96875
    p = np.array([0.5, -1.0, 3.0], dtype=dtype)
    g = np.array([0.5, -2.0, 0.125], dtype=dtype)
    step("sgd", {"learning_rate": 0.25}, p, g, new_state(3, dtype), 0)
    np.testing.assert_array_equal(p, np.array([0.375, -0.5, 2.96875], dtype=dtype))


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_two_steps_by_hand(dtype, nesterov):
    # Keras 3: v := momentum * v - lr * g;  w := w + v
    #          (Nesterov: w := w + momentum * v - lr * g)
    # lr = 0.25, momentum = 0.5, w0 = 1
    # step 1, g = 0.5:  v = 0.5*0 - 0.25*0.5 = -0.125
    #    plain:    w = 1 - 0.125                      = 0.875
    #    nesterov: w = 1 + 0.5*(-0.125) - 0.125       = 0.8125
    # step 2, g = 0.25: v = 0.5*(-0.125) - 0.25*0.25  = -0.125
    #    plain:    w = 0.875 - 0.125                  = 0.75
    #    nesterov: w = 0.8125 + 0.5*(-0.125) - 0.0625 = 0.6875
    cfg = {"learning_rate": 0.25, "momentum": 0.5, "nesterov": nesterov}
    p = np.array([1.0], dtype=dtype)
    st = new_state(1, dtype)
    step("sgd", cfg, p, np.array([0.5], dtype=dtype), st, 0)
    assert p[0] == (0.8125 if nesterov else 0.875)
    step("sgd", cfg, p, np.array([0.25], dtype=dtype), st, 1)
    assert p[0] == (0.6875 if nesterov else 0.75)


def test_sgd_step_on_the_tutorial_network(dtype):
    # The tutorial's network: inputs (a, b) = (2, 3), hidden kernel
    # [[1, -1], [1, 1]] (node_0 = [1, 1], node_1 = [-1, 1]), output kernel
    # [[2], [-1]], no biases, no activation, SSE cost.
    #   hidden h = (2*1 + 3*1, 2*(-1) + 3*1) = (5, 1);  y = 5*2 + 1*(-1) = 9
    # Target 10:  cost (9 - 10)^2 = 1;  dcost/dy = 2 (9 - 10) = -2
    #   dW2 = h^T * (-2)          = [[-10], [-2]]
    #   dh  = -2 * W2^T           = (-4, 2)
    #   dW1 = x^T dh = [[2*-4, 2*2], [3*-4, 3*2]] = [[-8, 4], [-12, 6]]
    # One SGD step with lr = 1/16:
    #   W1 = [[1 + 8/16, -1 - 4/16], [1 + 12/16, 1 - 6/16]] = [[1.5, -1.25], [1.75, 0.625]]
    #   W2 = [[2 + 10/16], [-1 + 2/16]]                     = [[2.625], [-0.875]]
    c = core()
    e = make_engine([2, 2, 1], ["linear", "linear"], "sum_squared_error", dtype, use_bias=False)
    (wo1, s1, bo1), (wo2, s2, bo2) = e.layout()
    assert (s1, s2, bo1, bo2) == ((2, 2), (2, 1), -1, -1)
    e.params[wo1:wo1 + 4] = [1, -1, 1, 1]
    e.params[wo2:wo2 + 2] = [2, -1]
    x = np.array([[2.0, 3.0]], dtype=dtype)
    t = np.array([[10.0]], dtype=dtype)
    loss = e.loss_and_grad(x, t, None, None)
    assert loss == 1.0
    np.testing.assert_array_equal(e.grads[wo1:wo1 + 4], [-8, 4, -12, 6])
    np.testing.assert_array_equal(e.grads[wo2:wo2 + 2], [-10, -2])
    e.set_optimizer(c.OPTIMIZERS["sgd"], ref.full_config("sgd", learning_rate=1 / 16))
    e.reset_optimizer_state()
    e.prepare(1)
    out = e.train(x, t, None, None, np.array([0], dtype=np.int64), 0, 1, 1, 0)
    status, loss_sum, n_seen = out[0], out[1], out[2]
    assert status == 0 and n_seen == 1 and loss_sum == 1.0
    np.testing.assert_array_equal(e.params[wo1:wo1 + 4], [1.5, -1.25, 1.75, 0.625])
    np.testing.assert_array_equal(e.params[wo2:wo2 + 2], [2.625, -0.875])
    assert e.iterations == 1
    # and the new prediction: h = (2*1.5 + 3*1.75, 2*-1.25 + 3*0.625) = (8.25, -0.625)
    #   y = 8.25*2.625 - 0.625*(-0.875) = 21.65625 + 0.546875 = 22.203125
    out = np.empty((1, 1), dtype=dtype)
    e.predict(x, out, 1)
    assert out[0, 0] == 22.203125


# ---------------------------------------------------------- hand-worked Adam
def test_adam_one_step_by_hand():
    # Keras 3 Adam, defaults lr = 0.001, beta_1 = 0.9, beta_2 = 0.999, eps = 1e-7,
    # first step (t = 1):
    #   alpha = lr * sqrt(1 - beta_2^1) / (1 - beta_1^1)
    #         = 0.001 * sqrt(0.001) / 0.1 = 0.01 * 0.0316227766016837933...
    #         = 3.16227766016837933e-4
    #   m = (1 - beta_1) g = 0.1 g;   v = (1 - beta_2) g^2 = 0.001 g^2
    #   w := w - alpha * m / (sqrt(v) + eps)
    # w = 0.5, g = 1:
    #   m = 0.1, sqrt(v) = 0.0316227766016837933
    #   update = 3.16227766016837933e-5 / 0.0316228766016837933
    #          = 9.999968377323398e-4          (eps shaves 3.16e-6 off lr)
    #   w = 0.5 - 9.999968377323398e-4 = 0.49900000316226766020...
    # w = -1, g = -0.5:
    #   m = -0.05, sqrt(v) = 0.0158113883008418967
    #   update = -1.58113883008418967e-5 / 0.0158114883008418967 = -9.999936754846794e-4
    #   w = -1 + 9.999936754846794e-4 = -0.99900000632451532059...
    # w = 2, g = 0.002 (small gradient: epsilon matters):
    #   m = 2e-4, sqrt(v) = 6.324555320336759e-5
    #   update = 6.324555320336759e-8 / 6.334555320336759e-5 = 9.984213572233089e-4
    #   w = 2 - 9.984213572233089e-4 = 1.99900157864277669113...
    p = np.array([0.5, -1.0, 2.0])
    g = np.array([1.0, -0.5, 0.002])
    step("adam", ref.full_config("adam"), p, g, new_state(3, np.float64), 0)
    np.testing.assert_array_equal(p, [0.49900000316226766020, -0.99900000632451532059,
                                      1.99900157864277669113])


def test_adam_one_step_by_hand_float32():
    # The same step in float32: the exact results above rounded to float32,
    # within one unit in the last place (the engine may form 1 - beta^t in float32).
    p = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    g = np.array([1.0, -0.5, 0.002], dtype=np.float32)
    step("adam", ref.full_config("adam"), p, g, new_state(3, np.float32), 0)
    expected = np.array([0.49900000316226766020, -0.99900000632451532059,
                         1.99900157864277669113], dtype=np.float32)
    ulp = np.spacing(np.abs(expected))
    assert np.all(np.abs(p - expected) <= ulp), (p, expected)


def test_adam_step_on_the_tutorial_network():
    # Gradients of the tutorial network (see the SGD test): W1 (-8, 4, -12, 6),
    # W2 (-10, -2). With |g| >= 2, each Adam first step moves a weight by
    #   lr * sqrt(0.001)|g| / (sqrt(0.001)|g| + 1e-7) ~= 0.001 (1 - 3.16e-6/|g|)
    # against the gradient's sign; exactly (float64, Keras's order of operations):
    c = core()
    e = make_engine([2, 2, 1], ["linear", "linear"], "sum_squared_error", np.float64,
                    use_bias=False)
    (wo1, _, _), (wo2, _, _) = e.layout()
    w0 = np.empty(6)
    w0[wo1:wo1 + 4] = [1, -1, 1, 1]
    w0[wo2:wo2 + 2] = [2, -1]
    e.params[:] = w0
    g = np.empty(6)
    g[wo1:wo1 + 4] = [-8, 4, -12, 6]
    g[wo2:wo2 + 2] = [-10, -2]
    expected = ref.Optimizer("adam", 6).step(w0, g)
    # e.g. the weight with g = -10: 2 + 0.001 * 0.316227766 / 0.316227866 = 2.00099999968377...
    assert abs(expected[wo2] - 2.000999999683772) < 1e-15
    e.set_optimizer(c.OPTIMIZERS["adam"], ref.full_config("adam"))
    e.reset_optimizer_state()
    e.prepare(1)
    status = e.train(np.array([[2.0, 3.0]]), np.array([[10.0]]), None, None,
                     np.array([0], dtype=np.int64), 0, 1, 1, 0)[0]
    assert status == 0
    np.testing.assert_array_equal(e.params, expected)


# --------------------------------------------- every rule vs the reference
OPT_CASES = {
    "sgd": ("sgd", {}),
    "sgd-momentum": ("sgd", {"learning_rate": 0.05, "momentum": 0.9}),
    "sgd-nesterov": ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    "sgd-decay": ("sgd", {"learning_rate": 0.1, "decay": 0.5}),
    "sgd-clipvalue": ("sgd", {"learning_rate": 0.1, "clipvalue": 0.3}),
    "adam": ("adam", {}),
    "adam-amsgrad": ("adam", {"learning_rate": 0.01, "amsgrad": True}),
    "adam-betas": ("adam", {"learning_rate": 0.02, "beta_1": 0.5, "beta_2": 0.9,
                            "epsilon": 1e-3}),
    "adam-clipnorm": ("adam", {"learning_rate": 0.01, "clipnorm": 1.0}),
    "adam-global-clipnorm": ("adam", {"learning_rate": 0.01, "global_clipnorm": 1.5}),
    "adam-decay": ("adam", {"learning_rate": 0.01, "decay": 0.1}),
    "rmsprop": ("rmsprop", {}),
    "rmsprop-momentum": ("rmsprop", {"learning_rate": 0.01, "momentum": 0.9}),
    "rmsprop-centered": ("rmsprop", {"learning_rate": 0.01, "centered": True}),
    "rmsprop-centered-momentum": ("rmsprop", {"learning_rate": 0.01, "centered": True,
                                              "momentum": 0.5, "rho": 0.8}),
    "rmsprop-clipnorm": ("rmsprop", {"clipnorm": 0.5}),
    "adagrad": ("adagrad", {}),
    "adagrad-custom": ("adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5,
                                   "epsilon": 1e-4}),
    "adagrad-decay-clipvalue": ("adagrad", {"learning_rate": 0.1, "decay": 0.2,
                                            "clipvalue": 0.5}),
}

# three "tensors" for per-tensor clipping: 7 + 2 + 6 parameters
OFFSETS = np.array([0, 7, 9, 15], dtype=np.int64)
N = 15


def _grads(rng, k):
    g = rng.normal(size=N)
    g[:7] *= 2.0      # first tensor norm ~5 (clipped by clipnorm 1)
    g[7:9] *= 0.1     # second tensor norm ~0.14 (untouched)
    g[9:] *= (0.5 + k)
    return g


@pytest.mark.parametrize("case_id", list(OPT_CASES))
def test_optimizer_matches_reference(rng, dtype, case_id):
    name, overrides = OPT_CASES[case_id]
    cfg = ref.full_config(name, **overrides)
    p = rng.normal(size=N).astype(dtype)
    oracle = ref.Optimizer(name, N, OFFSETS, **overrides)
    p_ref = p.astype(np.float64)
    p_start = p.copy()
    fill = cfg["initial_accumulator_value"] if name == "adagrad" else 0.0
    state = new_state(N, dtype, fill)
    steps = 6
    for k in range(steps):
        g = _grads(rng, k).astype(dtype)
        step(name, cfg, p, g, state, k, OFFSETS)
        p_ref = oracle.step(p_ref, g)
        assert_close(p, p_ref, dtype, k=k + 1, mag=np.abs(p_ref) + cfg["learning_rate"],
                     msg=f"{case_id} step {k + 1}")
    # the parameters really moved (clipped steps of +-0.03 may cancel on a few)
    assert np.mean(p != p_start) > 0.5


def test_clipping_modes_differ(rng):
    # Per-tensor clipnorm, global clipnorm and clipvalue give different steps
    # (so a product ignoring the offsets or a mode is caught).
    g = _grads(rng, 0)
    results = {}
    for mode, cfg in [("none", {}), ("clipnorm", {"clipnorm": 1.0}),
                      ("global", {"global_clipnorm": 1.0}), ("value", {"clipvalue": 0.1})]:
        p = np.zeros(N)
        step("sgd", ref.full_config("sgd", learning_rate=1.0, **cfg), p, g, new_state(N, np.float64),
             0, OFFSETS)
        results[mode] = -p
        np.testing.assert_allclose(-p, ref.clip_gradients(g, OFFSETS, ref.full_config("sgd", **cfg)),
                                   rtol=1e-12, atol=1e-15, err_msg=mode)
    # clipnorm per tensor: tensor 2 (small) untouched, tensor 1 scaled to norm 1
    np.testing.assert_allclose(results["clipnorm"][7:9], g[7:9], rtol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(results["clipnorm"][:7]), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(results["global"]), 1.0, rtol=1e-12)
    assert np.max(np.abs(results["value"])) <= 0.1


def test_clipnorm_without_offsets_is_one_tensor(rng):
    g = _grads(rng, 0)
    p = np.zeros(N)
    step("sgd", ref.full_config("sgd", learning_rate=1.0, clipnorm=1.0), p, g,
         new_state(N, np.float64), 0, None)
    np.testing.assert_allclose(np.linalg.norm(p), 1.0, rtol=1e-12)


def test_adam_bias_correction_uses_iteration(rng):
    # The same gradient applied at iteration 0 and at iteration 10 from the
    # same (zero) state moves the weights by different amounts.
    g = rng.normal(size=5)
    p0, p10 = np.zeros(5), np.zeros(5)
    step("adam", ref.full_config("adam"), p0, g, new_state(5, np.float64), 0)
    step("adam", ref.full_config("adam"), p10, g, new_state(5, np.float64), 10)
    assert not np.allclose(p0, p10)
    o = ref.Optimizer("adam", 5)
    o.iterations = 10
    np.testing.assert_allclose(p10, o.step(np.zeros(5), g), rtol=1e-12)


@pytest.mark.parametrize("name", ["adam", "adam_sklearn"])
@pytest.mark.parametrize("beta_1", [0.9, 0.5, 0.95])
@pytest.mark.parametrize("t", [1, 300, 399, 400, 401, 7000, 100000])
def test_adam_bias_correction_to_the_bit_at_any_step(rng, name, beta_1, t):
    # The engine skips pow(beta_1, t) where 1 - beta_1^t rounds to 1 (beta_1 <= 0.9,
    # t >= 400): the step must keep the bits of the formula with pow, on both sides of
    # that cut and for a beta_1 it does not apply to. From a zero state:
    #   m = (1 - beta_1) g, v = (1 - beta_2) g^2
    #   a = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
    #   Keras:        w := w - m a / (sqrt(v) + eps)
    #   scikit-learn: w := w + (-a m) / (sqrt(v) + eps)
    import math
    cfg = ref.full_config("adam", beta_1=beta_1)
    lr, beta_2, eps = cfg["learning_rate"], cfg["beta_2"], cfg["epsilon"]
    g = rng.normal(size=37)
    p0 = rng.normal(size=37)
    p = p0.copy()
    step(name, cfg, p, g, new_state(37, np.float64), t - 1)
    a = lr * math.sqrt(1 - math.pow(beta_2, t)) / (1 - math.pow(beta_1, t))
    m, v = g * (1 - beta_1), (g * g) * (1 - beta_2)
    if name == "adam":
        expected = p0 - m * a / (np.sqrt(v) + eps)
    else:
        expected = p0 + (-a * m) / (np.sqrt(v) + eps)
    np.testing.assert_array_equal(p, expected)


def test_optimizer_bad_arguments_raise():
    c = core()
    p, g, st = np.zeros(4), np.zeros(4), np.zeros(12)
    cfg = ref.full_config("sgd")
    with pytest.raises(ValueError):
        c.optimizer_step(17, cfg, p, g, st, 0, None)
    with pytest.raises(ValueError):
        c.optimizer_step(0, cfg, p, np.zeros(3), st, 0, None)
    with pytest.raises(ValueError):
        c.optimizer_step(0, cfg, p, g, np.zeros(4), 0, None)
    with pytest.raises(ValueError):
        c.optimizer_step(0, cfg, p, g.astype(np.float32), st, 0, None)
    with pytest.raises(ValueError):  # boundaries must start at 0 and end at n
        c.optimizer_step(0, cfg, p, g, st, 0, np.array([0, 2], dtype=np.int64))
    with pytest.raises(ValueError):  # decreasing boundaries
        c.optimizer_step(0, cfg, p, g, st, 0, np.array([0, 3, 2, 4], dtype=np.int64))


# ---------------------------------------- through the Engine, several batches
@pytest.mark.parametrize("case_id", ["sgd-momentum", "adam", "adam-clipnorm", "rmsprop-centered",
                                     "adagrad-custom", "sgd-decay"])
def test_engine_training_matches_reference(rng, dtype, case_id):
    from test_engine import reference_train, tensor_offsets
    name, overrides = OPT_CASES[case_id]
    c = core()
    units, acts, loss = [5, 7, 3], ["tanh", "softmax"], "categorical_crossentropy"
    e = make_engine(units, acts, loss, dtype, l2=[0.01, 0.0])
    net = ref.Net(e.layout(), acts, l2=[0.01, 0.0])
    p0 = rng.normal(0, 0.5, size=e.n_params)
    e.params[:] = p0
    p0 = np.array(e.params, dtype=np.float64)
    x = rng.normal(size=(23, 5)).astype(dtype)
    t = np.eye(3)[rng.integers(0, 3, 23)].astype(dtype)
    e.set_optimizer(c.OPTIMIZERS[name], ref.full_config(name, **overrides))
    e.reset_optimizer_state()
    bs = 5
    e.prepare(bs)
    oracle = ref.Optimizer(name, e.n_params, tensor_offsets(e.layout(), e.n_params), **overrides)
    p_ref = p0
    for epoch in range(2):
        order = rng.permutation(23).astype(np.int64)
        out = e.train(x, t, None, None, order, 0, 5, bs, 0)
        assert out[0] == 0
        p_ref, loss_sum, _ = reference_train(net, p_ref, oracle, x, t, None, None, order, 0, 5,
                                             bs, loss)
        assert_close(e.params, p_ref, dtype, k=10 * (epoch + 1), mag=np.abs(p_ref) + 0.1,
                     msg=f"{case_id} epoch {epoch}")
        np.testing.assert_allclose(out[1], loss_sum, rtol=1e-9 if dtype == np.float64 else 1e-4)
    assert e.iterations == 10
