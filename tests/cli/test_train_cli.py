"""caltrain train: command-line behaviour (bad input fails before any work; torchrun)."""

from __future__ import annotations

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
