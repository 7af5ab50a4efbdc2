# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython bindings of the C engine.

Each wrapper checks shapes and dtypes and raises ``ValueError`` naming the argument, returns
early on empty input, calls C with the GIL released, and maps the C status to an exception.
The kernels are reachable here one by one (``gemm``, ``act_forward``, ``loss``...) so tests hit
C directly; :class:`Engine` is the training engine every model in the package drives.
"""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memset

cnp.import_array()

ACTIVATIONS = {
    "linear": 0, "relu": 1, "leaky_relu": 2, "elu": 3, "sigmoid": 4, "hard_sigmoid": 5,
    "tanh": 6, "softplus": 7, "softmax": 8, "selu": 9, "softsign": 10, "exponential": 11,
}
LOSSES = {
    "mean_squared_error": 0, "sum_squared_error": 1, "mean_absolute_error": 2,
    "binary_crossentropy": 3, "categorical_crossentropy": 4,
    "sparse_categorical_crossentropy": 5,
    # scikit-learn's MLP losses (see csrc/fastmlp.h)
    "half_squared_error": 6, "half_poisson": 7, "log_loss": 8,
}
#: How a batch's loss and penalties are normalized: Keras (per row) or scikit-learn (per unit
#: of sample weight, penalties included).
NORMS = {"rows": FM_NORM_ROWS, "weights": FM_NORM_WEIGHTS}
METRICS = {
    "binary_accuracy": 0, "categorical_accuracy": 1, "sparse_categorical_accuracy": 2,
    "mse": 3, "mae": 4,
}
OPTIMIZERS = {"sgd": 0, "adam": 1, "rmsprop": 2, "adagrad": 3, "adam_sklearn": 4}
ARCHS = {"generic": FM_ARCH_GENERIC, "avx2": FM_ARCH_AVX2, "avx512": FM_ARCH_AVX512}
STATUS_NONFINITE = FM_ERR_NONFINITE
MAX_METRICS = FM_MAX_METRICS
OPT_STATE_SLOTS = FM_OPT_STATE_SLOTS
# After the threads sharing training steps were found waiting for each other (the cores taken
# by other work: OpenBLAS's threads spin for about 0.1 s after each call), train on one
# thread for this long before trying again.
cdef double _TEAM_BACKOFF = 0.2
# A team can also be slower than one thread without waiting: where the cores pass cache lines
# to each other slowly (how the virtual CPUs sit on the machine, which can change from one
# second to the next), every step pays for the weights and gradients its threads share. Both
# give the same bits, so the engine times each way's batches and trains with the faster; a
# stretch of about _TEAM_PROBE_RUN seconds' batches times the other way again every
# _TEAM_PROBE seconds (or 20 stretches, if longer). A first stretch of _TEAM_WARM_BATCHES
# (threads starting, pages touched first) is not timed.
cdef double _TEAM_PROBE = 0.5
cdef double _TEAM_PROBE_RUN = 0.005
cdef int64_t _TEAM_WARM_BATCHES = 4
cdef int64_t _TEAM_FIRST_BATCHES = 16  # a way's first timed stretch, its rate unknown
TEAM_PROBE_RUN = _TEAM_PROBE_RUN  # a copy, for tests
#: How training chooses between a team and one thread where a team applies: "auto" (the
#: faster, as timed), "always" (a team; it still goes on alone after waiting) or "never".
#: Process-wide (set_team_policy); the same bits whichever.
TEAM_POLICIES = ("auto", "always", "never")
cdef int _team_policy = 0
# How Engine._train_threads chose a stretch's thread count: not by timing (no team applies,
# or the policy), backing off, the untimed first stretch, timing a way, the faster way.
cdef enum:
    _CHOSE_FIXED, _CHOSE_BACKOFF, _CHOSE_WARM, _CHOSE_PROBE, _CHOSE_FASTER


def set_team_policy(policy):
    """Sets how every engine chooses between a team of threads and one thread (see
    TEAM_POLICIES); returns the previous policy."""
    global _team_policy
    if policy not in TEAM_POLICIES:
        raise ValueError(f"team policy must be one of {TEAM_POLICIES}, got {policy!r}")
    previous = TEAM_POLICIES[_team_policy]
    _team_policy = TEAM_POLICIES.index(policy)
    return previous


def set_team_wait_share(share):
    """Sets the share of a window of steps a team's thread may spend waiting for the others
    before training goes on with one thread (0.25 at start; see fm_team_impl.h); returns the
    previous share. Process-wide: set it while no training runs. For tests."""
    share = float(share)
    cdef double previous = fm_set_team_wait_share(share)
    if previous < 0:
        raise ValueError(f"team wait share must be strictly between 0 and 1, got {share!r}")
    return previous


_OPT_DEFAULTS = {
    "learning_rate": None, "momentum": 0.0, "nesterov": False, "beta_1": 0.9,
    "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False, "rho": 0.9, "centered": False,
    "decay": 0.0, "clipnorm": None, "clipvalue": None, "global_clipnorm": None,
    "initial_accumulator_value": 0.1,
}
_LR_DEFAULTS = {0: 0.01, 1: 0.001, 2: 0.001, 3: 0.001, 4: 0.001}


cdef int _check(int status, str what) except -1:
    """Turns a C status into the matching Python exception."""
    if status == FM_OK:
        return 0
    msg = f"{what}: {fm_strerror(status).decode()}"
    if status == FM_ERR_NOMEM:
        raise MemoryError(msg)
    if status == FM_ERR_NONFINITE:
        raise FloatingPointError(msg)
    raise ValueError(msg)


# ---- CPU dispatch and configuration ----------------------------------------------------

def _init_arch():
    cdef int status = fm_arch_init()
    if status == FM_ERR_ARCH:
        import os
        raise ImportError(
            f"FASTMLP_ARCH={os.environ.get('FASTMLP_ARCH')!r} asks for kernels this CPU "
            f"or build lacks; usable here: {supported_archs()}")
    if status != FM_OK:
        import os
        raise ImportError(
            f"FASTMLP_ARCH={os.environ.get('FASTMLP_ARCH')!r} is not one of "
            f"{sorted(ARCHS)}")


def supported_archs():
    """Kernel sets usable here (built, and supported by the running CPU), best last."""
    return [name for name, a in ARCHS.items() if fm_arch_built(a) and fm_cpu_supports(a)]


def built_archs():
    """Kernel sets this build holds (the compiler may have lacked some), best last."""
    return [name for name, a in ARCHS.items() if fm_arch_built(a)]


def cpu_archs():
    """Kernel sets whose instructions the running CPU has, built or not, best last."""
    return [name for name, a in ARCHS.items() if fm_cpu_supports(a)]


def arch():
    """Name of the kernel set in use ('generic', 'avx2' or 'avx512')."""
    return fm_arch_name(fm_arch_selected()).decode()


def _set_arch(str name):
    """Switches the kernel set (a test hook: not thread-safe against running computations)."""
    if name not in ARCHS:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {name!r}")
    if fm_arch_set(ARCHS[name]) != FM_OK:
        raise ValueError(f"this CPU does not support the {name!r} kernels")


def has_openmp():
    """Whether the engine was built with OpenMP."""
    return bool(fm_has_openmp())


def default_num_threads():
    """Threads OpenMP would use now (honours OMP_NUM_THREADS and threadpoolctl limits)."""
    return int(fm_default_num_threads())


_init_arch()


# ---- argument helpers ------------------------------------------------------------------

cdef int _nthreads(object n_threads) except -1:
    if n_threads is None:
        return fm_default_num_threads()
    if int(n_threads) < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads!r}")
    return int(n_threads)


def _float_dtype(**arrays):
    """The common float dtype of the named arrays, or ValueError naming the odd one out."""
    dtype = None
    for name, a in arrays.items():
        if a is None:
            continue
        if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
            raise ValueError(f"{name} must be a float32 or float64 numpy array, got "
                             f"{type(a).__name__} of dtype {getattr(a, 'dtype', None)}")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            raise ValueError(f"{name} has dtype {a.dtype}, expected {dtype} like the others")
    return dtype


def _shape_check(str name, tuple got, tuple expected):
    if got != expected:
        raise ValueError(f"{name} must have shape {expected}, got {got}")


def _require(**arrays):
    """TypeError for a required array argument given as None (_float_dtype lets None pass)."""
    for name, a in arrays.items():
        if a is None:
            raise TypeError(f"{name} must be a float32 or float64 numpy array, got None")


def _same_view(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and
            a.shape == b.shape and a.strides == b.strides)


def _check_no_overlap(str out_name, out, may_be=(), **inputs):
    """ValueError when the output shares memory with an input: C would read values it has
    already overwritten and return garbage. Inputs named in ``may_be`` may be the very same
    array as the output (same memory, shape and strides), which those ops support."""
    for name, a in inputs.items():
        if a is None or not np.may_share_memory(out, a):  # bounds only: O(1)
            continue
        if name in may_be and _same_view(out, a):
            continue
        try:
            overlap = np.shares_memory(out, a, max_work=10000)
        except np.exceptions.TooHardError:
            overlap = True
        if overlap:
            raise ValueError(f"{out_name} overlaps {name} in memory; pass a separate output "
                             f"array" + (f" (or {name} itself)" if name in may_be else ""))


def _physical_memory():
    """Bytes of RAM on this machine (2**62 where the OS does not say)."""
    import os
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 1 << 62


def _check_bytes(nbytes, str what):
    """MemoryError, before anything is allocated, for a buffer larger than this machine's
    memory (or than the int64 sizes the C engine computes with)."""
    limit = min(_physical_memory(), 1 << 62)
    if nbytes > limit:
        raise MemoryError(f"{what} would need {nbytes / 2**30:.4g} GiB, more than this "
                          f"machine's {limit / 2**30:.4g} GiB of memory")


cdef inline int64_t _stride(Py_ssize_t s, Py_ssize_t itemsize):
    return <int64_t>(s // itemsize)


# ---- GEMM ------------------------------------------------------------------------------

def _check_product(a, b, c, bint trans_a, bint trans_b, bias=None, y=None):
    """The dtypes and shapes of c := op(a) @ op(b) (+ bias, y := act(c)), or ValueError."""
    _float_dtype(a=a, b=b, c=c, bias=bias, y=y)
    if a.ndim != 2 or b.ndim != 2 or c.ndim != 2:
        raise ValueError(f"a, b and c must be 2-D, got {a.ndim}-D, {b.ndim}-D, {c.ndim}-D")
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if kb != k:
        raise ValueError(f"inner dimensions differ: op(a) is {(m, k)}, op(b) is {(kb, n)}")
    _shape_check("c", c.shape, (m, n))
    if bias is not None:
        _shape_check("bias", bias.shape, (n,))
    if y is not None:
        _shape_check("y", y.shape, (m, n))


def gemm(a, b, c, alpha=1.0, beta=0.0, bint trans_a=False, bint trans_b=False, n_threads=1,
         bint reference=False):
    """c := alpha * op(a) @ op(b) + beta * c in place (any strides); returns c."""
    _require(a=a, b=b, c=c)
    _check_product(a, b, c, trans_a, trans_b)
    _check_no_overlap("c", c, a=a, b=b)
    if c.dtype == np.float32:
        _gemm[float](a, b, c, alpha, beta, trans_a, trans_b, _nthreads(n_threads), reference)
    else:
        _gemm[double](a, b, c, alpha, beta, trans_a, trans_b, _nthreads(n_threads), reference)
    return c


cdef _gemm(const floating[:, :] a, const floating[:, :] b, floating[:, :] c, double alpha,
           double beta, bint ta, bint tb, int nt, bint ref):
    cdef Py_ssize_t isz = sizeof(floating)
    cdef int64_t m = c.shape[0], n = c.shape[1]
    cdef int64_t k = a.shape[0] if ta else a.shape[1]
    cdef int64_t rsa = _stride(a.strides[0], isz), csa = _stride(a.strides[1], isz)
    cdef int64_t rsb = _stride(b.strides[0], isz), csb = _stride(b.strides[1], isz)
    cdef int64_t rsc = _stride(c.strides[0], isz), csc = _stride(c.strides[1], isz)
    cdef int status = FM_OK
    if m == 0 or n == 0:
        return
    if ta:
        rsa, csa = csa, rsa
    if tb:
        rsb, csb = csb, rsb
    cdef const floating *pa = &a[0, 0] if k > 0 else NULL
    cdef const floating *pb = &b[0, 0] if k > 0 else NULL
    with nogil:
        if floating is float:
            if ref:
                status = fm_sgemm_ref(m, n, k, <float>alpha, pa, rsa, csa, pb, rsb, csb,
                                      <float>beta, &c[0, 0], rsc, csc)
            else:
                status = fm_sgemm(m, n, k, <float>alpha, pa, rsa, csa, pb, rsb, csb,
                                  <float>beta, &c[0, 0], rsc, csc, nt)
        else:
            if ref:
                status = fm_dgemm_ref(m, n, k, alpha, pa, rsa, csa, pb, rsb, csb, beta,
                                      &c[0, 0], rsc, csc)
            else:
                status = fm_dgemm(m, n, k, alpha, pa, rsa, csa, pb, rsb, csb, beta, &c[0, 0],
                                  rsc, csc, nt)
    _check(status, "gemm")


# ---- activations -----------------------------------------------------------------------

def _act_id(act):
    if isinstance(act, str):
        if act not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
        return ACTIVATIONS[act]
    if not 0 <= int(act) < FM_ACT_COUNT:
        raise ValueError(f"act must be an activation id in [0, {FM_ACT_COUNT}), got {act!r}")
    return int(act)


def act_forward(act, x, y, double alpha=0.0):
    """y = act(x); x and y C-contiguous 2-D of one shape (they may be the same array)."""
    _require(x=x, y=y)
    _float_dtype(x=x, y=y)
    _shape_check("y", y.shape, x.shape)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D, got shape {x.shape}")
    _check_no_overlap("y", y, may_be=("x",), x=x)
    if x.dtype == np.float32:
        _act_forward[float](_act_id(act), x, y, alpha)
    else:
        _act_forward[double](_act_id(act), x, y, alpha)
    return y


cdef _act_forward(int act, const floating[:, ::1] x, floating[:, ::1] y, double alpha):
    cdef int status = FM_OK
    if x.shape[0] == 0 or x.shape[1] == 0:
        return
    with nogil:
        if floating is float:
            status = fm_act_forward_s(&y[0, 0], &x[0, 0], x.shape[0], x.shape[1], act, alpha)
        else:
            status = fm_act_forward_d(&y[0, 0], &x[0, 0], x.shape[0], x.shape[1], act, alpha)
    _check(status, "act_forward")


def act_backward(act, y, dy, dx, double alpha=0.0):
    """dx = dy * act'(.), computed from the forward output y (dx may be dy itself)."""
    _require(y=y, dy=dy, dx=dx)
    _float_dtype(y=y, dy=dy, dx=dx)
    if y.ndim != 2:
        raise ValueError(f"y must be 2-D, got shape {y.shape}")
    _shape_check("dy", dy.shape, y.shape)
    _shape_check("dx", dx.shape, y.shape)
    _check_no_overlap("dx", dx, may_be=("dy",), y=y, dy=dy)
    if y.dtype == np.float32:
        _act_backward[float](_act_id(act), y, dy, dx, alpha)
    else:
        _act_backward[double](_act_id(act), y, dy, dx, alpha)
    return dx


cdef _act_backward(int act, const floating[:, ::1] y, const floating[:, ::1] dy,
                   floating[:, ::1] dx, double alpha):
    cdef int status = FM_OK
    if y.shape[0] == 0 or y.shape[1] == 0:
        return
    with nogil:
        if floating is float:
            status = fm_act_backward_s(&dx[0, 0], &dy[0, 0], &y[0, 0], y.shape[0], y.shape[1],
                                       act, alpha)
        else:
            status = fm_act_backward_d(&dx[0, 0], &dy[0, 0], &y[0, 0], y.shape[0], y.shape[1],
                                       act, alpha)
    _check(status, "act_backward")


# ---- dense layer -----------------------------------------------------------------------

def dense_forward(x, w, b, act, double alpha, z, y, n_threads=1):
    """z = x @ w + b (b may be None, z may be None), y = act(z)."""
    _require(x=x, w=w, y=y)
    _float_dtype(x=x, w=w, b=b, z=z, y=y)
    if x.ndim != 2 or w.ndim != 2:
        raise ValueError("x and w must be 2-D")
    m, n_in = x.shape
    _shape_check("w", w.shape, (n_in, w.shape[1]))
    n_out = w.shape[1]
    if b is not None:
        _shape_check("b", b.shape, (n_out,))
    if z is not None:
        _shape_check("z", z.shape, (m, n_out))
    _shape_check("y", y.shape, (m, n_out))
    _check_no_overlap("y", y, x=x, w=w, b=b)
    if z is not None:
        _check_no_overlap("z", z, may_be=("y",), x=x, w=w, b=b, y=y)
    if x.dtype == np.float32:
        _dense_forward[float](x, w, b, _act_id(act), alpha, z, y, _nthreads(n_threads))
    else:
        _dense_forward[double](x, w, b, _act_id(act), alpha, z, y, _nthreads(n_threads))
    return y


cdef _dense_forward(const floating[:, :] x, const floating[:, ::1] w, object b, int act,
                    double alpha, object z, floating[:, ::1] y, int nt):
    cdef const floating[::1] bv
    cdef floating[:, ::1] zv
    cdef const floating *pb = NULL
    cdef floating *pz = NULL
    cdef int status = FM_OK
    cdef Py_ssize_t isz = sizeof(floating)
    cdef int64_t m = x.shape[0], n_in = x.shape[1], n_out = w.shape[1]
    if m == 0 or n_out == 0:
        return
    if b is not None:
        bv = b
        pb = &bv[0]
    if z is not None:
        zv = z
        pz = &zv[0, 0]
    cdef const floating *px = &x[0, 0] if n_in > 0 else NULL
    cdef const floating *pw = &w[0, 0] if n_in > 0 else NULL
    cdef int64_t rsx = _stride(x.strides[0], isz), csx = _stride(x.strides[1], isz)
    with nogil:
        if floating is float:
            status = fm_dense_forward_s(&y[0, 0], pz, px, rsx, csx, pw, pb, m, n_in, n_out, act,
                                        alpha, nt)
        else:
            status = fm_dense_forward_d(&y[0, 0], pz, px, rsx, csx, pw, pb, m, n_in, n_out, act,
                                        alpha, nt)
    _check(status, "dense_forward")


def dense_backward(x, w, dz, dx, dw, db, n_threads=1):
    """dw = x.T @ dz, db = dz.sum(0) (db may be None), dx = dz @ w.T (dx may be None)."""
    _require(x=x, w=w, dz=dz, dw=dw)
    _float_dtype(x=x, w=w, dz=dz, dx=dx, dw=dw, db=db)
    if x.ndim != 2 or w.ndim != 2:
        raise ValueError("x and w must be 2-D")
    m, n_in = x.shape
    _shape_check("w", w.shape, (n_in, w.shape[1]))
    n_out = w.shape[1]
    _shape_check("dz", dz.shape, (m, n_out))
    _shape_check("dw", dw.shape, (n_in, n_out))
    if dx is not None:
        _shape_check("dx", dx.shape, (m, n_in))
    if db is not None:
        _shape_check("db", db.shape, (n_out,))
    for name, out in (("dw", dw), ("dx", dx), ("db", db)):
        if out is not None:
            _check_no_overlap(name, out, x=x, w=w, dz=dz,
                              **{k: v for k, v in (("dw", dw), ("dx", dx), ("db", db))
                                 if k != name})
    if x.dtype == np.float32:
        _dense_backward[float](x, w, dz, dx, dw, db, _nthreads(n_threads))
    else:
        _dense_backward[double](x, w, dz, dx, dw, db, _nthreads(n_threads))


cdef _dense_backward(const floating[:, :] x, const floating[:, ::1] w,
                     const floating[:, ::1] dz, object dx, floating[:, ::1] dw, object db,
                     int nt):
    cdef floating[:, ::1] dxv
    cdef floating[::1] dbv
    cdef floating *pdx = NULL
    cdef floating *pdb = NULL
    cdef int status = FM_OK
    cdef Py_ssize_t isz = sizeof(floating)
    cdef int64_t m = x.shape[0], n_in = x.shape[1], n_out = w.shape[1]
    if n_in == 0 or n_out == 0:
        # nothing for C to multiply, but the outputs that are not empty are still defined:
        # db = colsum(dz) needs no input, and dx = dz @ w.T is zero without outputs
        if db is not None:
            np.sum(np.asarray(dz), axis=0, out=db)
        if dx is not None:
            dx[...] = 0
        return
    if m == 0:  # no rows: the gradients of a sum over nothing are zero
        dw[:, :] = 0
        if db is not None:
            dbv = db
            dbv[:] = 0
        return
    if dx is not None:
        dxv = dx
        pdx = &dxv[0, 0]
    if db is not None:
        dbv = db
        pdb = &dbv[0]
    cdef int64_t rsx = _stride(x.strides[0], isz), csx = _stride(x.strides[1], isz)
    with nogil:
        if floating is float:
            status = fm_dense_backward_s(pdx, &dw[0, 0], pdb, &dz[0, 0], &x[0, 0], rsx, csx,
                                         &w[0, 0], m, n_in, n_out, nt)
        else:
            status = fm_dense_backward_d(pdx, &dw[0, 0], pdb, &dz[0, 0], &x[0, 0], rsx, csx,
                                         &w[0, 0], m, n_in, n_out, nt)
    _check(status, "dense_backward")


# ---- losses and metrics ----------------------------------------------------------------

def _labels_array(labels, Py_ssize_t n):
    if labels is None:
        return None
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.ndim != 1:
        raise ValueError("labels must be a 1-D int64 numpy array")
    _shape_check("labels", labels.shape, (n,))
    return np.ascontiguousarray(labels)


def loss(loss_id, out_act, z, y, t, labels, sample_weight, dz, double grad_scale,
         double out_alpha=0.0):
    """Returns sum_i w_i l_i; writes dz = grad_scale * its gradient wrt the logits z."""
    _require(z=z, y=y, dz=dz)
    _float_dtype(z=z, y=y, t=t, sample_weight=sample_weight, dz=dz)
    if not 0 <= int(loss_id) < FM_LOSS_COUNT:
        raise ValueError(f"loss_id must be in [0, {FM_LOSS_COUNT}), got {loss_id!r}")
    if z.ndim != 2:
        raise ValueError(f"z must be 2-D, got shape {z.shape}")
    m, n = z.shape
    _shape_check("y", y.shape, (m, n))
    _shape_check("dz", dz.shape, (m, n))
    sparse = int(loss_id) == FM_LOSS_SPARSE_CCE
    if sparse and labels is None:
        raise ValueError("labels are required for sparse_categorical_crossentropy")
    if not sparse:
        if t is None:
            raise ValueError("t (targets) is required for this loss")
        _shape_check("t", t.shape, (m, n))
    if sample_weight is not None:
        _shape_check("sample_weight", sample_weight.shape, (m,))
    lab = _labels_array(labels, m) if sparse else None
    if lab is not None and m and (lab.min() < 0 or lab.max() >= n):
        raise ValueError(f"labels must lie in [0, {n}), got range [{lab.min()}, {lab.max()}]")
    if z.dtype == np.float32:
        return _loss[float](int(loss_id), _act_id(out_act), out_alpha, z, y,
                            None if sparse else t, lab, sample_weight, dz, grad_scale)
    return _loss[double](int(loss_id), _act_id(out_act), out_alpha, z, y,
                         None if sparse else t, lab, sample_weight, dz, grad_scale)


cdef double _loss(int lid, int act, double alpha, const floating[:, ::1] z,
                  const floating[:, ::1] y, object t, object labels, object sw,
                  floating[:, ::1] dz, double scale) except? -1.0:
    cdef const floating[:, ::1] tv
    cdef const floating[::1] wv
    cdef const int64_t[::1] lv
    cdef const floating *pt = NULL
    cdef const floating *pw = NULL
    cdef const int64_t *pl = NULL
    cdef double total = 0
    cdef int status = FM_OK
    cdef int64_t m = z.shape[0], n = z.shape[1]
    if m == 0:
        return 0.0
    if t is not None:
        tv = t
        pt = &tv[0, 0]
    if labels is not None:
        lv = labels
        pl = &lv[0]
    if sw is not None:
        wv = sw
        pw = &wv[0]
    with nogil:
        if floating is float:
            status = fm_loss_s(&total, &dz[0, 0], &z[0, 0], &y[0, 0], pt, pl, pw, m, n, lid, act,
                               alpha, scale)
        else:
            status = fm_loss_d(&total, &dz[0, 0], &z[0, 0], &y[0, 0], pt, pl, pw, m, n, lid, act,
                               alpha, scale)
    _check(status, "loss")
    return total


def metric(metric_id, y, t, labels, sample_weight):
    """Returns (sum_i w_i m_i, sum_i w_i) for one metric."""
    _require(y=y)
    _float_dtype(y=y, t=t, sample_weight=sample_weight)
    if not 0 <= int(metric_id) < FM_METRIC_COUNT:
        raise ValueError(f"metric_id must be in [0, {FM_METRIC_COUNT}), got {metric_id!r}")
    if y.ndim != 2:
        raise ValueError(f"y must be 2-D, got shape {y.shape}")
    m, n = y.shape
    sparse = int(metric_id) == METRICS["sparse_categorical_accuracy"]
    if sparse and labels is None:
        raise ValueError("labels are required for sparse_categorical_accuracy")
    if not sparse:
        _require(t=t)
        _shape_check("t", t.shape, (m, n))
    if sample_weight is not None:
        _shape_check("sample_weight", sample_weight.shape, (m,))
    lab = _labels_array(labels, m) if sparse else None
    if y.dtype == np.float32:
        return _metric[float](int(metric_id), y, None if sparse else t, lab, sample_weight)
    return _metric[double](int(metric_id), y, None if sparse else t, lab, sample_weight)


cdef tuple _metric(int mid, const floating[:, ::1] y, object t, object labels, object sw):
    cdef const floating[:, ::1] tv
    cdef const floating[::1] wv
    cdef const int64_t[::1] lv
    cdef const floating *pt = NULL
    cdef const floating *pw = NULL
    cdef const int64_t *pl = NULL
    cdef double num = 0, den = 0
    cdef int status = FM_OK
    if y.shape[0] == 0:
        return (0.0, 0.0)
    if t is not None:
        tv = t
        pt = &tv[0, 0]
    if labels is not None:
        lv = labels
        pl = &lv[0]
    if sw is not None:
        wv = sw
        pw = &wv[0]
    with nogil:
        if floating is float:
            status = fm_metric_s(&num, &den, &y[0, 0], pt, pl, pw, y.shape[0], y.shape[1], mid)
        else:
            status = fm_metric_d(&num, &den, &y[0, 0], pt, pl, pw, y.shape[0], y.shape[1], mid)
    _check(status, "metric")
    return (num, den)


# ---- optimizers ------------------------------------------------------------------------

cdef fm_optim _make_optim(int kind, dict config) except *:
    """Fills the C optimizer record from a Keras-style config dict (unknown keys refused)."""
    cdef fm_optim o
    if not 0 <= kind < FM_OPT_COUNT:
        raise ValueError(f"optimizer id must be in [0, {FM_OPT_COUNT}), got {kind!r}")
    unknown = set(config) - set(_OPT_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown optimizer settings: {sorted(unknown)}")
    cfg = dict(_OPT_DEFAULTS)
    cfg.update({key: v for key, v in config.items() if v is not None})
    if cfg["learning_rate"] is None:
        cfg["learning_rate"] = _LR_DEFAULTS[kind]
    clips = [key for key in ("clipnorm", "clipvalue", "global_clipnorm") if cfg[key] is not None]
    if len(clips) > 1:
        raise ValueError(f"only one of clipnorm, clipvalue and global_clipnorm may be set, "
                         f"got {clips}")
    o.kind = kind
    o.nesterov = bool(cfg["nesterov"])
    o.amsgrad = bool(cfg["amsgrad"])
    o.centered = bool(cfg["centered"])
    o.learning_rate = float(cfg["learning_rate"])
    o.momentum = float(cfg["momentum"])
    o.beta_1 = float(cfg["beta_1"])
    o.beta_2 = float(cfg["beta_2"])
    o.epsilon = float(cfg["epsilon"])
    o.rho = float(cfg["rho"])
    o.decay = float(cfg["decay"])
    o.clipnorm = float(cfg["clipnorm"] or 0.0)
    o.clipvalue = float(cfg["clipvalue"] or 0.0)
    o.global_clipnorm = float(cfg["global_clipnorm"] or 0.0)
    for key in ("learning_rate", "epsilon", "decay", "clipnorm", "clipvalue", "global_clipnorm"):
        v = float(cfg[key] or 0.0)
        if not v >= 0 or v == float("inf"):
            raise ValueError(f"{key} must be a finite number >= 0, got {cfg[key]!r}")
    for key in ("beta_1", "beta_2", "rho"):
        if not 0 <= float(cfg[key]) < 1:
            raise ValueError(f"{key} must be in [0, 1), got {cfg[key]!r}")
    if not 0 <= o.momentum <= 1:
        raise ValueError(f"momentum must be in [0, 1], got {cfg['momentum']!r}")
    _check(fm_optim_check(&o), "optimizer")
    return o


def optimizer_step(opt_id, dict config, params, grads, state, int64_t iteration, offsets=None,
                   n_threads=1):
    """One optimizer update of params in place (grads are clipped in place)."""
    _require(params=params, grads=grads, state=state)
    _float_dtype(params=params, grads=grads, state=state)
    cdef fm_optim o = _make_optim(int(opt_id), config)
    n = params.shape[0]
    _shape_check("grads", grads.shape, (n,))
    _shape_check("state", state.shape, (FM_OPT_STATE_SLOTS * n,))
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    off = None
    if offsets is not None:
        off = np.ascontiguousarray(offsets, dtype=np.int64)
        if off.ndim != 1 or off.shape[0] < 2 or off[0] != 0 or off[off.shape[0] - 1] != n or \
                np.any(np.diff(off) < 0):
            raise ValueError(f"offsets must rise from 0 to {n}, got {offsets!r}")
    if params.dtype == np.float32:
        _optim_step[float](&o, params, grads, state, iteration, off, _nthreads(n_threads))
    else:
        _optim_step[double](&o, params, grads, state, iteration, off, _nthreads(n_threads))


cdef _optim_step(const fm_optim *o, floating[::1] p, floating[::1] g, floating[::1] s,
                 int64_t it, object offsets, int nt):
    cdef const int64_t[::1] ov
    cdef const int64_t *po = NULL
    cdef int64_t n_tensors = 0
    cdef int status = FM_OK
    if p.shape[0] == 0:
        return
    if offsets is not None:
        ov = offsets
        po = &ov[0]
        n_tensors = ov.shape[0] - 1
    with nogil:
        if floating is float:
            status = fm_optim_step_s(&p[0], &g[0], &s[0], p.shape[0], po, n_tensors, o, it, nt)
        else:
            status = fm_optim_step_d(&p[0], &g[0], &s[0], p.shape[0], po, n_tensors, o, it, nt)
    _check(status, "optimizer_step")


# ---- random numbers --------------------------------------------------------------------

def seed_rng(seed):
    """A fresh state (uint64 array of 4) for the engine's generator, from an integer seed."""
    state = np.empty(4, dtype=np.uint64)
    cdef uint64_t[::1] sv = state
    fm_rng_seed(&sv[0], <uint64_t>(int(seed) & 0xFFFFFFFFFFFFFFFF))
    return state


def shuffle(order, state):
    """Shuffles the int64 array `order` in place with the engine's generator `state`."""
    if not isinstance(order, np.ndarray) or order.dtype != np.int64 or order.ndim != 1:
        raise ValueError("order must be a 1-D int64 numpy array")
    if not isinstance(state, np.ndarray) or state.dtype != np.uint64 or state.shape != (4,):
        raise ValueError("state must be a uint64 numpy array of 4 words (see seed_rng)")
    cdef int64_t[::1] ov = order
    cdef uint64_t[::1] sv = state
    if ov.shape[0] < 2:
        return order
    with nogil:
        fm_shuffle(&ov[0], ov.shape[0], &sv[0])
    return order


# ---- the engine ------------------------------------------------------------------------

def _line_aligned_zeros(n, dtype):
    """n zeros of dtype starting on a 64-byte boundary, a cache line: threads that share the
    training of a network then write lines of their own (see csrc/fm_team_impl.h)."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n * itemsize + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + n * itemsize].view(dtype)


def _aligned(a):
    """``a`` itself when its elements are aligned for their type, else an aligned copy: the
    engine reads elements as typed loads (a buffer from a pickle or a byte offset may not be
    aligned, and x86 tolerating it would not make it defined C)."""
    return a if a.flags.aligned else np.require(a, requirements=["A"])


cdef int64_t _batches_per_epoch(object order, int64_t n, int64_t batch_size) except -1:
    """Validates an epoch's ordering and batch size; returns the batches per epoch."""
    if not isinstance(order, np.ndarray) or order.dtype != np.int64 or order.ndim != 1 \
            or order.shape[0] != n or not order.flags.c_contiguous:
        raise ValueError(f"order must be a C-contiguous int64 array of length {n}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return -(-int(n) // int(batch_size))  # Python ints: no overflow


cdef class Engine:
    """The training engine: a network description, its flat parameters and optimizer state.

    Every model in the package drives one of these. ``params``, ``grads`` and ``opt_state``
    are numpy arrays owned here; per-layer views come from :meth:`layout`.

    ``norm`` ('rows', Keras, or 'weights', scikit-learn: each batch's loss and penalties over
    its sum of sample weights) and ``output_mean`` (report the data loss averaged over the
    outputs while its gradient stays summed, as scikit-learn's squared_error) select how a
    batch's objective is normalized (see ``fm_norm`` in csrc/fastmlp.h).
    """
    cdef fm_net net
    cdef fm_optim opt
    cdef readonly object dtype
    cdef readonly object params, grads, opt_state
    cdef readonly int64_t n_params
    cdef public int64_t iterations
    cdef readonly object units
    cdef object _units, _act, _alpha, _bias, _dropout, _l1, _l2, _bl1, _bl2, _metrics
    cdef object _work
    cdef int64_t _work_batch
    # Set, with the GIL held, while a C call runs on _work (_work_busy) or writes params and
    # grads (_training): predict/evaluate from other threads meanwhile get a workspace of
    # their own; a second concurrent training call is refused.
    cdef int _work_busy, _training
    cdef int n_threads
    cdef readonly int opt_kind
    cdef readonly dict opt_config
    cdef double _init_acc
    # Until when training runs on one thread: its threads recently spent most of their time
    # waiting for each other (see fm_stats.team_waited; the same bits either way).
    cdef double _team_off_until
    # How many stretches of training found their threads waiting for each other and went on
    # with one.
    cdef readonly int64_t team_waits
    # Batches trained in stretches a team started (not those of a stretch that failed). The
    # choice between a team and one thread: seconds per batch with one thread [0] and with
    # the team [1] (0: not timed yet), the batch size they were timed at (0 after a change of
    # thread count), whether the untimed first stretch ran, when the slower way is timed
    # again, and how the last count was chosen (_CHOSE_*).
    cdef readonly int64_t team_batches
    cdef double _rate[2]
    cdef int64_t _rate_batch
    cdef int _warm, _chose
    cdef double _probe_at

    def __cinit__(self, units, activations, act_alphas, use_bias, dropout, l1, l2, loss,
                  dtype=np.float32, bias_l1=None, bias_l2=None, norm="rows",
                  bint output_mean=False):
        n_layers = len(units) - 1
        if n_layers < 1:
            raise ValueError(f"units must list at least an input and an output width, got {units!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        try:
            widths = [int(u) for u in units]
        except (TypeError, ValueError):
            raise TypeError(f"units must be integers, got {units!r}") from None
        if any(u < 1 for u in widths):
            raise ValueError(f"every layer width must be >= 1, got {widths}")
        # The C engine sizes its buffers with int64 products: a network whose parameters
        # could not exist (a Dense(10**12), say) is refused before anything is allocated.
        n_params = sum(a * b + b for a, b in zip(widths, widths[1:]))
        _check_bytes(n_params * (2 + FM_OPT_STATE_SLOTS) * self.dtype.itemsize,
                     f"the parameters of a network of widths {widths}")
        self._units = np.ascontiguousarray(widths, dtype=np.int64)
        if np.any(self._units < 1):
            raise ValueError(f"every layer width must be >= 1, got {list(units)}")
        per_layer = {"activations": activations, "act_alphas": act_alphas, "use_bias": use_bias,
                     "dropout": dropout, "l1": l1, "l2": l2,
                     "bias_l1": [0.0] * n_layers if bias_l1 is None else bias_l1,
                     "bias_l2": [0.0] * n_layers if bias_l2 is None else bias_l2}
        for name, v in per_layer.items():
            if len(v) != n_layers:
                raise ValueError(f"{name} must have one entry per layer ({n_layers}), got {len(v)}")
        self._act = np.ascontiguousarray([_act_id(a) for a in activations], dtype=np.int32)
        self._alpha = np.ascontiguousarray(act_alphas, dtype=np.float64)
        self._bias = np.ascontiguousarray([bool(b) for b in use_bias], dtype=np.int32)
        self._dropout = np.ascontiguousarray(dropout, dtype=np.float64)
        if np.any((self._dropout < 0) | (self._dropout >= 1)):
            raise ValueError(f"dropout rates must be in [0, 1), got {list(dropout)}")
        self._l1 = np.ascontiguousarray(l1, dtype=np.float64)
        self._l2 = np.ascontiguousarray(l2, dtype=np.float64)
        self._bl1 = np.ascontiguousarray(per_layer["bias_l1"], dtype=np.float64)
        self._bl2 = np.ascontiguousarray(per_layer["bias_l2"], dtype=np.float64)
        for name, arr in (("l1", self._l1), ("l2", self._l2), ("bias_l1", self._bl1),
                          ("bias_l2", self._bl2)):
            if not np.all(np.isfinite(arr) & (arr >= 0)):
                raise ValueError(f"{name} penalties must be finite and >= 0, got {list(arr)}")
        if not 0 <= int(loss) < FM_LOSS_COUNT:
            raise ValueError(f"loss must be a loss id in [0, {FM_LOSS_COUNT}), got {loss!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {sorted(NORMS)}, got {norm!r}")
        self._metrics = np.zeros(0, dtype=np.int32)
        self.units = tuple(int(u) for u in self._units)
        self._bind(int(loss))
        self.net.norm = NORMS[norm]
        self.net.output_mean = 1 if output_mean else 0
        _check(fm_net_check(&self.net), "network description")
        self.n_params = fm_net_param_count(&self.net)
        self.params = _line_aligned_zeros(self.n_params, self.dtype)
        self.grads = _line_aligned_zeros(self.n_params, self.dtype)
        self.opt_state = _line_aligned_zeros(FM_OPT_STATE_SLOTS * self.n_params, self.dtype)
        self.iterations = 0
        self._work = None
        self._work_batch = 0
        self.n_threads = fm_default_num_threads()
        self.set_optimizer(OPTIMIZERS["sgd"], {})

    cdef _bind(self, int loss):
        cdef const int64_t[::1] u = self._units
        cdef const int32_t[::1] a = self._act
        cdef const double[::1] al = self._alpha
        cdef const int32_t[::1] b = self._bias
        cdef const double[::1] d = self._dropout
        cdef const double[::1] l1 = self._l1
        cdef const double[::1] l2 = self._l2
        cdef const double[::1] bl1 = self._bl1
        cdef const double[::1] bl2 = self._bl2
        self.net.dtype = FM_FLOAT32 if self.dtype == np.float32 else FM_FLOAT64
        self.net.n_layers = u.shape[0] - 1
        self.net.units = &u[0]
        self.net.act = &a[0]
        self.net.act_alpha = &al[0]
        self.net.use_bias = &b[0]
        self.net.dropout = &d[0]
        self.net.l1 = &l1[0]
        self.net.l2 = &l2[0]
        self.net.bias_l1 = &bl1[0]
        self.net.bias_l2 = &bl2[0]
        self.net.loss = loss
        self.net.n_metrics = 0
        self.net.metrics = NULL

    @property
    def loss(self):
        return int(self.net.loss)

    @property
    def norm(self):
        """The normalization's name (a key of NORMS)."""
        return "weights" if self.net.norm == FM_NORM_WEIGHTS else "rows"

    @property
    def output_mean(self):
        return bool(self.net.output_mean)

    @property
    def metrics(self):
        return [int(m) for m in self._metrics]

    def layout(self):
        """Per layer: (kernel offset, (n_in, n_out), bias offset or -1) in ``params``."""
        L = self.net.n_layers
        w_off = np.empty(L, dtype=np.int64)
        b_off = np.empty(L, dtype=np.int64)
        cdef int64_t[::1] wv = w_off
        cdef int64_t[::1] bv = b_off
        _check(fm_net_layout(&self.net, &wv[0], &bv[0]), "layout")
        return [(int(w_off[l]), (self.units[l], self.units[l + 1]), int(b_off[l]))
                for l in range(L)]

    def set_metrics(self, metric_ids):
        """Metrics accumulated by train/evaluate, in this order."""
        ids = np.ascontiguousarray([int(m) for m in metric_ids], dtype=np.int32)
        if ids.shape[0] > FM_MAX_METRICS:
            raise ValueError(f"at most {FM_MAX_METRICS} metrics, got {ids.shape[0]}")
        sparse = self.net.loss == FM_LOSS_SPARSE_CCE
        for m in ids:
            if not 0 <= m < FM_METRIC_COUNT:
                raise ValueError(f"unknown metric id {m}")
            if (m == METRICS["sparse_categorical_accuracy"]) != sparse:
                raise ValueError(
                    "sparse_categorical_accuracy needs the sparse_categorical_crossentropy "
                    "loss and that loss allows no other metric on targets; got metric "
                    f"{[k for k, v in METRICS.items() if v == m][0]!r}")
        self._metrics = ids
        cdef const int32_t[::1] mv = self._metrics
        self.net.n_metrics = ids.shape[0]
        self.net.metrics = &mv[0] if ids.shape[0] else NULL

    def set_optimizer(self, opt_id, dict config):
        """Selects the update rule and its settings (Keras names, see OPTIMIZERS)."""
        self.opt = _make_optim(int(opt_id), config)
        self.opt_kind = int(opt_id)
        self.opt_config = dict(config)
        self._init_acc = float(config.get("initial_accumulator_value") or 0.1)

    def reset_optimizer_state(self):
        """Zeroes the moments (Adagrad's accumulator starts at initial_accumulator_value)."""
        self.opt_state[:] = 0
        if self.opt_kind == OPTIMIZERS["adagrad"]:
            self.opt_state[:self.n_params] = self._init_acc
        self.iterations = 0

    def set_num_threads(self, n):
        cdef int nt = _nthreads(n)
        if nt != self.n_threads:
            self._rate_batch = 0  # timings of another team size: timed anew
        self.n_threads = nt

    cdef int _train_threads(self, int64_t batch_size, bint team_ok, double now) noexcept nogil:
        """The thread count for the next stretch of training on batches of batch_size rows
        (team_ok: a team would share them, see fm_train_team_size); _chose says how."""
        self._chose = _CHOSE_FIXED
        if self.n_threads <= 1 or not team_ok:
            return self.n_threads
        if now < self._team_off_until:  # the team waited for cores taken by other work
            self._chose = _CHOSE_BACKOFF
            return 1
        if _team_policy == 2:
            return 1
        if _team_policy == 1:
            return self.n_threads
        if batch_size != self._rate_batch:  # also set to 0 when the thread count changes
            self._rate[0] = 0
            self._rate[1] = 0
            self._rate_batch = batch_size
            self._warm = 0
            self._probe_at = 0
        if not self._warm:
            self._chose = _CHOSE_WARM
            return self.n_threads
        if self._rate[1] == 0 or self._rate[0] == 0:
            self._chose = _CHOSE_PROBE
            return self.n_threads if self._rate[1] == 0 else 1
        cdef bint team_faster = self._rate[1] <= self._rate[0]
        if now >= self._probe_at:  # the machine may have changed: time the slower way again
            self._chose = _CHOSE_PROBE
            return 1 if team_faster else self.n_threads
        self._chose = _CHOSE_FASTER
        return self.n_threads if team_faster else 1

    cdef int64_t _stretch(self, int nt, int64_t n_batches, double now) noexcept nogil:
        """How many of n_batches the stretch _train_threads chose nt for at ``now`` trains:
        a few when it times a way, up to when the slower way is to be timed again or the
        backoff ends, all of them when nothing is timed."""
        cdef double rate = self._rate[1 if nt > 1 else 0], until = 0
        if self._chose == _CHOSE_WARM:
            until = _TEAM_WARM_BATCHES
        elif self._chose == _CHOSE_PROBE:
            until = _TEAM_PROBE_RUN / rate + 1 if rate > 0 else _TEAM_FIRST_BATCHES
        elif self._chose == _CHOSE_FASTER:
            until = (self._probe_at - now) / rate + 1 if rate > 0 else n_batches
        elif self._chose == _CHOSE_BACKOFF:
            until = (self._team_off_until - now) / rate + 1 if rate > 0 else \
                _TEAM_FIRST_BATCHES
        else:
            return n_batches
        # at least one batch; compared as a double first, so the cast cannot overflow
        return n_batches if until >= <double>n_batches else <int64_t>until

    cdef void _timed(self, int nt, int64_t n_batches, int64_t n_rows, double seconds,
                     bint waited, double now) noexcept nogil:
        """Records a stretch of n_batches holding n_rows rows (0: it failed) that
        _train_threads chose nt for."""
        cdef int chose = self._chose
        self._chose = _CHOSE_FIXED
        if nt > 1:
            self.team_batches += n_batches
        if waited:  # its threads waited for each other: one thread for a while
            self.team_waits += 1
            self._team_off_until = now + _TEAM_BACKOFF
            return
        if chose == _CHOSE_FIXED or chose == _CHOSE_BACKOFF or n_batches < 1 or n_rows < 1:
            return
        if chose == _CHOSE_WARM:
            self._warm = 1
            return
        cdef int i = 1 if nt > 1 else 0
        # per whole batch, from the rows: a short last batch does not flatter its stretch
        cdef double r = seconds * <double>self._rate_batch / <double>n_rows
        # a probe replaces the other way's old rate; the way in use is averaged over stretches
        self._rate[i] = r if chose == _CHOSE_PROBE or self._rate[i] == 0 else \
            0.5 * (self._rate[i] + r)
        if chose == _CHOSE_PROBE and self._rate[0] > 0 and self._rate[1] > 0:
            self._probe_at = now + (_TEAM_PROBE if _TEAM_PROBE > 20 * seconds else 20 * seconds)

    cdef int _train_run(self, void *pp, void *gp, void *sp, int64_t *it, void *work,
                        int64_t batch_size, const fm_data *d, const int64_t *order,
                        int64_t first, int64_t n_batches, uint64_t seed,
                        fm_stats *s) noexcept nogil:
        """fm_train (its arguments but the thread count) on batches [first, first +
        n_batches) in stretches, each on the thread count _train_threads chooses; the sums in s
        and the iteration count go on across them (the same bits as one call)."""
        cdef bint team_ok = fm_train_team_size(&self.net, &self.opt, batch_size,
                                               self.n_threads) > 1
        cdef int status = FM_OK, nt
        cdef int64_t n, seen
        cdef double t0, t1
        while True:  # at least one call: fm_train checks its arguments even for no batches
            t0 = fm_seconds()
            nt = self._train_threads(batch_size, team_ok, t0)
            n = self._stretch(nt, n_batches, t0) if team_ok else n_batches
            s.team_waited = 0
            seen = s.n_seen
            status = fm_train(&self.net, &self.opt, pp, gp, sp, it, work, batch_size, d, order,
                              first, n, seed, s, nt)
            t1 = fm_seconds()
            if team_ok:  # a failed stretch's time says nothing; its waits still count
                self._timed(nt, n if status == FM_OK else 0, s.n_seen - seen, t1 - t0,
                            s.team_waited, t1)
            first += n
            n_batches -= n
            if status != FM_OK or n_batches <= 0:
                return status

    def choose_threads(self, int64_t batch_size, bint team_ok, double now):
        """The thread count the next stretch of training would get, recorded as that
        stretch's choice; ``now`` in seconds (fm_seconds). For tests of the policy."""
        self._check_idle()
        return self._train_threads(batch_size, team_ok, now)

    def stretch(self, int nt, int64_t n_batches, double now):
        """How many of n_batches the stretch last chosen would train. For tests."""
        self._check_idle()
        return self._stretch(nt, n_batches, now)

    def record_run(self, int nt, int64_t n_batches, double seconds, bint waited, double now,
                   int64_t n_rows=-1):
        """Records a stretch as training does after one (n_rows: whole batches of the size
        last chosen for, unless given). For tests."""
        self._check_idle()
        self._timed(nt, n_batches, n_batches * self._rate_batch if n_rows < 0 else n_rows,
                    seconds, waited, now)

    cdef int _check_idle(self) except -1:
        if self._training:
            raise RuntimeError("the engine is training")
        return 0

    @property
    def team_rates(self):
        """(seconds per batch on one thread, with the team) as timed for the batch size last
        trained, 0 where not timed yet."""
        return (self._rate[0], self._rate[1])

    def team_size(self, int64_t batch_size):
        """How many threads share each training step with batches of batch_size rows (1: one
        thread, the GEMM threading its larger products); see fm_train_team_size."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return fm_train_team_size(&self.net, &self.opt, batch_size, self.n_threads)

    def prepare(self, int64_t batch_size):
        """Allocates the workspace for batches of up to batch_size rows (reused after)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self._work is not None and self._work_batch >= batch_size:
            return
        self._work = self._new_work(batch_size)
        self._work_batch = batch_size

    cdef object _new_work(self, int64_t batch_size):
        """A workspace for batches of up to batch_size rows; MemoryError (before allocating)
        when it could not fit in memory."""
        # an upper bound of fm_net_workspace_bytes(), computed without overflow, so that the
        # C computation itself cannot overflow
        bound = (8 * int(batch_size) * (8 * sum(self.units) + 2) + 8 * sum(self.units) +
                 64 * (16 * len(self.units) + 32))
        what = f"a workspace for batches of {batch_size} rows"
        if bound > (1 << 62):
            _check_bytes(bound, what)
        nbytes = fm_net_workspace_bytes(&self.net, batch_size)
        if nbytes < 0:
            raise ValueError("invalid network description")
        _check_bytes(nbytes, what)
        return np.empty(nbytes // 8 + 8, dtype=np.float64)

    cdef tuple _claim_work(self, int64_t batch_size):
        """(workspace, shared) for one C call: the engine's own, allocated once and reused,
        unless another thread's call is running on it; then a private one."""
        if self._work_busy:
            return self._new_work(batch_size), False
        self._work_busy = 1  # no Python code ran since the test: atomic under the GIL
        try:
            self.prepare(batch_size)
        except BaseException:
            self._work_busy = 0
            raise
        return self._work, True

    cdef tuple _start_training(self, int64_t batch_size):
        """Marks the engine busy training and claims the workspace for batch_size rows."""
        self._begin_training()
        try:
            return self._claim_work(batch_size)
        except BaseException:
            self._training = 0
            raise

    cdef int _begin_training(self) except -1:
        if self._training:
            raise RuntimeError("this model is already training in another thread; train one "
                               "model from one thread at a time")
        self._training = 1
        return 0

    def release(self):
        """Frees the workspace."""
        self._work = None
        self._work_batch = 0

    cdef int _fill_data(self, fm_data *d, object x, object t, object labels, object sw,
                        list keep) except -1:
        """Validates one data set and points d at it (keep holds the views alive)."""
        cdef Py_ssize_t isz = self.dtype.itemsize
        cdef cnp.ndarray xa, ta, la, wa
        L = self.net.n_layers
        _float_dtype(x=x, t=t, sample_weight=sw)
        if x.dtype != self.dtype:
            raise ValueError(f"x has dtype {x.dtype}, expected the model's {self.dtype}")
        if x.ndim != 2 or x.shape[1] != self.units[0]:
            raise ValueError(f"x must have shape (n, {self.units[0]}), got {x.shape}")
        n = x.shape[0]
        memset(d, 0, sizeof(fm_data))
        d.n = n
        xa = _aligned(x)
        keep.append(xa)
        d.x_rs = xa.strides[0] // isz
        d.x_cs = xa.strides[1] // isz
        d.X = cnp.PyArray_DATA(xa) if n else NULL
        if self.net.loss == FM_LOSS_SPARSE_CCE:
            if labels is None:
                raise ValueError("labels are required for sparse_categorical_crossentropy")
            la = _labels_array(labels, n)
            if n and (la.min() < 0 or la.max() >= self.units[L]):
                raise ValueError(f"labels must lie in [0, {self.units[L]}), got range "
                                 f"[{la.min()}, {la.max()}]")
            keep.append(la)
            d.labels = <const int64_t *>cnp.PyArray_DATA(la) if n else NULL
        else:
            if t is None:
                raise ValueError("t (targets) is required for this loss")
            if t.dtype != self.dtype:
                raise ValueError(f"t has dtype {t.dtype}, expected {self.dtype}")
            _shape_check("t", t.shape, (n, self.units[L]))
            ta = _aligned(t)
            keep.append(ta)
            d.t_rs = ta.strides[0] // isz
            d.t_cs = ta.strides[1] // isz
            d.T = cnp.PyArray_DATA(ta) if n else NULL
        if sw is not None:
            if sw.dtype != self.dtype:
                raise ValueError(f"sample_weight has dtype {sw.dtype}, expected {self.dtype}")
            _shape_check("sample_weight", sw.shape, (n,))
            wa = _aligned(np.ascontiguousarray(sw))
            keep.append(wa)
            d.sw = cnp.PyArray_DATA(wa) if n else NULL
        for a in keep:
            if a.strides and any(s % isz for s in a.strides):
                raise ValueError("arrays must have strides that are multiples of the itemsize")
        return 0

    def new_totals(self):
        """Zeroed running sums for :meth:`train`: loss, rows, then metric numerators and
        denominators."""
        return np.zeros(2 + 2 * FM_MAX_METRICS, dtype=np.float64)

    cdef int _load_totals(self, fm_stats *s, object totals) except -1:
        cdef const double[::1] tv
        if not isinstance(totals, np.ndarray) or totals.dtype != np.float64 or \
                totals.shape != (2 + 2 * FM_MAX_METRICS,):
            raise ValueError("totals must come from Engine.new_totals()")
        tv = totals
        s.loss_sum = tv[0]
        s.n_seen = <int64_t>tv[1]
        for i in range(FM_MAX_METRICS):
            s.metric_num[i] = tv[2 + i]
            s.metric_den[i] = tv[2 + FM_MAX_METRICS + i]
        return 0

    cdef _store_totals(self, fm_stats *s, object totals):
        cdef double[::1] tv = totals
        tv[0] = s.loss_sum
        tv[1] = <double>s.n_seen
        for i in range(FM_MAX_METRICS):
            tv[2 + i] = s.metric_num[i]
            tv[2 + FM_MAX_METRICS + i] = s.metric_den[i]

    cdef tuple _stats_tuple(self, fm_stats *s):
        nm = self.net.n_metrics
        return (float(s.loss_sum), int(s.n_seen),
                np.array([s.metric_num[i] for i in range(nm)], dtype=np.float64),
                np.array([s.metric_den[i] for i in range(nm)], dtype=np.float64))

    def train(self, x, t, labels, sample_weight, order, int64_t first_batch, int64_t n_batches,
              int64_t batch_size, seed, totals=None):
        """Trains batches [first_batch, first_batch + n_batches) of the epoch ordering.

        Returns (status, loss_sum, n_seen, metric_num, metric_den, bad_batch); status is 0
        or STATUS_NONFINITE (that batch was not applied). With ``totals`` (a float64 array
        from :meth:`new_totals`) the sums continue from it and are written back, so an epoch
        summed over any split into calls gives the same bits.
        """
        cdef fm_data d
        cdef fm_stats s
        cdef int status
        cdef int64_t it = self.iterations
        cdef list keep = []
        self._fill_data(&d, x, t, labels, sample_weight, keep)
        epoch = _batches_per_epoch(order, d.n, batch_size)
        if first_batch < 0 or n_batches < 0 or \
                (n_batches > 0 and int(first_batch) + int(n_batches) > epoch):
            raise ValueError(f"batches [{first_batch}, {int(first_batch) + int(n_batches)}) of "
                             f"size {batch_size} do not fit {d.n} rows")
        if batch_size > d.n > 0:
            batch_size = d.n  # one batch holds every row either way; no larger workspace
        memset(&s, 0, sizeof(fm_stats))
        if totals is not None:
            self._load_totals(&s, totals)
        s.bad_batch = -1
        # everything that can raise comes before the engine is marked busy
        cdef uint64_t sd = <uint64_t>(int(seed) & 0xFFFFFFFFFFFFFFFF)
        work, shared = self._start_training(batch_size)
        cdef cnp.ndarray oa = order, pa = self.params, ga = self.grads, sa = self.opt_state
        cdef cnp.ndarray wa = work
        cdef void *pp = cnp.PyArray_DATA(pa)
        cdef void *gp = cnp.PyArray_DATA(ga)
        cdef void *sp = cnp.PyArray_DATA(sa)
        cdef void *wp = cnp.PyArray_DATA(wa)
        cdef const int64_t *op = <const int64_t *>cnp.PyArray_DATA(oa)
        try:
            with nogil:
                status = self._train_run(pp, gp, sp, &it, wp, batch_size, &d, op, first_batch,
                                         n_batches, sd, &s)
        finally:
            self._training = 0
            if shared:
                self._work_busy = 0
        self.iterations = it
        if status != FM_OK and status != FM_ERR_NONFINITE:
            _check(status, "train")
        if totals is not None:
            self._store_totals(&s, totals)
        loss_sum, n_seen, num, den = self._stats_tuple(&s)
        return (int(status), loss_sum, n_seen, num, den, int(s.bad_batch))

    def train_epochs(self, x, t, labels, sample_weight, order, rng_state, int64_t n_epochs,
                     int64_t batch_size, seed, out=None):
        """Trains ``n_epochs`` whole epochs in one call, for a fit that needs no Python
        between epochs: each epoch first shuffles ``order`` with ``rng_state`` (as
        :func:`shuffle` does; None keeps the order), then trains every batch as
        :meth:`train` would, so the result is bitwise that of one :meth:`train` per epoch.

        Returns (status, stats, bad_epoch, bad_batch): ``stats`` holds one row per completed
        epoch, laid out as :meth:`new_totals`; status is 0 or STATUS_NONFINITE, when batch
        ``bad_batch`` of epoch ``bad_epoch`` (counted from this call's first) was not applied
        and the epochs before it are complete. ``out``, a float64 array of shape
        (n_epochs, len(new_totals())), receives the rows in place (they survive an exception
        raised as the call returns, such as KeyboardInterrupt).
        """
        cdef fm_data d
        cdef fm_stats s
        cdef int status = FM_OK
        cdef int64_t it = self.iterations
        cdef list keep = []
        self._fill_data(&d, x, t, labels, sample_weight, keep)
        cdef int64_t nb = _batches_per_epoch(order, d.n, batch_size)
        if n_epochs < 0:
            raise ValueError(f"n_epochs must be >= 0, got {n_epochs}")
        cdef uint64_t *rs = NULL
        cdef uint64_t[::1] rv
        if rng_state is not None:
            if not isinstance(rng_state, np.ndarray) or rng_state.dtype != np.uint64 or \
                    rng_state.shape != (4,):
                raise ValueError("rng_state must be a uint64 numpy array of 4 words "
                                 "(see seed_rng)")
            if not order.flags.writeable:
                raise ValueError("order must be writeable to be shuffled")
            rv = rng_state
            rs = &rv[0]
        if batch_size > d.n > 0:
            batch_size = d.n
        cdef int nm = self.net.n_metrics
        if out is None:
            out = np.zeros((n_epochs, 2 + 2 * FM_MAX_METRICS), dtype=np.float64)
        elif not isinstance(out, np.ndarray) or out.dtype != np.float64 or \
                out.shape != (n_epochs, 2 + 2 * FM_MAX_METRICS):
            raise ValueError(f"out must be a float64 array of shape "
                             f"{(n_epochs, 2 + 2 * FM_MAX_METRICS)}")
        cdef double[:, ::1] ov = out
        # everything that can raise comes before the engine is marked busy
        cdef uint64_t sd = <uint64_t>(int(seed) & 0xFFFFFFFFFFFFFFFF)
        work, shared = self._start_training(batch_size)
        cdef cnp.ndarray oa = order, pa = self.params, ga = self.grads, sa = self.opt_state
        cdef cnp.ndarray wa = work
        cdef void *pp = cnp.PyArray_DATA(pa)
        cdef void *gp = cnp.PyArray_DATA(ga)
        cdef void *sp = cnp.PyArray_DATA(sa)
        cdef void *wp = cnp.PyArray_DATA(wa)
        cdef int64_t *op = <int64_t *>cnp.PyArray_DATA(oa)
        cdef int64_t e = 0, i
        try:
            with nogil:
                while e < n_epochs:
                    if rs != NULL and d.n > 1:
                        fm_shuffle(op, d.n, rs)
                    memset(&s, 0, sizeof(fm_stats))
                    s.bad_batch = -1
                    status = self._train_run(pp, gp, sp, &it, wp, batch_size, &d, op, 0, nb, sd,
                                             &s)
                    if status != FM_OK:
                        break
                    ov[e, 0] = s.loss_sum
                    ov[e, 1] = <double>s.n_seen
                    for i in range(nm):
                        ov[e, 2 + i] = s.metric_num[i]
                        ov[e, 2 + FM_MAX_METRICS + i] = s.metric_den[i]
                    e += 1
        finally:
            self._training = 0
            if shared:
                self._work_busy = 0
        self.iterations = it
        if status != FM_OK and status != FM_ERR_NONFINITE:
            _check(status, "train")
        return int(status), out[:e], int(e), int(s.bad_batch) if status != FM_OK else -1

    def evaluate(self, x, t, labels, sample_weight, int64_t batch_size):
        """Returns (loss_sum, n, metric_num, metric_den) over the whole data set."""
        cdef fm_data d
        cdef fm_stats s
        cdef int status
        cdef list keep = []
        self._fill_data(&d, x, t, labels, sample_weight, keep)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        memset(&s, 0, sizeof(fm_stats))
        if d.n == 0:
            return self._stats_tuple(&s)
        batch_size = min(batch_size, d.n)
        work, shared = self._claim_work(batch_size)
        cdef cnp.ndarray pa = self.params, wa = work
        cdef const void *pp = cnp.PyArray_DATA(pa)
        cdef void *wp = cnp.PyArray_DATA(wa)
        cdef int nt = self.n_threads
        try:
            with nogil:
                status = fm_evaluate(&self.net, pp, wp, batch_size, &d, &s, nt)
        finally:
            if shared:
                self._work_busy = 0
        _check(status, "evaluate")
        return self._stats_tuple(&s)

    def predict(self, x, out, int64_t batch_size):
        """out (n, n_out, C-contiguous, model dtype) = the network's output for x."""
        cdef fm_data d
        cdef int status
        cdef list keep = []
        _float_dtype(x=x, out=out)
        if x.dtype != self.dtype or out.dtype != self.dtype:
            raise ValueError(f"x and out must have the model's dtype {self.dtype}")
        if x.ndim != 2 or x.shape[1] != self.units[0]:
            raise ValueError(f"x must have shape (n, {self.units[0]}), got {x.shape}")
        n = x.shape[0]
        _shape_check("out", out.shape, (n, self.units[len(self.units) - 1]))
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be a writable C-contiguous array")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        cdef Py_ssize_t isz = self.dtype.itemsize
        if any(st % isz for st in x.strides):
            raise ValueError("x must have strides that are multiples of the itemsize")
        _check_no_overlap("out", out, x=x, params=self.params)
        if n == 0:
            return out
        x = _aligned(x)
        batch_size = min(batch_size, n)
        work, shared = self._claim_work(batch_size)
        cdef cnp.ndarray xa = x, oa = out, pa = self.params, wa = work
        cdef int64_t rs = xa.strides[0] // isz, cs = xa.strides[1] // isz, nn = n
        cdef const void *xp = cnp.PyArray_DATA(xa)
        cdef void *outp = cnp.PyArray_DATA(oa)
        cdef const void *pp = cnp.PyArray_DATA(pa)
        cdef void *wp = cnp.PyArray_DATA(wa)
        cdef int nt = self.n_threads
        try:
            with nogil:
                status = fm_predict(&self.net, pp, wp, batch_size, xp, rs, cs, nn, outp, nt)
        finally:
            if shared:
                self._work_busy = 0
        _check(status, "predict")
        return out

    def loss_and_grad(self, x, t, labels, sample_weight):
        """Loss (with penalties) of all rows as one batch; its gradient goes to ``grads``."""
        cdef fm_data d
        cdef double loss = 0
        cdef int status
        cdef list keep = []
        self._fill_data(&d, x, t, labels, sample_weight, keep)
        if d.n == 0:
            raise ValueError("x must have at least one row")
        work = self._new_work(d.n)
        cdef cnp.ndarray pa = self.params, ga = self.grads, wa = work
        cdef const void *pp = cnp.PyArray_DATA(pa)
        cdef void *gp = cnp.PyArray_DATA(ga)
        cdef void *wp = cnp.PyArray_DATA(wa)
        cdef int nt = self.n_threads
        self._begin_training()  # it writes grads
        try:
            with nogil:
                status = fm_loss_and_grad(&self.net, pp, gp, wp, &d, &loss, nt)
        finally:
            self._training = 0
        _check(status, "loss_and_grad")
        return float(loss)


# ---- GEMM configuration ----------------------------------------------------------------
# The kernel set's blocking and the CPU features (for fastmlp.show_config), the fused GEMM
# epilogue (gemm_ex), and the validated fast path behind fastmlp.ops.gemm (ops_gemm).

_CPU_FEATURE_BITS = {
    "sse2": FM_CPU_SSE2, "avx": FM_CPU_AVX, "fma": FM_CPU_FMA, "avx2": FM_CPU_AVX2,
    "avx512f": FM_CPU_AVX512F, "avx512dq": FM_CPU_AVX512DQ, "avx512vl": FM_CPU_AVX512VL,
    "avx512bw": FM_CPU_AVX512BW,
}
_BLOCKING_KEYS = ("mr", "nr", "mc", "kc", "nc", "sup_m", "sup_mnk", "par_mnk")


def cpu_features():
    """Names of the CPU features the engine detected at run time (empty off x86-64)."""
    cdef int f = fm_cpu_features()
    return [name for name, bit in _CPU_FEATURE_BITS.items() if f & bit]


def gemm_blocking(str arch_name, dtype):
    """Blocking of one kernel set for float32 or float64: a dict of the micro-tile (mr, nr),
    the cache blocks (mc, kc, nc), the small-product limits (sup_m, sup_mnk) and the work
    from which threads are used (par_mnk)."""
    if arch_name not in ARCHS:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {arch_name!r}")
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    cdef int64_t out[8]
    _check(fm_gemm_blocking(ARCHS[arch_name], FM_FLOAT32 if dt == np.float32 else FM_FLOAT64,
                            out), "gemm_blocking")
    return {key: int(out[i]) for i, key in enumerate(_BLOCKING_KEYS)}


def gemm_ex(a, b, c, bias=None, act="linear", double act_alpha=0.0, y=None, alpha=1.0,
            beta=0.0, bint trans_a=False, bint trans_b=False, n_threads=1):
    """c := alpha * op(a) @ op(b) + beta * c + bias, then y := act(c) (in place when y is
    None), with bias and act applied per tile of c while it is in cache; returns y or c.
    c and y need contiguous rows (unit column stride)."""
    _check_product(a, b, c, trans_a, trans_b, bias, y)
    if c.dtype == np.float32:
        _gemm_ex[float](a, b, c, bias, _act_id(act), act_alpha, y, alpha, beta, trans_a,
                        trans_b, _nthreads(n_threads))
    else:
        _gemm_ex[double](a, b, c, bias, _act_id(act), act_alpha, y, alpha, beta, trans_a,
                         trans_b, _nthreads(n_threads))
    return c if y is None else y


cdef _gemm_ex(const floating[:, :] a, const floating[:, :] b, floating[:, :] c, object bias,
              int act, double act_alpha, object y, double alpha, double beta, bint ta, bint tb,
              int nt):
    cdef const floating[::1] bv
    cdef floating[:, :] yv
    cdef const floating *pbias = NULL
    cdef floating *py = NULL
    cdef Py_ssize_t isz = sizeof(floating)
    cdef int64_t m = c.shape[0], n = c.shape[1]
    cdef int64_t k = a.shape[0] if ta else a.shape[1]
    cdef int64_t rsa = _stride(a.strides[0], isz), csa = _stride(a.strides[1], isz)
    cdef int64_t rsb = _stride(b.strides[0], isz), csb = _stride(b.strides[1], isz)
    cdef int64_t rsc = _stride(c.strides[0], isz), csc = _stride(c.strides[1], isz)
    cdef int64_t rsy = 0
    cdef int status = FM_OK
    if m == 0 or n == 0:
        return
    if ta:
        rsa, csa = csa, rsa
    if tb:
        rsb, csb = csb, rsb
    if bias is not None:
        bv = bias
        pbias = &bv[0]
    if y is not None:
        yv = y
        py = &yv[0, 0]
        rsy = _stride(yv.strides[0], isz)
        if _stride(yv.strides[1], isz) != 1 and n > 1:
            raise ValueError("y must have contiguous rows")
    cdef const floating *pa = &a[0, 0] if k > 0 else NULL
    cdef const floating *pb = &b[0, 0] if k > 0 else NULL
    with nogil:
        if floating is float:
            status = fm_sgemm_ex(m, n, k, <float>alpha, pa, rsa, csa, pb, rsb, csb,
                                 <float>beta, &c[0, 0], rsc, csc, pbias, act, act_alpha, py,
                                 rsy, nt)
        else:
            status = fm_dgemm_ex(m, n, k, alpha, pa, rsa, csa, pb, rsb, csb, beta, &c[0, 0],
                                 rsc, csc, pbias, act, act_alpha, py, rsy, nt)
    _check(status, "gemm_ex")


GEMM_SMALL_MNK = FM_GEMM_SMALL_MNK
GEMM_ROW_PAR_MNK = FM_GEMM_ROW_PAR_MNK


def gemm_small(a, b, c, bias=None, act="linear", double act_alpha=0.0, y=None,
               bint trans_a=False, bint trans_b=False):
    """The dense layer's entry (training, predict) for products of at most GEMM_SMALL_MNK multiply-adds:
    c := op(a) @ op(b) + bias, then y := act(c) (in place when y is None); c and y
    C-contiguous. Returns y or c."""
    _require(a=a, b=b, c=c)
    _check_product(a, b, c, trans_a, trans_b, bias, y)
    _check_no_overlap("c", c, a=a, b=b, bias=bias)
    if y is not None:
        _check_no_overlap("y", y, may_be=("c",), a=a, b=b, bias=bias, c=c)
    if c.dtype == np.float32:
        _gemm_small[float](a, b, c, bias, _act_id(act), act_alpha, c if y is None else y,
                           trans_a, trans_b)
    else:
        _gemm_small[double](a, b, c, bias, _act_id(act), act_alpha, c if y is None else y,
                            trans_a, trans_b)
    return c if y is None else y


cdef _gemm_small(const floating[:, :] a, const floating[:, :] b, floating[:, ::1] c,
                 object bias, int act, double act_alpha, floating[:, ::1] y, bint ta, bint tb):
    cdef const floating[::1] bv
    cdef const floating *pbias = NULL
    cdef Py_ssize_t isz = sizeof(floating)
    cdef int64_t m = c.shape[0], n = c.shape[1]
    cdef int64_t k = a.shape[0] if ta else a.shape[1]
    cdef int64_t rsa = _stride(a.strides[0], isz), csa = _stride(a.strides[1], isz)
    cdef int64_t rsb = _stride(b.strides[0], isz), csb = _stride(b.strides[1], isz)
    cdef int status = FM_OK
    if ta:
        rsa, csa = csa, rsa
    if tb:
        rsb, csb = csb, rsb
    if bias is not None:
        bv = bias
        pbias = &bv[0]
    if m == 0 or n == 0 or k == 0:
        status = FM_ERR_BADARG
    elif floating is float:
        status = fm_sgemm_small(m, n, k, &a[0, 0], rsa, csa, &b[0, 0], rsb, csb, &c[0, 0],
                                pbias, act, act_alpha, &y[0, 0])
    else:
        status = fm_dgemm_small(m, n, k, &a[0, 0], rsa, csa, &b[0, 0], rsb, csb, &c[0, 0],
                                pbias, act, act_alpha, &y[0, 0])
    _check(status, "gemm_small")


# Products of at least this many multiply-adds release the GIL (below, it costs more than
# the product).
DEF _OPS_NOGIL_MNK = 16384


cdef inline bint _ops_usable(cnp.ndarray x):
    """Whether the C engine can read x as it is: aligned, strides whole elements."""
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(x)
    return (cnp.PyArray_ISALIGNED(x) and cnp.PyArray_STRIDE(x, 0) % isz == 0
            and cnp.PyArray_STRIDE(x, 1) % isz == 0)


cdef _ops_extent(cnp.ndarray x, Py_ssize_t *lo, Py_ssize_t *hi):
    """The byte range [lo, hi) that x's elements occupy."""
    cdef Py_ssize_t start = <Py_ssize_t>cnp.PyArray_DATA(x), end = start
    cdef int d
    for d in range(2):
        if cnp.PyArray_DIM(x, d) == 0:
            lo[0] = hi[0] = start
            return
        if cnp.PyArray_STRIDE(x, d) < 0:
            start += cnp.PyArray_STRIDE(x, d) * (cnp.PyArray_DIM(x, d) - 1)
        else:
            end += cnp.PyArray_STRIDE(x, d) * (cnp.PyArray_DIM(x, d) - 1)
    lo[0] = start
    hi[0] = end + cnp.PyArray_ITEMSIZE(x)


cdef cnp.ndarray _ops_operand(object x, str name):
    """x as a 2-D float32/float64 array the engine can read (copied only when misaligned)."""
    cdef cnp.ndarray arr
    if type(x) is np.ndarray:
        arr = <cnp.ndarray>x
    else:
        arr = np.asarray(x)
    if cnp.PyArray_TYPE(arr) != cnp.NPY_FLOAT and cnp.PyArray_TYPE(arr) != cnp.NPY_DOUBLE:
        raise TypeError(f"{name} must have dtype float32 or float64, got {arr.dtype}; "
                        f"convert it first, e.g. {name}.astype(np.float32)")
    if cnp.PyArray_NDIM(arr) != 2:
        raise ValueError(f"{name} must be 2-D, got shape {(<object>arr).shape}")
    if not _ops_usable(arr):
        arr = np.array(arr, order="C")
    return arr


def ops_gemm(a, b, bint trans_a, bint trans_b, alpha, beta, out, n_threads):
    """The validated product behind fastmlp.ops.gemm (see its docstring)."""
    cdef cnp.ndarray A = _ops_operand(a, "a"), B = _ops_operand(b, "b"), C
    cdef int typenum = cnp.PyArray_TYPE(A)
    if cnp.PyArray_TYPE(B) != typenum:
        raise TypeError(f"a and b must have the same dtype, got {A.dtype} and {B.dtype}")
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(A)
    cdef int64_t m = cnp.PyArray_DIM(A, 1 if trans_a else 0)
    cdef int64_t k = cnp.PyArray_DIM(A, 0 if trans_a else 1)
    cdef int64_t kb = cnp.PyArray_DIM(B, 1 if trans_b else 0)
    cdef int64_t n = cnp.PyArray_DIM(B, 0 if trans_b else 1)
    if kb != k:
        raise ValueError(f"inner dimensions differ: op(a) has shape {(m, k)}, op(b) has "
                         f"shape {(kb, n)}")
    cdef double al = alpha, be = beta
    cdef cnp.npy_intp dims[2]
    cdef Py_ssize_t lo_c, hi_c, lo_x, hi_x
    if out is None:
        if be != 0:
            raise ValueError(f"beta must be 0 when out is None (there is no C to scale), "
                             f"got beta={beta!r}")
        dims[0] = m
        dims[1] = n
        C = cnp.PyArray_EMPTY(2, dims, typenum, 0)
    else:
        if type(out) is not np.ndarray:
            raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
        C = <cnp.ndarray>out
        if cnp.PyArray_TYPE(C) != typenum:
            raise TypeError(f"out must have dtype {A.dtype} like a and b, got {C.dtype}")
        if cnp.PyArray_NDIM(C) != 2 or cnp.PyArray_DIM(C, 0) != m or cnp.PyArray_DIM(C, 1) != n:
            raise ValueError(f"out must have shape {(m, n)}, got {(<object>C).shape}")
        if not cnp.PyArray_ISWRITEABLE(C):
            raise ValueError("out must be writeable")
        if not _ops_usable(C) or not (
                (cnp.PyArray_STRIDE(C, 1) == isz and cnp.PyArray_STRIDE(C, 0) >= n * isz)
                or (cnp.PyArray_STRIDE(C, 0) == isz and cnp.PyArray_STRIDE(C, 1) >= m * isz)
                or m <= 1 or n <= 1):
            raise ValueError("out must be aligned with contiguous rows or columns "
                             "(C- or Fortran-ordered, or a slice of rows or columns of one)")
        _ops_extent(C, &lo_c, &hi_c)
        for x in (A, B):
            _ops_extent(<cnp.ndarray>x, &lo_x, &hi_x)
            if lo_x < hi_c and lo_c < hi_x:
                raise ValueError("out must not overlap a or b")
    if m == 0 or n == 0:
        return C
    cdef int64_t rsa = cnp.PyArray_STRIDE(A, 0) // isz, csa = cnp.PyArray_STRIDE(A, 1) // isz
    cdef int64_t rsb = cnp.PyArray_STRIDE(B, 0) // isz, csb = cnp.PyArray_STRIDE(B, 1) // isz
    cdef int64_t rsc = cnp.PyArray_STRIDE(C, 0) // isz, csc = cnp.PyArray_STRIDE(C, 1) // isz
    if trans_a:
        rsa, csa = csa, rsa
    if trans_b:
        rsb, csb = csb, rsb
    cdef int nt = fm_default_num_threads() if n_threads is None else <int>n_threads
    cdef void *pa = cnp.PyArray_DATA(A)
    cdef void *pb = cnp.PyArray_DATA(B)
    cdef void *pc = cnp.PyArray_DATA(C)
    cdef int status
    cdef bint nogil_ = m * n * k >= _OPS_NOGIL_MNK
    if typenum == cnp.NPY_FLOAT:
        if nogil_:
            with nogil:
                status = fm_sgemm(m, n, k, <float>al, <float *>pa, rsa, csa, <float *>pb, rsb,
                                  csb, <float>be, <float *>pc, rsc, csc, nt)
        else:
            status = fm_sgemm(m, n, k, <float>al, <float *>pa, rsa, csa, <float *>pb, rsb, csb,
                              <float>be, <float *>pc, rsc, csc, nt)
    else:
        if nogil_:
            with nogil:
                status = fm_dgemm(m, n, k, al, <double *>pa, rsa, csa, <double *>pb, rsb, csb,
                                  be, <double *>pc, rsc, csc, nt)
        else:
            status = fm_dgemm(m, n, k, al, <double *>pa, rsa, csa, <double *>pb, rsb, csb, be,
                              <double *>pc, rsc, csc, nt)
    _check(status, "gemm")
    return C
