"""Weight penalties: L1, L2 and both, added to the loss by the engine.

A regularizer penalises a Dense layer's kernel (``kernel_regularizer``) or
bias (``bias_regularizer``) with ``l1 * sum(|w|) + l2 * sum(w**2)``.

Example:
    >>> import numpy as np
    >>> from fastmlp import regularizers
    >>> reg = regularizers.get("l2")
    >>> reg.l1, reg.l2
    (0.0, 0.01)
    >>> float(reg(np.array([[1.0, -2.0]])))
    0.05
"""

import numpy as np

from ._registry import Registry
from ._validation import check_float


class L1L2:
    """Penalty ``l1 * sum(|w|) + l2 * sum(w**2)``.

    Args:
        l1: L1 factor (>= 0, default 0).
        l2: L2 factor (>= 0, default 0).

    Example:
        >>> L1L2(l1=0.1, l2=0.1)([1.0, -1.0])
        np.float64(0.4)
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = check_float(l1, "l1", low=0.0)
        self.l2 = check_float(l2, "l2", low=0.0)

    def __call__(self, x):
        x = np.asarray(x)
        return self.l1 * np.abs(x).sum() + self.l2 * np.square(x).sum()

    def get_config(self):
        """Plain-data constructor arguments."""
        return {"l1": self.l1, "l2": self.l2}

    @classmethod
    def from_config(cls, config):
        """Rebuilds the regularizer from :meth:`get_config`."""
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1(L1L2):
    """Penalty ``l1 * sum(|w|)`` (Keras default l1=0.01).

    Example:
        >>> L1(0.5)([1.0, -1.0])
        np.float64(1.0)
    """

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """Penalty ``l2 * sum(w**2)`` (Keras default l2=0.01).

    Example:
        >>> L2(0.5)([1.0, -2.0])
        np.float64(2.5)
    """

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1_l2(l1=0.01, l2=0.01):
    """Keras 2's shortcut: an :class:`L1L2` with both factors (default 0.01)."""
    return L1L2(l1=l1, l2=l2)


#: Keras's lower-case aliases.
l1 = L1
l2 = L2

_REGISTRY = Registry("regularizer", L1L2)
_REGISTRY.register(L1L2, "l1l2", "l1_l2")
_REGISTRY.register(L1, "l1")
_REGISTRY.register(L2, "l2")


def get(identifier):
    """Resolves a regularizer: None → None, a name ('l1', 'l2', 'l1_l2'), a
    serialized dict or an :class:`L1L2` (or :class:`L1` / :class:`L2`) instance."""
    return None if identifier is None else _REGISTRY.get(identifier)


def serialize(regularizer):
    """``{'class_name': ..., 'config': ...}`` of a regularizer (None for None)."""
    return None if regularizer is None else Registry.serialize(regularizer)
