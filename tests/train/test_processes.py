"""The trainer as users run it, in separate processes: killed and resumed, under torchrun (gloo, 2 ranks), bad config."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.reliability.helpers import SMALL, TRAIN, env as _env, summary as _summary


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    args = SMALL + ["--loss", "socrates", "--epochs", "6", "--seed", "3"]
    subprocess.run(TRAIN + args + ["--out", str(tmp_path / "full")], check=True, env=_env(), timeout=300)
    proc = subprocess.Popen(TRAIN + args + ["--out", str(tmp_path / "cut")], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = tmp_path / "cut" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail(f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
    proc.send_signal(signal.SIGKILL)  # no clean-up handlers: what a power cut or OOM killer does
    proc.wait()
    assert not (tmp_path / "cut" / "summary.json").exists()
    subprocess.run(TRAIN + ["--resume", str(tmp_path / "cut")], check=True, env=_env(), timeout=300)
    full, cut = _summary(tmp_path / "full"), _summary(tmp_path / "cut")
    assert cut["test"] == full["test"] and cut["val"] == full["val"] and cut["posthoc"] == full["posthoc"]
    assert cut["steps"] == full["steps"]


def test_torchrun_two_ranks_gloo(tmp_path):
    pytest.importorskip("torch.distributed.run")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "caltrain", "train", "--quiet", *SMALL, "--loss", "ce", "--epochs", "2", "--out", str(tmp_path / "ddp")]
    out = subprocess.run(cmd, env=_env(), timeout=300, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = _summary(tmp_path / "ddp")
    assert summary["test"]["n"] == 256 and summary["val"]["n"] == 128  # metrics over the whole split, not one shard
    records = [json.loads(l) for l in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2  # only rank 0 writes
    assert summary["steps"] == 2 * (512 // 2 // 32)  # each rank sees half of every epoch
    assert summary["test"]["accuracy"] > 0.5


def test_bad_configuration_key_fails_with_the_valid_keys(tmp_path):
    out = subprocess.run(TRAIN + ["--optim.lrr=0.1", "--out", str(tmp_path / "x")], env=_env(), timeout=120,
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "lrr" in out.stderr and "lr" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "x").exists()
    out = subprocess.run(TRAIN + ["--epochs", "-1", "--out", str(tmp_path / "y")], env=_env(), timeout=120,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "epochs" in out.stderr


def test_torchrun_two_ranks_gloo_dense(tmp_path):
    # a dense binary run on 2 ranks: each rank streams its shard, the metric states are summed, and the image
    # that evens the shards (9 test images over 2 ranks) is counted once
    pytest.importorskip("torch.distributed.run")
    import torch

    from caltrain import data, metrics, models

    options = "{n_train: 16, n_val: 7, n_test: 9, size: 16}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "caltrain", "train", "--quiet", "--data", "synthetic_saliency", "--model", "unet", "--loss", "aslp",
           "--epochs", "2", "--set", f"data.options={options}", "--set", "model.options={width: 4, depth: 2}",
           "--set", "loss.options.start_epoch=1", "--set", "eval.posthoc=[ts]", "--set", "data.batch_size=4",
           "--set", "data.eval_batch_size=2", "--out", str(tmp_path / "ddp")]
    out = subprocess.run(cmd, env=_env(), timeout=300, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = _summary(tmp_path / "ddp")
    assert summary["test"]["n"] == 9 * 16 * 16 and summary["val"]["n"] == 7 * 16 * 16
    assert summary["test"]["n_images"] == 9
    # the streamed, all-reduced metrics equal the final model's maps evaluated at once in this process
    state = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    model = models.create("unet", num_classes=1, in_channels=3, width=4, depth=2)
    model.load_state_dict(state["model"])
    ds = data.create("synthetic_saliency", n_train=16, n_val=7, n_test=9, size=16)
    loader = data.make_loader(ds.test, batch_size=9, shuffle=False, normalization=(ds.mean, ds.std))
    (x, y, _), = list(loader)
    with torch.no_grad():
        s = torch.sigmoid(model.eval()(x).double())
    expected = metrics.dense_calibration_error(s, y, n_bins=15)
    assert summary["test"]["ece"] == pytest.approx(expected["ece"], rel=1e-5)
    assert summary["test"]["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-12)
    alpha = __import__("numpy").load(tmp_path / "ddp" / "sample_state.npz")["alpha"]
    assert alpha.shape == (16,) and (alpha > 0).sum() > 8  # both ranks' images were updated and merged
