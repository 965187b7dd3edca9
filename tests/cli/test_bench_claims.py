"""caltrain bench claims: one claim end to end on tiny data (2 seeds, 1 epoch), reuse, and refusals."""

from __future__ import annotations

import json

from caltrain.cli.main import main

TINY = ["--seeds", "2", "--set", "epochs=1", "--set", "data.options.train_size=96",
        "--set", "data.options.val_size=64", "--set", "data.options.test_size=64"]


def test_claims_ats_end_to_end_then_reused(tmp_path, capsys):
    out = tmp_path / "claims"
    assert main(["bench", "claims:ats", *TINY, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "| ats-vs-ts: no worse than temperature scaling" in captured.out and "claims.json" in captured.err
    document = json.loads((out / "claims.json").read_text())
    assert document["status"] == "complete" and [c["id"] for c in document["claims"]] == ["ats-vs-ts"]
    (claim,) = document["claims"]
    assert claim["verdict"] in ("holds", "does not hold", "inconclusive")
    assert len(claim["parts"]) == 6 and all(p["seeds"] == [0, 1] for p in claim["parts"])
    assert claim["setting"]["epochs"] == 1 and claim["setting"]["seeds"] == [0, 1]
    assert "data.options.train_size=96" in claim["setting_text"]
    assert (out / "claims.html").read_text().startswith("<!DOCTYPE html>")
    assert (out / "claims-ats" / "results.json").is_file() and len(list((out / "claims-ats" / "runs").iterdir())) == 6
    # a second call reuses the six finished runs and gives the same verdicts
    assert main(["bench", "claims:ats", *TINY, "--out", str(out)]) == 0
    assert "6 already complete, 0 to run" in capsys.readouterr().err
    assert json.loads((out / "claims.json").read_text())["claims"][0]["parts"] == claim["parts"]


def test_claims_refusals(tmp_path, capsys):
    assert main(["bench", "claims:ats", "--seeds", "1", "--out", str(tmp_path / "a")]) == 2
    assert "at least 2 seeds" in capsys.readouterr().err
    assert main(["bench", "claims:socrate", "--out", str(tmp_path / "b")]) == 2
    assert "did you mean" in capsys.readouterr().err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["bench", "claims:ats", *TINY, "--out", str(foreign)]) == 2
    assert "did not write" in capsys.readouterr().err and (foreign / "notes.txt").read_text() == "keep me"
    assert main(["bench", "claims:ats", "--set", "optim.nme=sgd", "--out", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c").exists()  # every configuration is validated before anything is written


def test_claims_is_listed(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert "claims " in out and "claims-socrates" in out
