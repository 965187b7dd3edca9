"""Regressions found in review."""

from __future__ import annotations

import torch

from caltrain.losses import functional as LF


def test_gence_class_prior_tensor_is_normalised_like_a_list():
    # regression: a tensor prior was used unnormalised (loss 2.64 for [1, 2, 3] vs 0.848 as a list)
    z, y = torch.randn(16, 3, dtype=torch.float64), torch.randint(0, 3, (16,))
    as_list = LF.gence(z, y, class_prior=[1.0, 2.0, 3.0])
    as_tensor = LF.gence(z, y, class_prior=torch.tensor([1.0, 2.0, 3.0]))
    normalised = LF.gence(z, y, class_prior=torch.tensor([1 / 6, 2 / 6, 3 / 6]))
    assert torch.allclose(as_list, as_tensor, rtol=1e-12) and torch.allclose(as_tensor, normalised, rtol=1e-12)
