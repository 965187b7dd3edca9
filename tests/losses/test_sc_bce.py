"""SC-BCE (``sc_bce``), its presets (``bce_ls``, ``disturb_label``), dense ``bce`` and binary ``focal``.

References are closed forms in float64 NumPy written from the paper (arXiv 2307.13539, Eq. of SC-BCE) and the
authors' ``perturbance.py`` (``stochastic_label_perturbation``): one Bernoulli(α) draw per image.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caltrain import losses
from caltrain.losses import functional as LF
from caltrain.losses.binary_cross_entropy import bce
from caltrain.losses.focal import binary_focal
from caltrain.losses.self_calibrating_binary_cross_entropy import sc_bce, truncated_normal_noise


def _bce_np(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """BCE with logits per pixel, float64: softplus(z) − t·z."""
    return np.logaddexp(0.0, z) - t * z


def _data(n=4, h=5, w=6, seed=0, soft=False):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 1, h, w, generator=g, dtype=torch.float64) * 2
    y = torch.rand(n, 1, h, w, generator=g, dtype=torch.float64)
    return z, (y if soft else (y > 0.5).double())


def test_bce_equals_the_closed_form_and_accepts_both_shapes():
    z, y = _data(soft=True)
    expected = _bce_np(z.numpy(), y.numpy()).mean()
    assert float(bce(z, y)) == pytest.approx(expected, rel=1e-12)
    assert float(bce(z[:, 0], y[:, 0])) == pytest.approx(expected, rel=1e-12)
    assert float(bce(z, y[:, 0])) == pytest.approx(expected, rel=1e-12)
    per_image = bce(z, y, reduction="none")
    assert per_image.shape == (4,)
    torch.testing.assert_close(per_image.mean(), bce(z, y))
    assert float(bce(z, y > 0.5)) == pytest.approx(float(bce(z, (y > 0.5).double())), rel=1e-14)


@pytest.mark.parametrize("beta", [0.05, 1.0, 2.0])
def test_alpha_zero_is_bce(beta):
    z, y = _data(soft=True)
    assert float(sc_bce(z, y, alpha=0.0, beta=beta)) == pytest.approx(float(bce(z, y)), rel=1e-14)


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.05), (1.0, 2.0), (1.0, 1.0)])
def test_alpha_one_perturbs_every_image_without_clipping(alpha, beta):
    z, y = _data(soft=True)
    t = (1 - 2 * beta) * y.numpy() + beta  # outside [0, 1] for beta = 2: not clipped
    assert float(sc_bce(z, y, alpha=alpha, beta=beta)) == pytest.approx(_bce_np(z.numpy(), t).mean(), rel=1e-12)


def test_expectation_over_draws_is_bce_against_the_mixed_target():
    """E_Z[SC-BCE] = BCE against (1 − 2αβ)y + αβ: exact by linearity of BCE in the target (closed form over the
    two outcomes of each image's draw), and by averaging many seeded draws."""
    z, y = _data(n=3, soft=True)
    alpha = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    beta = 2.0
    zn, yn, an = z.numpy(), y.numpy(), alpha.numpy()[:, None, None, None]
    mixed = _bce_np(zn, (1 - 2 * an * beta) * yn + an * beta).mean()
    closed = (an * _bce_np(zn, (1 - 2 * beta) * yn + beta) + (1 - an) * _bce_np(zn, yn)).mean()
    assert closed == pytest.approx(mixed, rel=1e-12)
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sc_bce(z, y, alpha=alpha, beta=beta, generator=g) for _ in range(4000)])
    assert float(draws.mean()) == pytest.approx(mixed, abs=5 * float(draws.std()) / np.sqrt(4000))


def test_one_draw_per_image_and_the_generator_reproduces():
    z, y = _data(n=8, soft=True)
    per_image = sc_bce(z, y, alpha=0.5, beta=2.0, generator=torch.Generator().manual_seed(3), reduction="none")
    plain = _bce_np(z.numpy(), y.numpy()).reshape(8, -1).mean(1)
    pert = _bce_np(z.numpy(), -3 * y.numpy() + 2).reshape(8, -1).mean(1)
    for i, v in enumerate(per_image.numpy()):  # every image is wholly perturbed or wholly not
        assert v == pytest.approx(plain[i], rel=1e-12) or v == pytest.approx(pert[i], rel=1e-12)
    again = sc_bce(z, y, alpha=0.5, beta=2.0, generator=torch.Generator().manual_seed(3), reduction="none")
    assert torch.equal(per_image, again)


def test_no_gradient_through_alpha_and_the_gradient_is_bce_against_the_target():
    z, y = _data(n=2, soft=True)
    z.requires_grad_(True)
    alpha = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    loss = sc_bce(z, y, alpha=alpha, beta=0.3)
    loss.backward()
    assert alpha.grad is None
    t = y.clone()
    t[0] = 0.4 * y[0] + 0.3
    torch.testing.assert_close(z.grad, (torch.sigmoid(z.detach()) - t) / z.numel())


def test_truncated_noise_is_bounded_and_only_on_perturbed_images():
    e = truncated_normal_noise((20000,), 1.0, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"),
                               dtype=torch.float64)
    assert float(e.abs().max()) <= 0.25 and float(e.std()) == pytest.approx(0.25 / np.sqrt(3), rel=0.05)
    z, y = _data(soft=True)
    assert float(sc_bce(z, y, alpha=0.0, beta=2.0, noise_std=1.0)) == pytest.approx(float(bce(z, y)), rel=1e-14)
    noisy = sc_bce(z, y, alpha=1.0, beta=0.1, noise_std=1.0, generator=torch.Generator().manual_seed(1))
    assert float(noisy) != pytest.approx(float(sc_bce(z, y, alpha=1.0, beta=0.1)), rel=1e-9)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_bce_ls_is_bce_against_smoothed_targets(eps):
    z, y = _data()
    obj = losses.create("bce_ls", num_classes=2, smoothing=eps)
    expected = _bce_np(z.numpy(), (1 - eps) * y.numpy() + eps / 2).mean()
    assert float(obj(z, y)) == pytest.approx(expected, rel=1e-12)


def test_disturb_label_with_alpha_one_inverts_the_labels():
    z, y = _data()
    obj = losses.create("disturb_label", num_classes=2, alpha=1.0)
    assert float(obj(z, y)) == pytest.approx(float(bce(z, 1 - y)), rel=1e-14)
    assert float(losses.create("disturb_label", num_classes=2, alpha=0.0)(z, y)) == pytest.approx(float(bce(z, y)))


def test_registry_objects_are_dense_binary_with_one_output():
    for name in ("bce", "sc_bce", "bce_ls", "disturb_label", "aslp"):
        obj = losses.create(name, num_classes=2, num_samples=4)
        assert obj.tasks == frozenset({"dense_binary"}) and obj.num_outputs == 1 and obj.paper
    assert losses.create("focal", num_classes=2).tasks == frozenset({"classification", "dense_binary"})
    assert type(losses.create("bce_ls", num_classes=2)).__name__ == "SelfCalibratingBinaryCrossEntropy"
    assert LF.sc_bce is sc_bce and LF.bce is bce


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_binary_focal_closed_form_and_the_focal_entry(gamma):
    z, y = _data(soft=True)
    s = 1 / (1 + np.exp(-z.numpy()))
    yn = y.numpy()
    expected = (-yn * (1 - s) ** gamma * np.log(s) - (1 - yn) * s ** gamma * np.log(1 - s)).mean()
    assert float(binary_focal(z, y, gamma=gamma)) == pytest.approx(expected, rel=1e-10)
    assert float(LF.focal(z, y, gamma=gamma)) == pytest.approx(expected, rel=1e-10)
    assert float(losses.create("focal", num_classes=2, gamma=gamma)(z, y)) == pytest.approx(expected, rel=1e-10)
    if gamma == 0.0:
        assert float(binary_focal(z, y, gamma=0.0)) == pytest.approx(float(bce(z, y)), rel=1e-12)


@pytest.mark.parametrize("fn", [bce, lambda z, y: sc_bce(z, y, alpha=0.5, beta=2.0), binary_focal])
def test_finite_at_extreme_logits(fn):
    z = torch.tensor([100.0, -100.0, 0.0, 100.0]).reshape(2, 1, 1, 2).requires_grad_(True)
    y = torch.tensor([0.0, 1.0, 0.5, 1.0]).reshape(2, 1, 1, 2)
    loss = fn(z, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize(
    ("logits", "targets", "error", "match"),
    [
        (torch.zeros(2, 1, 3, 3), torch.full((2, 1, 3, 3), 1.5), ValueError,
         r"labels: expected values in \[0, 1\] \(dense binary targets\), got values in \[1.5, 1.5\]"),
        (torch.zeros(2, 1, 3, 3), torch.full((2, 1, 3, 3), -0.5), ValueError, r"labels: expected values in \[0, 1\]"),
        (torch.zeros(2, 1, 3, 3), torch.full((2, 1, 3, 3), float("nan")), ValueError, r"expected values in \[0, 1\]"),
        (torch.zeros(2, 3, 3, 3), torch.zeros(2, 1, 3, 3), ValueError, r"logits: expected \[N, 1, H, W\]"),
        (torch.zeros(2, 3), torch.zeros(2, 3), ValueError, r"logits: expected \[N, 1, H, W\] or \[N, H, W\]"),
        (torch.zeros(2, 1, 3, 3), torch.zeros(2, 1, 3, 4), ValueError, r"labels: expected the shape of logits"),
        (torch.zeros(2, 1, 3, 3), torch.zeros(3, 3, 3), ValueError, r"labels: expected the shape of logits"),
        (torch.zeros(2, 1, 3, 3, dtype=torch.long), torch.zeros(2, 1, 3, 3), TypeError, "logits: expected a floating"),
    ],
)
@pytest.mark.parametrize("fn", [bce, lambda z, y: sc_bce(z, y, alpha=0.5, beta=2.0), binary_focal])
def test_bad_inputs_raise_clear_errors(fn, logits, targets, error, match):
    with pytest.raises(error, match=match):
        fn(logits, targets)


def test_bad_hyperparameters_raise_naming_them():
    z, y = _data()
    for kwargs, name in [({"alpha": 1.5, "beta": 1.0}, "alpha"), ({"alpha": 0.5, "beta": -1.0}, "beta"),
                         ({"alpha": 0.5, "beta": 1.0, "noise_std": -1.0}, "noise_std"),
                         ({"alpha": torch.zeros(3), "beta": 1.0}, "alpha")]:
        with pytest.raises(ValueError, match=name):
            sc_bce(z, y, **kwargs)
    with pytest.raises(ValueError, match="smoothing"):
        losses.create("bce_ls", num_classes=2, smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        losses.create("sc_bce", num_classes=2, reduction="average")
