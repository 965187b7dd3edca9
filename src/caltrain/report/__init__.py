"""Plots and reports. matplotlib is imported only inside the drawing functions."""

__all__: list[str] = []
