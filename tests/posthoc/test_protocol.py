"""Every registered calibrator: the protocol, valid outputs, state round trips, errors (parametrised)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from caltrain import posthoc
from caltrain.posthoc import NotFittedError
from caltrain.utils.registry import UnknownNameError

from .references import nll, sample_logits

BINARY = [n for n in posthoc.names() if posthoc.CALIBRATORS.get(n).binary_only]
MULTI = posthoc.names(num_classes=5)
ALL = posthoc.names()


def _metrics_available() -> bool:
    try:
        from caltrain.metrics import expected_calibration_error  # noqa: F401
    except ImportError:
        return False
    return True


def _skip_without_metrics(name: str) -> None:
    if name == "ts-grid-ece" and not _metrics_available():
        pytest.skip("caltrain.metrics.expected_calibration_error not available yet")


def _data(name: str, n: int = 600, seed: int = 3):
    """Over-confident logits: [n, 4] for multi-class calibrators, [n] for binary ones."""
    z, y = sample_logits(n, 2 if name in BINARY else 4, seed=seed)
    z = 2.0 * z
    if name in BINARY:
        return z[:, 1] - z[:, 0], y
    return z, y


def _fit(name: str, z, y, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # few samples per parameter is fine here
        return posthoc.create(name, **options).fit(z, y)


def test_registry_names_match_the_cli_list():
    assert set(ALL) == {
        "ts", "ts-grid-ece", "ats", "vector", "matrix", "dirichlet", "ets", "histogram", "isotonic", "platt", "beta",
    }
    assert set(BINARY) == {"platt", "beta"}
    assert posthoc.names(num_classes=2) == ALL


def test_unknown_name_and_option_fail_with_the_valid_ones():
    with pytest.raises(UnknownNameError, match="Valid names: ats"):
        posthoc.create("temperature")
    with pytest.raises(TypeError, match="valid parameters: t_min"):
        posthoc.create("ts", temprature=2.0)


@pytest.mark.parametrize("name", ALL)
def test_outputs_are_distributions_and_fit_returns_self(name):
    _skip_without_metrics(name)
    z, y = _data(name)
    cal = posthoc.create(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert cal.fit(z, y) is cal
    p = cal.predict_proba(z[:200])
    k = 2 if name in BINARY else 4
    assert p.shape == (200, k) and p.dtype == torch.float64
    assert bool((p >= 0).all()) and bool((p <= 1).all())
    torch.testing.assert_close(p.sum(dim=1), torch.ones(200, dtype=torch.float64), atol=1e-12, rtol=0)
    assert cal.n_classes_ == k


@pytest.mark.parametrize("name", ALL)
def test_use_before_fit_raises_not_fitted(name):
    cal = posthoc.create(name)
    z, _ = _data(name, n=10)
    for call in (lambda: cal.predict_proba(z), lambda: cal.params_, cal.state_dict):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()
    if cal.is_logit_map:
        with pytest.raises(NotFittedError):
            cal.transform(z)


@pytest.mark.parametrize("name", ALL)
def test_save_load_round_trip_gives_identical_outputs(name, tmp_path):
    _skip_without_metrics(name)
    z, y = _data(name)
    cal = _fit(name, z, y)
    path = tmp_path / f"{name}.json"
    cal.save(path)
    state = json.loads(path.read_text())
    assert state["name"] == name and state["format"] == "caltrain.posthoc/1"
    loaded = posthoc.load(path)
    assert type(loaded) is type(cal) and loaded.get_params() == cal.get_params()
    test_z, _ = _data(name, n=300, seed=9)
    assert torch.equal(loaded.predict_proba(test_z), cal.predict_proba(test_z))
    assert loaded.params_ == cal.params_
    # state_dict / load_state_dict in memory, into a fresh instance
    fresh = posthoc.create(name, **cal.get_params()).load_state_dict(cal.state_dict())
    assert torch.equal(fresh.predict_proba(test_z), cal.predict_proba(test_z))


@pytest.mark.parametrize("name", ALL)
def test_params_are_json_scalars(name):
    _skip_without_metrics(name)
    z, y = _data(name)
    params = _fit(name, z, y).params_
    assert isinstance(params, dict) and params
    for key, value in params.items():
        assert isinstance(key, str) and isinstance(value, (int, float)) and math.isfinite(value)
    json.dumps(params)


@pytest.mark.parametrize("name", ALL)
def test_transform_is_the_logit_map_of_predict_proba(name):
    _skip_without_metrics(name)
    z, y = _data(name)
    cal = _fit(name, z, y)
    if not cal.is_logit_map:
        with pytest.raises(NotImplementedError, match="not a logit map"):
            cal.transform(z)
        return
    s = cal.transform(z)
    assert s.shape == z.shape
    logits2 = torch.stack([torch.zeros_like(s), s], 1) if s.ndim == 1 else s
    torch.testing.assert_close(torch.softmax(logits2, 1), cal.predict_proba(z), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", [n for n in ALL if posthoc.CALIBRATORS.get(n).preserves_argmax])
def test_argmax_never_changes_where_promised(name):
    _skip_without_metrics(name)
    z, y = _data(name)
    cal = _fit(name, z, y)
    test_z, _ = sample_logits(1000, 4, scale=3.0, seed=11)
    torch.testing.assert_close(cal.predict_proba(test_z).argmax(1), test_z.argmax(1))


def test_argmax_promises():
    promised = {n for n in ALL if posthoc.CALIBRATORS.get(n).preserves_argmax}
    assert promised == {"ts", "ts-grid-ece", "ats", "ets"}


@pytest.mark.parametrize("name", ["ts", "ats", "vector", "matrix", "dirichlet", "ets", "isotonic", "platt", "beta"])
def test_validation_nll_does_not_increase(name):
    z, y = _data(name, n=1500)
    cal = _fit(name, z, y, **({"loss": "nll"} if name == "ets" else {}))
    if z.ndim == 1:
        before = nll(torch.softmax(torch.stack([torch.zeros_like(z), z], 1), 1), y)
    else:
        before = nll(torch.softmax(z, 1), y)
    after = nll(cal.predict_proba(z), y)
    assert after <= before + 1e-12
    assert after < before - 0.01  # these logits are 2x over-confident: a real improvement


@pytest.mark.parametrize("name", MULTI)
def test_numpy_float32_and_torch_float64_inputs_agree(name):
    _skip_without_metrics(name)
    z, y = _data(name)
    z32 = z.float().double()  # the same values, representable in float32
    a = _fit(name, z32, y).predict_proba(z32[:100])
    b = _fit(name, z32.float().numpy(), y.numpy()).predict_proba(z32[:100].float().numpy())
    assert isinstance(b, np.ndarray) and b.dtype == np.float64  # NumPy in, NumPy out
    torch.testing.assert_close(a, torch.from_numpy(b), atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", MULTI)
def test_bad_input_raises_naming_the_argument(name):
    z, y = _data(name, n=50)
    cal = posthoc.create(name)
    with pytest.raises(ValueError, match=r"logits: expected shape \[N, C\]"):
        cal.fit(z[:, 0], y)
    with pytest.raises(ValueError, match="same number of samples"):
        cal.fit(z, y[:-1])
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 3\]"):
        cal.fit(z, torch.full_like(y, 4))
    with pytest.raises(TypeError, match="labels: expected integer class indices"):
        cal.fit(z, y.double())
    bad = z.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="logits: expected finite values"):
        cal.fit(bad, y)
    with pytest.raises(ValueError, match="logits: expected at least one sample"):
        cal.fit(z[:0], y[:0])
    with pytest.raises(ValueError, match="abstention: expected None or one of 'with_unknown', 'renormalized'"):
        posthoc.create(name, abstention="idk")
    with pytest.raises(ValueError, match="abstention: expected None or one of"):
        posthoc.create(name, abstention="without_unknown")  # not a distribution: nothing to calibrate


@pytest.mark.parametrize("name", ["ts", "vector", "histogram"])
def test_predict_with_the_wrong_number_of_classes_raises(name):
    z, y = _data(name)
    cal = _fit(name, z, y)
    with pytest.raises(ValueError, match="fitted on 4 classes, got 5"):
        cal.predict_proba(torch.zeros(3, 5))


@pytest.mark.parametrize("name", BINARY)
def test_binary_calibrators_reject_multiclass_and_accept_two_columns(name):
    z1, y = _data(name)
    with pytest.raises(ValueError, match="binary outputs"):
        posthoc.create(name).fit(torch.zeros(10, 3), torch.zeros(10, dtype=torch.long))
    two = torch.stack([torch.zeros_like(z1), z1], 1)
    a = posthoc.create(name).fit(z1, y)
    b = posthoc.create(name).fit(two + 0.7, y)  # a common shift of both logits changes nothing
    torch.testing.assert_close(a.predict_proba(z1), b.predict_proba(two - 1.0), atol=1e-7, rtol=0)
    assert a.transform(z1).shape == z1.shape and b.transform(two).shape == two.shape


@pytest.mark.parametrize("name", ["ts", "ats", "vector", "histogram", "isotonic"])
def test_abstention_modes(name):
    z, y = sample_logits(800, 5, seed=4)  # the last of the 5 logits is the abstention output
    y = y.clamp(max=3)
    full = _fit(name, z, y, abstention="with_unknown")
    assert full.predict_proba(z).shape == (800, 5)
    classes = _fit(name, z, y, abstention="renormalized")
    plain = _fit(name, z[:, :4], y)
    assert classes.predict_proba(z).shape == (800, 4)
    torch.testing.assert_close(classes.predict_proba(z), plain.predict_proba(z[:, :4]), atol=0, rtol=0)
    with pytest.raises(ValueError, match="abstention='renormalized' drops the last logit"):
        posthoc.create(name, abstention="renormalized").fit(z[:, :2], y.clamp(max=1))


@pytest.mark.parametrize("name", ["ts", "ats", "vector", "histogram", "isotonic"])
@pytest.mark.parametrize(("old", "new"), [("all", "with_unknown"), ("classes", "renormalized")])
def test_old_abstention_spellings_warn_and_behave_identically(name, old, new, tmp_path):
    z, y = sample_logits(400, 5, seed=5)
    y = y.clamp(max=3)
    with pytest.warns(DeprecationWarning, match=f"abstention={old!r} is deprecated.*abstention={new!r}") as record:
        legacy = _fit(name, z, y, abstention=old)
    assert record[0].filename == __file__  # attributed to the caller's line, not to caltrain
    current = _fit(name, z, y, abstention=new)
    assert legacy.abstention == new and legacy.get_params() == current.get_params()
    torch.testing.assert_close(legacy.predict_proba(z), current.predict_proba(z), atol=0, rtol=0)
    # saved files store the new name; a file saved before the rename (old name) loads, without a warning
    path = tmp_path / "cal.json"
    legacy.save(path)
    state = json.loads(path.read_text())
    assert state["hyperparameters"]["abstention"] == new
    state["hyperparameters"]["abstention"] = old
    path.write_text(json.dumps(state))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = posthoc.load(path)
    assert loaded.abstention == new
    torch.testing.assert_close(loaded.predict_proba(z), current.predict_proba(z), atol=0, rtol=0)


def test_abstention_modes_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="ABSTENTION_MODES is deprecated"):
        modes = posthoc.ABSTENTION_MODES
    assert modes == (None, "with_unknown", "renormalized")
    with pytest.raises(AttributeError):
        posthoc.NO_SUCH_NAME  # noqa: B018


def test_gpu_style_device_handling_keeps_the_input_device():
    z, y = sample_logits(300, 3)
    cal = posthoc.create("ts").fit(z, y)
    assert cal.predict_proba(z).device == z.device
    assert isinstance(cal.temperature_, float)
    np.testing.assert_allclose(cal.predict_proba(z.numpy()), cal.predict_proba(z).numpy())
