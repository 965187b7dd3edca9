"""Analysis tools: margin tails and curvature (Gauss-Newton sharpness) along training."""

__all__: list[str] = []
