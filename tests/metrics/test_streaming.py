"""Streaming classes: k batches equal one shot, dense pooling, state size, reset, merge, all_reduce."""

import numpy as np
import pytest
import torch

from caltrain import metrics as M
from tests.metrics.gloo import run_two_processes


def _data(seed=0, n=600, k=5):
    gen = torch.Generator().manual_seed(seed)
    z = 3 * torch.randn(n, k, generator=gen, dtype=torch.float64)
    return torch.softmax(z, 1), torch.randint(0, k, (n,), generator=gen)


def _feed(metric, p, y, sizes):
    start = 0
    for s in sizes:
        metric.update(p[start : start + s], y[start : start + s])
        start += s
    return metric


@pytest.mark.parametrize("sizes", [[600], [1, 99, 250, 250], [7] * 85 + [5]])
def test_batches_equal_one_shot(sizes):
    p, y = _data()
    pairs = [
        (M.CalibrationError(n_bins=10), M.expected_calibration_error(p, y, n_bins=10)),
        (M.CalibrationError(norm="max"), M.expected_calibration_error(p, y, norm="max")),
        (M.CalibrationError(norm="l2"), M.expected_calibration_error(p, y, norm="l2")),
        (M.ClasswiseCalibrationError(), M.classwise_calibration_error(p, y)),
        (M.NegativeLogLikelihood(), M.negative_log_likelihood(p, y)),
        (M.BrierScore(), M.brier_score(p, y)),
        (M.Accuracy(), M.accuracy(p, y)),
        (M.Accuracy(top_k=3), M.top_k_accuracy(p, y, k=3)),
    ]
    for metric, expected in pairs:
        assert float(_feed(metric, p, y, sizes).compute()) == pytest.approx(float(expected), abs=1e-13)


def test_streaming_summary_equals_summarize():
    p, y = _data(1)
    s = _feed(M.StreamingSummary(n_bins=15), p, y, [100] * 6).compute()
    ref = M.summarize(p, y)
    for key, value in s.items():
        assert value == pytest.approx(ref[key], abs=1e-13), key
    pa = torch.softmax(torch.randn(200, 4, dtype=torch.float64), 1)
    ya = torch.randint(0, 3, (200,))
    for conv in M.ABSTENTION_CONVENTIONS:
        s = _feed(M.StreamingSummary(abstention=conv), pa, ya, [50] * 4).compute()
        ref = M.summarize(pa, ya, abstention=conv)
        for key, value in s.items():
            assert value == pytest.approx(ref[key], abs=1e-13), (conv, key)


def test_dense_pooling_is_exact_not_a_mean_of_batches():
    p, y = _data(2, n=2 * 4 * 4 * 3, k=3)
    dense = p.reshape(6, 4, 4, 3).permute(0, 3, 1, 2).contiguous()
    labels = y.reshape(6, 4, 4).clone()
    labels[:, 0, 0] = -1
    metric = M.CalibrationError(ignore_index=-1)
    for i in range(6):
        metric.update(dense[i : i + 1], labels[i : i + 1])
    keep = labels.reshape(-1) != -1
    assert float(metric.compute()) == pytest.approx(float(M.expected_calibration_error(p[keep], y[keep])), abs=1e-14)
    per_batch = np.mean(
        [float(M.expected_calibration_error(dense[i : i + 1], labels[i : i + 1], ignore_index=-1)) for i in range(6)]
    )
    assert per_batch > float(metric.compute())  # averaging per-batch ECEs inflates it


def test_state_size_is_independent_of_n():
    metric = M.ClasswiseCalibrationError(n_bins=15)
    p, y = _data(3, n=5000, k=4)
    _feed(metric, p, y, [1000] * 5)
    assert all(v.numel() == 4 * 15 for v in metric._state.values())
    assert metric.curve if hasattr(metric, "curve") else True


def test_reset_merge_curve_and_errors():
    p, y = _data(4)
    a = _feed(M.CalibrationError(), p[:300], y[:300], [300])
    b = _feed(M.CalibrationError(), p[300:], y[300:], [300])
    assert float(a.merge(b).compute()) == pytest.approx(float(M.expected_calibration_error(p, y)), abs=1e-14)
    curve = a.curve()
    ref = M.reliability_curve(p, y)
    assert torch.equal(curve.count, ref.count)
    a.reset()
    with pytest.raises(ValueError, match="update"):
        a.compute()
    c = M.ClasswiseCalibrationError()
    c.update(p[:10], y[:10])
    with pytest.raises(ValueError, match="classes"):
        c.update(torch.full((3, 2), 0.5), torch.tensor([0, 1, 0]))
    logits = torch.log(p)
    d = _feed(M.CalibrationError(from_logits=True), logits, y, [600])
    assert float(d.compute()) == pytest.approx(float(M.expected_calibration_error(p, y)), abs=1e-12)


def _ranks(rank, p, y):
    metric = M.StreamingSummary()
    half = p.shape[0] // 2
    metric.update(p[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half])
    cw = M.ClasswiseCalibrationError()
    cw.update(p[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half])
    result = metric.compute()
    result["cw"] = float(cw.compute())
    return result


def test_all_reduce_across_two_processes(tmp_path):
    # A real gloo process group (~10 s): the whole suite runs in about 2 minutes, so this stays in the default run.
    p, y = _data(5, n=400)
    results = run_two_processes(_ranks, tmp_path, p, y, timeout=120)
    ref = M.summarize(p, y)
    for rank in (0, 1):
        assert results[rank]["n"] == 400
        assert results[rank]["ece"] == pytest.approx(ref["ece"], abs=1e-13)
        assert results[rank]["cw"] == pytest.approx(ref["classwise_ece"], abs=1e-13)


def test_all_reduce_sums_states(monkeypatch):
    """Two identical ranks simulated: compute() must see every state doubled, the local state unchanged."""
    dist = torch.distributed
    calls = []

    def fake_all_reduce(tensor, op=None):
        calls.append(tensor.numel())
        tensor.mul_(2)

    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "all_reduce", fake_all_reduce)
    p, y = _data(6)
    metric = M.StreamingSummary().merge(_feed(M.StreamingSummary(), p, y, [600]))
    s = metric.compute()
    doubled = M.summarize(torch.cat([p, p]), torch.cat([y, y]))
    assert len(calls) == 1 and s["n"] == 1200
    for key, value in s.items():
        assert value == pytest.approx(doubled[key], abs=1e-13), key
    assert float(metric._state["n"]) == 600
    local = _feed(M.CalibrationError(sync=False), p, y, [600])
    assert float(local.compute()) == pytest.approx(float(M.expected_calibration_error(p, y)), abs=1e-14)
