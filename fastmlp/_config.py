"""The number of threads the engine uses."""

from . import _core
from ._validation import check_int

_num_threads = None


def set_num_threads(n):
    """Sets the number of threads every later training, evaluation and prediction uses.

    Results are bitwise identical for any thread count.

    Args:
        n: an integer >= 1, or None to go back to the default (the OpenMP
            limit in force at each call, which honours ``OMP_NUM_THREADS``
            and ``threadpoolctl``).

    Example:
        >>> import fastmlp
        >>> fastmlp.set_num_threads(1); fastmlp.get_num_threads()
        1
        >>> fastmlp.set_num_threads(None)
    """
    global _num_threads
    _num_threads = None if n is None else check_int(n, "n", minimum=1)


def get_num_threads():
    """The thread count set by :func:`set_num_threads`, else the current OpenMP limit."""
    return _core.default_num_threads() if _num_threads is None else _num_threads
