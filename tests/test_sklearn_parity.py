"""scikit-learn semantics in the C engine, and the estimators' agreement with scikit-learn.

Part 1 checks the engine's scikit-learn options one by one against NumPy oracles written
from scikit-learn's definitions (``sklearn/neural_network/_base.py`` and
``_stochastic_optimizers.py``), with central-difference gradient checks in float64:
the losses ``half_squared_error``, ``half_poisson`` and ``log_loss``, the Adam kind
``adam_sklearn``, and the network options ``norm='weights'`` and ``output_mean``.

Part 2 trains fastmlp's estimators and scikit-learn's own MLP from the same copied
weights with ``shuffle=False`` in float64 and requires the same weights (1e-10 relative)
and the same ``loss_curve_``.
"""

import warnings
import zlib

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn import neural_network as sk_nn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import fastmlp  # noqa: E402
from fastmlp import _core as c  # noqa: E402

EPS = {np.float64: np.finfo(np.float64).eps, np.float32: np.finfo(np.float32).eps}


# ------------------------------------------------------------------ NumPy oracles
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ref_loss(name, out_act, z, t, w):
    """(sum_i w_i l_i, d(sum_i w_i l_i)/dz) by scikit-learn's definitions, in float64."""
    z, t = z.astype(np.float64), t.astype(np.float64)
    w = np.ones(len(z)) if w is None else w.astype(np.float64)
    y = {"linear": lambda v: v, "sigmoid": _sigmoid, "softmax": _softmax,
         "exponential": np.exp, "tanh": np.tanh}[out_act](z)
    if name == "half_squared_error":
        per_row = 0.5 * ((y - t) ** 2).sum(axis=1)
        dy = y - t
    elif name == "half_poisson":
        with np.errstate(divide="ignore", invalid="ignore"):
            xlogy = np.where(t != 0, t * np.log(t / y), 0.0)
        per_row = (xlogy - t + y).sum(axis=1)
        dy = 1 - t / y
    else:  # log_loss: probabilities clipped at the machine epsilon for the value only
        eps = EPS[np.float64]
        p = np.clip(y, eps, 1 - eps)
        if out_act == "sigmoid":
            per_row = -(np.where(t != 0, t * np.log(p), 0) +
                        np.where(t != 1, (1 - t) * np.log(1 - p), 0)).sum(axis=1)
        else:
            per_row = -np.where(t != 0, t * np.log(p), 0).sum(axis=1)
        return (w * per_row).sum(), (y - t) * w[:, None]
    # chain through the output activation (identity for the fused exponential + poisson)
    if name == "half_poisson" and out_act == "exponential":
        dz = y - t
    elif out_act == "tanh":
        dz = dy * (1 - y ** 2)
    elif out_act == "linear":
        dz = dy
    else:
        raise ValueError(out_act)
    return (w * per_row).sum(), dz * w[:, None]


def _loss_case(rng, name, out_act, m, n, dtype):
    z = rng.normal(size=(m, n)).astype(dtype)
    if name == "log_loss" and out_act == "softmax":
        t = np.eye(n, dtype=dtype)[rng.integers(0, n, m)]
    elif name == "log_loss":
        t = rng.integers(0, 2, (m, n)).astype(dtype)
    elif name == "half_poisson":
        t = rng.poisson(1.5, (m, n)).astype(dtype)
    else:
        t = rng.normal(size=(m, n)).astype(dtype)
    return z, t


def _engine_loss(name, out_act, z, t, w, scale=1.0):
    y = np.empty_like(z)
    c.act_forward(out_act, z, y)
    dz = np.empty_like(z)
    value = c.loss(c.LOSSES[name], c.ACTIVATIONS[out_act], z, y, t, None, w, dz, scale)
    return value, dz


LOSS_CASES = [("half_squared_error", "linear"), ("half_squared_error", "tanh"),
              ("half_poisson", "exponential"), ("half_poisson", "linear"),
              ("log_loss", "sigmoid"), ("log_loss", "softmax")]


# ------------------------------------------------------------------ part 1: the engine
@pytest.mark.parametrize("name,out_act", LOSS_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_sklearn_losses_match_numpy_oracle(name, out_act, dtype, weighted):
    rng = np.random.default_rng(3)
    for m, n in [(1, 1), (7, 1), (5, 3), (33, 4)]:
        if out_act == "softmax" and n == 1:
            continue
        z, t = _loss_case(rng, name, out_act, m, n, dtype)
        if name == "half_poisson" and out_act == "linear":
            z = np.abs(z) + dtype(0.5)  # the identity output must stay positive
        w = rng.uniform(0, 2, m).astype(dtype) if weighted else None
        value, dz = _engine_loss(name, out_act, z, t, w, scale=0.25)
        ref_value, ref_dz = ref_loss(name, out_act, z, t, w)
        tol = 1e-12 if dtype == np.float64 else 2e-5
        assert value == pytest.approx(ref_value, rel=tol, abs=tol)
        np.testing.assert_allclose(dz, 0.25 * ref_dz, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("name,out_act", LOSS_CASES)
def test_sklearn_losses_gradient_by_central_differences(name, out_act):
    rng = np.random.default_rng(4)
    z, t = _loss_case(rng, name, out_act, 6, 3, np.float64)
    if name == "half_poisson" and out_act == "linear":
        z = np.abs(z) + 0.5
    w = rng.uniform(0.5, 2, 6)
    _, dz = _engine_loss(name, out_act, z, t, w)
    h = 1e-6
    num = np.empty_like(z)
    for idx in np.ndindex(*z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        num[idx] = (_engine_loss(name, out_act, zp, t, w)[0] -
                    _engine_loss(name, out_act, zm, t, w)[0]) / (2 * h)
    np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-8)


def test_log_loss_value_uses_clipped_probabilities():
    # a confidently wrong prediction: scikit-learn clips p at eps, so the loss is -log(eps)
    z = np.array([[-60.0]])
    t = np.array([[1.0]])
    value, dz = _engine_loss("log_loss", "sigmoid", z, t, None)
    assert value == pytest.approx(-np.log(np.finfo(np.float64).eps), rel=1e-12)
    assert dz[0, 0] == pytest.approx(_sigmoid(-60.0) - 1.0)


def test_log_loss_refuses_other_output_activations():
    z = np.zeros((2, 2))
    with pytest.raises(ValueError):
        _engine_loss("log_loss", "linear", z, z, None)


def _sk_adam_reference(params, grads_seq, lr, b1, b2, eps):
    """scikit-learn's AdamOptimizer, the specification of the 'adam_sklearn' kind."""
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer
    p = [params.copy()]
    opt = AdamOptimizer(p, lr, b1, b2, eps)
    for g in grads_seq:
        opt.update_params(p, [g])
    return p[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_sklearn_matches_sklearn_optimizer(dtype):
    rng = np.random.default_rng(5)
    n = 37
    params = rng.normal(size=n)
    grads = [rng.normal(size=n) for _ in range(6)]
    cfg = {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-8}
    p = params.astype(dtype)
    state = np.zeros(c.OPT_STATE_SLOTS * n, dtype=dtype)
    for it, g in enumerate(grads):
        c.optimizer_step(c.OPTIMIZERS["adam_sklearn"], dict(cfg), p, g.astype(dtype).copy(),
                         state, it)
    ref = _sk_adam_reference(params, grads, 0.01, 0.8, 0.99, 1e-8)
    if dtype == np.float64:
        np.testing.assert_array_equal(p, ref)  # operation for operation
    else:
        np.testing.assert_allclose(p, ref, rtol=1e-5, atol=1e-6)


def test_sgd_kind_is_sklearn_sgd():
    """The engine's SGD (Keras 3's rule) is scikit-learn's SGDOptimizer, bit for bit."""
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer
    rng = np.random.default_rng(6)
    for nesterov in (False, True):
        params = rng.normal(size=20)
        grads = [rng.normal(size=20) for _ in range(5)]
        ref = [params.copy()]
        opt = SGDOptimizer(ref, 0.05, "constant", 0.9, nesterov)
        p, state = params.copy(), np.zeros(c.OPT_STATE_SLOTS * 20)
        for it, g in enumerate(grads):
            opt.update_params(ref, [g])
            c.optimizer_step(c.OPTIMIZERS["sgd"], {"learning_rate": 0.05, "momentum": 0.9,
                                                   "nesterov": nesterov}, p, g.copy(), state, it)
        np.testing.assert_array_equal(p, ref[0])


def _net(loss, out_act, n_out, alpha=0.3, output_mean=False, norm="weights"):
    units = [4, 5, n_out]
    e = c.Engine(units, ["tanh", out_act], [0.0, 0.0], [True, True], [0.0, 0.0], [0.0, 0.0],
                 [alpha / 2, alpha / 2], c.LOSSES[loss], np.float64, norm=norm,
                 output_mean=output_mean)
    e.params[:] = np.random.default_rng(7).normal(scale=0.5, size=e.n_params)
    return e


def _ref_objective(e, x, t, w, loss, out_act, alpha, output_mean):
    """scikit-learn's batch objective: data loss (over sum w) + alpha/(2 sum w) ||W||^2."""
    (w0, s0, b0), (w1, s1, b1) = e.layout()
    P = e.params
    W0, B0 = P[w0:w0 + s0[0] * s0[1]].reshape(s0), P[b0:b0 + s0[1]]
    W1, B1 = P[w1:w1 + s1[0] * s1[1]].reshape(s1), P[b1:b1 + s1[1]]
    z = np.tanh(x @ W0 + B0) @ W1 + B1
    wsum = w.sum()
    data = ref_loss(loss, out_act, z, t, w)[0] / wsum
    if output_mean:
        data /= t.shape[1]
    return data + alpha / (2 * wsum) * ((W0 ** 2).sum() + (W1 ** 2).sum())


@pytest.mark.parametrize("loss,out_act,n_out", [("half_squared_error", "linear", 3),
                                                ("half_poisson", "exponential", 2),
                                                ("log_loss", "softmax", 3),
                                                ("log_loss", "sigmoid", 2)])
def test_norm_weights_objective_and_gradient(loss, out_act, n_out):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(9, 4))
    _, t = _loss_case(rng, loss, out_act, 9, n_out, np.float64)
    w = rng.uniform(0.2, 2.0, 9)
    e = _net(loss, out_act, n_out)
    value = e.loss_and_grad(x, t, None, w)
    assert value == pytest.approx(_ref_objective(e, x, t, w, loss, out_act, 0.3, False),
                                  rel=1e-12)
    grad, p0, h = e.grads.copy(), e.params.copy(), 1e-6
    num = np.empty_like(p0)
    for i in range(len(p0)):
        e.params[:] = p0
        e.params[i] += h
        up = e.loss_and_grad(x, t, None, w)
        e.params[:] = p0
        e.params[i] -= h
        num[i] = (up - e.loss_and_grad(x, t, None, w)) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


def test_output_mean_scales_the_value_not_the_gradient():
    rng = np.random.default_rng(9)
    x, t, w = rng.normal(size=(8, 4)), rng.normal(size=(8, 3)), rng.uniform(0.5, 1.5, 8)
    plain, mean = (_net("half_squared_error", "linear", 3, output_mean=m) for m in (False, True))
    v_plain, v_mean = plain.loss_and_grad(x, t, None, w), mean.loss_and_grad(x, t, None, w)
    np.testing.assert_array_equal(plain.grads, mean.grads)
    assert v_mean == pytest.approx(_ref_objective(mean, x, t, w, "half_squared_error",
                                                  "linear", 0.3, True), rel=1e-12)
    assert v_mean < v_plain


def test_norm_weights_penalty_follows_each_batch_in_training():
    """Every batch (the last partial one too) carries alpha / (2 * its weight sum) ||W||^2."""
    rng = np.random.default_rng(10)
    x, t = rng.normal(size=(10, 4)), rng.normal(size=(10, 1))
    e = _net("half_squared_error", "linear", 1, alpha=0.5)
    ref = _net("half_squared_error", "linear", 1, alpha=0.5)
    e.set_optimizer(c.OPTIMIZERS["sgd"], {"learning_rate": 0.1})
    order = np.arange(10, dtype=np.int64)
    _, loss_sum, seen, _, _, _ = e.train(x, t, None, None, order, 0, 3, 4, 0)
    expected = 0.0
    for rows in (slice(0, 4), slice(4, 8), slice(8, 10)):
        batch_loss = ref.loss_and_grad(x[rows], t[rows], None, None)
        expected += batch_loss * (rows.stop - rows.start)
        ref.params[:] -= 0.1 * ref.grads
    assert seen == 10
    assert loss_sum == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(e.params, ref.params, rtol=1e-12, atol=1e-14)


def test_engine_rejects_unknown_norm():
    with pytest.raises(ValueError, match="norm"):
        _net("half_squared_error", "linear", 1, norm="batch")


# ------------------------------------------------------------------ part 2: estimators
def _start_from(est, X, y, W0, b0, epochs, sample_weight=None):
    """Creates the fitted state with one epoch, then copies W0/b0 in, resets the curves and
    runs ``epochs`` more with warm_start: the same procedure for both libraries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.set_params(max_iter=1, warm_start=True, shuffle=False, tol=0.0,
                       n_iter_no_change=10**6)
        est.fit(X, y)
        est.coefs_ = [w.copy() for w in W0]
        est.intercepts_ = [b.copy() for b in b0]
        est.loss_curve_, est.best_loss_, est._no_improvement_count, est.t_ = [], np.inf, 0, 0
        est.set_params(max_iter=epochs)
        est.fit(X, y, sample_weight=sample_weight)
    return est


def _data(kind, rng, n=103, d=7):
    X = rng.normal(size=(n, d))
    y = {"multiclass": lambda: rng.integers(0, 4, n),
         "binary": lambda: rng.integers(0, 2, n),
         "multilabel": lambda: rng.integers(0, 2, (n, 3)),
         "regression": lambda: X @ rng.normal(size=d) + 0.1 * rng.normal(size=n),
         "multioutput": lambda: X @ rng.normal(size=(d, 3)),
         "poisson": lambda: rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)}[kind]()
    n_out = {"multiclass": 4, "binary": 1, "multilabel": 3, "regression": 1, "multioutput": 3,
             "poisson": 1}[kind]
    return X, y, n_out


SOLVERS = {
    "sgd_nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True,
                         learning_rate_init=0.05),
    "sgd_momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False,
                         learning_rate_init=0.05),
    "sgd_invscaling": dict(solver="sgd", momentum=0.0, learning_rate="invscaling",
                           learning_rate_init=0.05),
    "adam": dict(solver="adam", learning_rate_init=0.01),
}


@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "regression",
                                  "multioutput", "poisson"])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_numbers_as_sklearn(solver, kind, weighted):
    rng = np.random.default_rng(zlib.crc32(f"{solver}-{kind}-{weighted}".encode()))
    X, y, n_out = _data(kind, rng)
    hidden = (9, 5)
    units = [X.shape[1], *hidden, n_out]
    W0 = [rng.uniform(-0.5, 0.5, (a, b)) for a, b in zip(units[:-1], units[1:])]
    b0 = [rng.uniform(-0.5, 0.5, b) for b in units[1:]]
    sw = rng.uniform(0, 2, len(X)) if weighted else None
    # batch_size=20 leaves a partial last batch of 3 rows, alpha > 0 tests the L2 scaling
    params = dict(hidden_layer_sizes=hidden, activation="tanh", alpha=0.01, batch_size=20,
                  random_state=0, **SOLVERS[solver])
    if kind in ("multiclass", "binary", "multilabel"):
        ours, theirs = fastmlp.MLPClassifier(**params), sk_nn.MLPClassifier(**params)
    else:
        loss = "poisson" if kind == "poisson" else "squared_error"
        ours = fastmlp.MLPRegressor(loss=loss, **params)
        theirs = sk_nn.MLPRegressor(loss=loss, **params)
    _start_from(ours, X, y, W0, b0, 6, sw)
    _start_from(theirs, X, y, W0, b0, 6, sw)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        scale = np.abs(b).max()
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * scale)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert ours.n_iter_ == theirs.n_iter_ == 6
    assert ours.t_ == theirs.t_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10)


@pytest.mark.parametrize("activation", ["relu", "logistic", "identity"])
def test_same_run_as_sklearn_from_random_state(activation):
    """Same random_state: the same initial weights, shuffles and early-stopping split."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(150, 6))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 0)
    params = dict(hidden_layer_sizes=(12,), activation=activation, max_iter=15,
                  random_state=3, early_stopping=True, validation_fraction=0.2,
                  n_iter_no_change=3, tol=1e-3, batch_size=32, learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = fastmlp.MLPClassifier(**params).fit(X, y)
        theirs = sk_nn.MLPClassifier(**params).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert ours.validation_scores_ == theirs.validation_scores_
    assert ours.best_validation_score_ == theirs.best_validation_score_
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("est", ["classifier", "regressor"])
def test_lbfgs_reaches_sklearns_solution(est):
    rng = np.random.default_rng(12)
    X = rng.normal(size=(80, 5))
    if est == "classifier":
        y = (X[:, 0] * X[:, 1] > 0).astype(int)
        ours, theirs = (cls(hidden_layer_sizes=(6,), solver="lbfgs", alpha=0.1, max_iter=30,
                            random_state=0, activation="tanh")
                        for cls in (fastmlp.MLPClassifier, sk_nn.MLPClassifier))
    else:
        y = np.sin(X[:, 0]) + X[:, 1]
        ours, theirs = (cls(hidden_layer_sizes=(6,), solver="lbfgs", alpha=0.1, max_iter=30,
                            random_state=0, activation="tanh")
                        for cls in (fastmlp.MLPRegressor, sk_nn.MLPRegressor))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    # Same start (same random_state), same objective and gradient: L-BFGS-B follows the same
    # path up to rounding over 30 iterations.
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    assert ours.n_iter_ == theirs.n_iter_
