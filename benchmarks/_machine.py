"""What the benchmark ran on: CPU, memory, Python, NumPy's BLAS, threads, library versions.

Everything here is read, never changed.  ``describe()`` runs in the parent process;
``library_info()`` runs inside each worker, after the worker has applied its thread
settings, so the thread counts it reports are the ones the timed code used.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

#: Environment variables that change what NumPy's OpenBLAS or the engines do.
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "FASTMLP_ARCH", "KERAS_BACKEND")


def _cpuinfo():
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" not in line:
                    if fields:
                        break  # first processor block is enough
                    continue
                key, value = (s.strip() for s in line.split(":", 1))
                fields.setdefault(key, value)
    except OSError:
        pass
    return fields


def cpu_model():
    info = _cpuinfo()
    name = info.get("model name") or platform.processor() or platform.machine()
    extra = []
    if "cpu family" in info:
        extra.append(f"family {info['cpu family']} model {info.get('model', '?')}")
    flags = info.get("flags", "").split()
    isa = [f for f in ("avx512f", "avx2", "fma") if f in flags]
    if isa:
        extra.append("+".join(isa))
    return f"{name} ({', '.join(extra)})" if extra else name


def cpu_flags():
    return set(_cpuinfo().get("flags", "").split())


def memory_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def git_revision(repo):
    """'abc1234' or 'abc1234+dirty' for the checkout the harness lives in, else None."""
    try:
        rev = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def env_vars():
    return {name: os.environ.get(name) for name in ENV_VARS}


def numpy_blas():
    """NumPy's BLAS: the build's name and version, and what threadpoolctl sees loaded."""
    import numpy as np

    out = {"build": None, "threadpoolctl": None}
    try:
        blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        if blas:
            out["build"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy without mode='dicts'
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        out["threadpoolctl"] = "threadpoolctl not installed"
        return out
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if pools:
        p = pools[0]
        out["threadpoolctl"] = {k: p.get(k) for k in
                                ("internal_api", "version", "architecture", "num_threads",
                                 "threading_layer")}
    return out


def describe(repo):
    """The machine and software, as a dict of plain data."""
    import numpy as np

    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": numpy_blas(),
        "env": env_vars(),
        "revision": git_revision(repo),
    }


def blas_text(blas):
    """One line for NumPy's BLAS from :func:`numpy_blas`'s dict."""
    if not blas:
        return "?"
    text = blas.get("build") or "?"
    tp = blas.get("threadpoolctl")
    if isinstance(tp, dict):
        text += (f" (loaded: {tp.get('internal_api')} {tp.get('version')}, kernel "
                 f"{tp.get('architecture')}, {tp.get('threading_layer')} threading)")
    elif tp:
        text += f" ({tp})"
    return text


def library_info(impl):
    """Versions and thread settings of the library a worker runs (inside the worker)."""
    info = {"python": sys.version.split()[0]}
    import numpy as np

    info["numpy"] = np.__version__
    if impl in ("fastmlp", "kernels"):
        import fastmlp
        from fastmlp import _core

        info["fastmlp"] = getattr(fastmlp, "__version__", "?")
        info["fastmlp_file"] = os.path.dirname(fastmlp.__file__)
        info["threads"] = fastmlp.get_num_threads()
        info["arch"] = _core.arch()
        info["openmp"] = _core.has_openmp()
        show = getattr(fastmlp, "show_config", None) or getattr(fastmlp, "config", None)
        if callable(show):
            try:
                import contextlib
                import io

                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    ret = show()
                text = buf.getvalue().strip()
                info["show_config"] = text if text else (ret if isinstance(ret, (str, dict))
                                                          else repr(ret))
            except Exception as exc:  # report, never fail the benchmark over it
                info["show_config"] = f"error: {type(exc).__name__}: {exc}"
    if impl in ("numpy", "kernels", "sklearn"):
        info["blas"] = numpy_blas()
        tp = info["blas"].get("threadpoolctl")
        info["threads"] = tp.get("num_threads") if isinstance(tp, dict) else None
    if impl == "sklearn":
        import sklearn

        info["sklearn"] = sklearn.__version__
    if impl in ("torch", "keras"):
        import torch

        info["torch"] = torch.__version__
        info["threads"] = torch.get_num_threads()
    if impl == "keras":
        import keras

        info["keras"] = keras.__version__
        info["keras_backend"] = keras.backend.backend()
    return info
