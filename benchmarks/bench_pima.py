"""Time the tutorial's PIMA training in fastmlp against a NumPy baseline, side by side.

The workload is the tutorial's Keras program: a 8-16-8-1 network (relu, relu,
sigmoid, 'uniform' initializer), binary cross-entropy, Adam with Keras defaults,
150 epochs of mini-batches of 10 over the 768 PIMA rows.  It is trained by

* fastmlp, through ``fastmlp.models.Sequential`` exactly as the tutorial writes it
  (``verbose=0``), and
* ``numpy_mlp.NumpyMLP``, a careful vectorised float32 NumPy implementation of the
  same network, loss and optimizer (see that file),

in one process: one warm-up run of each, then ``--repeats`` runs interleaved
(NumPy, fastmlp, NumPy, fastmlp, ...), each pair with its own seed.  Only ``fit`` is
timed.  The speed-up is computed per pair (NumPy time / fastmlp time) and summarised
by its median.  Training accuracy is computed the same way for both, from
``predict`` on the training data with threshold 0.5.  A short cross-check trains one
epoch in order (no shuffle) from identical weights in both and prints the largest
weight difference.

The script prints a Markdown table and never asserts on time.

    python benchmarks/bench_pima.py [--pima PATH] [--repeats 5] [--epochs 150]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from numpy_mlp import NumpyMLP  # noqa: E402

REPO = os.path.dirname(HERE)
DEFAULT_PIMA = os.path.join(REPO, "..", "shared", "datasets", "pima-indians-diabetes.csv")
TARGET = 100.0


# --------------------------------------------------------------------------- runs
def build_fastmlp(seed):
    from fastmlp.layers import Dense
    from fastmlp.models import Sequential

    np.random.seed(seed)  # the tutorial's seeding: fastmlp draws its seed from here
    model = Sequential()
    model.add(Dense(16, input_dim=8, init="uniform", activation="relu"))
    model.add(Dense(8, init="uniform", activation="relu"))
    model.add(Dense(1, init="uniform", activation="sigmoid"))
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def accuracy(pred, Y):
    pred = np.asarray(pred).reshape(-1)
    return float(np.mean((pred > 0.5) == (Y > 0.5)))


def run_fastmlp(X, Y, epochs, batch_size, seed):
    model = build_fastmlp(seed)
    t0 = time.perf_counter()
    model.fit(X, Y, epochs=epochs, batch_size=batch_size, verbose=0)
    dt = time.perf_counter() - t0
    return dt, accuracy(model.predict(X, verbose=0), Y)


def run_numpy(X, Y, epochs, batch_size, seed):
    net = NumpyMLP([8, 16, 8, 1], ["relu", "relu", "sigmoid"], seed=seed)
    t0 = time.perf_counter()
    net.fit(X, Y, epochs=epochs, batch_size=batch_size)
    dt = time.perf_counter() - t0
    return dt, accuracy(net.predict(X), Y)


def cross_check(X, Y, batch_size, seed):
    """Largest |w_fastmlp - w_numpy| after one unshuffled epoch from the same weights."""
    net = NumpyMLP([8, 16, 8, 1], ["relu", "relu", "sigmoid"], seed=seed)
    model = build_fastmlp(seed)
    model.set_weights(net.get_weights())
    net.fit(X, Y, epochs=1, batch_size=batch_size, shuffle=False)
    model.fit(X, Y, epochs=1, batch_size=batch_size, shuffle=False, verbose=0)
    diffs = [np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))
             for a, b in zip(model.get_weights(), net.get_weights())]
    scale = max(float(np.max(np.abs(w))) for w in net.get_weights())
    return max(diffs), scale, -(-X.shape[0] // batch_size)


# --------------------------------------------------------------------------- environment
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numpy_blas():
    """numpy's BLAS as numpy.show_config reports it, plus what threadpoolctl sees."""
    text = "unknown"
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        if blas:
            text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy: no mode='dicts'
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return text + " (threadpoolctl not installed)"
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if pools:
        p = pools[0]
        text += (f"; threadpoolctl: {p.get('internal_api')} {p.get('version')}, "
                 f"kernel {p.get('architecture')}, {p.get('num_threads')} threads")
    return text


def fastmlp_threads():
    import fastmlp

    get = getattr(fastmlp, "get_num_threads", None)
    return str(get()) if get else "?"


def env_var(name):
    value = os.environ.get(name)
    return "not set" if value is None else f"set ({value})"


# --------------------------------------------------------------------------- report
def fmt_s(t):
    return f"{t:.3f} s" if t >= 0.1 else f"{t * 1e3:.2f} ms"


def summary(values):
    return statistics.median(values), min(values), max(values)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pima", default=DEFAULT_PIMA,
                    help="path of pima-indians-diabetes.csv (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=5, help="timed pairs (default 5)")
    ap.add_argument("--epochs", type=int, default=150, help="epochs per run (default 150)")
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7, help="seed of the first pair; +1 per pair")
    ap.add_argument("--threads", type=int, default=None,
                    help="call fastmlp.set_num_threads(N) first")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.epochs < 1 or args.batch_size < 1:
        ap.error("--repeats, --epochs and --batch-size must be >= 1")

    import fastmlp

    if args.threads is not None:
        fastmlp.set_num_threads(args.threads)

    data = np.loadtxt(args.pima, delimiter=",")
    X = data[:, 0:8]
    Y = data[:, 8]
    E, B = args.epochs, args.batch_size

    # warm-up: one full run of each (imports, page faults, caches, CPU clocks)
    run_numpy(X, Y, E, B, args.seed)
    run_fastmlp(X, Y, E, B, args.seed)

    t_np, t_fm, a_np, a_fm, ratios = [], [], [], [], []
    for r in range(args.repeats):
        seed = args.seed + r
        tn, an = run_numpy(X, Y, E, B, seed)
        tf, af = run_fastmlp(X, Y, E, B, seed)
        t_np.append(tn)
        t_fm.append(tf)
        a_np.append(an)
        a_fm.append(af)
        ratios.append(tn / tf)

    try:
        diff, scale, steps = cross_check(X, Y, B, args.seed)
        check = (f"max abs weight difference fastmlp vs NumPy after 1 unshuffled epoch "
                 f"({steps} Adam steps) from identical weights: {diff:.3g} "
                 f"(largest weight {scale:.3g})")
    except Exception as exc:  # report, never abort the benchmark
        check = f"cross-check failed: {type(exc).__name__}: {exc}"

    med_r, lo_r, hi_r = summary(ratios)
    seeds = f"{args.seed}" if args.repeats == 1 else f"{args.seed}..{args.seed + args.repeats - 1}"
    print(f"## PIMA tutorial training: {E} epochs, batch {B}, Adam, {X.shape[0]} rows\n")
    steps = E * -(-X.shape[0] // B)
    print("| implementation | fit time, median | min – max | per epoch | per step | "
          "training accuracy, median (min – max) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ts, accs in (("NumPy baseline (float32, vectorised)", t_np, a_np),
                           ("fastmlp (Sequential, float32)", t_fm, a_fm)):
        m, lo, hi = summary(ts)
        am, alo, ahi = summary(accs)
        print(f"| {name} | {fmt_s(m)} | {fmt_s(lo)} – {fmt_s(hi)} | "
              f"{m / E * 1e3:.3f} ms | {m / steps * 1e6:.2f} µs | "
              f"{am * 100:.2f}% ({alo * 100:.2f} – {ahi * 100:.2f}%) |")
    print(f"| **speed-up NumPy / fastmlp** (median of per-pair ratios) | "
          f"**{med_r:.1f}x** | {lo_r:.1f}x – {hi_r:.1f}x | | | |")
    print()
    verdict = "met" if med_r >= TARGET else "not met"
    print(f"Target: fastmlp >= {TARGET:.0f}x faster than NumPy — {verdict} "
          f"(median {med_r:.1f}x).\n")
    print("| setting | value |")
    print("|---|---|")
    print(f"| CPU | {cpu_model()} ({os.cpu_count()} logical CPUs) |")
    print(f"| fastmlp | {getattr(fastmlp, '__version__', '?')}, threads: {fastmlp_threads()} |")
    print(f"| Python / NumPy | {platform.python_version()} / {np.__version__} |")
    print(f"| NumPy BLAS | {numpy_blas()} |")
    print(f"| OPENBLAS_CORETYPE | {env_var('OPENBLAS_CORETYPE')} |")
    print(f"| OPENBLAS_L2_SIZE | {env_var('OPENBLAS_L2_SIZE')} |")
    print(f"| OMP_NUM_THREADS | {env_var('OMP_NUM_THREADS')} |")
    print(f"| runs | 1 warm-up each, then {args.repeats} interleaved pairs "
          f"(NumPy, fastmlp), seeds {seeds}; only fit() timed |")
    print()
    print(check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
