"""caltrain train: command-line behaviour (bad input fails before any work; torchrun)."""

from __future__ import annotations

import argparse

import pytest

from caltrain.cli.main import main


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a dataset is loaded or a run starts."""
    import caltrain.data
    import caltrain.train.trainer

    monkeypatch.setattr(caltrain.data, "create", lambda *a, **k: pytest.fail("the dataset was loaded"))
    monkeypatch.setattr(caltrain.train.trainer, "train", lambda *a, **k: pytest.fail("a run started"))


def test_posthoc_typo_exits_2_before_any_work(tmp_path, monkeypatch, capsys, no_work):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--set", "eval.posthoc=[tss]", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "eval.posthoc" in err and "did you mean 'ts'" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()
    assert main(["train", "--set", "eval.posthoc=[tss]", "--out", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--loss", "focl"], "loss.name: .*got 'focl'; did you mean 'focal'"),
        (["--data", "cifr10"], "data.name: .*did you mean 'cifar10'"),
        (["--model", "resnet2O"], "model.name: .*did you mean .*'resnet20'"),
        (["--optim.name=sgdd"], "optim.name: .*did you mean 'sgd'"),
        (["--set", "schedule.name=cosin"], "schedule.name: .*did you mean 'cosine'"),
        (["--set", "eval.abstention=renormalised"], "eval.abstention: .*did you mean 'renormalized'"),
        (["--loss", "focal", "--set", "loss.options.gama=3"],
         r"loss.options: loss 'focal' got unknown parameter\(s\) 'gama'; "
         r"valid parameters: gamma.*did you mean 'gamma'"),
    ],
)
def test_bad_names_exit_2_before_any_work(tmp_path, monkeypatch, capsys, no_work, args, message):
    import re

    assert main(["train", *args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_missing_dataset_files_exit_2_with_one_message(tmp_path, capsys, no_work):
    empty = tmp_path / "empty"
    args = ["train", "--data", "cifar10", "--set", f"data.root={empty}", "--set", "data.options.download=false",
            "--out", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("dataset 'cifar10': missing") == 1
    assert f"data folder searched: {empty.resolve()}" in err and "--set data.root=DIR" in err
    assert not (tmp_path / "run").exists()


def test_torchrun_without_out_is_refused(tmp_path, monkeypatch, capsys):
    # review: each rank time-stamped its own run directory when --out was missing
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--epochs", "1", "--quiet"]) == 2
    assert "--out: required under torchrun" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


TINY = ["--data", "synthetic", "--quiet", "--set", "eval.posthoc=[ts]", "--set", "threads=1",
        "--set", "data.options={train_size: 128, val_size: 64, test_size: 64, dim: 4}"]


def test_overwrite_refuses_a_folder_caltrain_did_not_write(tmp_path, capsys, no_work):
    # regression: `caltrain train --out DIR --overwrite` deleted any folder (a thesis and its data)
    thesis = tmp_path / "thesis"
    (thesis / "data").mkdir(parents=True)
    (thesis / "thesis.tex").write_text("\\documentclass{article}\n")
    (thesis / "data" / "measurements.csv").write_text("1,2\n")
    assert main(["train", *TINY, "--epochs", "1", "--out", str(thesis), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "refusing to overwrite a folder caltrain did not write" in err and str(thesis / "data") in err, err
    assert sorted(p.name for p in thesis.iterdir()) == ["data", "thesis.tex"]  # not even a lock file added
    assert (thesis / "data" / "measurements.csv").read_text() == "1,2\n"


def test_overwrite_of_a_run_refuses_a_foreign_file_among_its_files(tmp_path, capsys):
    from caltrain.train.run_dir import RunDir

    run = RunDir(tmp_path / "run")
    assert main(["train", *TINY, "--epochs", "1", "--out", str(run.root)]) == 0
    assert run.marker.is_file() and run.fingerprint.is_file() and not run.foreign_files()
    (run.root / "notes.txt").write_text("keep me\n")
    (run.calibrators / "mine.txt").write_text("keep me too\n")
    capsys.readouterr()
    assert main(["train", *TINY, "--epochs", "1", "--out", str(run.root), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"{run.calibrators / 'mine.txt'} is not a file caltrain wrote (and 1 more)" in err, err
    assert (run.root / "notes.txt").is_file() and run.is_complete()
    (run.root / "notes.txt").unlink()
    (run.calibrators / "mine.txt").unlink()
    assert main(["train", *TINY, "--epochs", "2", "--out", str(run.root), "--overwrite"]) == 0
    assert len([r for r in run.read_metrics() if "lr" in r]) == 2 and not run.foreign_files()


@pytest.mark.parametrize("option", [["--loss", "focal"], ["--set", "optim.lr=0.5"], ["--optim.lr=0.5"],
                                    ["--data", "digits"], ["--model", "cnn"], ["--seed", "1"], ["--config", "x.yaml"],
                                    ["--overwrite"], ["--out", "elsewhere"]])
def test_resume_refuses_options_it_used_to_ignore(tmp_path, capsys, no_work, option):
    # regression: `caltrain train --resume R --set optim.lr=...` silently ignored the option
    from caltrain.train.config import build_config, config_to_dict
    from caltrain.train.run_dir import RunDir

    run = RunDir(tmp_path / "run")
    run.write_config(config_to_dict(build_config()))
    assert main(["train", "--resume", str(run.root), *option]) == 2
    err = capsys.readouterr().err
    assert f"{option[0]}" in err and "cannot be combined with --resume" in err, err


def test_resume_with_more_epochs_extends_a_finished_run_like_a_longer_one(tmp_path, capsys):
    from caltrain.train.run_dir import RunDir

    short, long = RunDir(tmp_path / "short"), RunDir(tmp_path / "long")
    assert main(["train", *TINY, "--epochs", "2", "--out", str(short.root)]) == 0
    assert main(["train", *TINY, "--epochs", "3", "--out", str(long.root)]) == 0
    assert main(["train", "--resume", str(short.root), "--epochs", "3", "--json"]) == 0
    assert [r["epoch"] for r in short.read_metrics()] == [1, 2, 3]
    assert short.read_summary()["test"] == pytest.approx(long.read_summary()["test"])  # constant schedule: exact
    assert short.read_fingerprint()["config_sha256"] == long.read_fingerprint()["config_sha256"]
    capsys.readouterr()
    assert main(["train", "--resume", str(short.root), "--epochs", "3"]) == 0  # nothing to do
    assert "already complete" in capsys.readouterr().err
    assert main(["train", "--resume", str(short.root), "--epochs", "2"]) == 2
    assert "has already trained 3 epochs" in capsys.readouterr().err


def test_resume_with_more_epochs_refuses_a_cosine_schedule(tmp_path, capsys):
    from caltrain.train.run_dir import RunDir

    run = RunDir(tmp_path / "run")
    assert main(["train", *TINY, "--epochs", "1", "--set", "schedule.name=cosine", "--out", str(run.root)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run.root), "--epochs", "2"]) == 2
    assert "cosine schedule" in capsys.readouterr().err
    assert run.is_complete() and [r["epoch"] for r in run.read_metrics()] == [1]


def test_progress_shows_validation_numbers_not_test_numbers(tmp_path, capsys):
    # issue 18: each epoch line showed the test accuracy and ECE while training (what a reader must not select
    # on); it shows validation, and the test numbers only in the summary at the end, marked as such
    tiny = [a for a in TINY if a != "--quiet"]
    assert main(["train", *tiny, "--epochs", "2", "--device", "cpu", "--out", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    epochs = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2, err
    for line in epochs:
        assert "val acc" in line and "test" not in line, line
    assert f"{tmp_path / 'run'}: test accuracy" in out  # the end of the run names the test split


def test_device_option_is_the_device_setting(tmp_path, capsys, no_work):
    # --device DEVICE is --set device=DEVICE: checked before any work, the same message
    assert main(["train", "--device", "cuda:99", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "device: 'cuda:99' is not available" in err and not (tmp_path / "run").exists()
    from caltrain.cli.train import _overrides

    args = argparse.Namespace(data=None, model=None, loss=None, epochs=None, seed=None, device="cpu",
                                            quiet=False, set=["epochs=2"])
    assert _overrides(args) == ["device=cpu", "epochs=2"]  # --set comes last: it wins
