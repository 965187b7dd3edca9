"""Regressions found in review."""

from __future__ import annotations

import torch



def test_calmo_smoothness_is_measured_in_raw_pixel_units_by_default():
    # review: the margin-gradient penalty was measured w.r.t. the standardised inputs (std^2 weaker than in pixels)
    from caltrain import losses

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 2 * 2, 3))
    x = torch.randn(4, 2, 2, 2, dtype=torch.float64)
    y = torch.randint(0, 3, (4,))
    net = net.double()
    std = torch.tensor([0.5, 0.25], dtype=torch.float64).view(-1, 1, 1)
    values = {}
    for units in ("raw", "model"):
        obj = losses.create("calmo_flat", num_classes=3, lambda_s=1.0, smoothness_units=units)
        obj.set_input_domain(std=std, low=None, high=None)
        xi = x.clone().requires_grad_(True)
        values[units] = obj(net(xi), y, inputs=xi)
    xi = x.clone().requires_grad_(True)
    z = net(xi)
    ce = torch.nn.functional.cross_entropy(z, y)
    margin = z.gather(1, y[:, None])[:, 0] - z.scatter(1, y[:, None], float("-inf")).amax(1)
    (g,) = torch.autograd.grad(margin.sum(), xi)
    expected_raw = ce + (g / std).flatten(1).pow(2).sum(1).mean()
    expected_model = ce + g.flatten(1).pow(2).sum(1).mean()
    assert torch.allclose(values["raw"], expected_raw, rtol=1e-10)
    assert torch.allclose(values["model"], expected_model, rtol=1e-10)
