"""End-to-end tests of the trainer: every objective, resume exactness, NaN guard, selection, optimisers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from caltrain import losses
from caltrain.train.config import build_config
from caltrain.train.run_dir import RunDir
from caltrain.train.step import frozen_batchnorm_stats
from caltrain.train.trainer import Trainer, TrainingDiverged, train
from caltrain.utils.io import load_arrays

#: Small and fast: ~300 training samples, one batch size that gives a few steps per epoch.
TINY = {
    "digits": {"data": {"name": "digits", "options": {"train_size": 256, "test_size": 200}, "batch_size": 64},
               "model": {"name": "cnn"}},
    "synthetic": {"data": {"name": "synthetic", "options": {"train_size": 256, "val_size": 128, "test_size": 200,
                                                            "dim": 8}, "batch_size": 64},
                  "model": {"name": "mlp"}},
}
SUMMARY_KEYS = {"n", "accuracy", "nll", "brier", "ece", "mce", "rmsce", "adaece", "classwise_ece", "aurc"}


def tiny_config(dataset: str = "synthetic", *overrides: str, **base):
    tree = {**TINY[dataset], "epochs": 2, "quiet": True, "eval": {"posthoc": ["ts"]}, "optim": {"lr": 0.05}}
    tree.update(base)
    return build_config(base=tree, overrides=list(overrides))


#: Classification objectives (the dense binary ones train in tests/train/test_dense.py).
CLASSIFICATION = [n for n in losses.names() if "classification" in losses.tasks(n)]


@pytest.mark.parametrize("dataset", ["digits", "synthetic"])
@pytest.mark.parametrize("objective", CLASSIFICATION)
def test_every_objective_trains_end_to_end(tmp_path, dataset, objective):
    cfg = tiny_config(dataset, f"loss.name={objective}")
    summary = train(cfg, tmp_path)
    run = RunDir(tmp_path)
    assert run.is_complete() and json.loads(run.summary.read_text()) == json.loads(json.dumps(summary))
    assert SUMMARY_KEYS <= set(summary["test"]) and SUMMARY_KEYS <= set(summary["val"])
    assert summary["test"]["n"] == 200
    assert all(math.isfinite(v) for v in summary["test"].values())
    assert 0.0 <= summary["test"]["ece"] <= 1.0 and 0.0 <= summary["test"]["accuracy"] <= 1.0
    assert set(summary["posthoc"]) == {"ts"} and SUMMARY_KEYS <= set(summary["posthoc"]["ts"])
    records = run.read_metrics()
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[-1]["test"] == summary["test"]  # last-epoch selection: the summary is the last record
    saved = load_arrays(run.logits("test"))
    n_out = losses.create(objective, num_classes=10, num_samples=1).num_outputs
    assert saved["logits"].shape == (200, n_out) and saved["labels"].shape == (200,)
    assert {"config.yaml", "meta.json", "checkpoint.pt"} <= {p.name for p in tmp_path.iterdir()}


def test_running_train_metrics_and_loss_are_recorded(tmp_path):
    train(tiny_config("synthetic", "epochs=3"), tmp_path)
    records = RunDir(tmp_path).read_metrics()
    losses_per_epoch = [r["train"]["loss"] for r in records]
    assert losses_per_epoch[-1] < losses_per_epoch[0]
    assert all(r["train"]["n"] == 256 for r in records)
    assert all("true_ece" in r["test"] for r in records)  # synthetic data: the true calibration error is known


def test_best_validation_selection_reports_that_epoch(tmp_path):
    cfg = tiny_config("synthetic", "epochs=4", "eval.select=best_val_accuracy", "optim.lr=0.5")
    summary = train(cfg, tmp_path)
    records = RunDir(tmp_path).read_metrics()
    val_acc = [r["val"]["accuracy"] for r in records]
    best = int(np.argmax(val_acc)) + 1
    assert summary["selected_epoch"] == best
    assert summary["test"] == records[best - 1]["test"]


class _StopAfter:
    """A progress sink that interrupts the run (like Ctrl-C) once epoch ``n`` has been checkpointed."""

    def __init__(self, n: int) -> None:
        self.n = n

    def start_epoch(self, *args):
        pass

    def update(self, *args):
        pass

    def end_epoch(self, record):
        if record["epoch"] == self.n:
            raise KeyboardInterrupt

    def close(self):
        pass


@pytest.mark.parametrize("objective", ["socrates", "adafocal"])  # per-sample EMA table; per-epoch validation state
def test_resume_equals_uninterrupted(tmp_path, objective):
    cfg = tiny_config("digits", "epochs=3", f"loss.name={objective}", "data.augment=true", "mixup.mode=mixup")
    full = train(cfg, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "cut").fit(progress=_StopAfter(2))
    assert not RunDir(tmp_path / "cut").is_complete()
    resumed = Trainer(cfg, tmp_path / "cut", resume=True).fit()
    assert resumed["test"] == full["test"] and resumed["posthoc"] == full["posthoc"]
    strip = lambda recs: [{k: v for k, v in r.items() if k != "time_s"} for r in recs]  # noqa: E731
    assert strip(RunDir(tmp_path / "cut").read_metrics()) == strip(RunDir(tmp_path / "full").read_metrics())


def test_resume_refuses_a_different_configuration(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_config("synthetic"), tmp_path).fit(progress=_StopAfter(1))
    with pytest.raises(ValueError, match="different configuration"):
        Trainer(tiny_config("synthetic", "optim.lr=0.01"), tmp_path, resume=True).fit()


def _assert_kept_first_epoch(run_dir):
    run = RunDir(run_dir)
    assert not run.is_complete() and run.checkpoint.exists()
    state = torch.load(run.checkpoint, weights_only=True)  # a checkpoint holds only tensors and plain data
    assert state["epoch"] == 0 and [r["epoch"] for r in state["history"]] == [1]  # the last good epoch
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert [r["epoch"] for r in run.read_metrics()] == [1]


# 4 steps per epoch; the learning rate becomes 1e30 times larger from step 5 on (after epoch 1's checkpoint)
DIVERGE_AFTER_EPOCH_1 = ("epochs=3", "schedule.name=multistep", "schedule.milestones=[1]", "schedule.gamma=1e30")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    # review: lr=1e30 diverged in epoch 1, so the "keeps the last good checkpoint" half never ran
    with pytest.raises(TrainingDiverged, match=r"non-finite loss at epoch 2, step \d+"):
        train(tiny_config("synthetic", *DIVERGE_AFTER_EPOCH_1), tmp_path)
    _assert_kept_first_epoch(tmp_path)


def test_divergence_exits_with_status_3(tmp_path, capsys):
    from caltrain.cli.main import main

    sets = [arg for pair in zip(["--set"] * 4, DIVERGE_AFTER_EPOCH_1[1:]) for arg in pair]
    argv = ["train", "--data", "synthetic", "--epochs", "3", "--quiet", "--out", str(tmp_path), *sets]
    assert main(argv) == 3
    assert "non-finite loss at epoch 2" in capsys.readouterr().err
    assert RunDir(tmp_path).checkpoint.exists() and not RunDir(tmp_path).is_complete()


def test_weights_broken_by_an_epochs_last_step_stop_the_run(tmp_path):
    # review: the update of an epoch's last step (lr 1e30 from step 8 = epoch 2's last, whose loss is still
    # finite) escaped the loss guard and the run failed in the metrics ("probs: expected finite values")
    cfg = tiny_config("synthetic", "epochs=3", "schedule.name=multistep", "schedule.milestones=[1.7]",
                      "schedule.gamma=1e30")
    with pytest.raises(TrainingDiverged, match=r"non-finite (weights|val logits) at epoch 2, step 8"):
        train(cfg, tmp_path)
    _assert_kept_first_epoch(tmp_path)


def test_sam_second_pass_leaves_batchnorm_statistics_alone():
    bn = torch.nn.BatchNorm1d(3)
    model = torch.nn.Sequential(bn)
    with frozen_batchnorm_stats(model):
        model(torch.randn(8, 3) + 5)
    assert torch.equal(bn.running_mean, torch.zeros(3)) and bn.momentum == 0.1


@pytest.mark.parametrize("optim", ["sgd", "adamw", "muon", "sam"])
def test_optimisers_reduce_the_training_loss(tmp_path, optim):
    lr = {"sgd": 0.05, "adamw": 0.003, "muon": 0.02, "sam": 0.05}[optim]
    train(tiny_config("synthetic", "epochs=3", f"optim.name={optim}", f"optim.lr={lr}"), tmp_path)
    records = RunDir(tmp_path).read_metrics()
    assert records[-1]["train"]["loss"] < records[0]["train"]["loss"]


@pytest.mark.parametrize("mode", ["mixup", "regmixup"])
def test_mixup_modes_train(tmp_path, mode):
    summary = train(tiny_config("synthetic", f"mixup.mode={mode}", "mixup.alpha=0.4"), tmp_path)
    assert summary["test"]["accuracy"] > 0.3


def test_every_k_steps_evaluation_records(tmp_path):
    train(tiny_config("synthetic", "eval.every_steps=2"), tmp_path)
    records = RunDir(tmp_path).read_metrics()
    steps = [r for r in records if not isinstance(r["epoch"], int)]
    assert [r["step"] for r in steps] == [2, 4, 6, 8]  # 4 steps per epoch, 2 epochs
    assert all("val" in r and "test" in r for r in steps)


def test_ood_sets_are_scored_and_saved(tmp_path):
    from sklearn.metrics import roc_auc_score

    summary = train(tiny_config("synthetic"), tmp_path / "on")
    assert set(summary["ood"]) == {"shifted", "far"}
    z_in = load_arrays(RunDir(tmp_path / "on").logits("test"))["logits"]
    z_out = load_arrays(RunDir(tmp_path / "on").logits("ood"))["logits"]  # the first OOD set: "shifted"
    msp = lambda z: torch.softmax(torch.as_tensor(z, dtype=torch.float64), 1).max(1).values.numpy()  # noqa: E731
    truth = np.r_[np.ones(len(z_in)), np.zeros(len(z_out))]
    expected = roc_auc_score(truth, np.r_[msp(z_in), msp(z_out)])
    assert summary["ood"]["shifted"]["auroc"] == pytest.approx(expected, abs=1e-12)
    off = train(tiny_config("synthetic", "eval.ood=false"), tmp_path / "off")
    assert "ood" not in off and not RunDir(tmp_path / "off").logits("ood").exists()


def test_threads_setting_sets_torch_intra_op_threads(tmp_path):
    before = torch.get_num_threads()
    try:
        Trainer(tiny_config("synthetic", "threads=1"), tmp_path)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        tiny_config("synthetic", "threads=-1")
