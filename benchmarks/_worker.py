"""A worker process: runs one implementation of one workload, on request.

The parent starts one worker per (workload, implementation), each a fresh Python
process with the thread settings already in its environment, so that

* one library's imports, thread pools and allocator caches never touch another's
  timings or memory;
* the peak memory of each training run is the worker's own: Linux's high-water
  mark is reset (``/proc/self/clear_refs``) right before ``fit`` and read right
  after (where that is not possible, ``ru_maxrss`` — the process's lifetime peak —
  is reported and labelled so);
* the parent can interleave repetitions across implementations (A B C A B C ...)
  while each worker keeps its imports and data loaded.

Protocol: one JSON object per line on stdin (``setup``, ``warmup``, ``run``,
``quit``), one JSON object per line back on the worker's original stdout; lines
with a ``progress`` key come before a reply.  Anything a library prints goes to
stderr (the parent keeps it in a log file).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback

import numpy as np

from . import _data, _machine
from ._impls import IMPLS, Skip

# Each timed fit or prediction loop starts on quiet cores: the worker first waits this long,
# so that threads another worker's library left spinning after its last call (OpenBLAS's spin
# about 0.1 s, libgomp's well under 1 ms) have gone to sleep and do not take a core from
# this run.
SETTLE_S = 0.3


# --------------------------------------------------------------------------- memory
def _status_kib(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _reset_peak():
    """Resets the RSS high-water mark to the current RSS; False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kib("VmHWM") is not None
    except OSError:
        return False


def _maxrss_kib():
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r // 1024 if sys.platform == "darwin" else r  # bytes on macOS, KiB on Linux


class Memory:
    """Peak RSS of one measured region of code (MiB)."""

    def __enter__(self):
        gc.collect()
        self.exact = _reset_peak()
        self.before = _status_kib("VmRSS")
        return self

    def __exit__(self, *exc):
        self.peak = _status_kib("VmHWM") if self.exact else _maxrss_kib()
        return False

    def result(self):
        mib = lambda kib: None if kib is None else round(kib / 1024, 1)  # noqa: E731
        return {"rss_peak_mib": mib(self.peak), "rss_before_mib": mib(self.before),
                "rss_method": "VmHWM reset before fit" if self.exact
                else "ru_maxrss (process lifetime)"}


# --------------------------------------------------------------------------- runners
class TrainRunner:
    """Trains one workload with one implementation: warm-up, then timed runs."""

    def __init__(self, impl, workload, cfg):
        self.impl = IMPLS[impl](cfg["threads"])
        if impl in ("sklearn", "fastmlp_sk") and workload == "w3":
            raise Skip("scikit-learn is compared on W1 and W2 only")
        self.task = _data.build_task(workload, cfg)
        t = self.task
        self.data = self.impl.data(t, t.X, t.y)
        n = t.warmup_rows
        self.warm_data = self.impl.data(t, t.X[:n], t.y[:n])

    def warmup(self, seed):
        model = self.impl.build(self.task, seed)
        self.impl.fit(model, self.warm_data, self.task.warmup_epochs)
        self.impl.predict(model, self.task.X_eval[:16])
        return {}

    def run(self, seed):
        t = self.task
        model = self.impl.build(t, seed)
        time.sleep(SETTLE_S)
        with Memory() as mem:
            c0 = time.process_time()
            t0 = time.perf_counter()
            self.impl.fit(model, self.data, t.epochs)
            elapsed = time.perf_counter() - t0
            cpu = time.process_time() - c0
        acc = _data.accuracy(self.impl.predict(model, t.X_eval), t.y_eval)
        out = {"time_s": elapsed, "cpu_s": cpu, "accuracy": acc}
        out.update(mem.result())
        return out


class InferRunner:
    """Prediction throughput (rows/s) of one network at batch 1 and at a large batch."""

    def __init__(self, impl, workload, cfg):
        self.impl = IMPLS[impl](cfg["threads"])
        if impl == "sklearn" and workload == "infer_w3":
            raise Skip("scikit-learn is compared on W1 and W2 only")
        sizes, acts, X = _data.inference_net(workload, cfg)
        spec = _data.Task(sizes=sizes, activations=acts, init="glorot_uniform",
                          loss="categorical_crossentropy", batch_size=32)
        self.model = self.impl.build(spec, cfg["seed"])
        if impl == "sklearn":  # an MLPClassifier predicts only once fitted: one small step
            import warnings

            labels = np.arange(64) % sizes[-1]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.model.partial_fit(X[:64], labels, classes=np.arange(sizes[-1]))
        self.X = X
        self.rows_1 = cfg["infer_rows_1"]
        self.batch = cfg["infer_batch"]
        self.min_time = cfg["infer_min_time"]

    def warmup(self, seed):
        for i in range(min(8, self.rows_1)):
            self.impl.predict(self.model, self.X[i:i + 1])
        self.impl.predict(self.model, self.X[:self.batch])
        return {}

    def run(self, seed):
        predict, model, X = self.impl.predict, self.model, self.X
        time.sleep(SETTLE_S)
        t0 = time.perf_counter()
        for i in range(self.rows_1):
            predict(model, X[i:i + 1])
        t1 = time.perf_counter() - t0
        xb = X[:self.batch]
        calls = 0
        time.sleep(SETTLE_S)
        t0 = time.perf_counter()
        while True:
            predict(model, xb)
            calls += 1
            tb = time.perf_counter() - t0
            if tb >= self.min_time and calls >= 3:
                break
        return {"rows_per_s_1": self.rows_1 / t1, "rows_per_s_batch": calls * self.batch / tb,
                "batch": self.batch}


class KernelRunner:
    """GEMM and dense-layer kernels: fastmlp against NumPy's BLAS, one process."""

    def __init__(self, impl, workload, cfg):
        from . import _kernels

        _require_fastmlp()
        self.mod = _kernels
        self.cfg = cfg

    def warmup(self, seed):
        return {}

    def run(self, seed):
        return self.mod.run(self.cfg, _emit_progress)


def _require_fastmlp():
    import importlib

    try:
        importlib.import_module("fastmlp")
    except ImportError as exc:
        raise Skip(f"fastmlp does not import ({exc})") from None


# --------------------------------------------------------------------------- protocol
_proto = None


def _send(obj):
    _proto.write(json.dumps(obj) + "\n")
    _proto.flush()


def _emit_progress(text):
    _send({"progress": str(text)})


def _setup(msg):
    impl, workload, cfg = msg["impl"], msg["workload"], msg["cfg"]
    if workload == "kernels":
        runner = KernelRunner(impl, workload, cfg)
    elif workload.startswith("infer_"):
        runner = InferRunner(impl, workload, cfg)
    else:
        runner = TrainRunner(impl, workload, cfg)
    return runner, {"info": _machine.library_info(impl)}


def main():
    global _proto
    _proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library output to stderr, never into the protocol
    sys.stdout = sys.stderr
    runner = None
    for line in sys.stdin:
        msg = json.loads(line)
        op = msg.get("op")
        if op == "quit":
            break
        try:
            if op == "setup":
                runner, reply = _setup(msg)
            elif op == "warmup":
                reply = runner.warmup(msg["seed"])
            elif op == "run":
                reply = runner.run(msg["seed"])
            else:
                raise ValueError(f"unknown op {op!r}")
            reply = dict(reply, ok=True)
        except Skip as exc:
            reply = {"ok": False, "skip": str(exc)}
        except BaseException as exc:  # report to the parent; it records and goes on
            traceback.print_exc()
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        _send(reply)


if __name__ == "__main__":
    main()
