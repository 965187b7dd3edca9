import numpy as np
import pytest
import torch

from caltrain.analysis import EIGENSOLVERS, lanczos, power_iteration, top_eigenvalue
from caltrain.utils import UnknownNameError

SOLVERS = EIGENSOLVERS.names()


def _psd(rng, dim, rank=None):
    a = rng.normal(size=(rank or dim, dim))
    return a.T @ a / dim


def _counting(matrix):
    a = torch.from_numpy(matrix)
    calls = []

    def matvec(v):
        calls.append(1)
        return a @ v

    return matvec, calls


@pytest.mark.parametrize("method", SOLVERS)
@pytest.mark.parametrize("dim", [1, 2, 20, 80])
def test_top_eigenvalue_of_psd_matrix_matches_eigvalsh(rng, method, dim):
    matrix = _psd(rng, dim)
    matvec, calls = _counting(matrix)
    est = top_eigenvalue(matvec, torch.from_numpy(rng.normal(size=dim)), method=method, iters=2000, tol=1e-8)
    top = np.linalg.eigvalsh(matrix)[-1]
    assert est.converged and len(calls) == est.iterations
    assert est.value == pytest.approx(top, rel=1e-7)
    # the vector is a unit eigenvector and the residual is what it claims
    v = est.vector.numpy()
    assert np.linalg.norm(v) == pytest.approx(1.0)
    assert np.linalg.norm(matrix @ v - est.value * v) == pytest.approx(est.residual, rel=1e-3, abs=1e-12)
    assert est.residual <= 1e-8 * abs(est.value)


@pytest.mark.parametrize("method", SOLVERS)
def test_residual_bounds_distance_to_some_eigenvalue_even_unconverged(rng, method):
    matrix = _psd(rng, 60)
    est = top_eigenvalue(_counting(matrix)[0], torch.from_numpy(rng.normal(size=60)), method=method, iters=3, tol=0)
    eigenvalues = np.linalg.eigvalsh(matrix)
    assert not est.converged and est.iterations == 3
    assert np.min(np.abs(eigenvalues - est.value)) <= est.residual * (1 + 1e-9)
    assert est.value <= eigenvalues[-1] + 1e-12  # a Rayleigh quotient / Ritz value never overshoots


def test_lanczos_returns_algebraic_max_and_power_the_largest_magnitude(rng):
    q, _ = np.linalg.qr(rng.normal(size=(30, 30)))
    spectrum = np.concatenate([[-10.0, 4.0], rng.uniform(-3, 3, size=28)])
    matrix = q @ np.diag(spectrum) @ q.T
    v0 = torch.from_numpy(rng.normal(size=30))
    assert lanczos(_counting(matrix)[0], v0, iters=30, tol=1e-10).value == pytest.approx(4.0, rel=1e-8)
    assert power_iteration(_counting(matrix)[0], v0, iters=500, tol=1e-10).value == pytest.approx(-10.0, rel=1e-8)


def test_lanczos_needs_fewer_products_than_power_iteration_on_a_crowded_spectrum(rng):
    q, _ = np.linalg.qr(rng.normal(size=(200, 200)))
    spectrum = np.linspace(0, 1, 200) ** 0.5  # top gap about 0.0025: power iteration converges slowly
    matrix = q @ np.diag(spectrum) @ q.T
    v0 = torch.from_numpy(rng.normal(size=200))
    fast = lanczos(_counting(matrix)[0], v0, iters=200, tol=1e-6)
    slow = power_iteration(_counting(matrix)[0], v0, iters=200, tol=1e-6)
    assert fast.converged and fast.value == pytest.approx(1.0, rel=1e-6)
    assert fast.iterations < slow.iterations


@pytest.mark.parametrize("method", SOLVERS)
def test_warm_start_from_the_eigenvector_converges_in_one_product(rng, method):
    matrix = _psd(rng, 40)
    est = top_eigenvalue(_counting(matrix)[0], torch.from_numpy(rng.normal(size=40)), method=method, iters=500,
                         tol=1e-10)
    again = top_eigenvalue(_counting(matrix)[0], est.vector, method=method, iters=500, tol=1e-6)
    assert again.iterations == 1 and again.value == pytest.approx(est.value, rel=1e-9)


@pytest.mark.parametrize("method", SOLVERS)
def test_zero_operator_and_float32(method):
    est = top_eigenvalue(lambda v: torch.zeros_like(v), torch.ones(5), method=method)
    assert est.value == 0.0 and est.converged and est.iterations == 1
    a = torch.diag(torch.arange(1.0, 11.0))
    est = top_eigenvalue(lambda v: a @ v, torch.ones(10), method=method, iters=500, tol=1e-5)
    assert est.vector.dtype == torch.float32 and est.value == pytest.approx(10.0, rel=1e-4)


def test_solver_errors():
    eye = torch.eye(3)
    with pytest.raises(UnknownNameError, match="unknown eigensolver 'arnoldi'.*Valid names: lanczos, power"):
        top_eigenvalue(lambda v: eye @ v, torch.ones(3), method="arnoldi")
    with pytest.raises(ValueError, match="v0: expected a finite, nonzero start vector"):
        lanczos(lambda v: eye @ v, torch.zeros(3))
    with pytest.raises(ValueError, match=r"v0: expected a flat start vector of shape \[P\]"):
        power_iteration(lambda v: eye @ v, torch.ones(3, 1))
    with pytest.raises(ValueError, match="iters: expected an integer >= 1, got 0"):
        lanczos(lambda v: eye @ v, torch.ones(3), iters=0)
    with pytest.raises(ValueError, match=r"tol: expected a finite number in \[0, inf\)"):
        power_iteration(lambda v: eye @ v, torch.ones(3), tol=-1.0)
