"""Symmetric label noise."""

import pytest
import torch

from caltrain.data.label_noise import noisy_posterior, symmetric_label_noise


def test_rate_of_changed_labels_is_eta_times_k_minus_1_over_k():
    y = torch.zeros(200_000, dtype=torch.int64)
    noisy = symmetric_label_noise(y, 5, 0.3, torch.Generator().manual_seed(0))
    assert float((noisy != 0).double().mean()) == pytest.approx(0.3 * 4 / 5, abs=0.005)
    counts = torch.bincount(noisy[noisy != 0], minlength=5)[1:].double()
    assert float(counts.std() / counts.mean()) < 0.02  # uniform over the other classes


def test_zero_noise_is_identity_and_posterior_formula():
    y = torch.arange(10) % 3
    assert symmetric_label_noise(y, 3, 0.0, torch.Generator()).equal(y)
    clean = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    expected = 0.7 * clean + 0.1
    assert torch.allclose(noisy_posterior(clean, 0.3), expected)
    with pytest.raises(ValueError, match="label_noise"):
        symmetric_label_noise(y, 3, 1.5, torch.Generator())
