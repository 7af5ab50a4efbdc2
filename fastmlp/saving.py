"""Model files: one zip archive (NumPy's ``.npz`` layout), read without unpickling.

A model file holds a ``header`` member, the UTF-8 JSON of the architecture,
the compile settings and the format version (stored as a uint8 array), then
the weights (``weight_0``, ``weight_1``, ... in ``get_weights`` order), the
optimizer state and iteration count, and the shuffling generator's state. A
weights file holds the header and the weights only.

Files are written atomically: to a temporary file in the same directory,
flushed to disk, then renamed over the target. Reading uses
``numpy.load(allow_pickle=False)``; a truncated, corrupt or foreign file
raises ``ValueError`` naming the file.

Example:
    >>> import os, tempfile
    >>> from fastmlp.models import Sequential, load_model
    >>> from fastmlp.layers import Dense
    >>> model = Sequential([Dense(1, input_dim=2)], seed=0)
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> model.save(path)
    >>> [w.shape for w in load_model(path).get_weights()]
    [(2, 1), (1,)]
"""

import json
import os
import secrets

import numpy as np

from ._version import __version__

MODEL_FORMAT = "fastmlp-model"
WEIGHTS_FORMAT = "fastmlp-weights"
FORMAT_VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"


def _write(filepath, header, arrays):
    """Writes ``header`` (JSON) and ``arrays`` as one .npz archive, atomically."""
    path = os.fspath(filepath)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    payload = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, header=payload, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _read(filepath, expected_format):
    """Returns (header, arrays) of a file written by :func:`_write`.

    Raises:
        OSError: when the file cannot be opened.
        ValueError: when it is not a readable fastmlp file of ``expected_format``.
    """
    path = os.fspath(filepath)
    with open(path, "rb") as f:
        if f.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            raise ValueError(f"{path!r} is not a fastmlp file (it is not a zip archive)")
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as npz:
                header = json.loads(bytes(npz["header"]).decode("utf-8"))
                arrays = {key: npz[key] for key in npz.files if key != "header"}
        except Exception as exc:
            raise ValueError(f"{path!r} is truncated, corrupt or not a fastmlp file "
                             f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(header, dict) or header.get("format") not in (MODEL_FORMAT, WEIGHTS_FORMAT):
        raise ValueError(f"{path!r} is not a fastmlp file (no fastmlp header)")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path!r} was written by a newer fastmlp (format version "
                         f"{header['format_version']}); upgrade fastmlp to read it")
    if expected_format == MODEL_FORMAT and header["format"] != MODEL_FORMAT:
        raise ValueError(f"{path!r} holds weights only; read it with model.load_weights()")
    return header, arrays


def _weights_of(arrays, header, path):
    count = header.get("n_weights")
    try:
        return [arrays[f"weight_{i}"] for i in range(count)]
    except (KeyError, TypeError):
        raise ValueError(f"{path!r} is corrupt: its weight arrays are incomplete") from None


def _header(model, file_format):
    return {"format": file_format, "format_version": FORMAT_VERSION,
            "fastmlp_version": __version__, "class_name": type(model).__name__,
            "config": model.get_config(), "n_weights": len(model.get_weights())}


def save_model(model, filepath):
    """Writes ``model`` (architecture, compile settings, weights, optimizer state)."""
    header = _header(model, MODEL_FORMAT)
    header["compile"] = model._compile_config()
    arrays = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    if model.built:
        header["seed"] = model._resolved_seed()
        arrays["rng_state"] = model._shuffle_state()
    if model._engine is not None and model.compiled:
        arrays["optimizer_state"] = model._engine.opt_state
        arrays["iterations"] = np.array(model._engine.iterations, dtype=np.int64)
    _write(filepath, header, arrays)


def load_model(filepath, compile=True):
    """Reads a model written by ``model.save(filepath)``.

    Args:
        filepath: the file.
        compile: whether to compile it as it was saved (optimizer state included).

    Returns:
        The model, of the class it was saved from (Sequential or MLP).
    """
    from .models import Sequential
    from .mlp import MLP

    path = os.fspath(filepath)
    header, arrays = _read(path, MODEL_FORMAT)
    classes = {"Sequential": Sequential, "MLP": MLP}
    try:
        config = header["config"]
        model = classes[header["class_name"]].from_config({**config, "input_dim": None})
        model._seed_value = header.get("seed")
        if config["input_dim"] is not None:
            model.build(config["input_dim"])
        if compile and header.get("compile"):
            model.compile(**header["compile"])
        weights = _weights_of(arrays, header, path)
        if weights:
            model.set_weights(weights)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path!r} holds an invalid model description "
                         f"({type(exc).__name__}: {exc})") from exc
    if "rng_state" in arrays:
        model._rng_state = arrays["rng_state"].astype(np.uint64)
    if compile and model.compiled and "optimizer_state" in arrays:
        engine = model._ensure_engine()
        state = arrays["optimizer_state"]
        if state.shape != engine.opt_state.shape:
            raise ValueError(f"{path!r} is corrupt: optimizer state of shape {state.shape}, "
                             f"expected {engine.opt_state.shape}")
        engine.opt_state[...] = state
        engine.iterations = int(arrays["iterations"])
    return model


def save_weights(model, filepath):
    """Writes the weights of ``model`` alone."""
    arrays = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    _write(filepath, _header(model, WEIGHTS_FORMAT), arrays)


def load_weights(model, filepath):
    """Sets the weights of ``model`` from a weights or model file (shapes checked)."""
    path = os.fspath(filepath)
    header, arrays = _read(path, WEIGHTS_FORMAT)
    weights = _weights_of(arrays, header, path)
    try:
        model.set_weights(weights)
    except ValueError as exc:
        raise ValueError(f"The weights in {path!r} do not fit model {model.name!r}: {exc}") \
            from exc
