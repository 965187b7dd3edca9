"""Objectives by registry name: ``names()`` and ``create(name, num_classes=..., num_samples=..., **hp)``.

Every objective is an :class:`~caltrain.losses.base.Objective` subclass (or a factory returning one)
registered in :data:`LOSSES` with a keyword-only signature ``(*, num_classes, [num_samples,] **hyperparameters)``;
its signature is its hyperparameter schema, so a mistyped hyperparameter fails with the list of valid ones.
``num_samples`` (the training-set size) is passed only to objectives that declare it (per-sample state).

Example:
    >>> from caltrain import losses
    >>> "socrates" in names()
    True
    >>> create("socrates", num_classes=10, num_samples=100).num_outputs  # K + 1: the "unknown" output
    11
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from caltrain.losses.base import Objective
from caltrain.utils.registry import Registry

__all__ = ["LOSSES", "create", "names", "register"]

#: name -> factory ``(*, num_classes, [num_samples], **hyperparameters) -> Objective``.
LOSSES: Registry[Callable[..., Objective]] = Registry(
    "loss", entry_points="caltrain.losses", signature="(*, num_classes, [num_samples,] **hyperparameters)"
)


def register(name: str) -> Callable[[Any], Any]:
    """Decorator registering an objective class/factory under ``name`` (stored as its ``registry_name``)."""
    add = LOSSES.register(name)

    def decorate(factory: Any) -> Any:
        factory.registry_name = name
        return add(factory)

    return decorate


LOSSES.plugin_decorator = register  # an entry point's factory gets its registry_name too


def names() -> list[str]:
    """Every registered objective name, sorted."""
    return LOSSES.names()


def tasks(name: str) -> frozenset[str]:
    """The tasks objective ``name`` trains (``Objective.tasks``), read without building it: the class attribute of
    an objective class, the ``tasks`` attribute of a factory function (the presets set it), else
    ``{"classification"}`` (a plugin factory that says nothing)."""
    factory = LOSSES.get(name)
    return frozenset(getattr(factory, "tasks", None) or {"classification"})


def create(name: str, *, num_classes: int, num_samples: int | None = None, **hyperparameters: Any) -> Objective:
    """Build objective ``name`` for ``num_classes`` real classes K.

    Args:
        name: a registry name (see :func:`names`).
        num_classes: K, the number of real classes (objectives with an abstention output declare K+1 outputs
            through ``num_outputs`` themselves).
        num_samples: the number of training samples; required by objectives with per-sample state
            (those whose factory takes ``num_samples``), ignored by the others.
        **hyperparameters: the objective's own hyperparameters (``caltrain losses --json`` lists them).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the valid names).
        TypeError: a hyperparameter the objective does not take (the message lists the valid ones).
        ValueError: ``num_samples`` missing for an objective with per-sample state.
    """
    LOSSES.check_kwargs(name, hyperparameters, reserved=("num_classes", "num_samples", "reduction"))
    factory = LOSSES.get(name)
    params = inspect.signature(factory).parameters
    kwargs: dict[str, Any] = dict(hyperparameters)
    if "num_samples" in params:
        if num_samples is None:
            raise ValueError(f"num_samples: loss {name!r} keeps per-sample state and needs the training-set size")
        kwargs["num_samples"] = num_samples
    return LOSSES.call(name, passed=("num_classes", "num_samples"), returns=nn.Module, num_classes=num_classes,
                       **kwargs)
