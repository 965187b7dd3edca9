"""The true calibration error of a model on data whose posterior is known: a re-export.

The single implementation lives in :mod:`caltrain.metrics.true_calibration` (its docstring states the math);
this module keeps ``caltrain.data.true_calibration_error`` working.

Example:
    >>> import torch
    >>> q = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    >>> float(true_calibration_error(q, q))
    0.0
"""

from __future__ import annotations

from caltrain.metrics.true_calibration import true_calibration_error

__all__ = ["true_calibration_error"]
