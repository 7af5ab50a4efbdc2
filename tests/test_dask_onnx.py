"""Scale-out with Dask and export to ONNX (skipped when the extras are not installed).

- Dask (extra ``[dask]``): a LocalCluster of 2 worker processes, created and closed here;
  ``dask_ml.wrappers.Incremental`` streams ``partial_fit`` over the blocks of a Dask array,
  ``ParallelPostFit`` predicts on the workers, and GridSearchCV runs under joblib's Dask
  backend.
- ONNX (extra ``[onnx]``): skl2onnx's own MLP converters, registered for fastmlp's
  estimators, export them; onnxruntime's outputs match ``predict``/``predict_proba``.
"""

import os

import numpy as np
import pytest

pytest.importorskip("sklearn")

import fastmlp  # noqa: E402
from fastmlp import MLPClassifier, MLPRegressor  # noqa: E402

# where the fastmlp under test lives (the checkout, or site-packages when installed): child
# processes get it on their path
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastmlp.__file__)))
quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _blobs(n=400, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3, size=(3, 6))
    y = rng.integers(0, 3, n)
    return centers[y] + rng.normal(size=(n, 6)), y


# ---------------------------------------------------------------------- Dask
@quiet
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_dask_incremental_parallel_post_fit_and_joblib_backend(monkeypatch):
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    wrappers = pytest.importorskip("dask_ml.wrappers")
    import joblib
    from sklearn.model_selection import GridSearchCV

    # the worker processes import fastmlp from this checkout when it is not installed
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    X, y = _blobs()
    Xd = da.from_array(X, chunks=(100, 6))
    yd = da.from_array(y, chunks=100)
    assert Xd.numblocks[0] == 4
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        inc = wrappers.Incremental(MLPClassifier(hidden_layer_sizes=(16,), random_state=0,
                                                 learning_rate_init=0.01, n_threads=1),
                                   shuffle_blocks=False)
        for _ in range(5):  # five passes over the four blocks
            inc.partial_fit(Xd, yd, classes=[0, 1, 2])
        fitted = inc.estimator_
        assert fitted.t_ == 5 * 400 and len(fitted.loss_curve_) == 20
        # the same blocks fed by hand give the same model: Incremental adds nothing
        local = MLPClassifier(hidden_layer_sizes=(16,), random_state=0,
                              learning_rate_init=0.01, n_threads=1)
        for _ in range(5):
            for s in range(0, 400, 100):
                local.partial_fit(X[s:s + 100], y[s:s + 100], classes=[0, 1, 2])
        np.testing.assert_array_equal(local.coefs_[0], fitted.coefs_[0])

        ppf = wrappers.ParallelPostFit(fitted)
        pred = ppf.predict(Xd)
        proba = ppf.predict_proba(Xd)
        assert isinstance(pred, da.Array)
        np.testing.assert_array_equal(pred.compute(), fitted.predict(X))
        np.testing.assert_allclose(proba.compute(), fitted.predict_proba(X), rtol=1e-15)
        assert (pred.compute() == y).mean() > 0.9

        reg = wrappers.Incremental(MLPRegressor(hidden_layer_sizes=(8,), random_state=0,
                                                n_threads=1), random_state=0)
        reg.fit(Xd, Xd[:, 0] * 2.0)
        assert reg.estimator_.t_ == 400

        with joblib.parallel_backend("dask"):
            search = GridSearchCV(MLPClassifier(max_iter=30, random_state=0, n_threads=1),
                                  {"alpha": [1e-4, 1e-2]}, cv=2, n_jobs=-1).fit(X, y)
        assert search.best_score_ > 0.9


# ---------------------------------------------------------------------- ONNX
def _onnx_session(model, X):
    skl2onnx = pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastmlp.estimators import register_onnx_converters
    register_onnx_converters()
    options = {id(model): {"zipmap": False}} if hasattr(model, "classes_") else None
    onx = skl2onnx.to_onnx(model, X[:1].astype(np.float32), options=options)
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: X.astype(np.float32)})


@quiet
@pytest.mark.parametrize("target", ["multiclass", "binary", "strings", "multilabel"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_onnx_classifier_matches(target, activation):
    X, y = _blobs(200, seed=1)
    Y = {"multiclass": y, "binary": y == 1, "strings": np.array(["x", "y", "z"])[y],
         "multilabel": np.c_[y == 0, y == 1, y >= 1].astype(int)}[target]
    model = MLPClassifier(hidden_layer_sizes=(10, 7), activation=activation, max_iter=40,
                          random_state=0).fit(X, Y)
    labels, proba = _onnx_session(model, X)
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=1e-5, atol=1e-5)
    expected = model.predict(X)
    np.testing.assert_array_equal(labels.reshape(expected.shape).astype(expected.dtype),
                                  expected)


@quiet
@pytest.mark.parametrize("n_out", [1, 3])
def test_onnx_regressor_matches(n_out):
    X, y = _blobs(200, seed=2)
    Y = np.c_[X[:, 0], X[:, 1] - X[:, 2], X.sum(axis=1)][:, :n_out].squeeze()
    model = MLPRegressor(hidden_layer_sizes=(12,), max_iter=60, random_state=0).fit(X, Y)
    (out,) = _onnx_session(model, X)
    np.testing.assert_allclose(out.reshape(np.shape(model.predict(X))), model.predict(X),
                               rtol=1e-5, atol=1e-5)


def test_onnx_registration_is_automatic_when_skl2onnx_is_imported():
    pytest.importorskip("skl2onnx")
    import subprocess
    import sys
    code = ("import numpy as np, skl2onnx, warnings\n"
            "from fastmlp import MLPClassifier\n"
            "warnings.simplefilter('ignore')\n"
            "X = np.random.default_rng(0).normal(size=(30, 3)); y = X[:, 0] > 0\n"
            "m = MLPClassifier(max_iter=3).fit(X, y)\n"
            "print(type(skl2onnx.to_onnx(m, X[:1].astype(np.float32))).__name__)")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ModelProto"
