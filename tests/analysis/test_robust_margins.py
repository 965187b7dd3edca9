import numpy as np
import pytest
import torch
from torch import nn

from caltrain.analysis import margin_tail, margins, robust_margin_tail, robust_margins

from .references import tiny_mlp


def _linear(weight, bias):
    layer = nn.Linear(weight.shape[1], weight.shape[0]).double()
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float64))
        layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float64))
    return layer


def test_linear_binary_model_reaches_the_closed_form_worst_margin(rng):
    """For z = W x + b with K = 2, m(x + d) = m(x) + (w_y - w_j) . d, minimised at d = -eps sign(w_y - w_j):
    the worst margin is m(x) - eps ||w_y - w_j||_1, reached by signed steps in ceil(eps / step) steps."""
    weight, bias = rng.normal(size=(2, 5)), rng.normal(size=2)
    model = _linear(weight, bias)
    x = torch.from_numpy(rng.normal(size=(50, 5)))
    y = torch.from_numpy(rng.integers(0, 2, size=50))
    eps = 0.3
    clean = margins(model(x).detach(), y).numpy()
    diff = np.where(y.numpy()[:, None] == 0, weight[0] - weight[1], weight[1] - weight[0])
    expected = clean - eps * np.abs(diff).sum(axis=1)
    got = robust_margins(model, x, y, eps=eps, step_size=0.1, steps=3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_bounds_are_respected(rng):
    weight, bias = rng.normal(size=(2, 5)), rng.normal(size=2)
    model = _linear(weight, bias)
    x = torch.zeros(10, 5, dtype=torch.float64)  # on the lower bound: only increases are allowed
    y = torch.zeros(10, dtype=torch.long)
    clean = margins(model(x).detach(), y).numpy()
    diff = weight[0] - weight[1]
    expected = clean + 0.3 * np.clip(diff, None, 0).sum()  # only coordinates with diff < 0 move (upwards)
    got = robust_margins(model, x, y, eps=0.3, step_size=0.1, steps=3, bounds=(0.0, 1.0))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_robust_margins_never_exceed_clean_ones_and_zero_budget_gives_clean(rng):
    model = tiny_mlp()
    x = torch.randn(64, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (64,))
    clean = margins(model(x).detach(), y)
    torch.testing.assert_close(robust_margins(model, x, y, eps=0.0), clean)
    torch.testing.assert_close(robust_margins(model, x, y, steps=0), clean)
    worst = robust_margins(model, x, y, eps=0.5, step_size=0.1, steps=10)
    assert (worst <= clean).all() and (worst < clean).any()
    robust_q = float(robust_margin_tail(model, x, y, eps=0.5, step_size=0.1).q)
    assert robust_q >= float(margin_tail(model(x).detach(), y).q)


def test_robust_margins_leave_model_and_inputs_alone():
    model = tiny_mlp()
    model.train()
    x = torch.randn(16, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (16,))
    x_before = x.clone()
    rng_state = torch.get_rng_state()
    robust_margins(model, x, y, eps=0.1)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert torch.equal(x, x_before) and torch.equal(torch.get_rng_state(), rng_state)


def test_robust_margin_errors():
    model = tiny_mlp()
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"eps: expected a finite number in \[0, inf\), got -0.1"):
        robust_margins(model, x, y, eps=-0.1)
    with pytest.raises(ValueError, match=r"step_size: expected a finite number in \(0, inf\), got 0"):
        robust_margins(model, x, y, step_size=0)
    with pytest.raises(ValueError, match="steps: expected an integer >= 0, got -1"):
        robust_margins(model, x, y, steps=-1)
    with pytest.raises(ValueError, match=r"bounds: expected lo < hi, got \(1.0, 0.0\)"):
        robust_margins(model, x, y, bounds=(1.0, 0.0))
    with pytest.raises(TypeError, match="inputs: expected floating-point inputs to perturb"):
        robust_margins(nn.Embedding(5, 3), torch.zeros(4, dtype=torch.long), y)
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 2\]"):
        robust_margins(model, x, torch.full((4,), 3))
