"""The metrics' fast paths give the reference values to the bit: bin index, top label, bin counts, threads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caltrain import metrics as M
from caltrain.metrics import binning
from caltrain.metrics.ece import _top_label_values, top_label, top_label_statistics
from caltrain.utils.threads import map_chunks


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _reference_bins(scores: torch.Tensor, n_bins: int) -> np.ndarray:
    """(lo, hi] bins against the float64 edges j / B, by exact comparison in float64 (NumPy)."""
    edges = np.arange(1, n_bins) / n_bins
    return np.searchsorted(edges, scores.double().numpy(), side="left")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("n_bins", [1, 3, 7, 10, 15, 20, 49, 100, 999, 10_000])
def test_short_float_bin_index_is_exact_at_and_around_every_edge(dtype, n_bins):
    edges = torch.arange(n_bins + 1, dtype=torch.float64) / n_bins
    at = edges.to(dtype)  # each edge rounded to the dtype: on, above or below the float64 edge
    up = torch.nextafter(at.float(), torch.tensor(2.0)).to(dtype)
    down = torch.nextafter(at.float(), torch.tensor(-1.0)).to(dtype)
    rand = torch.rand(5000, generator=torch.Generator().manual_seed(n_bins)).to(dtype)
    scores = torch.cat([at, up, down, rand]).clamp(0, 1)
    assert binning._float32_ceil_is_exact(n_bins)
    got = binning.uniform_bin_index(scores, n_bins)
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), _reference_bins(scores, n_bins))
    # and the same as the float64 path (the scores as float64 values)
    np.testing.assert_array_equal(got.numpy(), binning.uniform_bin_index(scores.double(), n_bins).numpy())


def _rows_with_ties(k: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(k)
    p = torch.softmax(2 * torch.randn(600, k, generator=g, dtype=torch.float64), 1)
    p[:50] = 1.0 / k  # uniform rows: every class ties
    p[50:100] = torch.eye(k, dtype=torch.float64)[torch.arange(50) % k]  # one-hot rows
    two = torch.zeros(200, k, dtype=torch.float64)  # two classes tie at the maximum, the label below, at or above
    a, b = torch.arange(200) % k, (torch.arange(200) + 1 + torch.arange(200) % (k - 1)) % k
    two[torch.arange(200), a] = 0.4
    two[torch.arange(200), b] = 0.4
    two += (0.2 / k) * (two == 0) * k / max(k - 2, 1)
    p[100:300] = two / two.sum(1, keepdim=True)
    p = p.to(dtype)
    y = torch.randint(0, k, (600,), generator=g)
    y[100:300] = torch.where(torch.arange(200) % 2 == 0, a, b)  # the label is one of the tied classes
    return p, y


@pytest.mark.parametrize("k", [2, 3, 10, 100])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_fast_top_label_equals_torch_max_with_ties(k, dtype):
    p, y = _rows_with_ties(k, dtype)
    conf, correct = _top_label_values(p, y)
    ref_conf, ref_correct = top_label(p, y)
    assert torch.equal(conf, ref_conf) and torch.equal(correct, ref_correct)
    assert bool((correct != (p.gather(1, y[:, None]).squeeze(1) == conf)).any())  # ties were decided


def test_bool_outcomes_take_the_one_bincount_path_with_the_same_sums():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(10_000, generator=g)
    o = torch.rand(10_000, generator=g) < s
    idx = binning.uniform_bin_index(s, 15)
    fast = binning.bin_statistics(s, o, idx, 15)
    slow = binning.bin_statistics(s, o.double(), idx, 15)
    for name in ("count", "conf_sum", "acc_sum"):
        assert torch.equal(getattr(fast, name), getattr(slow, name))
    grouped = binning.bin_statistics(s, o, idx % 5 + 5 * (torch.arange(10_000) % 3), 5, groups=3)
    assert grouped.count.shape == (3, 5) and float(grouped.count.sum()) == 10_000
    assert float(grouped.acc_sum.sum()) == float(o.sum())


def test_top_label_statistics_do_not_depend_on_the_thread_count():
    p, y = _rows_with_ties(10)
    big = torch.softmax(3 * torch.randn(300_000, 10, generator=torch.Generator().manual_seed(1)), 1)
    big[:600] = p
    labels = torch.randint(0, 10, (300_000,), generator=torch.Generator().manual_seed(2))
    results = []
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        stats = top_label_statistics(big, labels, 15)
        results.append(stats)
        assert torch.get_num_threads() == threads
    for other in results[1:]:
        for name in ("count", "conf_sum", "acc_sum"):
            assert torch.equal(getattr(results[0], name), getattr(other, name))
    # and they are the statistics of torch.max's top label, pooled
    conf, correct = top_label(big, labels)
    ref = binning.bin_statistics(conf, correct, binning.uniform_bin_index(conf, 15), 15)
    assert torch.equal(results[0].count, ref.count) and torch.equal(results[0].acc_sum, ref.acc_sum)
    torch.testing.assert_close(results[0].conf_sum, ref.conf_sum, rtol=1e-13, atol=0)


def test_ece_at_two_threads_equals_one_thread():
    g = torch.Generator().manual_seed(3)
    p = torch.softmax(2.5 * torch.randn(200_000, 10, generator=g), 1)
    y = torch.randint(0, 10, (200_000,), generator=g)
    torch.set_num_threads(1)
    one = M.expected_calibration_error(p, y)
    torch.set_num_threads(2)
    assert float(M.expected_calibration_error(p, y)) == float(one)


def test_map_chunks_returns_in_chunk_order_and_raises_a_workers_error():
    torch.set_num_threads(3)
    seen_threads = []

    def fn(a, b):
        seen_threads.append(torch.get_num_threads())
        return (a, b)

    assert map_chunks(fn, 10, 3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert map_chunks(fn, 10, 3, workers=1) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert set(seen_threads) == {1} and torch.get_num_threads() == 3

    def boom(a, b):
        if a == 6:
            raise ValueError("chunk 6")
        return a

    with pytest.raises(ValueError, match="chunk 6"):
        map_chunks(boom, 10, 3, workers=2)
    assert torch.get_num_threads() == 3


@pytest.mark.parametrize("k", [2, 10, 16])
def test_float32_key_top_label_falls_back_for_rows_without_a_positive_maximum(k):
    p, y = _rows_with_ties(k)
    p[3] = 0.0  # maximum 0: the integer keys would not order it; torch.max decides (index 0)
    p[4, :] = -0.0
    conf, correct = _top_label_values(p, y)
    ref_conf, ref_correct = top_label(p, y)
    assert torch.equal(conf, ref_conf) and torch.equal(correct, ref_correct)
    q, z = _rows_with_ties(k)  # every maximum positive: the key path, same values
    assert torch.equal(torch.stack(_top_label_values(q, z)), torch.stack(top_label(q, z)).to(q.dtype))


def _bad_inputs():
    g = torch.Generator().manual_seed(5)
    p = torch.softmax(2 * torch.randn(150_000, 10, generator=g), 1)  # three 2^16-row chunks
    y = torch.randint(0, 10, (150_000,), generator=g)
    nan, off, neg, big = p.clone(), p.clone(), p.clone(), p * 3
    nan[140_000, 3] = float("nan")  # in the last chunk
    off[70_000] *= 1.01
    neg[131_100, 0], neg[131_100, 1] = -0.01, neg[131_100, 1] + 0.01 + neg[131_100, 0]
    return p, y, [nan, off, neg, big]


def test_ece_checks_probabilities_inside_its_pass_with_the_checks_messages():
    from caltrain.utils.checks import check_probabilities

    p, y, bad = _bad_inputs()
    for q in bad:
        with pytest.raises(ValueError) as expected:
            check_probabilities(q, "probs")
        with pytest.raises(ValueError) as got:
            M.expected_calibration_error(q, y)
        assert str(got.value) == str(expected.value)
        float(M.expected_calibration_error(q, y, validate_args=False))  # unchecked: no error
    with pytest.raises(ValueError, match="labels: expected class indices"):  # labels first, as before
        M.expected_calibration_error(bad[0], y + 10)
    checked = top_label_statistics(p, y, 15, check=True)
    plain = top_label_statistics(p, y, 15)
    for name in ("count", "conf_sum", "acc_sum"):
        assert torch.equal(getattr(checked, name), getattr(plain, name))
    assert float(M.expected_calibration_error(p, y)) == float(M.expected_calibration_error(p, y, validate_args=False))
