"""Process-wide numeric settings, as ``keras.backend`` names them.

Example:
    >>> from fastmlp import backend
    >>> backend.floatx()
    'float32'
    >>> backend.set_floatx("float64"); backend.floatx()
    'float64'
    >>> backend.set_floatx("float32")
"""

from ._validation import check_dtype

_FLOATX = "float32"


def floatx():
    """The default float type of new models: 'float32' (default) or 'float64'."""
    return _FLOATX


def set_floatx(value):
    """Sets the default float type of models created afterwards.

    Args:
        value: 'float32' or 'float64'.
    """
    global _FLOATX
    _FLOATX = check_dtype(value, "value").name


def epsilon():
    """The fuzz factor Keras uses to clip probabilities (1e-7)."""
    return 1e-7
