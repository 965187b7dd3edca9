"""A factory that does not take what caltrain passes fails with those keywords and the ones it accepts."""

from __future__ import annotations

import pytest

from caltrain import data, losses, models, posthoc
from caltrain.utils.registry import Registry


def _add(monkeypatch, registry: Registry, name: str, factory) -> None:
    monkeypatch.setitem(registry._entries, name, factory)  # removed again after the test


def old_model(*, num_classes, hidden=8):
    raise AssertionError("not called")


def old_dataset(*, size=10):
    raise AssertionError("not called")


def old_loss(*, n_classes):
    raise AssertionError("not called")


class NeedsAlpha(posthoc.CALIBRATORS.get("ts")):
    def __init__(self, *, alpha):
        raise AssertionError("not called")


def test_model_factory_without_in_channels_and_input_shape(monkeypatch):
    _add(monkeypatch, models.MODELS, "old_model", old_model)
    with pytest.raises(TypeError) as err:
        models.create("old_model", num_classes=3, input_shape=(4,), hidden=4)
    msg = str(err.value)
    assert "model 'old_model'" in msg and f"{__name__}.old_model" in msg
    assert "caltrain passes the keywords num_classes, in_channels, input_shape and the options hidden" in msg
    assert "the factory accepts (num_classes, hidden=...)" in msg


def test_dataset_factory_without_root_and_seed(monkeypatch):
    _add(monkeypatch, data.DATASETS, "old_dataset", old_dataset)
    with pytest.raises(TypeError) as err:
        data.create("old_dataset", size=5)
    msg = str(err.value)
    assert "dataset 'old_dataset'" in msg and f"{__name__}.old_dataset" in msg
    assert "caltrain passes the keywords root, seed and the options size" in msg
    assert "(size=...)" in msg and "(*, root, seed, **options)" in msg


def test_loss_factory_with_another_keyword(monkeypatch):
    _add(monkeypatch, losses.LOSSES, "old_loss", old_loss)
    with pytest.raises(TypeError) as err:
        losses.create("old_loss", num_classes=3)
    msg = str(err.value)
    assert "loss 'old_loss'" in msg and "caltrain passes the keywords num_classes" in msg
    assert "the factory accepts (n_classes)" in msg


def test_calibrator_with_a_required_option(monkeypatch):
    _add(monkeypatch, posthoc.CALIBRATORS, "needs_alpha", NeedsAlpha)
    with pytest.raises(TypeError) as err:
        posthoc.create("needs_alpha")
    msg = str(err.value)
    assert "calibrator 'needs_alpha'" in msg and "NeedsAlpha" in msg and "missing a required argument: 'alpha'" in msg
    assert "caltrain passes the keywords (nothing)" in msg and "the factory accepts (alpha)" in msg


def test_a_type_error_inside_a_fitting_factory_is_not_rewritten(monkeypatch):
    def model(*, num_classes, in_channels, input_shape):
        raise TypeError("inside")

    _add(monkeypatch, models.MODELS, "raises_inside", model)
    with pytest.raises(TypeError, match="^inside$"):
        models.create("raises_inside", num_classes=2)



def forgot_return(*, num_classes, in_channels, input_shape):
    pass  # builds nothing: returns None


def forgot_return_loss(*, num_classes):
    pass


def forgot_return_dataset(*, root=None, seed=0):
    pass


@pytest.mark.parametrize("flag,registry,factory", [
    ("--model", models.MODELS, forgot_return),
    ("--loss", losses.LOSSES, forgot_return_loss),
    ("--data", data.DATASETS, forgot_return_dataset),
])
def test_factory_returning_none_is_a_one_line_error_not_a_traceback(flag, registry, factory, monkeypatch, tmp_path,
                                                                     capsys):
    """A plugin factory that returned None crashed the trainer ('NoneType' object has no attribute 'to' /
    'options', exit status 1, "please report it"); it is a TypeError naming the factory (exit status 2)."""
    from caltrain.cli.main import main

    _add(monkeypatch, registry, factory.__name__, factory)
    expected = "caltrain.data.splits.DatasetSplits" if registry is data.DATASETS else "torch.nn.Module"
    message = rf"{registry.kind} '{factory.__name__}': its factory {__name__}.{factory.__name__} returned NoneType, " \
              rf"expected a {expected}"
    with pytest.raises(TypeError, match=message):
        if registry is models.MODELS:
            models.create(factory.__name__, num_classes=3, input_shape=(4,))
        elif registry is losses.LOSSES:
            losses.create(factory.__name__, num_classes=3)
        else:
            data.create(factory.__name__)
    code = main(["train", flag, factory.__name__, "--epochs", "1", "--quiet", "--set", "device=cpu",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "returned NoneType" in err and "Traceback" not in err
