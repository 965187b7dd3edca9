"""Training objectives behind one protocol: ``names()``, ``create(name, num_classes=..., ...)``, ``functional``."""

__all__: list[str] = []
