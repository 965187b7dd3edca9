import numpy as np
import pytest
import torch
from torch import nn

from caltrain.analysis import (
    EIGENSOLVERS,
    gauss_newton_sharpness,
    hessian_operator,
    hessian_sharpness,
)

from .references import explicit_gauss_newton, explicit_hessian, tiny_mlp


@pytest.fixture
def problem():
    model = tiny_mlp()
    x = torch.randn(40, 3, dtype=torch.float64) * 2
    y = torch.randint(0, 3, (40,))
    return model, x, y


def test_hessian_sharpness_matches_eigvalsh_of_explicit_hessian(problem):
    model, x, y = problem
    h = explicit_hessian(model, x, y)
    est = hessian_sharpness(model, x, y, iters=200, tol=1e-9)
    assert est.converged
    assert est.value == pytest.approx(np.linalg.eigvalsh(h)[-1], rel=1e-8)


def test_power_iteration_finds_the_largest_magnitude_eigenvalue(problem):
    model, x, y = problem
    eigenvalues = np.linalg.eigvalsh(explicit_hessian(model, x, y))
    largest_magnitude = eigenvalues[np.argmax(np.abs(eigenvalues))]
    est = hessian_sharpness(model, x, y, method="power", iters=5000, tol=1e-8)
    assert est.value == pytest.approx(largest_magnitude, rel=1e-6)


def test_hessian_vector_product_equals_explicit_matrix_product(problem, rng):
    model, x, y = problem
    h = explicit_hessian(model, x, y)
    v = rng.normal(size=h.shape[0])
    np.testing.assert_allclose(hessian_operator(model, x, y)(torch.from_numpy(v)).numpy(), h @ v, rtol=1e-10,
                               atol=1e-12)
    chunked = hessian_operator(model, x, y, chunk_size=7)(torch.from_numpy(v)).numpy()
    np.testing.assert_allclose(chunked, h @ v, rtol=1e-10, atol=1e-12)


def test_hessian_minus_gauss_newton_is_the_second_order_term(problem):
    """H = G + (1/N) sum_i sum_k (p_ik - 1[k = y_i]) d^2 z_ik / d theta^2.

    For a linear model z is linear in theta, so H = G."""
    model, x, y = problem
    assert not np.allclose(explicit_hessian(model, x, y), explicit_gauss_newton(model, x), atol=1e-6)
    torch.manual_seed(0)
    linear = nn.Linear(3, 4).double()
    labels = torch.randint(0, 4, (40,))
    for method in EIGENSOLVERS.names():
        h = hessian_sharpness(linear, x, labels, method=method, iters=500, tol=1e-10)
        g = gauss_newton_sharpness(linear, x, method=method, iters=500, tol=1e-10)
        assert h.value == pytest.approx(g.value, rel=1e-8)


def test_custom_loss_fn_changes_the_objective(problem):
    model, x, y = problem
    ce = hessian_sharpness(model, x, y, iters=200, tol=1e-9).value
    doubled = hessian_sharpness(model, x, y, loss_fn=lambda z, t: 2 * nn.functional.cross_entropy(z, t),
                                iters=200, tol=1e-9).value
    assert doubled == pytest.approx(2 * ce, rel=1e-8)


def test_hessian_sharpness_leaves_model_and_grads_alone(problem):
    model, x, y = problem
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    hessian_sharpness(model, x, y)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_hessian_sharpness_works_under_no_grad(problem):
    model, x, y = problem
    expected = hessian_sharpness(model, x, y, iters=200, tol=1e-9).value
    with torch.no_grad():
        assert hessian_sharpness(model, x, y, iters=200, tol=1e-9).value == pytest.approx(expected, rel=1e-10)


def test_hessian_errors(problem):
    model, x, y = problem
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 2\], got values in \[5, 5\]"):
        hessian_sharpness(model, x, torch.full((40,), 5))
    with pytest.raises(ValueError, match="labels: expected class indices >= 0, got minimum -1"):
        hessian_sharpness(model, x, torch.full((40,), -1))
    with pytest.raises(ValueError, match="inputs and labels must have the same number of samples, got 40 and 3"):
        hessian_sharpness(model, x, y[:3])
    with pytest.raises(ValueError, match="labels: the Hessian of the loss needs the class labels"):
        hessian_sharpness(model, x, None)
