"""Proof that the objective protocol holds: the real trainer trains every registered objective.

The trainer (:func:`caltrain.train.train`) has no per-objective code: it sizes the model by ``num_outputs``, hands
``forward`` exactly the extra inputs listed in ``requires``, sets input gradients when ``needs_input_grad`` and
feeds ``on_epoch_end`` the validation logits when ``needs_validation``. Each objective is trained here for one
tiny epoch with a configuration built the way ``caltrain train`` builds one (``build_config`` with overrides);
the losses and metrics must be finite, and an objective with state (buffers other than the ``epoch`` counter)
must have changed it. ``forward`` takes only what ``requires`` lists, so a trainer handing anything else would fail.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from caltrain import losses
from caltrain.train import train
from caltrain.train.checkpoint import load_checkpoint
from caltrain.train.config import build_config
from caltrain.train.run_dir import RunDir

K, N_TRAIN = 3, 64
#: Options that make a default-off state advance (GenCE's EMA is off at momentum 0).
OPTIONS = {"gence": {"momentum": 0.9}}
#: The classification objectives (the dense binary ones need a dense dataset: test_sc_bce.py, test_aslp.py).
CLASSIFICATION = [n for n in losses.names() if "classification" in losses.create(n, num_classes=K, num_samples=N_TRAIN).tasks]


def _config(name: str):
    overrides = [
        "data.name=synthetic", f"data.options.num_classes={K}", "data.options.dim=8",
        f"data.options.train_size={N_TRAIN}", "data.options.val_size=32", "data.options.test_size=32",
        "data.batch_size=32", "epochs=1", "eval.posthoc=[]", "eval.ood=false", "threads=1", "device=cpu",
        "quiet=true", f"loss.name={name}",
    ]
    overrides += [f"loss.options.{key}={value}" for key, value in OPTIONS.get(name, {}).items()]
    return build_config(overrides=overrides)


def _finite(tree) -> bool:
    if isinstance(tree, dict):
        return all(_finite(v) for v in tree.values())
    return not isinstance(tree, float) or math.isfinite(tree)


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_trainer_trains_every_objective(name, tmp_path):
    objective = losses.create(name, num_classes=K, num_samples=N_TRAIN, **OPTIONS.get(name, {}))
    assert objective.requires <= losses.REQUIREMENTS
    assert objective.num_outputs == K + int(objective.has_abstention)
    assert objective.paper, "every objective names its paper"
    # forward takes what requires lists (CalMO's ablations share one class: calmo_flat leaves "model" unused)
    keywords = set(inspect.signature(objective.forward).parameters) - {"logits", "labels"}
    assert set(objective.requires) <= keywords <= losses.REQUIREMENTS, name
    if not isinstance(objective, losses.CalMO):
        assert keywords == set(objective.requires), name

    summary = train(_config(name), tmp_path)
    assert summary["steps"] > 0
    metrics = RunDir(tmp_path).read_metrics()
    assert math.isfinite(metrics[-1]["train"]["loss"])
    assert _finite(metrics[-1]) and _finite(summary["val"]) and _finite(summary["test"])

    initial = objective.state_dict()
    trained = load_checkpoint(RunDir(tmp_path).checkpoint)["objective"]
    assert set(trained) == set(initial)
    state = [key for key in initial if key != "epoch"]
    for key in objective.sample_state:
        assert trained[key].shape[0] == N_TRAIN, key
    if state:
        assert any(not torch.equal(trained[key], initial[key]) for key in state), f"{name}: state did not change"
