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
import importlib.util

DEVICES = ("cpu", "cuda", "auto")
#: The packages of the ``[cuda]`` extra, with the module each installs.
_EXTRA = (("numba", "numba"), ("numba-cuda", "numba_cuda"))


def resolve_device(device):
    """The device that ``device`` names: 'cpu' or 'cuda' ('auto': 'cuda' if usable).

    Raises:
        ValueError: for a name other than 'cpu', 'cuda' and 'auto'.
        ImportError: for 'cuda' when a package of the ``[cuda]`` extra is missing (named).
        RuntimeError: for 'cuda' when no CUDA GPU is usable.
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
    from numba import cuda

    if cuda.is_available():
        return "cuda"
    if device == "auto":
        return "cpu"
    raise RuntimeError("device='cuda' but no CUDA GPU is usable here: numba.cuda.is_available() "
                       "is False (no NVIDIA GPU or driver found); use device='cpu' or 'auto'")


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
