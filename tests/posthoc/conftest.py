"""Fixtures of the post-hoc calibrator tests."""

from __future__ import annotations

import pytest
import torch

from .references import sample_logits


@pytest.fixture
def overconfident() -> tuple[torch.Tensor, torch.Tensor]:
    """2000 samples, 6 classes, observed logits 2.5x sharper than the calibrated ones."""
    z, y = sample_logits(2000, 6, seed=1)
    return 2.5 * z, y
