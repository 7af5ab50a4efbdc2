"""fastmlp's GEMM against numpy.matmul (the BLAS NumPy links, OpenBLAS in the wheels).

Both run in the same process, on the same operands, in interleaved repetitions (one call
batch of each in turn, so drifts in clock speed or background load hit both alike); the
tables report medians. For every product: microseconds per call, GFLOP/s (2 m n k / t) and
the speed-up of fastmlp (> 1: fastmlp faster), for 1 and 2 threads, float32 and float64,
square sizes 64..2048 and the shapes a multi-layer perceptron runs. fastmlp is called through
its public ``fastmlp.ops.gemm(a, b, out=out)``, NumPy through ``numpy.matmul(a, b, out=out)``.

Thread counts are set with ``fastmlp.set_num_threads`` and, for NumPy's BLAS, with
threadpoolctl when it is installed (``pip install "fastmlp[bench]"``; without it NumPy uses
its default count, reported as such). Idle worker threads of both libraries sleep at once
(``OMP_WAIT_POLICY=passive``, ``OPENBLAS_THREAD_TIMEOUT=4`` unless already set): spinning,
they would take the cores from the other library's next call.

Usage:
    python benchmarks/bench_gemm.py                 # everything (a few minutes)
    python benchmarks/bench_gemm.py --quick         # fewer sizes and repetitions
    python benchmarks/bench_gemm.py --dtype float32 --threads 1 --square 256,1024

A benchmark, not a test: it prints and never asserts.
"""

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# Two thread pools share the cores here: each library's idle workers would keep spinning
# after its call and slow the other's next one (OpenBLAS spins ~2^28 cycles by default,
# libgomp ~300 000 iterations). Both are told to sleep at once, unless set by the caller;
# this must happen before NumPy (OpenBLAS) and fastmlp (libgomp) load.
POOL_ENV = {"OMP_WAIT_POLICY": "passive", "OPENBLAS_THREAD_TIMEOUT": "4"}
for _name, _value in POOL_ENV.items():
    os.environ.setdefault(_name, _value)

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastmlp  # noqa: E402
from fastmlp import _sysinfo  # noqa: E402
from fastmlp.ops import gemm  # noqa: E402

SQUARE = [64, 128, 256, 512, 1024, 2048]
MLP_SHAPES = [  # (m, n, k): C (m x n) = A (m x k) @ B (k x n)
    (256, 1024, 784),   # 256 x 784 @ 784 x 1024: first layer of a 784-1024-... net
    (256, 1024, 1024),  # 256 x 1024 @ 1024 x 1024
    (32, 128, 64),      # 32 x 64 @ 64 x 128
    (10, 16, 8),        # 10 x 8 @ 8 x 16: the tutorial's first layer, batch 10
]


def numpy_threads(n):
    """A context limiting NumPy's BLAS to n threads, or a no-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def calls_per_batch(m, n, k, target_s=2e-3):
    """Calls per timed batch so one batch takes about target_s at ~50 GFLOP/s."""
    return max(1, int(target_s / (2.0 * m * n * k / 50e9 + 2e-7)))


def time_pair(m, n, k, dtype, reps, rng, stat=statistics.median):
    """Seconds per call of (fastmlp, numpy): stat (the median) over interleaved repetitions."""
    a = rng.uniform(-1, 1, (m, k)).astype(dtype)
    b = rng.uniform(-1, 1, (k, n)).astype(dtype)
    out_f = np.empty((m, n), dtype)
    out_n = np.empty((m, n), dtype)
    calls = calls_per_batch(m, n, k)
    f = lambda: gemm(a, b, out=out_f)  # noqa: E731
    g = lambda: np.matmul(a, b, out=out_n)  # noqa: E731
    for fn in (f, g):  # warm up: caches, thread pools, page faults
        for _ in range(min(calls, 3)):
            fn()
    tf, tn = [], []
    for r in range(reps):
        order = ((f, tf), (g, tn)) if r % 2 == 0 else ((g, tn), (f, tf))
        for fn, acc in order:
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            acc.append((time.perf_counter() - t0) / calls)
    err = float(np.max(np.abs(out_f.astype(np.float64) - out_n))) if m * n else 0.0
    return stat(tf), stat(tn), err


def header():
    cfg = _sysinfo.get_config()
    print("fastmlp GEMM benchmark")
    print(f"  python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.system()} {platform.machine()}, {os.cpu_count()} logical CPUs")
    print(f"  fastmlp kernel set: {cfg['kernel']} (CPU features: "
          f"{' '.join(cfg['cpu_features'])}), OpenMP: {cfg['openmp']}")
    for dt, b in cfg["gemm"].items():
        print(f"  fastmlp {dt}: MR x NR = {b['mr']} x {b['nr']}, MC/KC/NC = "
              f"{b['mc']}/{b['kc']}/{b['nc']}, unpacked below m*n*k = {b['sup_mnk']} "
              f"(or m <= {b['sup_m']}), threads from m*n*k = {b['par_mnk']}")
    blas = "unknown"
    try:
        info = np.show_config(mode="dicts")
        dep = info.get("Build Dependencies", {}).get("blas", {})
        blas = f"{dep.get('name', '?')} {dep.get('version', '')}".strip()
        if dep.get("openblas configuration"):
            blas += f" ({dep['openblas configuration']})"
    except Exception:  # older NumPy without mode="dicts"
        pass
    print(f"  numpy BLAS: {blas}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS", "FASTMLP_ARCH", *POOL_ENV):
        if os.environ.get(var):
            print(f"  {var}={os.environ[var]}")
    try:
        import threadpoolctl  # noqa: F401
        print("  numpy threads set with threadpoolctl")
    except ImportError:
        print("  threadpoolctl not installed: numpy uses its default thread count")
    print()


def run(shapes, dtypes, threads, reps, title, stat):
    print(title)
    print(f"  {'shape (m x k @ k x n)':<26}{'dtype':<9}{'thr':>4}"
          f"{'fastmlp us':>13}{'numpy us':>12}{'fastmlp GF/s':>14}{'numpy GF/s':>12}"
          f"{'speed-up':>10}")
    rng = np.random.default_rng(0)
    for (m, n, k) in shapes:
        for dtype in dtypes:
            for nt in threads:
                fastmlp.set_num_threads(nt)
                with numpy_threads(nt):
                    tf, tn, _ = time_pair(m, n, k, dtype, reps, rng, stat)
                flops = 2.0 * m * n * k
                shape = f"{m} x {k} @ {k} x {n}"
                print(f"  {shape:<26}{np.dtype(dtype).name:<9}{nt:>4}"
                      f"{tf * 1e6:>13.2f}{tn * 1e6:>12.2f}{flops / tf / 1e9:>14.1f}"
                      f"{flops / tn / 1e9:>12.1f}{tn / tf:>9.2f}x", flush=True)
    fastmlp.set_num_threads(None)
    print()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer sizes and repetitions")
    p.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--square", default=None, help="comma-separated square sizes")
    p.add_argument("--reps", type=int, default=None, help="interleaved repetitions")
    p.add_argument("--stat", choices=["median", "min"], default="median",
                   help="statistic over the repetitions (min: best case on a busy machine)")
    args = p.parse_args(argv)
    dtypes = [np.float32, np.float64] if args.dtype == "both" else [np.dtype(args.dtype).type]
    threads = [int(t) for t in args.threads.split(",")]
    square = ([int(s) for s in args.square.split(",")] if args.square
              else ([64, 256, 1024] if args.quick else SQUARE))
    reps = args.reps or (5 if args.quick else 11)
    stat = statistics.median if args.stat == "median" else min
    header()
    print(f"{args.stat} of {reps} interleaved repetitions per entry\n")
    run(MLP_SHAPES, dtypes, threads, reps, "MLP shapes", stat)
    run([(s, s, s) for s in square], dtypes, threads, reps, "Square", stat)


if __name__ == "__main__":
    main()
