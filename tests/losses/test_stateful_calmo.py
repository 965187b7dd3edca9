"""CalMO and its PGD: NumPy references on a linear model, the epsilon ball and valid range, no leaked gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from caltrain import losses
from caltrain.losses.pgd import pgd_attack

K, D = 3, 5


def _linear(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    net = nn.Linear(D, K).double()
    with torch.no_grad():
        net.weight.mul_(4.0)
    return net


def _data(n: int = 6, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, D, generator=g, dtype=torch.float64), torch.randint(0, K, (n,), generator=g)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _np_pgd(w, b, x, y, eps, step, steps, lo=None, hi=None):
    """PGD on the CE of a linear model: grad_x CE = W^T (p - onehot(y))."""
    x_adv = x.copy()
    for _ in range(steps):
        p = _softmax(x_adv @ w.T + b)
        grad = (p - np.eye(K)[y]) @ w
        x_adv = np.clip(x_adv + step * np.sign(grad), x - eps, x + eps)
        if lo is not None:
            x_adv = np.clip(x_adv, lo, hi)
    return x_adv


def test_pgd_matches_numpy_reference_and_stays_feasible():
    net, (x, y) = _linear(), _data()
    w, b = net.weight.detach().numpy(), net.bias.detach().numpy()
    x_adv = pgd_attack(net, x, y, epsilon=0.1, step_size=0.04, steps=4, bounds=(0.0, 1.0))
    np.testing.assert_allclose(x_adv.numpy(), _np_pgd(w, b, x.numpy(), y.numpy(), 0.1, 0.04, 4, 0.0, 1.0))
    assert torch.all((x_adv - x).abs() <= 0.1 + 1e-12) and torch.all((x_adv >= 0) & (x_adv <= 1))
    ce = nn.functional.cross_entropy
    assert ce(net(x_adv), y) > ce(net(x), y)
    assert torch.equal(pgd_attack(net, x, y, steps=0), x)


def test_pgd_per_channel_scale_and_bounds():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 16, K))
    std = torch.tensor([0.5, 0.25]).view(2, 1, 1)
    mean = torch.tensor([0.4, 0.6]).view(2, 1, 1)
    raw = torch.rand(4, 2, 4, 4)
    x = (raw - mean) / std
    low, high = (0 - mean) / std, (1 - mean) / std
    x_adv = pgd_attack(net, x, torch.tensor([0, 1, 2, 0]), epsilon=0.2, step_size=0.1, steps=3, bounds=(low, high),
                       scale=std)
    raw_adv = x_adv * std + mean
    assert torch.all((raw_adv - raw).abs() <= 0.2 + 1e-5)
    assert torch.all((raw_adv >= -1e-6) & (raw_adv <= 1 + 1e-6))
    assert (raw_adv - raw).abs().max() > 0.1  # it moved


def test_pgd_leaves_no_gradients_and_restores_modes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(D, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, K))
    net.train()
    net[2].eval()  # a submodule in its own mode
    stats = net[1].running_mean.clone()
    x, y = _data(8)
    x = x.float().requires_grad_()
    x_adv = pgd_attack(net, x, y, epsilon=0.1, steps=3)
    assert x_adv.grad_fn is None and not x_adv.requires_grad
    assert all(p.grad is None for p in net.parameters()) and x.grad is None
    assert net.training and net[1].training and not net[2].training
    assert torch.equal(net[1].running_mean, stats)  # eval-mode attack: no batch-norm statistics updated


def _np_calmo(w, b, x, y, lambda_r, lambda_s, eps, step, steps):
    n = len(y)
    logp = np.log(_softmax(x @ w.T + b))
    ce = -logp[np.arange(n), y]
    logp_adv = np.log(_softmax(_np_pgd(w, b, x, y, eps, step, steps) @ w.T + b))
    kl = (np.exp(logp) * (logp - logp_adv)).sum(1)
    z = x @ w.T + b
    others = z.copy()
    others[np.arange(n), y] = -np.inf
    j = others.argmax(1)
    s = ((w[y] - w[j]) ** 2).sum(1)  # grad_x of z_y - z_j for a linear model
    return ce + lambda_r * kl + lambda_s * s


@pytest.mark.parametrize(("name", "lr", "ls"), [("calmo", 0.5, 0.01), ("calmo_flat", 0.0, 0.3), ("calmo_robust", 2.0, 0.0)])
def test_calmo_matches_numpy_reference(name, lr, ls):
    net, (x, y) = _linear(), _data()
    hp = {"lambda_r": lr, "lambda_s": ls}
    hp = {k: v for k, v in hp.items() if k in losses.LOSSES.parameters(name)}
    obj = losses.create(name, num_classes=K, reduction="none", **hp)
    x.requires_grad_(obj.needs_input_grad)
    out = obj(net(x), y, model=net, inputs=x)
    w, b = net.weight.detach().numpy(), net.bias.detach().numpy()
    expected = _np_calmo(w, b, x.detach().numpy(), y.numpy(), lr, ls, 8 / 255, 2 / 255, 3)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10)


def test_calmo_gradcheck_through_parameters():
    net, (x, y) = _linear(), _data(4)
    obj = losses.create("calmo", num_classes=K, lambda_r=1.0, lambda_s=0.1, epsilon=0.05, step_size=0.02)

    def loss_of(weight, bias):
        xx = x.clone().requires_grad_()
        model = lambda inp: nn.functional.linear(inp, weight, bias)  # noqa: E731
        return obj(model(xx), y, model=model, inputs=xx)

    w = net.weight.detach().clone().requires_grad_()
    b = net.bias.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(loss_of, (w, b))


def test_calmo_neutral_is_cross_entropy_and_protocol():
    net, (x, y) = _linear(), _data()
    obj = losses.create("calmo", num_classes=K, lambda_r=0.0, lambda_s=0.0)
    torch.testing.assert_close(obj(net(x), y), nn.functional.cross_entropy(net(x), y))
    assert losses.create("calmo", num_classes=K).requires == {"model", "inputs"}
    assert losses.create("calmo", num_classes=K).needs_input_grad
    assert losses.create("calmo_flat", num_classes=K).requires == {"inputs"}
    assert not losses.create("calmo_robust", num_classes=K).needs_input_grad


def test_calmo_backward_leaves_only_parameter_gradients():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(D, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, K))
    x, y = _data(8)
    x = x.float().requires_grad_()
    obj = losses.create("calmo", num_classes=K)
    loss = obj(net(x), y, model=net, inputs=x)
    assert all(p.grad is None for p in net.parameters())  # nothing accumulated before backward
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert net.training


def test_calmo_uses_the_input_domain():
    net, (x, y) = _linear(), _data()
    obj = losses.create("calmo_robust", num_classes=K, lambda_r=1.0)
    std = torch.full((D,), 0.5, dtype=torch.float64)
    obj.set_input_domain(std=std, low=torch.zeros(D, dtype=torch.float64), high=torch.ones(D, dtype=torch.float64))
    w, b = net.weight.detach().numpy(), net.bias.detach().numpy()
    x_ref = _np_pgd(w, b, x.numpy(), y.numpy(), 2 * 8 / 255, 2 * 2 / 255, 3, 0.0, 1.0)
    logp = np.log(_softmax(x.numpy() @ w.T + b))
    kl = (np.exp(logp) * (logp - np.log(_softmax(x_ref @ w.T + b)))).sum(1)
    expected = (-logp[np.arange(len(y)), y.numpy()] + kl).mean()
    assert float(obj(net(x), y, model=net, inputs=x).detach()) == pytest.approx(expected, rel=1e-10)


def test_calmo_errors():
    net, (x, y) = _linear(), _data()
    obj = losses.create("calmo", num_classes=K)
    with pytest.raises(ValueError, match="requires_grad"):
        obj(net(x), y, model=net, inputs=x)
    with pytest.raises(ValueError, match="model"):
        obj(net(x), y)
    for hp, match in [({"epsilon": -0.1}, "epsilon"), ({"lambda_r": -1.0}, "lambda_r"), ({"lambda_s": -1}, "lambda_s"),
                      ({"step_size": 0.0}, "step_size"), ({"steps": -1}, "steps")]:
        with pytest.raises(ValueError, match=match):
            losses.create("calmo", num_classes=K, **hp)
    with pytest.raises(TypeError, match="lambda_r"):
        losses.create("calmo_flat", num_classes=K, lambda_r=0.5)
