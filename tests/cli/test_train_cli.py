"""caltrain train: command-line behaviour under torchrun."""

from __future__ import annotations

from caltrain.cli.main import main


def test_torchrun_without_out_is_refused(tmp_path, monkeypatch, capsys):
    # review: each rank time-stamped its own run directory when --out was missing
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--epochs", "1", "--quiet"]) == 2
    assert "--out: required under torchrun" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
