"""Activation functions, by the names Keras gives them.

The engine computes every activation in C; the NumPy functions here are the
public reference versions (handy to check a prediction by hand) and the
identifiers :func:`get` accepts.

Example:
    >>> import numpy as np
    >>> from fastmlp import activations
    >>> activations.get("relu")(np.array([-1.0, 2.0]))
    array([0., 2.])
    >>> activations.get(None).__name__
    'linear'
"""

import numpy as np

from ._registry import Registry

_REGISTRY = Registry("activation")

#: Default parameter of the activations that take one (Keras 3's defaults).
DEFAULT_ALPHA = {"leaky_relu": 0.2, "elu": 1.0}

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def linear(x):
    """Identity."""
    return np.asarray(x)


def relu(x):
    """max(x, 0)."""
    return np.maximum(x, 0)


def leaky_relu(x, negative_slope=DEFAULT_ALPHA["leaky_relu"]):
    """x for x > 0, negative_slope * x otherwise."""
    x = np.asarray(x)
    return np.where(x > 0, x, negative_slope * x)


def elu(x, alpha=DEFAULT_ALPHA["elu"]):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    x = np.asarray(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def selu(x):
    """scale * elu(x, alpha) with the self-normalising constants."""
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow."""
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def hard_sigmoid(x):
    """relu6(x + 3) / 6, Keras 3's piecewise-linear sigmoid."""
    return np.clip((np.asarray(x) + 3) / 6, 0, 1)


def tanh(x):
    """Hyperbolic tangent."""
    return np.tanh(x)


def softplus(x):
    """log(1 + exp(x)), computed without overflow."""
    return np.logaddexp(0, x)


def softsign(x):
    """x / (1 + |x|)."""
    x = np.asarray(x)
    return x / (1 + np.abs(x))


def exponential(x):
    """exp(x)."""
    return np.exp(x)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, the maximum subtracted first."""
    x = np.asarray(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


for _fn in (linear, relu, leaky_relu, elu, selu, sigmoid, hard_sigmoid, tanh, softplus,
            softsign, exponential, softmax):
    _REGISTRY.register(_fn)


def get(identifier):
    """Resolves an activation: None → linear, a name, or one of this module's functions.

    Raises:
        ValueError: for an unknown name or any other object (the engine runs
            only the activations listed here).
    """
    if identifier is None:
        return linear
    if callable(identifier) and not isinstance(identifier, type):
        if _REGISTRY.is_registered(identifier):
            return identifier
        raise ValueError(f"Could not interpret activation identifier: {identifier!r} "
                         f"(fastmlp runs activations in C; use one of: "
                         f"{', '.join(_REGISTRY.names())})")
    return _REGISTRY.get(identifier)


def serialize(activation):
    """The name of an activation function."""
    return get(activation).__name__
