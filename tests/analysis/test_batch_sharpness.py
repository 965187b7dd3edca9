import math

import numpy as np
import pytest
import torch
from torch import nn

from caltrain.analysis import batch_sharpness

from .references import explicit_hessian, tiny_mlp


def _reference_ratio(model, x, y):
    """g^T H g / ||g||^2 of the batch loss with a dense Hessian and a plain autograd gradient."""
    loss = nn.functional.cross_entropy(model(x), y)
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, list(model.parameters()))]).numpy()
    return g @ explicit_hessian(model, x, y) @ g / (g @ g)


@pytest.fixture
def problem():
    model = tiny_mlp()
    return model, torch.randn(30, 3, dtype=torch.float64) * 2, torch.randint(0, 3, (30,))


def test_batch_sharpness_matches_dense_reference_on_the_same_batches(problem):
    model, x, y = problem
    est = batch_sharpness(model, x, y, batch_size=8, num_batches=5, seed=4)
    generator = torch.Generator().manual_seed(4)
    expected = []
    for _ in range(5):
        index = torch.randperm(30, generator=generator)[:8]
        expected.append(_reference_ratio(model, x[index], y[index]))
    np.testing.assert_allclose(est.ratios.numpy(), expected, rtol=1e-10)
    assert est.value == pytest.approx(np.mean(expected), rel=1e-12)
    assert est.stderr == pytest.approx(np.std(expected, ddof=1) / math.sqrt(5), rel=1e-10)
    assert est.ratios.dtype == torch.float64


def test_full_batch_is_the_step_sharpness_of_the_whole_set_and_bounded_by_the_spectrum(problem):
    model, x, y = problem
    est = batch_sharpness(model, x, y, batch_size=1000, num_batches=3)
    reference = _reference_ratio(model, x, y)
    np.testing.assert_allclose(est.ratios.numpy(), [reference] * 3, rtol=1e-10)
    eigenvalues = np.linalg.eigvalsh(explicit_hessian(model, x, y))
    assert eigenvalues[0] - 1e-12 <= est.value <= eigenvalues[-1] + 1e-12  # a Rayleigh quotient


def test_batch_sharpness_is_reproducible_and_leaves_rng_and_model_alone(problem):
    model, x, y = problem
    model.train()
    rng_state = torch.get_rng_state()
    a = batch_sharpness(model, x, y, batch_size=8, seed=1)
    b = batch_sharpness(model, x, y, batch_size=8, seed=1)
    assert torch.equal(a.ratios, b.ratios)
    assert not torch.equal(a.ratios, batch_sharpness(model, x, y, batch_size=8, seed=2).ratios)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_single_batch_has_nan_stderr(problem):
    model, x, y = problem
    assert math.isnan(batch_sharpness(model, x, y, num_batches=1).stderr)


def test_batch_sharpness_errors(problem):
    model, x, y = problem
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1, got 0"):
        batch_sharpness(model, x, y, batch_size=0)
    with pytest.raises(ValueError, match="num_batches: expected an integer >= 1, got 2.5"):
        batch_sharpness(model, x, y, num_batches=2.5)
    with pytest.raises(ValueError, match="labels: batch sharpness needs the class labels"):
        batch_sharpness(model, x, None)
    with pytest.raises(ValueError, match=r"labels: expected shape \[N\]"):
        batch_sharpness(model, x, y[:, None])
