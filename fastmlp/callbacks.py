"""Callbacks called during ``fit``, with Keras's names and arguments.

A callback subclasses :class:`Callback` and overrides the hooks it needs.
``fit`` calls ``on_train_begin``/``on_train_end`` and
``on_epoch_begin``/``on_epoch_end`` always; it calls the per-batch hooks
(``on_train_batch_*``, ``on_batch_*``) only when a callback overrides one,
and then trains one batch per engine call so each batch is reported.

Example:
    >>> import numpy as np
    >>> from fastmlp.models import Sequential
    >>> from fastmlp.layers import Dense
    >>> from fastmlp.callbacks import EarlyStopping
    >>> x = np.random.default_rng(0).normal(size=(64, 3)); y = x.sum(axis=1)
    >>> model = Sequential([Dense(1, input_dim=3)], seed=0)
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> history = model.fit(x, y, epochs=50, verbose=0, validation_split=0.25,
    ...                     callbacks=[EarlyStopping(patience=2)])
    >>> len(history.history["val_loss"]) <= 50
    True
"""

import math
import warnings

import numpy as np

from ._validation import check_float, check_int


class Callback:
    """Base of the callbacks; every hook does nothing.

    Attributes:
        model: the model being trained (set by ``fit``).
        params: ``{'verbose', 'epochs', 'steps'}`` of the current ``fit``.

    Example:
        >>> class Printer(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(epoch, sorted(logs))
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        """Called by ``fit`` with the model being trained."""
        self.model = model

    def set_params(self, params):
        """Called by ``fit`` with the run's parameters."""
        self.params = params

    def on_train_begin(self, logs=None):
        """Called once before the first epoch."""

    def on_train_end(self, logs=None):
        """Called once after the last epoch with its logs."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called before each epoch (0-based)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called after each epoch with its logs: 'loss', metrics, 'val_' versions."""

    def on_train_batch_begin(self, batch, logs=None):
        """Called before each batch (0-based within the epoch)."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after each batch with the running averages of the epoch."""
        self.on_batch_end(batch, logs=logs)

    def on_batch_begin(self, batch, logs=None):
        """Keras 1's name of :meth:`on_train_batch_begin`."""

    def on_batch_end(self, batch, logs=None):
        """Keras 1's name of :meth:`on_train_batch_end`."""


_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")


class CallbackList:
    """The callbacks of one ``fit``, called in order.

    Args:
        callbacks: a list of :class:`Callback` (or None).
        model: the model being trained.
        params: passed to each callback's ``set_params``.

    Attributes:
        history: the :class:`History` among the callbacks (one is appended if none is).
        per_batch: whether a callback overrides a per-batch hook.
        terminate_on_nan: whether a :class:`TerminateOnNaN` is among them.
    """

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks or ())
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"`callbacks` must be a list of fastmlp.callbacks.Callback; "
                                f"received {cb!r}")
        self.history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        if self.history is None:
            self.history = History()
            self.callbacks.append(self.history)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        self.per_batch = any(getattr(type(cb), hook) is not getattr(Callback, hook)
                             for cb in self.callbacks for hook in _BATCH_HOOKS)
        self.terminate_on_nan = any(isinstance(cb, TerminateOnNaN) for cb in self.callbacks)

    def call(self, hook, *args):
        """Calls ``hook(*args)`` on every callback."""
        for cb in self.callbacks:
            getattr(cb, hook)(*args)


class History(Callback):
    """Records the logs of each epoch; ``fit`` returns it.

    Attributes:
        history: ``{'loss': [...], 'accuracy': [...], 'val_loss': [...], ...}``.
        epoch: the epoch indices recorded.

    Example:
        >>> h = History(); h.on_train_begin(); h.on_epoch_end(0, {"loss": 0.5})
        >>> h.history
        {'loss': [0.5]}
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class TerminateOnNaN(Callback):
    """Stops training when the loss becomes NaN or infinite, as Keras does.

    The engine detects a non-finite loss inside a batch and skips that
    batch's update; with this callback ``fit`` prints ``Batch N: Invalid
    loss, terminating training`` and ends normally, keeping the weights of
    the last finite step. Without it, ``fit`` raises and restores the
    weights it started from.

    Example:
        >>> callbacks = [TerminateOnNaN()]
    """


def _monitor_op(monitor, mode, owner):
    """``np.less`` or ``np.greater`` for a monitored quantity, as Keras chooses it."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner} `mode` must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
    if mode == "auto":
        name = monitor[4:] if monitor.startswith("val_") else monitor
        mode = "max" if "acc" in name or name.startswith("fmeasure") else "min"
    return np.greater if mode == "max" else np.less


def _monitored(logs, monitor, owner):
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(f"{owner} is conditioned on metric `{monitor}` which is not available. "
                      f"Available metrics are: {', '.join(logs or {})}", stacklevel=3)
    return value


class EarlyStopping(Callback):
    """Stops training when a monitored quantity stops improving (Keras 3's rules).

    Args:
        monitor: the log key to watch ('val_loss').
        min_delta: smallest change that counts as an improvement.
        patience: epochs without improvement before stopping.
        verbose: 1 prints when it stops and restores.
        mode: 'min', 'max' or 'auto' (from the name).
        baseline: a value the quantity must beat to reset the patience.
        restore_best_weights: put back the weights of the best epoch at the end.
        start_from_epoch: epochs to wait before watching.

    Example:
        >>> stop = EarlyStopping(monitor="loss", patience=3, restore_best_weights=True)
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor = monitor
        self.monitor_op = _monitor_op(monitor, mode, "EarlyStopping")
        self.min_delta = abs(check_float(min_delta, "min_delta"))
        self.patience = check_int(patience, "patience", minimum=0)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = check_int(start_from_epoch, "start_from_epoch", minimum=0)
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.monitor_op is np.less else -math.inf
        self.best_weights = None
        self.best_epoch = 0

    def _is_improvement(self, value, reference):
        delta = -self.min_delta if self.monitor_op is np.less else self.min_delta
        return bool(self.monitor_op(value - delta, reference))

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model (or its weights) after each epoch.

    Args:
        filepath: the file to write; ``str.format`` fields ``{epoch}`` (1-based)
            and any log key, e.g. ``'model-{epoch:02d}-{val_loss:.2f}.npz'``.
        monitor: the log key compared when ``save_best_only``.
        verbose: 1 prints each save.
        save_best_only: save only when the monitored value improves.
        save_weights_only: write ``save_weights`` files instead of ``save``.
        mode: 'min', 'max' or 'auto'.
        save_freq: only 'epoch' is supported.
        initial_value_threshold: the value the first saved epoch must beat.

    Example:
        >>> checkpoint = ModelCheckpoint("best.npz", monitor="val_loss", save_best_only=True)
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__()
        if save_freq != "epoch":
            raise ValueError(f"ModelCheckpoint supports only save_freq='epoch'. "
                             f"Received: save_freq={save_freq!r}")
        self.filepath = str(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.monitor_op = _monitor_op(monitor, mode, "ModelCheckpoint")
        if initial_value_threshold is not None:
            self.best = float(initial_value_threshold)
        else:
            self.best = math.inf if self.monitor_op is np.less else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if current is None:
                return
            if not self.monitor_op(current, self.best):
                if self.verbose > 0:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self.best:.5f}")
                return
            if self.verbose > 0:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


def _set_learning_rate(model, value, owner):
    model.optimizer.learning_rate = check_float(value, f"{owner} learning rate", low=0.0)


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of each epoch from ``schedule``.

    Args:
        schedule: ``fn(epoch, lr) -> new lr`` (``fn(epoch)`` is accepted too).
        verbose: 1 prints each change.

    Example:
        >>> halve = LearningRateScheduler(lambda epoch, lr: lr if epoch < 10 else lr / 2)
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.model.optimizer.learning_rate
        try:
            lr = self.schedule(epoch, lr)
        except TypeError:
            lr = self.schedule(epoch)
        _set_learning_rate(self.model, lr, "LearningRateScheduler")
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when a quantity stops improving.

    Args:
        monitor: the log key to watch.
        factor: the multiplier (< 1).
        patience: epochs without improvement before reducing.
        verbose: 1 prints each reduction.
        mode: 'min', 'max' or 'auto'.
        min_delta: smallest change that counts as an improvement.
        cooldown: epochs to wait after a reduction.
        min_lr: the lower bound of the learning rate.

    Example:
        >>> reduce = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2)
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__()
        self.factor = check_float(factor, "factor", low=0.0, high=1.0, high_open=True)
        self.monitor = monitor
        self.patience = check_int(patience, "patience", minimum=0)
        self.verbose = verbose
        self.min_delta = check_float(min_delta, "min_delta", low=0.0)
        self.cooldown = check_int(cooldown, "cooldown", minimum=0)
        self.min_lr = check_float(min_lr, "min_lr", low=0.0)
        self.monitor_op = _monitor_op(monitor, mode, "ReduceLROnPlateau")
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.monitor_op is np.less else -math.inf
        self.cooldown_counter = 0
        self.wait = 0

    def _improved(self, current):
        if self.monitor_op is np.less:
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        logs["learning_rate"] = self.model.optimizer.learning_rate
        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = self.model.optimizer.learning_rate
                if old_lr > self.min_lr:
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    _set_learning_rate(self.model, new_lr, "ReduceLROnPlateau")
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
