"""fastmlp on CUDA GPUs, through Numba: device selection and the device engine.

``device='cuda'`` trains, evaluates and predicts on the current CUDA GPU with
:class:`CudaEngine`, whose kernels are the twins of the C engine's; ``device='auto'`` takes the
GPU when one is usable and the CPU otherwise. The device is where a model runs, not part of
it: a model trained on either saves, loads and predicts on the other.

Nothing here imports numba until a GPU is asked for, so ``import fastmlp`` does not; the
kernel modules (:mod:`.engine`, :mod:`.gemm`, :mod:`.ops`, :mod:`.launch`) load only then.

Example:
    >>> from fastmlp.cuda import resolve_device
    >>> resolve_device("cpu")
    'cpu'
"""
import functools
import importlib.util
import warnings

DEVICES = ("cpu", "cuda", "auto")
#: The packages of the ``[cuda]`` extra, with the module each installs.
_EXTRA = (("numba", "numba"), ("numba-cuda", "numba_cuda"))


def resolve_device(device):
    """The device that ``device`` names: 'cpu' or 'cuda' ('auto': 'cuda' if usable).

    Raises:
        ValueError: for a name other than 'cpu', 'cuda' and 'auto'.
        ImportError: for 'cuda' when a package of the ``[cuda]`` extra is missing (named),
            or when the installed numba-cuda cannot compile kernels under the installed NumPy.
        RuntimeError: for 'cuda' when no CUDA GPU is usable.

    Warns:
        RuntimeWarning: for 'auto' when the GPU is left unused because of such a clash.
    """
    if not isinstance(device, str) or device.lower() not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, DEVICES))}. "
                         f"Received: device={device!r}")
    device = device.lower()
    if device == "cpu":
        return "cpu"
    missing = [package for package, module in _EXTRA if importlib.util.find_spec(module) is None]
    if missing:
        if device == "auto":
            return "cpu"
        raise ImportError(f"device='cuda' needs the [cuda] extra, but {' and '.join(missing)} "
                          f"{'is' if len(missing) == 1 else 'are'} not installed: "
                          "pip install 'fastmlp[cuda]'")
    clash = _numpy_clash()
    if clash is not None:
        if device == "auto":
            warnings.warn(f"device='auto' trains on the CPU: {clash}", RuntimeWarning,
                          stacklevel=2)
            return "cpu"
        raise ImportError(f"device='cuda' cannot run here: {clash}")
    from numba import cuda

    if cuda.is_available():
        return "cuda"
    if device == "auto":
        return "cpu"
    raise RuntimeError("device='cuda' but no CUDA GPU is usable here: numba.cuda.is_available() "
                       "is False (no NVIDIA GPU or driver found); use device='cpu' or 'auto'")


def _release(version):
    """The leading numbers of a version string: '0.30.4' -> (0, 30, 4), '2.5.0rc1' -> (2, 5, 0),
    '1.0.dev3' -> (1, 0)."""
    numbers = []
    for part in version.split("."):
        digits = part[:len(part) - len(part.lstrip("0123456789"))]
        if not digits:
            break
        numbers.append(int(digits))
        if digits != part:
            break
    return tuple(numbers)


@functools.lru_cache(maxsize=None)
def _numpy_clash():
    """Why the installed numba-cuda cannot compile kernels under the installed NumPy, or None.

    numba-cuda up to 0.30.4 registers ``np.row_stack`` when its first kernel compiles, and
    NumPy 2.5 removed that name: every launch then fails with an AttributeError from inside
    numba-cuda. (Numba's simulator does not load that module.) Computed once per process: the
    package metadata it reads costs about 0.4 ms."""
    from importlib import metadata

    import numba
    import numpy as np

    try:
        numba_cuda = metadata.version("numba-cuda")
    except metadata.PackageNotFoundError:
        return None
    if (hasattr(np, "row_stack") or _release(numba_cuda) > (0, 30, 4)
            or numba.config.ENABLE_CUDASIM):
        return None
    return (f"numba-cuda {numba_cuda} does not work with NumPy {np.__version__} (it needs "
            "numpy.row_stack, removed in NumPy 2.5): install 'numpy<2.5' or a newer numba-cuda")


def is_available():
    """Whether ``device='cuda'`` would work: the ``[cuda]`` extra and a usable GPU."""
    return resolve_device("auto") == "cuda"


def engine_class(device):
    """The engine class for a resolved device ('cpu' or 'cuda')."""
    if device == "cuda":
        from .engine import CudaEngine

        return CudaEngine
    from .. import _core

    return _core.Engine


def __getattr__(name):
    if name == "CudaEngine":
        from .engine import CudaEngine

        return CudaEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CudaEngine", "DEVICES", "engine_class", "is_available", "resolve_device"]
