"""Weight initializers, by the names and classes Keras gives them.

An initializer is called as ``init(shape, dtype=None, rng=None)`` and
returns a new array. Random initializers draw from their own ``seed`` when
one is given, else from ``rng``, the model's NumPy generator (seeded from the
model's seed, so the same seed gives the same initial weights).

Example:
    >>> import numpy as np
    >>> from fastmlp import initializers
    >>> init = initializers.get("uniform")
    >>> w = init((8, 16), rng=np.random.default_rng(0))
    >>> w.shape, bool(np.all(np.abs(w) <= 0.05))
    ((8, 16), True)
"""

import numpy as np

from ._registry import Registry
from ._validation import check_float, check_int
from .backend import floatx


class Initializer:
    """Base of the initializer objects."""

    def __call__(self, shape, dtype=None, rng=None):
        shape = tuple(check_int(d, "shape", minimum=0) for d in shape)
        return np.asarray(self.sample(shape, rng), dtype=dtype or floatx())

    def sample(self, shape, rng):
        """An array of ``shape`` (any float dtype)."""
        raise NotImplementedError

    def get_config(self):
        """Plain-data constructor arguments."""
        return {}

    @classmethod
    def from_config(cls, config):
        """Rebuilds the initializer from :meth:`get_config`."""
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Constant(Initializer):
    """Fills with ``value``: a scalar, or an array of exactly the requested shape.

    Example:
        >>> Constant(3.0)((2,))
        array([3., 3.], dtype=float32)
    """

    def __init__(self, value=0.0):
        self.value = np.array(value, dtype=np.float64)
        if not np.all(np.isfinite(self.value)):
            raise ValueError(f"`value` must be finite. Received: value={value!r}")

    def sample(self, shape, rng):
        if self.value.ndim and self.value.shape != shape:
            raise ValueError(f"Constant initializer holds an array of shape {self.value.shape} "
                             f"but a weight of shape {shape} was requested")
        return np.broadcast_to(self.value, shape)

    def get_config(self):
        return {"value": self.value.tolist()}


class Zeros(Constant):
    """Fills with 0.

    Example:
        >>> Zeros()((2,))
        array([0., 0.], dtype=float32)
    """

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    """Fills with 1.

    Example:
        >>> Ones()((2,))
        array([1., 1.], dtype=float32)
    """

    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class _Random(Initializer):
    """A random initializer: ``seed`` (an int) makes it draw the same values each call."""

    def __init__(self, seed=None):
        self.seed = None if seed is None else check_int(seed, "seed", minimum=0)

    def generator(self, rng):
        """The generator to draw from: the own seed's, else ``rng``, else a fresh one."""
        if self.seed is not None:
            return np.random.default_rng(self.seed)
        return rng if rng is not None else np.random.default_rng()

    def get_config(self):
        return {"seed": self.seed}


class RandomUniform(_Random):
    """U(minval, maxval); the default is Keras's 'uniform', U(-0.05, 0.05).

    Example:
        >>> w = RandomUniform(0.0, 1.0, seed=1)((3,))
        >>> bool(np.all((w >= 0) & (w < 1)))
        True
    """

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval = check_float(minval, "minval")
        self.maxval = check_float(maxval, "maxval", low=self.minval)

    def sample(self, shape, rng):
        return self.generator(rng).uniform(self.minval, self.maxval, size=shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class RandomNormal(_Random):
    """N(mean, stddev**2); the default is Keras's 'normal', stddev 0.05.

    Example:
        >>> RandomNormal(stddev=0.0)((2,))
        array([0., 0.], dtype=float32)
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean = check_float(mean, "mean")
        self.stddev = check_float(stddev, "stddev", low=0.0)

    def sample(self, shape, rng):
        return self.generator(rng).normal(self.mean, self.stddev, size=shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


def _truncated_normal(gen, mean, stddev, shape):
    """N(mean, stddev**2) with draws beyond two standard deviations redrawn."""
    z = gen.standard_normal(size=shape)
    bad = np.abs(z) > 2
    while bad.any():
        z[bad] = gen.standard_normal(size=int(bad.sum()))
        bad = np.abs(z) > 2
    return mean + stddev * z


class TruncatedNormal(RandomNormal):
    """N(mean, stddev**2) truncated at two standard deviations.

    Example:
        >>> w = TruncatedNormal(stddev=1.0, seed=0)((1000,))
        >>> bool(np.abs(w).max() <= 2)
        True
    """

    def sample(self, shape, rng):
        return _truncated_normal(self.generator(rng), self.mean, self.stddev, shape)


class VarianceScaling(_Random):
    """Scales the spread to the layer's fan: variance ``scale / n``.

    ``n`` is fan_in, fan_out or their mean (``mode``); ``distribution`` is
    'truncated_normal', 'untruncated_normal' or 'uniform', as in Keras 3.

    Example:
        >>> w = VarianceScaling(scale=2.0, mode="fan_in", distribution="uniform", seed=0)((8, 4))
        >>> bool(np.abs(w).max() <= np.sqrt(3 * 2.0 / 8))
        True
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        self.scale = check_float(scale, "scale", low=0.0, low_open=True)
        if mode not in self._MODES:
            raise ValueError(f"`mode` must be one of {self._MODES}. Received: mode={mode!r}")
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(f"`distribution` must be one of {self._DISTRIBUTIONS}. "
                             f"Received: distribution={distribution!r}")
        self.mode = mode
        self.distribution = distribution

    def sample(self, shape, rng):
        fan_in, fan_out = (shape[0], shape[-1]) if len(shape) else (1, 1)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        gen = self.generator(rng)
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * variance)
            return gen.uniform(-limit, limit, size=shape)
        if self.distribution == "untruncated_normal":
            return gen.normal(0.0, np.sqrt(variance), size=shape)
        # 0.8796... is the stddev of a unit normal truncated at two stddevs.
        return _truncated_normal(gen, 0.0, np.sqrt(variance) / 0.87962566103423978, shape)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


def _variance_scaling(name, scale, mode, distribution, doc):
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                           "__doc__": doc, "__module__": __name__})


GlorotUniform = _variance_scaling(
    "GlorotUniform", 1.0, "fan_avg", "uniform",
    """U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)) (Keras's default kernel).

    Example:
        >>> GlorotUniform(seed=0)((8, 16)).shape
        (8, 16)
    """)
GlorotNormal = _variance_scaling(
    "GlorotNormal", 1.0, "fan_avg", "truncated_normal",
    """Truncated normal with stddev sqrt(2 / (fan_in + fan_out)).

    Example:
        >>> GlorotNormal(seed=0)((8, 16)).shape
        (8, 16)
    """)
HeUniform = _variance_scaling(
    "HeUniform", 2.0, "fan_in", "uniform",
    """U(-limit, limit) with limit = sqrt(6 / fan_in).

    Example:
        >>> HeUniform(seed=0)((8, 16)).shape
        (8, 16)
    """)
HeNormal = _variance_scaling(
    "HeNormal", 2.0, "fan_in", "truncated_normal",
    """Truncated normal with stddev sqrt(2 / fan_in).

    Example:
        >>> HeNormal(seed=0)((8, 16)).shape
        (8, 16)
    """)
LecunUniform = _variance_scaling(
    "LecunUniform", 1.0, "fan_in", "uniform",
    """U(-limit, limit) with limit = sqrt(3 / fan_in).

    Example:
        >>> LecunUniform(seed=0)((8, 16)).shape
        (8, 16)
    """)
LecunNormal = _variance_scaling(
    "LecunNormal", 1.0, "fan_in", "truncated_normal",
    """Truncated normal with stddev sqrt(1 / fan_in).

    Example:
        >>> LecunNormal(seed=0)((8, 16)).shape
        (8, 16)
    """)

_REGISTRY = Registry("initializer", Initializer)
_REGISTRY.register(Zeros, "zeros", "zero")
_REGISTRY.register(Ones, "ones", "one")
_REGISTRY.register(Constant, "constant")
_REGISTRY.register(RandomUniform, "random_uniform", "uniform")
_REGISTRY.register(RandomNormal, "random_normal", "normal")
_REGISTRY.register(TruncatedNormal, "truncated_normal")
_REGISTRY.register(VarianceScaling, "variance_scaling")
_REGISTRY.register(GlorotUniform, "glorot_uniform")
_REGISTRY.register(GlorotNormal, "glorot_normal")
_REGISTRY.register(HeUniform, "he_uniform")
_REGISTRY.register(HeNormal, "he_normal")
_REGISTRY.register(LecunUniform, "lecun_uniform")
_REGISTRY.register(LecunNormal, "lecun_normal")


def get(identifier):
    """Resolves an initializer.

    None → None (the layer's default), a name, a serialized dict, an
    :class:`Initializer`, a NumPy array or nested list (used as the exact
    initial values, via :class:`Constant`), or any callable
    ``fn(shape, dtype=None)`` returning an array of that shape.
    """
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, (np.ndarray, list, tuple)):
        return Constant(identifier)
    if callable(identifier) and not isinstance(identifier, type):
        return identifier
    return _REGISTRY.get(identifier)


def serialize(initializer):
    """``{'class_name': ..., 'config': ...}`` of an :class:`Initializer`; None for
    a plain callable, which cannot be written down (the weights it drew can)."""
    return Registry.serialize(initializer) if isinstance(initializer, Initializer) else None
