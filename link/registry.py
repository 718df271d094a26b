"""Name -> component registries.

Every component family (channels, schemes, metrics, executors, ...) owns one
:class:`Registry`. A YAML ``type:`` field resolves through it, and an unknown
name fails with the list of valid ones instead of returning ``None``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownComponentError(KeyError):
    """Raised for a name that is not registered; the message lists valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; we don't want that
        return str(self.args[0])


@dataclass(frozen=True)
class Requirements:
    """What a component needs beyond lgvsc's own install: ``weights`` (how to point it
    at local weights, empty for embedded components) and importable ``packages``."""

    weights: str = ""
    packages: tuple[str, ...] = ()

    def missing_packages(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]


class Registry(Generic[T]):
    """A named family of components, e.g. ``Registry("channel")``.

    Register with the decorator form ``@CHANNELS.register("awgn")``; components
    that need weights or optional packages say so (``weights=``, ``packages=``),
    which ``lgvsc list`` reports.
    """

    def __init__(self, family: str):
        if not family:
            raise ValueError("family must be a non-empty string")
        self.family = family
        self._items: dict[str, T] = {}
        self._needs: dict[str, Requirements] = {}

    def register(self, name: str, *, weights: str = "",
                 packages: tuple[str, ...] = ()) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.family} {name!r} is already registered")
            self._items[name] = obj
            self._needs[name] = Requirements(weights, tuple(packages))
            return obj

        return decorator

    def requirements(self, name: str) -> Requirements:
        self.get(name)
        return self._needs[name]

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
