"""Bad inputs to the calibrators' fit / predict: clear errors or warnings, never a silently meaningless fit."""

from __future__ import annotations

import warnings

import pytest
import torch

from caltrain import posthoc

from .references import sample_logits

ALL = posthoc.names()
BINARY = [n for n in ALL if posthoc.CALIBRATORS.get(n).binary_only]


def _data(name: str, n: int):
    z, y = sample_logits(max(n, 2), 2 if name in BINARY else 4, seed=7)
    z, y = 2.0 * z[:n], y[:n]
    return (z[:, 1] - z[:, 0], y) if name in BINARY else (z, y)


@pytest.mark.parametrize("name", ALL)
def test_one_validation_sample_is_an_error(name):
    z, y = _data(name, 1)
    with pytest.raises(ValueError, match="logits: expected at least 2 validation samples to fit"):
        posthoc.create(name).fit(z, y)
    z, y = _data(name, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        posthoc.create(name).fit(z, y)  # two is the (small) minimum


@pytest.mark.parametrize("name", ALL)
def test_bad_logits_dtypes_and_shapes(name):
    z, y = _data(name, 50)
    cal = posthoc.create(name)
    with pytest.raises(TypeError, match="logits: expected real-valued logits"):
        cal.fit(z.to(torch.complex64), y)
    with pytest.raises(TypeError, match="labels: expected integer class indices"):
        cal.fit(z, y > 0)
    with pytest.raises(ValueError, match="logits: expected shape"):
        cal.fit(z[:, None, None] if z.ndim == 1 else z[:, :, None], y)
    with pytest.raises(ValueError, match="logits: expected at least one sample"):
        cal.fit(z[:0], y[:0])
    inf = z.clone()
    inf.view(-1)[0] = float("inf")
    with pytest.raises(ValueError, match="logits: expected finite values, found 0 NaN and 1 infinite"):
        cal.fit(inf, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fitted = posthoc.create(name).fit(z.half(), y)  # half-precision logits are fine (computed in float64)
    nan = z.clone()
    nan.view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="logits: expected finite values"):
        fitted.predict_proba(nan)


def test_ats_warns_when_its_global_temperature_is_at_a_bound():
    z, y = sample_logits(300, 4, seed=3)
    with pytest.warns(RuntimeWarning, match="ats: the NLL-optimal global temperature is at the bound 0.05"):
        posthoc.create("ats").fit(z, z.argmax(1))  # every sample correct: the NLL keeps falling towards t_min
