"""Calibrators by registry name: ``names()``, ``create(name, **options)``, ``load(path)``.

Every calibrator is a :class:`~caltrain.posthoc.base.Calibrator` subclass registered in :data:`CALIBRATORS`
with keyword-only hyperparameters; its constructor's signature is its option schema, so a mistyped option
fails with the list of valid ones.

Example:
    >>> names(num_classes=3)
    ['ats', 'dirichlet', 'ets', 'histogram', 'isotonic', 'matrix', 'ts', 'ts-grid-ece', 'vector']
    >>> create("ts", t_max=50.0)
    TemperatureScaling(t_min=0.01, t_max=50.0, tol=1e-10, abstention=None)
"""

from __future__ import annotations

import os
from typing import Any, Callable

from caltrain.posthoc.base import Calibrator, load_json
from caltrain.utils.registry import Registry

__all__ = ["CALIBRATORS", "create", "load", "names", "register"]

#: name -> calibrator class.
CALIBRATORS: Registry[Callable[..., Calibrator]] = Registry(
    "calibrator", entry_points="caltrain.calibrators", signature="(**options) -> Calibrator"
)


def register(name: str) -> Callable[[type[Calibrator]], type[Calibrator]]:
    """Class decorator registering a calibrator under ``name`` (and setting its ``name`` attribute)."""

    def decorator(cls: type[Calibrator]) -> type[Calibrator]:
        CALIBRATORS.register(name)(cls)
        cls.name = name
        return cls

    return decorator


CALIBRATORS.plugin_decorator = register  # an entry point's class gets its name attribute too


def names(*, num_classes: int | None = None) -> list[str]:
    """Every registered calibrator name, sorted; with ``num_classes`` > 2, the binary-only ones are left out."""
    out = CALIBRATORS.names()
    if num_classes is not None and num_classes > 2:
        out = [n for n in out if not CALIBRATORS.get(n).binary_only]
    return out


def create(name: str, **options: Any) -> Calibrator:
    """A new, unfitted calibrator ``name`` with ``options`` (its constructor's keyword arguments).

    Raises:
        UnknownNameError: unknown ``name`` (the message lists the valid names).
        TypeError: an option the calibrator does not take (the message lists the valid ones).
    """
    return CALIBRATORS.create(name, **options)


def load(path: str | os.PathLike) -> Calibrator:
    """A fitted calibrator read from a file written by ``Calibrator.save(path)``.

    The file is read as JSON (never unpickled) and checked entirely before use (the format tag, the calibrator
    name, its hyperparameters and every fitted value: :meth:`Calibrator.load_state_dict`); a bad one raises
    ``ValueError`` naming ``path`` and the field.
    """
    state = load_json(path)
    name = state.get("name")
    if not isinstance(name, str) or name not in CALIBRATORS.names():
        raise ValueError(
            f"{path}: name: expected a calibrator name, one of {', '.join(CALIBRATORS.names())}, got {name!r}"
        )
    return CALIBRATORS.get(name).from_state_dict(state, source=str(path))
