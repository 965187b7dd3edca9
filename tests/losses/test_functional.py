"""Every pure objective against its independent NumPy reference (tests/losses/references.py): values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from caltrain.losses import functional as LF
from tests.losses import references as R

CASES = [
    ("ce", {}),
    ("ls", {}), ("ls", {"smoothing": 0.3}),
    ("focal", {}), ("focal", {"gamma": 1.5}),
    ("flsd53", {}),
    ("dual_focal", {}), ("dual_focal", {"gamma": 2.0}),
    ("ecp", {}), ("ecp", {"beta": 0.7}),
    ("brier", {}),
    ("logitnorm", {}), ("logitnorm", {"temperature": 0.5}),
    ("poly1", {}), ("poly1", {"epsilon": -0.5}),
    ("mbls", {}), ("mbls", {"margin": 1.0, "alpha": 0.5}),
    ("mmce", {}), ("mmce", {"weighted": True, "bandwidth": 0.2}),
    ("dca", {}), ("dca", {"weight": 3.0}),
    ("mdca", {}), ("mdca", {"weight": 5.0}),
    ("dece", {}), ("dece", {"n_bins": 5, "temperature": 0.05, "weight": 2.0}),
    ("gence", {}), ("gence", {"weight": 0.5, "exclude_self": True}),
]

# exclude_self=True warns that it is not proper (tests/losses/test_gence.py); the values are still checked here
pytestmark = pytest.mark.filterwarnings("ignore:.*exclude_self=True is not a proper loss")


def _inputs(seed: int, n: int = 12, k: int = 5, scale: float = 3.0):
    g = np.random.default_rng(seed)
    z = g.normal(size=(n, k)) * scale
    y = g.integers(0, k, size=n)
    return z, y


@pytest.mark.parametrize("name,hp", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_value_matches_numpy_reference(name, hp):
    for seed in (0, 1):
        z, y = _inputs(seed, scale=1.0 + 4 * seed)
        ref = R.REFERENCES[name](z, y, **hp)
        zt, yt = torch.tensor(z), torch.tensor(y)
        fn = getattr(LF, name)
        per = fn(zt, yt, reduction="none", **hp)
        np.testing.assert_allclose(per.numpy(), ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(float(fn(zt, yt, **hp)), ref.mean(), rtol=1e-10)
        np.testing.assert_allclose(float(fn(zt, yt, reduction="sum", **hp)), ref.sum(), rtol=1e-10)


@pytest.mark.parametrize("name,hp", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_gradient_matches_finite_differences_of_reference(name, hp):
    z, y = _inputs(3, n=6, k=4, scale=2.0)
    zt = torch.tensor(z, requires_grad=True)
    getattr(LF, name)(zt, torch.tensor(y), **hp).backward()
    h = 1e-6
    num = np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        up, dn = z.copy(), z.copy()
        up[idx] += h
        dn[idx] -= h
        num[idx] = (R.REFERENCES[name](up, y, **hp).mean() - R.REFERENCES[name](dn, y, **hp).mean()) / (2 * h)
    np.testing.assert_allclose(zt.grad.numpy(), num, rtol=1e-5, atol=1e-7)


def test_ls_equals_torch_label_smoothing():
    z, y = _inputs(4)
    zt, yt = torch.tensor(z), torch.tensor(y)
    for a in (0.0, 0.05, 0.1, 1.0):
        torch.testing.assert_close(LF.ls(zt, yt, smoothing=a), F.cross_entropy(zt, yt, label_smoothing=a))


def test_focal_stays_exact_when_true_class_dominates():
    # p_y = 1 − ε with ε ~ e^-30: the naive 1 − exp(log p_y) is 0 in float64; the log-space factor is not.
    z = torch.tensor([[30.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0])
    loss = LF.focal(z, y, gamma=1.0)
    eps = 2 * np.exp(-30.0)
    assert float(loss.detach()) == pytest.approx(eps * eps, rel=1e-6)  # (1 − p)·(−log p) ≈ ε·ε
    loss.backward()
    assert torch.isfinite(z.grad).all()


def test_flsd53_switches_gamma_at_p_0_2():
    # p_y just below and just above 0.2: logits [a, 0, 0, 0] with e^a/(e^a + 3) = p.
    for p, gamma in ((0.19, 5.0), (0.21, 3.0)):
        a = np.log(3 * p / (1 - p))
        z = torch.tensor([[a, 0.0, 0.0, 0.0]], dtype=torch.float64)
        expected = -((1 - p) ** gamma) * np.log(p)
        assert float(LF.flsd53(z, torch.tensor([0]))) == pytest.approx(expected, rel=1e-9)


def test_dual_focal_p_j_is_zero_for_the_smallest_class():
    z = torch.tensor([[3.0, 1.0, -2.0]], dtype=torch.float64)
    p = torch.softmax(z, 1)[0]
    # True class 2 is the least likely: nothing below it, p_j = 0 -> plain focal.
    assert float(LF.dual_focal(z, torch.tensor([2]), gamma=2.0)) == pytest.approx(
        float(-(1 - p[2]) ** 2 * torch.log(p[2])))
    # True class 1: p_j = p_2.
    assert float(LF.dual_focal(z, torch.tensor([1]), gamma=2.0)) == pytest.approx(
        float(-(1 - p[1] + p[2]) ** 2 * torch.log(p[1])))


def test_mbls_is_exactly_ce_within_the_margin_and_linear_beyond():
    z, y = _inputs(5, scale=1.0)
    zt, yt = torch.tensor(z), torch.tensor(y)
    assert (zt.amax(1, keepdim=True) - zt).max() < 10
    assert torch.equal(LF.mbls(zt, yt, reduction="none"), F.cross_entropy(zt, yt, reduction="none"))
    assert torch.equal(LF.mbls(zt, yt), F.cross_entropy(zt, yt, reduction="none").mean())
    # One distance of 13 > m = 10: penalty α·3/K on that sample.
    z1 = torch.tensor([[13.0, 0.0, 5.0]], dtype=torch.float64)
    y1 = torch.tensor([2])
    assert float(LF.mbls(z1, y1) - LF.ce(z1, y1)) == pytest.approx(0.1 * 3 / 3)


def test_mmce_is_zero_for_a_perfectly_calibrated_batch_and_weighted_differs():
    # Two-class batch with conf 0.75 where 3 of 4 predictions are right: c − r sums to 0, but the kernel
    # weights all pairs equally (same r), so MMCE² = (Σ(c − r))²/n² = 0.
    a = np.log(3.0)
    z = torch.tensor([[a, 0.0]] * 4, dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1])
    assert float(LF.mmce(z, y) - LF.ce(z, y)) == pytest.approx(2.0 * 1e-5, abs=1e-12)  # sqrt(1e-10) floor
    zr, yr = _inputs(6)
    assert not torch.isclose(LF.mmce(torch.tensor(zr), torch.tensor(yr)),
                             LF.mmce(torch.tensor(zr), torch.tensor(yr), weighted=True))


def test_dece_tends_to_hard_binned_ece_as_temperature_falls():
    z, y = _inputs(7, n=64, k=3, scale=1.5)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    conf, acc = p.max(1), (p.argmax(1) == y)
    bins = np.minimum((conf * 15).astype(int), 14)
    ece = sum(abs(acc[bins == b].mean() - conf[bins == b].mean()) * (bins == b).mean()
              for b in range(15) if (bins == b).any())
    zt, yt = torch.tensor(z), torch.tensor(y)
    soft = float(LF.dece(zt, yt, weight=1.0, temperature=1e-9) - LF.ce(zt, yt))
    assert soft == pytest.approx(ece, abs=1e-6)


def test_gence_is_permutation_invariant_and_zero_for_one_sample():
    z, y = _inputs(8, n=10)
    zt, yt = torch.tensor(z), torch.tensor(y)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    for hp in ({}, {"exclude_self": True}, {"weight": 0.3}):
        torch.testing.assert_close(LF.gence(zt[perm], yt[perm], **hp), LF.gence(zt, yt, **hp))
        torch.testing.assert_close(LF.gence(zt[perm], yt[perm], reduction="none", **hp),
                                   LF.gence(zt, yt, reduction="none", **hp)[perm])
    for hp in ({}, {"exclude_self": True}):
        assert float(LF.gence(zt[:1], yt[:1], **hp)) == 0.0


def test_gence_is_finite_when_one_sample_dominates_the_class():
    z = torch.tensor([[200.0, 0.0], [-200.0, 0.0], [-200.0, 0.0]], dtype=torch.float32, requires_grad=True)
    y = torch.tensor([0, 0, 1])
    for hp in ({}, {"exclude_self": True}):
        loss = LF.gence(z, y, **hp)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
        z.grad = None


@pytest.mark.parametrize("name", sorted(R.REFERENCES))
def test_rejects_bad_shapes(name):
    fn = getattr(LF, name)
    with pytest.raises(ValueError, match="logits"):
        fn(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="labels: expected an integer tensor"):
        fn(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="same number"):
        fn(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction"):
        fn(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), reduction="avg")
