"""fastmlp.MLPClassifier / MLPRegressor: behaviour, fastmlp's extras and scikit-learn tooling.

Agreement with scikit-learn's numbers is in test_sklearn_parity.py, its conformance suite in
test_estimator_checks.py, Dask and ONNX in test_dask_onnx.py.
"""

import io
import os
import pickle
import subprocess
import sys
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest

pytest.importorskip("sklearn")
import joblib  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import fastmlp  # noqa: E402
from fastmlp import MLPClassifier, MLPRegressor, callbacks  # noqa: E402
from fastmlp import estimators as est_module  # noqa: E402

# where the fastmlp under test lives (the checkout, or site-packages when installed): child
# processes get it on their path
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastmlp.__file__)))
quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3, size=(3, 5))
    y = rng.integers(0, 3, 240)
    X = centers[y] + rng.normal(size=(240, 5))
    return X, y


@pytest.fixture
def regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3 * np.sin(3 * X[:, 0])
    return X, y


def _run(code):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


# ---------------------------------------------------------------- optional dependency
def test_importing_fastmlp_does_not_import_sklearn():
    out = _run("import sys, fastmlp; print('sklearn' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_estimators_without_sklearn_say_how_to_install():
    out = _run("import sys; sys.modules['sklearn'] = None\n"
               "import fastmlp\n"
               "try:\n    fastmlp.MLPClassifier\nexcept ImportError as e:\n    print(e)")
    assert out.returncode == 0, out.stderr
    assert 'pip install "fastmlp[sklearn]"' in out.stdout


def test_lazy_export_is_the_estimator_class():
    assert fastmlp.MLPClassifier is est_module.MLPClassifier
    assert fastmlp.MLPRegressor is est_module.MLPRegressor
    with pytest.raises(AttributeError):
        fastmlp.NoSuchThing  # noqa: B018


# ---------------------------------------------------------------- classification
@quiet
def test_multiclass_fit_predict_and_attributes(blobs):
    X, y = blobs
    labels = np.array(["ant", "bee", "cat"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0).fit(X, labels)
    assert clf.score(X, labels) > 0.95
    np.testing.assert_array_equal(clf.classes_, ["ant", "bee", "cat"])
    proba = clf.predict_proba(X)
    assert proba.shape == (240, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 3 and clf.n_layers_ == 3
    assert [c.shape for c in clf.coefs_] == [(5, 16), (16, 3)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (3,)]
    assert clf.n_iter_ == 50 and clf.t_ == 50 * 240 and clf.n_features_in_ == 5
    assert len(clf.loss_curve_) == 50 and clf.loss_ == clf.loss_curve_[-1]
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    assert not hasattr(clf, "validation_loss_curve_")


@quiet
def test_binary_and_multilabel(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, y == 1)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    assert clf.predict_proba(X).shape == (240, 2)
    assert clf.predict(X).dtype == bool
    Y = np.c_[y == 0, y == 1, y >= 1].astype(int)
    ml = MLPClassifier(hidden_layer_sizes=(16,), max_iter=60, random_state=0).fit(X, Y)
    assert ml.out_activation_ == "logistic" and ml.n_outputs_ == 3
    assert ml.predict(X).shape == (240, 3)
    assert (ml.predict(X) == Y).mean() > 0.9


def test_partial_fit_classifier_needs_classes_first(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    for _ in range(5):
        clf.partial_fit(X[50:], y[50:])
    assert clf.n_iter_ == 1 and clf.t_ == 50 + 5 * 190 and len(clf.loss_curve_) == 6
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        clf.partial_fit(X[:3], [0, 1, 7])


def test_partial_fit_absent_for_lbfgs():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPRegressor(solver="sgd"), "partial_fit")


@quiet
def test_class_weight_is_a_sample_weight(blobs):
    X, y = blobs
    weights = {0: 2.0, 1: 0.5, 2: 1.0}
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                      class_weight=weights).fit(X, y)
    b = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(
        X, y, sample_weight=np.array([weights[k] for k in y]))
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(p, q)
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, class_weight="balanced").fit(X, y)
    with pytest.raises(ValueError, match="not among the classes"):
        MLPClassifier(max_iter=2, class_weight={5: 1.0}).fit(X, y)


# ---------------------------------------------------------------- regression
@quiet
def test_regressor_single_and_multi_output(regression):
    X, y = regression
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, random_state=0,
                       learning_rate_init=0.01).fit(X, y)
    assert reg.predict(X).shape == (200,) and reg.score(X, y) > 0.95
    assert reg.out_activation_ == "identity"
    Y = np.c_[y, -y, 2 * y]
    multi = MLPRegressor(hidden_layer_sizes=(32,), max_iter=100, random_state=0).fit(X, Y)
    assert multi.predict(X).shape == (200, 3) and multi.n_outputs_ == 3


@quiet
def test_poisson_regressor(regression):
    X, _ = regression
    rng = np.random.default_rng(2)
    y = rng.poisson(np.exp(0.5 * X[:, 0]))
    reg = MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=50,
                       random_state=0).fit(X, y)
    assert reg.out_activation_ == "exp"
    assert np.all(reg.predict(X) > 0)
    with pytest.raises(ValueError, match="y >= 0"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, -np.abs(X[:, 0]))


@quiet
def test_lbfgs_solver(regression):
    X, y = regression
    reg = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=300,
                       random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.99 and 0 < reg.n_iter_ <= 300
    assert not hasattr(reg, "loss_curve_")
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=3).fit(X, y)


# ---------------------------------------------------------------- training options
def test_convergence_warning_at_max_iter(regression):
    X, y = regression
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        MLPRegressor(max_iter=3).fit(X, y)


@quiet
def test_warm_start_continues(regression):
    X, y = regression
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=0)
    reg.fit(X, y)
    first = [c.copy() for c in reg.coefs_]
    reg.fit(X, y)
    assert len(reg.loss_curve_) == 10 and reg.t_ == 10 * 200
    assert not np.array_equal(first[0], reg.coefs_[0])
    cold = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    np.testing.assert_array_equal(cold.coefs_[0], first[0])


@quiet
def test_early_stopping_curves_and_best_weights(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, early_stopping=True,
                        n_iter_no_change=3, random_state=0).fit(X, y)
    assert clf.n_iter_ < 200
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    assert all(np.isfinite(clf.validation_loss_curve_))
    with pytest.raises(ValueError, match="early_stopping"):
        clf.partial_fit(X, y)


@quiet
def test_adaptive_learning_rate_divides_by_five(regression):
    X, y = regression
    params = dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.01, tol=1e9,
                  n_iter_no_change=1, max_iter=6, random_state=0)
    reg = MLPRegressor(**params).fit(X, y)
    # epoch 1 beats best_loss_=inf, then every second epoch triggers: 0.01 / 5 / 5
    assert reg._optimizer.learning_rate == pytest.approx(0.01 / 5 ** 2, rel=1e-15)
    from sklearn.neural_network import MLPRegressor as SkMLPRegressor
    assert reg._optimizer.learning_rate == SkMLPRegressor(**params).fit(
        X, y)._optimizer.learning_rate


@quiet
def test_dtype_float32_and_threads(blobs):
    X, y = blobs
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                      dtype="float32").fit(X, y)
    assert a.coefs_[0].dtype == np.float32 and a.predict_proba(X).dtype == np.float32
    b = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(
        X.astype(np.float32), y)
    assert b.coefs_[0].dtype == np.float32  # float32 input stays float32 (as scikit-learn)
    one, two = (MLPClassifier(hidden_layer_sizes=(64,), max_iter=3, random_state=0,
                              n_threads=n).fit(X, y) for n in (1, 2))
    np.testing.assert_array_equal(one.coefs_[0], two.coefs_[0])


@quiet
def test_dropout(blobs):
    X, y = blobs
    params = dict(hidden_layer_sizes=(16, 8), max_iter=10, random_state=0)
    plain = MLPClassifier(**params).fit(X, y)
    drop = MLPClassifier(dropout=0.3, **params).fit(X, y)
    again = MLPClassifier(dropout=[0.3, 0.3], **params).fit(X, y)
    assert not np.array_equal(plain.coefs_[0], drop.coefs_[0])
    np.testing.assert_array_equal(drop.coefs_[0], again.coefs_[0])
    # no dropout at prediction: deterministic outputs
    np.testing.assert_array_equal(drop.predict_proba(X), drop.predict_proba(X))
    with pytest.raises(ValueError, match="dropout needs a stochastic solver"):
        MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)
    with pytest.raises(ValueError, match="one rate per hidden layer"):
        MLPClassifier(dropout=[0.1], **params).fit(X, y)


@quiet
def test_callbacks(blobs):
    X, y = blobs
    history = callbacks.History()

    class Counter(callbacks.Callback):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            Counter.batches += 1

    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, batch_size=64, random_state=0,
                        callbacks=[history, Counter()]).fit(X, y)
    assert history.history["loss"] == clf.loss_curve_
    assert Counter.batches == 4 * 4
    stop = MLPClassifier(hidden_layer_sizes=(8,), max_iter=100, tol=0, random_state=0,
                         callbacks=[callbacks.EarlyStopping(monitor="loss", min_delta=1.0,
                                                            patience=1)]).fit(X, y)
    assert stop.n_iter_ == 2
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.0 if epoch >= 2 else lr)
    frozen = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, solver="sgd",
                           momentum=0.0, callbacks=[sched]).fit(X, y)
    assert frozen.loss_curve_[3] == pytest.approx(frozen.loss_curve_[4], rel=1e-12)
    val = callbacks.History()
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, early_stopping=True, random_state=0,
                  callbacks=[val]).fit(X, y)
    assert set(val.history) == {"loss", "val_loss", "val_score"}


@quiet
def test_verbose_prints_sklearns_lines(regression):
    X, y = regression
    buf = io.StringIO()
    with redirect_stdout(buf):
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, verbose=True).fit(X, y)
    assert "Iteration 1, loss = " in buf.getvalue()


# ---------------------------------------------------------------- sparse input
@quiet
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_equals_dense(blobs, fmt, monkeypatch):
    X, y = blobs
    X = np.where(np.abs(X) > 1.0, X, 0.0)
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    # small blocks: training, prediction and the validation loss all cross block edges
    monkeypatch.setattr(est_module, "_SPARSE_BLOCK_BYTES", 64 * 5 * 8)
    params = dict(hidden_layer_sizes=(8,), max_iter=4, batch_size=32, random_state=0,
                  early_stopping=True)
    dense = MLPClassifier(**params).fit(X, y)
    sparse = MLPClassifier(**params).fit(Xs, y)
    for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert dense.loss_curve_ == sparse.loss_curve_
    np.testing.assert_allclose(dense.validation_loss_curve_, sparse.validation_loss_curve_,
                               rtol=1e-13)
    np.testing.assert_array_equal(dense.predict_proba(X), sparse.predict_proba(Xs))


@quiet
def test_sparse_lbfgs_in_blocks_equals_dense(regression, monkeypatch):
    X, y = regression
    X = np.where(np.abs(X) > 0.5, X, 0.0)
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(X))
    monkeypatch.setattr(est_module, "_SPARSE_BLOCK_BYTES", 37 * 4 * 8)  # 6 blocks
    params = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=15, random_state=0,
                  activation="tanh", alpha=0.1)
    dense = MLPRegressor(**params).fit(X, y, sample_weight=w)
    sparse = MLPRegressor(**params).fit(sp.csr_matrix(X), y, sample_weight=w)
    assert sparse.loss_ == pytest.approx(dense.loss_, rel=1e-9)
    np.testing.assert_allclose(sparse.coefs_[0], dense.coefs_[0], rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- bad input and parameters
@pytest.mark.parametrize("param,value,match", [
    ("solver", "newton", "'solver' parameter of MLPClassifier must be a str among"),
    ("activation", "swish", "'activation' parameter"),
    ("alpha", -1.0, "'alpha' parameter of MLPClassifier must be a float in the range"),
    ("batch_size", 0, "'batch_size' parameter"),
    ("hidden_layer_sizes", (10, 0), "'hidden_layer_sizes' parameter"),
    ("learning_rate", "cosine", "'learning_rate' parameter"),
    ("momentum", 1.5, "'momentum' parameter"),
    ("validation_fraction", 1.0, "'validation_fraction' parameter"),
    ("n_iter_no_change", 0, "'n_iter_no_change' parameter"),
    ("dtype", "int8", "'dtype' parameter"),
    ("n_threads", 0, "'n_threads' parameter"),
    ("device", "tpu", "'device' parameter"),
    ("dropout", 1.0, "'dropout' parameter"),
    ("callbacks", ["x"], "'callbacks' parameter"),
    ("class_weight", "auto", "'class_weight' parameter"),
])
def test_invalid_parameters_name_themselves(blobs, param, value, match):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**{param: value}).fit(X, y)


def test_invalid_regressor_loss(regression):
    with pytest.raises(ValueError, match="'loss' parameter of MLPRegressor"):
        MLPRegressor(loss="huber").fit(*regression)


_DEVICE_CODE = """
import warnings, numpy as np
from fastmlp import MLPClassifier, MLPRegressor
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
X = rng.normal(size=(24, 3)); y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
params = dict(hidden_layer_sizes=(4,), max_iter=1, batch_size=8, random_state=0, alpha=0.01)
try:
    gpu = MLPClassifier(device="cuda", **params).fit(X, y)
except (RuntimeError, ImportError) as e:
    print("REFUSED", e); raise SystemExit
cpu = MLPClassifier(device="cpu", **params).fit(X, y)
print("DIFF", max(np.abs(a - b).max() for a, b in zip(gpu.coefs_, cpu.coefs_)))
print("PROBA", np.abs(gpu.predict_proba(X) - cpu.predict_proba(X)).max())
reg = MLPRegressor(device="cuda", solver="lbfgs", max_iter=2, **{k: v for k, v in params.items()
                   if k != "max_iter"}).fit(X, X[:, 0])
print("LBFGS", reg.n_iter_)
"""


@pytest.mark.parametrize("simulator", ["1", "0"])
def test_device_cuda(simulator):
    """device='cuda' trains on fastmlp's CUDA engine (here under Numba's simulator when no
    GPU is present) with the CPU's numbers, or refuses clearly where no GPU is usable."""
    pytest.importorskip("numba")
    pytest.importorskip("numba_cuda")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               NUMBA_ENABLE_CUDASIM=simulator)
    out = subprocess.run([sys.executable, "-c", _DEVICE_CODE], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    if out.stdout.startswith("REFUSED"):
        assert simulator == "0" and "device='cuda'" in out.stdout
        return
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert float(lines["DIFF"]) < 1e-10 and float(lines["PROBA"]) < 1e-10
    assert int(lines["LBFGS"]) >= 1


def test_device_auto_and_cpu(blobs):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(device="cpu", max_iter=1, random_state=0).fit(X, y)
        b = MLPClassifier(device="auto", max_iter=1, random_state=0).fit(X, y)
    np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], rtol=1e-10, atol=1e-12)


def test_bad_data(blobs):
    X, y = blobs
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier().fit(Xn, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="non-negative"):
        MLPClassifier().fit(X, y, sample_weight=-np.ones(len(y)))


# ---------------------------------------------------------------- tooling
@quiet
def test_pipeline_and_column_transformer(blobs):
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder
    X, y = blobs
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=30,
                                                         learning_rate_init=0.02,
                                                         random_state=0))
    assert pipe.fit(X, y).score(X, y) > 0.9
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    df["colour"] = np.array(["red", "green"])[np.arange(len(df)) % 2]
    ct = ColumnTransformer([("num", StandardScaler(), [f"f{i}" for i in range(5)]),
                            ("cat", OneHotEncoder(), ["colour"])])
    model = make_pipeline(ct, MLPClassifier(hidden_layer_sizes=(8,), max_iter=30,
                                            learning_rate_init=0.02, random_state=0)).fit(df, y)
    assert model.score(df, y) > 0.9
    named = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(
        df.drop(columns="colour"), y)
    np.testing.assert_array_equal(named.feature_names_in_, [f"f{i}" for i in range(5)])


@quiet
def test_grid_search_two_processes(blobs):
    X, y = blobs
    search = GridSearchCV(MLPClassifier(max_iter=20, random_state=0, n_threads=1),
                          {"hidden_layer_sizes": [(4,), (16,)], "alpha": [1e-4, 1e-1]},
                          cv=3, n_jobs=2).fit(X, y)
    assert search.best_score_ > 0.9
    assert isinstance(search.best_estimator_, MLPClassifier)


@quiet
def test_clone_pickle_and_joblib_round_trip(blobs, tmp_path):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, dropout=0.1)
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "coefs_")
    clf.fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    joblib.dump(clf, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    # the optimizer state travels too: partial_fit continues identically after a round trip
    clf.partial_fit(X, y)
    again.partial_fit(X, y)
    np.testing.assert_array_equal(again.coefs_[0], clf.coefs_[0])


@quiet
def test_assigning_weights_reaches_the_engine(regression):
    X, y = regression
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    reg.coefs_ = [np.zeros_like(c) for c in reg.coefs_]
    reg.intercepts_ = [np.full_like(b, 2.5) for b in reg.intercepts_]
    np.testing.assert_allclose(reg.predict(X), 2.5)
    reg.coefs_[1][...] = 1.0  # in-place edits of the views count too
    assert np.all(reg.predict(X) > 2.5)


@quiet
@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "selu", "softplus", "softsign",
                                        "hard_sigmoid"])
def test_extra_hidden_activations(blobs, activation):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(16,), activation=activation, max_iter=40,
                        learning_rate_init=0.01, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert clf.activation == activation
