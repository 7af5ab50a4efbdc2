"""Shared fixtures and helpers for the fastmlp test suite."""

import os
import pathlib

import numpy as np
import pytest

TESTS_DIR = pathlib.Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
# The PIMA data lives next to the repository: ../shared/datasets/ from its root.
PIMA_PATH = REPO_ROOT.parent / "shared" / "datasets" / "pima-indians-diabetes.csv"

DTYPES = [np.float32, np.float64]

# Property-based tests (test_fuzz.py): a short profile by default (CI), and one of at least
# 10 000 examples per test selected with ``pytest --hypothesis-profile=long``. No deadline:
# the same tests run under sanitizers and CPU emulation, many times slower.
try:
    from hypothesis import HealthCheck, settings as hypothesis_settings
except ImportError:  # test_fuzz.py then fails on its own import; the rest still runs
    hypothesis_settings = None
else:
    _SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
    hypothesis_settings.register_profile(
        "short", max_examples=60, deadline=None, print_blob=True,
        suppress_health_check=_SLOW_OK)
    hypothesis_settings.register_profile(
        "long", max_examples=10_000, deadline=None, print_blob=True,
        suppress_health_check=_SLOW_OK)
    hypothesis_settings.load_profile(os.environ.get("FASTMLP_HYPOTHESIS_PROFILE", "short"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "pima: needs the PIMA diabetes CSV in ../shared/datasets/")
    config.addinivalue_line(
        "markers", "threads: compares results across thread counts")


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def rng():
    """A fresh, fixed-seed generator per test (tests never share state)."""
    return np.random.default_rng(12345)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def pima():
    """(X, Y) of the PIMA Indians diabetes data set, as the tutorial loads it."""
    if not PIMA_PATH.is_file():
        pytest.skip(f"PIMA data set not found at {PIMA_PATH}")
    dataset = np.loadtxt(PIMA_PATH, delimiter=",")
    return dataset[:, 0:8], dataset[:, 8]


@pytest.fixture
def restore_threads():
    """Puts fastmlp's thread count back as it was after the test."""
    import fastmlp
    from fastmlp import _config
    before = getattr(_config, "_num_threads", fastmlp.get_num_threads())
    yield
    fastmlp.set_num_threads(before)


@pytest.fixture
def float64_backend():
    """Switches fastmlp's default float type to float64 for one test."""
    from fastmlp import backend
    before = backend.floatx()
    backend.set_floatx("float64")
    yield
    backend.set_floatx(before)


# ------------------------------------------------------------------ helpers
def core():
    """The compiled module (imported lazily so collection never fails)."""
    from fastmlp import _core
    return _core


def package_parent():
    """The directory holding the imported fastmlp package (the source tree or
    site-packages): what a subprocess's PYTHONPATH needs to import the same build."""
    return os.path.dirname(os.path.dirname(os.path.abspath(core().__file__)))


def tolerance(dtype, k=1):
    """(rtol, atol per unit of magnitude) for one dtype and a reduction of
    length k: float64 ~1e-10 relative; float32 |ref|*eps plus an absolute
    term that grows with k."""
    if np.dtype(dtype) == np.float64:
        return 1e-10, 1e-13 * max(k, 1)
    eps = float(np.finfo(np.float32).eps)
    return 8 * eps, 4 * eps * max(k, 1)


def assert_close(got, ref, dtype, k=1, mag=None, rtol=None, msg=""):
    """|got - ref| <= rtol |ref| + atol(k) * mag, elementwise.

    ``mag`` is the magnitude of the terms that were summed (for a product,
    |A| |B|); it defaults to 1 (values of order one).
    """
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{msg}: shape {got.shape} != {ref.shape}"
    r, a = tolerance(dtype, k)
    if rtol is not None:
        r = rtol
    if mag is None:
        mag = 1.0
    bound = r * np.abs(ref) + a * np.asarray(mag, dtype=np.float64)
    err = np.abs(got - ref)
    bad = ~(err <= bound)  # also catches NaN
    if np.any(bad):
        idx = np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf)),
                               err.shape) if err.ndim else ()
        raise AssertionError(
            f"{msg}: {int(bad.sum())} of {bad.size} elements out of tolerance "
            f"({np.dtype(dtype).name}, k={k}); worst at {idx}: "
            f"got {got[idx]!r}, expected {ref[idx]!r}, bound {np.broadcast_to(bound, err.shape)[idx]!r}")


def param_count(layer_sizes, use_bias=True):
    n = 0
    for a, b in zip(layer_sizes[:-1], layer_sizes[1:]):
        n += a * b + (b if use_bias else 0)
    return n


def make_engine(units, activations, loss, dtype, use_bias=True, alphas=None,
                dropout=None, l1=None, l2=None, metrics=None):
    """Builds a ``_core.Engine`` from names (activations / loss by name)."""
    c = core()
    L = len(units) - 1
    if isinstance(activations, str):
        activations = [activations] * L
    if isinstance(use_bias, bool):
        use_bias = [use_bias] * L
    act_ids = [c.ACTIVATIONS[a] for a in activations]
    alphas = [0.0 if a is None else a for a in
              (alphas if alphas is not None else [None] * L)]
    # the engine needs the act alpha explicitly; give Keras's defaults
    alphas = [({"leaky_relu": 0.2, "elu": 1.0}.get(n, 0.0) if al == 0.0 else al)
              for n, al in zip(activations, alphas)]
    dropout = [0.0] * L if dropout is None else list(dropout)
    l1 = [0.0] * L if l1 is None else list(l1)
    l2 = [0.0] * L if l2 is None else list(l2)
    e = c.Engine(list(units), act_ids, alphas, list(use_bias), dropout, l1, l2,
                 c.LOSSES[loss], np.dtype(dtype))
    if metrics:
        e.set_metrics([c.METRICS[m] for m in metrics])
    return e


def engine_alphas(activations, alphas=None):
    """The alphas make_engine passes, as the reference Net wants them."""
    L = len(activations)
    alphas = [None] * L if alphas is None else list(alphas)
    return [({"leaky_relu": 0.2, "elu": 1.0}.get(n) if a in (None, 0.0) else a)
            for n, a in zip(activations, alphas)]


def small_dataset(rng, n=40, n_in=4, n_out=1, kind="binary"):
    """A small, well-conditioned data set: x ~ N(0,1); y by kind."""
    x = rng.normal(size=(n, n_in))
    w = rng.normal(size=(n_in, n_out))
    s = x @ w
    if kind == "binary":
        y = (s[:, 0] > 0).astype(np.float64)
    elif kind == "regression":
        y = s + 0.1 * rng.normal(size=s.shape)
        if n_out == 1:
            y = y[:, 0]
    elif kind == "sparse":
        y = np.argmax(s, axis=1).astype(np.int64)
    elif kind == "onehot":
        y = np.eye(n_out)[np.argmax(s, axis=1)]
    else:
        raise ValueError(kind)
    return x, y
