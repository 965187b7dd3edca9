"""examples/lightning_socrates.py trains Socrates in PyTorch Lightning: finite loss, the per-sample table
advanced, in the Lightning checkpoint, and restored by ``load_from_checkpoint``. Skipped without ``lightning``
(``pip install "caltrain[lightning]"``)."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("lightning", reason="lightning is not installed (pip install 'caltrain[lightning]')")

from tests.integration._examples import load_example  # noqa: E402


def test_lightning_example_trains_and_checkpoints_the_objective_state(tmp_path):
    example = load_example("lightning_socrates")
    out = example.main(epochs=2, num_samples=128, val_size=64, batch_size=32, out_dir=tmp_path)
    assert math.isfinite(out["metrics"]["train_loss"])
    assert 0.0 <= out["metrics"]["val_ece"] <= 1.0 and math.isfinite(out["metrics"]["val_accuracy"])
    objective = out["model"].objective
    assert int(objective.epoch) == 1
    assert bool(objective.seen.all()), "every training sample advanced its row"
    assert not torch.equal(objective.targets, torch.zeros_like(objective.targets))

    ckpt = torch.load(out["checkpoint"], map_location="cpu", weights_only=False)
    state = ckpt["state_dict"]
    for key in ("objective.epoch", "objective.targets", "objective.seen"):
        assert key in state, key
    assert torch.equal(state["objective.targets"], objective.targets)
    assert torch.equal(state["objective.seen"], objective.seen)

    reloaded = example.SocratesModule.load_from_checkpoint(out["checkpoint"], map_location="cpu")
    for key, value in out["model"].state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key
    assert [name for name, _ in reloaded.named_buffers() if "targets" in name] == []  # not a DDP-broadcast buffer
