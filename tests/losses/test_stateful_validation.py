"""AdaFocal and CALS: objectives updated once per epoch from validation logits (NumPy references, resume, errors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from caltrain import losses
from caltrain.losses.adaptive_focal import adafocal_loss
from caltrain.losses.class_adaptive_label_smoothing import cals_loss

K = 4


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _data(n: int, seed: int, scale: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, K, generator=g, dtype=torch.float64) * scale, torch.randint(0, K, (n,), generator=g)


# ----------------------------------------------------------------------------------------------- AdaFocal
def _np_adafocal_update(gammas, z, y, lam, switch_pt, gmin, gmax):
    p = _softmax(z)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    order = np.argsort(conf, kind="stable")
    m, n = len(gammas), len(y)
    cuts = [(b * n) // m for b in range(m + 1)]  # equal mass: bin b holds sorted positions [cuts[b], cuts[b+1])
    chunks = [order[cuts[b] : cuts[b + 1]] for b in range(m)]
    new, edges = gammas.copy(), [0.0]
    for b, chunk in enumerate(chunks):
        if b > 0:
            edges.append(conf[chunk].min())
        if len(chunk) == 0:
            continue
        gap = conf[chunk].mean() - correct[chunk].mean()
        g = gammas[b] * math.exp(lam * gap) if gammas[b] > 0 else gammas[b] * math.exp(-lam * gap)
        if abs(g) < switch_pt:
            g = -switch_pt if g > 0 else switch_pt
        new[b] = min(max(g, gmin), gmax)
    return new, np.array(edges + [1.0])


def _np_adafocal_loss(z, y, gammas, edges):
    p = _softmax(z)
    p_y = p[np.arange(len(y)), y]
    g = gammas[np.searchsorted(edges[1:-1], p_y, side="right")]
    factor = np.where(g >= 0, (1 - p_y) ** np.abs(g), (1 + p_y) ** np.abs(g))
    return -factor * np.log(p_y)


def test_adafocal_update_and_loss_match_numpy_reference():
    obj = losses.create("adafocal", num_classes=K, num_bins=5, gamma_initial=1.0, switch_pt=0.2, reduction="none")
    gammas, edges = np.full(5, 1.0), np.linspace(0, 1, 6)
    for epoch in range(4):
        z, y = _data(16, epoch)
        np.testing.assert_allclose(obj(z, y).numpy(), _np_adafocal_loss(z.numpy(), y.numpy(), gammas, edges), rtol=1e-10)
        vz, vy = _data(23, 100 + epoch, scale=2.0 + 3 * epoch)  # sharper each epoch: the gaps change sign
        obj.on_epoch_end(epoch, val_logits=vz, val_labels=vy)
        gammas, edges = _np_adafocal_update(gammas, vz.numpy(), vy.numpy(), 1.0, 0.2, -2.0, 20.0)
        np.testing.assert_allclose(obj.gammas.numpy(), gammas, rtol=1e-12)
        np.testing.assert_allclose(obj.edges.numpy(), edges, rtol=1e-12)
    assert (obj.gammas != 1.0).all()


def test_adafocal_empty_bins_keep_gamma_and_edges_stay_sorted():
    obj = losses.create("adafocal", num_classes=K, num_bins=8)
    vz, vy = _data(5, 7)
    obj.on_epoch_end(0, val_logits=vz, val_labels=vy)
    assert int((obj.gammas == 1.0).sum()) >= 3
    assert torch.all(obj.edges[1:] >= obj.edges[:-1]) and obj.edges[0] == 0 and obj.edges[-1] == 1


def test_adafocal_gamma_zero_is_cross_entropy_and_gradcheck():
    z, y = _data(6, 1)
    torch.testing.assert_close(adafocal_loss(z, y, torch.zeros(6)), torch.nn.functional.cross_entropy(z, y))
    g = torch.tensor([2.0, -1.5, 0.5, 3.0, -0.2, 1.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda zz: adafocal_loss(zz, y, g), (z.requires_grad_(),))


def test_adafocal_overconfidence_raises_gamma():
    obj = losses.create("adafocal", num_classes=K, num_bins=3)
    vz = torch.zeros(30, K, dtype=torch.float64)
    vz[:, 0] = 8.0  # confident in class 0, always wrong
    obj.on_epoch_end(0, val_logits=vz, val_labels=torch.ones(30, dtype=torch.long))
    assert torch.all(obj.gammas > 1.0)


def test_adafocal_resume_and_errors():
    obj = losses.create("adafocal", num_classes=K, num_bins=4)
    vz, vy = _data(20, 3)
    obj.on_epoch_end(0, val_logits=vz, val_labels=vy)
    clone = losses.create("adafocal", num_classes=K, num_bins=4)
    clone.load_state_dict(obj.state_dict())
    z, y = _data(10, 4)
    torch.testing.assert_close(clone(z, y), obj(z, y), rtol=0, atol=0)
    assert obj.needs_validation
    with pytest.raises(ValueError, match="val_logits"):
        obj.on_epoch_end(1)
    for hp, match in [({"num_bins": 0}, "num_bins"), ({"lam": 0.0}, "lam"), ({"switch_pt": -1.0}, "switch_pt"),
                      ({"gamma_initial": 30.0}, "gamma_initial")]:
        with pytest.raises(ValueError, match=match):
            losses.create("adafocal", num_classes=K, **hp)


# ----------------------------------------------------------------------------------------------- CALS
class _NumpyCALS:
    def __init__(self, margin=10.0, lmin=1e-6, lmax=1e6, rmin=1.0, rmax=10.0, rho_step=2, gamma=1.2, tao=0.9):
        self.m, self.lmin, self.lmax, self.rmin, self.rmax = margin, lmin, lmax, rmin, rmax
        self.rho_step, self.gamma, self.tao = rho_step, gamma, tao
        self.lambd, self.rho, self.prev = np.full(K, lmin), np.full(K, rmin), None

    def h(self, z):
        return (z.max(1, keepdims=True) - z - self.m) / self.m

    def loss(self, z, y):
        ce = -np.log(_softmax(z)[np.arange(len(y)), y])
        x = self.lambd + self.rho * self.h(z)
        pen = (np.maximum(x, 0) ** 2 - self.lambd**2) / (2 * self.rho)
        return ce + pen.mean(1)

    def update(self, epoch, z):
        h = self.h(z)
        grad = np.clip(np.maximum(self.lambd + self.rho * h, 0), self.lmin, self.lmax)
        new_lambd = np.clip(grad.mean(0), self.lmin, self.lmax)
        c = h.mean(0)
        if (epoch + 1) % self.rho_step == 0 and self.prev is not None:
            self.rho = np.clip(np.where(c > self.tao * np.maximum(self.prev, 0), self.gamma * self.rho, self.rho),
                               self.rmin, self.rmax)
        self.prev, self.lambd = c, new_lambd


def test_cals_matches_numpy_reference_over_epochs():
    obj = losses.create("cals", num_classes=K, rho_step=2, reduction="none")
    ref = _NumpyCALS(rho_step=2)
    for epoch in range(6):
        z, y = _data(12, epoch, scale=5.0 + 2 * epoch)
        np.testing.assert_allclose(obj(z, y).numpy(), ref.loss(z.numpy(), y.numpy()), rtol=1e-10, atol=1e-12)
        vz, _ = _data(20, 50 + epoch, scale=6.0 + 3 * epoch)
        obj.on_epoch_end(epoch, val_logits=vz, val_labels=torch.zeros(20, dtype=torch.long))
        ref.update(epoch, vz.numpy())
        np.testing.assert_allclose(obj.lambd.numpy(), ref.lambd, rtol=1e-12)
        np.testing.assert_allclose(obj.rho.numpy(), ref.rho, rtol=1e-12)
    assert obj.rho.max() > 1.0 and obj.lambd.max() > 1e-6


def test_cals_gradcheck_and_near_ce_when_constraints_hold():
    z, y = _data(5, 9, scale=1.0)  # all distances far below m = 10: the penalty is -lambda^2 / 2 rho, no gradient
    lam, rho = torch.full((K,), 1e-6, dtype=torch.float64), torch.ones(K, dtype=torch.float64)
    torch.testing.assert_close(cals_loss(z, y, lam, rho), torch.nn.functional.cross_entropy(z, y) - 0.5e-12)
    lam, rho = torch.tensor([0.5, 1.0, 2.0, 0.1], dtype=torch.float64), torch.tensor([1.0, 2.0, 1.5, 3.0], dtype=torch.float64)
    z = z * 12
    assert torch.autograd.gradcheck(lambda zz: cals_loss(zz, y, lam, rho), (z.requires_grad_(),))


def test_cals_resume_and_errors():
    obj = losses.create("cals", num_classes=K, rho_step=1)
    for epoch in range(2):
        obj.on_epoch_end(epoch, val_logits=_data(20, epoch, scale=20.0)[0], val_labels=None)
    clone = losses.create("cals", num_classes=K, rho_step=1)
    clone.load_state_dict(obj.state_dict())
    vz = _data(20, 7, scale=25.0)[0]
    for o in (obj, clone):
        o.on_epoch_end(2, val_logits=vz)
    torch.testing.assert_close(clone.rho, obj.rho, rtol=0, atol=0)
    torch.testing.assert_close(clone.lambd, obj.lambd, rtol=0, atol=0)
    z, y = _data(10, 4)
    torch.testing.assert_close(clone(z, y), obj(z, y), rtol=0, atol=0)
    with pytest.raises(ValueError, match="val_logits"):
        obj.on_epoch_end(3)
    for hp, match in [({"margin": 0.0}, "margin"), ({"margin": -10.0}, "margin"), ({"lambd_min": 0.0}, "lambd_min"),
                      ({"rho_max": 0.5}, "rho_max"), ({"tao": 1.5}, "tao"), ({"rho_step": -1}, "rho_step")]:
        with pytest.raises(ValueError, match=match):
            losses.create("cals", num_classes=K, **hp)


@pytest.mark.parametrize("name", ["adafocal", "cals"])
def test_extreme_logits_finite_and_reduction(name):
    obj = losses.create(name, num_classes=K, reduction="none")
    z = torch.tensor([[100.0, -100.0, 0.0, 50.0], [-100.0, 100.0, -100.0, 0.0]])
    y = torch.tensor([0, 2])
    for dtype in (torch.float32, torch.bfloat16):
        zz = z.to(dtype).detach().requires_grad_()
        out = obj(zz, y)
        assert out.shape == (2,) and torch.isfinite(out).all()
        out.sum().backward()
        assert torch.isfinite(zz.grad).all()
    zz, yy = _data(8, 2)
    torch.testing.assert_close(obj(zz, yy).mean(), losses.create(name, num_classes=K)(zz, yy))
