"""The CUDA path (fastmlp.cuda): device selection, each kernel against the NumPy oracles of
_reference.py (and the C kernels), and the device engine against the C engine.

Without a GPU the kernels run under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set here
before numba.cuda is imported), which runs every CUDA thread as a Python thread, so shapes are tiny
and blocks few. The same tests run unchanged on a GPU. They skip when numba or numba-cuda is
missing, or when neither a GPU nor the simulator is usable.
"""
import ctypes
import importlib.util
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest


def _gpu_driver():
    """Whether the NVIDIA driver library loads (a GPU may be there)."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            pass
    return False


if "numba.cuda" not in sys.modules and not _gpu_driver():
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    if "numba" in sys.modules:  # imported already: its configuration is read again
        sys.modules["numba"].core.config.reload_config()

import _reference as ref  # noqa: E402
from conftest import REPO_ROOT, assert_close, core  # noqa: E402

HAVE_EXTRA = all(importlib.util.find_spec(m) is not None for m in ("numba", "numba_cuda"))


def _cuda_usable():
    if not HAVE_EXTRA:
        return False
    from numba import cuda

    from fastmlp.cuda import _numpy_clash
    return bool(cuda.is_available()) and _numpy_clash() is None  # a clash: its own test


needs_cuda = pytest.mark.skipif(not _cuda_usable(),
                                reason="needs numba-cuda and a CUDA GPU or its simulator")

MASK64 = (1 << 64) - 1


def hash_uniform(key, index):
    """fm_rng.c's fm_hash_uniform in Python integers: splitmix64 of key ^ index * K."""
    x = (key ^ (index * 0xD1B54A32D192ED03)) & MASK64
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return (z >> 11) * 2.0 ** -53


def keep_mask(key, count, rate):
    return np.array([hash_uniform(int(key), e) >= rate for e in range(count)])


def f32_close(got, want, rtol=1e-4, atol=1e-5, msg=""):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=rtol, atol=atol, err_msg=msg)


# ------------------------------------------------------------------- device selection
def test_import_fastmlp_does_not_import_numba():
    import fastmlp
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastmlp.__file__)))
    code = ("import sys, fastmlp; m = fastmlp.Sequential([fastmlp.Dense(1, input_dim=2)]); "
            "m.compile(loss='mse'); m.predict([[1.0, 2.0]]); "
            "assert 'numba' not in sys.modules, 'numba was imported'")
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root)


def test_unknown_device_is_refused():
    from fastmlp import Sequential
    from fastmlp.cuda import resolve_device
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="Received: device=3"):
        Sequential(device=3)


@pytest.mark.parametrize("missing", ["numba_cuda", "numba"])
def test_cuda_without_the_extra_names_the_missing_package(monkeypatch, missing):
    from fastmlp import Sequential
    from fastmlp.cuda import resolve_device
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == missing else find_spec(name, *a))
    package = missing.replace("_", "-")
    with pytest.raises(ImportError, match=f"{package} is not installed.*fastmlp\\[cuda\\]"):
        Sequential(device="cuda")
    assert resolve_device("auto") == "cpu"


@pytest.mark.skipif(not HAVE_EXTRA, reason="needs numba and numba-cuda")
def test_cuda_without_a_gpu_says_so(monkeypatch):
    from numba import cuda

    from fastmlp import MLP
    from fastmlp.cuda import is_available, resolve_device
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU is usable"):
        MLP(device="cuda")
    assert resolve_device("auto") == "cpu" and not is_available()


@pytest.mark.skipif(not HAVE_EXTRA, reason="needs numba and numba-cuda")
@pytest.mark.parametrize("numba_cuda, clash", [("0.30.4", True), ("0.29.1", True),
                                               ("0.31.0", False), ("1.0.0rc1", False)])
def test_a_numba_cuda_that_cannot_run_under_this_numpy_is_named(monkeypatch, request, numba_cuda,
                                                                clash):
    import numba
    from importlib import metadata

    from fastmlp import Sequential
    from fastmlp.cuda import _numpy_clash, resolve_device
    version = metadata.version
    monkeypatch.setattr(metadata, "version",
                        lambda name: numba_cuda if name == "numba-cuda" else version(name))
    monkeypatch.delattr(np, "row_stack", raising=False)  # as in NumPy >= 2.5
    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", 0)
    _numpy_clash.cache_clear()  # computed once per process: again here, and after the test
    request.addfinalizer(_numpy_clash.cache_clear)
    if not clash:
        assert _numpy_clash() is None
        return
    with pytest.raises(ImportError, match=f"numba-cuda {numba_cuda} does not work with NumPy "
                                          r".*numpy<2\.5"):
        Sequential(device="cuda")
    with pytest.warns(RuntimeWarning, match="device='auto' trains on the CPU: numba-cuda"):
        assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(numba.config, "ENABLE_CUDASIM", 1)  # the simulator never loads it
    _numpy_clash.cache_clear()
    assert _numpy_clash() is None


def test_version_numbers_are_read_up_to_the_first_non_number():
    from fastmlp.cuda import _release
    assert _release("0.30.4") == (0, 30, 4)
    assert _release("2.5.0rc1") == (2, 5, 0)
    assert _release("1.0.dev3") == (1, 0)
    assert _release("") == ()


@needs_cuda
def test_auto_picks_the_gpu_when_usable():
    from fastmlp import Sequential
    assert Sequential(device="auto").device == "cuda"
    assert Sequential().device == "cpu"


# ------------------------------------------------------------------- kernel helpers
@pytest.fixture(scope="module")
def cu():
    """numba.cuda and fastmlp.cuda's kernel modules (imported once numba is configured)."""
    from numba import cuda

    from fastmlp.cuda import gemm, launch, ops
    return SimpleNamespace(cuda=cuda, gemm=gemm, launch=launch, ops=ops)


def to_dev(cu, a, dtype=None):
    a = np.ascontiguousarray(a if dtype is None else np.asarray(a, dtype=dtype))
    return cu.cuda.to_device(a.reshape(-1))


def elementwise(cu, kernel, count):
    return cu.launch.configure(kernel, cu.launch.grid_for(count), cu.launch.THREADS)


def real(dtype, v):
    return np.dtype(dtype).type(v)


ALL_ACTS = list(ref.ACTIVATIONS)
ELEMENTWISE_ACTS = [a for a in ALL_ACTS if a != "softmax"]
ALPHAS = {"leaky_relu": 0.2, "elu": 1.0}


# ------------------------------------------------------------------- GEMM
@needs_cuda
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (5, 7, 3), (9, 17, 10)])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True)])
def test_gemm_matches_reference(cu, rng, dtype, m, n, k, trans_a, trans_b):
    # op(A) is m x k and op(B) k x n, each stored transposed when asked: a stride swap.
    a = rng.normal(size=(k, m) if trans_a else (m, k))
    b = rng.normal(size=(n, k) if trans_b else (k, n))
    c0 = rng.normal(size=(n, m))  # C column-major: C[i, j] at i + j * m
    rsa, csa = (1, m) if trans_a else (k, 1)
    rsb, csb = (1, k) if trans_b else (n, 1)
    config = cu.gemm.pick_config(m, n)
    grid, block = cu.gemm.launch_shape(config, m, n)
    kernel = cu.launch.configure(cu.gemm.kernels(dtype, config).fm_gemm, grid, block)
    for alpha, beta in ((1.0, 0.0), (1.5, -0.5)):
        dc = to_dev(cu, np.full_like(c0, np.nan) if beta == 0 else c0, dtype)
        kernel(m, n, k, real(dtype, alpha), to_dev(cu, a, dtype), 0, rsa, csa,
               to_dev(cu, b, dtype), 0, rsb, csb, real(dtype, beta), dc, 0, 1, m)
        got = dc.copy_to_host().reshape(n, m).T
        want = ref.gemm(a, b, c0.T, alpha, beta, trans_a, trans_b)
        mag = ref.gemm_magnitude(a, b, c0.T, alpha, beta, trans_a, trans_b)
        assert_close(got, want, dtype, k=k, mag=mag, msg=f"alpha={alpha} beta={beta}")


@needs_cuda
def test_gemm_tile_shapes_give_the_same_bits(cu, rng):
    m, n, k = 5, 7, 11
    a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    results = []
    for config in cu.gemm.GPU_CONFIGS + cu.gemm.SIM_CONFIGS:
        grid, block = cu.gemm.launch_shape(config, m, n)
        c = cu.cuda.device_array(m * n, np.float32)
        cu.launch.configure(cu.gemm.kernels(np.float32, config).fm_gemm, grid, block)(
            m, n, k, np.float32(1), to_dev(cu, a, np.float32), 0, k, 1,
            to_dev(cu, b, np.float32), 0, n, 1, np.float32(0), c, 0, n, 1)
        results.append(c.copy_to_host())
    for got in results[1:]:
        np.testing.assert_array_equal(got, results[0])
    assert_close(results[0].reshape(m, n), a @ b, np.float32, k=k,
                 mag=np.abs(a) @ np.abs(b))


def dense_kernel(cu, dtype, name, m, n):
    kernel, grid, block = cu.gemm.launch_plan(name, dtype, m, n)
    return cu.launch.configure(kernel, grid, block)


@needs_cuda
@pytest.mark.parametrize("act", ALL_ACTS)
def test_dense_forward_fuses_bias_activation_and_dropout(cu, rng, dtype, act):
    m, n_in, n_out, w_off, rate, key = 6, 5, 9, 3, 0.3, 0x1234ABCD
    x = rng.normal(size=(m, n_in))
    w, b = rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)
    params = np.concatenate([rng.normal(size=w_off), w.ravel(), b])
    alpha = ALPHAS.get(act, 0.0)
    k_ops = cu.ops.kernels(dtype)
    act_id = ref.ACTIVATIONS[act]
    y, e = cu.cuda.device_array(m * n_out, dtype), cu.cuda.device_array(2 * m * n_out, dtype)
    fused_drop = act != "softmax"
    dense_kernel(cu, dtype, "fm_dense_forward", m, n_out)(
        y, 0, e, 0, m * n_out if fused_drop else -1, to_dev(cu, x, dtype), 0, n_in, 1,
        to_dev(cu, params, dtype), w_off, w_off + n_in * n_out, m, n_in, n_out, act_id,
        real(dtype, alpha), rate, real(dtype, 1 / (1 - rate)), np.uint64(key))
    if act == "softmax":
        elementwise(cu, k_ops.fm_act_forward, m)(y, 0, e, 0, m, n_out, act_id,
                                                 real(dtype, alpha))
    z_ref, y_ref = ref.dense_forward(x, w, b, act, alpha if act in ALPHAS else None)
    mag = np.abs(x) @ np.abs(w) + np.abs(b)
    got = e.copy_to_host()
    assert_close(got[:m * n_out].reshape(m, n_out), z_ref, dtype, k=n_in, mag=mag, msg="Z")
    y_got = y.copy_to_host().reshape(m, n_out)
    assert_close(y_got, y_ref, dtype, k=n_in, mag=mag * (1 + np.abs(y_ref)), msg="Y")
    if fused_drop:
        keep = keep_mask(key, m * n_out, rate).reshape(m, n_out)
        want = np.where(keep, y_got.astype(np.float64) * (1 / (1 - rate)), 0.0)
        assert_close(got[m * n_out:].reshape(m, n_out), want, dtype, msg="dropout")


@needs_cuda
@pytest.mark.parametrize("act", ELEMENTWISE_ACTS[:6] + ["softmax"])
def test_dense_backward_matches_reference(cu, rng, dtype, act):
    m, n_in, n_out, w_off, rate, key = 7, 9, 10, 2, 0.25, 987654321
    x, dz = rng.normal(size=(m, n_in)), rng.normal(size=(m, n_out))
    w, b = rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)
    b_off = w_off + n_in * n_out
    params = np.concatenate([rng.normal(size=w_off), w.ravel(), b])
    y_prev = ref.act_forward(act, rng.normal(size=(m, n_in)), ALPHAS.get(act))
    alpha = ALPHAS.get(act, 0.0)
    l1, l2, bias_l1, bias_l2, pen_scale = 0.01, 0.02, 0.1, 0.3, 0.5
    d_params = to_dev(cu, params, dtype)
    grads = cu.cuda.to_device(np.zeros(len(params), dtype))
    # dW = X^T dZ + pen_scale (l1 sign W + 2 l2 W), X read transposed through its strides;
    # db = colsum(dZ) + the same for b, summed by the same kernel
    dense_kernel(cu, dtype, "fm_dense_backward_dw", n_in, n_out)(
        grads, w_off, b_off, to_dev(cu, x, dtype), 0, n_in, 1, to_dev(cu, dz, dtype), 0,
        d_params, m, n_in, n_out, l1, l2, bias_l1, bias_l2,
        cu.cuda.to_device(np.array([pen_scale])))
    _, dw_ref, db_ref = ref.dense_backward(x, w, dz)
    dw_ref = dw_ref + pen_scale * (l1 * np.sign(w) + 2 * l2 * w)
    b32 = b.astype(dtype)
    db_ref = db_ref + pen_scale * (bias_l1 * np.sign(b32) + 2 * bias_l2 * b32)
    got = grads.copy_to_host()
    assert_close(got[w_off:b_off].reshape(n_in, n_out), dw_ref, dtype, k=m,
                 mag=np.abs(x).T @ np.abs(dz) + 1, msg="dW")
    assert_close(got[b_off:], db_ref, dtype, k=m, mag=np.abs(dz).sum(0) + 1, msg="db")
    # dX = dZ W^T, dropped with the layer's mask, then through act' from the previous output
    dx = cu.cuda.device_array(m * n_in, dtype)
    k_ops = cu.ops.kernels(dtype)
    dense_kernel(cu, dtype, "fm_dense_backward_dx", m, n_in)(
        dx, 0, to_dev(cu, dz, dtype), 0, d_params, w_off, to_dev(cu, y_prev, dtype), 0, m, n_in,
        n_out, ref.ACTIVATIONS[act], real(dtype, alpha), rate, real(dtype, 1 / (1 - rate)),
        np.uint64(key))
    if act == "softmax":
        d_yp = to_dev(cu, y_prev, dtype)
        elementwise(cu, k_ops.fm_act_backward, m)(dx, 0, dx, 0, d_yp, 0, m, n_in,
                                                  ref.ACTIVATIONS[act], real(dtype, alpha))
    dx_ref = dz @ w.T * keep_mask(key, m * n_in, rate).reshape(m, n_in) / (1 - rate)
    dx_ref = ref.act_backward(act, y_prev.astype(dtype), dx_ref, ALPHAS.get(act))
    mag = (np.abs(dz) @ np.abs(w).T) / (1 - rate) * (1 + np.abs(y_prev)) ** 2
    assert_close(dx.copy_to_host().reshape(m, n_in), dx_ref, dtype, k=n_out, mag=mag, msg="dX")


# ------------------------------------------------------------------- element-wise kernels
@needs_cuda
@pytest.mark.parametrize("act", ALL_ACTS)
def test_activation_forward_and_backward(cu, rng, dtype, act):
    m, n = 4, 6
    x = rng.normal(0, 2, size=(m, n))
    alpha = ALPHAS.get(act, 0.0)
    k_ops = cu.ops.kernels(dtype)
    act_id, a = ref.ACTIVATIONS[act], real(dtype, alpha)
    y = cu.cuda.device_array(m * n, dtype)
    elementwise(cu, k_ops.fm_act_forward, m * n)(y, 0, to_dev(cu, x, dtype), 0, m, n, act_id, a)
    y_ref = ref.act_forward(act, x.astype(dtype), ALPHAS.get(act))
    y_got = y.copy_to_host().reshape(m, n)
    assert_close(y_got, y_ref, dtype, k=n, mag=1 + np.abs(y_ref), msg="forward")
    dy = rng.normal(size=(m, n))
    dx = cu.cuda.device_array(m * n, dtype)
    elementwise(cu, k_ops.fm_act_backward, m * n)(dx, 0, to_dev(cu, dy, dtype), 0, y, 0, m, n,
                                                  act_id, a)
    dx_ref = ref.act_backward(act, y_got, dy.astype(dtype), ALPHAS.get(act))
    assert_close(dx.copy_to_host().reshape(m, n), dx_ref, dtype, k=n,
                 mag=np.abs(dy) * (1 + np.abs(y_got)) ** 2, msg="backward")


@needs_cuda
def test_dropout_masks_are_fm_hash_uniform(cu):
    from fastmlp.cuda.ops import dropout_key
    seed, iteration, layer = 2 ** 63 + 12345, 77, 2
    key = dropout_key(seed, iteration, layer)
    expected = (seed ^ (iteration * 0x9E3779B97F4A7C15) ^ ((layer + 1) * 0xC2B2AE3D27D4EB4F))
    assert int(key) == expected & MASK64
    count, rate = 50, 0.4
    src = np.arange(1, count + 1, dtype=np.float32)
    dst = cu.cuda.device_array(count, np.float32)
    elementwise(cu, cu.ops.kernels(np.float32).dropout_apply, count)(
        dst, 0, to_dev(cu, src), 0, count, rate, np.float32(1 / (1 - rate)), key)
    keep = keep_mask(key, count, rate)
    assert 0 < keep.sum() < count
    np.testing.assert_array_equal(dst.copy_to_host(),
                                  np.where(keep, src * np.float32(1 / (1 - rate)), 0))


@needs_cuda
def test_gather_reads_rows_through_the_ordering(cu, rng):
    x = rng.normal(size=(10, 3)).astype(np.float32)
    rows = np.array([7, 2, 9, 0, 4], dtype=np.int64)
    dst = cu.cuda.device_array(3 * 3, np.float32)
    gather = elementwise(cu, cu.ops.kernels(np.float32).gather, 9)
    gather(dst, 0, to_dev(cu, x), cu.cuda.to_device(rows), 1, True, 3, 3, 0.0, np.float32(1),
           np.uint64(0))
    np.testing.assert_array_equal(dst.copy_to_host().reshape(3, 3), x[rows[1:4]])
    gather(dst, 0, to_dev(cu, x), cu.cuda.to_device(rows), 4, False, 3, 3, 0.5, np.float32(2),
           np.uint64(99))
    keep = keep_mask(99, 9, 0.5).reshape(3, 3)
    np.testing.assert_array_equal(dst.copy_to_host().reshape(3, 3),
                                  np.where(keep, x[4:7] * 2, 0))


# ------------------------------------------------------------------- losses and metrics
LOSS_CASES = [  # (loss, output activation, metrics)
    ("mean_squared_error", "linear", ["mse", "mae"]),
    ("sum_squared_error", "tanh", ["mse"]),
    ("mean_absolute_error", "linear", ["mae"]),
    ("binary_crossentropy", "sigmoid", ["binary_accuracy"]),
    ("binary_crossentropy", "hard_sigmoid", ["binary_accuracy"]),
    ("categorical_crossentropy", "softmax", ["categorical_accuracy"]),
    ("categorical_crossentropy", "sigmoid", ["categorical_accuracy", "mse"]),
    ("sparse_categorical_crossentropy", "softmax", ["sparse_categorical_accuracy"]),
    ("half_squared_error", "linear", []),
    ("half_poisson", "exponential", []),
    ("half_poisson", "softplus", []),
    ("log_loss", "sigmoid", []),
    ("log_loss", "softmax", []),
]


KERAS_LOSSES = ("mean_squared_error", "sum_squared_error", "mean_absolute_error",
                "binary_crossentropy", "categorical_crossentropy",
                "sparse_categorical_crossentropy")


def loss_targets(rng, loss, m, n):
    """(t, labels) fitting the loss: probabilities, one-hot rows, labels, counts or reals."""
    if loss == "sparse_categorical_crossentropy":
        return None, rng.integers(0, n, size=m).astype(np.int64)
    if loss in ("categorical_crossentropy", "log_loss") and n > 1:
        return np.eye(n)[rng.integers(0, n, size=m)], None
    if loss in ("binary_crossentropy", "log_loss"):
        return (rng.random((m, n)) > 0.5).astype(np.float64), None
    if loss == "half_poisson":
        return rng.poisson(1.0, size=(m, n)).astype(np.float64), None
    return rng.normal(size=(m, n)), None


@needs_cuda
@pytest.mark.parametrize("loss,act,metrics", LOSS_CASES,
                         ids=[f"{l}-{a}" for l, a, _ in LOSS_CASES])
@pytest.mark.parametrize("by_weight", [False, True], ids=["rows", "weights"])
def test_loss_kernel_matches_the_c_kernel_and_reference(cu, rng, dtype, loss, act, metrics,
                                                        by_weight):
    c = core()
    if loss not in c.LOSSES:
        pytest.skip(f"this engine build has no {loss}")
    n_data, m = 9, 5
    n = 1 if loss == "log_loss" and act == "sigmoid" else 3
    t_all, lab_all = loss_targets(rng, loss, n_data, n)
    sw_all = rng.uniform(0.5, 2.0, size=n_data)
    rows = rng.permutation(n_data)[:m].astype(np.int64)
    z = rng.normal(size=(m, n))
    y = ref.act_forward(act, z).astype(dtype)
    alpha = ALPHAS.get(act, 0.0)
    t, lab, sw = (None if t_all is None else t_all[rows]), (None if lab_all is None
                                                           else lab_all[rows]), sw_all[rows]
    wsum = sw.sum() if by_weight else m
    scale = 1 / wsum if by_weight else (1.0 if loss == "sum_squared_error" else 1 / m)
    dz_c = np.zeros((m, n), dtype)
    total = c.loss(c.LOSSES[loss], c.ACTIVATIONS[act], z.astype(dtype), y,
                   None if t is None else t.astype(dtype), lab, sw.astype(dtype), dz_c, scale)
    output_mean = by_weight and loss == "half_squared_error"
    want = total / wsum if by_weight else total * scale
    want = want / n if output_mean else want
    pen = 0.125
    want += pen / wsum if by_weight else pen

    stats = cu.cuda.to_device(np.zeros(cu.ops.STATS_SIZE))
    halt, pen_scale = cu.cuda.to_device(np.zeros(2, np.int64)), cu.cuda.device_array(1)
    dz = cu.cuda.device_array(m * n, dtype)
    absent = cu.cuda.device_array(1, dtype)
    metric_ids = np.zeros(cu.ops.MAX_METRICS, np.int32)
    metric_ids[:len(metrics)] = [c.METRICS[name] for name in metrics]
    cu.launch.configure(cu.ops.kernels(dtype).fm_loss, 1, cu.launch.THREADS)(
        stats, halt, pen_scale, 3, cu.cuda.to_device(np.array([pen])), 1, dz, 0,
        to_dev(cu, z, dtype), 0, to_dev(cu, y), 0,
        absent if t_all is None else to_dev(cu, t_all, dtype),
        cu.cuda.to_device(np.zeros(1, np.int64) if lab_all is None else lab_all),
        to_dev(cu, sw_all, dtype), True, cu.cuda.to_device(rows), 0, True, m, n,
        c.LOSSES[loss], c.ACTIVATIONS[act], real(dtype, alpha), cu.cuda.to_device(metric_ids),
        len(metrics), by_weight, output_mean)
    got = stats.copy_to_host()
    assert not halt.copy_to_host()[0]
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[cu.ops.STATS_LAST_LOSS], want, **tol)
    np.testing.assert_allclose(got[0], want * m, **tol)
    assert got[1] == m
    np.testing.assert_allclose(dz.copy_to_host().reshape(m, n), dz_c, **tol)
    np.testing.assert_allclose(pen_scale.copy_to_host()[0], scale if by_weight else 1.0)
    if loss in KERAS_LOSSES:  # also against the NumPy oracle
        total_ref, dz_ref = ref.loss(loss, act, z, t, lab, sw, scale, ALPHAS.get(act), dtype)
        assert_close(dz.copy_to_host().reshape(m, n), dz_ref, dtype, k=n,
                     mag=1 + np.abs(dz_ref), msg="dZ")
        assert_close(got[cu.ops.STATS_LAST_LOSS] - (pen / wsum if by_weight else pen),
                     total_ref / wsum if by_weight else total_ref * scale, dtype, k=m * n,
                     mag=1 + abs(total_ref * scale), msg="loss")
    for q, name in enumerate(metrics):
        num, den = ref.metric(name, y, t, lab, sw)
        np.testing.assert_allclose(got[2 + q], num, rtol=1e-6)
        np.testing.assert_allclose(got[2 + cu.ops.MAX_METRICS + q], den, rtol=1e-6)


@needs_cuda
def test_loss_kernel_halts_on_a_non_finite_loss(cu):
    stats = cu.cuda.to_device(np.zeros(cu.ops.STATS_SIZE))
    halt = cu.cuda.to_device(np.zeros(2, np.int64))
    z = np.array([[np.inf]], np.float32)
    args = (stats, halt, cu.cuda.device_array(1), 7, cu.cuda.device_array(1), 0,
            cu.cuda.device_array(1, np.float32), 0, to_dev(cu, z), 0, to_dev(cu, z), 0,
            to_dev(cu, np.zeros(1, np.float32)), cu.cuda.device_array(1, np.int64),
            cu.cuda.device_array(1, np.float32), False, cu.cuda.device_array(1, np.int64), 0,
            False, 1, 1, 0, 0, np.float32(0), cu.cuda.to_device(np.zeros(8, np.int32)), 0,
            False, False)
    kernel = cu.launch.configure(cu.ops.kernels(np.float32).fm_loss, 1, cu.launch.THREADS)
    kernel(*args)
    assert list(halt.copy_to_host()) == [1, 7]
    assert not np.any(stats.copy_to_host()[:cu.ops.STATS_TOTALS])
    kernel(*args[:3], 8, *args[4:])  # halted: nothing changes
    assert list(halt.copy_to_host()) == [1, 7]


# ------------------------------------------------------------------- optimizers
OPT_CASES = [
    ("sgd", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True, "clipnorm": 0.5}),
    ("adam", {"learning_rate": 0.01}),
    ("adam", {"learning_rate": 0.01, "amsgrad": True, "global_clipnorm": 0.7, "decay": 0.1}),
    ("rmsprop", {"learning_rate": 0.01}),
    ("rmsprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True, "clipvalue": 0.3}),
    ("adagrad", {"learning_rate": 0.05}),
    ("adam_sklearn", {"learning_rate": 0.01, "beta_1": 0.8}),
]


def make_engines(units, acts, loss, dtype=np.float32, params=None, dropout=None, l1=None,
                 l2=None, bias_l1=None, bias_l2=None, use_bias=None, **options):
    """A C engine and a CUDA engine of one description, with the same parameters."""
    from fastmlp.cuda import CudaEngine
    c = core()
    L = len(units) - 1
    args = (list(units), [c.ACTIVATIONS[a] for a in acts], [ALPHAS.get(a, 0.0) for a in acts],
            use_bias or [True] * L, dropout or [0.0] * L, l1 or [0.0] * L, l2 or [0.0] * L,
            c.LOSSES[loss], dtype)
    kw = dict(bias_l1=bias_l1, bias_l2=bias_l2, **options)
    cpu, gpu = c.Engine(*args, **kw), CudaEngine(*args, **kw)
    if params is not None:
        cpu.params[:] = params
        gpu.params[:] = params
    return cpu, gpu


@needs_cuda
@pytest.mark.parametrize("name,config", OPT_CASES, ids=[f"{n}{i}" for i, (n, _) in
                                                         enumerate(OPT_CASES)])
def test_optimizer_step_matches_reference(rng, name, config):
    c = core()
    if name not in c.OPTIMIZERS:
        pytest.skip(f"this engine build has no {name}")
    p = rng.normal(size=3 * 2 + 2)
    cpu, gpu = make_engines([3, 2], ["linear", ], "mean_squared_error", params=p)
    gpu.set_optimizer(c.OPTIMIZERS[name], config)
    gpu.reset_optimizer_state()
    bounds = [0, 6, 8]
    state = np.zeros(3 * len(p), np.float32)
    if name == "adagrad":
        state[:len(p)] = 0.1
    oracle = ref.Optimizer(name, len(p), offsets=bounds, **config) if name in ref.OPTIMIZERS \
        and name != "adam_sklearn" else None
    p_c, p_ref = p.astype(np.float32), p
    gpu._push()
    for it in range(3):
        g = rng.normal(size=len(p))
        gpu._d_grads.copy_to_device(g.astype(np.float32))
        gpu._d_halt.copy_to_device(np.zeros(2, np.int64))
        gpu._optim_step(it)
        g_c = g.astype(np.float32)
        c.optimizer_step(c.OPTIMIZERS[name], config, p_c, g_c, state, it, offsets=bounds)
        got = gpu._d_params.copy_to_host()
        assert_close(got, p_c, np.float32, k=4, mag=1 + np.abs(p_c), msg=f"step {it} vs C")
        assert_close(gpu._d_grads.copy_to_host(), g_c, np.float32, msg="clipped gradient")
        if oracle is not None:
            p_ref = oracle.step(p_ref, g)
            assert_close(got, p_ref, np.float32, k=16, mag=1 + np.abs(p_ref),
                         msg=f"step {it} vs reference")


# ------------------------------------------------------------------- the engine
ENGINE_CASES = {
    "cce-adam-dropout": dict(units=[5, 7, 3], acts=["relu", "softmax"],
                             loss="categorical_crossentropy", metrics=["categorical_accuracy"],
                             opt=("adam", {"learning_rate": 0.01}), dropout=[0.0, 0.25],
                             l2=[0.01, 0.0]),
    "sparse-rmsprop-weights": dict(units=[4, 6, 3], acts=["tanh", "softmax"],
                                   loss="sparse_categorical_crossentropy",
                                   metrics=["sparse_categorical_accuracy"],
                                   opt=("rmsprop", {"momentum": 0.5, "centered": True}),
                                   weights=True),
    "mse-nesterov-clipnorm": dict(units=[3, 5, 4, 2], acts=["elu", "softsign", "linear"],
                                  loss="mean_squared_error", metrics=["mae"],
                                  opt=("sgd", {"momentum": 0.9, "nesterov": True,
                                               "clipnorm": 0.5}),
                                  l1=[0.01, 0.0, 0.02], bias_l2=[0.0, 0.1, 0.0]),
    "bce-adagrad-input-dropout": dict(units=[6, 5, 1], acts=["leaky_relu", "sigmoid"],
                                      loss="binary_crossentropy", metrics=["binary_accuracy"],
                                      opt=("adagrad", {"learning_rate": 0.1,
                                                       "global_clipnorm": 1.0}),
                                      dropout=[0.2, 0.3]),
    "sklearn-log-loss": dict(units=[4, 5, 3], acts=["relu", "softmax"], loss="log_loss",
                             opt=("adam_sklearn", {"learning_rate": 0.01}), weights=True,
                             l2=[0.05, 0.05], norm="weights"),
    "sklearn-squared-error": dict(units=[3, 4, 2], acts=["tanh", "linear"],
                                  loss="half_squared_error", opt=("sgd", {"momentum": 0.9}),
                                  l2=[0.05, 0.05], norm="weights", output_mean=True),
}


def case_data(rng, case, n, dtype):
    units, loss = case["units"], case["loss"]
    x = rng.normal(size=(n, units[0])).astype(dtype)
    t, labels = loss_targets(rng, loss, n, units[-1])
    sw = rng.uniform(0.5, 2.0, size=n).astype(dtype) if case.get("weights") else None
    return x, None if t is None else t.astype(dtype), labels, sw


def case_engines(rng, case, dtype):
    c = core()
    if case["loss"] not in c.LOSSES or case["opt"][0] not in c.OPTIMIZERS:
        pytest.skip("this engine build lacks the loss or the optimizer")
    options = {key: case[key] for key in ("dropout", "l1", "l2", "bias_l2", "norm",
                                          "output_mean") if key in case}
    cpu, gpu = make_engines(case["units"], case["acts"], case["loss"], dtype, **options)
    cpu.params[:] = rng.normal(0, 0.5, size=cpu.n_params)
    gpu.params[:] = cpu.params
    for e in (cpu, gpu):
        e.set_optimizer(c.OPTIMIZERS[case["opt"][0]], case["opt"][1])
        e.reset_optimizer_state()
        e.set_metrics([c.METRICS[m] for m in case.get("metrics", [])])
    return cpu, gpu


def assert_engines_agree(cpu, gpu, dtype, what):
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(gpu.params, cpu.params, err_msg=f"{what}: params", **tol)
    np.testing.assert_allclose(gpu.opt_state, cpu.opt_state, err_msg=f"{what}: state", **tol)
    assert gpu.iterations == cpu.iterations


@needs_cuda
@pytest.mark.parametrize("name", list(ENGINE_CASES))
def test_engine_trains_evaluates_and_predicts_like_the_cpu(rng, name):
    case, dtype = ENGINE_CASES[name], np.float32
    cpu, gpu = case_engines(rng, case, dtype)
    x, t, labels, sw = case_data(rng, case, 23, dtype)
    order = rng.permutation(23).astype(np.int64)
    tol = dict(rtol=2e-4, atol=2e-5)
    for first, count in ((0, 2), (2, 1)):  # an epoch in two calls, the last batch partial
        totals = [e.new_totals() for e in (cpu, gpu)]
        out = [e.train(x, t, labels, sw, order, first, count, 10, 42, tot)
               for e, tot in zip((cpu, gpu), totals)]
        assert out[1][0] == out[0][0] == 0 and out[1][5] == out[0][5] == -1
        np.testing.assert_allclose(out[1][1], out[0][1], **tol)
        assert out[1][2] == out[0][2]
        np.testing.assert_allclose(totals[1], totals[0], **tol)
        assert_engines_agree(cpu, gpu, dtype, f"batches {first}..{first + count}")
    np.testing.assert_allclose(gpu.grads, cpu.grads, **tol)
    for got, want in zip(gpu.evaluate(x, t, labels, sw, 10), cpu.evaluate(x, t, labels, sw, 10)):
        np.testing.assert_allclose(got, want, **tol)
    outs = [np.empty((23, case["units"][-1]), dtype) for _ in range(2)]
    cpu.predict(x, outs[0], 8)
    gpu.predict(x, outs[1], 8)
    np.testing.assert_allclose(outs[1], outs[0], **tol)
    np.testing.assert_allclose(gpu.loss_and_grad(x, t, labels, sw),
                               cpu.loss_and_grad(x, t, labels, sw), **tol)
    np.testing.assert_allclose(gpu.grads, cpu.grads, **tol)


@needs_cuda
def test_engine_in_float64_agrees_tightly(rng):
    case = ENGINE_CASES["cce-adam-dropout"]
    cpu, gpu = case_engines(rng, case, np.float64)
    x, t, labels, sw = case_data(rng, case, 12, np.float64)
    order = rng.permutation(12).astype(np.int64)
    for e in (cpu, gpu):
        e.train(x, t, labels, sw, order, 0, 3, 5, 7)
    assert_engines_agree(cpu, gpu, np.float64, "float64")


@needs_cuda
def test_streamed_data_trains_and_evaluates_like_resident_data(rng):
    case = ENGINE_CASES["sparse-rmsprop-weights"]
    cpu, gpu = case_engines(rng, case, np.float32)
    gpu.max_resident_bytes = 200  # a few rows at a time
    x, t, labels, sw = case_data(rng, case, 17, np.float32)
    order = rng.permutation(17).astype(np.int64)
    out = [e.train(x, t, labels, sw, order, 0, 5, 4, 3) for e in (cpu, gpu)]
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=2e-4)
    assert_engines_agree(cpu, gpu, np.float32, "streamed")
    for got, want in zip(gpu.evaluate(x, t, labels, sw, 3), cpu.evaluate(x, t, labels, sw, 3)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    preds = [np.empty((17, 3), np.float32) for _ in range(2)]
    cpu.predict(x, preds[0], 5)
    gpu.predict(x, preds[1], 5)
    np.testing.assert_allclose(preds[1], preds[0], rtol=2e-4, atol=2e-5)


# The simulator computes with NumPy scalars, which warn on the overflow these tests cause.
SIMULATED_OVERFLOW = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@needs_cuda
@SIMULATED_OVERFLOW
def test_a_non_finite_batch_stops_the_call_as_on_the_cpu(rng):
    c = core()
    cpu, gpu = make_engines([2, 1], ["linear"], "mean_squared_error")
    x = np.array([[1, 2], [3, 4], [np.inf, 1], [5, 6]], np.float32)
    t = np.ones((4, 1), np.float32)
    order = np.arange(4, dtype=np.int64)
    for e in (cpu, gpu):
        e.params[:] = [0.1, 0.2, 0.0]
        e.set_optimizer(c.OPTIMIZERS["sgd"], {"learning_rate": 0.01})
    out = [e.train(x, t, None, None, order, 0, 4, 1, 0) for e in (cpu, gpu)]
    assert out[0][0] == out[1][0] == c.STATUS_NONFINITE
    assert out[0][5] == out[1][5] == 2 and out[0][2] == out[1][2] == 2
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-5)
    assert_engines_agree(cpu, gpu, np.float32, "after the bad batch")


@needs_cuda
def test_engine_refuses_what_the_cpu_engine_refuses(rng):
    cpu, gpu = make_engines([3, 2], ["relu", ], "mean_squared_error")
    x, t = np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32)
    order = np.arange(4, dtype=np.int64)
    for bad in (dict(x=x.astype(np.float64)), dict(t=t[:, :1]), dict(order=order[:3]),
                dict(batches=(0, 9))):
        args = dict(x=x, t=t, order=order, batches=(0, 1))
        args.update(bad)
        for e in (cpu, gpu):
            with pytest.raises(ValueError):
                e.train(args["x"], args["t"], None, None, args["order"], *args["batches"], 2, 0)
    with pytest.raises(ValueError):
        gpu.set_optimizer(core().OPTIMIZERS["adam"], {"beta_1": 1.5})


# ------------------------------------------------------------------- models on the device
def tiny_model(device, dropout=0.2):
    from fastmlp import Dense, Dropout, Sequential
    model = Sequential([Dense(6, input_dim=4, activation="relu"), Dropout(dropout),
                        Dense(2, activation="softmax")], seed=5, device=device)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


@needs_cuda
def test_sequential_on_cuda_fits_like_on_the_cpu(rng):
    x = rng.normal(size=(30, 4))
    y = np.eye(2)[(x[:, 0] + x[:, 1] > 0).astype(int)]
    models = [tiny_model(device) for device in ("cpu", "cuda")]
    histories = [m.fit(x, y, epochs=2, batch_size=8, verbose=0,
                       validation_data=(x[:7], y[:7])).history for m in models]
    assert models[1].device == "cuda" and models[1]._engine.__class__.__name__ == "CudaEngine"
    for key in histories[0]:
        f32_close(histories[1][key], histories[0][key], msg=key)
    for got, want in zip(models[1].get_weights(), models[0].get_weights()):
        f32_close(got, want)
    f32_close(models[1].predict(x), models[0].predict(x))
    f32_close(models[1].evaluate(x, y, verbose=0), models[0].evaluate(x, y, verbose=0))


@needs_cuda
def test_a_gpu_model_saves_loads_and_predicts_on_the_cpu_and_back(rng, tmp_path):
    from fastmlp.models import load_model
    x = rng.normal(size=(20, 4))
    y = np.eye(2)[(x[:, 0] > 0).astype(int)]
    gpu = tiny_model("cuda")
    gpu.fit(x, y, epochs=1, batch_size=10, verbose=0)
    gpu.save(tmp_path / "model.fm")
    on_cpu = load_model(tmp_path / "model.fm")
    assert on_cpu.device == "cpu"
    f32_close(on_cpu.predict(x), gpu.predict(x))
    on_cpu.device = "cuda"  # and back, optimizer state included
    gpu.fit(x, y, epochs=1, batch_size=10, verbose=0)
    on_cpu.fit(x, y, epochs=1, batch_size=10, verbose=0)
    for got, want in zip(on_cpu.get_weights(), gpu.get_weights()):
        f32_close(got, want)


@needs_cuda
def test_moving_a_model_mid_training_keeps_its_optimizer_state(rng):
    x = rng.normal(size=(16, 4))
    y = np.eye(2)[(x[:, 0] > 0).astype(int)]
    moved, stays = tiny_model("cpu", dropout=0.0), tiny_model("cpu", dropout=0.0)
    for model in (moved, stays):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    moved.device = "cuda"
    for model in (moved, stays):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert moved._engine.iterations == stays._engine.iterations == 4
    for got, want in zip(moved.get_weights(), stays.get_weights()):
        f32_close(got, want)


@needs_cuda
@SIMULATED_OVERFLOW
def test_a_nan_loss_on_cuda_restores_the_weights(rng):
    from fastmlp import Dense, Sequential
    from fastmlp.mlp import NonFiniteLossError
    model = Sequential([Dense(1, input_dim=2)], seed=1, device="cuda")
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_weights()
    x = np.full((2, 2), 1e18)  # the first step throws the weights to ~1e36, the second overflows
    with pytest.raises(NonFiniteLossError):
        model.fit(x, np.zeros(2), epochs=1, batch_size=1, verbose=0, shuffle=False)
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


@needs_cuda
def test_the_gpu_benchmark_launches_each_product_with_the_kernels_arguments():
    """benchmarks/gpu.py's table of one step's products calls the engine's GEMM kernels
    directly: their argument lists must stay those of the kernels (tiny shapes here)."""
    spec = importlib.util.spec_from_file_location("gpu_bench", REPO_ROOT / "benchmarks" / "gpu.py")
    gpu_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_bench)
    rows = gpu_bench.gemm_rows(3, repeats=1, units=(5, 4, 3))
    assert [(label, dims) for label, dims, _, _ in rows] == [
        ("X @ W", (3, 4, 5)), ("X^T @ dZ", (5, 4, 3)),
        ("X @ W", (3, 3, 4)), ("X^T @ dZ", (4, 3, 3)), ("dZ @ W^T", (3, 4, 3))]
    from fastmlp.cuda import gemm
    assert [config for _, _, config, _ in rows] == [gemm.pick_config(m, n)
                                                    for _, (m, n, _), _, _ in rows]
