"""Central finite-difference gradient checks, in float64: every activation's
backward, every loss's gradient wrt the logits, and whole networks through
``Engine.loss_and_grad`` against the flat parameter vector."""

import numpy as np
import pytest

import _reference as ref
from conftest import core, engine_alphas, make_engine
from test_ops import ALPHA_CASES, _alpha, act_input, loss_logits, loss_targets

H = 1e-6
RTOL = 1e-5
ATOL = 1e-7


# -------------------------------------------------------------- activations
@pytest.mark.parametrize("name,alpha", ALPHA_CASES)
def test_activation_backward_matches_finite_differences(rng, name, alpha):
    c = core()
    a = _alpha(name, alpha)
    act = c.ACTIVATIONS[name]
    x = act_input(rng, name, (4, 6), np.float64)
    dy = rng.normal(size=x.shape)
    y = np.empty_like(x)
    c.act_forward(act, x, y, a)
    dx = np.empty_like(x)
    c.act_backward(act, y, dy, dx, a)

    def f():
        out = np.empty_like(x)
        c.act_forward(act, x, out, a)
        return float(np.sum(dy * out))

    num = ref.numerical_gradient(f, x, H)
    np.testing.assert_allclose(dx, num, rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("name,alpha", ALPHA_CASES)
def test_reference_activation_backward_matches_finite_differences(rng, name, alpha):
    # The oracle's own derivative, checked the same way (guards the oracle).
    a = _alpha(name, alpha)
    x = act_input(rng, name, (3, 5), np.float64)
    dy = rng.normal(size=x.shape)
    dx = ref.act_backward(name, ref.act_forward(name, x, a), dy, a)
    num = ref.numerical_gradient(lambda: float(np.sum(dy * ref.act_forward(name, x, a))), x, H)
    np.testing.assert_allclose(dx, num, rtol=RTOL, atol=ATOL, err_msg=name)


# ------------------------------------------------------------------- losses
# (loss, output activation): fused pairs, and the non-fused ones with outputs
# kept away from kinks and from the 1e-7 probability clip.
GRAD_LOSS_CASES = [
    ("binary_crossentropy", "sigmoid"),            # fused
    ("categorical_crossentropy", "softmax"),       # fused
    ("sparse_categorical_crossentropy", "softmax"),  # fused
    ("mean_squared_error", "linear"), ("mean_squared_error", "tanh"),
    ("mean_squared_error", "softmax"), ("mean_squared_error", "elu"),
    ("sum_squared_error", "linear"), ("sum_squared_error", "sigmoid"),
    ("mean_absolute_error", "linear"), ("mean_absolute_error", "tanh"),
    ("binary_crossentropy", "hard_sigmoid"),       # y in (0, 1)
    ("binary_crossentropy", "softmax"),
    ("binary_crossentropy", "linear"),             # y = z inside (0, 1)
    ("categorical_crossentropy", "sigmoid"),       # y / sum(y), unfused
    ("categorical_crossentropy", "exponential"),
    ("sparse_categorical_crossentropy", "sigmoid"),
]


def _grad_logits(rng, name, out_act, shape):
    z = loss_logits(rng, name, out_act, shape)
    if out_act == "linear" and name == "binary_crossentropy":
        z = rng.uniform(0.05, 0.95, size=shape)    # stay off the clip
    return z


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name,out_act", GRAD_LOSS_CASES)
def test_loss_gradient_matches_finite_differences(rng, name, out_act, weighted):
    c = core()
    shape = (5, 3)
    z = _grad_logits(rng, name, out_act, shape)
    t, labels = loss_targets(rng, name, shape)
    if name == "mean_absolute_error":
        # keep |y - t| away from the kink at 0
        y0 = ref.act_forward(out_act, z)
        t = y0 + np.where(rng.uniform(size=shape) > 0.5, 1.0, -1.0) * rng.uniform(0.1, 0.5, shape)
    sw = rng.uniform(0.5, 2.0, size=shape[0]) if weighted else None
    gs = 0.37
    a = _alpha(out_act, None)
    lid, aid = c.LOSSES[name], c.ACTIVATIONS[out_act]

    def value():
        y = ref.act_forward(out_act, z, a)
        return c.loss(lid, aid, z, y, t, labels, sw, np.empty_like(z), 1.0, a)

    dz = np.full_like(z, np.nan)
    c.loss(lid, aid, z, ref.act_forward(out_act, z, a), t, labels, sw, dz, gs, a)
    num = ref.numerical_gradient(value, z, H)
    np.testing.assert_allclose(dz, gs * num, rtol=RTOL, atol=ATOL,
                               err_msg=f"{name}/{out_act}")
    # the oracle agrees with the finite differences as well
    _, ref_dz = ref.loss(name, out_act, z, t, labels, sw, gs, a)
    np.testing.assert_allclose(ref_dz, gs * num, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------- networks
NET_CASES = {
    "tanh-linear-mse": dict(units=[3, 5, 2], acts=["tanh", "linear"], loss="mean_squared_error"),
    "relu-sigmoid-bce-l2": dict(units=[4, 6, 1], acts=["relu", "sigmoid"],
                                loss="binary_crossentropy", l2=[0.01, 0.02]),
    "elu-softplus-softmax-cce-l1": dict(units=[4, 7, 5, 3], acts=["elu", "softplus", "softmax"],
                                        loss="categorical_crossentropy", l1=[0.01, 0.0, 0.02]),
    "selu-softmax-sparse-nobias": dict(units=[3, 4, 3], acts=["selu", "softmax"],
                                       loss="sparse_categorical_crossentropy", use_bias=False),
    "sigmoid-linear-sse-nobias-l1l2": dict(units=[5, 3, 2], acts=["sigmoid", "linear"],
                                           loss="sum_squared_error", use_bias=False,
                                           l1=[0.01, 0.01], l2=[0.02, 0.03]),
    "softsign-tanh-mae": dict(units=[3, 6, 2], acts=["softsign", "tanh"],
                              loss="mean_absolute_error"),
    "leaky-hardsigmoid-bce": dict(units=[4, 5, 2], acts=["leaky_relu", "hard_sigmoid"],
                                  loss="binary_crossentropy"),
    "exponential-sigmoid-cce": dict(units=[3, 4, 3], acts=["exponential", "sigmoid"],
                                    loss="categorical_crossentropy"),
    "deep-mixed-bias-weighted": dict(units=[6, 8, 8, 4], acts=["tanh", "relu", "softmax"],
                                     loss="categorical_crossentropy",
                                     use_bias=[True, False, True], weighted=True,
                                     l2=[0.01, 0.01, 0.0]),
    "sigmoid-linear-mse-weighted": dict(units=[4, 3, 1], acts=["sigmoid", "linear"],
                                        loss="mean_squared_error", weighted=True, l2=[0.0, 0.05]),
    "single-layer-sigmoid-bce": dict(units=[7, 1], acts=["sigmoid"], loss="binary_crossentropy",
                                     l1=[0.03]),
}


def _net_problem(rng, case, dtype=np.float64, n=11):
    units = case["units"]
    e = make_engine(units, case["acts"], case["loss"], dtype,
                    use_bias=case.get("use_bias", True), l1=case.get("l1"), l2=case.get("l2"))
    net = ref.Net(e.layout(), case["acts"], engine_alphas(case["acts"]),
                  l1=case.get("l1"), l2=case.get("l2"))
    params = np.empty(e.n_params)
    params[:] = rng.normal(0, 0.3, size=e.n_params)
    for wo, (ni, no), _ in net.layout:
        # kernels away from 0 (L1 kink) and small enough to keep
        # hard_sigmoid inside (-3, 3)
        k = ni * no
        params[wo:wo + k] = (np.where(rng.uniform(size=k) > 0.5, 1, -1)
                             * rng.uniform(0.1, 0.6, size=k))
    x = rng.normal(size=(n, units[0]))
    n_out = units[-1]
    t, labels = loss_targets(rng, case["loss"], (n, n_out))
    if case["loss"] == "mean_absolute_error":
        t = net.predict(params, x) + np.where(rng.uniform(size=(n, n_out)) > .5, 1, -1) * 0.3
    sw = rng.uniform(0.5, 2.0, size=n) if case.get("weighted") else None
    return e, net, params, x, t, labels, sw


def _as(a, dtype):
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


@pytest.mark.parametrize("case_id", list(NET_CASES))
def test_network_gradient_matches_finite_differences(rng, case_id):
    e, net, params, x, t, labels, sw = _net_problem(rng, NET_CASES[case_id])
    e.params[:] = params
    p = e.params
    loss0 = e.loss_and_grad(x, t, labels, sw)
    analytic = np.array(e.grads, copy=True)
    np.testing.assert_array_equal(e.params, params)  # no update

    def f():
        return e.loss_and_grad(x, t, labels, sw)

    numeric = ref.numerical_gradient(f, p, H)
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=case_id)
    # and the oracle network agrees on value and gradient
    ref_loss, ref_grad = net.loss_and_grad(params, x, NET_CASES[case_id]["loss"], t, labels, sw)
    np.testing.assert_allclose(loss0, ref_loss, rtol=1e-10)
    np.testing.assert_allclose(analytic, ref_grad, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("case_id", ["tanh-linear-mse", "relu-sigmoid-bce-l2",
                                     "elu-softplus-softmax-cce-l1",
                                     "selu-softmax-sparse-nobias",
                                     "deep-mixed-bias-weighted"])
def test_network_gradient_float32_matches_reference(rng, case_id):
    case = NET_CASES[case_id]
    e, net, params, x, t, labels, sw = _net_problem(rng, case, dtype=np.float32)
    assert e.params.dtype == np.float32
    e.params[:] = params
    p32 = np.array(e.params, dtype=np.float64)
    loss = e.loss_and_grad(_as(x, np.float32), _as(t, np.float32), labels,
                           _as(sw, np.float32))
    ref_loss, ref_grad = net.loss_and_grad(p32, x.astype(np.float32), case["loss"],
                                           None if t is None else t.astype(np.float32),
                                           labels, None if sw is None else sw.astype(np.float32))
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    scale = np.max(np.abs(ref_grad))
    np.testing.assert_allclose(e.grads, ref_grad, rtol=1e-4, atol=1e-5 * scale)


def test_l1_l2_penalty_enters_loss_and_gradient(rng):
    # Same network and data with and without regularisation: the loss differs
    # by exactly the penalty, the kernel gradient by l1*sign(W) + 2*l2*W.
    case = dict(units=[3, 4, 2], acts=["tanh", "linear"], loss="mean_squared_error")
    e0, net, params, x, t, labels, sw = _net_problem(rng, case)
    l1, l2 = [0.03, 0.0], [0.0, 0.05]
    e1 = make_engine(case["units"], case["acts"], case["loss"], np.float64, l1=l1, l2=l2)
    e0.params[:] = params
    e1.params[:] = params
    v0 = e0.loss_and_grad(x, t, None, None)
    v1 = e1.loss_and_grad(x, t, None, None)
    (w1, b1), (w2, b2) = net.unpack(params)
    np.testing.assert_allclose(v1 - v0, 0.03 * np.abs(w1).sum() + 0.05 * (w2 ** 2).sum(),
                               rtol=1e-10)
    diff = np.asarray(e1.grads) - np.asarray(e0.grads)
    (wo1, s1, bo1), (wo2, s2, bo2) = e0.layout()
    np.testing.assert_allclose(diff[wo1:wo1 + w1.size].reshape(w1.shape), 0.03 * np.sign(w1),
                               atol=1e-12)
    np.testing.assert_allclose(diff[wo2:wo2 + w2.size].reshape(w2.shape), 0.1 * w2, atol=1e-12)
    np.testing.assert_allclose(diff[bo1:bo1 + 4], 0, atol=1e-14)
