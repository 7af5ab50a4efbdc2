"""Keras-style models: :class:`Sequential` and :func:`load_model`.

Example:
    >>> import numpy as np
    >>> from fastmlp.models import Sequential
    >>> from fastmlp.layers import Dense
    >>> model = Sequential()
    >>> model.add(Dense(2, input_dim=2, use_bias=False))
    >>> model.add(Dense(1, use_bias=False))
    >>> model.set_weights([np.array([[1, -1], [1, 1]]), np.array([[2], [-1]])])
    >>> model.predict(np.array([[2, 3], [3, 4]]))
    array([[ 9.],
           [13.]], dtype=float32)
"""

import numpy as np

from . import saving
from ._validation import take_aliases
from .mlp import MLP

_SUMMARY_POSITIONS = (0.45, 0.85, 1.0)


class Sequential(MLP):
    """A linear stack of layers with Keras's ``Sequential`` interface.

    It is a facade over :class:`fastmlp.MLP`: the same engine, weights and
    training loop, with Keras's argument order and defaults (``fit``
    prints a progress bar unless ``verbose=0``) and Keras 1's
    ``nb_epoch``, ``predict_classes`` and ``predict_proba``.

    Args:
        layers: layers to add, in order.
        name: the model's name.
        dtype: 'float32' or 'float64' (default: ``fastmlp.backend.floatx()``).
        seed: seeds the weights, the shuffling and dropout; by default a
            seed is drawn from NumPy's global generator (``numpy.random.seed``).
        device: 'cpu' (the default), 'cuda' or 'auto': see :attr:`fastmlp.MLP.device`.

    Example:
        >>> import numpy
        >>> from fastmlp.layers import Dense
        >>> numpy.random.seed(7)
        >>> X = numpy.random.uniform(size=(100, 8)); Y = (X.sum(axis=1) > 4) * 1.0
        >>> model = Sequential()
        >>> model.add(Dense(12, input_dim=8, init="uniform", activation="relu"))
        >>> model.add(Dense(1, init="uniform", activation="sigmoid"))
        >>> model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
        >>> history = model.fit(X, Y, nb_epoch=5, batch_size=10, verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'loss']
        >>> model.metrics_names
        ['loss', 'accuracy']
    """

    def __init__(self, layers=None, name=None, dtype=None, seed=None, device="cpu"):
        super().__init__(layers, dtype=dtype, seed=seed, name=name, device=device)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, **kwargs):
        """Trains the model; see :meth:`fastmlp.MLP.fit`.

        ``batch_size`` None means 32 and ``verbose`` 'auto' means 1, as in
        Keras; Keras 1's ``nb_epoch`` is accepted for ``epochs``.

        Returns:
            A :class:`fastmlp.callbacks.History`.
        """
        epochs = take_aliases(kwargs, {"nb_epoch": "epochs"}, {"epochs": epochs},
                              {"epochs": 1})["epochs"]
        return super().fit(x, y, epochs=epochs, batch_size=32 if batch_size is None else batch_size,
                           verbose=verbose, callbacks=callbacks,
                           validation_split=validation_split, validation_data=validation_data,
                           shuffle=shuffle, class_weight=class_weight,
                           sample_weight=sample_weight, initial_epoch=initial_epoch)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 return_dict=False):
        """The loss (and metrics, ordered as :attr:`metrics_names`) on (x, y).

        Prints a progress bar unless ``verbose=0``; see :meth:`fastmlp.MLP.evaluate`.
        """
        return super().evaluate(x, y, batch_size=32 if batch_size is None else batch_size,
                                verbose=verbose, sample_weight=sample_weight,
                                return_dict=return_dict)

    def predict(self, x, batch_size=None, verbose=0):
        """The outputs for ``x``, shape ``(n_samples, units of the last layer)``."""
        return super().predict(x, batch_size=32 if batch_size is None else batch_size,
                               verbose=verbose)

    def predict_classes(self, x, batch_size=32, verbose=0):
        """Keras 1: class indices; output > 0.5 for one output unit, else the argmax.

        Returns:
            int32 array: ``(n, 1)`` for one output unit, ``(n,)`` otherwise.
        """
        proba = self.predict(x, batch_size=batch_size, verbose=verbose)
        if proba.shape[-1] == 1:
            return (proba > 0.5).astype(np.int32)
        return proba.argmax(axis=-1).astype(np.int32)

    def predict_proba(self, x, batch_size=32, verbose=0):
        """Keras 1: the same as :meth:`predict`."""
        return self.predict(x, batch_size=batch_size, verbose=verbose)

    def summary(self, line_length=65, positions=None, print_fn=None):
        """Prints the layers, their output shapes and parameter counts, and the totals.

        Args:
            line_length: the width of the table.
            positions: the right edge of each column, as fractions of the width.
            print_fn: called with each line (default: ``print``).
        """
        self._require_built("summary()")
        print_fn = print_fn or print
        edges = [int(line_length * p) for p in positions or _SUMMARY_POSITIONS]

        def row(fields):
            line = ""
            for i, (field, edge) in enumerate(zip(fields, edges)):
                if i:
                    line = line[:-1] + " "
                line = (line + str(field))[:edge]
                line += " " * (edge - len(line))
            print_fn(line)

        print_fn(f'Model: "{self.name}"')
        print_fn("_" * line_length)
        row(["Layer (type)", "Output Shape", "Param #"])
        print_fn("=" * line_length)
        width = self._input_width
        for i, layer in enumerate(self._layers):
            width = layer.output_width(width)
            row([f"{layer.name} ({type(layer).__name__})", (None, width), layer.count_params()])
            print_fn("=" * line_length if i == len(self._layers) - 1 else "_" * line_length)
        total = self.count_params()
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {total:,}")
        print_fn("Non-trainable params: 0")
        print_fn("_" * line_length)


def load_model(filepath, compile=True):
    """Reads a model written by ``model.save(filepath)``.

    Args:
        filepath: the file.
        compile: whether to restore the compile settings and optimizer state.

    Raises:
        OSError: when the file cannot be opened.
        ValueError: when it is truncated, corrupt or not a fastmlp model file.
    """
    return saving.load_model(filepath, compile=compile)


__all__ = ["Sequential", "load_model"]
