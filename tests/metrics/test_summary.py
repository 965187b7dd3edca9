"""summarize: keys, agreement with the functions, abstention conventions, true posterior (speed: bench/metrics.py)."""

import pytest
import torch

from caltrain import metrics as M


def _data(n=1000, k=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = 2 * torch.randn(n, k, generator=gen, dtype=torch.float64)
    q = torch.softmax(z, 1)
    y = torch.multinomial(q, 1, generator=gen).squeeze(1)
    return torch.softmax(2 * z, 1), y, q


def test_keys_and_values_match_the_functions():
    p, y, q = _data()
    s = M.summarize(p, y, n_bins=12, true_posterior=q)
    assert list(s)[: len(M.SUMMARY_KEYS)] == list(M.SUMMARY_KEYS) and "true_ece" in s
    assert type(s["n"]) is int and all(type(v) is float for k, v in s.items() if k != "n")
    conf, correct = p.max(1).values, p.argmax(1) == y
    expected = {
        "n": 1000.0,
        "accuracy": M.accuracy(p, y),
        "nll": M.negative_log_likelihood(p, y),
        "brier": M.brier_score(p, y),
        "ece": M.expected_calibration_error(p, y, 12),
        "mce": M.expected_calibration_error(p, y, 12, norm="max"),
        "rmsce": M.expected_calibration_error(p, y, 12, norm="l2"),
        "adaece": M.adaptive_calibration_error(p, y, 12),
        "classwise_ece": M.classwise_calibration_error(p, y, 12),
        "smooth_ece": M.smooth_calibration_error(p, y),
        "aurc": M.aurc(conf, correct),
        "eaurc": M.eaurc(conf, correct),
        "true_ece": M.true_calibration_error(p, q),
    }
    for key, value in expected.items():
        assert s[key] == pytest.approx(float(value), abs=1e-13), key


def test_abstention_conventions_hand_computed():
    # K = 2 classes + unknown
    p = torch.tensor([[0.5, 0.2, 0.3], [0.1, 0.3, 0.6], [0.2, 0.6, 0.2]], dtype=torch.float64)
    y = torch.tensor([0, 1, 0])
    w = M.summarize(p, y, abstention="with_unknown", n_bins=10)
    # predictions 0 (ok), unknown (wrong), 1 (wrong); conf .5 .6 .6
    assert w["accuracy"] == pytest.approx(1 / 3) and w["abstention_rate"] == pytest.approx(1 / 3)
    assert w["ece"] == pytest.approx((abs(1 - 0.5) + abs(0 - 0.6) * 2) / 3)
    wo = M.summarize(p, y, abstention="without_unknown", n_bins=10)
    # predictions 0 (ok, .5), 1 (ok, .3), 1 (wrong, .6)
    assert wo["accuracy"] == pytest.approx(2 / 3)
    assert wo["ece"] == pytest.approx((0.5 + 0.7 + 0.6) / 3)
    assert wo["nll"] == pytest.approx(-(torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))).mean().item())
    r = M.summarize(p, y, abstention="renormalized", n_bins=10)
    q = p[:, :2] / p[:, :2].sum(1, keepdim=True)
    assert r["ece"] == pytest.approx(float(M.expected_calibration_error(q, y, 10)))
    # selective metrics rank by -p_unknown: kept first row 2 (.2, wrong under renormalized), then row 0, row 1
    assert r["aurc"] == pytest.approx(float(M.aurc(-p[:, 2], q.argmax(1) == y)))
    with pytest.raises(ValueError, match="abstention"):
        M.summarize(p, y, abstention="ignore")
    with pytest.raises(ValueError, match="labels"):
        M.summarize(p, torch.tensor([0, 2, 0]), abstention="renormalized")


def test_true_ece_with_unknown_prediction_counts_zero_posterior():
    p = torch.tensor([[0.1, 0.2, 0.7]], dtype=torch.float64)
    q = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    s = M.summarize(p, torch.tensor([0]), abstention="with_unknown", true_posterior=q)
    assert s["true_ece"] == pytest.approx(0.7)


def test_dense_and_ignore_index():
    p, y, q = _data(2 * 3 * 5, 3)
    dense = p.reshape(2, 3, 5, 3).permute(0, 3, 1, 2)
    qd = q.reshape(2, 3, 5, 3).permute(0, 3, 1, 2)
    labels = y.reshape(2, 3, 5).clone()
    labels[1] = 9
    s = M.summarize(dense, labels, ignore_index=9, true_posterior=qd)
    ref = M.summarize(p[:15], y[:15], true_posterior=q[:15])
    assert s == pytest.approx(ref, abs=1e-13)
