"""Models by registry name: ``names()``, ``create(name, num_classes=..., in_channels=...)``."""

__all__: list[str] = []
