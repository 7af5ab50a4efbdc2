"""fastmlp.MLPClassifier against scikit-learn's MLPClassifier on the digits data.

The task: ``sklearn.datasets.load_digits``, inputs / 16, a 75/25 stratified split,
64 -> 128 -> 64 -> 10, batch 32, 50 epochs of Adam with ``tol=0`` (so every epoch runs),
the same ``random_state`` (fastmlp draws the same initial weights and shuffles as
scikit-learn). Repetitions are interleaved (scikit-learn, fastmlp float64, fastmlp float32,
scikit-learn, ...) so machine noise hits all alike; the table shows the median fit time,
the held-out accuracy and the speed-up over scikit-learn measured in this run. Each timed fit
starts after 0.3 s of quiet, so that threads the previous contender's BLAS left spinning
(OpenBLAS spins about 0.1 s after each call) do not take a core from the next.

Run: ``python benchmarks/bench_estimators.py [--repeats 5] [--threads N]``. Prints a Markdown
table; never asserts.
"""

import argparse
import os
import platform
import statistics
import sys
import time
import warnings


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _blas():
    try:
        from threadpoolctl import threadpool_info
        return ", ".join(sorted({f"{i['internal_api']} ({i['num_threads']} threads)"
                                 for i in threadpool_info() if i["user_api"] == "blas"}))
    except ImportError:
        return "unknown (pip install threadpoolctl)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None,
                        help="fastmlp engine threads (default: fastmlp.get_num_threads())")
    args = parser.parse_args()

    import fastmlp
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    common = dict(hidden_layer_sizes=(128, 64), solver="adam", batch_size=32,
                  max_iter=args.epochs, tol=0.0, n_iter_no_change=args.epochs + 1,
                  random_state=0)
    threads = fastmlp.get_num_threads() if args.threads is None else args.threads
    contenders = {
        "scikit-learn MLPClassifier (float64)": lambda: SkMLPClassifier(**common),
        "fastmlp MLPClassifier (float64)": lambda: fastmlp.MLPClassifier(
            n_threads=threads, **common),
        "fastmlp MLPClassifier (float32)": lambda: fastmlp.MLPClassifier(
            dtype="float32", n_threads=threads, **common),
    }
    times = {name: [] for name in contenders}
    accuracy = {}
    for rep in range(args.repeats + 1):  # the first round warms up and is not timed
        for name, make in contenders.items():
            model = make()
            time.sleep(0.3)  # quiet cores: see the module's docstring
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                start = time.perf_counter()
                model.fit(X_train, y_train)
                elapsed = time.perf_counter() - start
            if rep:
                times[name].append(elapsed)
            accuracy[name] = model.score(X_test, y_test)

    base = statistics.median(times["scikit-learn MLPClassifier (float64)"])
    print(f"digits: {len(X_train)} training / {len(X_test)} held-out samples, 64-128-64-10, "
          f"batch 32, {args.epochs} epochs of Adam (tol=0)\n")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"fastmlp {fastmlp.__version__} engine threads: {threads}, kernels: "
          f"{fastmlp._core.arch()}; NumPy BLAS: {_blas()}; median of {args.repeats} "
          "interleaved runs\n")
    print("| model | fit time (s, median) | min | max | held-out accuracy "
          "| speed-up vs scikit-learn |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in contenders:
        t = times[name]
        med = statistics.median(t)
        print(f"| {name} | {med:.3f} | {min(t):.3f} | {max(t):.3f} | {accuracy[name]:.4f} | "
              f"{base / med:.2f}x |")


if __name__ == "__main__":
    main()
