"""Properties every registered objective must have (parametrised over ``caltrain.losses.names()``).

Objectives whose inputs are logits, labels and dataset indices only are checked on raw logits here; those that
also need the model or the inputs (CalMO and its ablations) are exercised by the generic loop of test_protocol.py.
"""

from __future__ import annotations

import pytest
import torch

from caltrain import losses
from caltrain.utils.registry import UnknownNameError
from tests.losses import references as R

K = 4
N = 6

#: Hyperparameters at which the objective is plain cross-entropy (on the first K logits for abstention heads,
#: after ``on_epoch_start(0)`` for warm-up schedules). Objectives without such a setting are absent.
NEUTRAL = {
    "ce": {}, "ls": {"smoothing": 0.0}, "focal": {"gamma": 0.0}, "dual_focal": {"gamma": 0.0}, "ecp": {"beta": 0.0},
    "mmce": {"weight": 0.0}, "dca": {"weight": 0.0}, "mdca": {"weight": 0.0}, "dece": {"weight": 0.0},
    "poly1": {"epsilon": 0.0}, "mbls": {"alpha": 0.0}, "gence": {"weight": 0.0},
    "sat": {"warmup_epochs": 1}, "deep_gamblers": {"warmup_epochs": 1},
}
#: Hyperparameter values that must raise ValueError at construction.
BAD = {
    "ls": [{"smoothing": -0.1}, {"smoothing": 1.5}],
    "focal": [{"gamma": -1.0}],
    "dual_focal": [{"gamma": -1.0}],
    "ecp": [{"beta": -0.5}],
    "mmce": [{"weight": -1.0}, {"bandwidth": 0.0}, {"weighted": "yes"}],
    "dca": [{"weight": -1.0}],
    "mdca": [{"weight": float("nan")}],
    "dece": [{"n_bins": 0}, {"temperature": 0.0}, {"weight": -1.0}],
    "logitnorm": [{"temperature": 0.0}, {"temperature": -1.0}],
    "poly1": [{"epsilon": -2.0}],
    "mbls": [{"margin": -1.0}, {"alpha": -0.1}],
    "gence": [{"weight": -1.0}, {"momentum": 1.0}, {"class_prior": [1.0, 2.0, 3.0, 4.0]},
              {"exclude_self": True, "momentum": 0.9}],
    "socrates": [{"momentum": 1.5}, {"momentum": -0.1}, {"gamma": -1.0}],
    "sat": [{"momentum": 1.5}, {"momentum": -0.1}],
    "deep_gamblers": [{"reward": 0.5}],
    "cals": [{"margin": -1.0}],
    "calmo": [{"epsilon": -1.0}],
}


def logit_only() -> list[str]:
    """Classification objectives of logits, labels (and indices); the dense binary ones
    (``tasks == {"dense_binary"}``) have their own properties in test_sc_bce.py / test_aslp.py."""
    return [n for n in losses.names() if _make(n).requires <= {"indices"} and "classification" in _make(n).tasks]


def _make(name: str, **hp) -> losses.Objective:
    return losses.create(name, num_classes=K, num_samples=32, **hp)


def _call(obj, logits, labels):
    kwargs = {"indices": torch.arange(labels.shape[0])} if "indices" in obj.requires else {}
    return obj(logits, labels, **kwargs)


def _data(dtype=torch.float64, seed=0, outputs=K, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(N, outputs, generator=g, dtype=torch.float64) * scale).to(dtype)
    y = torch.randint(0, K, (N,), generator=g)
    return z, y


@pytest.mark.parametrize("name", sorted(NEUTRAL))
def test_neutral_setting_equals_cross_entropy(name):
    if name not in losses.names():
        pytest.skip(f"{name} not registered")
    obj = _make(name, **NEUTRAL[name])
    obj.on_epoch_start(0)
    z, y = _data(outputs=obj.num_outputs)
    expected = R.ce(z[:, :K].numpy(), y.numpy()).mean()
    assert float(_call(obj, z, y)) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("name", logit_only())
def test_finite_loss_and_gradient_at_extreme_logits(name, dtype):
    obj = _make(name)
    obj.on_epoch_start(0)
    g = torch.Generator().manual_seed(1)
    signs = torch.randint(0, 2, (N, obj.num_outputs), generator=g) * 2 - 1
    for scale in (100.0, -100.0, 0.0):
        z = (signs * scale).to(dtype).requires_grad_(True)
        y = torch.arange(N) % K
        loss = _call(obj, z, y)
        loss.backward()
        assert torch.isfinite(loss.detach().float()), (name, scale)
        assert z.grad is not None and torch.isfinite(z.grad.float()).all(), (name, scale)
    # a confidently right and a confidently wrong sample in the same batch
    z = torch.full((2, obj.num_outputs), -100.0, dtype=dtype)
    z[0, 0] = z[1, 1] = 100.0
    z.requires_grad_(True)
    loss = _call(obj, z, torch.tensor([0, 0]))
    loss.backward()
    assert torch.isfinite(loss.detach().float()) and torch.isfinite(z.grad.float()).all()


@pytest.mark.parametrize("name", logit_only())
def test_gradcheck_float64(name):
    obj = _make(name)
    obj.on_epoch_start(0)
    obj.eval()  # state (EMA tables) must not advance between gradcheck's evaluations
    z, y = _data(outputs=obj.num_outputs, seed=2, scale=1.0)
    z.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: _call(obj, t, y), (z,), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", logit_only())
def test_reduction_none_is_per_sample_and_its_mean_is_the_default(name):
    z, y = _data(outputs=_make(name).num_outputs, seed=3)
    results = {}
    for reduction in ("mean", "none", "sum"):
        obj = _make(name, reduction=reduction)
        obj.on_epoch_start(0)
        results[reduction] = _call(obj, z, y)
    assert results["none"].shape == (N,)
    assert results["mean"].shape == ()
    torch.testing.assert_close(results["none"].mean(), results["mean"])
    torch.testing.assert_close(results["none"].sum(), results["sum"])


@pytest.mark.parametrize("name", logit_only())
def test_objective_module_equals_functional_form(name):
    if not hasattr(losses.functional, name):
        pytest.skip(f"{name} is not a pure function of (logits, labels)")
    z, y = _data(seed=4)
    obj = _make(name)
    torch.testing.assert_close(_call(obj, z, y), getattr(losses.functional, name)(z, y))


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_hyperparameters_raise_value_error_naming_them(name):
    if name not in losses.names():
        pytest.skip(f"{name} not registered")
    for hp in BAD[name]:
        key = next(iter(hp))
        with pytest.raises(ValueError, match=key):
            _make(name, **hp)


@pytest.mark.parametrize("name", losses.names())
def test_bad_reduction_and_unknown_hyperparameter(name):
    with pytest.raises(ValueError, match="reduction"):
        _make(name, reduction="average")
    with pytest.raises(TypeError, match="valid parameters"):
        _make(name, not_a_hyperparameter=1)


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(UnknownNameError) as info:
        losses.create("focla", num_classes=3)
    message = str(info.value)
    assert "'focal'" in message and all(n in message for n in losses.names())
    with pytest.raises(ValueError):  # UnknownNameError is also a ValueError
        losses.create("nope", num_classes=3)


def test_every_required_name_of_the_issue_is_registered():
    required = {"ce", "ls", "focal", "flsd53", "dual_focal", "ecp", "brier", "mmce", "dca", "mdca", "dece",
                "logitnorm", "poly1", "mbls", "gence"}
    assert required <= set(losses.names())


def test_gence_ema_first_batch_is_the_batch_estimate_then_mixes_and_round_trips():
    z, y = _data(seed=5)
    obj = _make("gence", momentum=0.9)
    obj.train()
    first = _call(obj, z, y)
    torch.testing.assert_close(first, losses.functional.gence(z, y))
    z2, y2 = _data(seed=6)
    pbar1 = torch.softmax(z, 1).mean(0)
    pbar2 = torch.softmax(z2, 1).mean(0)
    est = (0.9 * 0.1 * pbar1 + 0.1 * pbar2) / (1 - 0.9**2)
    expected = torch.nn.functional.cross_entropy(z2, y2, reduction="none") + torch.log(est[y2])
    saved = {k: v.clone() for k, v in obj.state_dict().items()}
    second = _call(obj, z2, y2)
    torch.testing.assert_close(second, expected.mean())
    clone = _make("gence", momentum=0.9)
    clone.load_state_dict(saved)
    torch.testing.assert_close(_call(clone, z2, y2), second)
    clone.eval()
    before = clone.prior_ema.clone()
    _call(clone, z2, y2)
    assert torch.equal(clone.prior_ema, before)  # eval mode does not advance the EMA
