"""One name registry per kind of identifier (activation, loss, optimizer, ...).

Resolution follows Keras's ``get`` functions: a string is looked up
case-insensitively (a registered class is instantiated with its defaults), a
``{'class_name': ..., 'config': ...}`` dict is deserialized, an instance of
the kind's base class passes through, and anything else is refused with
``ValueError("Could not interpret <kind> identifier: ...")``.

It also hands out Keras's automatic object names.
"""

import collections
import re

_NAME_COUNTS = collections.Counter()


def unique_name(cls):
    """Keras's automatic names: 'dense', 'dense_1', 'dense_2', ... per class."""
    base = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
    count = _NAME_COUNTS[base]
    _NAME_COUNTS[base] += 1
    return base if count == 0 else f"{base}_{count}"


class Registry:
    """Names and classes of one kind of object.

    Args:
        kind: what the objects are, for error messages ("optimizer").
        base: the class whose instances pass through ``get`` unchanged
            (None when the registered objects are plain functions).
    """

    def __init__(self, kind, base=None):
        self.kind = kind
        self.base = base
        self._by_name = {}
        self._shown = set()

    def register(self, obj, *aliases):
        """Registers ``obj`` under its ``__name__`` and each alias (returns ``obj``)."""
        for key in (obj.__name__, *aliases):
            self._by_name[key.lower()] = obj
        self._shown.update(aliases or (obj.__name__,))
        return obj

    def names(self):
        """The names to show users: the aliases, or the plain names, sorted."""
        return sorted(self._shown)

    def is_registered(self, obj):
        """Whether ``obj`` itself is registered (under its ``__name__``)."""
        return self._by_name.get(getattr(obj, "__name__", "").lower()) is obj

    def lookup(self, name):
        """The object registered as ``name`` (case-insensitive)."""
        try:
            return self._by_name[name.lower()]
        except KeyError:
            raise ValueError(f"Could not interpret {self.kind} identifier: {name!r}. "
                             f"Known names: {', '.join(self.names())}") from None

    def get(self, identifier):
        """Resolves a name, a serialized dict or an instance of ``base``."""
        if isinstance(identifier, str):
            obj = self.lookup(identifier)
            return obj() if isinstance(obj, type) else obj
        if isinstance(identifier, dict):
            return self.deserialize(identifier)
        if self.base is not None and isinstance(identifier, self.base):
            return identifier
        raise ValueError(f"Could not interpret {self.kind} identifier: {identifier!r}")

    @staticmethod
    def serialize(obj):
        """``{'class_name': ..., 'config': ...}`` of an object with ``get_config``."""
        return {"class_name": type(obj).__name__, "config": obj.get_config()}

    def deserialize(self, config):
        """Rebuilds an object from :meth:`serialize`'s output."""
        if set(config) != {"class_name", "config"}:
            raise ValueError(f"Could not interpret {self.kind} identifier: {config!r} "
                             "(expected a dict with keys 'class_name' and 'config')")
        cls = self.lookup(config["class_name"])
        return cls.from_config(config["config"])
