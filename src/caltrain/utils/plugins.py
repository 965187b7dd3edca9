"""Your own datasets, models, objectives and calibrators: entry points of installed packages and ``--import``.

Two ways to add components that caltrain then names like its own (``caltrain train --model mine``, a suite's
``model: {name: mine}``, ``caltrain.models.create("mine", ...)``):

**An installed package** declares them in the entry-point groups ``caltrain.datasets``, ``caltrain.models``,
``caltrain.losses`` and ``caltrain.calibrators``. One rule: *the entry point's name is the registry name and its
value is the factory*, ``module:attribute``::

    # pyproject.toml of the package "my-calibration"
    [project.entry-points."caltrain.models"]
    tiny_mlp = "my_calibration.models:tiny_mlp"

A registry loads its group lazily, once, the first time it is asked for its names or an entry (``import
caltrain`` imports no plugin). Loading fails loudly, with :class:`PluginError` naming the distribution and the
entry point: a module that cannot be imported, a value without ``:factory``, a name that is not lower case, or a
name that a built-in or another distribution already registered. A factory that registers itself under the same
name with ``@register`` in its module is accepted once.

**A module of your own**: ``caltrain train --import MODULE`` / ``caltrain bench --import MODULE`` (repeatable) or
a suite YAML's ``imports: [...]`` import a module before any configuration is built, so its ``@register``
calls are visible to validation. ``MODULE`` is a module name importable from the current directory or
``sys.path`` (``my_pkg.components``), or a path to a ``.py`` file (``path/to/components.py``), which is
imported once per process whatever the spelling of the path. :func:`import_modules` returns the imports as
they are recorded (module names as given, file paths absolute) in ``suite.json`` and each run's ``meta.json``;
:func:`shipped` packs them (with the files' source) for another process, e.g. a Ray worker on another machine,
which imports them again with :func:`import_shipped` before building its configuration.

Example:
    >>> import_module("caltrain.models")  # a module name is recorded as given; a .py path, absolute
    'caltrain.models'
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Sequence

__all__ = ["PluginError", "import_module", "import_modules", "import_shipped", "imported", "is_path",
           "load_entry_points", "record_in_meta", "shipped"]

#: The entry-point groups caltrain reads, by registry.
GROUPS = ("caltrain.datasets", "caltrain.models", "caltrain.losses", "caltrain.calibrators")

_BY_PATH: dict[str, ModuleType] = {}  # absolute file path -> module imported from it
_IMPORTED: list[str] = []  # what import_module imported in this process, as recorded


class PluginError(ImportError):
    """A plugin (an entry point or an ``--import`` module) that cannot be loaded; the message names it."""


def load_entry_points(registry: Any) -> None:
    """Register the factories of ``registry.entry_point_group`` (called once by the registry itself)."""
    from importlib.metadata import entry_points

    group = registry.entry_point_group
    decorator = registry.plugin_decorator or registry.register
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "an unknown distribution"
        where = f"plugin {ep.name!r} = {ep.value!r} (entry point group {group!r}) of distribution {dist!r}"
        if not ep.attr:
            raise PluginError(f"{where}: the value must name the factory as 'module:factory', not only a module")
        if ep.name != ep.name.lower():
            raise PluginError(f"{where}: the name must be lower case ({ep.name.lower()!r})")
        try:
            factory = ep.load()
        except Exception as err:
            raise PluginError(f"{where}: importing it failed: {type(err).__name__}: {err}") from err
        if ep.name in registry._entries:
            if registry._entries[ep.name] is factory:  # its module registered it itself under the same name
                registry._origins.setdefault(ep.name, f"distribution {dist!r}")
                continue
            prior = registry._origins.get(ep.name, "caltrain (a built-in)")
            raise PluginError(f"{where}: the {registry.kind} name {ep.name!r} is already registered by {prior}; "
                              "names must be unique: rename the entry point")
        try:
            decorator(ep.name)(factory)
        except Exception as err:
            raise PluginError(f"{where}: registering it failed: {type(err).__name__}: {err}") from err
        registry._origins[ep.name] = f"distribution {dist!r}"


def is_path(spec: str) -> bool:
    """Whether an import ``spec`` is a file path (ends with .py or holds a separator), not a module name."""
    return spec.endswith(".py") or os.sep in spec or (os.altsep is not None and os.altsep in spec)


def import_module(spec: str, *, base: str | os.PathLike | None = None) -> str:
    """Import one ``--import`` module (a module name or a ``.py`` path); return it as recorded.

    Args:
        spec: a dotted module name, or a path to a ``.py`` file (relative paths are relative to ``base``).
        base: the folder relative paths and module names are looked up from (default: the current directory).
    Raises:
        PluginError: no such module or file, or importing it raised (the message names ``spec``).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise PluginError(f"--import: expected a module name or a .py file, got {spec!r}")
    folder = Path(base) if base is not None else Path.cwd()
    if is_path(spec):
        path = (folder / Path(spec).expanduser()).resolve()
        if not path.is_file():
            raise PluginError(f"--import {spec}: no such file ({path})")
        if path.suffix != ".py":
            raise PluginError(f"--import {spec}: expected a .py file or a module name")
        _import_file(path, spec)
        recorded = str(path)
    else:
        if str(folder) not in sys.path:  # a module next to the user (the console script's sys.path lacks it)
            sys.path.insert(0, str(folder))
        try:
            importlib.import_module(spec)
        except ModuleNotFoundError as err:
            if err.name and spec.startswith(err.name):
                raise PluginError(f"--import {spec}: no module named {err.name!r} (looked in {folder} and sys.path; "
                                  "give a module name or a path to a .py file)") from err
            raise PluginError(f"--import {spec}: importing it failed: {type(err).__name__}: {err}") from err
        except Exception as err:
            raise PluginError(f"--import {spec}: importing it failed: {type(err).__name__}: {err}") from err
        recorded = spec
    if recorded not in _IMPORTED:
        _IMPORTED.append(recorded)
    return recorded


def _import_file(path: Path, spec: str) -> ModuleType:
    """Import the file at ``path`` once per process (a second import would register its names twice)."""
    key = str(path)
    if key in _BY_PATH:
        return _BY_PATH[key]
    name = path.stem if path.stem.isidentifier() else "plugin"
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() == path:
        _BY_PATH[key] = existing
        return existing
    if existing is not None:  # another module has that name: keep both
        name = f"{name}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise PluginError(f"--import {spec}: cannot import {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses, pickling and relative lookups need it there
    try:
        loader_spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise PluginError(f"--import {spec}: importing {path} failed: {type(err).__name__}: {err}") from err
    _BY_PATH[key] = module
    return module


def import_modules(specs: Iterable[str], *, base: str | os.PathLike | None = None) -> list[str]:
    """:func:`import_module` each of ``specs`` in order; the list as recorded (duplicates dropped)."""
    out: list[str] = []
    for spec in specs:
        recorded = import_module(spec, base=base)
        if recorded not in out:
            out.append(recorded)
    return out


def imported() -> list[str]:
    """Every module :func:`import_module` imported in this process, as recorded."""
    return list(_IMPORTED)


def shipped(imports: Sequence[str]) -> list[dict[str, Any]]:
    """``imports`` (as recorded) packed for another process: ``{"spec", "source"}``, with a file's source."""
    out = []
    for spec in imports:
        source = Path(spec).read_text() if is_path(spec) and Path(spec).is_file() else None
        out.append({"spec": spec, "source": source, "cwd": str(Path.cwd())})
    return out


def import_shipped(items: Sequence[dict[str, Any]]) -> list[str]:
    """Import what :func:`shipped` packed, in this process (a Ray worker); the imports as recorded.

    A file is imported from its path when that path holds the same source, else from a copy of the shipped
    source (a worker on another machine); a module name is imported from ``sys.path``, then from the folder
    the driver ran in.
    """
    out = []
    for item in items:
        spec, source = item["spec"], item.get("source")
        if source is not None:
            path = Path(spec)
            if not (path.is_file() and path.read_text() == source):
                digest = hashlib.sha1(source.encode()).hexdigest()[:12]
                copy = Path(tempfile.gettempdir()) / "caltrain-plugins" / digest / path.name
                copy.parent.mkdir(parents=True, exist_ok=True)
                if not copy.is_file():
                    copy.write_text(source)
                path = copy
            _import_file(path.resolve(), spec)
            if spec not in _IMPORTED:
                _IMPORTED.append(spec)
            out.append(spec)
        else:
            out.append(import_module(spec, base=item.get("cwd")))
    return out


def record_in_meta(run_root: str | os.PathLike, imports: Sequence[str]) -> None:
    """Add ``"imports": [...]`` to a run's ``meta.json`` (when it exists and ``imports`` is not empty)."""
    if not imports:
        return
    from caltrain.train.run_dir import RunDir
    from caltrain.utils.io import read_json

    run = RunDir(Path(run_root))
    if not run.meta.is_file():
        return
    meta = read_json(run.meta)
    if meta.get("imports") != list(imports):
        run.write_meta({**meta, "imports": list(imports)})
