"""Helpers with Keras's names: seeding and one-hot encoding.

Example:
    >>> from fastmlp import utils
    >>> utils.to_categorical([0, 2, 1])
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]], dtype=float32)
"""

import random

import numpy as np

from ._validation import check_int


def set_random_seed(seed):
    """Seeds Python's ``random``, NumPy's global generator and so every fastmlp model
    created afterwards without an explicit ``seed`` (their seeds are drawn from NumPy).

    Args:
        seed: an integer >= 0.
    """
    seed = check_int(seed, "seed", minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def to_categorical(x, num_classes=None):
    """One-hot encodes integer class labels.

    Args:
        x: integer labels (any shape; a trailing axis of 1 is dropped).
        num_classes: the number of classes (default: largest label + 1).

    Returns:
        A float32 array of shape ``x.shape + (num_classes,)``.
    """
    labels = np.asarray(x)
    if labels.dtype.kind not in "biuf" or np.any(labels != np.round(labels)):
        raise ValueError(f"`x` must hold integer class labels. Received: x={x!r}")
    labels = labels.astype(np.int64)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.size and labels.min() < 0:
        raise ValueError(f"class labels must be >= 0; got {labels.min()}")
    largest = int(labels.max()) + 1 if labels.size else 0
    num_classes = largest if num_classes is None else check_int(num_classes, "num_classes", 1)
    if largest > num_classes:
        raise ValueError(f"label {largest - 1} does not fit num_classes={num_classes}")
    one_hot = np.zeros((labels.size, num_classes), dtype=np.float32)
    one_hot[np.arange(labels.size), labels.reshape(-1)] = 1
    return one_hot.reshape(labels.shape + (num_classes,))
