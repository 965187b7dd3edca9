import numpy as np
import pytest
import torch

from caltrain.utils import checks


def test_as_tensor_accepts_numpy_without_copy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = checks.as_tensor(a, "x")
    assert t.shape == (2, 3) and t.dtype == torch.float32
    a[0, 0] = 42
    assert t[0, 0] == 42  # shares memory


def test_as_tensor_rejects_object_arrays():
    with pytest.raises(TypeError, match="x: expected a numeric array"):
        checks.as_tensor(np.array([object()]), "x")


def test_probabilities_errors_name_argument_and_expectation():
    with pytest.raises(ValueError, match=r"probs: rows must sum to 1.*off by 0.1"):
        checks.check_probabilities(torch.tensor([[0.5, 0.4], [0.5, 0.5]]), "probs")
    with pytest.raises(ValueError, match=r"probs: expected probabilities in \[0, 1\].*from_logits=True"):
        checks.check_probabilities(torch.tensor([[3.0, -2.0]]), "probs")
    with pytest.raises(ValueError, match="probs: expected finite values, found 1 NaN and 0 infinite"):
        checks.check_probabilities(torch.tensor([[float("nan"), 1.0]]), "probs")
    checks.check_probabilities(torch.tensor([[0.25, 0.75]]), "probs")


def test_labels_range_and_ignore_index():
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 2\], got values in \[0, 3\]"):
        checks.check_labels(torch.tensor([0, 3]), 3)
    checks.check_labels(torch.tensor([0, 255, 2]), 3, ignore_index=255)
    with pytest.raises(TypeError, match="labels: expected integer class indices"):
        checks.check_labels(torch.tensor([0.0, 1.0]), 3)


def test_number_and_int_checks():
    assert checks.check_number(0.5, "momentum", low=0, high=1) == 0.5
    with pytest.raises(ValueError, match=r"momentum: expected a finite number in \[0, 1\], got 1.5"):
        checks.check_number(1.5, "momentum", low=0, high=1)
    with pytest.raises(ValueError, match=r"gamma: expected a finite number in \[0, inf\)"):
        checks.check_number(-1, "gamma", low=0)
    with pytest.raises(ValueError, match="n_bins: expected an integer >= 1, got 0"):
        checks.check_positive_int(0, "n_bins")
    with pytest.raises(ValueError, match="n_bins: expected an integer >= 1, got True"):
        checks.check_positive_int(True, "n_bins")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("k", [10, 100, 1000])
def test_half_precision_softmax_passes_and_one_percent_off_fails(dtype, k):
    """fp16 / bf16 rows are off by up to eps / 2 from rounding alone: the tolerance scales with the dtype."""
    g = torch.Generator().manual_seed(k)
    z = torch.randn(500, k, generator=g) * 3
    checks.check_probabilities(torch.softmax(z.to(dtype), dim=1))  # computed in the dtype
    checks.check_probabilities(torch.softmax(z.double(), dim=1).to(dtype))  # computed in float64, stored in dtype
    if dtype == torch.float16:  # a hand-rolled softmax whose normaliser is rounded too (2 roundings)
        e = torch.exp(z.half() - z.half().amax(1, keepdim=True))
        checks.check_probabilities(e / e.sum(1, keepdim=True))
    exact = torch.softmax(z.double(), dim=1)
    for factor in (1.01, 0.99):
        with pytest.raises(ValueError, match="probs: (rows must sum to 1|expected probabilities in)"):
            checks.check_probabilities((exact * factor).to(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_full_precision_keeps_the_tight_tolerance_and_one_percent_fails(dtype):
    p = torch.softmax(torch.randn(200, 100, generator=torch.Generator().manual_seed(0)), 1).to(dtype)
    checks.check_probabilities(p)
    with pytest.raises(ValueError, match=r"within 0\.0001\), worst row is off by 0\.01"):
        checks.check_probabilities(p * 1.01)
    with pytest.raises(ValueError, match=r"within 0\.0001\)"):
        checks.check_probabilities(p * (1 + 3e-4))  # what fp16 may be off by is still an error in full precision


def test_probability_tolerance_rule():
    assert checks.probability_tolerance(torch.float64) == pytest.approx(1e-4)
    assert checks.probability_tolerance(torch.float16) == pytest.approx(1e-4 + 2**-10)
    assert checks.probability_tolerance(torch.bfloat16) == pytest.approx(1e-4 + 5e-3)  # capped below 1% - 1.01 u
    assert checks.probability_tolerance(torch.bfloat16) < 0.01 - 1.01 * 2**-8
    with pytest.raises(ValueError, match=r"within 0\.0051 for bfloat16\)"):
        checks.check_probabilities(torch.tensor([[0.5, 0.49]], dtype=torch.bfloat16))


def test_n_bins_cap():
    assert checks.check_n_bins(1) == 1 and checks.check_n_bins(checks.MAX_BINS) == checks.MAX_BINS
    assert checks.check_n_bins(np.int64(15)) == 15
    with pytest.raises(ValueError, match=r"n_bins: expected an integer in \[1, 10000\], got 10001 \(more bins"):
        checks.check_n_bins(10_001)
    with pytest.raises(ValueError, match=r"n_pieces: expected an integer in \[1, 10000\], got 1000000000"):
        checks.check_n_bins(10**9, "n_pieces")
    for bad in (0, -1, 2.0, True, "15", None):
        with pytest.raises(ValueError, match=r"n_bins: expected an integer in \[1, 10000\]"):
            checks.check_n_bins(bad)
