"""Registries by name: losses, models, datasets and calibrators are looked up through one of these.

A registry maps a lower-case name to a factory (a class or a function). It fails loudly:

- registering a name twice raises (a silent override hides bugs);
- an unknown name raises ``KeyError`` listing every valid name;
- ``create(name, **kwargs)`` checks ``kwargs`` against the factory's signature, so a mistyped
  hyperparameter fails with the list of valid keys instead of a ``TypeError`` deep in a constructor;
  :meth:`Registry.call` checks that the factory accepts every keyword caltrain passes (a plugin factory
  written for another signature fails with what caltrain passes and what the factory accepts).

A registry built with ``entry_points="caltrain.models"`` (say) also holds the factories that installed
packages declare in that entry-point group (:mod:`caltrain.utils.plugins`: the entry point's name is the
registry name, its value the factory, ``pkg.module:factory``). They are loaded lazily, once, the first time the
registry is asked for its names or an entry (registering never loads them), so ``import caltrain`` stays fast.

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

    def __init__(self, kind: str, *, entry_points: str | None = None, signature: str = "(**options)") -> None:
        """``entry_points``: the entry-point group whose factories join the registry (lazily, see the module
        docstring); ``signature``: how caltrain calls a factory, shown when one does not fit."""
        self.kind = kind
        self.entry_point_group = entry_points
        self.signature = signature
        #: how a plugin's factory is registered (``register``-like: name -> decorator); ``register`` by default.
        self.plugin_decorator: Callable[[str], Callable[[F], F]] | None = None
        self._entries: dict[str, F] = {}
        self._origins: dict[str, str] = {}  # name -> the distribution that registered it (plugins only)
        self._plugins_loaded = entry_points is None
        self._plugin_error: BaseException | None = None

    def _load_plugins(self) -> None:
        """Register the entry points of :attr:`entry_point_group` (once; a failure is raised again each time)."""
        if self._plugin_error is not None:
            raise self._plugin_error
        if self._plugins_loaded:
            return
        self._plugins_loaded = True  # first: a plugin module that asks this registry for names must not recurse
        from caltrain.utils.plugins import load_entry_points

        try:
            load_entry_points(self)
        except Exception as err:
            self._plugin_error = err
            raise

    def origin(self, name: str) -> str:
        """Who registered ``name``: ``distribution 'x'`` for a plugin entry point, else the factory's module."""
        if name in self._origins:
            return self._origins[name]
        factory = self.get(name)
        return f"module {getattr(factory, '__module__', '?')}"

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator registering ``factory`` under ``name`` (lower case; duplicates raise ``ValueError``)."""
        if not isinstance(name, str) or not name or name != name.lower():
            raise ValueError(f"{self.kind} name must be a non-empty lower-case string, got {name!r}")

        def decorator(factory: F) -> F:
            if name in self._entries:
                origin = self._origins.get(name)
                by = f"{_describe(self._entries[name])}" + (f" of {origin}" if origin else "")
                raise ValueError(
                    f"{self.kind} {name!r} is already registered (by {by}); names must be unique"
                )
            self._entries[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._entries)

    def get(self, name: str) -> F:
        """The factory registered as ``name``; ``UnknownNameError`` (a ``KeyError``) listing valid names."""
        self._load_plugins()
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

    def check_call(self, name: str, kwargs: dict[str, Any], *, passed: tuple[str, ...] = ()) -> None:
        """Raise ``TypeError`` unless ``name``'s factory can be called with the keywords ``kwargs``.

        ``passed`` are the keywords caltrain itself passes (the others are the user's options). The message names
        the factory and its module, the keywords caltrain passes and the ones the factory accepts, so a plugin
        written for another signature says what to change instead of a bare ``TypeError`` in the call.
        """
        factory = self.get(name)
        try:
            sig = inspect.signature(factory)
        except (TypeError, ValueError):  # a builtin without a signature: let the call decide
            return
        try:
            sig.bind(**kwargs)
        except TypeError as err:
            accepted = [
                ("**" if p.kind == p.VAR_KEYWORD else "*" if p.kind == p.VAR_POSITIONAL else "") + p.name
                + ("" if p.default is p.empty or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) else "=...")
                for p in sig.parameters.values()
            ]
            options = [k for k in kwargs if k not in passed]
            given = ", ".join(k for k in passed if k in kwargs) or "(nothing)"
            raise TypeError(
                f"{self.kind} {name!r}: its factory {_describe(factory)} cannot take what caltrain passes ({err}). "
                f"caltrain passes the keywords {given}"
                + (f" and the options {', '.join(options)}" if options else "")
                + f"; the factory accepts ({', '.join(accepted)}). A {self.kind} factory is called as "
                f"{self.signature}"
            ) from None

    def call(self, name: str, /, *, passed: tuple[str, ...] = (), returns: type | None = None, **kwargs: Any) -> Any:
        """Call ``name``'s factory with ``kwargs`` after :meth:`check_call` (``passed``: caltrain's own keywords).

        With ``returns``, a result of another type (a plugin factory that forgot its ``return``) raises
        ``TypeError`` naming the factory, instead of failing later in the trainer."""
        self.check_call(name, kwargs, passed=passed)
        factory = self.get(name)
        out = factory(**kwargs)
        if returns is not None and not isinstance(out, returns):
            expected = ("torch.nn.Module" if returns.__module__.startswith("torch.nn.")
                        else f"{returns.__module__}.{returns.__qualname__}")
            raise TypeError(f"{self.kind} {name!r}: its factory {_describe(factory)} returned {type(out).__name__}, "
                            f"expected a {expected}")
        return out

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Look up ``name`` and call its factory, after checking ``kwargs`` against its signature."""
        self.check_kwargs(name, kwargs)
        if not args:
            self.check_call(name, kwargs)
        return self.get(name)(*args, **kwargs)


def _describe(factory: Any) -> str:
    """``module.qualname`` of a factory (its ``repr`` when it has none)."""
    qualname = getattr(factory, "__qualname__", None)
    module = getattr(factory, "__module__", None)
    return f"{module}.{qualname}" if qualname and module else repr(factory)
