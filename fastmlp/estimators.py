"""scikit-learn estimators on the C engine: :class:`MLPClassifier` and :class:`MLPRegressor`.

They take scikit-learn 1.9's ``MLPClassifier`` / ``MLPRegressor`` parameters with the same
names, defaults and meaning, set the same fitted attributes, and follow the same training
procedure step for step (weight initialization, shuffling and the early-stopping split draw
from ``random_state`` exactly as scikit-learn does), while every forward pass, loss,
backward pass and optimizer update runs in fastmlp's C engine (``fastmlp._core.Engine``,
the engine behind :class:`fastmlp.models.Sequential`). From the same weights, in float64,
they reproduce scikit-learn's numbers: the engine implements scikit-learn's loss
definitions (``log_loss``, half squared error, half Poisson deviance), its L2 term
``alpha / (2 * sum of the batch's sample weights) * ||W||^2`` on the kernels of every batch,
and its SGD (momentum, Nesterov) and Adam update rules.

fastmlp adds ``dtype``, ``n_threads``, ``device``, ``dropout``, ``callbacks``, ``class_weight``
(classifier), more hidden activations, and ``validation_loss_curve_``.

Sparse input (CSR/CSC) is accepted and never densified whole: rows are densified a block at
a time (one block of batches per engine call while training, a block of rows per prediction
call, a block of rows per loss evaluation with ``solver='lbfgs'``), so memory stays bounded
by the block size, not by the data set.

scikit-learn is an optional dependency: ``pip install "fastmlp[sklearn]"``.

Scale-out: ``partial_fit`` makes the estimators work with ``dask_ml.wrappers.Incremental``
(training streamed over a Dask array's blocks) and ``dask_ml.wrappers.ParallelPostFit``
(prediction on the workers); see the README (extra ``[dask]``). ONNX export goes through
skl2onnx's own MLP converter: :func:`register_onnx_converters` (extra ``[onnx]``).
"""

import numbers
import sys
import time
import warnings

import numpy as np

try:
    import scipy.optimize
    import scipy.sparse
    from sklearn.base import BaseEstimator, ClassifierMixin, MultiOutputMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "fastmlp.MLPClassifier and fastmlp.MLPRegressor need scikit-learn (>= 1.6) and SciPy; "
        'install them with: pip install "fastmlp[sklearn]"') from exc

from . import _core
from . import callbacks as callbacks_module
from ._config import get_num_threads
from .cuda import engine_class, resolve_device

__all__ = ["MLPClassifier", "MLPRegressor", "register_onnx_converters", "InvalidParameterError"]

_STOCHASTIC_SOLVERS = ("sgd", "adam")
#: Hidden activations: scikit-learn's four, then the engine's others.
_HIDDEN_ACTIVATIONS = {
    "identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
    "leaky_relu": "leaky_relu", "elu": "elu", "selu": "selu", "softplus": "softplus",
    "softsign": "softsign", "hard_sigmoid": "hard_sigmoid",
}
_ACT_ALPHA = {"leaky_relu": 0.2, "elu": 1.0}  # as fastmlp.activations (Keras defaults)
_OUT_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "softmax": "softmax",
                    "exp": "exponential"}
#: Rows of a dense block cut from sparse input: at most this many bytes.
_SPARSE_BLOCK_BYTES = 16 << 20
#: Rows per engine call when predicting.
_PREDICT_BATCH = 1024
#: Seconds of training per engine call (the engine keeps the epoch sums: chunking never
#: changes the numbers).
_CHUNK_SECONDS = 0.1


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter has an invalid type or value (raised by ``fit``)."""


# ---------------------------------------------------------------------- validation
def _is_bool(v):
    return isinstance(v, (bool, np.bool_))


def _is_int(v):
    return isinstance(v, numbers.Integral) and not _is_bool(v)


def _is_real(v):
    return isinstance(v, numbers.Real) and not _is_bool(v)


def _interval(low, high, closed):
    lo = "-inf" if low is None else low
    hi = "inf" if high is None else high
    return (f"{'[' if closed in ('left', 'both') else '('}{lo}, {hi}"
            f"{']' if closed in ('right', 'both') else ')'}")


class _Check:
    """One parameter rule: a predicate and the text saying what it accepts."""

    def __init__(self, ok, text):
        self.ok, self.text = ok, text


def _options(*values):
    return _Check(lambda v: isinstance(v, str) and v in values,
                  f"a str among {{{', '.join(repr(x) for x in sorted(values))}}}")


def _real(low=None, high=None, closed="both"):
    def ok(v):
        if not _is_real(v) or not np.isfinite(v):
            return False
        if low is not None and (v < low if closed in ("left", "both") else v <= low):
            return False
        return not (high is not None and (v > high if closed in ("right", "both") else v >= high))
    return _Check(ok, f"a float in the range {_interval(low, high, closed)}")


def _integer(low):
    return _Check(lambda v: _is_int(v) and v >= low,
                  f"an int in the range {_interval(low, None, 'left')}")


_BOOLEAN = _Check(_is_bool, "an instance of 'bool'")


def _hidden_sizes_ok(v):
    if _is_int(v):
        return v >= 1
    try:
        sizes = list(v)
    except TypeError:
        return False
    return all(_is_int(s) and s >= 1 for s in sizes)


def _dropout_ok(v):
    if _is_real(v):
        return 0 <= v < 1
    try:
        rates = list(v)
    except TypeError:
        return False
    return all(_is_real(r) and 0 <= r < 1 for r in rates)


def _dtype_ok(v):
    if v is None:
        return True
    try:
        return np.dtype(v) in (np.float32, np.float64)
    except TypeError:
        return False


_COMMON_RULES = {
    "hidden_layer_sizes": _Check(_hidden_sizes_ok,
                                 "an int >= 1 or an array-like of ints >= 1"),
    "activation": _options(*_HIDDEN_ACTIVATIONS),
    "solver": _options("lbfgs", "sgd", "adam"),
    "alpha": _real(0, None, "left"),
    "batch_size": _Check(lambda v: v == "auto" if isinstance(v, str) else _is_int(v) and v >= 1,
                         "'auto' or an int in the range [1, inf)"),
    "learning_rate": _options("constant", "invscaling", "adaptive"),
    "learning_rate_init": _real(0, None, "neither"),
    "power_t": _real(0, None, "left"),
    "max_iter": _integer(1),
    "shuffle": _BOOLEAN,
    "random_state": _Check(lambda v: v is None or _is_int(v) or isinstance(
        v, np.random.RandomState), "None, an int or a numpy.random.RandomState"),
    "tol": _real(0, None, "left"),
    "verbose": _Check(lambda v: _is_bool(v) or _is_int(v), "a bool or an int"),
    "warm_start": _BOOLEAN,
    "momentum": _real(0, 1, "both"),
    "nesterovs_momentum": _BOOLEAN,
    "early_stopping": _BOOLEAN,
    "validation_fraction": _real(0, 1, "left"),
    "beta_1": _real(0, 1, "left"),
    "beta_2": _real(0, 1, "left"),
    "epsilon": _real(0, None, "neither"),
    "n_iter_no_change": _Check(lambda v: (_is_int(v) and v >= 1) or (
        _is_real(v) and v == np.inf), "an int in the range [1, inf) or numpy.inf"),
    "max_fun": _integer(1),
    "dtype": _Check(_dtype_ok, "None, 'float32' or 'float64'"),
    "n_threads": _Check(lambda v: v is None or (_is_int(v) and v >= 1),
                        "None or an int in the range [1, inf)"),
    "device": _options("cpu", "auto", "cuda"),
    "dropout": _Check(_dropout_ok, "a float in [0, 1) or an array-like of them, one per "
                                   "hidden layer"),
    "callbacks": _Check(lambda v: v is None or (isinstance(v, (list, tuple)) and all(
        isinstance(cb, callbacks_module.Callback) for cb in v)),
        "None or a list of fastmlp.callbacks.Callback"),
}


def _check_sample_weight(sample_weight, n_samples, dtype):
    """As scikit-learn's: a scalar or a 1-D array of n_samples finite numbers, not all
    zero; fastmlp also refuses negative weights."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, sample_weight, dtype=dtype)
    else:
        sample_weight = check_array(sample_weight, accept_sparse=False, ensure_2d=False,
                                    dtype=dtype, order="C", input_name="sample_weight")
        if sample_weight.ndim != 1:
            raise ValueError(f"Sample weights must be 1D array or scalar, got "
                             f"{sample_weight.ndim}D array. Expected either a scalar value "
                             f"or a 1D array of length {n_samples}.")
        if sample_weight.shape != (n_samples,):
            raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected "
                             f"{(n_samples,)}!")
    sample_weight = np.ascontiguousarray(sample_weight, dtype=dtype)
    if not np.all(np.isfinite(sample_weight)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if np.any(sample_weight < 0):
        raise ValueError("sample_weight must be non-negative.")
    if not np.any(sample_weight != 0):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return sample_weight


def _take(a, rows):
    return None if a is None else a[rows]


def _dense_rows(X, rows, dtype):
    """Rows of X (dense or CSR) as a C-contiguous array of dtype."""
    block = X[rows]
    if scipy.sparse.issparse(block):
        return np.ascontiguousarray(block.toarray(), dtype=dtype)
    return np.ascontiguousarray(block, dtype=dtype)


def _shuffle_like_sklearn(idx, random_state):
    """``sklearn.utils.shuffle(idx, random_state=random_state)`` without its per-call argument
    validation (a tenth of a small fit's time): the same draws from the same generator, so
    the same permutation."""
    perm = np.arange(idx.shape[0])
    random_state.shuffle(perm)
    return idx[perm]


def _sparse_block_rows(n_features, itemsize):
    return max(1, _SPARSE_BLOCK_BYTES // max(1, n_features * itemsize))


class _Optimizer:
    """The Python side of the solver's state: the current learning rate and its schedule
    (scikit-learn's ``SGDOptimizer`` / ``AdamOptimizer``); the moments live in the
    engine's ``opt_state``."""

    def __init__(self, solver, learning_rate_init, lr_schedule, power_t):
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.power_t = power_t

    def iteration_ends(self, time_step):
        if self.solver == "sgd" and self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.solver != "sgd" or self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class _LearningRate:
    """``model.optimizer`` for fastmlp callbacks: its ``learning_rate`` is the solver's."""

    def __init__(self, estimator):
        self._estimator = estimator

    @property
    def learning_rate(self):
        return self._estimator._optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._estimator._optimizer.learning_rate = float(value)


class _CallbackModel:
    """What fastmlp callbacks see as ``self.model`` while an estimator trains."""

    def __init__(self, estimator):
        self._estimator = estimator
        self.stop_training = False
        self.optimizer = _LearningRate(estimator)

    def get_weights(self):
        est = self._estimator
        return [w.copy() for c, b in zip(est.coefs_, est.intercepts_) for w in (c, b)]

    def set_weights(self, weights):
        est = self._estimator
        for i, (c, b) in enumerate(zip(est.coefs_, est.intercepts_)):
            c[...] = weights[2 * i]
            b[...] = weights[2 * i + 1]

    def save_weights(self, filepath):
        np.savez(filepath, *self.get_weights())

    def save(self, filepath):
        import joblib
        joblib.dump(self._estimator, filepath)


# ---------------------------------------------------------------------- the estimators
class _BaseMLP(BaseEstimator):
    """Shared machinery of MLPClassifier and MLPRegressor (not for direct use)."""

    _rules = _COMMON_RULES

    # ---- parameters
    def _validate_params(self):
        name = type(self).__name__
        for key, value in self.get_params(deep=False).items():
            rule = self._rules.get(key)
            if rule is not None and not rule.ok(value):
                raise InvalidParameterError(
                    f"The {key!r} parameter of {name} must be {rule.text}. Got {value!r} "
                    "instead.")
        hidden = self._hidden_sizes()
        if not _is_real(self.dropout) and len(list(self.dropout)) != len(hidden):
            raise InvalidParameterError(
                f"The 'dropout' parameter of {name} must give one rate per hidden layer "
                f"({len(hidden)}); got {list(self.dropout)!r}")
        if self.solver == "lbfgs" and np.any(self._dropout_rates() > 0):
            raise InvalidParameterError(
                f"{name}: dropout needs a stochastic solver ('sgd' or 'adam'); "
                "solver='lbfgs' computes the full-batch loss without it")

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        return [int(s) for s in sizes]

    def _dropout_rates(self):
        hidden = self._hidden_sizes()
        if _is_real(self.dropout):
            return np.full(len(hidden), float(self.dropout))
        return np.asarray(list(self.dropout), dtype=np.float64)

    def _model_dtype(self, X):
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)

    def _n_threads(self):
        return get_num_threads() if self.n_threads is None else int(self.n_threads)

    # ---- the engine
    def _loss_name(self):
        raise NotImplementedError

    def _spec(self, layer_units, dtype):
        """Everything the engine is built from; a different spec means a new engine."""
        loss = self._loss_name()
        device = resolve_device(self.device)  # raises for 'cuda' without a usable GPU
        return (tuple(int(u) for u in layer_units), self.activation, self.out_activation_,
                np.dtype(dtype).name, float(self.alpha), tuple(self._dropout_rates()), loss,
                device)

    def _build_engine(self, spec):
        units, activation, out_act, dtype, alpha, dropout, loss, device = spec
        n_layers = len(units) - 1
        acts = [_HIDDEN_ACTIVATIONS[activation]] * (n_layers - 1) + [_OUT_ACTIVATIONS[out_act]]
        engine_loss = {"log_loss": "log_loss", "squared_error": "half_squared_error",
                       "poisson": "half_poisson"}[loss]
        # Layer l's dropout acts on its input: none on the data, dropout[i] on hidden i's output.
        rates = [0.0] + list(dropout)
        # scikit-learn's L2 term is alpha / 2 * ||W||^2 on kernels only, normalized per batch
        # by the batch's weight sum (norm="weights"); its squared_error reports the mean over
        # outputs while descending along their sum (output_mean).
        return engine_class(device)(
            units, [_core.ACTIVATIONS[a] for a in acts], [_ACT_ALPHA.get(a, 0.0) for a in acts],
            [True] * n_layers, rates, [0.0] * n_layers, [alpha / 2.0] * n_layers,
            _core.LOSSES[engine_loss], dtype, norm="weights",
            output_mean=engine_loss == "half_squared_error")

    def _engine_views(self, engine):
        coefs, intercepts = [], []
        for w_off, shape, b_off in engine.layout():
            coefs.append(engine.params[w_off:w_off + shape[0] * shape[1]].reshape(shape))
            intercepts.append(engine.params[b_off:b_off + shape[1]])
        return coefs, intercepts

    def _engine(self, spec=None):
        """The engine holding coefs_ and intercepts_ (as views into its parameters).

        Rebuilt when the spec changed or after unpickling; weights assigned to ``coefs_`` /
        ``intercepts_`` (new arrays or lists) are copied in first.
        """
        if spec is None:  # predicting: a model trained on a GPU also runs where there is none
            spec = self._spec_
            if spec[-1] == "cuda" and self.__dict__.get("_engine_") is None and \
                    resolve_device("auto") != "cuda":
                spec = spec[:-1] + ("cpu",)
        engine = self.__dict__.get("_engine_")
        if engine is None or self.__dict__.get("_engine_spec") != spec:
            old = engine
            engine = self._build_engine(spec)
            coefs, intercepts = self._engine_views(engine)
            for dst, src in zip(coefs + intercepts, list(self.coefs_) + list(self.intercepts_)):
                dst[...] = src
            saved = self.__dict__.pop("_opt_saved", None)
            if old is not None and old.n_params == engine.n_params:
                engine.opt_state[...] = old.opt_state
                engine.iterations = old.iterations
            elif saved is not None and saved[0].shape == engine.opt_state.shape:
                engine.opt_state[...] = saved[0]
                engine.iterations = saved[1]
            self._engine_ = engine
            self._engine_spec = spec
            self.coefs_, self.intercepts_ = coefs, intercepts
            self._views = (list(coefs), list(intercepts))
        else:
            views = self._views
            if len(self.coefs_) != len(views[0]) or len(self.intercepts_) != len(views[1]) or \
                    any(a is not b for a, b in zip(list(self.coefs_) + list(self.intercepts_),
                                                   views[0] + views[1])):
                for dst, src in zip(views[0] + views[1],
                                    list(self.coefs_) + list(self.intercepts_)):
                    if np.shape(src) != dst.shape:
                        raise ValueError(f"coefs_/intercepts_ hold an array of shape "
                                         f"{np.shape(src)} where the network has {dst.shape}")
                    dst[...] = src
                self.coefs_, self.intercepts_ = list(views[0]), list(views[1])
        engine.set_num_threads(self._n_threads())
        return engine

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        engine = state.pop("_engine_", None)
        state.pop("_engine_spec", None)
        state.pop("_views", None)
        if engine is not None:
            state["coefs_"] = [np.array(c) for c in state["coefs_"]]
            state["intercepts_"] = [np.array(b) for b in state["intercepts_"]]
            state["_opt_saved"] = (engine.opt_state.copy(), int(engine.iterations))
        return state

    def __setstate__(self, state):
        super().__setstate__(state)

    # ---- fitting
    def _initialize(self, y, layer_units, dtype):
        """scikit-learn's _initialize, draw for draw, so random_state gives its weights."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        self.coefs_ = []
        self.intercepts_ = []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            factor = 2.0 if self.activation == "logistic" else 6.0
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            self.coefs_.append(coef.astype(dtype, copy=False))
            self.intercepts_.append(intercept.astype(dtype, copy=False))
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [i.copy() for i in self.intercepts_]
        self.__dict__.pop("_engine_", None)
        self.__dict__.pop("_opt_saved", None)
        if hasattr(self, "validation_loss_curve_"):
            del self.validation_loss_curve_
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._validate_params()
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y, y_orig = self._validate_input(X, y, incremental, reset=first_pass)
        dtype = self._model_dtype(X) if first_pass else np.dtype(self._spec_[3])
        if scipy.sparse.issparse(X):
            X = X.tocsr().astype(dtype, copy=False)
        else:
            X = np.asarray(X, dtype=dtype)
        n_samples, n_features = X.shape
        sample_weight = _check_sample_weight(sample_weight, n_samples, dtype)
        sample_weight = self._apply_class_weight(sample_weight, y_orig, incremental, dtype)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self._check_targets(y)
        layer_units = [n_features] + hidden + [y.shape[1]]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, dtype)
        elif self.n_outputs_ != y.shape[1] or self.n_layers_ != len(layer_units) or \
                [c.shape for c in self.coefs_] != list(zip(layer_units[:-1], layer_units[1:])):
            raise ValueError(f"The network fitted before has layer sizes "
                             f"{[self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]}"
                             f"; this call needs {layer_units} (hidden_layer_sizes and the "
                             "number of outputs cannot change with warm_start or partial_fit)")
        self._spec_ = self._spec(layer_units, dtype)
        engine = self._engine()
        T = np.ascontiguousarray(y, dtype=dtype)
        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(engine, X, T, y, sample_weight, incremental)
        else:
            self._fit_lbfgs(engine, X, T, sample_weight)
        if not np.all(np.isfinite(engine.params)):
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        _auto_register_onnx()
        return self

    def _check_targets(self, y):
        pass

    def _apply_class_weight(self, sample_weight, y_orig, incremental, dtype):
        return sample_weight

    def _fit_lbfgs(self, engine, X, T, sample_weight):
        if self.verbose:
            print(f"{type(self).__name__}: L-BFGS-B on {X.shape[0]} samples, "
                  f"{engine.n_params} parameters")
        loss_grad = self._lbfgs_objective(engine, X, T, sample_weight)
        x0 = engine.params.astype(np.float64)
        opt_res = scipy.optimize.minimize(
            loss_grad, x0, method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        if opt_res.status != 0:
            message = opt_res.message
            if isinstance(message, bytes):
                message = message.decode("latin1")
            warnings.warn(
                f"lbfgs failed to converge after {opt_res.nit} iteration(s) "
                f"(status={opt_res.status}):\n{message}.\n\nIncrease the number of iterations "
                f"to improve the convergence (max_iter={self.max_iter}).",
                ConvergenceWarning, stacklevel=3)
        self.n_iter_ = min(opt_res.nit, self.max_iter)
        self.loss_ = float(opt_res.fun)
        engine.params[...] = opt_res.x

    def _lbfgs_objective(self, engine, X, T, sample_weight):
        """fun(params) -> (loss, gradient) with the engine's backprop over all rows.

        Dense data is one batch, exactly scikit-learn's objective. Sparse data goes in
        blocks of densified rows: each block's weights are scaled by the number of blocks B,
        so that its penalty term is P / (B S_b); weighting block b by S_b / S then sums to
        exactly (sum of weighted losses + P) / S, the one-batch objective.
        """
        n = X.shape[0]
        if not scipy.sparse.issparse(X):
            def loss_grad(p):
                engine.params[...] = p
                loss = engine.loss_and_grad(X, T, None, sample_weight)
                return loss, engine.grads.astype(np.float64)
            return loss_grad
        rows = _sparse_block_rows(X.shape[1], X.dtype.itemsize)
        sw = np.ones(n, dtype=X.dtype) if sample_weight is None else sample_weight
        blocks = [slice(s, min(n, s + rows)) for s in range(0, n, rows)]
        sums = [float(sw[b].sum(dtype=np.float64)) for b in blocks]
        blocks = [(b, s) for b, s in zip(blocks, sums) if s > 0]
        total, n_blocks = sum(s for _, s in blocks), len(blocks)

        def loss_grad(p):
            engine.params[...] = p
            loss, grad = 0.0, np.zeros(engine.n_params)
            for b, s in blocks:
                part = engine.loss_and_grad(_dense_rows(X, b, X.dtype), T[b], None,
                                            sw[b] * X.dtype.type(n_blocks))
                loss += part * (s / total)
                grad += engine.grads * (s / total)
            return loss, grad
        return loss_grad

    def _new_optimizer(self, engine):
        self._optimizer = _Optimizer(self.solver, self.learning_rate_init, self.learning_rate,
                                     self.power_t)
        self._push_optimizer(engine)
        engine.reset_optimizer_state()

    def _push_optimizer(self, engine):
        lr = float(self._optimizer.learning_rate)
        if self.solver == "sgd":
            kind, config = _core.OPTIMIZERS["sgd"], {
                "learning_rate": lr, "momentum": float(self.momentum),
                "nesterov": bool(self.nesterovs_momentum)}
        else:
            kind, config = _core.OPTIMIZERS["adam_sklearn"], {
                "learning_rate": lr, "beta_1": float(self.beta_1),
                "beta_2": float(self.beta_2), "epsilon": float(self.epsilon)}
        if engine.opt_kind != kind or engine.opt_config != config:
            engine.set_optimizer(kind, config)

    def _fit_stochastic(self, engine, X, T, y, sample_weight, incremental):
        if not incremental or not hasattr(self, "_optimizer"):
            self._new_optimizer(engine)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            # scikit-learn's split, drawn from the same random state: don't stratify in
            # multilabel classification.
            stratify = y if (self._is_classifier and self.n_outputs_ == 1) else None
            idx_train, idx_val = train_test_split(
                np.arange(X.shape[0]), random_state=self._random_state,
                test_size=self.validation_fraction, stratify=stratify)
            if idx_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            X_train, T_train = X[idx_train], T[idx_train]
            sw_train, sw_val = _take(sample_weight, idx_train), _take(sample_weight, idx_val)
            X_val, T_val = X[idx_val], T[idx_val]
            y_val = self._val_targets(y[idx_val])
        else:
            X_train, T_train, sw_train = X, T, sample_weight
            X_val = T_val = y_val = sw_val = None
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        n_batches = -(-n_samples // batch_size)
        dropout_seed = (int(self._random_state.randint(0, 2**31 - 1))
                        if np.any(self._dropout_rates() > 0) else 0)
        cb_model = _CallbackModel(self)
        cbs = callbacks_module.CallbackList(
            self.callbacks, cb_model,
            {"verbose": self.verbose, "epochs": self.max_iter, "steps": n_batches})
        logs = {}
        cbs.call("on_train_begin", logs)
        try:
            self.n_iter_ = 0
            for it in range(self.max_iter):
                cbs.call("on_epoch_begin", it, {})
                self._push_optimizer(engine)
                if self.shuffle:
                    sample_idx = _shuffle_like_sklearn(sample_idx, self._random_state)
                order = np.ascontiguousarray(sample_idx, dtype=np.int64)
                loss_sum = self._train_epoch(engine, X_train, T_train, sw_train, order,
                                             batch_size, n_batches, dropout_seed, cbs)
                self.n_iter_ += 1
                self.loss_ = loss_sum / X_train.shape[0]
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
                logs = {"loss": self.loss_}
                if early_stopping:
                    val_loss = self._objective_on(engine, X_val, T_val, sw_val, batch_size)
                    self.validation_loss_curve_.append(val_loss)
                    logs.update(val_loss=val_loss, val_score=self.validation_scores_[-1])
                self._optimizer.iteration_ends(self.t_)
                cbs.call("on_epoch_end", it, logs)
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = ("Validation score did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    if self._optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if cb_model.stop_training:
                    break
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                        "optimization hasn't converged yet." % self.max_iter,
                        ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        cbs.call("on_train_end", logs)
        if early_stopping:  # restore the best weights
            for dst, src in zip(self.coefs_ + self.intercepts_,
                                self._best_coefs + self._best_intercepts):
                dst[...] = src

    def _train_epoch(self, engine, X, T, sw, order, batch_size, n_batches, seed, cbs):
        """One pass over the batches of `order`; returns sum of batch objective * rows."""
        totals = engine.new_totals()
        sparse = scipy.sparse.issparse(X)
        if sparse:
            per_call = max(1, _sparse_block_rows(X.shape[1], X.dtype.itemsize) // batch_size)
        else:
            per_call = max(1, int(4e8 // max(1, 6 * batch_size * engine.n_params)))
        if cbs.per_batch:
            per_call = 1
        batch = 0
        while batch < n_batches:
            count = min(per_call, n_batches - batch)
            if cbs.per_batch:
                cbs.call("on_train_batch_begin", batch, {})
            start = time.perf_counter()
            if sparse:  # densify just this run of batches
                rows = order[batch * batch_size:(batch + count) * batch_size]
                status, loss_sum, seen, _, _, _ = engine.train(
                    _dense_rows(X, rows, X.dtype), T[rows], None, _take(sw, rows),
                    np.arange(len(rows), dtype=np.int64), 0, count, batch_size, seed, totals)
            else:
                status, loss_sum, seen, _, _, _ = engine.train(
                    X, T, None, sw, order, batch, count, batch_size, seed, totals)
            if status != 0:
                raise ValueError("Solver produced non-finite parameter weights. The input "
                                 "data may contain large values and need to be preprocessed.")
            batch += count
            if cbs.per_batch:
                cbs.call("on_train_batch_end", batch - 1, {"loss": loss_sum / seen})
            elif not sparse:
                elapsed = time.perf_counter() - start
                per_call = (per_call * 2 if elapsed <= 0 else
                            max(1, min(int(per_call * _CHUNK_SECONDS / elapsed), per_call * 4)))
        return float(totals[0])

    def _objective_on(self, engine, X, T, sw, batch_size):
        """The training objective averaged over X's batches of batch_size (the validation
        loss): the same quantity as loss_curve_, measured without updating."""
        if scipy.sparse.issparse(X):
            total, seen = 0.0, 0
            rows = max(batch_size, _sparse_block_rows(X.shape[1], X.dtype.itemsize)
                       // batch_size * batch_size)
            for s in range(0, X.shape[0], rows):
                b = slice(s, s + rows)
                loss_sum, n, _, _ = engine.evaluate(_dense_rows(X, b, X.dtype), T[b], None,
                                                    _take(sw, b), batch_size)
                total, seen = total + loss_sum, seen + n
            return total / seen
        loss_sum, n, _, _ = engine.evaluate(X, T, None, sw, batch_size)
        return loss_sum / n

    def _update_no_improvement_count(self, early_stopping, X, y, sample_weight):
        if early_stopping:
            # compute validation score (can be NaN), use that for stopping
            val_score = self._score(X, y, sample_weight=sample_weight)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [i.copy() for i in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # ---- prediction
    def _forward(self, X, check_input=True):
        """The output layer's activations for X, computed by the engine."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                              dtype=(np.float64, np.float32))
        engine = self._engine()
        dtype = engine.dtype
        n = X.shape[0]
        out = np.empty((n, self.n_outputs_), dtype=dtype)
        if n == 0:
            return out
        if scipy.sparse.issparse(X):
            X = X.tocsr()
            rows = max(1, min(_PREDICT_BATCH * 8, _sparse_block_rows(X.shape[1], dtype.itemsize)))
            for s in range(0, n, rows):
                block = _dense_rows(X, slice(s, s + rows), dtype)
                engine.predict(block, out[s:s + len(block)], min(len(block), _PREDICT_BATCH))
            return out
        X = np.asarray(X, dtype=dtype)
        engine.predict(X, out, min(n, _PREDICT_BATCH))
        return out

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (non-negative).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_PARAMS_DOC = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : str, default='relu'
        Activation of the hidden layers: scikit-learn's 'identity', 'logistic', 'tanh',
        'relu', or one of the engine's 'leaky_relu', 'elu', 'selu', 'softplus', 'softsign',
        'hard_sigmoid' (those cannot be exported to ONNX by skl2onnx's converter).
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'lbfgs' runs ``scipy.optimize.minimize(method='L-BFGS-B')`` on the engine's
        full-batch loss and gradient; 'sgd' and 'adam' are scikit-learn's update rules.
    alpha : float, default=0.0001
        Strength of the L2 term ``alpha / (2 * sum of sample weights) * ||W||^2`` on the
        kernels, added to every batch's loss.
    batch_size : int or 'auto', default='auto'
        Mini-batch size for the stochastic solvers; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule of solver='sgd'.
    learning_rate_init : float, default=0.001
        Initial step size ('sgd', 'adam').
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Epochs for the stochastic solvers, iterations for 'lbfgs'.
    shuffle : bool, default=True
        Whether to shuffle the samples before each epoch.
    random_state : int, RandomState instance or None, default=None
        Draws the initial weights, the shuffling, the early-stopping split and the dropout
        seed exactly as scikit-learn draws them.
    tol : float, default=1e-4
        Tolerance of the stopping rule (see scikit-learn).
    verbose : bool, default=False
        Print progress messages.
    warm_start : bool, default=False
        Reuse the previous solution as the starting point of the next fit.
    momentum : float, default=0.9
        Momentum of 'sgd'.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for 'sgd'.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when its score stops
        improving; the best weights are restored.
    validation_fraction : float, default=0.1
        Fraction of the training data held out with early_stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates.
    epsilon : float, default=1e-8
        Adam's epsilon.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping.
    max_fun : int, default=15000
        Maximum loss evaluations of 'lbfgs'.
    dtype : {None, 'float32', 'float64'}, default=None
        The engine's float type; None keeps float32 input as float32 and uses float64
        otherwise (as scikit-learn).
    n_threads : int or None, default=None
        Threads of the engine (None: ``fastmlp.get_num_threads()``). Results do not depend
        on it.
    device : {'cpu', 'auto', 'cuda'}, default='cpu'
        Where to train: the C engine, or fastmlp's CUDA engine (the same maths on the current
        GPU; needs ``pip install "fastmlp[cuda]"``). 'auto' takes the GPU when one is usable.
        A model trained on the GPU predicts on the CPU where no GPU is usable.
    dropout : float or array-like of float, default=0.0
        Inverted-dropout rate on the output of each hidden layer while training with a
        stochastic solver (one float for all, or one per hidden layer).
    callbacks : list of fastmlp.callbacks.Callback, default=None
        Called once per epoch (per batch if they override a batch hook) with logs
        'loss' and, with early_stopping, 'val_loss' and 'val_score'; ``EarlyStopping``,
        ``LearningRateScheduler``, ``History``... work as with Keras models."""

_ATTRS_DOC = """
    loss_ : float
        The loss at the end of the last epoch (the objective, L2 term included).
    best_loss_ : float or None
        The minimum of loss_curve_ (None with early_stopping).
    loss_curve_ : list of float
        loss_ after each epoch (stochastic solvers).
    validation_scores_ : list of float or None
        The held-out score after each epoch with early_stopping.
    validation_loss_curve_ : list of float
        The objective on the held-out set after each epoch with early_stopping (measured
        like loss_curve_, in batches of batch_size, without updates).
    best_validation_score_ : float or None
        The best of validation_scores_.
    t_ : int
        Training samples seen.
    coefs_ : list of ndarray
        coefs_[i] is the weight matrix of layer i, shape (n_in, n_out).
    intercepts_ : list of ndarray
        intercepts_[i] is the bias vector of layer i + 1.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit (when X has string column names).
    n_iter_ : int
        Iterations the solver ran.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Name of the output activation."""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = """Multi-layer perceptron classifier trained by fastmlp's C engine.

    scikit-learn 1.9's ``MLPClassifier`` with the same parameters and results, plus
    fastmlp's extras. The log-loss is minimized with 'adam', 'sgd' or 'lbfgs'. Binary,
    multiclass and multilabel targets; sparse input is densified a block of rows at a time.

    Parameters
    ----------""" + _PARAMS_DOC + """
    class_weight : dict, 'balanced' or None, default=None
        Weights multiplying each sample's weight by its class: ``{label: weight}`` or
        'balanced' (``n_samples / (n_classes * bincount(y))``, from the data of each fit;
        not with partial_fit).

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels for each output.""" + _ATTRS_DOC + """

    Examples
    --------
    >>> from fastmlp import MLPClassifier
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.model_selection import train_test_split
    >>> X, y = make_classification(n_samples=200, random_state=1)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=1)
    >>> clf = MLPClassifier(random_state=1, learning_rate_init=0.01, max_iter=500)
    >>> clf = clf.fit(X_train, y_train)
    >>> clf.predict_proba(X_test[:1]).shape
    (1, 2)
    >>> clf.score(X_test, y_test) > 0.8
    True
    """

    _is_classifier = True
    _rules = dict(_COMMON_RULES, class_weight=_Check(
        lambda v: v is None or v == "balanced" or isinstance(v, dict),
        "None, 'balanced' or a dict {class label: weight}"))

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, n_threads=None, device="cpu", dropout=0.0, callbacks=None,
                 class_weight=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.n_threads = n_threads
        self.device = device
        self.dropout = dropout
        self.callbacks = callbacks
        self.class_weight = class_weight

    @property
    def loss(self):
        """'log_loss', as scikit-learn's MLPClassifier (not a parameter)."""
        return "log_loss"

    def _loss_name(self):
        return "log_loss"

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        y_orig = y
        return X, self._label_binarizer.transform(y).astype(bool), y_orig

    def _apply_class_weight(self, sample_weight, y_orig, incremental, dtype):
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError("class_weight='balanced' is not supported by partial_fit: the "
                             "class frequencies of the whole data are unknown; pass a dict")
        if self._label_binarizer.y_type_.startswith("multilabel"):
            raise ValueError("class_weight is not supported for multilabel targets")
        if isinstance(self.class_weight, dict):
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(f"class_weight has labels {sorted(unknown, key=str)} that are "
                                 f"not among the classes {self.classes_.tolist()}")
        per_row = compute_sample_weight(self.class_weight, y_orig)
        weight = per_row if sample_weight is None else sample_weight * per_row
        return np.ascontiguousarray(weight, dtype=dtype)

    def _val_targets(self, y_val):
        return self._label_binarizer.inverse_transform(y_val)

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit (required on the first call).

        Returns
        -------
        self : object
            The trained model.
        """
        if self._partial_fit_first_call(classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _partial_fit_first_call(self, classes):
        if getattr(self, "classes_", None) is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None:
            if getattr(self, "classes_", None) is not None:
                if not np.array_equal(self.classes_, unique_labels(classes)):
                    raise ValueError(f"`classes={classes!r}` is not the same as on last call "
                                     f"to partial_fit, was: {self.classes_!r}")
            else:
                self.classes_ = unique_labels(classes)
                return True
        return False

    def predict_log_proba(self, X):
        """Return the log of probability estimates.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The probability of each class, in the order of ``classes_``.
        """
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(MultiOutputMixin, RegressorMixin, _BaseMLP):
    __doc__ = """Multi-layer perceptron regressor trained by fastmlp's C engine.

    scikit-learn 1.9's ``MLPRegressor`` with the same parameters and results, plus
    fastmlp's extras. Single- and multi-output targets; sparse input is densified a block of
    rows at a time.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        'squared_error' is half the squared error (its value averaged over the outputs, its
        gradient summed over them, as scikit-learn); 'poisson' is half the Poisson deviance
        with an exponential output and needs ``y >= 0``.""" + _PARAMS_DOC + """

    Attributes
    ----------""" + _ATTRS_DOC + """

    Examples
    --------
    >>> from fastmlp import MLPRegressor
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.model_selection import train_test_split
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=1)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=1)
    >>> regr = MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", random_state=1,
    ...                     max_iter=2000).fit(X_train, y_train)
    >>> regr.predict(X_test[:2]).shape
    (2,)
    >>> regr.score(X_test, y_test) > 0.9
    True
    """

    _is_classifier = False
    _rules = dict(_COMMON_RULES, loss=_options("squared_error", "poisson"))

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, n_threads=None, device="cpu", dropout=0.0, callbacks=None):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.n_threads = n_threads
        self.device = device
        self.dropout = dropout
        self.callbacks = callbacks

    def _loss_name(self):
        return self.loss

    def _out_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y, y

    def _check_targets(self, y):
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("MLPRegressor(loss='poisson') requires y >= 0.")

    def _val_targets(self, y_val):
        return y_val

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    # scikit-learn's MLPRegressor tests `est._check_solver` without calling it, so its
    # partial_fit shows up for 'lbfgs' too; here, as for the classifier, it does not.
    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The trained model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)


# ---------------------------------------------------------------------- ONNX
def register_onnx_converters():
    """Registers both estimators with skl2onnx, reusing its scikit-learn MLP converters.

    After this, ``skl2onnx.to_onnx(model, X[:1].astype(numpy.float32))`` exports a fitted
    fastmlp estimator exactly as it exports scikit-learn's MLP (the estimators carry the
    attributes that converter reads). It is called automatically when fastmlp's estimators
    are imported or fitted while skl2onnx is already imported; calling it again is harmless.
    Needs ``pip install "fastmlp[onnx]"``.

    Examples
    --------
    >>> from fastmlp.estimators import register_onnx_converters
    >>> register_onnx_converters()  # doctest: +SKIP
    """
    try:
        from skl2onnx import update_registered_converter
        from skl2onnx.operator_converters.multilayer_perceptron import (
            convert_sklearn_mlp_classifier, convert_sklearn_mlp_regressor)
        from skl2onnx.shape_calculators.linear_classifier import (
            calculate_linear_classifier_output_shapes)
        from skl2onnx.shape_calculators.linear_regressor import (
            calculate_linear_regressor_output_shapes)
    except ImportError as exc:
        raise ImportError('ONNX export needs skl2onnx and onnx: pip install "fastmlp[onnx]"'
                          ) from exc
    update_registered_converter(
        MLPClassifier, "FastmlpMLPClassifier", calculate_linear_classifier_output_shapes,
        convert_sklearn_mlp_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False],
                 "output_class_labels": [False, True]})
    update_registered_converter(
        MLPRegressor, "FastmlpMLPRegressor", calculate_linear_regressor_output_shapes,
        convert_sklearn_mlp_regressor)


def _auto_register_onnx():
    if "skl2onnx" in sys.modules and not getattr(_auto_register_onnx, "done", False):
        try:
            register_onnx_converters()
            _auto_register_onnx.done = True
        except Exception:  # a broken skl2onnx install must not break the estimators
            pass


_auto_register_onnx()
