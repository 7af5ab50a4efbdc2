"""Low-level operations of the C engine, usable on their own.

:func:`gemm` is the matrix product every layer of fastmlp runs on: packed, register-blocked
SIMD kernels chosen for the CPU at import (see :func:`fastmlp.show_config`), with a small-matrix
path whose per-call overhead is a fraction of ``numpy.matmul``'s.
"""

from . import _config, _core

__all__ = ["gemm"]


def gemm(a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """General matrix multiply: ``alpha * op(a) @ op(b) + beta * out``.

    ``op(x)`` is ``x.T`` when the matching ``trans_*`` flag is set, else ``x``. Transposed and
    otherwise strided inputs are read in place, never copied. The product uses the thread
    count of :func:`fastmlp.set_num_threads`; results are bitwise identical for any thread
    count.

    Args:
        a: 2-D array, ``(m, k)`` (``(k, m)`` with ``trans_a``). Array-likes are converted with
            ``numpy.asarray``. Any strides, read-only and memory-mapped arrays included.
        b: 2-D array, ``(k, n)`` (``(n, k)`` with ``trans_b``), same dtype as ``a``.
        trans_a: use ``a.T``.
        trans_b: use ``b.T``.
        alpha: scale of the product.
        beta: scale of ``out``'s previous contents; must be 0 when ``out`` is None.
            ``beta == 0`` overwrites ``out`` without reading it (NaN in it does not survive).
        out: optional ``(m, n)`` array receiving the result, of the inputs' dtype, writeable,
            aligned, with contiguous rows or columns (C- or Fortran-ordered, or a slice of
            rows or columns of such an array), not overlapping ``a`` or ``b``.

    Returns:
        ``out``, or a new C-ordered ``(m, n)`` array when ``out`` is None.

    Raises:
        TypeError: a dtype other than float32 or float64 (integers and booleans are refused
            rather than cast, so that no hidden copy or precision change happens: convert with
            ``astype`` first), ``a`` and ``b`` of different dtypes, ``out`` of another dtype or
            not a numpy array.
        ValueError: inputs that are not 2-D, inner dimensions that differ, ``out`` of the
            wrong shape, read-only, without contiguous rows or columns, or overlapping an
            input, or ``beta != 0`` without ``out``.

    Example:
        >>> import numpy as np
        >>> from fastmlp.ops import gemm
        >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
        >>> gemm(a, a, trans_b=True)
        array([[ 5., 14.],
               [14., 50.]], dtype=float32)
    """
    return _core.ops_gemm(a, b, trans_a, trans_b, alpha, beta, out, _config._num_threads)
