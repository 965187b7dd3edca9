import math

import pytest
import torch
from torch import nn

from caltrain.train.config import OptimConfig, ScheduleConfig
from caltrain.train.optim import SAM, Muon, build_optimizer
from caltrain.train.schedule import build_scheduler, lr_factor


def test_muon_matches_torch_muon_on_2d_parameters():
    torch.manual_seed(0)
    w1 = nn.Parameter(torch.randn(8, 5))
    w2 = nn.Parameter(w1.detach().clone())
    ours = Muon([dict(params=[w1], use_muon=True, lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.1)])
    ref = torch.optim.Muon([w2], lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.1)
    for step in range(3):
        g = torch.randn(8, 5, generator=torch.Generator().manual_seed(step))
        w1.grad, w2.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(w1, w2, rtol=0, atol=0)


def test_muon_handles_conv_filters_and_splits_head():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    opt = build_optimizer(model, OptimConfig(name="muon", lr=0.02))
    muon_group = [g for g in opt.param_groups if g["use_muon"]][0]
    assert [p.shape for p in muon_group["params"]] == [torch.Size([4, 3, 3, 3])]  # head and 1-D params go to AdamW
    model(torch.randn(2, 3, 6, 6)).sum().backward()
    before = model[0].weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model[0].weight)


def test_sam_gradient_is_taken_at_the_perturbed_point():
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = SAM([w], torch.optim.SGD, rho=0.5, lr=0.1)
    loss = lambda: (w**4).sum()  # noqa: E731
    loss().backward()
    g = w.grad.clone()
    opt.first_step()
    w_adv = torch.tensor([1.0, -2.0]) + 0.5 * g / g.norm()
    torch.testing.assert_close(w.detach(), w_adv)
    opt.zero_grad()
    loss().backward()
    opt.second_step()
    torch.testing.assert_close(w.detach(), torch.tensor([1.0, -2.0]) - 0.1 * 4 * w_adv**3)


def test_weight_decay_skips_biases_and_norms():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    opt = build_optimizer(model, OptimConfig(name="sgd", weight_decay=1e-3))
    decays = {tuple(p.shape): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decays[(3, 3)] == 1e-3 and decays[(3,)] == 0.0


@pytest.mark.parametrize(
    "cfg, epoch, expected",
    [
        (ScheduleConfig(name="multistep", milestones=(150, 250), gamma=0.1), 149.9, 1.0),
        (ScheduleConfig(name="multistep", milestones=(150, 250), gamma=0.1), 150, 0.1),
        (ScheduleConfig(name="multistep", milestones=(150, 250), gamma=0.1), 300, 0.01),
        (ScheduleConfig(name="step", step_size=25, gamma=0.5), 74, 0.25),
        (ScheduleConfig(name="cosine"), 50, 0.5),
        (ScheduleConfig(name="cosine", warmup_epochs=10), 5, 0.5),
        (ScheduleConfig(name="constant", warmup_epochs=4), 1, 0.25),
    ],
)
def test_lr_factor(cfg, epoch, expected):
    assert lr_factor(cfg, epoch, total_epochs=100) == pytest.approx(expected)


def test_scheduler_steps_per_iteration_and_resumes():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = build_scheduler(opt, ScheduleConfig(name="cosine"), steps_per_epoch=10, total_epochs=2)
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    state = sched.state_dict()
    opt2 = torch.optim.SGD([p], lr=1.0)
    sched2 = build_scheduler(opt2, ScheduleConfig(name="cosine"), steps_per_epoch=10, total_epochs=2)
    sched2.load_state_dict(state)
    opt2.step()
    sched2.step()
    opt.step()
    sched.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
