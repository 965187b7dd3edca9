"""CalibratedModel: a PyTorch model and a calibrator as one nn.Module, fitted on a validation DataLoader."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from caltrain import posthoc
from caltrain.posthoc import CalibratedModel


def _problem(n: int = 512, k: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    w = torch.randn(8, k, generator=g)
    y = (x @ w + 0.8 * torch.randn(n, k, generator=g)).argmax(dim=1)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, k))
    with torch.no_grad():  # make it over-confident, and its training mode noisy (dropout)
        net[3].weight.mul_(5.0)
    return net, x, y


class _Triples(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i], i  # (x, y, index)


def _by_hand(net, x, y, name="ts", **options):
    net.eval()
    with torch.no_grad():
        z = net(x)
    net.train()
    return posthoc.create(name, **options).fit(z, y), z


def test_ts_through_the_wrapper_equals_ts_by_hand():
    net, x, y = _problem()
    net.train()
    cm = CalibratedModel(net, "ts").fit(DataLoader(TensorDataset(x, y), batch_size=64, shuffle=False))
    assert net.training and cm.model is net  # the model's mode is restored
    cal, z = _by_hand(net, x, y)
    assert cm.calibrator.temperature_ == pytest.approx(cal.temperature_, rel=1e-9)
    cm.eval()
    with torch.no_grad():
        out = cm(x)
    assert out.dtype == torch.float32 and out.shape == z.shape and not out.requires_grad
    torch.testing.assert_close(out, (z.double() / cal.temperature_).float())
    torch.testing.assert_close(cm.predict_proba(x), cal.predict_proba(z))
    torch.testing.assert_close(torch.softmax(out.double(), 1), cm.predict_proba(x), atol=1e-6, rtol=0)


def test_loader_of_triples_and_shuffled_batches_give_the_same_fit():
    net, x, y = _problem()
    a = CalibratedModel(net, "ts").fit(DataLoader(_Triples(x, y), batch_size=50, shuffle=True))
    b = CalibratedModel(net, "ts").fit(DataLoader(TensorDataset(x, y), batch_size=512))
    assert a.calibrator.temperature_ == pytest.approx(b.calibrator.temperature_, rel=1e-6)


def test_non_logit_map_forward_returns_log_probabilities():
    net, x, y = _problem()
    cm = CalibratedModel(net, "histogram", n_bins=5).fit(DataLoader(TensorDataset(x, y), batch_size=128))
    cal, z = _by_hand(net, x, y, "histogram", n_bins=5)
    cm.eval()
    with torch.no_grad():
        out = cm(x)
    torch.testing.assert_close(out, torch.log(cal.predict_proba(z)).float())
    torch.testing.assert_close(torch.softmax(out.double(), 1), cm.predict_proba(x), atol=1e-6, rtol=0)


def test_abstention_convention_passes_through():
    net, x, y = _problem(k=4)  # read as 3 classes + an abstention output
    y = y.clamp(max=2)
    loader = DataLoader(TensorDataset(x, y), batch_size=128)
    cm = CalibratedModel(net, "ts", abstention="renormalized").fit(loader)
    cal, z = _by_hand(net, x, y, "ts", abstention="renormalized")
    cm.eval()
    with torch.no_grad():
        assert cm(x).shape == (len(x), 3)
    assert cm.calibrator.temperature_ == pytest.approx(cal.temperature_, rel=1e-9)
    assert CalibratedModel(net, "ts", abstention="with_unknown").fit(loader).predict_proba(x).shape == (len(x), 4)


def test_binary_single_logit_model_keeps_its_output_shape():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(400, 5, generator=g)
    y = (x[:, 0] + 0.5 * torch.randn(400, generator=g) > 0).long()
    net = nn.Linear(5, 1)
    cm = CalibratedModel(net, "platt").fit(DataLoader(TensorDataset(x, y), batch_size=100))
    with torch.no_grad():
        assert cm(x).shape == (400, 1)
        assert cm.predict_proba(x).shape == (400, 2)
        cal = posthoc.create("platt").fit(net(x)[:, 0], y)
        torch.testing.assert_close(cm(x)[:, 0], cal.transform(net(x)[:, 0]).float())


def test_state_dict_holds_the_calibrator_and_loads_with_weights_only():
    net, x, y = _problem()
    cm = CalibratedModel(net, "vector").fit(DataLoader(TensorDataset(x, y), batch_size=128))
    buf = io.BytesIO()
    torch.save(cm.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert "_extra_state" in state and any(k.startswith("model.") for k in state)
    fresh_net, _, _ = _problem(seed=1)
    restored = CalibratedModel(fresh_net, "vector")
    restored.load_state_dict(state)
    restored.eval()
    cm.eval()
    with torch.no_grad():
        torch.testing.assert_close(restored(x), cm(x))
    # an unfitted wrapper round-trips as unfitted; a tampered calibrator is refused, naming the field
    empty = CalibratedModel(nn.Linear(8, 4), "ts")
    empty.load_state_dict(CalibratedModel(nn.Linear(8, 4), "ts").state_dict())
    with pytest.raises(posthoc.NotFittedError):
        empty.predict_proba(x)
    state["_extra_state"]["calibrator"]["fitted"]["bias_"] = [1.0]
    with pytest.raises(ValueError, match="bias_"):
        CalibratedModel(fresh_net, "vector").load_state_dict(state)


def test_bad_inputs_are_named():
    net, x, y = _problem()
    with pytest.raises(ValueError, match=r"loader: batch 0: expected \(x, y\)"):
        CalibratedModel(net).fit([x[:10]])
    with pytest.raises(ValueError, match="no batch"):
        CalibratedModel(net).fit([])
    with pytest.raises(TypeError, match="calibrator"):
        CalibratedModel(net, 3)
    with pytest.raises(posthoc.NotFittedError):
        CalibratedModel(net)(x)


def test_fitted_calibrator_given_is_used_as_is():
    net, x, y = _problem()
    cal, z = _by_hand(net, x, y)
    cm = CalibratedModel(net, cal).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(cm(x), (z.double() / cal.temperature_).float())


@pytest.mark.parametrize("name", posthoc.names())
@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_fit_inside_no_grad_or_inference_mode(name, context):
    k = 2 if posthoc.CALIBRATORS.get(name).binary_only else 3
    g = torch.Generator().manual_seed(0)
    with getattr(torch, context)():
        z = 3.0 * torch.randn(300, k, generator=g)
        y = (z + 2.0 * torch.randn(300, k, generator=g)).argmax(dim=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            cal = posthoc.create(name).fit(z, y)
        inside = cal.predict_proba(z)
    reference = posthoc.create(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference.fit(z.clone(), y.clone())
    torch.testing.assert_close(inside.clone(), reference.predict_proba(z.clone()))
