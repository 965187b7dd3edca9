"""The trainer: one loop for every objective, driven by a validated configuration."""

__all__: list[str] = []
