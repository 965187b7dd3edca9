"""Socrates, Self-Adaptive Training and Deep Gamblers: NumPy references, properties, resume exactness, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caltrain import losses
from caltrain.losses.deep_gamblers import deep_gamblers_loss
from caltrain.losses.self_adaptive_training import sat_loss
from caltrain.losses.socrates import socrates_loss

K, N = 4, 12


def _given(objective, idx):
    """What the trainer hands ``forward``: the dataset indices only to objectives that require them."""
    return {"indices": idx} if "indices" in objective.requires else {}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class _NumpyEMA:
    """Independent reference of the EMA target table (dict of rows, one-hot on the first visit)."""

    def __init__(self, momentum: float) -> None:
        self.m, self.rows = momentum, {}

    def tau(self, z: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
        q = _softmax(z[:, :K])
        out = []
        for i in range(len(y)):
            prev = self.rows.get(int(idx[i]), np.eye(K)[y[i]])
            row = self.m * prev + (1 - self.m) * q[i]
            self.rows[int(idx[i])] = row
            out.append(row[y[i]])
        return np.array(out)


def _np_socrates(z, y, tau, gamma, alpha):
    p = _softmax(z)
    n = len(y)
    p_y, p_idk = p[np.arange(n), y], p[:, -1]
    others = p[:, :-1].copy()
    others[np.arange(n), y] = -np.inf
    beta = np.maximum(others.max(axis=1) - p_idk, 0.0)
    f = alpha * (1 - p_y) ** gamma
    return -(f * tau * np.log(p_y) + f * (1 - tau) * beta * np.log(p_idk))


def _batches(seed: int, steps: int = 4, n: int = 6):
    """Random logits [n, K+1] for random dataset indices; each index keeps its label, as in a dataset."""
    g = torch.Generator().manual_seed(seed)
    dataset_labels = torch.randint(0, K, (N,), generator=g)
    for _ in range(steps):
        idx = torch.randperm(N, generator=g)[:n]
        yield torch.randn(n, K + 1, generator=g, dtype=torch.float64) * 3, dataset_labels[idx], idx


@pytest.mark.parametrize(("momentum", "gamma", "alpha"), [(0.8, 2.0, 1.0), (0.5, 0.0, 1.0), (0.3, 3.0, 0.5)])
def test_socrates_matches_numpy_reference_over_steps(momentum, gamma, alpha):
    obj = losses.create("socrates", num_classes=K, num_samples=N, momentum=momentum, gamma=gamma, alpha=alpha,
                        reduction="none").double()
    ref = _NumpyEMA(momentum)
    for z, y, idx in _batches(0):
        expected = _np_socrates(z.numpy(), y.numpy(), ref.tau(z.numpy(), y.numpy(), idx.numpy()), gamma, alpha)
        np.testing.assert_allclose(obj(z, y, indices=idx).numpy(), expected, rtol=1e-10, atol=1e-12)


def test_sat_matches_numpy_reference_over_steps():
    obj = losses.create("sat", num_classes=K, num_samples=N, momentum=0.7).double()
    ref = _NumpyEMA(0.7)
    for z, y, idx in _batches(1):
        tau = ref.tau(z.numpy(), y.numpy(), idx.numpy())
        p = _softmax(z.numpy())
        expected = -(tau * np.log(p[np.arange(len(y)), y.numpy()]) + (1 - tau) * np.log(p[:, -1])).mean()
        assert float(obj(z, y, indices=idx)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("reward", [1.5, 2.2, 4.0])
def test_deep_gamblers_matches_numpy_reference(reward):
    z, y, _ = next(_batches(2))
    p = _softmax(z.numpy())
    expected = -np.log(p[np.arange(len(y)), y.numpy()] + p[:, -1] / reward).mean()
    assert float(losses.create("deep_gamblers", num_classes=K, reward=reward)(z, y)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("beta", ["dynamic", "no_relu", "step", "constant", "none"])
def test_socrates_gradcheck(beta):
    z, y, _ = next(_batches(3, n=4))
    tau = torch.tensor([0.9, 0.4, 0.7, 1.0], dtype=torch.float64)
    fn = lambda zz: socrates_loss(zz, y, tau, gamma=2.0, beta=beta)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (z.requires_grad_(),))


def test_sat_and_gamblers_gradcheck():
    z, y, _ = next(_batches(4, n=4))
    z.requires_grad_()
    tau = torch.tensor([0.9, 0.4, 0.7, 1.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda zz: sat_loss(zz, y, tau), (z,))
    assert torch.autograd.gradcheck(lambda zz: deep_gamblers_loss(zz, y, reward=2.2), (z,))


def test_socrates_momentum_one_has_no_unknown_term():
    obj = losses.create("socrates", num_classes=K, num_samples=N, momentum=1.0, gamma=2.0).double()
    for z, y, idx in _batches(5):
        p = _softmax(z.numpy())
        p_y = p[np.arange(len(y)), y.numpy()]
        focal = (-(1 - p_y) ** 2 * np.log(p_y)).mean()  # focal loss over the K+1-way softmax
        assert float(obj(z, y, indices=idx)) == pytest.approx(focal, rel=1e-12)
    assert torch.all(obj.targets[obj.seen].sum(1) == 1)


def test_socrates_beta_zero_when_unknown_is_largest_non_true():
    z = torch.tensor([[3.0, 0.0, -1.0, 0.5, 2.0], [0.0, 4.0, 1.0, -2.0, 1.5]], dtype=torch.float64)
    y = torch.tensor([0, 1])
    tau = torch.tensor([0.3, 0.6], dtype=torch.float64)
    z.requires_grad_()
    full = socrates_loss(z, y, tau, gamma=2.0, reduction="none")
    logp = torch.log_softmax(z, 1)
    true_term = -(1 - logp.exp()[[0, 1], y]) ** 2 * tau * logp[[0, 1], y]
    torch.testing.assert_close(full, true_term)
    # and the "none" ablation (beta = 1) does add the unknown term
    assert torch.all(socrates_loss(z, y, tau, gamma=2.0, beta="none", reduction="none") > full)


def test_socrates_beta_positive_otherwise():
    z = torch.tensor([[3.0, 2.0, -1.0, 0.5, 0.0]], dtype=torch.float64)
    y, tau = torch.tensor([0]), torch.tensor([0.5], dtype=torch.float64)
    p = torch.softmax(z, 1)[0]
    f = (1 - p[0]) ** 2
    expected = -(f * 0.5 * torch.log(p[0]) + f * 0.5 * (p[1] - p[-1]) * torch.log(p[-1]))
    torch.testing.assert_close(socrates_loss(z, y, tau), expected)


@pytest.mark.parametrize("name", ["socrates", "sat"])
def test_state_dict_round_trip_resumes_exactly(name):
    obj = losses.create(name, num_classes=K, num_samples=N).double()
    batches = list(_batches(6, steps=5))
    for z, y, idx in batches[:3]:
        obj(z, y, indices=idx)
    clone = losses.create(name, num_classes=K, num_samples=N).double()
    clone.load_state_dict(obj.state_dict())
    torch.testing.assert_close(clone.targets, obj.targets)
    assert torch.equal(clone.seen, obj.seen)
    for z, y, idx in batches[3:]:
        torch.testing.assert_close(clone(z, y, indices=idx), obj(z, y, indices=idx), rtol=0, atol=0)
    assert set(type(obj).sample_state) == {"targets", "seen"}
    assert all(getattr(obj, s).shape[0] == N for s in type(obj).sample_state)


@pytest.mark.parametrize("name", ["socrates", "sat"])
def test_eval_mode_reads_without_advancing(name):
    obj = losses.create(name, num_classes=K, num_samples=N).double()
    z, y, idx = next(_batches(7))
    obj(z, y, indices=idx)
    before = obj.targets.clone()
    obj.eval()
    first = obj(z * 2, y, indices=idx)
    second = obj(z * 2, y, indices=idx)
    assert torch.equal(obj.targets, before) and torch.equal(first, second)
    unseen = torch.tensor([i for i in range(N) if i not in set(idx.tolist())][:2])
    obj(z[:2], y[:2], indices=unseen)
    assert not obj.seen[unseen].any()


@pytest.mark.parametrize(("name", "hp"), [("sat", {"momentum": 0.9}), ("deep_gamblers", {"reward": 2.2})])
def test_warmup_is_ce_on_class_logits_and_resumes(name, hp):
    obj = losses.create(name, num_classes=K, num_samples=N, warmup_epochs=2, **hp).double()
    z, y, idx = next(_batches(8))
    z.requires_grad_()
    obj.on_epoch_start(1)
    loss = obj(z, y, **_given(obj, idx))
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(z[:, :K], y))
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.all(grad[:, -1] == 0)
    if name == "sat":
        assert not obj.seen.any()  # the table is not touched during warm-up
    obj.on_epoch_start(2)
    after = obj(z, y, **_given(obj, idx))
    assert not torch.isclose(after, loss)
    clone = losses.create(name, num_classes=K, num_samples=N, warmup_epochs=2, **hp).double()
    assert clone.warming_up
    clone.load_state_dict(obj.state_dict())  # epoch buffer -> warm-up flag, without on_epoch_start
    assert not clone.warming_up and int(clone.epoch) == 2


def test_protocol_attributes():
    soc = losses.create("socrates", num_classes=K, num_samples=N)
    assert soc.num_outputs == K + 1 and soc.has_abstention and soc.requires == {"indices"}
    assert soc.abstention == "with_unknown"
    dg = losses.create("deep_gamblers", num_classes=K)
    assert dg.num_outputs == K + 1 and dg.requires == frozenset()


@pytest.mark.parametrize("name", ["socrates", "sat", "deep_gamblers"])
def test_reduction_none_and_extreme_logits(name):
    obj = losses.create(name, num_classes=K, num_samples=N, reduction="none")
    z = torch.tensor([[100.0, -100.0, 0.0, 50.0, -100.0], [-100.0, 100.0, -100.0, 0.0, 100.0]])
    y, idx = torch.tensor([1, 0]), torch.tensor([0, 1])
    for dtype in (torch.float32, torch.bfloat16):
        zz = z.to(dtype).detach().requires_grad_()
        out = obj(zz, y, **_given(obj, idx))
        assert out.shape == (2,) and torch.isfinite(out).all()
        out.sum().backward()
        assert torch.isfinite(zz.grad).all()
    mean_obj = losses.create(name, num_classes=K, num_samples=N)
    none_obj = losses.create(name, num_classes=K, num_samples=N, reduction="none")
    z, y, idx = next(_batches(9))
    per_sample = none_obj(z, y, **_given(none_obj, idx))
    torch.testing.assert_close(per_sample.mean(), mean_obj.double()(z, y, **_given(mean_obj, idx)))


@pytest.mark.parametrize(
    ("name", "hp", "match"),
    [
        ("socrates", {"momentum": 1.5}, "momentum"),
        ("socrates", {"momentum": -0.1}, "momentum"),
        ("socrates", {"gamma": -1.0}, "gamma"),
        ("socrates", {"alpha": 0.0}, "alpha"),
        ("socrates", {"beta": "sometimes"}, "beta"),
        ("sat", {"momentum": 2.0}, "momentum"),
        ("sat", {"warmup_epochs": -1}, "warmup_epochs"),
        ("deep_gamblers", {"reward": 1.0}, "reward"),
        ("deep_gamblers", {"reward": K + 0.5}, "reward"),
    ],
)
def test_bad_hyperparameters_raise(name, hp, match):
    with pytest.raises(ValueError, match=match):
        losses.create(name, num_classes=K, num_samples=N, **hp)


def test_bad_inputs_raise():
    obj = losses.create("socrates", num_classes=K, num_samples=N)
    z, y = torch.randn(3, K + 1), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="indices"):
        obj(z, y)
    with pytest.raises(ValueError, match="logits"):
        obj(torch.randn(3, K), y, indices=torch.arange(3))
    with pytest.raises(ValueError, match="num_samples"):
        losses.create("sat", num_classes=K)
