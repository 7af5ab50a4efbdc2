"""fastmlp's benchmark harness: fastmlp against a NumPy baseline and the usual alternatives.

    python -m benchmarks [--quick] [--only w1,w2] [--threads N] [--out DIR] [--pima PATH]
    python benchmarks/run.py ...

Workloads (``--only`` takes these names, comma-separated):

    kernels   GEMM and dense forward+backward at MLP shapes, GFLOP/s, fastmlp vs
              NumPy's BLAS, with the machine's measured float32 FMA peak
    w1        the tutorial: PIMA diabetes, 8→16→8→1 relu/relu/sigmoid, 'uniform' init,
              binary cross-entropy, Adam, 150 epochs, batch 10 (training accuracy)
    w2        digits (scikit-learn), inputs / 16, 64→128→64→10 relu/relu/softmax,
              Adam, batch 32, 50 epochs (held-out accuracy, 20% stratified split)
    w3        wide: 60 000 synthetic rows × 784, labels from a fixed random linear
              teacher (10 classes), 784→1024→1024→10, Adam, batch 256, 1 epoch
              (held-out accuracy on 10 000 more rows)
    infer     prediction throughput (rows/s) at batch 1 and batch 1024 on the W2 and
              W3 networks (also infer_w2 / infer_w3 alone)

Implementations (``--impls`` picks): fastmlp (``Sequential``); the NumPy baseline
(``benchmarks/numpy_mlp.py``); and, when importable, PyTorch (CPU), scikit-learn's
MLPClassifier (W1, W2), fastmlp's own scikit-learn-style MLPClassifier (W1, W2, same
settings as scikit-learn's: ``fastmlp_sk``) and Keras 3 with the torch backend —
each skipped with a note when missing.

Method: each (workload, implementation) runs in its own fresh worker process
with the thread settings in its environment; each worker warms up (a short
training run), then repetitions are interleaved across implementations (NumPy,
fastmlp, PyTorch, ... then again), each repetition with its own seed shared by
all.  Only ``fit`` is timed; the network is built outside the timing.  Reported:
medians with min–max, the speed-up over NumPy as the median of per-repetition
ratios, the accuracy each reached, and each run's peak RSS.  Nothing asserts on
time: the goals table says plainly what is met and what is not.

Output: a Markdown report on stdout (also ``DIR/report.md``), raw results in
``DIR/results.json``, charts ``DIR/speedup.png`` and ``DIR/gemm.png``.
"""

if __name__ == "__main__" and not __package__:  # run as a script: load the package
    import os as _os
    import sys as _sys

    _root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    _sys.path.insert(0, _root)
    try:
        import benchmarks.run as _run
    finally:  # the installed fastmlp, not the source tree, unless the tree is on the path
        _sys.path.remove(_root)
    if _os.path.dirname(_os.path.abspath(__file__)) in _sys.path:
        _sys.path.remove(_os.path.dirname(_os.path.abspath(__file__)))
    _sys.exit(_run.main())

import argparse
import datetime
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from . import _machine
from ._impls import LABELS

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_PIMA = os.path.normpath(os.path.join(REPO, "..", "shared", "datasets",
                                             "pima-indians-diabetes.csv"))

WORKLOADS = ("kernels", "w1", "w2", "w3", "infer_w2", "infer_w3")
ALIASES = {"gemm": ["kernels"], "pima": ["w1"], "tutorial": ["w1"], "digits": ["w2"],
           "wide": ["w3"], "infer": ["infer_w2", "infer_w3"], "inference": ["infer_w2",
                                                                           "infer_w3"]}
IMPL_ORDER = ("numpy", "fastmlp", "torch", "sklearn", "fastmlp_sk", "keras")
WORKLOAD_IMPLS = {
    "w1": IMPL_ORDER, "w2": IMPL_ORDER, "w3": ("numpy", "fastmlp", "torch", "keras"),
    "infer_w2": ("numpy", "fastmlp", "torch", "sklearn", "keras"),
    "infer_w3": ("numpy", "fastmlp", "torch", "keras"),
}
TITLES = {
    "kernels": "Kernels",
    "w1": "W1 tutorial (PIMA)",
    "w2": "W2 digits",
    "w3": "W3 wide",
    "infer_w2": "Inference W2",
    "infer_w3": "Inference W3",
}

#: Settings of the full suite, --quick (about a minute) and --tiny (the test suite's).
PRESETS = {
    "full": dict(repeats=5, w1_epochs=150, w2_epochs=50, w3_rows=60000, w3_test_rows=10000,
                 w3_hidden=1024, infer_rows_1=200, infer_batch=1024, infer_min_time=0.25,
                 gemm_sizes=[64, 128, 256, 384, 512, 768, 1024, 1536, 2048], mlp_gemm_count=6,
                 dense_count=6, kernel_sample_s=0.05, kernel_rounds=5, kernel_one_thread=True,
                 peak_seconds=0.3),
    "quick": dict(repeats=2, w1_epochs=10, w2_epochs=5, w3_rows=5120, w3_test_rows=2000,
                  w3_hidden=1024, infer_rows_1=30, infer_batch=1024, infer_min_time=0.1,
                  gemm_sizes=[64, 256, 512, 1024], mlp_gemm_count=6, dense_count=6,
                  kernel_sample_s=0.02, kernel_rounds=3, kernel_one_thread=False,
                  peak_seconds=0.1),
    "tiny": dict(repeats=1, w1_epochs=2, w2_epochs=1, w3_rows=512, w3_test_rows=256,
                 w3_hidden=64, infer_rows_1=5, infer_batch=64, infer_min_time=0.01,
                 gemm_sizes=[32, 64], mlp_gemm_count=2, dense_count=2, kernel_sample_s=0.002,
                 kernel_rounds=1, kernel_one_thread=False, peak_seconds=0.01),
}
TINY_IMPLS = ("numpy", "fastmlp")


# --------------------------------------------------------------------------- progress
class Progress:
    """One status line on stderr: redrawn in place on a terminal, else one line each."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self._width = 0

    def __call__(self, text, final=False):
        if not self.enabled:
            return
        line = f"[{time.perf_counter() - self.t0:6.1f}s] {text}"
        if self.tty:
            pad = max(0, self._width - len(line))
            sys.stderr.write("\r" + line + " " * pad + ("\n" if final else ""))
            self._width = 0 if final else len(line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self):
        if self.tty and self._width:
            sys.stderr.write("\n")
            self._width = 0


# --------------------------------------------------------------------------- workers
_BOOT = ("import sys, json; a = json.loads(sys.argv[1]); sys.path.insert(0, a['root']); "
         "import benchmarks._worker as w; sys.path.remove(a['root']); "
         "sys.path[:0] = a['extra']; w.main()")


def _fastmlp_paths():
    """Where the parent would import fastmlp from, so every worker imports the same one."""
    spec = importlib.util.find_spec("fastmlp")
    if spec is not None and spec.origin:
        return [os.path.dirname(os.path.dirname(os.path.abspath(spec.origin)))]
    import glob

    if glob.glob(os.path.join(REPO, "fastmlp", "_core*")):  # not installed: the in-place build
        return [REPO]
    return []


class Worker:
    """A worker process running one implementation of one workload (see _worker.py)."""

    def __init__(self, workload, impl, cfg, logdir):
        self.workload, self.impl = workload, impl
        env = dict(os.environ)
        n = str(cfg["threads"])
        env.update(OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n,
                   PYTHONUNBUFFERED="1")
        if impl == "keras":
            env["KERAS_BACKEND"] = "torch"
        if workload == "kernels":
            # fastmlp and OpenBLAS alternate in this one process: each library's idle workers
            # must sleep at once, or their spinning takes the cores from the other's next call
            env.setdefault("OMP_WAIT_POLICY", "passive")
            env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
        self.log_path = os.path.join(logdir, f"{workload}-{impl}.log")
        self._log = open(self.log_path, "w")
        args = json.dumps({"root": REPO, "extra": _fastmlp_paths()})
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT, args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, env=env,
                                     text=True, bufsize=1, cwd=tempfile.gettempdir())

    def send(self, msg):
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass

    def receive(self, progress=None):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                return {"ok": False, "error": f"worker exited with code {self.proc.returncode}"
                                              f"; {self.log_tail()}"}
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "progress" in obj:
                if progress:
                    progress(obj["progress"])
                continue
            return obj

    def request(self, msg, progress=None):
        self.send(msg)
        return self.receive(progress)

    def log_tail(self, n=400):
        try:
            self._log.flush()
            with open(self.log_path) as f:
                text = f.read().strip()
            return "log: " + (text[-n:] if text else "(empty)")
        except OSError:
            return ""

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def close(self):
        self.send({"op": "quit"})
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _plain(obj):
    """obj as strict JSON data: NaN and infinities become None, unknown types strings."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    try:
        return _plain(float(obj))  # NumPy scalars
    except (TypeError, ValueError):
        return str(obj)


def _loadavg():
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


# --------------------------------------------------------------------------- statistics
def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def paired_ratios(num_runs, den_runs, key, invert=False):
    """Per-repetition ratios num[key] / den[key] (den / num with invert), both present."""
    out = []
    for a, b in zip(num_runs, den_runs):
        if a and b and a.get(key) and b.get(key):
            out.append(b[key] / a[key] if invert else a[key] / b[key])
    return out


# --------------------------------------------------------------------------- running
def run_workload(workload, impls, cfg, logdir, progress):
    """Runs one workload across implementations; returns its results dict."""
    title = TITLES[workload]
    result = {"title": title, "impls": {}, "load_start": _loadavg()}
    if workload == "kernels":
        impls = ["kernels"]
    workers = {}
    progress(f"{title} · starting {len(impls)} worker(s)")
    for impl in impls:
        workers[impl] = Worker(workload, impl, cfg, logdir)
    try:
        for impl, w in workers.items():  # set up all at once: imports run in parallel
            w.send({"op": "setup", "impl": impl, "workload": workload, "cfg": cfg})
        active = []
        for impl, w in workers.items():
            reply = w.receive()
            entry = {"label": LABELS.get(impl, impl), "runs": []}
            if reply.get("ok"):
                entry["status"] = "ok"
                entry["info"] = reply.get("info", {})
                active.append(impl)
            else:
                entry["status"] = "skipped" if "skip" in reply else "error"
                entry["note"] = reply.get("skip") or reply.get("error")
                progress(f"{title} · {entry['label']}: {entry['status']} ({entry['note']})",
                         final=True)
            result["impls"][impl] = entry
        for impl in list(active):
            progress(f"{title} · warm-up · {LABELS.get(impl, impl)}")
            reply = workers[impl].request({"op": "warmup", "seed": cfg["seed"]}, progress)
            if not reply.get("ok"):
                entry = result["impls"][impl]
                entry["status"] = "error"
                entry["note"] = "warm-up: " + str(reply.get("error") or reply.get("skip"))
                progress(f"{title} · {entry['label']}: error ({entry['note']})", final=True)
                active.remove(impl)
        reps = 1 if workload == "kernels" else cfg["repeats"]
        for rep in range(reps):
            seed = cfg["seed"] + rep
            for impl in active:
                entry = result["impls"][impl]
                label = "fastmlp vs OpenBLAS" if workload == "kernels" else entry["label"]
                progress(f"{title} · rep {rep + 1}/{reps} · {label}")
                reply = workers[impl].request({"op": "run", "seed": seed}, progress)
                if reply.get("ok"):
                    reply.pop("ok")
                    reply["seed"] = seed
                    entry["runs"].append(reply)
                    if "time_s" in reply:
                        acc = reply.get("accuracy")
                        progress(f"{title} · rep {rep + 1}/{reps} · {label}: "
                                 f"{fmt_time(reply['time_s'])}, accuracy {acc * 100:.1f}%")
                else:
                    entry["runs"].append(None)
                    entry.setdefault("errors", []).append(
                        f"rep {rep + 1}: {reply.get('error') or reply.get('skip')}")
                    progress(f"{title} · rep {rep + 1}/{reps} · {label}: failed "
                             f"({entry['errors'][-1]})", final=True)
    except BaseException:  # interrupted: stop the workers now, not after their current run
        for w in workers.values():
            w.kill()
        raise
    else:
        for w in workers.values():
            w.close()
    result["load_end"] = _loadavg()
    summarise(workload, result)
    return result


def summarise(workload, result):
    impls = result["impls"]
    if workload == "kernels":
        entry = impls.get("kernels", {})
        runs = [r for r in entry.get("runs", []) if r]
        if runs:
            result.update(runs[0])
        return
    base = impls.get("numpy", {}).get("runs", [])
    torch_runs = impls.get("torch", {}).get("runs", [])
    infer = workload.startswith("infer_")
    for name, entry in impls.items():
        runs = entry.get("runs", [])
        ok = [r for r in runs if r]
        if infer:
            for key, ratio in (("rows_per_s_1", "ratio_vs_numpy_1"),
                               ("rows_per_s_batch", "ratio_vs_numpy_batch")):
                entry[key] = summary([r[key] for r in ok])
                entry[ratio] = summary(paired_ratios(base, runs, key, invert=True))
            entry["batch"] = ok[0]["batch"] if ok else None
        else:
            entry["time_s"] = summary([r["time_s"] for r in ok])
            entry["accuracy"] = summary([r["accuracy"] for r in ok])
            entry["rss_peak_mib"] = summary([r.get("rss_peak_mib") for r in ok])
            entry["rss_delta_mib"] = summary(
                [r["rss_peak_mib"] - r["rss_before_mib"] for r in ok
                 if r.get("rss_peak_mib") is not None and r.get("rss_before_mib") is not None])
            entry["rss_method"] = ok[0].get("rss_method") if ok else None
            entry["ratio_vs_numpy"] = summary(paired_ratios(base, runs, "time_s"))
            if name == "fastmlp":
                entry["ratio_vs_torch"] = summary(paired_ratios(torch_runs, runs, "time_s"))


# --------------------------------------------------------------------------- goals
ACC_TOLERANCE = 0.02


def _acc_check(results, workload, ref_impl):
    """(ok, text): fastmlp's median accuracy within ACC_TOLERANCE of the reference's."""
    impls = results["workloads"].get(workload, {}).get("impls", {})
    fm = (impls.get("fastmlp") or {}).get("accuracy")
    ref = (impls.get(ref_impl) or {}).get("accuracy")
    if not fm or not ref:
        return None, "accuracy not measured"
    ok = fm["median"] >= ref["median"] - ACC_TOLERANCE
    return ok, (f"fastmlp {fm['median'] * 100:.1f}% vs {LABELS[ref_impl]} "
                f"{ref['median'] * 100:.1f}%")


def _speed_goal(results, workload, key, ref_impl, target, name):
    goal = {"goal": name, "target": f"≥ {target:g}×"}
    w = results["workloads"].get(workload)
    if w is None:
        return dict(goal, measured="—", check="", status="not run")
    fm = w["impls"].get("fastmlp") or {}
    ratio = fm.get(key)
    if ratio is None:
        missing = [i for i in ("fastmlp", ref_impl)
                   if (w["impls"].get(i) or {}).get("status") != "ok"]
        why = ", ".join(f"{LABELS[i]} {(w['impls'].get(i) or {}).get('status', 'not run')}"
                        for i in missing) or "no paired runs"
        return dict(goal, measured="—", check="", status=f"n/a ({why})")
    acc_ok, acc_text = _acc_check(results, workload, ref_impl)
    goal["measured"] = f"{ratio['median']:.2f}× ({ratio['min']:.2f} – {ratio['max']:.2f})"
    goal["value"] = ratio["median"]
    goal["check"] = acc_text
    if ratio["median"] < target:
        goal["status"] = "**not met**"
    elif acc_ok is False:
        goal["status"] = "**not met** (accuracy)"
    else:
        goal["status"] = "met"
    return goal


def goals(results):
    out = [
        _speed_goal(results, "w1", "ratio_vs_numpy", "numpy", 100,
                    "W1 tutorial: fastmlp vs NumPy baseline"),
        _speed_goal(results, "w2", "ratio_vs_numpy", "numpy", 5,
                    "W2 digits: fastmlp vs NumPy baseline"),
        _speed_goal(results, "w3", "ratio_vs_torch", "torch", 1.25,
                    "W3 wide: fastmlp vs PyTorch"),
    ]
    k = results["workloads"].get("kernels")
    goal = {"goal": "GEMM: fastmlp vs OpenBLAS, square sizes ≥ 512 (every thread count)",
            "target": "≥ 95%"}
    cases = [g for g in (k or {}).get("gemm", [])
             if g.get("kind") == "square" and min(g["m"], g["n"], g["k"]) >= 512]
    if not cases or any("ratio" not in g for g in cases):
        goal.update(measured="—", check="",
                    status="not run" if not cases else "n/a (fastmlp GEMM failed)")
    else:
        worst = min(cases, key=lambda g: g["ratio"]["median"])
        wrong = [g["label"] for g in cases if g.get("wrong")]
        goal["value"] = worst["ratio"]["median"]
        overall = statistics.median(g["ratio"]["median"] for g in cases)
        goal["measured"] = (f"worst {worst['ratio']['median'] * 100:.0f}% "
                            f"({worst['label']}, {worst['threads']} thr); "
                            f"median {overall * 100:.0f}%")
        goal["check"] = ("WRONG results: " + ", ".join(wrong)) if wrong else "results match NumPy"
        goal["status"] = ("**not met** (wrong results)" if wrong else
                          "met" if worst["ratio"]["median"] >= 0.95 else "**not met**")
    out.append(goal)
    goal = {"goal": "Small GEMMs (10×8 @ 8×16, 32×64 @ 64×128): fastmlp vs numpy.matmul "
                    "per call", "target": "≥ 2×"}
    small = [g for g in (k or {}).get("gemm", []) if g.get("kind") == "mlp"
             and (g["m"], g["k"], g["n"]) in ((10, 8, 16), (32, 64, 128))]
    if not small or any("ratio" not in g for g in small):
        goal.update(measured="—", check="", status="not run")
    else:
        worst = min(small, key=lambda g: g["ratio"]["median"])
        goal["value"] = worst["ratio"]["median"]
        goal["measured"] = ", ".join(f"{g['ratio']['median']:.2f}×" for g in small)
        goal["check"] = "results match NumPy" if not any(g.get("wrong") for g in small) \
            else "WRONG results"
        goal["status"] = "met" if worst["ratio"]["median"] >= 2 else "**not met**"
    out.append(goal)
    return out


# --------------------------------------------------------------------------- CLI
def fmt_time(t):
    if t is None:
        return "—"
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.1f} ms"
    return f"{t * 1e6:.0f} µs"


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark fastmlp against a NumPy baseline, PyTorch, scikit-learn and "
                    "Keras; prints a Markdown report and writes JSON and PNG charts.",
        epilog="Workloads: " + ", ".join(WORKLOADS) + " (aliases: infer = infer_w2,infer_w3; "
               "gemm = kernels). Nothing asserts on time.")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="about a minute: fewer epochs, rows, sizes and repetitions "
                           "(ratios comparable, absolute times and accuracies not)")
    mode.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the tests'
    ap.add_argument("--only", metavar="NAME[,NAME]",
                    help="workloads to run (default: all): " + ", ".join(WORKLOADS))
    ap.add_argument("--impls", metavar="NAME[,NAME]",
                    help="implementations (default: all): " + ", ".join(IMPL_ORDER)
                         + "; numpy is the baseline and always runs")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for every implementation (default: OMP_NUM_THREADS, else "
                         "the number of CPUs)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed repetitions per implementation (default 5; --quick 2)")
    ap.add_argument("--out", default="benchmark-results",
                    help="directory for results.json, report.md and the charts "
                         "(default: %(default)s)")
    ap.add_argument("--pima", default=DEFAULT_PIMA,
                    help="path of pima-indians-diabetes.csv (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=7,
                    help="seed of the first repetition, +1 per repetition (default 7)")
    ap.add_argument("--results-md", metavar="PATH",
                    help="also write the report to PATH with the charts linked relative to it "
                         "(how benchmarks/RESULTS.md is made)")
    ap.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    args = ap.parse_args(argv)
    only = []
    for name in (args.only.split(",") if args.only else WORKLOADS):
        name = name.strip().lower().replace("-", "_")
        if not name:
            continue
        names = ALIASES.get(name, [name])
        for n in names:
            if n not in WORKLOADS:
                ap.error(f"--only: unknown workload {name!r}; choose from "
                         f"{', '.join(WORKLOADS)} (or infer, gemm)")
            if n not in only:
                only.append(n)
    args.only = [w for w in WORKLOADS if w in only]
    default_impls = TINY_IMPLS if args.tiny else IMPL_ORDER
    impls = [i.strip().lower() for i in args.impls.split(",")] if args.impls else default_impls
    for i in impls:
        if i not in IMPL_ORDER:
            ap.error(f"--impls: unknown implementation {i!r}; choose from {', '.join(IMPL_ORDER)}")
    args.impls = [i for i in IMPL_ORDER if i in impls or i == "numpy"]
    if args.threads is None:
        try:
            args.threads = int(os.environ.get("OMP_NUM_THREADS", ""))
        except ValueError:
            args.threads = os.cpu_count() or 1
    if args.threads < 1:
        ap.error("--threads must be >= 1")
    if args.repeats is not None and args.repeats < 1:
        ap.error("--repeats must be >= 1")
    return args


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    import signal

    from . import _report

    try:
        signal.signal(signal.SIGTERM, _terminate)  # `kill` stops the workers too
    except ValueError:  # not the main thread
        pass

    args = parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    cfg = dict(PRESETS[mode])
    if args.repeats is not None:
        cfg["repeats"] = args.repeats
        cfg["kernel_rounds"] = max(args.repeats, 1)
    cfg.update(threads=args.threads, seed=args.seed, pima=os.path.abspath(args.pima),
               mode=mode)
    os.makedirs(args.out, exist_ok=True)
    progress = Progress(not args.no_progress)

    results = {
        "schema": 1,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        "mode": mode,
        "config": cfg,
        "impls_requested": args.impls,
        "machine": _machine.describe(REPO),
        "workloads": {},
    }
    notes = []
    if "w1" in args.only and not os.path.isfile(cfg["pima"]):
        notes.append(f"W1 skipped: PIMA data not found at {cfg['pima']} (use --pima PATH)")
        args.only = [w for w in args.only if w != "w1"]
    if any(w in args.only for w in ("w2",)) and importlib.util.find_spec("sklearn") is None:
        notes.append("W2 skipped: it needs scikit-learn's load_digits (pip install scikit-learn)")
        args.only = [w for w in args.only if w != "w2"]

    results["load"] = {"start": _loadavg()}
    if results["load"]["start"] is not None and results["load"]["start"] > 0.5:
        notes.append(f"the machine was not idle: 1-minute load average "
                     f"{results['load']['start']:.2f} before the run; other processes compete "
                     "for the CPUs and slow multi-threaded code most")
    with tempfile.TemporaryDirectory(prefix="fastmlp-bench-logs-") as logdir:
        for workload in args.only:
            impls = [i for i in args.impls if i in WORKLOAD_IMPLS.get(workload, ())]
            results["workloads"][workload] = run_workload(workload, impls, cfg, logdir,
                                                          progress)
    results["load"]["end"] = _loadavg()
    progress("done", final=True)
    progress.done()

    for workload, w in results["workloads"].items():
        for impl, entry in w["impls"].items():
            if entry.get("status") in ("skipped", "error"):
                notes.append(f"{w['title']}: {entry['label']} {entry['status']}: "
                             f"{entry.get('note')}")
            for err in entry.get("errors", []):
                notes.append(f"{w['title']}: {entry['label']} {err}")
        if workload == "kernels" and w.get("peak", {}).get("note"):
            notes.append("Kernels: " + w["peak"]["note"])
    results["notes"] = notes
    results["goals"] = goals(results)

    charts, chart_notes = _report.charts(results, args.out)
    results["charts"] = charts
    results["notes"] += chart_notes
    text = _report.markdown(results)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(_plain(results), f, indent=1, allow_nan=False)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text)
    if args.results_md:
        rel = os.path.relpath(os.path.abspath(args.out),
                              os.path.dirname(os.path.abspath(args.results_md)))
        with open(args.results_md, "w") as f:
            f.write(_report.markdown(results, image_dir=rel, results_page=True))
    print(text)
    return 0
