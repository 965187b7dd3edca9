"""What a resume refuses or cleans: another world size, and the temporary files a killed run left behind."""

from __future__ import annotations

import shutil

import pytest
import torch

from caltrain.cli.main import main
from caltrain.train.checkpoint import load_checkpoint, save_checkpoint
from caltrain.train.config import build_config
from caltrain.train.run_dir import RunDir
from caltrain.train.trainer import train

TINY = {
    "data": {"name": "synthetic", "options": {"train_size": 128, "val_size": 64, "test_size": 64, "dim": 4},
             "batch_size": 64},
    "model": {"name": "mlp", "options": {"hidden": [16]}}, "epochs": 2, "quiet": True, "eval": {"posthoc": ["ts"]},
    "optim": {"lr": 0.05},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished") / "run"
    train(build_config(base=TINY), root)
    return root


@pytest.fixture
def interrupted(tmp_path, finished):
    """A run whose end did not happen: its checkpoint is that of the last epoch, no ``summary.json``."""
    shutil.copytree(finished, tmp_path / "run")
    run = RunDir(tmp_path / "run")
    run.summary.unlink()
    return run


def _set_world_size(run: RunDir, world_size: int) -> None:
    state = load_checkpoint(run.checkpoint)
    state["world_size"] = world_size
    save_checkpoint(run.checkpoint, state)


def test_checkpoint_records_the_world_size(interrupted):
    assert load_checkpoint(interrupted.checkpoint)["world_size"] == 1


@pytest.mark.parametrize("saved", [2, 4])
def test_resume_refuses_another_world_size(interrupted, capsys, saved):
    _set_world_size(interrupted, saved)  # as if written by `torchrun --nproc_per_node=<saved>`
    assert main(["train", "--resume", str(interrupted.root), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"world size {saved}" in err and "world size 1" in err and str(interrupted.checkpoint) in err
    assert f"--nproc_per_node={saved}" in err and len(err.strip().splitlines()) == 1
    assert not interrupted.is_complete()


def test_torchrun_resume_of_a_one_process_run_is_refused(interrupted, monkeypatch):
    # the other direction, without starting a process group: this process claims to be rank 0 of 2
    from caltrain.train import distributed, trainer

    monkeypatch.setattr(trainer, "init_from_env",
                        lambda device_type: distributed.DistContext(rank=0, world_size=2, local_rank=0))
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", lambda model, **kw: model)
    with pytest.raises(ValueError, match=r"world size 1.*world size 2.*without torchrun"):
        trainer.Trainer(build_config(base=TINY), interrupted.root, resume=True).fit()


def test_resume_removes_the_temporary_files_of_a_killed_write(interrupted):
    stale = [interrupted.root / ".checkpoint.pt.k3x_9abz.tmp", interrupted.root / ".metrics.jsonl.a1b2c3d4.tmp",
             interrupted.calibrators / ".ts.json.zz_00yy1.tmp"]
    kept = [interrupted.root / "notes.tmp", interrupted.root / ".checkpoint.pt.short.tmp",
            interrupted.root / "checkpoint.pt.k3x_9abz.tmp", interrupted.root / ".checkpoint.pt.ABCDEFGH.tmp",
            interrupted.root / ".checkpoint.pt.k3x_9abz.tmp.bak"]
    for path in stale + kept:
        path.write_bytes(b"half a file")
    folder = interrupted.root / ".mine.abcdefgh.tmp"  # a folder with the name is not caltrain's: kept
    folder.mkdir()
    assert main(["train", "--resume", str(interrupted.root), "--quiet"]) == 0
    assert interrupted.is_complete()
    assert not any(p.exists() for p in stale)
    assert all(p.read_bytes() == b"half a file" for p in kept) and folder.is_dir()
