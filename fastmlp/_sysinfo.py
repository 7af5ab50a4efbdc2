"""What this installation of fastmlp was built with and what it runs on.

The compiled engine adapts to its compiler at build time (OpenMP and each
instruction-set kernel are built only when the compiler supports them) and to
the CPU at run time (the best kernel set the CPU supports, or the one named by
``FASTMLP_ARCH``). :func:`show_config` reports both, so a wheel on an
unfamiliar machine can say which kernel it runs and on how many threads.

Example:
    >>> import fastmlp
    >>> config = fastmlp.show_config(mode="dicts")
    >>> config["kernel"] in config["kernels_built"]
    True
"""

import os
import platform
import sys

import numpy as np

from . import _core
from ._config import get_num_threads
from ._version import __version__


def get_config():
    """The build and run-time configuration as a dict of plain values."""
    openmp = _core.has_openmp()
    return {
        "version": __version__,
        "kernel": _core.arch(),
        "cpu_features": _core.cpu_features(),
        "kernels_built": _core.built_archs(),
        "kernels_cpu": _core.cpu_archs(),
        "kernels_usable": _core.supported_archs(),
        "FASTMLP_ARCH": os.environ.get("FASTMLP_ARCH") or None,
        "gemm": {dtype: _core.gemm_blocking(_core.arch(), dtype)
                 for dtype in ("float32", "float64")},
        "openmp": openmp,
        "threads": get_num_threads() if openmp else 1,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": f"{platform.system()} {platform.machine()}",
        "extension": _core.__file__,
    }


def config():
    """The same dict as :func:`get_config`: build, CPU features, kernel set, GEMM blocking
    (``gemm``: per dtype the micro-tile ``mr`` x ``nr``, the cache blocks ``mc``, ``kc``,
    ``nc``, the small-product limits ``sup_m`` and ``sup_mnk`` below which operands are not
    packed, and ``par_mnk``, the multiply-adds from which threads are used), threads."""
    return get_config()


def _kernel_reason(config):
    if config["FASTMLP_ARCH"]:
        return f"chosen by FASTMLP_ARCH={config['FASTMLP_ARCH']}"
    missing = [a for a in config["kernels_cpu"] if a not in config["kernels_built"]]
    if config["kernel"] != config["kernels_usable"][-1]:
        return "switched at run time"
    if missing:
        return f"the best built; this CPU also has {', '.join(missing)}, not built"
    return "the best this CPU supports"


def show_config(mode="stdout", file=None):
    """Prints (or returns) how fastmlp was built and which kernel and threads it uses.

    Args:
        mode: 'stdout' prints a short report; 'dicts' returns it as a dict
            (see :func:`get_config`) instead.
        file: the text stream printed to (``sys.stdout`` when None).

    Returns:
        None, or the dict with ``mode='dicts'``.

    Example:
        >>> import fastmlp
        >>> fastmlp.show_config()  # doctest: +SKIP
        fastmlp 0.1.0
          kernel in use:  avx512 (the best this CPU supports)
          kernels built:  generic, avx2, avx512
          CPU has:        generic, avx2, avx512
          CPU features:   sse2 avx fma avx2 avx512f avx512dq avx512vl avx512bw
          OpenMP:         yes, 2 threads
          Python 3.11.7, numpy 2.4.6, Linux x86_64
          GEMM float32:  micro-tile MR x NR = 12 x 32, MC = 144, KC = 256, ...
          GEMM float64:  micro-tile MR x NR = 12 x 16, MC = 120, KC = 512, ...
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"`mode` must be 'stdout' or 'dicts'. Received: mode={mode!r}")
    config = get_config()
    if mode == "dicts":
        return config
    if config["openmp"]:
        threads = f"yes, {config['threads']} thread{'s' if config['threads'] != 1 else ''}"
    else:
        threads = "no (built without OpenMP): single-threaded"
    lines = [
        f"fastmlp {config['version']}",
        f"  kernel in use:  {config['kernel']} ({_kernel_reason(config)})",
        f"  kernels built:  {', '.join(config['kernels_built'])}",
        f"  CPU has:        {', '.join(config['kernels_cpu'])}",
        f"  CPU features:   {' '.join(config['cpu_features']) or '(none detected)'}",
        f"  OpenMP:         {threads}",
        f"  Python {config['python']}, numpy {config['numpy']}, {config['platform']}",
    ]
    for dtype, b in config["gemm"].items():
        lines.append(f"  GEMM {dtype}:  micro-tile MR x NR = {b['mr']} x {b['nr']}, "
                     f"MC = {b['mc']}, KC = {b['kc']}, NC = {b['nc']}; unpacked when "
                     f"m <= {b['sup_m']} or m*n*k <= {b['sup_mnk']}; threads from m*n*k >= "
                     f"{b['par_mnk']}")
    print("\n".join(lines), file=sys.stdout if file is None else file)
    return None
