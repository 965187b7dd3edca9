"""examples/hf_trainer_mbls.py trains caltrain objectives in the Hugging Face ``Trainer``: finite loss, the epoch
hooks called, the objective's state in the checkpoint's ``model.safetensors`` and restored by ``load_state_dict``.
Skipped without ``transformers`` / ``accelerate`` (``pip install "caltrain[hf]"``)."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("transformers", reason="transformers is not installed (pip install 'caltrain[hf]')")
pytest.importorskip("accelerate", reason="accelerate is not installed (pip install 'caltrain[hf]')")

from tests.integration._examples import load_example  # noqa: E402


def test_hf_trainer_example_trains_with_mbls(tmp_path):
    example = load_example("hf_trainer_mbls")
    out = example.main(loss="mbls", epochs=2, num_samples=128, val_size=64, out_dir=tmp_path)
    assert math.isfinite(out["train_loss"]) and 0.0 <= out["metrics"]["val_ece"] <= 1.0
    assert int(out["model"].objective.epoch) == 1  # on_epoch_begin reached the objective for epochs 0 and 1
    state = example.load_checkpoint_state(out["checkpoint"])
    assert int(state["objective.epoch"]) == 1


def test_hf_trainer_example_checkpoints_socrates_per_sample_state(tmp_path):
    example = load_example("hf_trainer_mbls")
    out = example.main(loss="socrates", epochs=2, num_samples=128, val_size=64, out_dir=tmp_path)
    assert math.isfinite(out["train_loss"])
    objective = out["model"].objective
    assert bool(objective.seen.all()) and not torch.equal(objective.targets, torch.zeros_like(objective.targets))

    state = example.load_checkpoint_state(out["checkpoint"])
    assert torch.equal(state["objective.targets"], objective.targets)  # predict() ran in eval(): table unchanged
    assert torch.equal(state["objective.seen"], objective.seen)

    fresh = example.Classifier(example.losses.create("socrates", num_classes=3, num_samples=128), dim=8)
    fresh.load_state_dict(state)
    for key, value in out["model"].state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
