import numpy as np
import pytest
import torch
from torch import nn

from caltrain.analysis import (
    CurvatureTracker,
    batch_sharpness,
    evaluation_subset,
    gauss_newton_sharpness,
    hessian_sharpness,
    margin_tail,
)
from caltrain.utils import UnknownNameError

from .references import np_ece, np_softmax

KEYS = {"gn_sharpness", "gn_iterations", "batch_sharpness", "margin_tail", "log_margin_tail", "ece"}


@pytest.fixture
def problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 3)).double()
    x = torch.randn(100, 4, dtype=torch.float64) * 2
    y = torch.randint(0, 3, (100,))
    return model, x, y


def test_record_matches_the_pure_functions_on_the_tracker_subset(problem):
    model, x, y = problem
    tracker = CurvatureTracker(subset=40, iters=30, tol=1e-8, batch_size=16, num_batches=3, n_bins=10, seed=5)
    record = tracker(model, x, y)
    assert set(record) == KEYS and all(isinstance(v, (int, float)) for v in record.values())
    index = evaluation_subset(100, 40, seed=5)
    xs, ys = x[index], y[index]
    assert record["gn_sharpness"] == gauss_newton_sharpness(model, xs, iters=30, tol=1e-8, seed=5).value
    assert record["batch_sharpness"] == batch_sharpness(model, xs, ys, batch_size=16, num_batches=3, seed=5).value
    model.eval()
    with torch.no_grad():
        logits = model(xs)
    assert record["margin_tail"] == pytest.approx(float(margin_tail(logits, ys).q), rel=1e-12)
    assert record["log_margin_tail"] == pytest.approx(float(margin_tail(logits, ys).log_q), rel=1e-12)
    assert record["ece"] == pytest.approx(np_ece(np_softmax(logits.numpy()), ys.numpy(), 10), abs=1e-12)


def test_tracker_ece_agrees_with_numpy_reference_at_every_bin_count(rng):
    logits = torch.from_numpy(rng.normal(size=(500, 5)) * 3)
    labels = torch.from_numpy(rng.integers(0, 5, size=500))
    linear = nn.Linear(5, 5, bias=False).double()
    with torch.no_grad():
        linear.weight.copy_(torch.eye(5))  # the model returns its input: logits go straight through
    for n_bins in (1, 7, 15, 40):
        record = CurvatureTracker(subset=500, n_bins=n_bins, batch_size=50, iters=3)(linear, logits, labels)
        assert record["ece"] == pytest.approx(np_ece(np_softmax(logits.numpy()), labels.numpy(), n_bins), abs=1e-12)


def test_hessian_sharpness_is_off_by_default_and_matches_when_on(problem):
    model, x, y = problem
    record = CurvatureTracker(subset=40, hessian=True, iters=30, tol=1e-8, batch_size=16)(model, x, y)
    index = evaluation_subset(100, 40, seed=0)
    expected = hessian_sharpness(model, x[index], y[index], iters=30, tol=1e-8).value
    assert set(record) == KEYS | {"hessian_sharpness"}
    assert record["hessian_sharpness"] == pytest.approx(expected, rel=1e-6)


def test_tracking_leaves_the_training_run_untouched(problem):
    """Mode, parameters, buffers, accumulated gradients and the global RNG are as they were."""
    model, x, y = problem
    model.train()
    nn.functional.cross_entropy(model(x), y).backward()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    rng_state = torch.get_rng_state()
    CurvatureTracker(subset=40, batch_size=16, hessian=True)(model, x, y)
    assert all(m.training for m in model.modules())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert torch.equal(torch.get_rng_state(), rng_state)


def test_warm_start_cuts_products_and_state_dict_resumes_exactly(problem):
    model, x, y = problem
    tracker = CurvatureTracker(subset=60, iters=50, tol=1e-6, batch_size=16, hessian=True)
    first = tracker(model, x, y)
    with torch.no_grad():  # a small training step moves the parameters
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    resumed = CurvatureTracker(subset=60, iters=50, tol=1e-6, batch_size=16, hessian=True)
    resumed.load_state_dict(tracker.state_dict())
    second = tracker(model, x, y)
    assert second["gn_iterations"] < first["gn_iterations"]
    assert resumed(model, x, y) == second
    cold = CurvatureTracker(subset=60, iters=50, tol=1e-6, batch_size=16, warm_start=False)
    assert cold(model, x, y)["gn_sharpness"] == pytest.approx(second["gn_sharpness"], rel=1e-5)
    assert cold.state_dict() == {}


def test_warm_start_is_dropped_when_the_parameter_count_changes(problem):
    model, x, y = problem
    tracker = CurvatureTracker(subset=40, batch_size=16)
    tracker(model, x, y)
    other = nn.Sequential(nn.Linear(4, 3)).double()
    assert tracker(other, x, y)["gn_sharpness"] > 0


def test_tracker_errors(problem):
    model, x, y = problem
    with pytest.raises(UnknownNameError, match="unknown eigensolver 'qr'.*Valid names: lanczos, power"):
        CurvatureTracker(method="qr")
    with pytest.raises(ValueError, match="subset: expected an integer >= 1, got 0"):
        CurvatureTracker(subset=0)
    with pytest.raises(ValueError, match="n_bins: expected an integer >= 1"):
        CurvatureTracker(n_bins=-3)
    with pytest.raises(ValueError, match="labels: the tracker needs the class labels"):
        CurvatureTracker()(model, x, None)
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 2\]"):
        CurvatureTracker(batch_size=16)(model, x, torch.full((100,), 7))


def test_repr_lists_the_settings():
    assert repr(CurvatureTracker(subset=64)).startswith("CurvatureTracker(subset=64, iters=20, tol=0.001")


def test_empty_state_roundtrip_and_numpy_inputs(problem):
    model, x, y = problem
    tracker = CurvatureTracker(subset=30, batch_size=10)
    tracker.load_state_dict({})
    record = tracker(model, x.numpy(), y.numpy())
    assert np.isfinite(list(record.values())).all()
