"""Name -> component registries.

Every component family (channels, schemes, metrics, executors, ...) owns one
:class:`Registry`. A YAML ``type:`` field resolves through it, and an unknown
name fails with the list of valid ones instead of returning ``None``.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownComponentError(KeyError):
    """Raised for a name that is not registered; the message lists valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; we don't want that
        return str(self.args[0])


class Registry(Generic[T]):
    """A named family of components, e.g. ``Registry("channel")``.

    Register with the decorator form ``@CHANNELS.register("awgn")``.
    """

    def __init__(self, family: str):
        if not family:
            raise ValueError("family must be a non-empty string")
        self.family = family
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.family} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownComponentError(
                f"unknown {self.family} type {name!r}; valid: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
