"""``_core.Engine``, the one training engine: layout, predict, evaluate,
train (against a step-by-step NumPy replay), non-finite losses, dropout."""

import numpy as np
import pytest

import _reference as ref
from conftest import assert_close, core, engine_alphas, make_engine, param_count


def tensor_offsets(layout, n_params):
    """Tensor boundaries [0, ..., n] of the flat parameter vector."""
    bounds = {0, n_params}
    for wo, (ni, no), bo in layout:
        bounds.update((wo, wo + ni * no))
        if bo >= 0:
            bounds.update((bo, bo + no))
    return sorted(bounds)


def reference_train(net, params, oracle, x, t, labels, sw, order, first_batch, n_batches, bs,
                    loss_name, metrics=()):
    """Replays Engine.train step by step in float64.
    Returns (params, loss_sum, metric sums [(num, den), ...])."""
    n = len(order)
    loss_sum = 0.0
    sums = [[0.0, 0.0] for _ in metrics]
    for b in range(first_batch, first_batch + n_batches):
        idx = np.asarray(order[b * bs:min((b + 1) * bs, n)])
        xb = np.asarray(x, dtype=np.float64)[idx]
        tb = None if t is None else np.asarray(t, dtype=np.float64)[idx]
        lb = None if labels is None else labels[idx]
        wb = None if sw is None else np.asarray(sw, dtype=np.float64)[idx]
        yb = net.predict(params, xb)
        for s, m in zip(sums, metrics):
            num, den = ref.metric(m, yb, tb, lb, wb)
            s[0] += num
            s[1] += den
        value, grad = net.loss_and_grad(params, xb, loss_name, tb, lb, wb)
        loss_sum += value * len(idx)
        params = oracle.step(params, grad)
    return params, loss_sum, sums


def setup_engine(rng, units, acts, loss, dtype, **kw):
    e = make_engine(units, acts, loss, dtype, **kw)
    net = ref.Net(e.layout(), acts, engine_alphas(acts), l1=kw.get("l1"), l2=kw.get("l2"))
    e.params[:] = rng.normal(0, 0.5, size=e.n_params)
    return e, net


# ------------------------------------------------------------------- layout
@pytest.mark.parametrize("units,use_bias", [([8, 16, 8, 1], True), ([3, 1], False),
                                            ([5, 4, 3], [True, False])])
def test_layout_is_kernel_then_bias_per_layer(dtype, units, use_bias):
    e = make_engine(units, "linear", "mean_squared_error", dtype, use_bias=use_bias)
    ub = [use_bias] * (len(units) - 1) if isinstance(use_bias, bool) else use_bias
    expected_n = sum(a * b + (b if u else 0) for a, b, u in zip(units[:-1], units[1:], ub))
    assert e.n_params == expected_n
    assert e.params.shape == (expected_n,) and e.params.dtype == dtype
    assert e.grads.shape == (expected_n,)
    assert e.opt_state.shape == (3 * expected_n,)
    off = 0
    for (wo, shape, bo), a, b, u in zip(e.layout(), units[:-1], units[1:], ub):
        assert wo == off and tuple(shape) == (a, b)
        off += a * b
        if u:
            assert bo == off
            off += b
        else:
            assert bo == -1
    assert param_count([8, 16, 8, 1]) == 289  # the tutorial's network


def test_params_view_is_the_engine_buffer(rng, dtype):
    e = make_engine([3, 2], "linear", "mean_squared_error", dtype)
    e.params[:] = np.arange(8)
    np.testing.assert_array_equal(e.params, np.arange(8))
    out = np.empty((1, 2), dtype=dtype)
    e.predict(np.array([[1.0, 0.0, 0.0]], dtype=dtype), out, 1)
    # kernel [[0,1],[2,3],[4,5]], bias [6,7]: x = e_0 -> (0 + 6, 1 + 7)
    np.testing.assert_array_equal(out, [[6.0, 8.0]])


# ----------------------------------------------------------- predict, evaluate
ARCHS = [
    ([8, 16, 8, 1], ["relu", "relu", "sigmoid"], "binary_crossentropy"),
    ([7, 13, 5], ["tanh", "softmax"], "categorical_crossentropy"),
    ([3, 31, 2], ["elu", "linear"], "mean_squared_error"),
    ([61, 1], ["linear"], "sum_squared_error"),
    ([4, 17, 3], ["selu", "softmax"], "sparse_categorical_crossentropy"),
]


@pytest.mark.parametrize("units,acts,loss", ARCHS)
@pytest.mark.parametrize("n,bs", [(1, 1), (37, 10), (64, 64), (100, 7)])
def test_predict_matches_reference(rng, dtype, units, acts, loss, n, bs):
    e, net = setup_engine(rng, units, acts, loss, dtype)
    x = rng.normal(size=(n, units[0])).astype(dtype)
    out = np.full((n, units[-1]), np.nan, dtype=dtype)
    e.prepare(bs)
    e.predict(x, out, bs)
    expected = net.predict(np.asarray(e.params, np.float64), x)
    assert_close(out, expected, dtype, k=max(units), mag=1.0 + np.abs(expected), msg="predict")


def test_predict_any_strides(rng, dtype):
    e, net = setup_engine(rng, [7, 5, 2], ["tanh", "linear"], "mean_squared_error", dtype)
    base = rng.normal(size=(40, 21)).astype(dtype)
    views = {"c": np.ascontiguousarray(base[::2, ::3]), "strided": base[::2, ::3],
             "fortran": np.asfortranarray(base[::2, ::3])}
    outs = {}
    e.prepare(8)
    for k, v in views.items():
        outs[k] = np.empty((20, 2), dtype=dtype)
        e.predict(v, outs[k], 8)
    np.testing.assert_array_equal(outs["c"], outs["strided"])
    np.testing.assert_array_equal(outs["c"], outs["fortran"])


def reference_evaluate(net, params, x, t, labels, sw, bs, loss_name, metrics=()):
    order = np.arange(len(x))

    class NoStep:
        def step(self, p, g):
            return p

    _, loss_sum, sums = reference_train(net, params, NoStep(), x, t, labels, sw, order, 0,
                                        -(-len(x) // bs), bs, loss_name, metrics)
    return loss_sum, sums


@pytest.mark.parametrize("units,acts,loss", ARCHS)
@pytest.mark.parametrize("weighted", [False, True])
def test_evaluate_matches_reference(rng, dtype, units, acts, loss, weighted):
    e, net = setup_engine(rng, units, acts, loss, dtype, l2=[0.01] * (len(units) - 1))
    net.l2 = [0.01] * (len(units) - 1)
    n, bs = 53, 10
    x = rng.normal(size=(n, units[0])).astype(dtype)
    n_out = units[-1]
    labels = t = None
    if loss == "sparse_categorical_crossentropy":
        labels = rng.integers(0, n_out, n).astype(np.int64)
        metrics = ["sparse_categorical_accuracy"]
    elif loss == "categorical_crossentropy":
        t = np.eye(n_out)[rng.integers(0, n_out, n)].astype(dtype)
        metrics = ["categorical_accuracy", "mse"]
    elif loss == "binary_crossentropy":
        t = (rng.uniform(size=(n, n_out)) > 0.5).astype(dtype)
        metrics = ["binary_accuracy"]
    else:
        t = rng.normal(size=(n, n_out)).astype(dtype)
        metrics = ["mae", "mse"]
    sw = rng.uniform(0.5, 2, n).astype(dtype) if weighted else None
    e.set_metrics([core().METRICS[m] for m in metrics])
    e.prepare(bs)
    loss_sum, count, num, den = e.evaluate(x, t, labels, sw, bs)
    exp_loss, sums = reference_evaluate(net, np.asarray(e.params, np.float64), x, t, labels, sw,
                                        bs, loss, metrics)
    rt = 1e-10 if dtype == np.float64 else 1e-4
    assert count == n
    np.testing.assert_allclose(loss_sum, exp_loss, rtol=rt)
    np.testing.assert_allclose(num, [s[0] for s in sums], rtol=rt, atol=1e-6)
    np.testing.assert_allclose(den, [s[1] for s in sums], rtol=rt)


# -------------------------------------------------------------------- train
@pytest.mark.parametrize("units,acts,loss", ARCHS)
def test_train_matches_reference_replay(rng, dtype, units, acts, loss):
    c = core()
    l1 = [0.0] + [0.005] * (len(units) - 2)
    e, net = setup_engine(rng, units, acts, loss, dtype, l1=l1)
    n, bs = 29, 6   # 5 batches, the last one partial (5 rows)
    x = rng.normal(size=(n, units[0])).astype(dtype)
    n_out = units[-1]
    labels = t = None
    if loss == "sparse_categorical_crossentropy":
        labels = rng.integers(0, n_out, n).astype(np.int64)
        metrics = ["sparse_categorical_accuracy"]
    elif loss == "categorical_crossentropy":
        t = np.eye(n_out)[rng.integers(0, n_out, n)].astype(dtype)
        metrics = ["categorical_accuracy"]
    elif loss == "binary_crossentropy":
        t = (rng.uniform(size=(n, n_out)) > 0.5).astype(dtype)
        metrics = ["binary_accuracy"]
    else:
        t = rng.normal(size=(n, n_out)).astype(dtype)
        metrics = ["mse"]
    e.set_metrics([c.METRICS[m] for m in metrics])
    e.set_optimizer(c.OPTIMIZERS["sgd"], ref.full_config("sgd", learning_rate=0.05, momentum=0.5))
    e.reset_optimizer_state()
    e.prepare(bs)
    oracle = ref.Optimizer("sgd", e.n_params, learning_rate=0.05, momentum=0.5)
    p_ref = np.asarray(e.params, np.float64).copy()
    order = rng.permutation(n).astype(np.int64)
    # two calls that together make one epoch: batches [0, 2) then [2, 5)
    out1 = e.train(x, t, labels, None, order, 0, 2, bs, 0)
    out2 = e.train(x, t, labels, None, order, 2, 3, bs, 0)
    p_ref, loss_sum, sums = reference_train(net, p_ref, oracle, x, t, labels, None, order, 0, 5,
                                            bs, loss, metrics)
    assert out1[0] == 0 and out2[0] == 0
    assert out1[2] == 12 and out2[2] == 17   # rows seen: 6+6, then 6+6+5
    assert e.iterations == 5
    assert_close(e.params, p_ref, dtype, k=64, mag=1.0 + np.abs(p_ref), msg="params")
    rt = 1e-9 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(out1[1] + out2[1], loss_sum, rtol=rt)
    np.testing.assert_allclose(np.asarray(out1[3]) + np.asarray(out2[3]), [s[0] for s in sums],
                               rtol=rt)
    np.testing.assert_allclose(np.asarray(out1[4]) + np.asarray(out2[4]), [s[1] for s in sums],
                               rtol=rt)


@pytest.mark.parametrize("n_out,weighted", [(1, False), (1, True), (3, False)])
def test_sigmoid_bce_training_step_has_the_bits_of_the_separate_sigmoid(rng, dtype, n_out,
                                                                       weighted):
    """A training step computes the sigmoid output inside the fused BCE loss (from the loss's
    own e^-|z|); its gradient, and so the step, must have the bits of loss_and_grad's, which
    runs the sigmoid as the output layer's activation first, and the step's loss and metric
    sums those of evaluate. On every kernel set; rows around every padded block and chunk
    boundary of the loss kernel; logits from saturated to tiny."""
    c = core()
    units = [5, 7, n_out]
    e = make_engine(units, ["relu", "sigmoid"], "binary_crossentropy", dtype,
                    metrics=["binary_accuracy"])
    before = c.arch()
    try:
        for arch in c.supported_archs():
            c._set_arch(arch)
            for n in (1, 10, 16, 17, 70):
                e.params[:] = rng.normal(0, 0.7, size=e.n_params)
                x = (rng.normal(size=(n, 5)) * rng.choice([1e-3, 0.3, 1.0, 30.0], size=(n, 1),
                                                        p=[0.1, 0.4, 0.4, 0.1])).astype(dtype)
                t = (rng.uniform(size=(n, n_out)) > 0.5).astype(dtype)
                sw = rng.uniform(0.5, 2, size=n).astype(dtype) if weighted else None
                p0 = np.array(e.params)
                e.loss_and_grad(x, t, None, sw)
                expected = p0 - dtype(0.5) * np.array(e.grads)  # SGD: P - lr * G, in the dtype
                loss_sum, _, num, den = e.evaluate(x, t, None, sw, n)
                e.set_optimizer(c.OPTIMIZERS["sgd"], ref.full_config("sgd", learning_rate=0.5))
                e.reset_optimizer_state()
                e.prepare(n)
                out = e.train(x, t, None, sw, np.arange(n, dtype=np.int64), 0, 1, n, 0)
                assert out[0] == 0
                where = f"{arch}, {n} rows"
                np.testing.assert_array_equal(e.params, expected, err_msg=where)
                sums = (out[1], list(out[3]), list(out[4]))
                assert sums == (loss_sum, list(num), list(den)), where
    finally:
        c._set_arch(before)


def test_train_with_sample_weight_matches_reference(rng, dtype):
    c = core()
    units, acts, loss = [4, 6, 1], ["tanh", "sigmoid"], "binary_crossentropy"
    e, net = setup_engine(rng, units, acts, loss, dtype)
    x = rng.normal(size=(20, 4)).astype(dtype)
    t = (rng.uniform(size=(20, 1)) > 0.5).astype(dtype)
    sw = rng.uniform(0, 3, size=20).astype(dtype)
    e.set_optimizer(c.OPTIMIZERS["adam"], ref.full_config("adam", learning_rate=0.01))
    e.reset_optimizer_state()
    e.prepare(8)
    oracle = ref.Optimizer("adam", e.n_params, learning_rate=0.01)
    order = np.arange(20, dtype=np.int64)
    p_ref = np.asarray(e.params, np.float64).copy()
    out = e.train(x, t, None, sw, order, 0, 3, 8, 0)
    p_ref, loss_sum, _ = reference_train(net, p_ref, oracle, x, t, None, sw, order, 0, 3, 8, loss)
    assert out[0] == 0
    assert_close(e.params, p_ref, dtype, k=32, mag=1 + np.abs(p_ref), msg="params")


def test_train_strided_x_equals_contiguous(rng, dtype):
    c = core()
    base = rng.normal(size=(60, 10)).astype(dtype)
    views = [np.ascontiguousarray(base[::2, 1::2]), base[::2, 1::2],
             np.asfortranarray(base[::2, 1::2])]
    t = rng.normal(size=(30, 2)).astype(dtype)
    finals = []
    for xv in views:
        e = make_engine([5, 8, 2], ["relu", "linear"], "mean_squared_error", dtype)
        e.params[:] = np.linspace(-1, 1, e.n_params)
        e.set_optimizer(c.OPTIMIZERS["adam"], ref.full_config("adam"))
        e.reset_optimizer_state()
        e.prepare(7)
        e.train(xv, t, None, None, np.arange(30, dtype=np.int64)[::-1].copy(), 0, 5, 7, 0)
        finals.append(np.array(e.params))
    np.testing.assert_array_equal(finals[0], finals[1])
    np.testing.assert_array_equal(finals[0], finals[2])


def test_nonfinite_loss_stops_before_the_bad_update(dtype):
    # Batch 1 (rows 2, 3) holds a value whose output overflows: the engine
    # reports that batch, applies batch 0's update only, and not batch 1's.
    c = core()
    big = 3e38 if dtype == np.float32 else 1e300
    x = np.array([[0.25], [0.5], [big], [1.0], [0.5], [0.25]], dtype=dtype)
    t = np.zeros((6, 1), dtype=dtype)
    e = make_engine([1, 1], ["linear"], "mean_squared_error", dtype)
    e.params[:] = [2.0, 0.0]
    e.set_optimizer(c.OPTIMIZERS["sgd"], ref.full_config("sgd", learning_rate=0.125))
    e.reset_optimizer_state()
    e.prepare(2)
    status, loss_sum, n_seen, _, _, bad_batch = e.train(
        x, t, None, None, np.arange(6, dtype=np.int64), 0, 3, 2, 0)
    assert status == c.STATUS_NONFINITE
    assert bad_batch == 1
    assert e.iterations == 1
    # batch 0 by hand: y = 2 x = (0.5, 1); MSE: dw = mean(2 y x) = (0.25 + 1)/2 = 0.625,
    # db = mean(2 y) = (1 + 2)/2 = 1.5;  w = 2 - 0.125*0.625 = 1.921875, b = -0.1875
    # (then 1.921875 * big overflows: y = inf in float32, y^2 = inf in float64)
    np.testing.assert_array_equal(e.params, [1.921875, -0.1875])


def test_dropout_only_in_training(rng, dtype):
    c = core()
    units, acts, loss = [6, 32, 2], ["relu", "linear"], "mean_squared_error"
    x = rng.normal(size=(40, 6)).astype(dtype)
    t = rng.normal(size=(40, 2)).astype(dtype)
    p0 = rng.normal(0, 0.3, size=param_count(units))
    finals = {}
    for key, drop, seed in [("none", [0.0, 0.0], 0), ("drop", [0.0, 0.5], 1),
                            ("drop-again", [0.0, 0.5], 1), ("drop-other-seed", [0.0, 0.5], 2)]:
        e = make_engine(units, acts, loss, dtype, dropout=drop)
        e.params[:] = p0
        e.prepare(10)
        # inactive outside training: predict and loss_and_grad ignore dropout
        out = np.empty((40, 2), dtype=dtype)
        e.predict(x, out, 10)
        net = ref.Net(e.layout(), acts)
        assert_close(out, net.predict(np.asarray(e.params, np.float64), x), dtype, k=32,
                     mag=1 + np.abs(out.astype(np.float64)))
        e.set_optimizer(c.OPTIMIZERS["sgd"], ref.full_config("sgd", learning_rate=0.01))
        e.reset_optimizer_state()
        status = e.train(x, t, None, None, np.arange(40, dtype=np.int64), 0, 4, 10, seed)[0]
        assert status == 0
        finals[key] = np.array(e.params)
    assert not np.array_equal(finals["none"], finals["drop"]), "dropout had no effect"
    np.testing.assert_array_equal(finals["drop"], finals["drop-again"])
    assert not np.array_equal(finals["drop"], finals["drop-other-seed"])


def test_inverted_dropout_keeps_the_expected_activation(dtype):
    # With dropout rate r on the input of a linear 1-unit layer with all-ones
    # kernel, the training loss uses x * mask / (1 - r): on many identical rows
    # the mean of the training outputs stays near the inference output. One SGD
    # step with lr = 0 leaves the weights; the reported loss_sum exposes the
    # outputs: MSE vs target 0 with y = sum_j x_j m_j / (1 - r). (lr is ~0.)
    c = core()
    n_in, n = 200, 64
    e = make_engine([n_in, 1], ["linear"], "mean_squared_error", dtype, use_bias=False,
                    dropout=[0.5], metrics=["mae"])
    e.params[:] = 1.0
    x = np.ones((n, n_in), dtype=dtype)
    t = np.zeros((n, 1), dtype=dtype)
    e.set_optimizer(c.OPTIMIZERS["sgd"], ref.full_config("sgd", learning_rate=1e-12))
    e.reset_optimizer_state()
    e.prepare(n)
    status, loss_sum, n_seen, num, den, _ = e.train(x, t, None, None,
                                                    np.arange(n, dtype=np.int64), 0, 1, n, 3)
    assert status == 0
    mean_abs = num[0] / den[0]   # mean training output: 200 without dropout
    # kept units ~ Binomial(200, 0.5) scaled by 2: mean 200, sd of the mean over 64 rows ~ 1.8
    assert 185 < mean_abs < 215, mean_abs
    # not all rows equal: masks differ per row
    assert loss_sum / n > mean_abs ** 2 + 1.0


def test_engine_bad_arguments_raise(rng):
    c = core()
    e = make_engine([3, 2], "linear", "mean_squared_error", np.float64)
    e.prepare(4)
    x = rng.normal(size=(5, 3))
    t = rng.normal(size=(5, 2))
    order = np.arange(5, dtype=np.int64)
    with pytest.raises(ValueError):
        e.predict(rng.normal(size=(5, 4)), np.empty((5, 2)), 4)      # wrong width
    with pytest.raises(ValueError):
        e.predict(x, np.empty((5, 3)), 4)                              # wrong out
    with pytest.raises(ValueError):
        e.predict(x.astype(np.float32), np.empty((5, 2)), 4)           # wrong dtype
    with pytest.raises(ValueError):
        e.train(x, t[:4], None, None, order, 0, 1, 4, 0)               # t rows
    with pytest.raises(ValueError):
        e.train(x, t, None, None, order[:4], 0, 1, 4, 0)               # order length
    with pytest.raises(ValueError):
        e.train(x, t, None, None, np.array([7, 1, 2, 3, 0], dtype=np.int64), 0, 1, 4, 0)
    with pytest.raises(ValueError):
        e.train(x, t, None, None, order, 0, 1, 0, 0)                   # batch_size 0
    with pytest.raises(ValueError):
        e.train(x, t, None, None, order, 0, 5, 4, 0)                   # past the last batch
    with pytest.raises(ValueError):
        make_engine([3, 2], "linear", "mean_squared_error", np.int32)
    with pytest.raises(ValueError):
        c.Engine([3, 2], [99], [0.0], [True], [0.0], [0.0], [0.0], 0, np.float64)
    with pytest.raises(ValueError):
        c.Engine([3, 2], [0], [0.0], [True], [0.0], [0.0], [0.0], 99, np.float64)
    with pytest.raises(ValueError):
        c.Engine([3, 0], [0], [0.0], [True], [0.0], [0.0], [0.0], 0, np.float64)
    with pytest.raises(ValueError):
        c.Engine([3, 2], [0], [0.0], [True], [1.0], [0.0], [0.0], 0, np.float64)  # rate 1
    with pytest.raises(ValueError):
        c.Engine([3, 2, 2], [0], [0.0], [True], [0.0], [0.0], [0.0], 0, np.float64)  # lengths


def test_adagrad_reset_fills_the_accumulator():
    c = core()
    e = make_engine([3, 2], "linear", "mean_squared_error", np.float64)
    e.set_optimizer(c.OPTIMIZERS["adagrad"], ref.full_config("adagrad",
                                                             initial_accumulator_value=0.25))
    e.reset_optimizer_state()
    st = np.asarray(e.opt_state)
    assert np.sum(st == 0.25) == e.n_params
    e.set_optimizer(c.OPTIMIZERS["adam"], ref.full_config("adam"))
    e.reset_optimizer_state()
    assert np.all(np.asarray(e.opt_state) == 0) and e.iterations == 0


def test_a_refused_training_call_leaves_the_engine_usable(rng):
    # arguments that raise (a seed that is no integer) are refused before the engine is
    # marked busy, so the next call trains
    c = core()
    e = make_engine([3, 4, 1], ["relu", "sigmoid"], "binary_crossentropy", np.float32)
    e.set_optimizer(c.OPTIMIZERS["adam"], {})
    x = rng.normal(size=(10, 3)).astype(np.float32)
    t = (x[:, :1] > 0).astype(np.float32)
    order = np.arange(10, dtype=np.int64)
    for call in (lambda seed: e.train(x, t, None, None, order, 0, 2, 5, seed),
                 lambda seed: e.train_epochs(x, t, None, None, order, c.seed_rng(1), 2, 5, seed)):
        with pytest.raises(TypeError):
            call(None)
        call(3)
    assert e.iterations == 6
