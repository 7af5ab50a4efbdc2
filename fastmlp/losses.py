"""Losses, by the names and classes Keras gives them.

The engine computes the loss and its gradient in C (sigmoid + binary
cross-entropy and softmax + categorical cross-entropy fused, from the
logits). The NumPy functions here are reference versions returning one loss
per sample, and the loss objects apply them with Keras's reduction.

Example:
    >>> import numpy as np
    >>> from fastmlp import losses
    >>> loss = losses.get("mse")
    >>> loss.name
    'mean_squared_error'
    >>> float(loss(np.array([[1.0], [0.0]]), np.array([[0.5], [0.0]])))
    0.125
"""

import numpy as np

from ._registry import Registry
from .backend import epsilon


def _clip(p):
    return np.clip(p, epsilon(), 1 - epsilon())


def mean_squared_error(y_true, y_pred):
    """Per-sample mean over outputs of (y_pred - y_true)**2."""
    return np.mean(np.square(np.asarray(y_pred) - y_true), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean over outputs of |y_pred - y_true|."""
    return np.mean(np.abs(np.asarray(y_pred) - y_true), axis=-1)


def sum_squared_error(y_true, y_pred):
    """Per-sample sum over outputs of (y_pred - y_true)**2 (the classic SSE cost)."""
    return np.sum(np.square(np.asarray(y_pred) - y_true), axis=-1)


def binary_crossentropy(y_true, y_pred):
    """Per-sample mean over outputs of -(t log p + (1 - t) log(1 - p)), p clipped."""
    p = _clip(np.asarray(y_pred, dtype=np.float64))
    return -np.mean(y_true * np.log(p) + (1 - np.asarray(y_true)) * np.log(1 - p), axis=-1)


def categorical_crossentropy(y_true, y_pred):
    """Per-sample -sum_j t_j log q_j with q = y_pred normalised per row and clipped."""
    q = np.asarray(y_pred, dtype=np.float64)
    q = _clip(q / q.sum(axis=-1, keepdims=True))
    return -np.sum(y_true * np.log(q), axis=-1)


def sparse_categorical_crossentropy(y_true, y_pred):
    """categorical_crossentropy with integer class labels."""
    q = np.asarray(y_pred, dtype=np.float64)
    q = _clip(q / q.sum(axis=-1, keepdims=True))
    labels = np.asarray(y_true).reshape(-1).astype(np.int64)
    return -np.log(q[np.arange(len(labels)), labels])


class Loss:
    """Base of the loss objects: a per-sample function and a reduction.

    ``loss(y_true, y_pred, sample_weight=None)`` returns
    ``sum_i w_i l_i / n`` (Keras's ``sum_over_batch_size``), or the plain sum
    for :class:`SumSquaredError`.

    Args:
        name: the loss's name (defaults to its function's name).
    """

    fn = None
    reduce_sum = False

    def __init__(self, name=None):
        self.name = name or self.fn.__name__

    def __call__(self, y_true, y_pred, sample_weight=None):
        per_sample = self.fn(np.asarray(y_true), np.asarray(y_pred))
        if sample_weight is not None:
            per_sample = per_sample * np.asarray(sample_weight).reshape(per_sample.shape)
        return per_sample.sum() if self.reduce_sum else per_sample.mean()

    def get_config(self):
        """Plain-data constructor arguments."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        """Rebuilds the loss from :meth:`get_config`."""
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class MeanSquaredError(Loss):
    """Mean squared error (``'mse'``).

    Example:
        >>> MeanSquaredError()([[0.0, 1.0]], [[1.0, 1.0]])
        np.float64(0.5)
    """

    fn = staticmethod(mean_squared_error)


class MeanAbsoluteError(Loss):
    """Mean absolute error (``'mae'``).

    Example:
        >>> MeanAbsoluteError()([[0.0, 1.0]], [[1.0, 1.0]])
        np.float64(0.5)
    """

    fn = staticmethod(mean_absolute_error)


class SumSquaredError(Loss):
    """Sum of squared errors over outputs and samples (``'sse'``), the tutorial's cost.

    Example:
        >>> SumSquaredError()([[0.0], [1.0]], [[1.0], [3.0]])
        np.float64(5.0)
    """

    fn = staticmethod(sum_squared_error)
    reduce_sum = True


class _Crossentropy(Loss):
    def __init__(self, from_logits=False, name=None):
        if from_logits:
            raise ValueError(f"{type(self).__name__} supports only from_logits=False: fastmlp "
                             "fuses the output layer's sigmoid/softmax with the loss and "
                             "computes it from the logits already. Received: from_logits=True")
        super().__init__(name)

    def get_config(self):
        return {"from_logits": False, **super().get_config()}


class BinaryCrossentropy(_Crossentropy):
    """Binary cross-entropy for targets in [0, 1] (``'binary_crossentropy'``).

    Example:
        >>> round(float(BinaryCrossentropy()([[1.0]], [[0.5]])), 4)
        0.6931
    """

    fn = staticmethod(binary_crossentropy)


class CategoricalCrossentropy(_Crossentropy):
    """Cross-entropy for one-hot targets (``'categorical_crossentropy'``).

    Example:
        >>> round(float(CategoricalCrossentropy()([[0.0, 1.0]], [[0.5, 0.5]])), 4)
        0.6931
    """

    fn = staticmethod(categorical_crossentropy)


class SparseCategoricalCrossentropy(_Crossentropy):
    """Cross-entropy for integer class labels (``'sparse_categorical_crossentropy'``).

    Example:
        >>> round(float(SparseCategoricalCrossentropy()([1], [[0.5, 0.5]])), 4)
        0.6931
    """

    fn = staticmethod(sparse_categorical_crossentropy)


_REGISTRY = Registry("loss", Loss)
_REGISTRY.register(MeanSquaredError, "mean_squared_error", "mse")
_REGISTRY.register(MeanAbsoluteError, "mean_absolute_error", "mae")
_REGISTRY.register(SumSquaredError, "sum_squared_error", "sse")
_REGISTRY.register(BinaryCrossentropy, "binary_crossentropy", "bce")
_REGISTRY.register(CategoricalCrossentropy, "categorical_crossentropy", "cce")
_REGISTRY.register(SparseCategoricalCrossentropy, "sparse_categorical_crossentropy")

_CLASS_OF_FUNCTION = {cls.fn: cls for cls in (MeanSquaredError, MeanAbsoluteError,
                                              SumSquaredError, BinaryCrossentropy,
                                              CategoricalCrossentropy,
                                              SparseCategoricalCrossentropy)}

#: Aliases in the style of ``keras.losses``.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
sse = sum_squared_error


def get(identifier):
    """Resolves a loss: None → None, a name, one of this module's functions, a
    serialized dict or a :class:`Loss` instance."""
    if identifier is None:
        return None
    if callable(identifier) and not isinstance(identifier, Loss):
        if identifier in _CLASS_OF_FUNCTION:
            return _CLASS_OF_FUNCTION[identifier]()
        raise ValueError(f"Could not interpret loss identifier: {identifier!r} (fastmlp computes "
                         f"losses in C; use one of: {', '.join(_REGISTRY.names())})")
    return _REGISTRY.get(identifier)


def serialize(loss):
    """``{'class_name': ..., 'config': ...}`` of a loss."""
    return Registry.serialize(loss)


def engine_name(loss):
    """The engine's name of a loss object (a key of ``fastmlp._core.LOSSES``)."""
    return type(loss).fn.__name__
