"""Launch geometry and the few places where the CUDA simulator differs from a GPU.

Contract: every kernel module takes its block sizes and helpers from here, so one switch
(``SIMULATOR``, Numba's ``NUMBA_ENABLE_CUDASIM``, read when numba is first imported) decides
them for all. On a GPU, element-wise kernels run 256 threads a block and reductions a fixed
number of blocks, so sums are reproducible run to run. The simulator runs every CUDA thread as
a Python thread (roughly a millisecond each), so there blocks are small and there is one of
each reduction; the kernels and their results are otherwise the same.
"""
import functools

import numba
from numba import cuda

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)

#: Threads per block of the element-wise, row-wise and reduction kernels (a power of two).
THREADS = 32 if SIMULATOR else 256
#: Blocks of a grid-stride element-wise kernel, at most this many per multiprocessor.
BLOCKS_PER_SM = 8
#: Fixed number of blocks (partial sums) of the two-pass reductions over all parameters.
REDUCE_BLOCKS = 1 if SIMULATOR else 64

#: 2**64 - 1: the simulator runs the hash's uint64 arithmetic in Python integers.
_MASK64 = (1 << 64) - 1


def device_function(fn):
    """A device function, inlined into its callers on a GPU."""
    if SIMULATOR:
        return cuda.jit(device=True)(fn)
    return cuda.jit(device=True, forceinline=True)(fn)


if SIMULATOR:
    import numpy as np

    # NumPy warns when uint64 scalars wrap around, which the hash relies on.
    @device_function
    def wrap_mul(a, b):
        """a * b modulo 2**64."""
        return np.uint64((int(a) * int(b)) & _MASK64)

    @device_function
    def wrap_add(a, b):
        """a + b modulo 2**64."""
        return np.uint64((int(a) + int(b)) & _MASK64)
else:
    @device_function
    def wrap_mul(a, b):
        """a * b modulo 2**64."""
        return a * b

    @device_function
    def wrap_add(a, b):
        """a + b modulo 2**64."""
        return a + b


@functools.lru_cache(maxsize=None)
def sm_count():
    """Multiprocessors of the current device (1 under the simulator)."""
    if SIMULATOR:
        return 1
    return int(cuda.get_current_device().MULTIPROCESSOR_COUNT)


def configure(kernel, grid, block):
    """``kernel[grid, block]``. The engine's small grids (one-block reductions, layers of a
    few tiles) are deliberate, so Numba's low-occupancy warning is off while configuring."""
    if SIMULATOR:
        return kernel[grid, block]
    saved = numba.config.CUDA_LOW_OCCUPANCY_WARNINGS
    numba.config.CUDA_LOW_OCCUPANCY_WARNINGS = 0
    try:
        return kernel[grid, block]
    finally:
        numba.config.CUDA_LOW_OCCUPANCY_WARNINGS = saved


def grid_for(n):
    """Blocks for a grid-stride kernel over n items (at least 1)."""
    return max(1, min(-(-n // THREADS), BLOCKS_PER_SM * sm_count()))
