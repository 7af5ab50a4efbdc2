"""Argument and data validation shared by every public entry point.

Each helper raises ``ValueError`` (or ``TypeError`` for a wrong kind of
object) with a message that names the argument and says what was expected,
so the checks read the same wherever they are used.
"""

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_int(value, name, minimum=None):
    """Returns ``value`` as an ``int``; rejects bools, floats and values below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer. Received: {name}={value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"`{name}` must be {kind}. Received: {name}={value}")
    return value


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """Returns ``value`` as a finite ``float`` inside the given (optionally open) bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number. Received: {name}={value!r}")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"
        raise ValueError(f"`{name}` must be a finite number in {interval}. "
                         f"Received: {name}={value!r}")
    return value


def check_dtype(dtype, name="dtype"):
    """Returns the numpy dtype for 'float32' or 'float64' (names, types or dtypes)."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in FLOAT_DTYPES:
        raise ValueError(f"`{name}` must be 'float32' or 'float64'. Received: {name}={dtype!r}")
    return resolved


def take_aliases(kwargs, aliases, values, defaults):
    """Moves Keras 1 argument names in ``kwargs`` onto their current names.

    ``values`` maps each current name to the value passed under it and
    ``defaults`` to its default; the updated ``values`` is returned.
    Raises ``TypeError`` for an argument given under both names and for
    any unknown keyword argument left over.
    """
    for old, new in aliases.items():
        if old in kwargs:
            if values[new] is not defaults[new]:
                raise TypeError(f"Got both `{old}` and its current name `{new}`")
            values[new] = kwargs.pop(old)
    if kwargs:
        raise TypeError(f"Unrecognized keyword argument(s): {', '.join(sorted(kwargs))}")
    return values


def check_verbose(verbose):
    """Keras's verbose: 0, 1, 2 or 'auto' (= 1)."""
    if verbose == "auto":
        return 1
    verbose = check_int(verbose, "verbose", minimum=0)
    if verbose > 2:
        raise ValueError(f"`verbose` must be 0, 1, 2 or 'auto'. Received: verbose={verbose}")
    return verbose


def _real_array(data, name):
    """``np.asarray(data)`` checked to hold real numbers (object arrays are converted)."""
    try:
        arr = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must be an array of real numbers: {exc}") from None
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            arr = None
    if arr is None or arr.dtype.kind not in "biuf":
        got = "objects" if arr is None else f"dtype {arr.dtype}"
        raise ValueError(f"`{name}` must hold real numbers (int, float or bool); got {got}")
    if arr.size == 0:
        raise ValueError(f"`{name}` is empty (shape {arr.shape}); at least one sample is needed")
    return arr


def _check_finite(arr, name):
    # A finite sum proves every element finite; only a non-finite sum (or an
    # overflow) pays for the element-wise scan that locates the bad value.
    # Huge finite values may overflow the sum: that is no reason to warn.
    with np.errstate(over="ignore", invalid="ignore"):
        total = arr.sum() if arr.dtype.kind == "f" else 0.0
    if not np.isfinite(total):
        bad = np.argwhere(~np.isfinite(arr))
        if len(bad):
            where = tuple(int(i) for i in bad[0])
            raise ValueError(f"`{name}` contains NaN or infinity (first at index {where}, "
                             f"value {arr[where]!r}); remove or impute those values")


def as_features(x, dtype, name="x", n_features=None):
    """Converts ``x`` to a 2-D finite array of ``dtype``.

    An array that already has ``dtype`` is returned as is, whatever its
    strides (Fortran order, slices, read-only and memory-mapped arrays are
    used without a copy); anything else is converted once.
    """
    arr = _real_array(x, name)
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D (n_samples, n_features); got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"`{name}` has {arr.shape[1]} features but the model expects "
                         f"{n_features} (input shape (None, {n_features}))")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is reported below
        arr = arr.astype(dtype, copy=False)
    _check_finite(arr, name)
    return arr


def _check_rows(arr, name, n_rows):
    if len(arr) != n_rows:
        raise ValueError(f"x and `{name}` have different numbers of samples: "
                         f"x has {n_rows}, {name} has {len(arr)}")


def as_targets(y, loss_name, n_out, dtype, n_rows, name="y"):
    """Validates targets against the loss and the output width.

    Returns ``(t, labels)``: ``t`` a C-contiguous ``(n, n_out)`` array of
    ``dtype`` and ``labels`` None, or, for the sparse loss, ``t`` None and
    ``labels`` a 1-D int64 array of class indices.
    """
    arr = _real_array(y, name)
    _check_rows(arr, name, n_rows)
    _check_finite(arr, name)
    if loss_name == "sparse_categorical_crossentropy":
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise ValueError(f"sparse_categorical_crossentropy expects integer class labels of "
                             f"shape (n,); `{name}` has shape {arr.shape} (one-hot targets "
                             f"go with loss='categorical_crossentropy')")
        if arr.dtype.kind == "f" and np.any(arr != np.round(arr)):
            sample = arr[arr != np.round(arr)][0]
            raise ValueError(f"sparse_categorical_crossentropy expects integer class labels; "
                             f"`{name}` holds non-integer values such as {sample!r}")
        low, high = arr.min(), arr.max()
        if low < 0 or high >= n_out:
            raise ValueError(f"`{name}` labels must lie in [0, {n_out}) for an output layer of "
                             f"{n_out} units; got labels from {low:g} to {high:g}")
        return None, np.ascontiguousarray(arr, dtype=np.int64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be 1-D or 2-D; got shape {arr.shape}")
    if arr.shape[1] != n_out:
        if loss_name == "categorical_crossentropy":
            hint = (" (for integer labels use fastmlp.utils.to_categorical(y) or "
                    "loss='sparse_categorical_crossentropy')" if arr.shape[1] == 1 else "")
            raise ValueError(f"categorical_crossentropy expects one-hot targets of width {n_out} "
                             f"(the output layer's units); `{name}` has width {arr.shape[1]}{hint}")
        raise ValueError(f"`{name}` has {arr.shape[1]} column(s) but the output layer has "
                         f"{n_out} unit(s)")
    if loss_name in ("binary_crossentropy", "categorical_crossentropy"):
        if arr.min() < 0 or arr.max() > 1:
            values = np.unique(arr)
            shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if len(values) > 5 else "")
            hint = (f"; for {len(values)} classes use a softmax output with "
                    "categorical_crossentropy" if loss_name == "binary_crossentropy"
                    and len(values) <= 100 and np.all(values == np.round(values)) else "")
            raise ValueError(f"{loss_name} expects targets in [0, 1]; `{name}` holds "
                             f"{len(values)} distinct values ({shown}){hint}")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is reported below
        arr = np.ascontiguousarray(arr, dtype=dtype)
    _check_finite(arr, name)
    return arr, None


def as_sample_weight(sample_weight, dtype, n_rows):
    """Validates per-sample weights: 1-D, one per row, finite and non-negative (or None)."""
    if sample_weight is None:
        return None
    weight = _real_array(sample_weight, "sample_weight")
    if weight.ndim == 2 and weight.shape[1] == 1:
        weight = weight[:, 0]
    if weight.ndim != 1:
        raise ValueError(f"`sample_weight` must be 1-D (n_samples,); got shape {weight.shape}")
    _check_rows(weight, "sample_weight", n_rows)
    _check_finite(weight, "sample_weight")
    if weight.min() < 0:
        raise ValueError("`sample_weight` must be non-negative")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is reported below
        weight = np.ascontiguousarray(weight, dtype=dtype)
    _check_finite(weight, "sample_weight")
    return weight


def class_weight_per_row(class_weight, t, labels):
    """The weight of each row's class from a ``{class index: weight}`` dict (1 if absent).

    The class of a row is its label (sparse loss), the argmax of its one-hot
    target, or its rounded single target (one output), as Keras decides it.
    """
    if not isinstance(class_weight, dict):
        raise TypeError(f"`class_weight` must be a dict {{class index: weight}}. "
                        f"Received: class_weight={class_weight!r}")
    for key, value in class_weight.items():
        check_int(key, "class_weight key")
        check_float(value, f"class_weight[{key}]", low=0.0)
    if labels is not None:
        classes = labels
    elif t.shape[1] > 1:
        classes = t.argmax(axis=1)
    else:
        classes = np.round(t[:, 0]).astype(np.int64)
    if not class_weight:
        return np.ones(len(classes))
    keys = np.array(sorted(class_weight), dtype=np.int64)
    table = np.array([class_weight[k] for k in keys], dtype=np.float64)
    pos = np.searchsorted(keys, classes).clip(max=len(keys) - 1)
    return np.where(keys[pos] == classes, table[pos], 1.0)
