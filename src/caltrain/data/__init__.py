"""Datasets by registry name, deterministic splits, device-resident loaders."""

__all__: list[str] = []
