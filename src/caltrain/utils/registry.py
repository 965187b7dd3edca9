"""Registries by name: losses, models, datasets and calibrators are looked up through one of these.

A registry maps a lower-case name to a factory (a class or a function). It fails loudly:

- registering a name twice raises (a silent override hides bugs);
- an unknown name raises ``KeyError`` listing every valid name;
- ``create(name, **kwargs)`` checks ``kwargs`` against the factory's signature, so a mistyped
  hyperparameter fails with the list of valid keys instead of a ``TypeError`` deep in a constructor.

Example:
    >>> reg = Registry("widget")
    >>> @reg.register("round")
    ... def make_round(*, radius: float = 1.0):
    ...     return ("round", radius)
    >>> reg.create("round", radius=2.0)
    ('round', 2.0)
    >>> reg.names()
    ['round']
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Generic, Iterator, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["Registry", "UnknownNameError"]


class UnknownNameError(KeyError, ValueError):
    """An unknown registry name. Subclasses both ``KeyError`` and ``ValueError`` so either catches it."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0]) if self.args else ""


class Registry(Generic[F]):
    """A name -> factory table for one kind of object (``kind`` is used in error messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator registering ``factory`` under ``name`` (lower case; duplicates raise ``ValueError``)."""
        if not isinstance(name, str) or not name or name != name.lower():
            raise ValueError(f"{self.kind} name must be a non-empty lower-case string, got {name!r}")

        def decorator(factory: F) -> F:
            if name in self._entries:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered (by {self._entries[name]!r}); "
                    "names must be unique"
                )
            self._entries[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> F:
        """The factory registered as ``name``; ``UnknownNameError`` (a ``KeyError``) listing valid names."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(name), self._entries, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Valid names: {', '.join(self.names())}"
            ) from None

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword parameters the factory accepts (its signature is its parameter schema)."""
        sig = inspect.signature(self.get(name))
        return {
            p.name: p
            for p in sig.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }

    def defaults(self, name: str) -> dict[str, Any]:
        """The factory's keyword parameters with their defaults (``inspect.Parameter.empty`` if required)."""
        return {k: p.default for k, p in self.parameters(name).items()}

    def check_kwargs(self, name: str, kwargs: dict[str, Any], *, reserved: tuple[str, ...] = ()) -> None:
        """Raise ``TypeError`` naming the bad keys and the valid ones if ``kwargs`` do not fit ``name``."""
        factory = self.get(name)
        sig = inspect.signature(factory)
        if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            return
        valid = [k for k in self.parameters(name) if k not in reserved]
        unknown = sorted(set(kwargs) - set(self.parameters(name)))
        if unknown:
            raise TypeError(
                f"{self.kind} {name!r} got unknown parameter(s) {', '.join(map(repr, unknown))}; "
                f"valid parameters: {', '.join(valid) if valid else '(none)'}"
            )

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Look up ``name`` and call its factory, after checking ``kwargs`` against its signature."""
        self.check_kwargs(name, kwargs)
        return self.get(name)(*args, **kwargs)
