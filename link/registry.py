"""Name -> component registries.

Every component family (channels, schemes, metrics, executors, ...) owns one
:class:`Registry`. A YAML ``type:`` field resolves through it, and an unknown
name fails with the list of valid ones instead of returning ``None``.

:meth:`Registry.check_spec` validates a nested spec (``{type: vlm, path: ...}``)
before anything runs, without loading weights: the type, the keys (against the
component's signature), and then the component's own check -- the
``check_weights`` classmethod of a component registered with ``weights=``
(the model files' layout), or one cheap construction of a weight-free one.
Every problem is a one-line ``ValueError`` starting with the field path.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

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


@dataclass(frozen=True)
class SpecKeys:
    """The keys a spec may give a component: ``allowed`` (None = any, the component
    takes ``**kwargs`` it does not list) and ``required`` (no default)."""

    allowed: tuple[str, ...] | None
    required: tuple[str, ...]


def spec_keys(obj) -> SpecKeys:
    """Keys of ``obj``'s signature (a class: its ``__init__``; a factory: its own).

    A component whose ``**kwargs`` take a known set of names lists them in a
    ``spec_extra_keys`` attribute; a component with parameters that a spec cannot
    give (live objects such as pipes) lists them in ``spec_hidden_keys``.
    """
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: anything goes
        return SpecKeys(None, ())
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    hidden = set(getattr(obj, "spec_hidden_keys", ()))
    extra = getattr(obj, "spec_extra_keys", None)
    open_kwargs = any(p.kind == p.VAR_KEYWORD for p in params) and extra is None
    allowed = [p.name for p in named if p.name not in hidden] + list(extra or ())
    required = tuple(p.name for p in named if p.default is p.empty)
    return SpecKeys(None if open_kwargs else tuple(allowed), required)


def bound_params(obj, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` completed with the defaults of ``obj``'s signature (for ``check_weights``)."""
    sig = inspect.signature(obj)
    out = {p.name: p.default for p in sig.parameters.values()
           if p.default is not p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    out.update(params)
    return out


def _brief(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _message(e: BaseException) -> str:
    if isinstance(e, KeyError) and not isinstance(e, UnknownComponentError) and len(e.args) == 1:
        return _one_line(e.args[0])
    return _one_line(str(e)) or type(e).__name__


_LEAD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(:\s*|\s)")


def _located(where: str, message: str, keys) -> str:
    """``where.key: rest`` when ``message`` starts with ``key:`` (or names ``key`` as its
    first word) and ``key`` is one of the component's parameters, else ``where: message``."""
    m = _LEAD.match(message)
    if m and m.group(1) in keys:
        rest = message[m.end():] if m.group(2).startswith(":") else message
        return f"{where}.{m.group(1)}: {rest}"
    return f"{where}: {message}"


def _problem(where: str, e: BaseException, keys, params: dict) -> str:
    """One line for a component's own refusal; a TypeError that names no key (e.g. a
    comparison of a string with a number) lists the values given."""
    line = _located(where, _message(e), keys)
    if isinstance(e, TypeError) and line.startswith(f"{where}: ") and params:
        line += f" (given {', '.join(f'{k}={_brief(v, 30)}' for k, v in params.items())})"
    return line


def _check_no_bools(obj, params: Mapping[str, Any], where: str) -> None:
    """``true``/``false`` given for a parameter whose annotation names no ``bool`` is
    refused (Python would take it for 1 or 0)."""
    try:
        sig = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return
    for key, value in params.items():
        p = sig.get(key)
        if not isinstance(value, bool) or p is None or p.annotation is p.empty:
            continue
        ann = p.annotation if isinstance(p.annotation, str) else getattr(
            p.annotation, "__name__", str(p.annotation))
        if "bool" not in ann and "Any" not in ann:
            raise ValueError(f"{where}.{key}: expected {ann}, not {str(value).lower()}")


class Registry(Generic[T]):
    """A named family of components, e.g. ``Registry("channel")``.

    Register with the decorator form ``@CHANNELS.register("awgn")``; components
    that need weights or optional packages say so (``weights=``, ``packages=``),
    which ``lgvsc list`` reports.

    ``check_weights=True``: every component registered with ``weights=`` must
    define a ``check_weights(**params)`` classmethod (checked at registration),
    which :meth:`check_spec` calls to validate the model files without loading them.
    """

    def __init__(self, family: str, *, check_weights: bool = False):
        if not family:
            raise ValueError("family must be a non-empty string")
        self.family = family
        self.checks_weights = bool(check_weights)
        self._items: dict[str, T] = {}
        self._needs: dict[str, Requirements] = {}

    def register(self, name: str, *, weights: str = "",
                 packages: tuple[str, ...] = ()) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.family} {name!r} is already registered")
            checker = getattr(obj, "check_weights", None)
            if weights and self.checks_weights and not callable(checker):
                raise TypeError(f"{self.family} {name!r} is registered with weights= but "
                                f"{getattr(obj, '__name__', obj)!r} has no check_weights "
                                "classmethod (it validates the model files without loading them)")
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
        except (KeyError, TypeError):  # TypeError: an unhashable name from YAML
            raise UnknownComponentError(
                f"unknown {self.family} type {name!r}; valid: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._items
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    # -- spec checks -----------------------------------------------------------
    def check_spec(self, spec, where: str, supplied: tuple[str, ...] = ()) -> None:
        """Validate a nested spec ``{type: <name>, <param>: <value>, ...}`` without
        loading weights; raises ``ValueError`` with one line starting with ``where``.

        :param where: the spec's field path, e.g. ``"schemes[2].scorer"``.
        :param supplied: parameters the scheme fills at run time (e.g. the ``given``
            captioner's ``captions``): not required in the spec, and refused there.

        In order: a mapping; ``type`` present and registered; every key a parameter of
        the component; every required parameter given (or supplied); then, for a
        component registered with ``weights=``, its ``check_weights(**params)``
        classmethod (model files' layout, parameter values); for a weight-free one,
        one construction with the params (skipped when a supplied parameter or a
        package is missing). Missing optional packages are not an error here.
        """
        valid = ", ".join(self.names())
        if not isinstance(spec, Mapping):
            raise ValueError(f"{where}: expected a mapping with type: one of {valid}; "
                             f"got {_brief(spec)}")
        if "type" not in spec or spec["type"] is None:
            raise ValueError(f"{where}.type: missing required field; valid: {valid}")
        kind = spec["type"]
        if not isinstance(kind, str) or kind not in self:
            raise ValueError(f"{where}.type: unknown {self.family} type {_brief(kind)}; "
                             f"valid: {valid}")
        obj = self._items[kind]
        params = {k: v for k, v in spec.items() if k != "type"}
        keys = spec_keys(obj)
        self._check_keys(kind, params, keys, where, tuple(supplied))
        _check_no_bools(obj, params, where)
        req = self._needs[kind]
        known = set(keys.allowed or ()) | set(keys.required) | set(params)
        if req.weights:
            check = getattr(obj, "check_weights", None)
            if check is None:
                return  # a registry that does not ask for weight checks
            try:
                check(**params)
            except (TypeError, ValueError) as e:
                raise ValueError(_problem(where, e, known, params)) from None
            return
        takes = set(keys.allowed or ()) | set(keys.required)
        if set(supplied) & takes or req.missing_packages():
            return  # cannot be built here; nothing more to check
        try:
            obj(**params)
        except (TypeError, ValueError, LookupError) as e:
            raise ValueError(_problem(where, e, known, params)) from None

    def _check_keys(self, kind: str, params: dict, keys: SpecKeys, where: str,
                    supplied: tuple[str, ...]) -> None:
        allowed = None if keys.allowed is None else [k for k in keys.allowed if k not in supplied]
        for key in params:
            if not isinstance(key, str):
                raise ValueError(f"{where}: keys must be strings, got {_brief(key)}")
            if key in supplied:
                raise ValueError(f"{where}.{key}: filled in by the scheme at run time; "
                                 "remove it from the spec")
            if allowed is not None and key not in allowed:
                raise ValueError(f"{where}.{key}: unknown key for {self.family} {kind!r}; "
                                 f"allowed: {', '.join(allowed) or '(none)'}")
        for key in keys.required:
            if key not in params and key not in supplied:
                raise ValueError(f"{where}.{key}: missing required field")
