"""Shared infrastructure: registries by name, input checks, atomic file I/O."""

from caltrain.utils.registry import Registry, UnknownNameError

__all__ = ["Registry", "UnknownNameError"]
