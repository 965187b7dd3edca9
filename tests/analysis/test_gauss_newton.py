import numpy as np
import pytest
import torch
from torch import nn

from caltrain.analysis import (
    EIGENSOLVERS,
    gauss_newton_operator,
    gauss_newton_sharpness,
    logit_hessian_product,
)

from .references import explicit_gauss_newton, explicit_jacobian, np_softmax, tiny_mlp


@pytest.fixture
def mlp_and_inputs():
    model = tiny_mlp()
    return model, torch.randn(40, 3, dtype=torch.float64) * 2


@pytest.mark.parametrize("method", EIGENSOLVERS.names())
def test_gn_sharpness_matches_eigvalsh_of_explicit_gauss_newton(mlp_and_inputs, method):
    model, x = mlp_and_inputs
    g = explicit_gauss_newton(model, x)
    est = gauss_newton_sharpness(model, x, method=method, iters=2000, tol=1e-9)
    assert est.converged
    assert est.value == pytest.approx(np.linalg.eigvalsh(g)[-1], rel=1e-8)


def test_gn_product_equals_explicit_matrix_product(mlp_and_inputs, rng):
    model, x = mlp_and_inputs
    g = explicit_gauss_newton(model, x)
    v = rng.normal(size=g.shape[0])
    got = gauss_newton_operator(model, x)(torch.from_numpy(v))
    np.testing.assert_allclose(got.numpy(), g @ v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 7, 40, 1000])
def test_chunked_products_equal_the_single_batch_product(mlp_and_inputs, chunk_size):
    model, x = mlp_and_inputs
    v = torch.randn(38, dtype=torch.float64)
    expected = gauss_newton_operator(model, x)(v)
    torch.testing.assert_close(gauss_newton_operator(model, x, chunk_size=chunk_size)(v), expected)


def test_logit_hessian_product_and_the_two_times_one_minus_pmax_bound(rng):
    """lambda_max(diag p - p p^T) <= 2 (1 - p_max), here for peaked and flat p alike.

    docs/methods.md#calmo-and-the-calibration-curvature-link
    """
    for scale in (0.1, 1.0, 3.0, 10.0):
        p = np_softmax(rng.normal(size=(50, 6)) * scale)
        u = rng.normal(size=(50, 6))
        got = logit_hessian_product(torch.from_numpy(p), torch.from_numpy(u)).numpy()
        for row, prod, urow in zip(p, got, u):
            h = np.diag(row) - np.outer(row, row)
            np.testing.assert_allclose(prod, h @ urow, atol=1e-14)
            assert np.linalg.eigvalsh(h)[-1] <= 2 * (1 - row.max()) + 1e-12


def test_gn_sharpness_is_bounded_by_margin_weighted_jacobian_norms(mlp_and_inputs):
    """lambda_max(G) <= (1/N) sum_i 2 (1 - p_max,i) ||J_i||_2^2: curvature vanishes as confidence saturates."""
    model, x = mlp_and_inputs
    jac = explicit_jacobian(model, x).numpy()
    with torch.no_grad():
        p = np_softmax(model(x).numpy())
    bound = np.mean([2 * (1 - pi.max()) * np.linalg.norm(ji, 2) ** 2 for pi, ji in zip(p, jac)])
    assert 0 < gauss_newton_sharpness(model, x, tol=1e-9, iters=200).value <= bound


def test_float32_model_agrees_with_float64_reference(mlp_and_inputs):
    model, x = mlp_and_inputs
    top = np.linalg.eigvalsh(explicit_gauss_newton(model, x))[-1]
    est = gauss_newton_sharpness(model.float(), x.float(), tol=1e-5, iters=200)
    assert est.vector.dtype == torch.float32
    assert est.value == pytest.approx(top, rel=1e-4)


def test_subset_and_seed_are_reproducible_and_labels_are_not_needed(mlp_and_inputs):
    model, x = mlp_and_inputs
    a = gauss_newton_sharpness(model, x, subset=16, seed=3, tol=1e-9, iters=200)
    b = gauss_newton_sharpness(model, x, subset=16, seed=3, tol=1e-9, iters=200)
    assert a.value == b.value and a.iterations == b.iterations
    index = torch.randperm(40, generator=torch.Generator().manual_seed(3))[:16].sort().values
    top = np.linalg.eigvalsh(explicit_gauss_newton(model, x[index]))[-1]
    assert a.value == pytest.approx(top, rel=1e-8)


class ConvBN(nn.Module):
    """A conv net with BatchNorm, in-place ReLU and dropout: the eval-mode rules matter here."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(inplace=True), nn.Dropout(0.5))
        self.head = nn.Linear(3 * 4 * 4, 3)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def test_batchnorm_model_is_measured_in_eval_mode_and_left_untouched():
    torch.manual_seed(1)
    model = ConvBN().double()
    x = torch.randn(12, 1, 6, 6, dtype=torch.float64)
    model.train()
    with torch.no_grad():
        model(x)  # non-trivial running statistics
    model.features[1].eval()  # a user-frozen BatchNorm must stay frozen afterwards
    state = {k: v.clone() for k, v in model.state_dict().items()}
    est = gauss_newton_sharpness(model, x, tol=1e-9, iters=300)
    assert model.training and model.head.training and not model.features[1].training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(p.grad is None for p in model.parameters())
    assert est.value == pytest.approx(np.linalg.eigvalsh(explicit_gauss_newton(model, x))[-1], rel=1e-8)


def test_frozen_parameters_are_not_part_of_theta(mlp_and_inputs):
    model, x = mlp_and_inputs
    model[0].requires_grad_(False)
    est = gauss_newton_sharpness(model, x, tol=1e-9, iters=200)
    assert est.vector.shape == (3 * 5 + 3,)
    assert est.value == pytest.approx(np.linalg.eigvalsh(explicit_gauss_newton(model, x))[-1], rel=1e-8)


def test_gn_sharpness_leaves_the_global_rng_alone(mlp_and_inputs):
    model, x = mlp_and_inputs
    before = torch.get_rng_state()
    gauss_newton_sharpness(model, x, subset=10)
    assert torch.equal(torch.get_rng_state(), before)


def test_gn_sharpness_errors(mlp_and_inputs):
    model, x = mlp_and_inputs
    with pytest.raises(ValueError, match=r"init: expected a tensor of shape \[38\]"):
        gauss_newton_sharpness(model, x, init=torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="model: expected at least one parameter with requires_grad=True"):
        gauss_newton_sharpness(model.requires_grad_(False), x)
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module, got function"):
        gauss_newton_sharpness(lambda t: t, x)
    with pytest.raises(ValueError, match="inputs: expected finite values, found 1 NaN"):
        gauss_newton_sharpness(tiny_mlp(), torch.tensor([[float("nan"), 0.0, 0.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="subset: expected an integer >= 1, got 0"):
        gauss_newton_sharpness(tiny_mlp(), x, subset=0)
    with pytest.raises(ValueError, match="chunk_size: expected an integer >= 1, got 0"):
        gauss_newton_sharpness(tiny_mlp(), x, chunk_size=0)


def test_dense_outputs_are_rejected_with_the_expected_shape():
    conv = nn.Conv2d(1, 3, 1).double()
    with pytest.raises(ValueError, match=r"model output: expected shape \[N, K\].*got shape \(2, 3, 4, 4\)"):
        gauss_newton_sharpness(conv, torch.randn(2, 1, 4, 4, dtype=torch.float64))
