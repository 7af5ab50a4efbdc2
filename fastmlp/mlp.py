"""MLP: the one object that owns the C engine.

:class:`MLP` holds a stack of Dense/Dropout layers, the loss, the optimizer,
the metrics, the float type and the seed, and the ``fastmlp._core.Engine``
with the flat parameter buffer it trains. The Keras-style
:class:`fastmlp.models.Sequential` and the estimators built on fastmlp are
facades over it, so there is one training loop and one backpropagation.

Each Dense layer's ``kernel`` and ``bias`` are views into the engine's
parameter buffer while the engine exists, so layer-level ``get_weights`` /
``set_weights`` and the model's see the same numbers.
"""

import contextlib
import threading
import time
import weakref

import numpy as np

from . import _core, callbacks as callbacks_module, losses, metrics as metrics_module
from . import activations, layers as layers_module, optimizers, saving
from ._config import get_num_threads
from ._progbar import Progbar
from ._validation import (as_features, as_sample_weight, as_targets, check_dtype, check_float,
                          check_int, check_verbose, class_weight_per_row)
from .backend import floatx
from .cuda import engine_class, resolve_device
from ._registry import unique_name
from .layers import Dense, Dropout, InputLayer, Layer

#: Seconds of work the engine runs between two returns to Python (progress bar, callbacks,
#: Ctrl-C). The engine keeps the epoch's running sums itself, so where the chunks split
#: never changes the logged values: a fit's history is bitwise reproducible.
CHUNK_SECONDS = 0.1
#: The first chunk's length is guessed from this many floating-point operations.
CHUNK_FLOPS = 4e8


class NonFiniteLossError(FloatingPointError, ValueError):
    """The training loss became NaN or infinite; ``fit`` restored the weights it started from."""


class _Data:
    """A validated data set: features, then targets or labels, then sample weights."""

    __slots__ = ("x", "t", "labels", "weight")

    def __init__(self, x, t, labels, weight):
        self.x, self.t, self.labels, self.weight = x, t, labels, weight

    def __len__(self):
        return len(self.x)

    def _rows(self, rows):
        return _Data(*(None if a is None else a[rows] for a in
                       (self.x, self.t, self.labels, self.weight)))

    def split(self, fraction):
        """(first rows, last ``fraction`` of rows), as Keras's ``validation_split``."""
        at = int(len(self) * (1.0 - fraction))
        if at in (0, len(self)):
            raise ValueError(f"validation_split={fraction} leaves no "
                             f"{'training' if at == 0 else 'validation'} samples out of "
                             f"{len(self)}")
        return self._rows(slice(None, at)), self._rows(slice(at, None))

    def with_class_weight(self, class_weight):
        """The same data with each row's weight multiplied by its class's weight."""
        per_row = class_weight_per_row(class_weight, self.t, self.labels)
        weight = per_row if self.weight is None else self.weight * per_row
        return _Data(self.x, self.t, self.labels, weight.astype(self.x.dtype))


def _logs(names, loss_sum, n, num, den):
    """The logs dict: mean loss, then each metric's weighted mean."""
    logs = {"loss": loss_sum / n if n else float("nan")}
    for name, a, b in zip(names, num, den):
        logs[name] = float(a / b) if b else float("nan")
    return logs


def _batches_per_chunk(units, batch_size):
    """First guess of batches per engine call: CHUNK_FLOPS of work (6 flops per weight)."""
    flops = 6 * batch_size * sum(a * b for a, b in zip(units[:-1], units[1:]))
    return max(1, int(CHUNK_FLOPS // flops))


def _next_chunk(count, seconds):
    """Batches per call that would take about CHUNK_SECONDS at the speed just measured."""
    if seconds <= 0:
        return count * 2
    return max(1, min(int(count * CHUNK_SECONDS / seconds), count * 4))


_TRAINING_LOCK = threading.Lock()
_TRAINING = weakref.WeakKeyDictionary()  # model -> [thread id, depth] inside fit() and co.


@contextlib.contextmanager
def _training(model):
    """Marks ``model`` as training for the block; refuses a training call on it from another
    thread meanwhile (before it could touch the weights, or restore them under the first).
    The training thread itself may nest calls (a callback's train_on_batch)."""
    me = threading.get_ident()
    with _TRAINING_LOCK:
        owner = _TRAINING.get(model)
        if owner is not None and owner[0] != me:
            raise RuntimeError("this model is already training in another thread; train one "
                               "model from one thread at a time")
        if owner is None:
            _TRAINING[model] = owner = [me, 0]
        owner[1] += 1
    try:
        yield
    finally:
        with _TRAINING_LOCK:
            owner[1] -= 1
            if owner[1] == 0:
                del _TRAINING[model]


def _result(logs, return_dict):
    """Keras's return value: the dict, the loss alone, or [loss, metric, ...]."""
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


class MLP:
    """A multi-layer perceptron trained by the C engine.

    Args:
        layers: Dense and Dropout layers (an :func:`fastmlp.layers.Input`
            may come first).
        loss: if given, the model is compiled at once with ``loss``,
            ``optimizer`` and ``metrics`` (see :meth:`compile`).
        optimizer: an optimizer name or object.
        metrics: a list of metric names or objects.
        dtype: 'float32' or 'float64' (default: ``fastmlp.backend.floatx()``).
        seed: seeds the initial weights, the shuffling and dropout; when
            None, a seed is drawn from NumPy's global generator when the
            model is built, so ``numpy.random.seed`` makes runs reproducible.
        name: the model's name.
        device: where it trains and predicts: 'cpu' (the default), 'cuda' (the
            current CUDA GPU, through Numba: ``pip install "fastmlp[cuda]"``) or
            'auto' (the GPU when one is usable, else the CPU); see :attr:`device`.

    Example:
        >>> import numpy as np
        >>> from fastmlp import MLP
        >>> from fastmlp.layers import Dense
        >>> x = np.random.default_rng(0).normal(size=(200, 4)); y = (x[:, 0] > 0) * 1.0
        >>> model = MLP([Dense(8, activation="relu"), Dense(1, activation="sigmoid")],
        ...             loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"],
        ...             seed=0)
        >>> history = model.fit(x, y, epochs=100, batch_size=16)
        >>> model.evaluate(x, y)[1] > 0.9
        True
    """

    def __init__(self, layers=None, loss=None, optimizer="rmsprop", metrics=None, dtype=None,
                 seed=None, name=None, device="cpu"):
        self.name = str(name) if name is not None else unique_name(type(self))
        self.dtype = check_dtype(floatx() if dtype is None else dtype)
        self.seed = None if seed is None else check_int(seed, "seed", minimum=0)
        self._layers = []
        self._input_width = None
        self._engine = None
        self._device = resolve_device(device)
        self._pushed_optimizer = None
        self._seed_value = None
        self._rng_state = None
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.compiled = False
        self.stop_training = False
        self.history = None
        for layer in layers or ():
            self.add(layer)
        if loss is not None:
            self.compile(optimizer=optimizer, loss=loss, metrics=metrics)

    # ------------------------------------------------------------ structure
    @property
    def layers(self):
        """The Dense and Dropout layers, in order."""
        return list(self._layers)

    @property
    def built(self):
        """Whether the input width, hence every weight, is known."""
        return self._input_width is not None and bool(self._dense_layers())

    @property
    def input_shape(self):
        """``(None, n_features)``, or None before the input width is known."""
        return None if self._input_width is None else (None, self._input_width)

    @property
    def output_shape(self):
        """``(None, units of the last Dense layer)``."""
        dense = self._dense_layers()
        if not dense:
            raise ValueError(f"Model {self.name!r} has no Dense layer yet")
        return (None, dense[-1].units)

    def _dense_layers(self):
        return [layer for layer in self._layers if isinstance(layer, Dense)]

    def add(self, layer):
        """Appends a layer (an :class:`~fastmlp.layers.InputLayer` only first).

        Raises:
            TypeError: if ``layer`` is not a fastmlp layer.
            ValueError: for a repeated layer name or a misplaced Input.
        """
        if not isinstance(layer, Layer):
            raise TypeError(f"The added layer must be a fastmlp layer (Dense, Dropout or Input). "
                            f"Received: layer={layer!r} of type {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            if self._layers or self._input_width is not None:
                raise ValueError("An Input must be the first layer of the model")
            self._input_width = layer.input_dim
            return
        if any(other.name == layer.name for other in self._layers):
            raise ValueError(f"All layers of a model must have unique names; "
                             f"{layer.name!r} is already used")
        previous_width = self._input_width
        if not self._layers and layer.input_dim is not None:
            if self._input_width not in (None, layer.input_dim):
                raise ValueError(f"Layer {layer.name!r} declares input_dim={layer.input_dim} "
                                 f"but the model's Input has {self._input_width} features")
            self._input_width = layer.input_dim
        self._layers.append(layer)
        try:
            self._structure_changed()
        except (ValueError, MemoryError):
            self._layers.pop()
            self._input_width = previous_width
            raise

    def pop(self):
        """Removes and returns the last layer."""
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        layer = self._layers.pop()
        self._structure_changed()
        return layer

    def build(self, input_shape):
        """Creates the weights for inputs of shape ``(None, n_features)``.

        Args:
            input_shape: ``(None, n_features)``, ``(n_features,)`` or an int.
        """
        width = input_shape if isinstance(input_shape, int) else tuple(input_shape)[-1]
        width = check_int(width, "input_shape", minimum=1)
        if self._input_width not in (None, width):
            raise ValueError(f"Model {self.name!r} is built for {self._input_width} input "
                             f"features. Received: input_shape={input_shape!r}")
        previous, self._input_width = self._input_width, width
        try:
            self._structure_changed()
        except (ValueError, MemoryError):
            self._input_width = previous
            raise

    def _resolved_seed(self):
        if self._seed_value is None:
            self._seed_value = (self.seed if self.seed is not None
                                else int(np.random.randint(0, 2**31 - 1)))
        return self._seed_value

    def _structure_changed(self):
        """Drops the engine and builds the layers whose input width is now known.

        What can fail is checked first (the widths, and the memory the weights would
        take), so a refused change leaves the weights and the optimizer state as they were.
        """
        self._check_structure()
        self._detach_engine()
        if self._input_width is None:
            return
        width = self._input_width
        for index, layer in enumerate(self._layers):
            if layer.input_dim not in (None, width):
                raise ValueError(f"Layer {layer.name!r} declares input_dim={layer.input_dim} "
                                 f"but receives {width} features")
            if isinstance(layer, Dense) and (not layer.built or layer.kernel.shape[0] != width):
                rng = np.random.default_rng([self._resolved_seed(), index])
                layer.build(width, self.dtype, rng)
            width = layer.output_width(width)

    def _check_structure(self):
        """ValueError for a layer whose input_dim contradicts its input, MemoryError for
        weights that cannot fit in memory (a Dense(10**12), say): before anything changes."""
        if self._input_width is None:
            return
        width, n_params = self._input_width, 0
        for layer in self._layers:
            if layer.input_dim not in (None, width):
                raise ValueError(f"Layer {layer.name!r} declares input_dim={layer.input_dim} "
                                 f"but receives {width} features")
            if isinstance(layer, Dense):
                n_params += width * layer.units + layer.units
            width = layer.output_width(width)
        # the engine holds the weights, their gradients and three slots of optimizer state
        _core._check_bytes(5 * n_params * self.dtype.itemsize,
                           f"the {n_params} weights of model {self.name!r}")

    def _detach_engine(self):
        """Gives the layers their own copies of the weights and drops the engine."""
        if self._engine is None:
            return
        for layer in self._dense_layers():
            layer.kernel = layer.kernel.copy()
            if layer.bias is not None:
                layer.bias = layer.bias.copy()
        self._engine = None

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"Model {self.name!r} has not been built yet, so {what} is not "
                             "possible: give the first layer input_dim=... (or start with "
                             "Input(shape=(n,))), call build((None, n)), or fit it first")

    def _ensure_engine(self):
        """The engine, created from the layers when needed (weights copied in)."""
        if self._engine is not None:
            return self._engine
        self._require_built("running it")
        if isinstance(self._layers[-1], Dropout):
            raise ValueError(f"Dropout layer {self._layers[-1].name!r} is the last layer: fastmlp "
                             "applies dropout to the input of the next Dense layer, so a model "
                             "must end with a Dense layer")
        dense, dropout, keep = [], [], 1.0
        for layer in self._layers:
            if isinstance(layer, Dropout):
                keep *= 1.0 - layer.rate
            else:
                dense.append(layer)
                dropout.append(1.0 - keep)
                keep = 1.0
        act_names = [layer.activation.__name__ for layer in dense]
        kernel_reg = [layer.kernel_regularizer for layer in dense]
        bias_reg = [layer.bias_regularizer for layer in dense]
        loss_name = losses.engine_name(self.loss) if self.loss is not None else "mean_squared_error"
        engine = engine_class(self._device)(
            [self._input_width] + [layer.units for layer in dense],
            [_core.ACTIVATIONS[name] for name in act_names],
            [activations.DEFAULT_ALPHA.get(name, 0.0) for name in act_names],
            [layer.use_bias for layer in dense],
            dropout,
            [r.l1 if r else 0.0 for r in kernel_reg],
            [r.l2 if r else 0.0 for r in kernel_reg],
            _core.LOSSES[loss_name],
            self.dtype,
            bias_l1=[r.l1 if r else 0.0 for r in bias_reg],
            bias_l2=[r.l2 if r else 0.0 for r in bias_reg])
        if self.compiled:
            engine.set_metrics([_core.METRICS[m.engine_name] for m in self.metrics])
            engine.set_optimizer(_core.OPTIMIZERS[self.optimizer.engine_name],
                                 self.optimizer.engine_config())
            engine.reset_optimizer_state()
            self._pushed_optimizer = self.optimizer.engine_config()
        params = engine.params
        for layer, (w_off, shape, b_off) in zip(dense, engine.layout()):
            kernel = params[w_off:w_off + shape[0] * shape[1]].reshape(shape)
            kernel[...] = layer.kernel
            layer.kernel = kernel
            if b_off >= 0:
                bias = params[b_off:b_off + shape[1]]
                bias[...] = layer.bias
                layer.bias = bias
        self._engine = engine
        return engine

    @property
    def device(self):
        """Where the model trains and predicts: 'cpu' or 'cuda'.

        Assigning 'cpu', 'cuda' or 'auto' moves the weights and the optimizer state. The
        device is not part of :meth:`get_config`: a saved model loads on the CPU.

        Raises:
            ValueError: for another name; ImportError or RuntimeError for 'cuda' without
                the ``[cuda]`` extra or without a usable GPU (the message says which).
        """
        return self._device

    @device.setter
    def device(self, device):
        device = resolve_device(device)
        if device == self._device:
            return
        engine = self._engine
        self._detach_engine()
        self._device = device
        if engine is not None and self.compiled:
            moved = self._ensure_engine()
            moved.opt_state[...] = engine.opt_state
            moved.iterations = engine.iterations

    def _sync_optimizer(self):
        """Hands the optimizer's hyper-parameters to the engine if they changed."""
        config = self.optimizer.engine_config()
        if config != self._pushed_optimizer:
            self._engine.set_optimizer(_core.OPTIMIZERS[self.optimizer.engine_name], config)
            self._pushed_optimizer = config

    def _shuffle_state(self):
        if self._rng_state is None:
            self._rng_state = _core.seed_rng(self._resolved_seed())
        return self._rng_state

    # -------------------------------------------------------------- weights
    def count_params(self):
        """The number of weights."""
        self._require_built("counting its parameters")
        return sum(layer.count_params() for layer in self._layers)

    def get_weights(self):
        """Copies of the weights in Keras order: kernel then bias of each Dense layer."""
        return [w for layer in self._layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Sets every weight from a list in :meth:`get_weights`'s order.

        Raises:
            ValueError: for a wrong number of arrays or a wrong shape (the
                model is unchanged then).
        """
        self._require_built("setting its weights")
        weights = list(weights)
        dense = self._dense_layers()
        expected = sum(layer.n_weights for layer in dense)
        if len(weights) != expected:
            raise ValueError(f"set_weights expects {expected} arrays (the kernel and bias of "
                             f"each Dense layer, in order); received {len(weights)}")
        checked, start = [], 0
        for layer in dense:
            checked.append(layer.check_weights(weights[start:start + layer.n_weights]))
            start += layer.n_weights
        for layer, values in zip(dense, checked):
            layer.assign_weights(values)

    # ------------------------------------------------------------ compiling
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Chooses the optimizer, the loss and the metrics; resets the optimizer state.

        Args:
            optimizer: a name ('sgd', 'adam', 'rmsprop', 'adagrad') or an
                :mod:`fastmlp.optimizers` object.
            loss: a name ('mse', 'mae', 'sse', 'binary_crossentropy',
                'categorical_crossentropy', 'sparse_categorical_crossentropy')
                or a :mod:`fastmlp.losses` object.
            metrics: a list of names ('accuracy', 'mse', ...) or metric objects.
        """
        optimizer = optimizers.get(optimizer)
        loss = losses.get(loss)
        if isinstance(metrics, (str, metrics_module.Metric)):
            metrics = [metrics]
        dense = self._dense_layers()
        loss_name = losses.engine_name(loss) if loss is not None else None
        resolved = [metrics_module.get(m, loss_name, dense[-1].units if dense else None)
                    for m in metrics or ()]
        for metric in resolved:
            if (metric.engine_name == "sparse_categorical_accuracy") != (
                    loss_name == "sparse_categorical_crossentropy"):
                raise ValueError(f"Metric {metric.name!r} does not fit loss {loss_name!r}: "
                                 "integer labels (sparse_categorical_crossentropy) allow only "
                                 "sparse categorical accuracy, which needs that loss")
        names = [m.name for m in resolved]
        if len(set(names + ["loss"])) != len(names) + 1:
            raise ValueError(f"Metric names must be unique and differ from 'loss'. "
                             f"Received: metrics={metrics!r}")
        self.optimizer, self.loss, self.metrics = optimizer, loss, resolved
        self.compiled = True
        self._detach_engine()

    @property
    def metrics_names(self):
        """``['loss', <metric names>...]``, the order of ``evaluate``'s list."""
        return ["loss"] + [m.name for m in self.metrics]

    def _require_loss(self, method):
        if not self.compiled:
            raise ValueError(f"You must call `compile()` before calling `{method}()`.")
        if self.loss is None:
            raise ValueError(f"The model was compiled without a loss; call "
                             f"`compile(optimizer, loss=...)` before calling `{method}()`.")

    def _compile_config(self):
        if not self.compiled:
            return None
        return {"optimizer": optimizers.serialize(self.optimizer),
                "loss": None if self.loss is None else losses.serialize(self.loss),
                "metrics": [metrics_module.serialize(m) for m in self.metrics]}

    # ------------------------------------------------------------------ data
    def _dataset(self, x, y, sample_weight=None, names=("x", "y")):
        """Validates and converts (x, y, sample_weight) once; builds the model if needed."""
        x = as_features(x, self.dtype, names[0], n_features=self._input_width)
        if self._input_width is None:
            self.build(x.shape[1])
        self._ensure_engine()
        t, labels = as_targets(y, losses.engine_name(self.loss), self._dense_layers()[-1].units,
                               self.dtype, len(x), names[1])
        return _Data(x, t, labels, as_sample_weight(sample_weight, self.dtype, len(x)))

    def _validation_dataset(self, validation_data):
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("`validation_data` must be a tuple (x_val, y_val) or "
                             "(x_val, y_val, val_sample_weight)")
        return self._dataset(*validation_data[:2], *validation_data[2:],
                             names=("validation_data[0]", "validation_data[1]"))

    def _prepare(self, batch_size):
        engine = self._engine
        engine.set_num_threads(get_num_threads())
        engine.prepare(batch_size)
        return engine

    # --------------------------------------------------------------- training
    def fit(self, x, y, epochs=1, batch_size=32, verbose=0, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch=0):
        """Trains the model for ``epochs`` passes over (x, y).

        The data is validated and converted to the model's float type once.
        Each epoch shuffles the rows (if ``shuffle``) and the engine trains
        runs of mini-batches (the last one partial) in C, returning to Python
        about every 0.1 s (see ``CHUNK_SECONDS``) for the progress bar, the
        callbacks and Ctrl-C; per-batch callbacks get one batch per run. With
        nothing to run between epochs (``verbose=0``, no validation, no
        callbacks) a run spans whole epochs, shuffles included: the same bits.

        Args:
            x: features, ``(n_samples, n_features)``: an array of any real
                dtype and memory layout, a list or a pandas DataFrame.
            y: targets: ``(n,)`` or ``(n, n_out)``; integer labels ``(n,)``
                for sparse_categorical_crossentropy.
            epochs: the index of the last epoch (>= 0).
            batch_size: samples per gradient step (>= 1).
            verbose: 0 silent, 1 progress bar, 2 one line per epoch.
            callbacks: a list of :class:`fastmlp.callbacks.Callback`.
            validation_split: the fraction of the last rows held out (taken
                before shuffling) and evaluated after each epoch.
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight)``;
                overrides ``validation_split``.
            shuffle: whether to shuffle the rows before each epoch.
            class_weight: ``{class index: weight}`` multiplying sample weights.
            sample_weight: one non-negative weight per row.
            initial_epoch: the epoch to start at (to resume training).

        Returns:
            A :class:`fastmlp.callbacks.History`.

        Raises:
            ValueError: for invalid arguments or data; NonFiniteLossError
                (a FloatingPointError and ValueError) when the loss becomes
                NaN or infinite. On any error the weights, optimizer state and
                shuffling state are put back as they were before ``fit``.
            KeyboardInterrupt: re-raised after Ctrl-C, with the weights of
                the last completed step kept.
        """
        self._require_loss("fit")
        epochs = check_int(epochs, "epochs", minimum=0)
        initial_epoch = check_int(initial_epoch, "initial_epoch", minimum=0)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        verbose = check_verbose(verbose)
        validation_split = check_float(validation_split, "validation_split", low=0.0, high=1.0,
                                       high_open=True)
        train = self._dataset(x, y, sample_weight)
        val = None
        if validation_data is not None:
            val = self._validation_dataset(validation_data)
        elif validation_split:
            train, val = train.split(validation_split)
        if class_weight is not None:
            train = train.with_class_weight(class_weight)
        engine = self._engine
        # a batch larger than the data set is the whole data set: no workspace beyond it
        batch_size = min(batch_size, len(train))
        n_batches = -(-len(train) // batch_size)
        cbs = callbacks_module.CallbackList(
            callbacks, self, {"verbose": verbose, "epochs": epochs, "steps": n_batches})
        with _training(self):
            rng_state = self._shuffle_state()
            snapshot = (engine.params.copy(), engine.opt_state.copy(), engine.iterations,
                        rng_state.copy())
            try:
                self._fit_loop(train, val, epochs, initial_epoch, batch_size, n_batches,
                               verbose, shuffle, cbs)
            except Exception:
                engine.params[...] = snapshot[0]
                engine.opt_state[...] = snapshot[1]
                engine.iterations = snapshot[2]
                rng_state[...] = snapshot[3]
                raise
        self.history = cbs.history
        return cbs.history

    def _fit_loop(self, train, val, epochs, initial_epoch, batch_size, n_batches, verbose,
                  shuffle, cbs):
        engine = self._prepare(batch_size)
        x, t, labels, weight = train.x, train.t, train.labels, train.weight
        order = np.arange(len(train), dtype=np.int64)
        rng_state = self._shuffle_state()
        seed = self._resolved_seed()
        names = self.metrics_names[1:]
        chunk = 1 if cbs.per_batch else _batches_per_chunk(engine.units, batch_size)
        logs = {}
        self.stop_training = False
        cbs.call("on_train_begin", logs)
        first = initial_epoch
        if (not verbose and val is None and len(cbs.callbacks) == 1
                and type(cbs.history) is callbacks_module.History
                and chunk >= n_batches and hasattr(engine, "train_epochs")):
            # short epochs and nothing to run between them but the History: whole epochs
            # per engine call
            self._sync_optimizer()
            first, logs = self._fit_epochs(train, epochs, initial_epoch, n_batches, batch_size,
                                           shuffle, order, rng_state, seed, names, chunk, cbs)
        for epoch in range(first, epochs):
            cbs.call("on_epoch_begin", epoch, {})
            self._sync_optimizer()
            if shuffle:
                _core.shuffle(order, rng_state)
            bar = None
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
                bar = Progbar(len(train), verbose)
            totals = engine.new_totals()
            loss_sum, seen, num, den = 0.0, 0, np.zeros(len(names)), np.zeros(len(names))
            batch = 0
            while batch < n_batches and not self.stop_training:
                count = min(chunk, n_batches - batch)
                if cbs.per_batch:
                    cbs.call("on_train_batch_begin", batch, {})
                start = time.perf_counter()
                status, loss_sum, seen, num, den, bad_batch = engine.train(
                    x, t, labels, weight, order, batch, count, batch_size, seed, totals)
                if not cbs.per_batch:
                    chunk = _next_chunk(count, time.perf_counter() - start)
                if status != 0:
                    self._nonfinite_loss(epoch, epochs, bad_batch, cbs.terminate_on_nan)
                batch += count
                if cbs.per_batch or bar is not None:
                    logs = _logs(names, loss_sum, seen, num, den)
                    if cbs.per_batch:
                        cbs.call("on_train_batch_end", batch - 1, logs)
                    if bar is not None:
                        bar.update(seen, logs)
            logs = _logs(names, loss_sum, seen, num, den)
            if val is not None:
                val_logs = self._evaluate_data(val, batch_size)
                logs.update({f"val_{key}": value for key, value in val_logs.items()})
            cbs.call("on_epoch_end", epoch, logs)
            if bar is not None:
                bar.update(seen, logs, finalize=True)
            if self.stop_training:
                break
        cbs.call("on_train_end", logs)

    def _fit_epochs(self, train, epochs, initial_epoch, n_batches, batch_size, shuffle, order,
                    rng_state, seed, names, chunk, cbs):
        """Epochs of a fit with only a History to call, as runs of whole epochs per engine call
        of about CHUNK_SECONDS (so Ctrl-C still lands): the same bits as one call per epoch.
        Returns the next epoch and its logs; stops early, for the per-batch loop to go on,
        once an epoch takes longer than CHUNK_SECONDS."""
        engine = self._engine
        per_call = max(1, chunk // n_batches)  # epochs in the first call
        nm, mm = len(names), _core.MAX_METRICS
        logs = {}
        epoch = initial_epoch
        # the only callback is a plain History (the condition under which _fit_loop comes
        # here): its on_epoch_begin is a no-op, its on_epoch_end is called directly
        history = cbs.history
        assert cbs.callbacks == [history] and type(history) is callbacks_module.History

        def record(rows):
            nonlocal epoch, logs
            for row in rows.tolist():  # Python floats: no NumPy scalar or view per value
                logs = _logs(names, row[0], int(row[1]), row[2:2 + nm], row[2 + mm:2 + mm + nm])
                history.on_epoch_end(epoch, logs)
                epoch += 1

        while epoch < epochs:
            count = min(per_call, epochs - epoch)
            rows = np.zeros((count, 2 + 2 * mm))
            first_iteration = engine.iterations
            start = time.perf_counter()
            try:
                status, stats, done, bad_batch = engine.train_epochs(
                    train.x, train.t, train.labels, train.weight, order,
                    rng_state if shuffle else None, count, batch_size, seed, rows)
            except KeyboardInterrupt:  # raised as the call returned: keep its epochs' logs
                record(rows[:(engine.iterations - first_iteration) // n_batches])
                raise
            seconds = time.perf_counter() - start
            record(stats)
            if status != 0:
                self._nonfinite_loss(epoch, epochs, bad_batch, False)
            if seconds > CHUNK_SECONDS * count:
                break  # epochs too long for one call each: the per-batch loop goes on
            per_call = max(1, _next_chunk(count, seconds))
        return epoch, logs

    def _nonfinite_loss(self, epoch, epochs, bad_batch, terminate_on_nan):
        """Stops training (TerminateOnNaN) or raises for a NaN/inf batch loss."""
        if not terminate_on_nan:
            raise NonFiniteLossError(
                f"The loss became NaN or infinite at epoch {epoch + 1}/{epochs}, batch "
                f"{bad_batch} (0-based); the model's weights were restored to their values "
                "before fit(). Try a smaller learning rate, scaled inputs, or gradient "
                "clipping (clipnorm=...)")
        print(f"Batch {bad_batch}: Invalid loss, terminating training")
        self.stop_training = True

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One gradient step on (x, y) as a single batch.

        Returns:
            The loss (or ``[loss, metrics...]``, or a dict) computed on the
            batch before the step.
        """
        self._require_loss("train_on_batch")
        data = self._dataset(x, y, sample_weight)
        if class_weight is not None:
            data = data.with_class_weight(class_weight)
        with _training(self):
            engine = self._prepare(len(data))
            self._sync_optimizer()
            order = np.arange(len(data), dtype=np.int64)
            status, loss_sum, n, num, den, _ = engine.train(
                data.x, data.t, data.labels, data.weight, order, 0, 1, len(data),
                self._resolved_seed())
        if status != 0:
            raise NonFiniteLossError("The loss of this batch is NaN or infinite; the step "
                                     "was not applied")
        return _result(_logs(self.metrics_names[1:], loss_sum, n, num, den), return_dict)

    # ------------------------------------------------------------- inference
    def _evaluate_data(self, data, batch_size):
        loss_sum, n, num, den = self._engine.evaluate(data.x, data.t, data.labels, data.weight,
                                                      batch_size)
        return _logs(self.metrics_names[1:], loss_sum, n, num, den)

    def evaluate(self, x, y, batch_size=32, verbose=0, sample_weight=None, return_dict=False):
        """The loss and metrics on (x, y), without dropout.

        Returns:
            The loss alone when no metrics were compiled, else a list ordered
            as :attr:`metrics_names` (or a dict with ``return_dict=True``).
        """
        self._require_loss("evaluate")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        verbose = check_verbose(verbose)
        data = self._dataset(x, y, sample_weight)
        batch_size = min(batch_size, len(data))  # no workspace beyond the data set
        self._prepare(batch_size)
        bar = Progbar(len(data), verbose) if verbose else None
        logs = self._evaluate_data(data, batch_size)
        if bar is not None:
            bar.update(len(data), logs, finalize=True)
        return _result(logs, return_dict)

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """The loss and metrics on (x, y) as a single batch."""
        self._require_loss("test_on_batch")
        data = self._dataset(x, y, sample_weight)
        self._prepare(len(data))
        return _result(self._evaluate_data(data, len(data)), return_dict)

    def predict(self, x, batch_size=32, verbose=0):
        """The outputs for ``x``: an array ``(n_samples, units of the last layer)``."""
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        verbose = check_verbose(verbose)
        self._require_built("predict()")
        x = as_features(x, self.dtype, "x", n_features=self._input_width)
        self._ensure_engine()
        batch_size = min(batch_size, len(x))  # no workspace beyond the data set
        engine = self._prepare(batch_size)
        bar = Progbar(len(x), verbose) if verbose else None
        out = np.empty((len(x), self._dense_layers()[-1].units), dtype=self.dtype)
        engine.predict(x, out, batch_size)
        if bar is not None:
            bar.update(len(x), finalize=True)
        return out

    # ---------------------------------------------------------------- config
    def get_config(self):
        """The architecture as plain data (weights not included)."""
        return {"name": self.name, "dtype": self.dtype.name, "seed": self.seed,
                "input_dim": self._input_width,
                "layers": [layers_module.serialize(layer) for layer in self._layers]}

    @classmethod
    def from_config(cls, config):
        """Rebuilds a model from :meth:`get_config` (with fresh weights)."""
        config = dict(config)
        layers = [layers_module.deserialize(entry) for entry in config.pop("layers")]
        input_dim = config.pop("input_dim")
        model = cls(layers, **config)
        if input_dim is not None:
            model.build(input_dim)
        return model

    # ---------------------------------------------------------------- saving
    def save(self, filepath):
        """Writes the architecture, compile settings, weights and optimizer state
        to one file, atomically (see :func:`fastmlp.models.load_model`)."""
        saving.save_model(self, filepath)

    def save_weights(self, filepath):
        """Writes the weights alone to one file, atomically."""
        saving.save_weights(self, filepath)

    def load_weights(self, filepath):
        """Reads weights written by :meth:`save_weights` (or :meth:`save`)."""
        saving.load_weights(self, filepath)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} layers={len(self._layers)}>"
