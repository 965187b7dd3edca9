"""Every bad input of every objective and pure function is a clear error naming the argument and what was expected.

Shapes and dtypes raise at once; the values of ``labels`` and ``indices`` raise at once on CPU, and on a GPU are
recorded on the device during the epoch and raised by ``on_epoch_end`` (``caltrain.losses._tensors``). The GPU
path is tested here on CPU by declaring no device "immediate" (the same code, only the device test differs).
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from caltrain import losses
from caltrain.losses import _tensors
from caltrain.losses import functional as LF

K, N_SAMPLES, D = 3, 10, 5
#: Options that switch on a code path the defaults leave off (GenCE's EMA forward).
#: Classification objectives only: the dense binary ones (``tasks == {"dense_binary"}``) take [N, 1, H, W] logits
#: and real targets; their input checks are in test_sc_bce.py and test_aslp.py.
CLASSIFICATION = [
    n for n in losses.names()
    if "classification" in losses.create(n, num_classes=K, num_samples=N_SAMPLES).tasks
]
VARIANTS = [(name, {}) for name in CLASSIFICATION] + [("gence", {"momentum": 0.9})]
IDS = [name + ("-" + "-".join(f"{k}={v}" for k, v in hp.items()) if hp else "") for name, hp in VARIANTS]
#: Public functions of ``functional`` that are building blocks, not losses of (logits, labels): they take the
#: already-checked tensors of the losses that call them.
HELPERS = {"batch_log_prior", "soft_bin_membership"}
#: Dense binary functions (one logit per pixel, real targets): checked in test_sc_bce.py.
DENSE = {"bce", "sc_bce"}
#: The loss functions of ``functional``, with the extra positional arguments a call needs.
FUNCTIONS = {name: getattr(LF, name) for name in LF.__all__ if name not in HELPERS | DENSE | {"gence_ema"}}
FUNCTIONS["gence_ema"] = lambda z, y, **kw: LF.gence_ema(
    z, y, torch.zeros(z.shape[1], dtype=torch.float64), torch.zeros((), dtype=torch.long), **kw
)


def _make(name: str, hp: dict) -> losses.Objective:
    return losses.create(name, num_classes=K, num_samples=N_SAMPLES, **hp)


def _step(obj: losses.Objective, labels: torch.Tensor, *, indices=None, columns: int | None = None):
    """One call of ``obj`` the way the trainer makes it: logits = model(inputs), plus what ``requires`` lists."""
    torch.manual_seed(0)
    n = labels.shape[0]
    model = nn.Linear(D, columns or obj.num_outputs).double()
    inputs = torch.randn(n, D, dtype=torch.float64, requires_grad=obj.needs_input_grad)
    available = {
        "indices": torch.arange(n) if indices is None else indices,
        "model": model,
        "inputs": inputs,
    }
    return obj(model(inputs), labels, **{key: available[key] for key in obj.requires})


def _epoch_end(obj: losses.Objective) -> None:
    if obj.needs_validation:
        obj.on_epoch_end(0, val_logits=torch.randn(6, obj.num_outputs), val_labels=torch.arange(6) % K)
    else:
        obj.on_epoch_end(0)


def test_every_public_function_of_functional_is_covered():
    assert set(FUNCTIONS) | HELPERS | DENSE == set(LF.__all__)


@pytest.mark.parametrize("bad", [K, -1])
@pytest.mark.parametrize(("name", "hp"), VARIANTS, ids=IDS)
def test_out_of_range_labels_raise_naming_labels_and_the_range(name, hp, bad):
    obj = _make(name, hp)
    labels = torch.tensor([0, 1, bad, 2])
    low, high = min(0, bad), max(2, bad)
    expected = rf"labels: expected integers in \[0, {K}\), got values in \[{low}, {high}\]"
    with pytest.raises(ValueError, match=expected):
        _step(obj, labels)


@pytest.mark.parametrize("bad", [K, -1])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_out_of_range_labels_raise_in_every_function(name, bad):
    z, y = torch.randn(4, K), torch.tensor([0, 1, bad, 2])
    with pytest.raises(ValueError, match=rf"labels: expected integers in \[0, {K}\), got values in"):
        FUNCTIONS[name](z, y)


@pytest.mark.parametrize(("name", "hp"), VARIANTS, ids=IDS)
def test_float_labels_raise_a_dtype_error(name, hp):
    with pytest.raises(TypeError, match="labels: expected an integer tensor .* got dtype torch.float32"):
        _step(_make(name, hp), torch.tensor([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_float_labels_raise_a_dtype_error_in_every_function(name):
    with pytest.raises(TypeError, match="labels: expected an integer tensor .* got dtype torch.float32"):
        FUNCTIONS[name](torch.randn(3, K), torch.tensor([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("delta", [1, -1])
@pytest.mark.parametrize(("name", "hp"), VARIANTS, ids=IDS)
def test_wrong_class_count_raises_naming_logits_and_the_expected_count(name, hp, delta):
    obj = _make(name, hp)
    with pytest.raises(ValueError, match=re.escape(f"logits: expected shape [N, {obj.num_outputs}]")):
        _step(obj, torch.tensor([0, 1, 2]), columns=obj.num_outputs + delta)


def test_the_message_explains_the_unknown_output():
    obj = _make("socrates", {})
    with pytest.raises(ValueError, match=rf"\[N, {K + 1}\] \(num_classes = {K} \+ 1 'unknown' output"):
        _step(obj, torch.tensor([0, 1, 2]), columns=K)


INDEXED = [name for name in CLASSIFICATION if "indices" in _make(name, {}).requires]


def test_socrates_and_sat_need_indices():
    assert {"socrates", "sat"} <= set(INDEXED)


@pytest.mark.parametrize(
    ("indices", "error", "match"),
    [
        (torch.tensor([0, 1, N_SAMPLES]), ValueError, rf"indices: expected integers in \[0, {N_SAMPLES}\), got "
                                                       rf"values in \[0, {N_SAMPLES}\]"),
        (torch.tensor([0, -1, 2]), ValueError, rf"indices: expected integers in \[0, {N_SAMPLES}\), got values in "
                                               r"\[-1, 2\]"),
        (torch.tensor([0, 1]), ValueError, r"indices: expected shape \[3\] .* got shape \(2,\)"),
        (torch.tensor([[0, 1, 2]]), ValueError, r"indices: expected shape \[3\]"),
        (torch.tensor([0.0, 1.0, 2.0]), TypeError, "indices: expected an integer tensor .* got dtype torch.float32"),
    ],
    ids=["too-large", "negative", "short", "2d", "float"],
)
@pytest.mark.parametrize("name", INDEXED)
def test_bad_indices_raise_naming_indices(name, indices, error, match):
    obj = _make(name, {})
    before = obj.state_dict()
    with pytest.raises(error, match=match):
        _step(obj, torch.tensor([0, 1, 2]), indices=indices)
    for key, value in obj.state_dict().items():  # nothing was written
        assert torch.equal(value, before[key]), key


def test_mbls_ignore_index_is_accepted_and_named_in_the_range():
    z = torch.randn(4, K)
    LF.mbls(z, torch.tensor([0, 255, 2, 1]), ignore_index=255)
    with pytest.raises(ValueError, match=r"\[0, 3\) \(or ignore_index=255\), got values in \[0, 7\]"):
        LF.mbls(z, torch.tensor([0, 255, 7, 1]), ignore_index=255)


def test_validation_labels_handed_to_on_epoch_end_are_checked():
    obj = _make("adafocal", {})
    with pytest.raises(ValueError, match=r"labels: expected integers in \[0, 3\)"):
        obj.on_epoch_end(0, val_logits=torch.randn(4, K), val_labels=torch.tensor([0, 1, 2, 3]))


# ---- the GPU path (values recorded on the device, raised by on_epoch_end), run on CPU -------------------------


@pytest.fixture
def deferred(monkeypatch):
    """Make CPU behave as a GPU does: no device reads its checks at once."""
    monkeypatch.setattr(_tensors, "IMMEDIATE_DEVICES", frozenset())


@pytest.mark.parametrize(("name", "hp"), VARIANTS, ids=IDS)
def test_deferred_labels_raise_at_the_end_of_the_epoch(name, hp, deferred):
    obj = _make(name, hp)
    loss = _step(obj, torch.tensor([0, 1, K + 4, 2]))  # no host read in the step: the step runs, clamped
    assert torch.isfinite(loss).all()
    _step(obj, torch.tensor([-2, 1, 0, 2]))  # the record spans the epoch's steps
    with pytest.raises(ValueError, match=rf"labels: expected integers in \[0, {K}\), got values in \[-2, {K + 4}\] "
                                         r"\(seen during the epoch\)"):
        _epoch_end(obj)
    _epoch_end(obj)  # the record was cleared


@pytest.mark.parametrize(("name", "hp"), VARIANTS, ids=IDS)
def test_deferred_checks_of_valid_inputs_change_nothing(name, hp, monkeypatch):
    labels = torch.tensor([0, 1, 2, 1])
    obj = _make(name, hp)
    immediate = _step(obj, labels)
    monkeypatch.setattr(_tensors, "IMMEDIATE_DEVICES", frozenset())
    obj = _make(name, hp)
    loss = _step(obj, labels)
    assert torch.equal(loss, immediate)
    _epoch_end(obj)


@pytest.mark.parametrize("name", INDEXED)
def test_deferred_indices_raise_at_the_end_of_the_epoch(name, deferred):
    obj = _make(name, {})
    _step(obj, torch.tensor([0, 1, 2]), indices=torch.tensor([0, N_SAMPLES + 1, 3]))
    with pytest.raises(ValueError, match=rf"indices: expected integers in \[0, {N_SAMPLES}\), got values in "
                                         rf"\[0, {N_SAMPLES + 1}\]"):
        _epoch_end(obj)


def test_a_pure_function_outside_an_objective_asserts_without_a_host_read(deferred):
    # On a GPU this is torch._assert_async (no host read, stops at the next synchronisation); on CPU it raises.
    with pytest.raises(RuntimeError):
        LF.ce(torch.randn(2, K), torch.tensor([0, K]))


def test_the_record_keeps_the_extremes_on_the_device():
    record = _tensors.DeferredChecks()
    record.add("labels", 5, torch.tensor(0), torch.tensor(3), None)
    record.raise_if_bad()  # in range
    record.add("labels", 5, torch.tensor(1), torch.tensor(9), None)
    record.add("labels", 5, torch.tensor(-3), torch.tensor(2), None)
    with pytest.raises(ValueError, match=r"labels: expected integers in \[0, 5\), got values in \[-3, 9\]"):
        record.raise_if_bad()
    record.raise_if_bad()
