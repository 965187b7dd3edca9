"""``caltrain.posthoc.compare``: equal to fitting each calibrator by hand, names checked before any fit, saving."""

from __future__ import annotations

import warnings

import pytest
import torch

from caltrain import metrics, posthoc
from caltrain.posthoc import Calibrator, compare
from caltrain.train.run_dir import RunDir
from caltrain.utils.registry import UnknownNameError

from .references import sample_logits


@pytest.fixture
def splits():
    z, y = sample_logits(900, 4, seed=3)
    z = 2.5 * z
    return (z[:500], y[:500]), (z[500:], y[500:])


def test_values_equal_fitting_each_calibrator_by_hand(splits):
    (vz, vy), (tz, ty) = splits
    names = ["ts", "vector", "histogram"]
    result = compare((vz, vy), (tz, ty), names, n_bins=10)
    assert list(result.calibrators) == names == list(result.metrics) == list(result.params)
    for name in names:
        by_hand = posthoc.create(name).fit(vz, vy)
        expected = metrics.summarize(by_hand.predict_proba(tz), ty, n_bins=10)
        assert result.metrics[name] == expected  # identical floats, same keys as `caltrain evaluate --json`
        assert result.params[name] == by_hand.params_
        torch.testing.assert_close(result.calibrators[name].predict_proba(tz), by_hand.predict_proba(tz),
                                   rtol=0, atol=0)
    assert result.uncalibrated == metrics.summarize(torch.softmax(tz, 1), ty, n_bins=10)
    assert all(isinstance(v, float) for v in result.metrics["ts"].values() if not isinstance(v, int))


def test_unknown_name_fails_before_any_fit(splits, monkeypatch):
    def no_fit(self, *args, **kwargs):
        raise AssertionError("fit was called")

    monkeypatch.setattr(Calibrator, "fit", no_fit)
    with pytest.raises(UnknownNameError, match="Did you mean 'ts'") as info:
        compare(*splits, ["ts", "tss"])
    assert isinstance(info.value, ValueError) and "Valid names" in str(info.value)
    with pytest.raises(TypeError, match="valid parameters"):
        compare(*splits, ["ts", "dirichlet"], options={"dirichlet": {"reg_lamda": 0.1}})
    with pytest.raises(ValueError, match="options"):
        compare(*splits, ["ts"], options={"vector": {}})
    with pytest.raises(ValueError, match="names"):
        compare(*splits, "ts")
    with pytest.raises(ValueError, match="on_error"):
        compare(*splits, ["ts"], on_error="ignore")


def test_options_and_repeated_names(splits):
    (vz, vy), test = splits
    result = compare((vz, vy), test, ["dirichlet", "dirichlet"], options={"dirichlet": {"reg_lambda": 0.1}})
    assert list(result.calibrators) == ["dirichlet"] and result.calibrators["dirichlet"].reg_lambda == 0.1
    by_hand = posthoc.create("dirichlet", reg_lambda=0.1).fit(vz, vy)
    assert result.params["dirichlet"] == by_hand.params_


def test_renormalized_abstention_is_the_trainers_k_class_logits(splits):
    # the trainer fits on logits[:, :K] and scores the K-column probabilities without a convention
    (vz, vy), (tz, ty) = splits
    extra = lambda z: torch.cat([z, torch.randn(len(z), 1, generator=torch.Generator().manual_seed(0),  # noqa: E731
                                                dtype=z.dtype)], 1)
    result = compare((extra(vz), vy), (extra(tz), ty), ["ts"], abstention="renormalized")
    by_hand = posthoc.create("ts").fit(vz, vy)
    assert result.metrics["ts"] == metrics.summarize(by_hand.predict_proba(tz), ty)
    assert result.uncalibrated == metrics.summarize(torch.softmax(tz, 1), ty)
    with pytest.raises(ValueError, match="abstention"):
        compare((extra(vz), vy), (extra(tz), ty), ["ts"], abstention="without_unknown")


def test_with_unknown_scores_the_k_plus_1_columns(splits):
    (vz, vy), (tz, ty) = splits  # the 4th column plays "unknown"; labels stay in [0, 3)
    vy, ty = vy.clamp(max=2), ty.clamp(max=2)
    result = compare((vz, vy), (tz, ty), ["ts"], abstention="with_unknown", eval_abstention="renormalized")
    by_hand = posthoc.create("ts").fit(vz, vy)
    assert result.metrics["ts"] == metrics.summarize(by_hand.predict_proba(tz), ty, abstention="renormalized")


def test_record_mode_keeps_failures_and_warnings(splits):
    (vz, vy), test = splits
    result = compare((vz, vy), test, ["platt", "ts"], on_error="record", capture_warnings=True)
    assert list(result.calibrators) == ["ts"] and "platt" in result.errors
    assert result.errors["platt"].startswith("ValueError") and result.warnings["ts"] == []
    with pytest.raises(ValueError, match="binary"):
        compare((vz, vy), test, ["platt"])


def test_save_writes_the_paths_run_dir_gives_and_load_restores_them(splits, tmp_path):
    (vz, vy), (tz, ty) = splits
    result = compare((vz, vy), (tz, ty), ["ts", "isotonic"])
    run = RunDir(tmp_path / "run")
    paths = result.save(tmp_path / "run")
    assert paths == {"ts": run.calibrator("ts"), "isotonic": run.calibrator("isotonic")}
    assert run.saved_calibrators() == ["isotonic", "ts"]
    assert sorted(p.name for p in run.calibrators.iterdir()) == ["isotonic.json", "ts.json"]
    for name, path in paths.items():
        loaded = posthoc.load(path)
        torch.testing.assert_close(loaded.predict_proba(tz), result.calibrators[name].predict_proba(tz),
                                   rtol=0, atol=0)


def test_no_warning_is_swallowed_by_default(splits, monkeypatch):
    from caltrain.posthoc.temperature import TemperatureScaling

    real = TemperatureScaling._fit

    def noisy(self, z, y):
        warnings.warn("boundary", RuntimeWarning)
        return real(self, z, y)

    monkeypatch.setattr(TemperatureScaling, "_fit", noisy)
    with pytest.warns(RuntimeWarning, match="boundary"):
        compare(*splits, ["ts"])
    assert compare(*splits, ["ts"], capture_warnings=True).warnings["ts"] == ["boundary"]
