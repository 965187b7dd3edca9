"""The dense binary task in the trainer: same loop, run directory, resume and NaN guard as a classifier; every
metric pooled over the pixels of a split and streamed (caltrain.train.dense)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from caltrain import losses, metrics, posthoc
from caltrain.train import Trainer, TrainingDiverged, train
from caltrain.train.config import build_config
from caltrain.train.dense import binary_logits
from caltrain.train.run_dir import RunDir
from tests.train.test_trainer import _StopAfter

#: The dense binary objectives (every registered objective that trains the task).
DENSE = [n for n in losses.names() if "dense_binary" in losses.tasks(n)]

TINY_DENSE = {
    "data": {"name": "synthetic_saliency", "options": {"n_train": 24, "n_val": 10, "n_test": 12, "size": 16},
             "batch_size": 8, "eval_batch_size": 5},
    "model": {"name": "unet", "options": {"width": 4, "depth": 2}},
    "epochs": 2, "quiet": True, "threads": 1, "eval": {"posthoc": ["ts"]},
}


def dense_config(*overrides: str, **base):
    return build_config(base={**TINY_DENSE, **base}, overrides=list(overrides))


def test_dense_objectives_are_registered():
    assert {"bce", "sc_bce", "bce_ls", "disturb_label", "aslp", "focal"} <= set(DENSE)


@pytest.mark.parametrize("objective", DENSE)
def test_every_dense_objective_trains_end_to_end(tmp_path, objective):
    summary = train(dense_config(f"loss.name={objective}"), tmp_path)
    assert summary["task"] == "dense_binary"
    for split in ("val", "test"):
        assert set(metrics.DENSE_KEYS) <= set(summary[split]) and set(metrics.SOD_KEYS) <= set(summary[split])
        assert summary[split]["n"] == 16 * 16 * (10 if split == "val" else 12)
    assert set(summary["posthoc"]) == {"ts"} and summary["posthoc_params"]["ts"]["temperature"] > 0
    run = RunDir(tmp_path)
    assert run.examples("test").exists() and run.reliability("test").exists() and run.calibrator("ts").exists()
    assert not run.logits("test").exists()  # a dense split's logit maps are not kept
    record = run.read_metrics()[-1]
    assert set(metrics.DENSE_KEYS) <= set(record["train"]) and "true_ece" in record["val"]
    assert "true_ece" not in record["train"]  # training batches are augmented: the posterior does not apply


def _predicted(trainer: Trainer, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every logit map of ``split`` gathered at once: an independent path to the streamed metrics."""
    z, y = trainer.predict(split)
    return z, y


def test_streamed_metrics_equal_the_gathered_maps(tmp_path):
    trainer = Trainer(dense_config("loss.name=bce", "eval.posthoc=[ts, platt]"), tmp_path)
    summary = trainer.fit()
    z, y = _predicted(trainer, "test")
    assert z.shape == (12, 1, 16, 16) and y.shape == (12, 1, 16, 16)
    s = torch.sigmoid(z.double())
    expected = metrics.dense_calibration_error(s, y, n_bins=15)
    for key in ("ece", "oe", "ue", "accuracy", "nll", "brier", "confidence"):
        assert summary["test"][key] == pytest.approx(expected[key], rel=1e-12, abs=1e-15)
    true = metrics.dense_true_calibration_error(s, trainer.data.test.true_posterior)
    for key in ("true_ece", "pointwise_ce", "grouping_loss"):
        assert summary["test"][key] == pytest.approx(true[key], rel=1e-5)  # float32 pairs kept, float64 reference
    sod = metrics.sod_metrics(s, y)
    assert summary["test"]["s_measure"] == pytest.approx(sod["s_measure"], rel=1e-12)
    # each calibrator, fitted on every validation pixel (fewer than eval.posthoc_pixels), scored on every test pixel
    zv, yv = _predicted(trainer, "val")
    for name in ("ts", "platt"):
        cal = posthoc.create(name).fit(binary_logits(zv), yv.reshape(-1).long())
        p = cal.predict_proba(binary_logits(z))[:, 1].reshape(s.shape)
        assert summary["posthoc"][name]["ece"] == pytest.approx(
            metrics.dense_calibration_error(p, y, n_bins=15)["ece"], rel=1e-9)
        assert summary["posthoc"][name]["mae"] == pytest.approx(metrics.sod_metrics(p, y)["mae"], rel=1e-9)
        assert summary["posthoc"][name]["true_ece"] == pytest.approx(
            metrics.dense_true_calibration_error(p, trainer.data.test.true_posterior)["true_ece"], rel=1e-4)
    assert summary["posthoc_pixels"] == 10 * 16 * 16
    # the saved bin statistics give the summary's ECE again (what the report draws)
    bins = json.loads(RunDir(tmp_path).reliability("test").read_text())
    count, conf, acc = (np.asarray(bins["uncalibrated"][k]) for k in ("count", "conf_sum", "acc_sum"))
    assert count.sum() == 12 * 16 * 16
    assert np.abs(acc - conf).sum() / count.sum() == pytest.approx(summary["test"]["ece"], rel=1e-12)
    examples = np.load(RunDir(tmp_path).examples("test"))
    assert examples["image"].dtype == np.uint8 and examples["probability"].shape == (8, 1, 16, 16)
    np.testing.assert_allclose(examples["probability"], s[:8].float().numpy(), rtol=1e-6)
    assert examples["posterior"].shape == (8, 1, 16, 16)


def test_metrics_do_not_depend_on_the_evaluation_batch_size(tmp_path):
    a = train(dense_config("loss.name=bce", "data.eval_batch_size=3"), tmp_path / "a")
    b = train(dense_config("loss.name=bce", "data.eval_batch_size=12"), tmp_path / "b")
    for key in ("ece", "nll", "brier", "accuracy", "s_measure", "max_f"):
        assert a["test"][key] == pytest.approx(b["test"][key], rel=1e-12)


def test_posthoc_pixels_subsamples_the_validation_pixels_with_the_seed(tmp_path):
    a = train(dense_config("loss.name=bce", "eval.posthoc_pixels=300"), tmp_path / "a")
    b = train(dense_config("loss.name=bce", "eval.posthoc_pixels=300"), tmp_path / "b")
    assert a["posthoc_pixels"] == b["posthoc_pixels"] and a["posthoc"] == b["posthoc"]
    assert 200 < a["posthoc_pixels"] < 400  # each of the 2560 pixels kept with probability 300 / 2560


def test_aslp_gets_its_validation_accuracy_and_records_alpha(tmp_path):
    cfg = dense_config("loss.name=aslp", "loss.options.start_epoch=1", "loss.options.eta=0.05", "epochs=3")
    trainer = Trainer(cfg, tmp_path)
    trainer.fit()
    records = RunDir(tmp_path).read_metrics()
    for record in records:
        # A_val reaches the objective as streamed statistics: the pooled pixel accuracy of the validation split
        assert record["objective"]["val_pixel_accuracy"] == pytest.approx(record["val"]["accuracy"], abs=1e-12)
        assert {"alpha_mean", "alpha_q50", "alpha_at_zero", "alpha_at_cap"} <= set(record["objective"])
    assert records[0]["objective"]["alpha_mean"] == 0  # epoch 0 trains with alpha = 0 (before start_epoch)
    assert records[-1]["objective"]["alpha_mean"] > 0  # then every image's alpha moves
    alpha = trainer.objective.alpha
    assert alpha.shape == (24,) and alpha.dtype == torch.float64 and bool((alpha >= 0).all())


def test_dense_resume_equals_uninterrupted_alpha_included(tmp_path):
    cfg = dense_config("loss.name=aslp", "loss.options.start_epoch=1", "loss.options.eta=0.05", "epochs=3",
                       "data.augment=true")
    full = Trainer(cfg, tmp_path / "full")
    full_summary = full.fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "cut").fit(progress=_StopAfter(2))
    resumed = Trainer(cfg, tmp_path / "cut", resume=True)
    summary = resumed.fit()
    assert summary["test"] == full_summary["test"] and summary["posthoc"] == full_summary["posthoc"]
    assert torch.equal(resumed.objective.alpha, full.objective.alpha)
    strip = lambda recs: [{k: v for k, v in r.items() if k != "time_s"} for r in recs]  # noqa: E731
    assert strip(RunDir(tmp_path / "cut").read_metrics()) == strip(RunDir(tmp_path / "full").read_metrics())


def test_non_finite_dense_logits_stop_the_run(tmp_path):
    trainer = Trainer(dense_config("loss.name=bce"), tmp_path)
    forward = trainer.forward_model

    def broken(x):
        out = forward(x)
        return out if trainer.model.training else out * float("nan")

    trainer.forward_model = trainer.evaluator.forward_model = broken
    with pytest.raises(TrainingDiverged, match="non-finite val logits at epoch 1"):
        trainer.fit()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["loss.name=ce"], r"loss.name: 'ce' trains classification outputs, but data.name 'synthetic_saliency' is a "
                           r"dense_binary task; objectives for it: .*aslp"),
        (["loss.name=bce", "curvature.every_steps=2"], "curvature.every_steps: curvature tracking is for classifiers"),
        (["loss.name=bce", "eval.abstention=with_unknown"], "eval.abstention: .*no abstention output"),
    ],
)
def test_an_objective_or_setting_that_does_not_fit_the_task_is_refused(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        Trainer(dense_config(*overrides), tmp_path)
    assert not (tmp_path / "summary.json").exists()


def test_a_dense_objective_on_a_classification_dataset_is_refused(tmp_path):
    cfg = build_config(base={"data": {"name": "digits"}, "loss": {"name": "aslp"}, "quiet": True})
    with pytest.raises(ValueError, match=r"loss.name: 'aslp' trains dense_binary outputs, but data.name 'digits' "
                                         r"is a classification task; objectives for it: .*\bce\b"):
        Trainer(cfg, tmp_path)


def test_auto_model_of_a_dense_task_is_the_unet(tmp_path):
    cfg = dense_config("loss.name=bce", "model.name=auto", "model.options={}", "epochs=1")
    trainer = Trainer(cfg, tmp_path)
    assert trainer.model_name == "unet"


def test_cli_trains_a_dense_run(tmp_path, capsys):
    from caltrain.cli.main import main

    code = main(["train", "--data", "synthetic_saliency", "--model", "unet", "--loss", "aslp", "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--quiet", "--json",
                 "--set", "data.options={n_train: 16, n_val: 8, n_test: 8, size: 16}",
                 "--set", "model.options={width: 4, depth: 2}", "--set", "threads=1"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == "dense_binary" and 0 <= out["test"]["ece"] <= 1


class _TinySegmenter(torch.nn.Module):
    """A user's segmentation model: [N, 3, H, W] images to [N, 1, H, W] logits."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(4, 1, 3, padding=1))

    def forward(self, x):
        return self.body(x)


class _MaskDataset(torch.utils.data.Dataset):
    """A user's dataset yielding only (image, mask): caltrain supplies the index ASLP needs."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 3, 12, 12, generator=g)
        self.y = (self.x[:, :1] + 0.5 * torch.randn(n, 1, 12, 12, generator=g) > 0).float()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i, 0]  # [H, W] masks, as many datasets yield them


@pytest.mark.parametrize("as_tensors", [True, False])
def test_fit_trains_a_user_segmentation_model_on_user_masks(tmp_path, as_tensors):
    import caltrain

    train_ds, test_ds = _MaskDataset(20, 0), _MaskDataset(8, 1)
    train_in = (train_ds.x, train_ds.y) if as_tensors else train_ds
    torch.manual_seed(0)
    result = caltrain.fit(_TinySegmenter(), train_in, test=test_ds, loss="aslp", epochs=3, batch_size=5,
                          out=tmp_path / "run", quiet=True, device="cpu", threads=1,
                          loss_options={"start_epoch": 1, "eta": 0.05}, eval={"posthoc": ["ts"]})
    s = result.summary
    assert s["task"] == "dense_binary" and s["data"]["task"] == "dense_binary"
    assert s["test"]["n"] == 8 * 12 * 12 and "ts" in s["posthoc"]
    assert RunDir(tmp_path / "run").read_metrics()[-1]["objective"]["alpha_mean"] > 0
    examples = np.load(RunDir(tmp_path / "run").examples("test"))
    assert examples["image"].dtype == np.float32 and examples["mask"].shape == (8, 1, 12, 12)


def test_fit_refuses_a_classification_objective_for_a_segmentation_model(tmp_path):
    import caltrain

    ds = _MaskDataset(10, 0)
    with pytest.raises(ValueError, match=r"loss: 'ce' trains classification outputs, but the model and data are a "
                                         r"dense_binary task; objectives for it: .*aslp"):
        caltrain.fit(_TinySegmenter(), ds, loss="ce", out=tmp_path / "run", quiet=True, device="cpu")


def test_fit_refuses_soft_masks(tmp_path):
    import caltrain

    ds = _MaskDataset(10, 0)
    with pytest.raises(TypeError, match=r"mask values in \{0, 1\}; binarise"):
        caltrain.fit(_TinySegmenter(), (ds.x, ds.y * 0.7), loss="bce", out=tmp_path / "run", quiet=True,
                     device="cpu")


def test_sample_state_is_saved_and_alpha_is_correlated_with_tau(tmp_path):
    from caltrain.analysis.aslp import alpha_and_tau, alpha_tau_correlation, main, rank_average

    cfg = dense_config("loss.name=aslp", "loss.options.start_epoch=1", "loss.options.eta=0.05", "epochs=3")
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.fit()
    alpha, tau = alpha_and_tau(tmp_path / "run")
    np.testing.assert_array_equal(alpha, trainer.objective.alpha.numpy())  # the final alpha, by dataset index
    np.testing.assert_array_equal(tau, trainer.data.train.extra["tau"].double().numpy())
    out = alpha_tau_correlation(tmp_path / "run")
    ra, rt = rank_average(alpha), rank_average(tau)
    assert out["spearman"] == pytest.approx(np.corrcoef(ra, rt)[0, 1], abs=1e-12)
    assert out["pearson"] == pytest.approx(np.corrcoef(alpha, tau)[0, 1], abs=1e-12)
    assert main([str(tmp_path / "run")]) == 0
    # a run without per-sample state says so
    train(dense_config("loss.name=bce", "epochs=1"), tmp_path / "bce")
    with pytest.raises(ValueError, match="no sample_state.npz"):
        alpha_and_tau(tmp_path / "bce")


def test_rank_average_matches_the_definition_with_ties():
    from caltrain.analysis.aslp import rank_average

    np.testing.assert_array_equal(rank_average(np.array([0.0, 0.0, 0.3, 0.1, 0.0])), [2.0, 2.0, 5.0, 4.0, 2.0])
