"""GenCE: properness of the batch estimate (and the lack of it with exclude_self), momentum, the removed class_prior.

The two-point problem: inputs x_1, x_2 with probability 1/2 each, two classes, true P(class 0 | x) = (0.8, 0.3).
A batch of n i.i.d. (x, y) pairs; the expected loss over batches is exact: a sum over the compositions of the batch
(how many of each of the four (x, y) types), weighted by their multinomial probabilities. The model is the pair
(P(class 0 | x_1), P(class 0 | x_2)).
"""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch

from caltrain import losses
from caltrain.losses import functional as LF
from caltrain.losses.generative_cross_entropy import CLASS_PRIOR_REMOVED, ImproperLossWarning

TRUE = (0.8, 0.3)
IMPROPER = "ignore:.*exclude_self=True is not a proper loss"


def _compositions(n):
    """[(probability, x [n], y [n])] over the batch compositions of the four (x, y) types."""
    types = [(0, 0), (0, 1), (1, 0), (1, 1)]
    probs = [0.5 * TRUE[0], 0.5 * (1 - TRUE[0]), 0.5 * TRUE[1], 0.5 * (1 - TRUE[1])]
    out = []
    for counts in itertools.product(range(n + 1), repeat=4):
        if sum(counts) != n:
            continue
        w = math.factorial(n)
        for c, p in zip(counts, probs):
            w = w / math.factorial(c) * p**c
        x = [t[0] for t, c in zip(types, counts) for _ in range(c)]
        y = [t[1] for t, c in zip(types, counts) for _ in range(c)]
        out.append((w, torch.tensor(x), torch.tensor(y)))
    assert sum(w for w, _, _ in out) == pytest.approx(1.0, abs=1e-12)
    return out


def _expected(theta, comps, **hp):
    p0 = torch.sigmoid(theta)  # P(class 0 | x_k)
    logp = torch.stack([torch.log(p0), torch.log1p(-p0)], 1)  # [2 inputs, 2 classes]; softmax(logp) = p
    return sum(w * LF.gence(logp[x], y, **hp) for w, x, y in comps)


def _minimiser(n, **hp):
    comps = _compositions(n)
    theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=1, max_iter=60, tolerance_grad=1e-11, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = _expected(theta, comps, **hp)
        loss.backward()
        return loss

    opt.step(closure)
    return torch.sigmoid(theta).tolist()


@pytest.mark.parametrize("n", [2, 6])
def test_the_batch_estimate_is_proper(n):
    assert _minimiser(n) == pytest.approx(TRUE, abs=1e-5)


@pytest.mark.filterwarnings(IMPROPER)
def test_exclude_self_is_not_proper():
    # batch 6: an interior minimiser, over-confident on both inputs
    assert _minimiser(6, exclude_self=True) == pytest.approx((0.844, 0.247), abs=2e-3)
    # batch 2: no minimiser at all; the expected loss falls without bound towards (1, 0)
    comps = _compositions(2)
    path = [float(_expected(torch.logit(torch.tensor([a, 1 - a], dtype=torch.float64)), comps, exclude_self=True))
            for a in (0.8, 0.9, 0.99, 0.999, 0.9999)]
    assert all(b < a for a, b in zip(path, path[1:])) and path[-1] < path[0] - 1.5
    at_truth = float(_expected(torch.logit(torch.tensor(TRUE, dtype=torch.float64)), comps, exclude_self=True))
    assert path[-1] < at_truth - 1.5


def test_exclude_self_warns_once_per_objective_and_on_each_function_call():
    z, y = torch.randn(5, 3), torch.randint(0, 3, (5,))
    with pytest.warns(ImproperLossWarning, match="not a proper loss"):
        obj = losses.create("gence", num_classes=3, exclude_self=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obj(z, y)  # the module warned when it was built, not on every step
        LF.gence(z, y)
        losses.create("gence", num_classes=3)
    with pytest.warns(ImproperLossWarning):
        LF.gence(z, y, exclude_self=True)


def test_exclude_self_with_momentum_raises():
    # regression: exclude_self was silently ignored when momentum > 0
    with pytest.raises(ValueError, match="exclude_self: cannot be combined with momentum"):
        losses.create("gence", num_classes=3, exclude_self=True, momentum=0.9)


@pytest.mark.parametrize("m", [0.5, 0.9, 0.99])
def test_momentum_scales_the_class_level_gradient_by_one_minus_m(m):
    """Same batch repeated: p_hat = p_bar exactly, and the regulariser's gradient is (1 - m) / (1 - m^(t+1)) times
    the batch form's (-> 1 - m at steady state)."""
    gen = torch.Generator().manual_seed(0)
    z0, y = torch.randn(16, 4, generator=gen, dtype=torch.float64), torch.randint(0, 4, (16,), generator=gen)
    obj = losses.create("gence", num_classes=4, momentum=m).double()
    obj.train()

    def regulariser_grad(fn):
        z = z0.clone().requires_grad_(True)
        (fn(z) - torch.nn.functional.cross_entropy(z, y)).backward()
        return z.grad

    batch = regulariser_grad(lambda z: LF.gence(z, y))
    for t in range(0, 60):
        ema = regulariser_grad(lambda z: obj(z, y))  # step t, then the EMA advances
        if t in (0, 5, 59):
            ratio = (1 - m) / (1 - m ** (t + 1))
            torch.testing.assert_close(ema, ratio * batch, rtol=1e-9, atol=1e-15)
    if m == 0.5:
        torch.testing.assert_close(ema, (1 - m) * batch, rtol=1e-9, atol=1e-15)


def test_class_prior_is_removed_with_the_reason():
    z, y = torch.randn(4, 3), torch.randint(0, 3, (4,))
    assert "exactly cross-entropy's gradient" in CLASS_PRIOR_REMOVED
    with pytest.raises(ValueError, match="class_prior: removed.*cross-entropy's gradient"):
        LF.gence(z, y, class_prior=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="class_prior: removed"):
        losses.create("gence", num_classes=3, class_prior=[1.0, 2.0, 3.0])
    from caltrain.train.config import build_config

    # an old configuration fails when it is built, before any data is read, with the reason
    with pytest.raises(ValueError, match=r"loss\.options\.class_prior: .*was a CE run"):
        build_config(base={"loss": {"name": "gence", "options": {"class_prior": [1, 2, 3]}}})
    assert "class_prior" not in losses.create("gence", num_classes=3).hyperparameters()
