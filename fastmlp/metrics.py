"""Metrics reported during training and evaluation.

The engine accumulates every metric in C, per batch, as a weighted sum and a
weight total. The classes here name a metric and select its engine kernel.
``'accuracy'`` (or ``'acc'``) resolves, as in Keras, to binary, categorical
or sparse categorical accuracy from the loss and the output width, and keeps
the name the user wrote.

Example:
    >>> from fastmlp import metrics
    >>> m = metrics.get("accuracy", loss_name="binary_crossentropy", n_out=1)
    >>> type(m).__name__, m.name
    ('BinaryAccuracy', 'accuracy')
"""

import numpy as np

from ._registry import Registry


class Metric:
    """Base of the metric objects.

    ``metric(y_true, y_pred)`` returns the metric's value computed in NumPy
    (a reference for the value the engine reports).

    Args:
        name: the key under which the metric is reported.
    """

    engine_name = None
    default_name = None

    def __init__(self, name=None):
        self.name = name or self.default_name

    def __call__(self, y_true, y_pred):
        return float(np.mean(self.per_sample(np.asarray(y_true), np.asarray(y_pred))))

    def per_sample(self, y_true, y_pred):
        """The metric of each sample."""
        raise NotImplementedError

    def get_config(self):
        """Plain-data constructor arguments."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        """Rebuilds the metric from :meth:`get_config`."""
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class BinaryAccuracy(Metric):
    """Share of outputs on the same side of 0.5 as their targets.

    Example:
        >>> BinaryAccuracy()([[1.0], [0.0]], [[0.7], [0.6]])
        0.5
    """

    engine_name = default_name = "binary_accuracy"

    def __init__(self, name=None, threshold=0.5):
        if threshold != 0.5:
            raise ValueError(f"BinaryAccuracy supports only threshold=0.5. "
                             f"Received: threshold={threshold!r}")
        super().__init__(name)

    def per_sample(self, y_true, y_pred):
        return np.mean((y_pred > 0.5) == (y_true > 0.5), axis=-1)


class CategoricalAccuracy(Metric):
    """Share of samples whose largest output is the one-hot target's class.

    Example:
        >>> CategoricalAccuracy()([[0, 1], [1, 0]], [[0.2, 0.8], [0.3, 0.7]])
        0.5
    """

    engine_name = default_name = "categorical_accuracy"

    def per_sample(self, y_true, y_pred):
        return y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)


class SparseCategoricalAccuracy(Metric):
    """Share of samples whose largest output is the integer label.

    Example:
        >>> SparseCategoricalAccuracy()([1, 1], [[0.2, 0.8], [0.3, 0.7]])
        1.0
    """

    engine_name = default_name = "sparse_categorical_accuracy"

    def per_sample(self, y_true, y_pred):
        return y_pred.argmax(axis=-1) == y_true.reshape(-1)


class MeanSquaredError(Metric):
    """Mean squared error.

    Example:
        >>> MeanSquaredError()([[0.0], [1.0]], [[1.0], [1.0]])
        0.5
    """

    engine_name = "mse"
    default_name = "mean_squared_error"

    def per_sample(self, y_true, y_pred):
        return np.mean(np.square(y_pred - y_true), axis=-1)


class MeanAbsoluteError(Metric):
    """Mean absolute error.

    Example:
        >>> MeanAbsoluteError()([[0.0], [1.0]], [[1.0], [1.0]])
        0.5
    """

    engine_name = "mae"
    default_name = "mean_absolute_error"

    def per_sample(self, y_true, y_pred):
        return np.mean(np.abs(y_pred - y_true), axis=-1)


_REGISTRY = Registry("metric", Metric)
_REGISTRY.register(BinaryAccuracy, "binary_accuracy")
_REGISTRY.register(CategoricalAccuracy, "categorical_accuracy")
_REGISTRY.register(SparseCategoricalAccuracy, "sparse_categorical_accuracy")
_REGISTRY.register(MeanSquaredError, "mean_squared_error", "mse")
_REGISTRY.register(MeanAbsoluteError, "mean_absolute_error", "mae")


def _accuracy_class(loss_name, n_out):
    if loss_name == "sparse_categorical_crossentropy":
        return SparseCategoricalAccuracy
    if loss_name == "binary_crossentropy" or n_out == 1:
        return BinaryAccuracy
    return CategoricalAccuracy


def get(identifier, loss_name=None, n_out=None):
    """Resolves a metric identifier to a :class:`Metric`.

    Args:
        identifier: a name ('accuracy', 'acc', 'binary_accuracy', 'mse', ...),
            a serialized dict or a :class:`Metric` instance. A metric named by
            a string is reported under that string, as Keras does.
        loss_name: the engine name of the compiled loss (resolves 'accuracy').
        n_out: the output layer's width (resolves 'accuracy').
    """
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            return _accuracy_class(loss_name, n_out)(name=identifier)
        metric = _REGISTRY.get(identifier)
        metric.name = identifier
        return metric
    return _REGISTRY.get(identifier)


def serialize(metric):
    """``{'class_name': ..., 'config': ...}`` of a metric."""
    return Registry.serialize(metric)
