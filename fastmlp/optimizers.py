"""Optimizers with Keras 3's arguments, defaults and update rules.

The engine applies every update in C; an optimizer object holds the
hyper-parameters (which callbacks may change between epochs, such as
``learning_rate``). Keras 1's ``lr=`` and ``decay=`` (time-based decay
``lr / (1 + decay * iterations)``) are accepted too.

Example:
    >>> from fastmlp import optimizers
    >>> opt = optimizers.get("adam")
    >>> opt.learning_rate, opt.beta_1
    (0.001, 0.9)
    >>> optimizers.SGD(lr=0.1, momentum=0.9).learning_rate
    0.1
"""

from ._registry import Registry
from ._validation import check_float


class Optimizer:
    """Base of the optimizers: the arguments every optimizer shares.

    Args:
        learning_rate: step size (> 0).
        clipnorm: clip each weight tensor's gradient to this L2 norm.
        clipvalue: clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: clip the gradient of all weights together to this norm.
        decay: Keras 1's time-based learning-rate decay factor (>= 0).
        name: the optimizer's name.
        lr: Keras 1's name for ``learning_rate``.
    """

    engine_name = None

    def __init__(self, learning_rate, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 decay=0.0, name=None, lr=None):
        if lr is not None:
            learning_rate = lr
        self.learning_rate = learning_rate
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        given = [k for k, v in clips.items() if v is not None]
        if len(given) > 1:
            raise ValueError(f"Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be "
                             f"set. Received: {', '.join(f'{k}={clips[k]}' for k in given)}")
        for key, value in clips.items():
            setattr(self, key, None if value is None
                    else check_float(value, key, low=0.0, low_open=True))
        self.decay = check_float(decay, "decay", low=0.0)
        self.name = name or self.engine_name

    @property
    def learning_rate(self):
        """The step size; callbacks such as ReduceLROnPlateau set it between epochs."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = check_float(value, "learning_rate", low=0.0)

    lr = learning_rate

    def get_config(self):
        """All constructor arguments as plain data."""
        return {"name": self.name, "learning_rate": self.learning_rate, "decay": self.decay,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config):
        """Rebuilds the optimizer from :meth:`get_config`."""
        return cls(**config)

    def engine_config(self):
        """The hyper-parameters the engine reads (``get_config`` without the name)."""
        config = self.get_config()
        del config["name"]
        return config

    def __repr__(self):
        return f"{type(self).__name__}(learning_rate={self.learning_rate!r})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Example:
        >>> opt = SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
        >>> opt.get_config()["nesterov"]
        True
    """

    engine_name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = check_float(momentum, "momentum", low=0.0, high=1.0)
        self.nesterov = bool(nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba), optionally AMSGrad.

    Example:
        >>> Adam(beta_2=0.99).get_config()["beta_2"]
        0.99
    """

    engine_name = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = check_float(beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
        self.beta_2 = check_float(beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)
        self.amsgrad = bool(amsgrad)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum (the default of ``compile``).

    Example:
        >>> RMSprop(rho=0.95).get_config()["rho"]
        0.95
    """

    engine_name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = check_float(rho, "rho", low=0.0, high=1.0, high_open=True)
        self.momentum = check_float(momentum, "momentum", low=0.0, high=1.0)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)
        self.centered = bool(centered)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad.

    Example:
        >>> Adagrad().get_config()["initial_accumulator_value"]
        0.1
    """

    engine_name = "adagrad"

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = check_float(
            initial_accumulator_value, "initial_accumulator_value", low=0.0)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


_REGISTRY = Registry("optimizer", Optimizer)
for _cls in (SGD, Adam, RMSprop, Adagrad):
    _REGISTRY.register(_cls)


def get(identifier):
    """Resolves an optimizer: None → RMSprop() (``compile``'s default), a name
    ('sgd', 'adam', 'rmsprop', 'adagrad'), a serialized dict or an :class:`Optimizer`."""
    return RMSprop() if identifier is None else _REGISTRY.get(identifier)


def serialize(optimizer):
    """``{'class_name': ..., 'config': ...}`` of an optimizer."""
    return Registry.serialize(optimizer)
