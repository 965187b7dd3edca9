"""``caltrain losses``: lists every registered objective with its hyperparameters, defaults, paper and needs."""

from __future__ import annotations

import inspect
import json

from caltrain import losses
from caltrain.cli.main import main


def test_json_lists_every_objective_with_registry_defaults(capsys):
    assert main(["losses", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["entries"]  # the listing shape of docs/cli.md
    assert [e["name"] for e in entries] == losses.names()
    for e in entries:
        defaults = {k: (None if v is inspect.Parameter.empty else v)
                    for k, v in losses.LOSSES.defaults(e["name"]).items()
                    if k not in ("num_classes", "num_samples", "reduction")}
        assert e["options"] == json.loads(json.dumps(defaults)), e["name"]
        assert e["paper"], f"{e['name']} names no paper"
        obj = losses.create(e["name"], num_classes=10, num_samples=4)
        assert e["requires"] == sorted(obj.requires)
        assert e["outputs"] == ("K+1" if obj.has_abstention else "K")
        assert e["needs_validation"] == obj.needs_validation
        assert e["needs_input_grad"] == obj.needs_input_grad
    by_name = {e["name"]: e for e in entries}
    assert by_name["mbls"]["options"] == {"margin": 10.0, "alpha": 0.1, "ignore_index": None}
    assert by_name["focal"]["options"] == {"gamma": 3.0}
    assert by_name["gence"]["options"]["weight"] == 1.0
    assert by_name["ce"]["functional"] and "2111.15430" in by_name["mbls"]["paper"]


def test_table_and_selection(capsys):
    assert main(["losses", "focal", "mbls"]) == 0
    out = capsys.readouterr().out
    assert "focal" in out and "gamma=3.0" in out and "margin=10.0, alpha=0.1" in out
    assert "socrates" not in out


def test_unknown_name_fails_with_the_valid_names(capsys):
    assert main(["losses", "focla"]) == 2
    err = capsys.readouterr().err
    assert "focal" in err and "Valid names" in err
