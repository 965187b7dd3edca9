"""torchmetrics.Metric classes: equal caltrain's functions batch by batch and pooled, in collections, across processes."""

import importlib
import subprocess
import sys
import warnings

import pytest
import torch

pytest.importorskip("torchmetrics")

from torchmetrics import MetricCollection  # noqa: E402
from torchmetrics.classification import BinaryCalibrationError, MulticlassCalibrationError  # noqa: E402

from caltrain import metrics as M  # noqa: E402
from tests.metrics.gloo import run_two_processes  # noqa: E402
from caltrain.metrics import torchmetrics_metrics as T  # noqa: E402

K = 5


def _data(seed=0, n=600, k=K, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    z = 3 * torch.randn(n, k, generator=gen, dtype=torch.float64)
    return torch.softmax(z, 1).to(dtype), torch.randint(0, k, (n,), generator=gen)


def _top(p, y):
    conf, pred = p.max(1)
    return conf, pred == y


def _pairs(k=K):
    """(metric, function of (probs, labels, **kw)) for every class."""
    return {
        "ece": (lambda **kw: T.ExpectedCalibrationError(n_bins=10, **kw),
                lambda p, y, **kw: M.expected_calibration_error(p, y, n_bins=10, **kw)),
        "rmsce": (lambda **kw: T.ExpectedCalibrationError(norm="l2", **kw),
                  lambda p, y, **kw: M.expected_calibration_error(p, y, norm="l2", **kw)),
        "mce": (lambda **kw: T.ExpectedCalibrationError(norm="max", **kw),
                lambda p, y, **kw: M.expected_calibration_error(p, y, norm="max", **kw)),
        "adaece": (lambda **kw: T.AdaptiveCalibrationError(n_bins=10, **kw),
                   lambda p, y, **kw: M.adaptive_calibration_error(p, y, n_bins=10, **kw)),
        "adaece_max": (lambda **kw: T.AdaptiveCalibrationError(norm="max", **kw),
                       lambda p, y, **kw: M.expected_calibration_error(p, y, norm="max", binning="quantile", **kw)),
        "classwise": (lambda **kw: T.ClasswiseCalibrationError(k, **kw),
                      lambda p, y, **kw: M.classwise_calibration_error(p, y, **kw)),
        "classwise_l2": (lambda **kw: T.ClasswiseCalibrationError(k, n_bins=7, norm="l2", **kw),
                         lambda p, y, **kw: M.classwise_calibration_error(p, y, n_bins=7, norm="l2", **kw)),
        "nll": (lambda **kw: T.NegativeLogLikelihood(**kw), M.negative_log_likelihood),
        "brier": (lambda **kw: T.BrierScore(**kw), M.brier_score),
        "aurc": (lambda **kw: T.AURC(**kw), lambda p, y, **kw: M.aurc(*_top(*M.validation.prepare(p, y, **kw)))),
        "eaurc": (lambda **kw: T.EAURC(**kw), lambda p, y, **kw: M.eaurc(*_top(*M.validation.prepare(p, y, **kw)))),
    }


SPLITS = [[600], [1, 99, 250, 250], [7] * 85 + [5], [300, 1, 299]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sizes", SPLITS)
def test_forward_and_compute_equal_the_functions(dtype, sizes):
    p, y = _data(dtype=dtype)
    for name, (make, fn) in _pairs().items():
        metric = make()
        start = 0
        for s in sizes:
            pb, yb = p[start : start + s], y[start : start + s]
            batch_value = metric(pb, yb)  # forward: the value of this batch alone
            assert batch_value.dtype == torch.float64
            assert float(batch_value) == pytest.approx(float(fn(pb, yb)), abs=1e-12), name
            start += s
        assert float(metric.compute()) == pytest.approx(float(fn(p, y)), abs=1e-12), name


def test_dense_logits_and_ignore_index():
    gen = torch.Generator().manual_seed(3)
    logits = 2 * torch.randn(6, K, 4, 5, generator=gen, dtype=torch.float32)
    y = torch.randint(0, K, (6, 4, 5), generator=gen)
    y[y == 2] = 255
    kw = {"from_logits": True, "ignore_index": 255}
    for name, (make, fn) in _pairs().items():
        metric = make(**kw)
        for i in range(0, 6, 4):
            metric.update(logits[i : i + 4], y[i : i + 4])
        assert float(metric.compute()) == pytest.approx(float(fn(logits, y, **kw)), abs=1e-12), name


def test_metric_collection_reset_and_clone():
    p, y = _data(1)
    q, z = _data(2, n=333)
    pairs = _pairs()
    collection = MetricCollection({name: make() for name, (make, _) in pairs.items()})
    for i in range(0, 600, 128):
        collection.update(p[i : i + 128], y[i : i + 128])
    values = collection.compute()
    assert set(values) == set(pairs)
    for name, (_, fn) in pairs.items():
        assert float(values[name]) == pytest.approx(float(fn(p, y)), abs=1e-12), name

    copy = collection.clone()
    collection.reset()
    collection.update(q, z)
    after = collection.compute()
    for name, (_, fn) in pairs.items():
        assert float(after[name]) == pytest.approx(float(fn(q, z)), abs=1e-12), name
        assert float(copy[name].compute()) == pytest.approx(float(fn(p, y)), abs=1e-12), name


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")  # a restored metric counts no update
def test_state_dict_round_trip_and_float64_states():
    p, y = _data(4)
    for name, (make, fn) in _pairs().items():
        metric = make()
        metric.persistent(True)
        metric.update(p[:250], y[:250])
        metric.update(p[250:], y[250:])
        restored = make()
        restored.persistent(True)
        restored.load_state_dict(metric.state_dict())
        assert float(restored.compute()) == pytest.approx(float(fn(p, y)), abs=1e-12), name
        restored.half()
        restored.float()
        for state in restored.metric_state.values():
            for t in state if isinstance(state, list) else [state]:
                assert t.dtype == torch.float64, name
    assert T.ExpectedCalibrationError().state_dict() == {}  # torchmetrics' default: states not persistent


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_errors():
    p, y = _data()
    with pytest.raises(ValueError, match="no samples seen"):
        T.ExpectedCalibrationError().compute()
    with pytest.raises(ValueError, match="no samples seen"):
        T.AURC().compute()
    with pytest.raises(ValueError, match="norm"):
        T.ExpectedCalibrationError(norm="l3")
    with pytest.raises(ValueError, match="n_bins"):
        T.AdaptiveCalibrationError(n_bins=0)
    with pytest.raises(ValueError, match="num_classes"):
        T.ClasswiseCalibrationError(3).update(p, y % 3)
    with pytest.raises(ValueError, match="logits"):
        T.NegativeLogLikelihood().update(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="binning"):
        T.ExpectedCalibrationError(binning="quantile")  # torchmetrics rejects unknown kwargs: AdaECE is its own class


def _away_from_edges(p, y, n_bins, gap=1e-6):
    conf = p.max(1).values
    scaled = conf * n_bins
    keep = (scaled - scaled.round()).abs() > gap * n_bins
    return p[keep], y[keep]


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_agrees_with_torchmetrics_calibration_error(norm):
    # torchmetrics bins [lo, hi) on torch.linspace edges (a confidence of 1.0 gets a bin of its own); caltrain
    # bins (lo, hi] on j / B: the two agree when no confidence lies on an edge, so such samples are removed.
    p, y = _data(7, n=3000)
    p, y = _away_from_edges(p, y, 15)
    assert p.shape[0] > 2500
    ours = T.ExpectedCalibrationError(norm=norm)
    multi = MulticlassCalibrationError(num_classes=K, n_bins=15, norm=norm)
    binary = BinaryCalibrationError(n_bins=15, norm=norm)
    for i in range(0, p.shape[0], 700):
        pb, yb = p[i : i + 700], y[i : i + 700]
        ours.update(pb, yb)
        multi.update(pb, yb)
        conf, correct = _top(pb, yb)
        binary.update(conf, correct.long())  # binary ECE of (top-label confidence, correct) = top-label ECE
    # the binary class keeps float64 inputs in float64; the multiclass one casts its confidences to float32
    assert float(ours.compute()) == pytest.approx(float(binary.compute()), abs=1e-12)
    assert float(ours.compute()) == pytest.approx(float(multi.compute()), abs=1e-6)


def test_import_needs_no_torchmetrics_and_names_the_install(monkeypatch):
    code = "import sys, caltrain.metrics; assert 'torchmetrics' not in sys.modules, 'imported torchmetrics'"
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "torchmetrics", None)
    monkeypatch.delitem(sys.modules, "caltrain.metrics.torchmetrics_metrics")
    with pytest.raises(ImportError, match="pip install torchmetrics"):
        importlib.import_module("caltrain.metrics.torchmetrics_metrics")


def _collection():
    return MetricCollection({name: make() for name, (make, _) in _pairs().items()})


def _ranks(rank, p, y):
    warnings.simplefilter("ignore")  # rank 1's "compute called before update" on the empty collection
    empty_rank = _collection()  # rank 0 sees every batch, rank 1 none
    split = _collection()  # an uneven split: rank 0 the first 100 samples, rank 1 the rest
    if rank == 0:
        for i in range(0, p.shape[0], 64):
            empty_rank.update(p[i : i + 64], y[i : i + 64])
        split.update(p[:100], y[:100])
    else:
        split.update(p[100:250], y[100:250])
        split.update(p[250:], y[250:])
    result = {f"empty/{k}": float(v) for k, v in empty_rank.compute().items()}
    result.update({f"split/{k}": float(v) for k, v in split.compute().items()})
    return result


def test_two_process_gloo_equals_one_process(tmp_path):
    # A real gloo process group, two processes, one of which never sees a batch.
    p, y = _data(5, n=400)
    results = run_two_processes(_ranks, tmp_path, p, y, timeout=180)
    assert all(isinstance(r, dict) for r in results.values()), results
    for name, (_, fn) in _pairs().items():
        expected = float(fn(p, y))
        for rank in (0, 1):
            for case in ("empty", "split"):
                assert results[rank][f"{case}/{name}"] == pytest.approx(expected, abs=1e-12), (rank, case, name)
