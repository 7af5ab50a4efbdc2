"""Layers of a feed-forward network, with Keras's names and arguments.

A model is a stack of :class:`Dense` layers, optionally with :class:`Dropout`
between them and an :class:`Input` in front. A Dense layer's weights are
built lazily, once its input width is known: from ``input_dim`` /
``input_shape``, an :class:`Input`, or the data of the first ``fit``.

Example:
    >>> from fastmlp.layers import Dense, Dropout
    >>> hidden = Dense(16, input_dim=8, init="uniform", activation="relu")
    >>> hidden.units, hidden.activation.__name__, hidden.input_dim
    (16, 'relu', 8)
    >>> Dropout(0.2).rate
    0.2
"""

import numpy as np

from . import activations, initializers, regularizers
from ._registry import Registry, unique_name
from ._validation import check_float, check_int, take_aliases


def _input_width(input_dim, input_shape):
    """The declared input width from ``input_dim`` or a 1-D ``input_shape`` (or None)."""
    if input_shape is not None:
        shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
        if len(shape) != 1:
            raise ValueError("fastmlp layers take flat inputs: `input_shape` must be "
                             f"(n_features,). Received: input_shape={input_shape!r}")
        if input_dim is not None and input_dim != shape[0]:
            raise ValueError(f"`input_dim` and `input_shape` disagree. Received: "
                             f"input_dim={input_dim!r}, input_shape={input_shape!r}")
        input_dim = shape[0]
    return None if input_dim is None else check_int(input_dim, "input_dim", minimum=1)


class Layer:
    """Base of the layers: a name and an optional declared input width.

    Args:
        name: the layer's name (default: unique, from the class name).
        input_dim: the width of the model's input, when this is the first layer.
        input_shape: the same as a 1-tuple ``(n_features,)``.
    """

    def __init__(self, name=None, input_dim=None, input_shape=None):
        self.name = str(name) if name is not None else unique_name(type(self))
        self.input_dim = _input_width(input_dim, input_shape)

    def output_width(self, input_width):
        """The width of this layer's output for an input of ``input_width``."""
        return input_width

    def count_params(self):
        """The number of weights (0 for layers without weights)."""
        return 0

    def get_weights(self):
        """The layer's weights as a list of NumPy arrays (copies)."""
        return []

    def set_weights(self, weights):
        """Sets the layer's weights from a list of arrays of the right shapes."""
        if len(weights) != 0:
            raise ValueError(f"Layer {self.name!r} has no weights; received {len(weights)} arrays")

    def get_config(self):
        """The layer's constructor arguments as plain data."""
        return {"name": self.name, "input_dim": self.input_dim}

    @classmethod
    def from_config(cls, config):
        """Rebuilds a layer from :meth:`get_config` (weights are not included)."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class InputLayer(Layer):
    """Declares the model's input width; :func:`Input` is its usual spelling.

    Args:
        shape: ``(n_features,)``.
        name: the layer's name.

    Example:
        >>> InputLayer(shape=(8,)).input_dim
        8
    """

    def __init__(self, shape=None, name=None, input_shape=None):
        if shape is None and input_shape is None:
            raise ValueError("InputLayer needs `shape`, e.g. shape=(8,)")
        super().__init__(name=name, input_shape=input_shape if shape is None else shape)

    def get_config(self):
        return {"name": self.name, "shape": (self.input_dim,)}


def Input(shape=None, name=None):
    """The input of a model of flat samples: ``Input(shape=(n_features,))``.

    Example:
        >>> from fastmlp.models import Sequential
        >>> model = Sequential([Input(shape=(8,)), Dense(1)])
        >>> model.count_params()
        9
    """
    return InputLayer(shape=shape, name=name)


def _initial_values(init, shape, dtype, rng, what):
    """Draws a weight from an initializer object, a callable ``fn(shape, dtype)`` or values."""
    if isinstance(init, initializers.Initializer):
        values = init(shape, dtype=dtype, rng=rng)
    else:
        values = init(shape, dtype=dtype)
    values = np.array(values, dtype=dtype, order="C")
    if values.shape != shape:
        raise ValueError(f"`{what}` returned an array of shape {values.shape}; "
                         f"the weight has shape {shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"`{what}` returned NaN or infinite values")
    return values


class Dense(Layer):
    """Fully connected layer: ``output = activation(input @ kernel + bias)``.

    The kernel has shape ``(n_in, units)``, as in Keras and scikit-learn.

    Args:
        units: the number of outputs (Keras 1: ``output_dim``).
        activation: a name from :mod:`fastmlp.activations` or one of its
            functions; None is linear.
        use_bias: whether to add a bias (Keras 1: ``bias``).
        kernel_initializer: an initializer identifier (Keras 1: ``init``).
        bias_initializer: an initializer identifier.
        kernel_regularizer: an L1/L2 penalty on the kernel (Keras 1: ``W_regularizer``).
        bias_regularizer: an L1/L2 penalty on the bias (Keras 1: ``b_regularizer``).
        input_dim: input width, for the first layer of a model.
        input_shape: ``(input_dim,)``.
        name: the layer's name.

    Raises:
        ValueError: for a non-positive ``units`` or an unknown activation,
            initializer or regularizer.
        TypeError: for an unknown keyword argument.

    Example:
        >>> layer = Dense(2, input_dim=2, use_bias=False)
        >>> layer.get_config()["units"], layer.use_bias
        (2, False)
    """

    _ALIASES = {"output_dim": "units", "init": "kernel_initializer",
                "W_regularizer": "kernel_regularizer", "b_regularizer": "bias_regularizer",
                "bias": "use_bias"}
    _DEFAULTS = {"units": None, "kernel_initializer": "glorot_uniform", "use_bias": True,
                 "kernel_regularizer": None, "bias_regularizer": None}

    def __init__(self, units=None, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, input_dim=None,
                 input_shape=None, name=None, **kwargs):
        given = take_aliases(kwargs, self._ALIASES, {
            "units": units, "kernel_initializer": kernel_initializer, "use_bias": use_bias,
            "kernel_regularizer": kernel_regularizer, "bias_regularizer": bias_regularizer},
            self._DEFAULTS)
        super().__init__(name=name, input_dim=input_dim, input_shape=input_shape)
        if given["units"] is None:
            raise TypeError("Dense() missing required argument: 'units'")
        self.units = check_int(given["units"], "units", minimum=1)
        self.activation = activations.get(activation)
        self.use_bias = bool(given["use_bias"])
        self.kernel_initializer = initializers.get(given["kernel_initializer"])
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(given["kernel_regularizer"])
        self.bias_regularizer = regularizers.get(given["bias_regularizer"])
        self.kernel = None
        self.bias = None

    @property
    def built(self):
        """Whether the weights exist."""
        return self.kernel is not None

    def build(self, input_width, dtype, rng=None):
        """Creates the weights for inputs of ``input_width`` features.

        Args:
            input_width: the number of input features.
            dtype: float32 or float64.
            rng: the NumPy generator random initializers draw from.
        """
        shape = (input_width, self.units)
        self.kernel = _initial_values(self.kernel_initializer or initializers.GlorotUniform(),
                                      shape, dtype, rng, "kernel_initializer")
        self.bias = (_initial_values(self.bias_initializer or initializers.Zeros(),
                                     (self.units,), dtype, rng, "bias_initializer")
                     if self.use_bias else None)

    def output_width(self, input_width):
        return self.units

    @property
    def n_weights(self):
        """How many arrays ``get_weights`` returns once built: kernel, and bias if any."""
        return 2 if self.use_bias else 1

    def count_params(self):
        if not self.built:
            raise ValueError(f"Layer {self.name!r} is not built yet: its input width is unknown")
        return self.kernel.size + (self.units if self.use_bias else 0)

    def get_weights(self):
        if not self.built:
            return []
        return [self.kernel.copy()] + ([self.bias.copy()] if self.use_bias else [])

    def check_weights(self, weights):
        """``weights`` converted to the layer's dtype, checked against its shapes.

        Raises:
            ValueError: for an unbuilt layer, a wrong count or a wrong shape.
        """
        if not self.built:
            raise ValueError(f"Layer {self.name!r} is not built yet: its input width is unknown")
        targets = [self.kernel] + ([self.bias] if self.use_bias else [])
        if len(weights) != len(targets):
            raise ValueError(f"Layer {self.name!r} expects {len(targets)} weight arrays "
                             f"(kernel{', bias' if self.use_bias else ''}); "
                             f"received {len(weights)}")
        values = []
        for target, value, what in zip(targets, weights, ("kernel", "bias")):
            value = np.asarray(value, dtype=target.dtype)
            if value.shape != target.shape:
                raise ValueError(f"Layer {self.name!r}: {what} must have shape {target.shape}; "
                                 f"received shape {value.shape}")
            values.append(value)
        return values

    def assign_weights(self, values):
        """Copies arrays returned by :meth:`check_weights` into the weights, in place."""
        self.kernel[...] = values[0]
        if self.use_bias:
            self.bias[...] = values[1]

    def set_weights(self, weights):
        self.assign_weights(self.check_weights(weights))

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}

    def __repr__(self):
        return (f"<Dense name={self.name!r} units={self.units} "
                f"activation={self.activation.__name__!r}>")


class Dropout(Layer):
    """Inverted dropout on the outputs of the previous layer, active only in training.

    Args:
        rate: the fraction of inputs zeroed, in [0, 1) (Keras 1: ``p``).
        name: the layer's name.
        input_dim, input_shape: the model's input width, when first.

    Example:
        >>> from fastmlp.models import Sequential
        >>> model = Sequential([Dense(8, input_dim=4, activation="relu"), Dropout(0.5), Dense(1)])
        >>> [layer.name.split("_")[0] for layer in model.layers]
        ['dense', 'dropout', 'dense']
    """

    def __init__(self, rate=None, name=None, input_dim=None, input_shape=None, **kwargs):
        rate = take_aliases(kwargs, {"p": "rate"}, {"rate": rate}, {"rate": None})["rate"]
        super().__init__(name=name, input_dim=input_dim, input_shape=input_shape)
        if rate is None:
            raise TypeError("Dropout() missing required argument: 'rate'")
        self.rate = check_float(rate, "rate", low=0.0, high=1.0, high_open=True)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}

    def __repr__(self):
        return f"<Dropout name={self.name!r} rate={self.rate}>"


_REGISTRY = Registry("layer", Layer)
for _cls in (Dense, Dropout, InputLayer):
    _REGISTRY.register(_cls)


def serialize(layer):
    """``{'class_name': ..., 'config': ...}`` of a layer (weights not included)."""
    return Registry.serialize(layer)


def deserialize(config):
    """Rebuilds a layer from :func:`serialize`'s output."""
    return _REGISTRY.deserialize(config)
