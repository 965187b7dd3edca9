"""Calibration metrics: exact, streaming, float64-accumulated. Metrics take probabilities (or ``from_logits=True``)."""

__all__: list[str] = []
