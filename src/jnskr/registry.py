"""One small registry for everything the project looks up by name (models, KG models, ...).

    MODELS = Registry("KG model")

    @MODELS.register                      # a class or object with a `name` attribute
    class Thing: name = "thing"

    MODELS.register(spec)                 # or an object, under spec.name
    MODELS.register(obj, name="other")    # or under a given name
    MODELS.get("thing")                   # unknown names: one line, "unknown KG model 'x' (known: ...)"

A `Registry` is a read-only mapping (``MODELS[name]``, ``name in MODELS``, iteration in the order
of registration); `get` is the lookup for names that come from users.  Registering another object
under a taken name is a `ValueError` (a programming error); registering the same one again is a
no-op.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from jnskr.errors import JnskrError

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Mapping[str, T], Generic[T]):
    """Named objects of one kind.  `kind` names them in errors ("model", "KG model"); `error` is
    the `JnskrError` subclass raised for an unknown name."""

    def __init__(self, kind: str, error: type[JnskrError] = JnskrError):
        self.kind = kind
        self.error = error
        self._items: dict[str, T] = {}

    def register(self, obj: T | None = None, *, name: str | None = None):
        """Add `obj` under `name` (default ``obj.name``) and return it: a decorator or a call."""
        if obj is None:
            return lambda o: self.register(o, name=name)
        key = name if name is not None else getattr(obj, "name", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"a registered {self.kind} needs a non-empty name (got {key!r})")
        if key in self._items and self._items[key] is not obj:
            raise ValueError(f"{self.kind} name {key!r} registered twice")
        self._items[key] = obj
        return obj

    def get(self, name: str) -> T:  # type: ignore[override]  (no default: an unknown name is an error)
        """The object registered under `name`; an unknown name is a one-line `error` listing the known ones."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise self.error(f"unknown {self.kind} {name!r} (known: {', '.join(sorted(self._items))})") from None

    def names(self) -> list[str]:
        """The registered names, in the order of registration."""
        return list(self._items)

    def unregister(self, name: str) -> T:
        """Remove and return what is registered under `name` (a plugin's or a test's own entry)."""
        return self._items.pop(name)

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"
