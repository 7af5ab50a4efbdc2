"""Kernel benchmarks: fastmlp's GEMM and dense layer against NumPy's BLAS, and the
machine's measured floating-point peak.

* GEMM, float32, C := A @ B: square sizes and the products an MLP step makes
  (forward ``X @ W``, backward ``X.T @ dY`` and ``dY @ W.T``), at the run's thread
  count and, in the full suite, at 1 thread.  fastmlp through ``fastmlp.ops.gemm``
  when that module exists, else the engine's private ``fastmlp._core.gemm``;
  NumPy through ``numpy.matmul(..., out=)`` (OpenBLAS here).  Transposed operands
  are views in both (no copies).
* Dense layer forward + backward at MLP shapes: ``Y = relu(X @ W + b)`` then
  ``dW = X.T @ dZ, db = sum(dZ), dX = dZ @ W.T`` — fastmlp's ``_core.dense_forward``
  / ``dense_backward`` against the same four NumPy calls.
* Peak: the float32 FMA throughput of the cores, measured by a small C loop of
  independent AVX-512 (or AVX2) FMA chains compiled at run time with the system C
  compiler and run on 1 and on N threads at once.  Without a compiler, the best
  GEMM rate seen in the run stands in (a lower bound on the peak), labelled so.

Method: each measurement is a sample of back-to-back calls lasting about
``kernel_sample_s``; samples alternate between fastmlp and NumPy (A B A B ...),
``kernel_rounds`` rounds; reported: median time per call with min–max, GFLOP/s
= 2mnk / median time, and the median over rounds of the ratio of the two rates.
Each product is also checked against NumPy once: a wrong result is reported.
"""

from __future__ import annotations

import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

# --------------------------------------------------------------------------- shapes
#: (label, m, k, n, trans_a, trans_b): C (m x n) = op(A) (m x k) @ op(B) (k x n).
MLP_GEMMS = [
    ("W1 layer 1: 10×8 @ 8×16", 10, 8, 16, False, False),
    ("W2 layer 1: 32×64 @ 64×128", 32, 64, 128, False, False),
    ("W3 fwd: 256×784 @ 784×1024", 256, 784, 1024, False, False),
    ("W3 fwd: 256×1024 @ 1024×1024", 256, 1024, 1024, False, False),
    ("W3 dW: (256×784)ᵀ @ 256×1024", 784, 256, 1024, True, False),
    ("W3 dX: 256×1024 @ (1024×1024)ᵀ", 256, 1024, 1024, False, True),
]

#: (label, batch, n_in, n_out) of the dense layers the workloads train.
DENSE_SHAPES = [
    ("W1 8→16, batch 10", 10, 8, 16),
    ("W2 64→128, batch 32", 32, 64, 128),
    ("W2 128→64, batch 32", 32, 128, 64),
    ("W3 784→1024, batch 256", 256, 784, 1024),
    ("W3 1024→1024, batch 256", 256, 1024, 1024),
    ("W3 1024→10, batch 256", 256, 1024, 10),
]


# --------------------------------------------------------------------------- timing
def _per_call(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def _calls_for(fn, sample_s):
    """Calls per sample so that one sample lasts about sample_s (at least 1)."""
    n = 1
    while True:
        t = _per_call(fn, n)
        if t * n >= sample_s / 8 or n >= 1 << 20:
            return max(1, int(round(sample_s / max(t, 1e-9))))
        n *= 4


def _interleaved(fns, sample_s, rounds):
    """{name: [seconds per call, one per round]} with samples alternating A B A B."""
    calls = {name: _calls_for(fn, sample_s) for name, fn in fns.items()}
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(_per_call(fn, calls[name]))
    return times


def _summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# --------------------------------------------------------------------------- fastmlp side
def fastmlp_gemm():
    """(fn(a, b, c, trans_a, trans_b, threads), name): fastmlp's public GEMM if present."""
    import fastmlp

    try:
        from fastmlp import ops
        gemm = getattr(ops, "gemm", None)
    except ImportError:
        gemm = None
    if gemm is not None:
        import inspect

        try:
            takes_threads = "n_threads" in inspect.signature(gemm).parameters
        except (TypeError, ValueError):
            takes_threads = False

        def call(a, b, c, ta, tb, threads):
            if takes_threads:
                return gemm(a, b, trans_a=ta, trans_b=tb, out=c, n_threads=threads)
            return gemm(a, b, trans_a=ta, trans_b=tb, out=c)

        def prepare(threads):
            fastmlp.set_num_threads(threads)

        return call, prepare, "fastmlp.ops.gemm"
    from fastmlp import _core

    def call(a, b, c, ta, tb, threads):
        return _core.gemm(a, b, c, trans_a=ta, trans_b=tb, n_threads=threads)

    return call, (lambda threads: fastmlp.set_num_threads(threads)), "fastmlp._core.gemm"


class _BlasThreads:
    """Context: NumPy's BLAS limited to n threads (threadpoolctl), if available."""

    def __init__(self, n):
        self.n, self.ctx = n, None

    def __enter__(self):
        try:
            from threadpoolctl import threadpool_limits

            self.ctx = threadpool_limits(limits=self.n, user_api="blas")
        except ImportError:
            self.ctx = None
        return self

    def __exit__(self, *exc):
        if self.ctx is not None:
            self.ctx.unregister()
        return False


def _operands(rng, m, k, n, ta, tb, dtype=np.float32):
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=dtype)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=dtype)
    return a, b, np.zeros((m, n), dtype), np.zeros((m, n), dtype)


def _gemm_case(label, m, k, n, ta, tb, threads, cfg, rng, fm_call, emit):
    a, b, c_fm, c_np = _operands(rng, m, k, n, ta, tb)
    A = a.T if ta else a
    B = b.T if tb else b
    fns = {"fastmlp": lambda: fm_call(a, b, c_fm, ta, tb, threads),
           "numpy": lambda: np.matmul(A, B, out=c_np)}
    out = {"label": label, "m": m, "k": k, "n": n, "trans_a": ta, "trans_b": tb,
           "threads": threads}
    try:
        fns["fastmlp"]()
    except Exception as exc:  # report and go on: the rest of the table still counts
        out["error"] = f"{type(exc).__name__}: {exc}"
        fns.pop("fastmlp")
    np.matmul(A, B, out=c_np)
    if "fastmlp" in fns:
        ref = np.matmul(A.astype(np.float64), B.astype(np.float64))
        scale = np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64)
        err = float(np.max(np.abs(c_fm - ref) / np.maximum(scale, 1e-30)))
        out["rel_error"] = err
        out["wrong"] = bool(not np.isfinite(err) or err > 1e-3)
    times = _interleaved(fns, cfg["kernel_sample_s"], cfg["kernel_rounds"])
    flops = 2.0 * m * n * k
    for name, ts in times.items():
        s = _summary(ts)
        out[name] = {"us": {key: v * 1e6 for key, v in s.items()},
                     "gflops": flops / s["median"] / 1e9,
                     "gflops_max": flops / s["min"] / 1e9}
    if "fastmlp" in times:
        ratios = [tn / tf for tn, tf in zip(times["numpy"], times["fastmlp"])]
        out["ratio"] = _summary(ratios)  # fastmlp rate / OpenBLAS rate
    emit(f"kernels · gemm {label} · {threads} thread(s)")
    return out


def _dense_case(label, m, n_in, n_out, threads, cfg, rng, emit):
    from fastmlp import _core

    f32 = np.float32
    x = rng.standard_normal((m, n_in), dtype=f32)
    w = rng.standard_normal((n_in, n_out), dtype=f32) * f32(0.05)
    b = rng.standard_normal(n_out, dtype=f32)
    dz = rng.standard_normal((m, n_out), dtype=f32)
    z, y = np.empty((m, n_out), f32), np.empty((m, n_out), f32)
    dx, dw, db = np.empty((m, n_in), f32), np.empty((n_in, n_out), f32), np.empty(n_out, f32)
    zn, yn = np.empty_like(z), np.empty_like(y)
    dxn, dwn, dbn = np.empty_like(dx), np.empty_like(dw), np.empty_like(db)

    def fm():
        _core.dense_forward(x, w, b, "relu", 0.0, z, y, n_threads=threads)
        _core.dense_backward(x, w, dz, dx, dw, db, n_threads=threads)

    def npy():
        np.matmul(x, w, out=zn)
        np.add(zn, b, out=zn)
        np.maximum(zn, 0, out=yn)
        np.matmul(x.T, dz, out=dwn)
        np.add.reduce(dz, axis=0, out=dbn)
        np.matmul(dz, w.T, out=dxn)

    out = {"label": label, "m": m, "n_in": n_in, "n_out": n_out, "threads": threads}
    fns = {"fastmlp": fm, "numpy": npy}
    try:
        fm()
        npy()
        err = max(float(np.max(np.abs(p - q)) / (float(np.max(np.abs(q))) + 1e-30))
                  for p, q in ((y, yn), (dw, dwn), (db, dbn), (dx, dxn)))
        out["rel_error"] = err
        out["wrong"] = bool(not np.isfinite(err) or err > 1e-3)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        fns.pop("fastmlp")
    times = _interleaved(fns, cfg["kernel_sample_s"], cfg["kernel_rounds"])
    flops = 6.0 * m * n_in * n_out
    for name, ts in times.items():
        s = _summary(ts)
        out[name] = {"us": {key: v * 1e6 for key, v in s.items()},
                     "gflops": flops / s["median"] / 1e9}
    if "fastmlp" in times:
        out["ratio"] = _summary([tn / tf for tn, tf in zip(times["numpy"], times["fastmlp"])])
    emit(f"kernels · dense {label} · {threads} thread(s)")
    return out


# --------------------------------------------------------------------------- peak
_PROBE_C = r"""
#include <stdint.h>
#include <immintrin.h>
#define CHAINS 12
#define BODY(T, SET1, FMA, ADD, RED, LANES)                                   \
    T acc[CHAINS]; const T mul = SET1(0.9999999f), add = SET1(1e-7f);          \
    for (int j = 0; j < CHAINS; j++) acc[j] = SET1(1.0f + j * 1e-3f);          \
    for (int64_t i = 0; i < iters; i++) {                                      \
        _Pragma("GCC unroll 12")                                               \
        for (int j = 0; j < CHAINS; j++) acc[j] = FMA(acc[j], mul, add);       \
    }                                                                          \
    for (int j = 1; j < CHAINS; j++) acc[0] = ADD(acc[0], acc[j]);             \
    return (double)RED(acc[0]);

__attribute__((target("avx512f")))
static float red512(__m512 v) { return _mm512_reduce_add_ps(v); }
__attribute__((target("avx2,fma")))
static float red256(__m256 v) {
    float t[8]; _mm256_storeu_ps(t, v); float s = 0; for (int i = 0; i < 8; i++) s += t[i];
    return s;
}
__attribute__((target("avx512f")))
double fma_avx512(int64_t iters) {
    BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, red512, 16)
}
__attribute__((target("avx2,fma")))
double fma_avx2(int64_t iters) {
    BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, red256, 8)
}
"""

#: float32 flops per loop iteration: CHAINS FMAs x lanes x 2.
_PROBE_FLOPS = {"fma_avx512": 12 * 16 * 2, "fma_avx2": 12 * 8 * 2}


def _compile_probe(workdir):
    if not (sys.platform.startswith("linux") and os.uname().machine in ("x86_64", "AMD64")):
        return None, "not an x86-64 Linux machine"
    src = os.path.join(workdir, "fma_probe.c")
    lib = os.path.join(workdir, "fma_probe.so")
    with open(src, "w") as f:
        f.write(_PROBE_C)
    cc = os.environ.get("CC", "cc")
    try:
        r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", lib, src],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"no C compiler ({exc})"
    if r.returncode != 0:
        return None, f"{cc} failed: {r.stderr.strip()[:200]}"
    return ctypes.CDLL(lib), cc  # CDLL calls release the GIL: threads run in parallel


def _probe_rate(fn, flops_per_iter, threads, seconds):
    """Aggregate GFLOP/s of fn run on `threads` Python threads at once."""
    iters = 1 << 16
    while True:  # calibrate on one thread
        t0 = time.perf_counter()
        fn(iters)
        dt = time.perf_counter() - t0
        if dt > 0.02:
            break
        iters *= 4
    iters = max(1, int(iters * seconds / dt))
    best = 0.0
    for _ in range(3):
        barrier = threading.Barrier(threads)

        def work():
            barrier.wait()
            fn(iters)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        t0 = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        dt = time.perf_counter() - t0
        best = max(best, threads * iters * flops_per_iter / dt / 1e9)
    return best


def measure_peak(thread_counts, seconds, emit):
    """{'method': text, 'gflops': {threads: GFLOP/s}} of float32 FMA throughput, or None."""
    from . import _machine

    flags = _machine.cpu_flags()
    with tempfile.TemporaryDirectory(prefix="fastmlp-bench-") as tmp:
        lib, how = _compile_probe(tmp)
        if lib is None:
            return {"method": None, "note": f"FMA probe not run: {how}", "gflops": {}}
        names = [n for n, need in (("fma_avx512", {"avx512f"}), ("fma_avx2", {"avx2", "fma"}))
                 if need <= flags]
        if not names:
            return {"method": None, "note": "FMA probe not run: no AVX2/AVX-512 FMA",
                    "gflops": {}}
        rates, used = {}, {}
        for t in thread_counts:
            for name in names:
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_int64]
                r = _probe_rate(fn, _PROBE_FLOPS[name], t, seconds)
                if r > rates.get(t, 0.0):
                    rates[t], used[t] = r, name
            emit(f"kernels · FMA peak probe · {t} thread(s): {rates[t]:.0f} GFLOP/s")
    isa = sorted(set(used.values()))
    return {"method": (f"float32 FMA throughput: 12 independent {'/'.join(isa)} FMA chains "
                       f"per thread, compiled at run time with {how} -O2, run on 1..N threads "
                       f"at once; best of 3"),
            "gflops": {str(t): r for t, r in rates.items()}, "isa": used}


# --------------------------------------------------------------------------- entry
def run(cfg, emit):
    import fastmlp

    threads = cfg["threads"]
    thread_counts = [threads] + ([1] if cfg["kernel_one_thread"] and threads > 1 else [])
    fm_call, fm_prepare, gemm_name = fastmlp_gemm()
    rng = np.random.default_rng(0)
    result = {"gemm_impl": gemm_name, "dtype": "float32", "gemm": [], "dense": [],
              "thread_counts": thread_counts}

    result["peak"] = measure_peak(sorted(set(thread_counts)), cfg["peak_seconds"], emit)

    for t in thread_counts:
        fm_prepare(t)
        with _BlasThreads(t):
            for s in cfg["gemm_sizes"]:
                result["gemm"].append(
                    dict(_gemm_case(f"{s}³", s, s, s, False, False, t, cfg, rng, fm_call, emit),
                         kind="square"))
            if t == threads:
                for label, m, k, n, ta, tb in MLP_GEMMS[:cfg["mlp_gemm_count"]]:
                    result["gemm"].append(dict(_gemm_case(label, m, k, n, ta, tb, t, cfg, rng,
                                                          fm_call, emit), kind="mlp"))
                for label, m, n_in, n_out in DENSE_SHAPES[:cfg["dense_count"]]:
                    try:
                        result["dense"].append(_dense_case(label, m, n_in, n_out, t, cfg, rng,
                                                           emit))
                    except Exception as exc:  # a changed private API: note it, go on
                        result["dense"].append({"label": label, "threads": t,
                                                "error": f"{type(exc).__name__}: {exc}"})
    fastmlp.set_num_threads(None)

    # Fallback / cross-check for the peak: the best GEMM rate seen, per thread count.
    best = {}
    for g in result["gemm"]:
        for name in ("fastmlp", "numpy"):
            if name in g:
                key = str(g["threads"])
                best[key] = max(best.get(key, 0.0), g[name]["gflops_max"])
    result["best_gemm_gflops"] = best
    return result
