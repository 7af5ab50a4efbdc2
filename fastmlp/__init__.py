"""fastmlp: multi-layer perceptrons trained by a C engine, with a Keras-style API.

Example:
    >>> import numpy as np
    >>> import fastmlp
    >>> from fastmlp.models import Sequential
    >>> from fastmlp.layers import Dense
    >>> model = Sequential([Dense(1, input_dim=3)], seed=0)
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> model.predict(np.ones((2, 3))).shape
    (2, 1)
"""

from . import (activations, backend, callbacks, initializers, layers, losses, metrics, models,
               ops, optimizers, regularizers, utils)
from ._config import get_num_threads, set_num_threads
from ._sysinfo import config, show_config
from ._version import __version__
from .layers import Dense, Dropout, Input
from .mlp import MLP
from .models import Sequential, load_model

__all__ = ["__version__", "MLP", "Sequential", "Dense", "Dropout", "Input", "load_model",
           "set_num_threads", "get_num_threads", "show_config", "config",
           "activations", "backend", "callbacks", "initializers", "layers",
           "losses", "metrics", "models", "ops", "optimizers", "regularizers", "utils"]


def __getattr__(name):
    # The scikit-learn estimators load on first use, so importing fastmlp never imports
    # scikit-learn (an optional dependency: pip install "fastmlp[sklearn]").
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import estimators
        return getattr(estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
